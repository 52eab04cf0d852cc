// SPDX-License-Identifier: Apache-2.0
// Tests of the discounted CLV that combines BG/NBD and Gamma-Gamma (lifetimes' customer_lifetime_value).
#include <doctest/doctest.h>

#include <cmath>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/core/parallel.hpp"

namespace {
const uvp::BgNbd bg({0.243, 4.414, 0.793, 2.426});
const uvp::GammaGamma gg({6.25, 3.74, 15.44});
double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
}  // namespace

TEST_CASE("12-month CLV matches lifetimes' discounted sum evaluated with mpmath") {
  // id x t_x T zbar CLV (weeks, 4.345 weeks a month, 1% a month).
  const auto rows = clv_test::fixture_rows("clv/clv_predictions.txt", 6);
  uvp::Vector<double> x(static_cast<Eigen::Index>(rows.size())), tx(x.size()), T(x.size()), m(x.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    x[k] = rows[i][1], tx[k] = rows[i][2], T[k] = rows[i][3], m[k] = rows[i][4];
  }
  const auto clv = uvp::customer_lifetime_value(bg, gg, x, tx, T, m);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(rows[i][0]);
    CHECK(rel(clv[static_cast<Eigen::Index>(i)], rows[i][5]) < 1e-10);
  }
}

TEST_CASE("score_customers agrees with the single-model predictions and not with the thread count") {
  const auto d = clv_test::read_cdnow_summary();
  uvp::ClvOptions o;
  o.months = 6;
  o.discount_rate = 0.02;
  const auto s1 = [&] {
    uvp::ThreadCountGuard one(1);
    return uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o);
  }();
  const auto s2 = [&] {
    uvp::ThreadCountGuard two(uvp::has_openmp ? 2 : 1);
    return uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o);
  }();
  CHECK(s1.clv == s2.clv);
  CHECK(s1.probability_alive == bg.probability_alive(d.x, d.tx, d.T));
  CHECK(s1.expected_average_value == gg.conditional_expected_average_value(d.x, d.zbar));
  const auto e6 = bg.conditional_expected_purchases(6 * 4.345, d.x, d.tx, d.T);
  CHECK(uvp_test::rel_error(s1.expected_purchases, e6) < 1e-14);
  // Explicit sum for one customer.
  const double x = d.x[5], tx = d.tx[5], T = d.T[5];
  double want = 0;
  for (int i = 1; i <= 6; ++i)
    want += (bg.conditional_expected_purchases(i * 4.345, x, tx, T) -
             bg.conditional_expected_purchases((i - 1) * 4.345, x, tx, T)) /
            std::pow(1.02, i);
  want *= gg.conditional_expected_average_value(d.x[5], d.zbar[5]);
  CHECK(rel(s1.clv[5], want) < 1e-12);
  // With no discount, CLV = expected purchases x expected spend.
  o.discount_rate = 0;
  const auto s0 = uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o);
  CHECK(uvp_test::rel_error(s0.clv, s0.expected_purchases.cwiseProduct(s0.expected_average_value)) < 1e-14);
}

TEST_CASE("CLV does not depend on the time unit when the month is the same length") {
  // Weeks -> days: recency and T x 7, alpha x 7; a month of 4.345 weeks = 30.415 days.
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd bg_days({0.243, 4.414 * 7, 0.793, 2.426});
  uvp::ClvOptions weeks, days;
  days.time_unit = uvp::TimeUnit::day;
  days.periods_per_month = 4.345 * 7;
  CHECK(uvp::periods_per_month(weeks) == 4.345);
  CHECK(uvp::periods_per_month(uvp::ClvOptions{12, 0.01, uvp::TimeUnit::day, 0}) == 30);
  const auto cw = uvp::customer_lifetime_value(bg, gg, d.x, d.tx, d.T, d.zbar, weeks);
  const uvp::Vector<double> tx7 = d.tx * 7, T7 = d.T * 7;
  const auto cd = uvp::customer_lifetime_value(bg_days, gg, d.x, tx7, T7, d.zbar, days);
  CHECK(uvp_test::rel_error(cw, cd) < 1e-12);
}

TEST_CASE("CLV inputs are validated") {
  const auto d = clv_test::read_cdnow_summary();
  uvp::ClvOptions o;
  o.months = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o), uvp::invalid_argument,
                               "uvp::score_customers: months must be >= 1, got 0");
  o = {};
  o.discount_rate = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o), uvp::invalid_argument,
                               "discount_rate must be finite and > -1, got -1");
  o = {};
  o.periods_per_month = NAN;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::score_customers(bg, gg, d.x, d.tx, d.T, d.zbar, o), uvp::invalid_argument,
                               "periods_per_month must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::customer_lifetime_value(uvp::BgNbd(), gg, d.x, d.tx, d.T, d.zbar),
                               uvp::not_fitted_error, "uvp::score_customers: the BgNbd model is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::customer_lifetime_value(bg, uvp::GammaGamma(), d.x, d.tx, d.T, d.zbar),
                               uvp::not_fitted_error, "the GammaGamma model is not fitted");
  const uvp::Vector<double> m = d.zbar.head(10);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::customer_lifetime_value(bg, gg, d.x, d.tx, d.T, m), uvp::shape_error,
                               "uvp::score_customers: monetary_value has size 10, expected 2357");
  uvp::Vector<double> T = d.T;
  T[4] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::customer_lifetime_value(bg, gg, d.x, d.tx, T, d.zbar), uvp::invalid_argument,
                               "uvp::score_customers: T[4] = -1 must be finite and >= 0");
  uvp::Vector<double> mz = d.zbar;
  mz[2] = 5;  // customer 3 has x = 0
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::customer_lifetime_value(bg, gg, d.x, d.tx, d.T, mz), uvp::invalid_argument,
                               "monetary_value[2] = 5 but frequency[2] = 0");
}
