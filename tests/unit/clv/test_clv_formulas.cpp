// SPDX-License-Identifier: Apache-2.0
// Tests of the closed-form CLV formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/clv/formulas.hpp"

TEST_CASE("simple_clv is value x frequency x periods") {
  CHECK(uvp::simple_clv(50, 2, 3) == 300);
  CHECK(uvp::simple_clv(0, 2, 3) == 0);
}

TEST_CASE("retention_clv is m r / (1 + d - r), the limit of finite_horizon_clv") {
  CHECK(uvp::retention_clv(100, 0.8, 0.1) == doctest::Approx(100 * 0.8 / 0.3).epsilon(1e-15));
  CHECK(uvp::retention_clv(100, 1.0, 0.05) == doctest::Approx(2000).epsilon(1e-15));
  CHECK(uvp::retention_clv(100, 0.0, 0.05) == 0);
  // The explicit sum over 5 periods.
  double sum = 0;
  for (int t = 1; t <= 5; ++t) sum += 100 * std::pow(0.8, t) / std::pow(1.1, t);
  CHECK(uvp::finite_horizon_clv(100, 0.8, 0.1, 5) == doctest::Approx(sum).epsilon(1e-14));
  CHECK(uvp::finite_horizon_clv(100, 0.8, 0.1, 0) == 0);
  CHECK(uvp::finite_horizon_clv(100, 0.8, 0.1, 100000) ==
        doctest::Approx(uvp::retention_clv(100, 0.8, 0.1)).epsilon(1e-14));
  CHECK(uvp::finite_horizon_clv(10, 1.0, 0.0, 7) == 70);  // no churn, no discount
  // r / (1 + d) within 1e-12 of 1 keeps its precision (no 0/0).
  const double near = uvp::finite_horizon_clv(1, 1 - 1e-12, 0.0, 3);
  CHECK(near == doctest::Approx(3 - 6e-12).epsilon(1e-13));
}

TEST_CASE("discounted_value is the NPV of end-of-period cash flows") {
  const std::vector<double> cf = {100, 100, 100};
  CHECK(uvp::discounted_value(cf, 0.1) == doctest::Approx(100 / 1.1 + 100 / 1.21 + 100 / 1.331).epsilon(1e-15));
  CHECK(uvp::discounted_value(cf, 0.0) == 300);
  CHECK(uvp::discounted_value(std::vector<double>{}, 0.1) == 0);
}

TEST_CASE("formula inputs are validated") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simple_clv(-1, 2, 3), uvp::invalid_argument,
                               "uvp::simple_clv: value_per_purchase must be finite and >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simple_clv(1, std::nan(""), 3), uvp::invalid_argument,
                               "purchases_per_period must be finite and >= 0, got nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simple_clv(1, 2, INFINITY), uvp::invalid_argument, "periods must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::retention_clv(10, 1.2, 0.1), uvp::invalid_argument,
                               "uvp::retention_clv: retention must be in [0, 1], got 1.2");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::retention_clv(10, 1.0, 0.0), uvp::invalid_argument,
                               "retention = 1 with discount_rate = 0 gives an infinite value");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::retention_clv(10, 0.5, -0.1), uvp::invalid_argument,
                               "discount_rate must be finite and >= 0, got -0.1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::retention_clv(-10, 0.5, 0.1), uvp::invalid_argument,
                               "margin must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::finite_horizon_clv(10, 0.5, 0.1, -1), uvp::invalid_argument,
                               "uvp::finite_horizon_clv: periods must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::finite_horizon_clv(10, std::nan(""), 0.1, 2), uvp::invalid_argument,
                               "retention must be in [0, 1], got nan");
  const std::vector<double> cf = {1, std::nan("")};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::discounted_value(cf, 0.1), uvp::invalid_argument,
                               "uvp::discounted_value: cash_flows has a non-finite value (nan) at flat index 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::discounted_value(std::vector<double>{1.0}, -1.0), uvp::invalid_argument,
                               "discount_rate must be finite and > -1, got -1");
}
