// SPDX-License-Identifier: Apache-2.0
// The optimizers' and clipping's scalar fallback (what targets without SIMD run), forced with UVP_NO_SIMD.
#define UVP_NO_SIMD 1

#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/optim/adagrad.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/clip.hpp"
#include "uvp/optim/rmsprop.hpp"
#include "uvp/optim/sgd.hpp"

TEST_CASE_TEMPLATE("scalar fallback: Sgd and Adam still follow torch.optim step by step", T, float, double) {
  static_assert(!uvp::detail::simd::enabled<T>);
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("optimizers.txt")) {
    CAPTURE(c.name);
    const int kind = int(c.scalar("optimizer"));
    if (kind == 0) {
      uvp::SgdOptions o;
      o.lr = c.scalar("lr");
      o.momentum = c.scalar("momentum");
      o.dampening = c.scalar("dampening");
      o.weight_decay = c.scalar("weight_decay");
      o.nesterov = c.scalar("nesterov") != 0;
      uvp::Sgd<T> opt(o);
      uvp_test::replay_trajectory<T>(c, opt);
    } else {
      uvp::AdamOptions o;
      o.lr = c.scalar("lr");
      o.beta1 = c.scalar("beta1");
      o.beta2 = c.scalar("beta2");
      o.eps = c.scalar("eps");
      o.weight_decay = c.scalar("weight_decay");
      o.decoupled_weight_decay = kind == 2;
      o.amsgrad = c.scalar("amsgrad") != 0;
      uvp::Adam<T> opt(o);
      uvp_test::replay_trajectory<T>(c, opt);
    }
    ++seen;
  }
  CHECK(seen == 12);
}

TEST_CASE_TEMPLATE("scalar fallback: RmsProp, Adagrad and AMSGrad still follow torch.optim step by step", T, float,
                   double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("adaptive.txt")) {
    CAPTURE(c.name);
    const int kind = int(c.scalar("optimizer"));
    if (kind == 3) {
      uvp::RmsPropOptions o;
      o.lr = c.scalar("lr");
      o.alpha = c.scalar("alpha");
      o.eps = c.scalar("eps");
      o.weight_decay = c.scalar("weight_decay");
      o.momentum = c.scalar("momentum");
      o.centered = c.scalar("centered") != 0;
      uvp::RmsProp<T> opt(o);
      uvp_test::replay_trajectory<T>(c, opt);
    } else if (kind == 4) {
      uvp::AdagradOptions o;
      o.lr = c.scalar("lr");
      o.lr_decay = c.scalar("lr_decay");
      o.weight_decay = c.scalar("weight_decay");
      o.initial_accumulator_value = c.scalar("initial_accumulator_value");
      o.eps = c.scalar("eps");
      uvp::Adagrad<T> opt(o);
      uvp_test::replay_trajectory<T>(c, opt);
    } else {
      uvp::AdamOptions o;
      o.lr = c.scalar("lr");
      o.beta1 = c.scalar("beta1");
      o.beta2 = c.scalar("beta2");
      o.eps = c.scalar("eps");
      o.weight_decay = c.scalar("weight_decay");
      o.decoupled_weight_decay = kind == 2;
      o.amsgrad = c.scalar("amsgrad") != 0;
      uvp::Adam<T> opt(o);
      uvp_test::replay_trajectory<T>(c, opt);
    }
    ++seen;
  }
  CHECK(seen == 9);
}

TEST_CASE_TEMPLATE("scalar fallback: clipping", T, float, double) {
  std::vector<T> g = {3, -4, 100, std::numeric_limits<T>::quiet_NaN()};
  uvp::clip_grad_value(uvp::Span<T>(g), 5.0);
  CHECK(g[0] == 3);
  CHECK(g[1] == -4);
  CHECK(g[2] == 5);
  CHECK(std::isnan(g[3]));
  std::vector<T> h = {3, 4};
  CHECK(uvp::clip_grad_norm(uvp::Span<T>(h), 1.0) == doctest::Approx(5));
  CHECK(h[0] == doctest::Approx(0.6).epsilon(1e-5));
}
