// SPDX-License-Identifier: Apache-2.0
// Tests of continuous discounting (DERT of BG/NBD, MBG/NBD, Pareto/NBD): mpmath reference, the discrete
// monthly sum's limit, the closed form, a Stieltjes sum, errors.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/core/parallel.hpp"

using uvp::ContinuousDiscounting;

namespace {
const uvp::BgNbdParams published{0.243, 4.414, 0.793, 2.426};
constexpr double inf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("BG/NBD continuously discounted expected purchases match an mpmath integral of the purchase rate") {
  const uvp::BgNbd model(published);
  // x t_x T delta H(0 = infinity) DERT, from make_se_reference.py
  const auto rows = clv_test::fixture_rows("clv/discount_bgnbd.txt", 6);
  REQUIRE(rows.size() == 20);
  for (const auto& r : rows) {
    const ContinuousDiscounting d{r[3], r[4] == 0 ? inf : r[4]};
    INFO("x = " << r[0] << ", t_x = " << r[1] << ", T = " << r[2] << ", delta = " << r[3] << ", H = " << r[4]);
    CHECK(uvp::discounted_expected_purchases(model, r[0], r[1], r[2], d) == doctest::Approx(r[5]).epsilon(1e-12));
  }
}

TEST_CASE("without discounting over a finite horizon the DERT is E[Y(H)]") {
  const uvp::BgNbd model(published);
  for (double H : {0.5, 39.0, 520.0})
    CHECK(uvp::discounted_expected_purchases(model, 4, 20, 38, {0.0, H}) ==
          doctest::Approx(model.conditional_expected_purchases(H, 4, 20, 38)).epsilon(1e-15));
  // and a horizon far past the discounting's reach changes nothing
  CHECK(uvp::discounted_expected_purchases(model, 4, 20, 38, {0.05, 1e6}) ==
        doctest::Approx(uvp::discounted_expected_purchases(model, 4, 20, 38, {0.05, inf})).epsilon(1e-14));
}

TEST_CASE("the discrete monthly CLV sum converges to the continuously discounted CLV as the step shrinks") {
  const auto d = clv_test::read_cdnow_summary();
  const Eigen::Index n = 60;
  const uvp::Vector<double> x = d.x.head(n), tx = d.tx.head(n), T = d.T.head(n), m = d.zbar.head(n);
  const uvp::BgNbd purchases(published);
  const uvp::GammaGamma spend(uvp::GammaGammaParams{6.25, 3.74, 15.44});
  const double delta = 0.01, H = 52;  // per week, weeks
  const uvp::Vector<double> continuous =
      uvp::customer_lifetime_value_continuous(purchases, spend, x, tx, T, m, {delta, H});
  double previous = inf;
  for (double step : {4.0, 1.0, 0.25}) {  // weeks per "month"
    uvp::ClvOptions o;
    o.months = static_cast<int>(H / step);
    o.periods_per_month = step;
    o.discount_rate = std::expm1(delta * step);
    const uvp::Vector<double> discrete = uvp::customer_lifetime_value(purchases, spend, x, tx, T, m, o);
    // end-of-period discounting undervalues each period by about delta * step / 2
    const double err = ((continuous - discrete).array() / continuous.array()).abs().maxCoeff();
    INFO("step " << step << ": max relative difference " << err);
    CHECK((discrete.array() <= continuous.array()).all());
    CHECK(err < delta * step);
    CHECK(err < previous / 3);  // first order in the step
    previous = err;
  }
}

TEST_CASE("Pareto/NBD: the closed-form DERT (infinite horizon) agrees with the quadrature of E[Y(t)]") {
  const uvp::ParetoNbdParams p{0.553, 10.578, 0.606, 11.669};  // published CDNOW estimates (weeks)
  const uvp::ParetoNbd model(p);
  for (double delta : {0.01, 0.15 / 52, 0.05})
    for (const auto& c : {std::array<double, 3>{0, 0, 38.86}, std::array<double, 3>{2, 30.43, 38.86},
                          std::array<double, 3>{26, 30.86, 31}, std::array<double, 3>{200, 35, 36}}) {
      INFO("delta " << delta << ", x " << c[0]);
      const double closed = uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {delta, inf});
      CHECK(closed == model.discounted_expected_transactions(delta, c[0], c[1], c[2]));
      // a horizon past the quadrature's cut (delta H = 46) is the infinite one, up to exp(-46)
      const double quad = uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {delta, 50 / delta});
      CHECK(quad == doctest::Approx(closed).epsilon(1e-10));
      CHECK(uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {0.0, 52}) ==
            doctest::Approx(model.conditional_expected_purchases(52, c[0], c[1], c[2])).epsilon(1e-14));
    }
}

TEST_CASE("MBG/NBD continuously discounted expected purchases: no discount is E[Y(H)], and a fine Stieltjes sum agrees") {
  const uvp::MbgNbd model(uvp::MbgNbdParams{0.525, 6.183, 0.891, 1.614});  // CDNOW, weeks (BTYDplus)
  const std::array<std::array<double, 3>, 4> customers{{{0, 0, 30}, {2, 10, 38}, {7, 35, 38}, {30, 37.5, 38}}};
  for (const auto& c : customers) {
    CAPTURE(c[0]);
    // rate 0: the integral of dE[Y(t)] over (0, H] is E[Y(H)].
    CHECK(uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {0.0, 52}) ==
          doctest::Approx(model.conditional_expected_purchases(52, c[0], c[1], c[2])).epsilon(1e-10));
    // sum_k exp(-delta t_k^mid) (E[Y(t_k)] - E[Y(t_{k-1})]) on a 0.01-week grid over 5 years:
    // midpoint Stieltjes sum, error O(h^2).
    const double delta = 0.002, H = 260, h = 0.01;
    double sum = 0, prev = 0;
    for (int k = 1; k * h <= H + 1e-9; ++k) {
      const double e = model.conditional_expected_purchases(k * h, c[0], c[1], c[2]);
      sum += std::exp(-delta * (k - 0.5) * h) * (e - prev);
      prev = e;
    }
    CHECK(uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {delta, H}) == doctest::Approx(sum).epsilon(1e-6));
    // Longer horizons add discounted purchases; an infinite one converges.
    const double finite = uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {delta, H});
    const double all = uvp::discounted_expected_purchases(model, c[0], c[1], c[2], {delta, inf});
    CHECK(all > finite);
    CHECK(std::isfinite(all));
  }
  const auto d = clv_test::read_cdnow_summary();
  const uvp::Vector<double> x = d.x.head(50), tx = d.tx.head(50), T = d.T.head(50);
  const uvp::Vector<double> all = uvp::discounted_expected_purchases(model, x, tx, T, {0.01, inf});
  CHECK(all[7] == uvp::discounted_expected_purchases(model, d.x[7], d.tx[7], d.T[7], {0.01, inf}));
}

TEST_CASE("discounted_expected_purchases: all customers in parallel equal the one-customer call, any thread count") {
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd model(published);
  const ContinuousDiscounting disc{0.01, inf};
  const uvp::Vector<double> x = d.x.head(300), tx = d.tx.head(300), T = d.T.head(300);
  uvp::Vector<double> one, two;
  {
    uvp::ThreadCountGuard g(1);
    one = uvp::discounted_expected_purchases(model, x, tx, T, disc);
  }
  {
    uvp::ThreadCountGuard g(2);
    two = uvp::discounted_expected_purchases(model, x, tx, T, disc);
  }
  CHECK((one.array() == two.array()).all());
  for (Eigen::Index i : {0, 17, 150, 299})
    CHECK(one[i] == uvp::discounted_expected_purchases(model, d.x[i], d.tx[i], d.T[i], disc));
  CHECK(one.allFinite());
  CHECK((one.array() > 0).all());
}

TEST_CASE("continuous discounting rejects bad input, naming it") {
  const uvp::BgNbd model(published);
  auto check = [&](const ContinuousDiscounting& d, const char* what) {
    CHECK_THROWS_WITH_AS((void)uvp::discounted_expected_purchases(model, 1, 2, 3, d), doctest::Contains(what),
                         uvp::invalid_argument);
  };
  check({-0.1, 10}, "uvp::discounted_expected_purchases: discounting.rate must be finite and >= 0, got -0.1");
  check({std::nan(""), 10}, "discounting.rate must be finite");
  check({0.1, 0}, "discounting.horizon must be > 0, got 0");
  check({0.1, std::nan("")}, "discounting.horizon must be > 0");
  check({0.0, inf}, "discounting.rate must be > 0 when the horizon is infinite");
  CHECK_THROWS_WITH_AS((void)uvp::discounted_expected_purchases(model, 1, 5, 3, {0.1, 10}),
                       doctest::Contains("recency[0] = 5 exceeds T[0] = 3"), uvp::invalid_argument);
  const uvp::BgNbd unfitted;
  CHECK_THROWS_AS((void)uvp::discounted_expected_purchases(unfitted, 1, 2, 3, {0.1, 10}), uvp::not_fitted_error);
  const uvp::GammaGamma spend(uvp::GammaGammaParams{6.25, 3.74, 15.44});
  uvp::Vector<double> f(2), r(2), T(2), m(3);
  f << 1, 2;
  r << 1, 2;
  T << 3, 3;
  m << 10, 10, 10;
  CHECK_THROWS_WITH_AS((void)uvp::customer_lifetime_value_continuous(model, spend, f, r, T, m, {0.1, 10}),
                       doctest::Contains("uvp::customer_lifetime_value_continuous: monetary_value has size 3"),
                       uvp::shape_error);
}
