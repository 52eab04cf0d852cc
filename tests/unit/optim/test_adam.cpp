// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::Adam (Adam, AdamW, AMSGrad): trajectories against torch.optim, slices, state, errors.
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
#include "uvp/optim/adam.hpp"
#include "uvp/optim/schedule.hpp"

namespace {

uvp::AdamOptions options_of(const uvp_test::FixtureCase& c) {
  uvp::AdamOptions o;
  o.lr = c.scalar("lr");
  o.beta1 = c.scalar("beta1");
  o.beta2 = c.scalar("beta2");
  o.eps = c.scalar("eps");
  o.weight_decay = c.scalar("weight_decay");
  o.decoupled_weight_decay = c.scalar("optimizer") == 2;
  o.amsgrad = c.scalar("amsgrad") != 0;
  return o;
}

template <class T>
std::vector<T> ramp(uvp::index n, double a, double b) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (uvp::index i = 0; i < n; ++i) v[std::size_t(i)] = T(a * std::sin(0.7 * double(i) + b));
  return v;
}

}  // namespace

TEST_CASE_TEMPLATE("Adam, AdamW and AMSGrad follow torch.optim step by step", T, float, double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("optimizers.txt")) {
    if (c.scalar("optimizer") == 0) continue;
    CAPTURE(c.name);
    uvp::Adam<T> opt(options_of(c));
    const double worst = uvp_test::replay_trajectory<T>(c, opt);
    MESSAGE(c.name << ": max rel diff to torch over 20 steps " << worst);
    ++seen;
  }
  CHECK(seen == 6);
}

TEST_CASE_TEMPLATE("Adam's first step moves every parameter by about lr against its gradient's sign", T, float,
                   double) {
  // m = (1 - b1) g, v = (1 - b2) g^2: after bias correction the step is lr * g / (|g| + eps').
  uvp::Adam<T> opt(uvp::AdamOptions{0.1, 0.9, 0.999, 1e-8, 0, false, false, false});
  std::vector<T> p = {1, 1, 1, 1, 1};
  const std::vector<T> g = {2, -3, 0.5, -1e-3, 0};
  opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
  CHECK(p[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(p[1] == doctest::Approx(1.1).epsilon(1e-6));
  CHECK(p[2] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(p[3] == doctest::Approx(1.1).epsilon(1e-4));
  CHECK(p[4] == 1);  // zero gradient: m = 0, no move
  CHECK(opt.steps() == 1);
  CHECK(opt.exp_avg()[0] == doctest::Approx(0.2));
  CHECK(opt.exp_avg_sq()[1] == doctest::Approx(0.009));
  CHECK(opt.max_exp_avg_sq().empty());
}

TEST_CASE_TEMPLATE("Adam state is sized by the first step, 64-byte aligned, and steps never allocate", T, float,
                   double) {
  for (bool ams : {false, true}) {
    uvp::AdamOptions o;
    o.amsgrad = ams;
    o.weight_decay = 0.01;
    uvp::Adam<T> opt(o);
    CHECK(opt.size() == 0);
    uvp::Parameters<T> model(53);
    auto g0 = ramp<T>(53, 1.0, 0.3);
    std::copy(g0.begin(), g0.end(), model.grads().begin());
    opt.step(model.values(), model.grads());
    CHECK(opt.size() == 53);
    CHECK(reinterpret_cast<std::uintptr_t>(opt.exp_avg().data()) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(opt.exp_avg_sq().data()) % 64 == 0);
    if (ams) CHECK(reinterpret_cast<std::uintptr_t>(opt.max_exp_avg_sq().data()) % 64 == 0);
    CHECK(opt.max_exp_avg_sq().size() == (ams ? 53 : 0));
    const long before = uvp_test::allocations.load();
    for (int t = 0; t < 50; ++t) opt.step(model.values(), model.grads());
    opt.step(model.values().subspan(5, 20), model.grads().subspan(5, 20), 5);
    opt.begin_step();
    opt.update(model.values().subspan(0, 3), model.grads().subspan(0, 3), 0);
    const long after = uvp_test::allocations.load();
    CHECK(after == before);
    CHECK(opt.steps() == 53);
  }
}

TEST_CASE_TEMPLATE("Adam slices: step over the parts equals a step over the whole", T, float, double) {
  for (bool ams : {false, true}) {
    for (bool decoupled : {false, true}) {
      uvp::AdamOptions o;
      o.lr = 0.03;
      o.weight_decay = 0.1;
      o.amsgrad = ams;
      o.decoupled_weight_decay = decoupled;
      CAPTURE(ams);
      CAPTURE(decoupled);
      uvp::Adam<T> whole(o), parts(o);
      const uvp::index n = 45;
      auto p1 = ramp<T>(n, 1.0, 0.0), p2 = p1;
      for (int t = 0; t < 6; ++t) {
        const auto g = ramp<T>(n, 2.0 / (1 + t), 0.5 * t);
        whole.step(uvp::Span<T>(p1), uvp::Span<const T>(g));
        if (t == 0) parts.resize(n);
        parts.begin_step();
        // Three disjoint slices, not aligned to any SIMD width.
        parts.update(uvp::Span<T>(p2).subspan(0, 7), uvp::Span<const T>(g).subspan(0, 7), 0);
        parts.update(uvp::Span<T>(p2).subspan(7, 30), uvp::Span<const T>(g).subspan(7, 30), 7);
        parts.update(uvp::Span<T>(p2).subspan(37, 8), uvp::Span<const T>(g).subspan(37, 8), 37);
      }
      CHECK(parts.steps() == whole.steps());
      // Each element's arithmetic is the same whatever slice or SIMD lane it falls in: equal up to
      // the compiler fusing a multiply-add differently in the SIMD main loop and tail.
      const double tol = 16 * std::numeric_limits<T>::epsilon();
      for (uvp::index i = 0; i < n; ++i) {
        CHECK(std::abs(p2[std::size_t(i)] - p1[std::size_t(i)]) <= tol * std::max(T(1), std::abs(p1[std::size_t(i)])));
        CHECK(std::abs(parts.exp_avg_sq()[i] - whole.exp_avg_sq()[i]) <= tol * whole.exp_avg_sq()[i]);
      }
    }
  }
}

TEST_CASE_TEMPLATE("Adam step over a slice leaves the rest of the state alone (lazy, as SparseAdam)", T, float,
                   double) {
  uvp::Adam<T> opt;
  opt.resize(10);
  std::vector<T> row = {1, 2, 3};
  const std::vector<T> g = {0.5, -0.5, 1};
  opt.step(uvp::Span<T>(row), uvp::Span<const T>(g), 4);
  CHECK(opt.steps() == 1);
  for (uvp::index i = 0; i < 10; ++i) {
    const bool inside = i >= 4 && i < 7;
    CHECK((opt.exp_avg()[i] != 0) == inside);
  }
  CHECK(opt.exp_avg()[4] == doctest::Approx(0.05));
  // The slice moved by ~lr against the gradient sign.
  CHECK(row[0] == doctest::Approx(1 - 1e-3).epsilon(1e-6));
  CHECK(row[1] == doctest::Approx(2 + 1e-3).epsilon(1e-6));
  // Second step over another slice uses t = 2 for bias correction.
  std::vector<T> row2 = {1};
  const std::vector<T> g2 = {1};
  opt.step(uvp::Span<T>(row2), uvp::Span<const T>(g2), 9);
  CHECK(opt.steps() == 2);
  // m = 0.1, v = 0.001; m_hat = 0.1 / 0.19, v_hat = 0.001 / 0.001999.
  const double expected = 1 - 1e-3 * (0.1 / 0.19) / (std::sqrt(0.001 / (1 - 0.999 * 0.999)) + 1e-8);
  CHECK(row2[0] == doctest::Approx(expected).epsilon(1e-6));
}

TEST_CASE("Adam lr, set_lr, reset and resize") {
  uvp::Adam<double> opt(uvp::AdamOptions{0.5});
  CHECK(opt.lr() == 0.5);
  opt.set_lr(0.25);
  CHECK(opt.lr() == 0.25);
  opt.set_lr(0);  // cosine annealing reaches eta_min = 0
  CHECK(opt.lr() == 0);
  opt.set_lr(0.25);
  std::vector<double> p = {1, 2}, g = {1, 1};
  opt.step(uvp::Span<double>(p), uvp::Span<const double>(g));
  CHECK(p[0] == doctest::Approx(0.75));  // the step used the lr set, not options().lr
  CHECK(opt.lr() == 0.25);
  CHECK(opt.options().lr == 0.5);
  opt.reset();
  CHECK(opt.steps() == 0);
  CHECK(opt.size() == 0);
  CHECK(opt.lr() == 0.5);
  CHECK(opt.exp_avg().empty());
  // After reset a step of another size is fine.
  std::vector<double> q = {1, 2, 3}, h = {1, 1, 1};
  opt.step(uvp::Span<double>(q), uvp::Span<const double>(h));
  CHECK(opt.size() == 3);
  opt.set_lr(0.125);
  opt.resize(4);
  CHECK(opt.size() == 4);
  CHECK(opt.steps() == 0);
  CHECK(opt.lr() == 0.125);  // resize keeps the lr a schedule set
  CHECK(opt.exp_avg()[0] == 0);
}

TEST_CASE("Adam rejects bad options, naming the option and the value") {
  using uvp::AdamOptions;
  auto make = [](AdamOptions o) { return uvp::Adam<float>(o); };
  AdamOptions o;
  o.lr = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Adam: lr must be finite and > 0, got 0");
  o.lr = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "lr must be finite and > 0, got -1");
  o.lr = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "lr must be finite and > 0, got inf");
  o = AdamOptions{};
  o.beta1 = 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Adam: beta1 must be in [0, 1), got 1");
  o.beta1 = -0.1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "beta1 must be in [0, 1), got -0.1");
  o = AdamOptions{};
  o.beta2 = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "beta2 must be in [0, 1), got 1.5");
  o.beta2 = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "beta2 must be in [0, 1), got nan");
  o = AdamOptions{};
  o.eps = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Adam: eps must be finite and > 0, got 0");
  o = AdamOptions{};
  o.weight_decay = -0.01;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Adam: weight_decay must be finite and >= 0, got -0.01");
  CHECK_NOTHROW(make(AdamOptions{}));
  AdamOptions edge;
  edge.beta1 = 0;
  edge.beta2 = 0;
  CHECK_NOTHROW(make(edge));

  uvp::Adam<float> opt;
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.set_lr(-0.5), uvp::invalid_argument,
                               "uvp::Adam::set_lr: lr must be finite and >= 0, got -0.5");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.set_lr(std::nan("")), uvp::invalid_argument, "got nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.resize(0), uvp::invalid_argument, "uvp::Adam::resize: n must be > 0, got 0");
}

TEST_CASE("Adam rejects bad step arguments before changing anything") {
  uvp::Adam<double> opt;
  std::vector<double> p(6, 1.0), g(6, 0.5), g5(5, 0.5);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p), uvp::Span<const double>(g5)), uvp::shape_error,
                               "uvp::Adam::step: grads has size 5, expected 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(), uvp::Span<const double>()), uvp::invalid_argument,
                               "uvp::Adam::step: params is empty");
  CHECK(opt.size() == 0);
  CHECK(opt.steps() == 0);
  // Slices need a sized state.
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p), uvp::Span<const double>(g), 0),
                               uvp::invalid_argument, "uvp::Adam::step: the state is not sized");
  opt.step(uvp::Span<double>(p), uvp::Span<const double>(g));
  const std::vector<double> p_after = p;
  std::vector<double> p7(7, 1.0), g7(7, 0.5);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p7), uvp::Span<const double>(g7)), uvp::shape_error,
                               "uvp::Adam::step: params has size 7, expected 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      opt.step(uvp::Span<double>(p).subspan(0, 3), uvp::Span<const double>(g).subspan(0, 3), 4),
      uvp::out_of_range_error, "uvp::Adam::step: slice [4, 7) is outside the state of size 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      opt.step(uvp::Span<double>(p).subspan(0, 3), uvp::Span<const double>(g).subspan(0, 3), -1),
      uvp::out_of_range_error, "slice [-1, 2) is outside the state of size 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.update(uvp::Span<double>(p).subspan(0, 2), uvp::Span<const double>(g), 0),
                               uvp::shape_error, "uvp::Adam::update: grads has size 6, expected 2");
  CHECK(opt.steps() == 1);
  CHECK(p == p_after);

  uvp::Adam<double> fresh;
  fresh.resize(6);
  UVP_CHECK_THROWS_WITH_SUBSTR(fresh.update(uvp::Span<double>(p), uvp::Span<const double>(g), 0),
                               uvp::invalid_argument, "uvp::Adam::update: no step begun; call begin_step() first");
}

TEST_CASE_TEMPLATE("Adam with check_finite throws numeric_error on NaN / inf gradients and changes nothing", T,
                   float, double) {
  uvp::AdamOptions o;
  o.check_finite = true;
  uvp::Adam<T> opt(o);
  std::vector<T> p(21, T(1)), g(21, T(0.5));
  opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
  const std::vector<T> p_before = p;
  const std::vector<T> m_before(opt.exp_avg().begin(), opt.exp_avg().end());
  g[19] = std::numeric_limits<T>::quiet_NaN();  // in the SIMD tail for every width
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<T>(p), uvp::Span<const T>(g)), uvp::numeric_error,
                               "uvp::Adam::step: grads has a non-finite value (nan) at flat index 19");
  g[19] = 0.5;
  g[2] = -std::numeric_limits<T>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<T>(p), uvp::Span<const T>(g)), uvp::numeric_error,
                               "non-finite value (-inf) at flat index 2");
  CHECK(opt.steps() == 1);
  CHECK(p == p_before);
  CHECK(std::vector<T>(opt.exp_avg().begin(), opt.exp_avg().end()) == m_before);

  // Without check_finite (the default) a NaN gradient propagates, as in PyTorch.
  uvp::Adam<T> lax;
  std::vector<T> q(3, T(1)), h = {T(1), std::numeric_limits<T>::quiet_NaN(), T(1)};
  lax.step(uvp::Span<T>(q), uvp::Span<const T>(h));
  CHECK(std::isnan(q[1]));
  CHECK(std::isfinite(q[0]));
}

TEST_CASE("Adam trains a flat-buffer least-squares model to its solution") {
  // y = w . x with w* = (1, -2, 3); loss = mean (w.x - y)^2 over a fixed design.
  const double X[6][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}, {0, 1, 1}, {1, 1, 1}};
  const double w_star[3] = {1, -2, 3};
  uvp::Parameters<double> model(3);
  uvp::Adam<double> opt(uvp::AdamOptions{0.05});
  const uvp::CosineLr schedule{0.05, 2000, 1e-4};
  for (uvp::index t = 0; t < 2000; ++t) {
    model.zero_grad();
    auto w = model.values();
    auto gw = model.grads();
    for (const auto& x : X) {
      double r = 0;
      for (int j = 0; j < 3; ++j) r += (w[j] - w_star[j]) * x[j];
      for (int j = 0; j < 3; ++j) gw[j] += 2 * r * x[j] / 6;
    }
    uvp::apply(schedule, opt, t);
    opt.step(model.values(), model.grads());
  }
  for (int j = 0; j < 3; ++j) CHECK(model.values()[j] == doctest::Approx(w_star[j]).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("AMSGrad with a collapsing gradient, and AdamW with torch.optim.AdamW's defaults, follow torch", T,
                   float, double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("adaptive.txt")) {
    const int kind = int(c.scalar("optimizer"));
    if (kind != 1 && kind != 2) continue;
    CAPTURE(c.name);
    double worst = 0;
    if (c.name.rfind("adamw_defaults", 0) == 0) {
      uvp::AdamW<T> opt;  // no options: the defaults must be torch's, which the case recorded
      CHECK(opt.options().lr == c.scalar("lr"));
      CHECK(opt.options().weight_decay == c.scalar("weight_decay"));
      worst = uvp_test::replay_trajectory<T>(c, opt);
    } else {
      uvp::Adam<T> opt(options_of(c));
      worst = uvp_test::replay_trajectory<T>(c, opt);
      CHECK(opt.max_exp_avg_sq().size() == 19);
    }
    MESSAGE(c.name << ": max rel diff to torch over 20 steps " << worst);
    ++seen;
  }
  CHECK(seen == 2);
}

TEST_CASE("AdamW: torch.optim.AdamW's defaults, and decoupled weight decay required") {
  const uvp::AdamOptions d = uvp::adamw_options();
  CHECK(d.lr == 1e-3);
  CHECK(d.beta1 == 0.9);
  CHECK(d.beta2 == 0.999);
  CHECK(d.eps == 1e-8);
  CHECK(d.weight_decay == 0.01);
  CHECK(d.decoupled_weight_decay);
  CHECK_FALSE(d.amsgrad);
  uvp::AdamW<double> w;
  CHECK(w.options().decoupled_weight_decay);
  // AdamW is an Adam: same steps as Adam with the same options.
  uvp::Adam<double> a(d);
  std::vector<double> p = {1, -2}, q = p;
  const std::vector<double> g = {0.5, 0.25};
  w.step(uvp::Span<double>(p), uvp::Span<const double>(g));
  a.step(uvp::Span<double>(q), uvp::Span<const double>(g));
  CHECK(p == q);
  uvp::AdamOptions coupled = d;
  coupled.decoupled_weight_decay = false;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::AdamW<float>(coupled), uvp::invalid_argument,
                               "uvp::AdamW: decoupled_weight_decay must be true, got false");
  uvp::AdamOptions bad = d;
  bad.weight_decay = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::AdamW<float>(bad), uvp::invalid_argument,
                               "weight_decay must be finite and >= 0, got -1");
}
