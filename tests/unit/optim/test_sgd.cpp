// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::Sgd: trajectories against torch.optim.SGD, slices, state, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "alloc_counter.hpp"
#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/optim/schedule.hpp"
#include "uvp/optim/sgd.hpp"

namespace {

uvp::SgdOptions options_of(const uvp_test::FixtureCase& c) {
  uvp::SgdOptions o;
  o.lr = c.scalar("lr");
  o.momentum = c.scalar("momentum");
  o.dampening = c.scalar("dampening");
  o.weight_decay = c.scalar("weight_decay");
  o.nesterov = c.scalar("nesterov") != 0;
  return o;
}

}  // namespace

TEST_CASE_TEMPLATE("Sgd (plain, weight decay, momentum, dampening, Nesterov) follows torch.optim.SGD", T, float,
                   double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("optimizers.txt")) {
    if (c.scalar("optimizer") != 0) continue;
    CAPTURE(c.name);
    uvp::Sgd<T> opt(options_of(c));
    const double worst = uvp_test::replay_trajectory<T>(c, opt);
    MESSAGE(c.name << ": max rel diff to torch over 20 steps " << worst);
    ++seen;
  }
  CHECK(seen == 6);
}

TEST_CASE_TEMPLATE("Sgd small cases by hand", T, float, double) {
  SUBCASE("plain: p -= lr g") {
    uvp::Sgd<T> opt(uvp::SgdOptions{0.5});
    std::vector<T> p = {1, 2, 3}, g = {2, -2, 0};
    opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
    CHECK(p == std::vector<T>{0, 3, 3});
    CHECK(opt.momentum_buffer().empty());
  }
  SUBCASE("momentum: b = g on the first step, then b = m b + (1 - d) g") {
    uvp::Sgd<T> opt(uvp::SgdOptions{0.5, 0.5, 0.5});
    std::vector<T> p = {0}, g = {2};
    opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
    CHECK(opt.momentum_buffer()[0] == 2);
    CHECK(p[0] == -1);
    opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
    CHECK(opt.momentum_buffer()[0] == 2);  // 0.5 * 2 + 0.5 * 2
    CHECK(p[0] == -2);
  }
  SUBCASE("nesterov: g + m b") {
    uvp::SgdOptions o{1.0, 0.5};
    o.nesterov = true;
    uvp::Sgd<T> opt(o);
    std::vector<T> p = {0}, g = {1};
    opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
    CHECK(p[0] == -1.5);  // b = 1; d = 1 + 0.5
    opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
    CHECK(p[0] == -1.5 - 1.75);  // b = 1.5; d = 1 + 0.75
  }
}

TEST_CASE_TEMPLATE("Sgd slices equal the whole step; steps never allocate", T, float, double) {
  uvp::SgdOptions o{0.05, 0.9, 0.0, 0.01, true};
  uvp::Sgd<T> whole(o), parts(o);
  const uvp::index n = 29;
  uvp::Parameters<T> a(n), b(n);
  for (uvp::index i = 0; i < n; ++i) a.values()[i] = b.values()[i] = T(std::cos(double(i)));
  whole.step(a.values(), a.grads());  // sizes the state
  parts.step(b.values(), b.grads());
  const long before = uvp_test::allocations.load();
  for (int t = 0; t < 5; ++t) {
    for (uvp::index i = 0; i < n; ++i) a.grads()[i] = b.grads()[i] = T(std::sin(double(i + t)));
    whole.step(a.values(), a.grads());
    parts.begin_step();
    parts.update(b.values().subspan(0, 11), b.grads().subspan(0, 11), 0);
    parts.update(b.values().subspan(11, 18), b.grads().subspan(11, 18), 11);
  }
  CHECK(uvp_test::allocations.load() == before);
  // Equal up to the compiler fusing a multiply-add differently in the SIMD main loop and tail.
  const double tol = 16 * std::numeric_limits<T>::epsilon();
  for (uvp::index i = 0; i < n; ++i) {
    CHECK(std::abs(b.values()[i] - a.values()[i]) <= tol * std::max(T(1), std::abs(a.values()[i])));
    CHECK(std::abs(parts.momentum_buffer()[i] - whole.momentum_buffer()[i]) <=
          tol * std::max(T(1), std::abs(whole.momentum_buffer()[i])));
  }
  CHECK(reinterpret_cast<std::uintptr_t>(whole.momentum_buffer().data()) % 64 == 0);
}

TEST_CASE("Sgd slice first touched after the first step starts from a zero buffer") {
  uvp::Sgd<double> opt(uvp::SgdOptions{1.0, 0.5, 0.25});
  opt.resize(4);
  std::vector<double> p = {0, 0}, g = {1, 1};
  opt.step(uvp::Span<double>(p), uvp::Span<const double>(g), 0);  // first step: b = g
  CHECK(opt.momentum_buffer()[0] == 1);
  std::vector<double> q = {0}, h = {1};
  opt.step(uvp::Span<double>(q), uvp::Span<const double>(h), 3);  // step 2, fresh slice: b = 0.75 g
  CHECK(opt.momentum_buffer()[3] == 0.75);
  CHECK(opt.momentum_buffer()[0] == 1);  // untouched
  CHECK(q[0] == -0.75);
}

TEST_CASE("Sgd lr, set_lr, reset") {
  uvp::Sgd<float> opt;
  CHECK(opt.lr() == 0.01);
  CHECK(opt.options().momentum == 0);
  opt.set_lr(0.2);
  std::vector<float> p = {1}, g = {1};
  opt.step(uvp::Span<float>(p), uvp::Span<const float>(g));
  CHECK(p[0] == doctest::Approx(0.8));
  CHECK(opt.steps() == 1);
  opt.reset();
  CHECK(opt.lr() == 0.01);
  CHECK(opt.steps() == 0);
  CHECK(opt.size() == 0);
}

TEST_CASE("Sgd rejects bad options and arguments, naming them") {
  auto make = [](uvp::SgdOptions o) { return uvp::Sgd<double>(o); };
  uvp::SgdOptions o;
  o.lr = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Sgd: lr must be finite and > 0, got 0");
  o = {};
  o.momentum = -0.1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Sgd: momentum must be in [0, 1], got -0.1");
  o.momentum = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "momentum must be in [0, 1], got 1.5");
  o = {};
  o.dampening = 2;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Sgd: dampening must be in [0, 1], got 2");
  o = {};
  o.weight_decay = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Sgd: weight_decay must be finite and >= 0, got -1");
  o = {};
  o.nesterov = true;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Sgd: nesterov needs momentum > 0 and dampening = 0, got momentum 0 and "
                               "dampening 0");
  o.momentum = 0.9;
  o.dampening = 0.1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "got momentum 0.9 and dampening 0.1");
  o.dampening = 0;
  CHECK_NOTHROW(make(o));

  uvp::Sgd<double> opt;
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.set_lr(-1), uvp::invalid_argument, "uvp::Sgd::set_lr: lr must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.resize(-3), uvp::invalid_argument, "uvp::Sgd::resize: n must be > 0, got -3");
  std::vector<double> p(4, 1.0), g(3, 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p), uvp::Span<const double>(g)), uvp::shape_error,
                               "uvp::Sgd::step: grads has size 3, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.update(uvp::Span<double>(p).subspan(0, 3), uvp::Span<const double>(g), 0),
                               uvp::invalid_argument, "uvp::Sgd::update: no step begun");
  std::vector<double> g4(4, 1.0);
  opt.step(uvp::Span<double>(p), uvp::Span<const double>(g4));
  std::vector<double> p5(5, 1.0), g5(5, 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p5), uvp::Span<const double>(g5)), uvp::shape_error,
                               "uvp::Sgd::step: params has size 5, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p5).subspan(0, 2), uvp::Span<const double>(g5).subspan(0, 2), 3),
                               uvp::out_of_range_error, "uvp::Sgd::step: slice [3, 5) is outside the state of size 4");

  uvp::SgdOptions strict;
  strict.check_finite = true;
  uvp::Sgd<float> checked(strict);
  std::vector<float> q(9, 1.0f), h(9, 1.0f);
  h[8] = std::numeric_limits<float>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(checked.step(uvp::Span<float>(q), uvp::Span<const float>(h)), uvp::numeric_error,
                               "uvp::Sgd::step: grads has a non-finite value (inf) at flat index 8");
  CHECK(q == std::vector<float>(9, 1.0f));
  CHECK(checked.steps() == 0);
}
