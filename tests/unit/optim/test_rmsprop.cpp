// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::RmsProp (plain, centered, momentum): trajectories against torch.optim.RMSprop,
// slices, state, allocations, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "alloc_counter.hpp"
#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/optim/rmsprop.hpp"

namespace {

uvp::RmsPropOptions options_of(const uvp_test::FixtureCase& c) {
  uvp::RmsPropOptions o;
  o.lr = c.scalar("lr");
  o.alpha = c.scalar("alpha");
  o.eps = c.scalar("eps");
  o.weight_decay = c.scalar("weight_decay");
  o.momentum = c.scalar("momentum");
  o.centered = c.scalar("centered") != 0;
  return o;
}

template <class T>
std::vector<T> ramp(uvp::index n, double a, double b) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (uvp::index i = 0; i < n; ++i) v[std::size_t(i)] = T(a * std::sin(0.7 * double(i) + b));
  return v;
}

template <class T>
std::vector<T> copy(uvp::Span<const T> s) {
  return std::vector<T>(s.begin(), s.end());
}

// The four kernels: plain, centered, momentum, centered + momentum.
std::vector<uvp::RmsPropOptions> variants() {
  std::vector<uvp::RmsPropOptions> out;
  for (bool centered : {false, true})
    for (double momentum : {0.0, 0.7}) {
      uvp::RmsPropOptions o;
      o.lr = 0.02;
      o.alpha = 0.9;
      o.weight_decay = 0.05;
      o.centered = centered;
      o.momentum = momentum;
      out.push_back(o);
    }
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("RmsProp (plain, centered, momentum, cosine lr) follows torch.optim.RMSprop step by step", T,
                   float, double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("adaptive.txt")) {
    if (c.scalar("optimizer") != 3) continue;
    CAPTURE(c.name);
    uvp::RmsProp<T> opt(options_of(c));
    const double worst = uvp_test::replay_trajectory<T>(c, opt);
    MESSAGE(c.name << ": max rel diff to torch over 20 steps " << worst);
    ++seen;
  }
  CHECK(seen == 5);
}

TEST_CASE_TEMPLATE("RmsProp's first step by hand", T, float, double) {
  // s = (1 - alpha) g^2, so the step is lr g / (sqrt(1 - alpha) |g| + eps).
  uvp::RmsPropOptions o;
  o.lr = 0.1;
  o.alpha = 0.75;
  o.eps = 1e-8;
  uvp::RmsProp<T> opt(o);
  std::vector<T> p = {1, 1, 1}, g = {2, -4, 0};
  opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
  CHECK(p[0] == doctest::Approx(1 - 0.1 / 0.5).epsilon(1e-6));
  CHECK(p[1] == doctest::Approx(1 + 0.1 / 0.5).epsilon(1e-6));
  CHECK(p[2] == 1);  // zero gradient: no move
  CHECK(opt.square_avg()[1] == doctest::Approx(4));
  CHECK(opt.grad_avg().empty());
  CHECK(opt.momentum_buffer().empty());

  // Centered with one step: s - a^2 = (1 - alpha) g^2 - (1 - alpha)^2 g^2 = alpha (1 - alpha) g^2.
  o.centered = true;
  o.momentum = 0.5;
  uvp::RmsProp<T> cen(o);
  std::vector<T> q = {1}, h = {2};
  cen.step(uvp::Span<T>(q), uvp::Span<const T>(h));
  const double d = std::sqrt(0.75 * 0.25 * 4) + 1e-8;
  CHECK(cen.grad_avg()[0] == doctest::Approx(0.5));
  CHECK(cen.momentum_buffer()[0] == doctest::Approx(2 / d).epsilon(1e-6));
  CHECK(q[0] == doctest::Approx(1 - 0.1 * 2 / d).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("RmsProp centered never takes the square root of a negative variance", T, float, double) {
  // A constant gradient: s - a^2 = alpha^t (1 - alpha^t) g^2 shrinks below the rounding of s.
  uvp::RmsPropOptions o;
  o.lr = 1e-3;
  o.alpha = 0.5;
  o.centered = true;
  uvp::RmsProp<T> opt(o);
  std::vector<T> p(37, T(1)), g(37, T(0.3));
  for (int t = 0; t < 200; ++t) opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
  for (T x : p) CHECK(std::isfinite(x));
}

TEST_CASE_TEMPLATE("RmsProp slices: step over the parts equals a step over the whole, for every kernel", T, float,
                   double) {
  for (const auto& o : variants()) {
    CAPTURE(o.centered);
    CAPTURE(o.momentum);
    uvp::RmsProp<T> whole(o), parts(o);
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
    // The same arithmetic per element wherever it falls: equal up to FMA contraction differences.
    const double tol = 16 * std::numeric_limits<T>::epsilon();
    CHECK(uvp_test::max_rel_diff(p2, p1) <= tol);
    CHECK(uvp_test::max_rel_diff(parts.square_avg(), whole.square_avg()) <= tol);
    CHECK(parts.grad_avg().size() == (o.centered ? n : 0));
    CHECK(parts.momentum_buffer().size() == (o.momentum > 0 ? n : 0));
    if (o.centered) CHECK(uvp_test::max_rel_diff(parts.grad_avg(), whole.grad_avg()) <= tol);
    if (o.momentum > 0) CHECK(uvp_test::max_rel_diff(parts.momentum_buffer(), whole.momentum_buffer()) <= tol);
  }
}

TEST_CASE_TEMPLATE("RmsProp step over a slice changes only that slice of the state (lazy)", T, float, double) {
  for (const auto& o : variants()) {
    CAPTURE(o.centered);
    CAPTURE(o.momentum);
    uvp::RmsProp<T> opt(o), fresh(o);
    const uvp::index n = 30;
    opt.resize(n);
    auto g = ramp<T>(n, 1.5, 0.2);
    auto p = ramp<T>(n, 1.0, 0.1);
    // Step 1 touches [0, 10) only; steps 2 and 3 touch [10, 29).
    opt.step(uvp::Span<T>(p).subspan(0, 10), uvp::Span<const T>(g).subspan(0, 10), 0);
    const auto s1 = copy<T>(opt.square_avg());
    for (uvp::index i = 10; i < n; ++i) CHECK(s1[std::size_t(i)] == 0);
    std::vector<T> q(p.begin() + 10, p.begin() + 29);
    for (int t = 0; t < 2; ++t) {
      opt.step(uvp::Span<T>(p).subspan(10, 19), uvp::Span<const T>(g).subspan(10, 19), 10);
      fresh.step(uvp::Span<T>(q), uvp::Span<const T>(g).subspan(10, 19));
    }
    CHECK(opt.steps() == 3);
    const auto s3 = copy<T>(opt.square_avg());
    for (uvp::index i = 0; i < 10; ++i) CHECK(s3[std::size_t(i)] == s1[std::size_t(i)]);
    CHECK(s3[29] == 0);
    // No coefficient depends on t: a slice first touched at step 2 is a fresh RMSprop there.
    const double tol = 16 * std::numeric_limits<T>::epsilon();
    CHECK(uvp_test::max_rel_diff(std::vector<T>(p.begin() + 10, p.begin() + 29), q) <= tol);
  }
}

TEST_CASE_TEMPLATE("RmsProp state is sized by the first step, 64-byte aligned, and steps never allocate", T, float,
                   double) {
  for (const auto& o : variants()) {
    uvp::RmsProp<T> opt(o);
    CHECK(opt.size() == 0);
    uvp::Parameters<T> model(53);
    const auto g0 = ramp<T>(53, 1.0, 0.3);
    std::copy(g0.begin(), g0.end(), model.grads().begin());
    opt.step(model.values(), model.grads());
    CHECK(opt.size() == 53);
    CHECK(reinterpret_cast<std::uintptr_t>(opt.square_avg().data()) % 64 == 0);
    if (o.centered) CHECK(reinterpret_cast<std::uintptr_t>(opt.grad_avg().data()) % 64 == 0);
    if (o.momentum > 0) CHECK(reinterpret_cast<std::uintptr_t>(opt.momentum_buffer().data()) % 64 == 0);
    const long before = uvp_test::allocations.load();
    for (int t = 0; t < 20; ++t) opt.step(model.values(), model.grads());
    opt.step(model.values().subspan(5, 20), model.grads().subspan(5, 20), 5);
    opt.set_lr(0.001);
    opt.begin_step();
    opt.update(model.values().subspan(0, 3), model.grads().subspan(0, 3), 0);
    const long after = uvp_test::allocations.load();
    CHECK(after == before);
    CHECK(opt.steps() == 23);
  }
}

TEST_CASE("RmsProp lr, set_lr between begin_step and update, reset and resize") {
  uvp::RmsPropOptions o;
  o.lr = 0.5;
  o.alpha = 0.75;
  uvp::RmsProp<double> a(o), b(o);
  std::vector<double> p = {1}, q = {1}, g = {2};
  a.set_lr(0.25);
  a.step(uvp::Span<double>(p), uvp::Span<const double>(g));
  b.resize(1);
  b.begin_step();
  b.set_lr(0.25);  // after begin_step: the update still uses it
  b.update(uvp::Span<double>(q), uvp::Span<const double>(g), 0);
  CHECK(p[0] == q[0]);
  CHECK(p[0] == doctest::Approx(1 - 0.25 * 2 / (1 + 1e-8)));
  CHECK(a.options().lr == 0.5);
  a.reset();
  CHECK(a.size() == 0);
  CHECK(a.steps() == 0);
  CHECK(a.lr() == 0.5);
  CHECK(a.square_avg().empty());
  a.set_lr(0.125);
  a.resize(4);
  CHECK(a.size() == 4);
  CHECK(a.lr() == 0.125);
  CHECK(a.square_avg()[3] == 0);
}

TEST_CASE("RmsProp rejects bad options and arguments, naming them") {
  using uvp::RmsPropOptions;
  auto make = [](RmsPropOptions o) { return uvp::RmsProp<float>(o); };
  RmsPropOptions o;
  o.lr = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::RmsProp: lr must be finite and > 0, got 0");
  o = RmsPropOptions{};
  o.alpha = 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::RmsProp: alpha must be in [0, 1), got 1");
  o.alpha = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "alpha must be in [0, 1), got nan");
  o = RmsPropOptions{};
  o.eps = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::RmsProp: eps must be finite and > 0, got 0");
  o = RmsPropOptions{};
  o.weight_decay = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::RmsProp: weight_decay must be finite and >= 0, got -1");
  o = RmsPropOptions{};
  o.momentum = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::RmsProp: momentum must be in [0, 1], got 1.5");
  CHECK_NOTHROW(make(RmsPropOptions{}));

  uvp::RmsProp<double> opt;
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.set_lr(-1), uvp::invalid_argument,
                               "uvp::RmsProp::set_lr: lr must be finite and >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.resize(-2), uvp::invalid_argument, "uvp::RmsProp::resize: n must be > 0, got -2");
  std::vector<double> p(6, 1.0), g(6, 0.5), g5(5, 0.5);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p), uvp::Span<const double>(g5)), uvp::shape_error,
                               "uvp::RmsProp::step: grads has size 5, expected 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<double>(p), uvp::Span<const double>(g), 0),
                               uvp::invalid_argument, "uvp::RmsProp::step: the state is not sized");
  opt.resize(6);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.update(uvp::Span<double>(p), uvp::Span<const double>(g), 0),
                               uvp::invalid_argument, "uvp::RmsProp::update: no step begun");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      opt.step(uvp::Span<double>(p).subspan(0, 3), uvp::Span<const double>(g).subspan(0, 3), 4),
      uvp::out_of_range_error, "uvp::RmsProp::step: slice [4, 7) is outside the state of size 6");
  CHECK(opt.steps() == 0);
  CHECK(p == std::vector<double>(6, 1.0));

  uvp::RmsPropOptions strict;
  strict.check_finite = true;
  uvp::RmsProp<double> s(strict);
  g[4] = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(s.step(uvp::Span<double>(p), uvp::Span<const double>(g)), uvp::numeric_error,
                               "uvp::RmsProp::step: grads has a non-finite value (inf) at flat index 4");
  CHECK(p == std::vector<double>(6, 1.0));
}
