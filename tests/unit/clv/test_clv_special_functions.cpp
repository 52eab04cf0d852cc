// SPDX-License-Identifier: Apache-2.0
// Tests of the thread-safe log-gamma and digamma against mpmath (tests/fixtures/clv/special_functions.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "support/test_support.hpp"
#include "uvp/clv/special_functions.hpp"

TEST_CASE("log_gamma and digamma match mpmath to a few 1e-15") {
  const auto v = uvp_test::read_numbers(uvp_test::fixture_path("clv/special_functions.txt"));
  REQUIRE(v.size() % 3 == 0);
  REQUIRE(v.size() >= 30);
  for (std::size_t i = 0; i < v.size(); i += 3) {
    const double x = v[i], lg = v[i + 1], psi = v[i + 2];
    CAPTURE(x);
    CHECK(std::abs(uvp::detail::log_gamma(x) - lg) <= 4e-15 * std::max(1.0, std::abs(lg)));
    CHECK(std::abs(uvp::detail::digamma(x) - psi) <= 2e-15 * std::max(1.0, std::abs(psi)));
  }
}

TEST_CASE("log_gamma agrees with std::lgamma and digamma with the recurrence psi(x+1) = psi(x) + 1/x") {
  for (double x = 0.013; x < 400; x *= 1.37) {
    CAPTURE(x);
    CHECK(std::abs(uvp::detail::log_gamma(x) - std::lgamma(x)) <= 4e-15 * std::max(1.0, std::abs(std::lgamma(x))));
    const double lhs = uvp::detail::digamma(x + 1), rhs = uvp::detail::digamma(x) + 1 / x;
    CHECK(std::abs(lhs - rhs) <= 4e-15 * std::max({1.0, std::abs(rhs), 1 / x}));  // rhs cancels 1/x
    // digamma is the derivative of log_gamma (central difference, h relative to x).
    const double h = 1e-5 * x;
    const double fd = (uvp::detail::log_gamma(x + h) - uvp::detail::log_gamma(x - h)) / (2 * h);
    CHECK(std::abs(fd - uvp::detail::digamma(x)) <= 1e-6 * std::max(1.0, std::abs(fd)));
  }
}

TEST_CASE("log_gamma and digamma return NaN outside x > 0") {
  CHECK(std::isnan(uvp::detail::log_gamma(0.0)));
  CHECK(std::isnan(uvp::detail::log_gamma(-1.5)));
  CHECK(std::isnan(uvp::detail::digamma(0.0)));
  CHECK(std::isnan(uvp::detail::digamma(std::nan(""))));
}
