// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::Adagrad: trajectories against torch.optim.Adagrad, slices, state, allocations, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "alloc_counter.hpp"
#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/optim/adagrad.hpp"

namespace {

uvp::AdagradOptions options_of(const uvp_test::FixtureCase& c) {
  uvp::AdagradOptions o;
  o.lr = c.scalar("lr");
  o.lr_decay = c.scalar("lr_decay");
  o.weight_decay = c.scalar("weight_decay");
  o.initial_accumulator_value = c.scalar("initial_accumulator_value");
  o.eps = c.scalar("eps");
  return o;
}

template <class T>
std::vector<T> ramp(uvp::index n, double a, double b) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (uvp::index i = 0; i < n; ++i) v[std::size_t(i)] = T(a * std::sin(0.7 * double(i) + b));
  return v;
}

uvp::AdagradOptions decaying() {
  uvp::AdagradOptions o;
  o.lr = 0.05;
  o.lr_decay = 0.2;
  o.weight_decay = 0.03;
  o.initial_accumulator_value = 0.25;
  return o;
}

}  // namespace

TEST_CASE_TEMPLATE("Adagrad (plain, lr_decay, weight decay, initial accumulator) follows torch.optim.Adagrad", T,
                   float, double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("adaptive.txt")) {
    if (c.scalar("optimizer") != 4) continue;
    CAPTURE(c.name);
    uvp::Adagrad<T> opt(options_of(c));
    const double worst = uvp_test::replay_trajectory<T>(c, opt);
    MESSAGE(c.name << ": max rel diff to torch over 20 steps " << worst);
    ++seen;
  }
  CHECK(seen == 2);
}

TEST_CASE_TEMPLATE("Adagrad by hand: the sum starts at initial_accumulator_value, lr decays with t", T, float,
                   double) {
  uvp::AdagradOptions o;
  o.lr = 0.5;
  o.lr_decay = 1;
  o.initial_accumulator_value = 5;
  o.eps = 1e-10;
  uvp::Adagrad<T> opt(o);
  opt.resize(2);
  CHECK(opt.sum()[0] == 5);
  CHECK(opt.sum()[1] == 5);
  std::vector<T> p = {1, 1}, g = {2, 0};
  opt.step(uvp::Span<T>(p), uvp::Span<const T>(g), 0);
  CHECK(opt.sum()[0] == 9);
  CHECK(opt.sum()[1] == 5);
  CHECK(p[0] == doctest::Approx(1 - 0.5 * 2 / 3.0).epsilon(1e-6));
  CHECK(p[1] == 1);
  // Step 2: clr = 0.5 / (1 + 1 * 1) = 0.25; s = 9 + 16 = 25.
  const T p0 = p[0];
  g = {4, 0};
  opt.step(uvp::Span<T>(p), uvp::Span<const T>(g));
  CHECK(opt.sum()[0] == 25);
  CHECK(p[0] == doctest::Approx(double(p0) - 0.25 * 4 / 5.0).epsilon(1e-6));
  opt.reset();
  CHECK(opt.sum().empty());
  std::vector<T> q = {1};
  const std::vector<T> h = {1};
  opt.step(uvp::Span<T>(q), uvp::Span<const T>(h));  // a full step re-sizes at the initial value
  CHECK(opt.sum()[0] == 6);
}

TEST_CASE_TEMPLATE("Adagrad slices: step over the parts equals a step over the whole", T, float, double) {
  const auto o = decaying();
  uvp::Adagrad<T> whole(o), parts(o);
  const uvp::index n = 45;
  auto p1 = ramp<T>(n, 1.0, 0.0), p2 = p1;
  for (int t = 0; t < 6; ++t) {
    const auto g = ramp<T>(n, 2.0 / (1 + t), 0.5 * t);
    whole.step(uvp::Span<T>(p1), uvp::Span<const T>(g));
    if (t == 0) parts.resize(n);
    parts.begin_step();
    parts.update(uvp::Span<T>(p2).subspan(0, 7), uvp::Span<const T>(g).subspan(0, 7), 0);
    parts.update(uvp::Span<T>(p2).subspan(7, 30), uvp::Span<const T>(g).subspan(7, 30), 7);
    parts.update(uvp::Span<T>(p2).subspan(37, 8), uvp::Span<const T>(g).subspan(37, 8), 37);
  }
  CHECK(parts.steps() == whole.steps());
  const double tol = 16 * std::numeric_limits<T>::epsilon();
  CHECK(uvp_test::max_rel_diff(p2, p1) <= tol);
  CHECK(uvp_test::max_rel_diff(parts.sum(), whole.sum()) <= tol);
}

TEST_CASE_TEMPLATE("Adagrad step over a slice changes only that slice of the sum; lr decays with the global t", T,
                   float, double) {
  const auto o = decaying();
  uvp::Adagrad<T> opt(o);
  const uvp::index n = 20;
  opt.resize(n);
  auto p = ramp<T>(n, 1.0, 0.4);
  const auto g = ramp<T>(n, 1.0, 1.1);
  const auto p_start = p;
  for (int t = 0; t < 3; ++t) opt.step(uvp::Span<T>(p).subspan(2, 5), uvp::Span<const T>(g).subspan(2, 5), 2);
  for (uvp::index i = 0; i < n; ++i) {
    const bool inside = i >= 2 && i < 7;
    CHECK((opt.sum()[i] != T(0.25)) == inside);
    CHECK((p[std::size_t(i)] != p_start[std::size_t(i)]) == inside);
  }
  // A slice first touched at step 4 uses clr = lr / (1 + 3 lr_decay), from the initial sum.
  std::vector<T> row = {T(0.5)};
  const std::vector<T> gr = {T(0.75)};
  opt.step(uvp::Span<T>(row), uvp::Span<const T>(gr), 12);
  const double gi = 0.75 + 0.03 * 0.5;
  const double expected = 0.5 - 0.05 / (1 + 3 * 0.2) * gi / (std::sqrt(0.25 + gi * gi) + 1e-10);
  CHECK(row[0] == doctest::Approx(expected).epsilon(1e-6));
  CHECK(opt.steps() == 4);
}

TEST_CASE_TEMPLATE("Adagrad state is sized by the first step, 64-byte aligned, and steps never allocate", T, float,
                   double) {
  uvp::Adagrad<T> opt(decaying());
  uvp::Parameters<T> model(53);
  const auto g0 = ramp<T>(53, 1.0, 0.3);
  std::copy(g0.begin(), g0.end(), model.grads().begin());
  opt.step(model.values(), model.grads());
  CHECK(opt.size() == 53);
  CHECK(reinterpret_cast<std::uintptr_t>(opt.sum().data()) % 64 == 0);
  const long before = uvp_test::allocations.load();
  for (int t = 0; t < 20; ++t) opt.step(model.values(), model.grads());
  opt.step(model.values().subspan(5, 20), model.grads().subspan(5, 20), 5);
  opt.begin_step();
  opt.update(model.values().subspan(0, 3), model.grads().subspan(0, 3), 0);
  const long after = uvp_test::allocations.load();
  CHECK(after == before);
  CHECK(opt.steps() == 23);
}

TEST_CASE("Adagrad rejects bad options and arguments, naming them") {
  using uvp::AdagradOptions;
  auto make = [](AdagradOptions o) { return uvp::Adagrad<double>(o); };
  AdagradOptions o;
  o.lr = -0.1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Adagrad: lr must be finite and > 0, got -0.1");
  o = AdagradOptions{};
  o.lr_decay = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Adagrad: lr_decay must be finite and >= 0, got -1");
  o = AdagradOptions{};
  o.weight_decay = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Adagrad: weight_decay must be finite and >= 0, got inf");
  o = AdagradOptions{};
  o.initial_accumulator_value = -0.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument,
                               "uvp::Adagrad: initial_accumulator_value must be finite and >= 0, got -0.5");
  o = AdagradOptions{};
  o.eps = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(make(o), uvp::invalid_argument, "uvp::Adagrad: eps must be finite and > 0, got 0");
  CHECK_NOTHROW(make(AdagradOptions{}));

  uvp::Adagrad<float> opt;
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.set_lr(std::nan("")), uvp::invalid_argument,
                               "uvp::Adagrad::set_lr: lr must be finite and >= 0, got nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.resize(0), uvp::invalid_argument, "uvp::Adagrad::resize: n must be > 0, got 0");
  std::vector<float> p(4, 1.0f), g(4, 0.5f);
  opt.step(uvp::Span<float>(p), uvp::Span<const float>(g));
  std::vector<float> p5(5, 1.0f), g5(5, 0.5f);
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.step(uvp::Span<float>(p5), uvp::Span<const float>(g5)), uvp::shape_error,
                               "uvp::Adagrad::step: params has size 5, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(opt.update(uvp::Span<float>(p).subspan(1, 3), uvp::Span<const float>(g).subspan(1, 3), 2),
                               uvp::out_of_range_error, "uvp::Adagrad::update: slice [2, 5) is outside the state of size 4");
  CHECK(opt.steps() == 1);
}
