// SPDX-License-Identifier: Apache-2.0
// Tests of log_hyp2f1 / log_hyperu against mpmath, the derivatives of the 2F1 series, bad arguments.
#include <doctest/doctest.h>

#include <cmath>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/hypergeometric.hpp"

TEST_CASE("log_hyp2f1 and log_hyperu match mpmath, including x = 1000, large beta and z near 1") {
  // tests/fixtures/clv/hypergeometric.txt (make_pnbd_reference.py): kind a b c z value.
  const auto rows = clv_test::fixture_rows("clv/hypergeometric.txt", 6);
  REQUIRE(rows.size() >= 25);
  for (const auto& row : rows) {
    CAPTURE(row[1]);
    CAPTURE(row[2]);
    CAPTURE(row[4]);
    const double got = row[0] == 1 ? uvp::log_hyp2f1(row[1], row[2], row[3], row[4]) : uvp::log_hyperu(row[1], row[2], row[4]);
    // ln values: relative 1e-12, or absolute 1e-13 near ln = 0; for z within 1e-4 of 1 the
    // continued fraction's thousands of steps add rounding: 1e-17 / (1 - z) relative.
    const double near_one = row[0] == 1 ? 1e-17 / (1 - row[4]) : 0.0;
    CHECK(std::abs(got - row[5]) <= (1e-12 + near_one) * std::abs(row[5]) + 1e-13);
  }
  CHECK(uvp::hyperu(1, 2, 0.5) == doctest::Approx(std::exp(uvp::log_hyperu(1, 2, 0.5))).epsilon(1e-15));
  // The c = b + 1 form is the same function with a and b exchanged.
  CHECK(uvp::log_hyp2f1(2, 1.5, 2.5, 0.4) == doctest::Approx(uvp::log_hyp2f1(1.5, 2, 2.5, 0.4)).epsilon(1e-15));
}

TEST_CASE("the derivatives of ln 2F1(1, Q; Q+P; z) match central differences on both sides of the method switch") {
  const double pts[][3] = {{3.3, 1.7, 0.5}, {3.3, 1.7, 0.69}, {3.3, 1.7, 0.71}, {0.6, 12.0, 0.95}, {1001.0, 1.6, 0.3},
                           {601.0, 2.5, 0.9999}, {1.6, 1000.5, 0.999}, {0.2, 0.3, 0.0}};
  for (const auto& p : pts) {
    CAPTURE(p[0]);
    CAPTURE(p[1]);
    CAPTURE(p[2]);
    const auto r = uvp::detail::log_hyp2f1_1qc(p[0], p[1], p[2]);
    REQUIRE(std::isfinite(r.value));
    auto f = [](double Q, double P, double z) { return uvp::detail::log_hyp2f1_1qc(Q, P, z).value; };
    const double hq = 1e-5 * p[0], hp = 1e-5 * p[1], hz = 1e-7;
    const double dQ = (f(p[0] + hq, p[1], p[2]) - f(p[0] - hq, p[1], p[2])) / (2 * hq);
    const double dP = (f(p[0], p[1] + hp, p[2]) - f(p[0], p[1] - hp, p[2])) / (2 * hp);
    CHECK(r.dQ == doctest::Approx(dQ).epsilon(1e-6).scale(1e-9));
    CHECK(r.dP == doctest::Approx(dP).epsilon(1e-6).scale(1e-9));
    if (p[2] > 0) {
      const double dz = (f(p[0], p[1], p[2] + hz) - f(p[0], p[1], p[2] - hz)) / (2 * hz);
      CHECK(r.dz == doctest::Approx(dz).epsilon(1e-5));
    } else {
      CHECK(r.dz == doctest::Approx(p[0] / (p[0] + p[1])).epsilon(1e-15));  // the first series term
    }
  }
  // The two methods agree where they meet.
  const auto s = uvp::detail::log_hyp2f1_1qc(2.7, 0.9, 0.7);
  const auto c = uvp::detail::log_hyp2f1_1qc(2.7, 0.9, std::nextafter(0.7, 1.0));
  CHECK(s.value == doctest::Approx(c.value).epsilon(1e-13));
  CHECK(s.dQ == doctest::Approx(c.dQ).epsilon(1e-11));
  CHECK(s.dP == doctest::Approx(c.dP).epsilon(1e-11));
  CHECK(s.dz == doctest::Approx(c.dz).epsilon(1e-11));
}

TEST_CASE("log_hyp2f1 and log_hyperu reject arguments outside their domain, naming them") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(1, 2, 3.5, 0.1), uvp::invalid_argument, "uvp::log_hyp2f1: c = 3.5 must equal a + 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(1, 0.5, 2, 1.0), uvp::invalid_argument, "z = 1 must be in [0, 1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(1, 0.5, 2, -0.1), uvp::invalid_argument, "z = -0.1 must be in [0, 1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(4, 6, 5, 0.1), uvp::invalid_argument, "b = 6 must be in (0, c = 5)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(-0.5, 0.2, 0.5, 0.1), uvp::invalid_argument, "a = -0.5 must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyp2f1(std::nan(""), 0.2, 0.5, 0.1), uvp::invalid_argument, "a = nan must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyperu(1, 1, 0), uvp::invalid_argument, "uvp::log_hyperu: z = 0 must be finite and > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyperu(-2, 1, 1), uvp::invalid_argument, "max(a, 1 + a - b) must be >= 1e-3");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_hyperu(INFINITY, 1, 1), uvp::invalid_argument, "a = inf must be finite");
}
