// SPDX-License-Identifier: Apache-2.0
// Tests of parameter-draw intervals: reproducibility, the draw distribution, coverage sanity, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/intervals.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/core/parallel.hpp"

namespace {

struct CdnowFits {
  clv_test::Cdnow d;
  uvp::Vector<double> x, tx, T, m;  // the first 400 customers: predictions cost per customer and draw
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  uvp::ClvFitResult bg_fit, gg_fit;
};

const CdnowFits& cdnow_fits() {
  static const CdnowFits f = [] {
    CdnowFits c;
    c.d = clv_test::read_cdnow_summary();
    c.bg_fit = c.bg.fit(c.d.x, c.d.tx, c.d.T);
    c.gg_fit = c.gg.fit(c.d.x, c.d.zbar);
    c.x = c.d.x.head(400), c.tx = c.d.tx.head(400), c.T = c.d.T.head(400), c.m = c.d.zbar.head(400);
    return c;
  }();
  return f;
}

bool same_bits(const uvp::PredictionIntervals& a, const uvp::PredictionIntervals& b) {
  return (a.estimate.array() == b.estimate.array()).all() && (a.mean.array() == b.mean.array()).all() &&
         (a.lower.array() == b.lower.array()).all() && (a.upper.array() == b.upper.array()).all() &&
         a.aggregate_mean == b.aggregate_mean && a.aggregate_lower == b.aggregate_lower &&
         a.aggregate_upper == b.aggregate_upper;
}

}  // namespace

TEST_CASE("the draws follow the asymptotic normal of the log-parameter") {
  // One parameter theta = 2 with standard error 0.3: log theta ~ N(log 2, (0.3/2)^2), and the
  // "prediction" of customer i is (i + 1) theta, so its quantiles are known in closed form.
  uvp::ClvFitResult fit;
  fit.parameter_names = {"theta"};
  fit.parameters = {2.0};
  fit.standard_errors = {0.3};
  fit.covariance = {0.09};
  uvp::IntervalOptions o;
  o.draws = 20000;
  o.level = 0.8;
  const auto iv = uvp::parameter_draw_intervals(fit, 3, [](const double* th, uvp::index b, uvp::index e, double* out) {
    for (uvp::index i = b; i < e; ++i) out[i - b] = static_cast<double>(i + 1) * th[0];
  }, o);
  const double sigma = 0.15, z = 1.2815515655446004;  // Phi^-1(0.9)
  for (int i = 0; i < 3; ++i) {
    CHECK(iv.estimate[i] == 2.0 * (i + 1));
    CHECK(iv.lower[i] == doctest::Approx((i + 1) * 2 * std::exp(-z * sigma)).epsilon(0.01));
    CHECK(iv.upper[i] == doctest::Approx((i + 1) * 2 * std::exp(z * sigma)).epsilon(0.01));
    CHECK(iv.mean[i] == doctest::Approx((i + 1) * 2 * std::exp(sigma * sigma / 2)).epsilon(0.01));
  }
  // the aggregate is 6 theta: its interval is 6 times theta's (the customers share the draw)
  CHECK(iv.aggregate_estimate == 12.0);
  CHECK(iv.aggregate_lower == doctest::Approx(6 * iv.lower[0]).epsilon(1e-12));
  CHECK(iv.aggregate_upper == doctest::Approx(6 * iv.upper[0]).epsilon(1e-12));
  CHECK(iv.draws == 20000);
  CHECK(iv.level == 0.8);
}

TEST_CASE("BG/NBD expected-purchase intervals are reproducible bit for bit, whatever the thread count") {
  const auto& c = cdnow_fits();
  REQUIRE(c.bg_fit.covariance.size() == 16);
  uvp::IntervalOptions o;
  o.draws = 100;
  o.seed = 7;
  uvp::PredictionIntervals one, two, again;
  {
    uvp::ThreadCountGuard g(1);
    one = uvp::bgnbd_expected_purchases_intervals(c.bg_fit, 39, c.x, c.tx, c.T, o);
  }
  {
    uvp::ThreadCountGuard g(2);
    two = uvp::bgnbd_expected_purchases_intervals(c.bg_fit, 39, c.x, c.tx, c.T, o);
    again = uvp::bgnbd_expected_purchases_intervals(c.bg_fit, 39, c.x, c.tx, c.T, o);
  }
  CHECK(same_bits(one, two));
  CHECK(same_bits(two, again));
  o.seed = 8;
  const auto other = uvp::bgnbd_expected_purchases_intervals(c.bg_fit, 39, c.x, c.tx, c.T, o);
  CHECK(other.aggregate_lower != one.aggregate_lower);
  // the estimate is the model's own prediction
  const auto expected = c.bg.conditional_expected_purchases(39, c.x, c.tx, c.T);
  CHECK((one.estimate.array() == expected.array()).all());
}

TEST_CASE("intervals contain the estimate and shrink with more data") {
  const auto& c = cdnow_fits();
  uvp::IntervalOptions o;
  o.draws = 200;
  const auto iv = uvp::bgnbd_expected_purchases_intervals(c.bg_fit, 39, c.x, c.tx, c.T, o);
  CHECK((iv.lower.array() <= iv.estimate.array()).all());
  CHECK((iv.estimate.array() <= iv.upper.array()).all());
  CHECK((iv.lower.array() < iv.upper.array()).all());
  CHECK(iv.aggregate_lower < iv.aggregate_estimate);
  CHECK(iv.aggregate_estimate < iv.aggregate_upper);

  // Four copies of every customer (weights 4): the same estimate, half the standard errors, so
  // (with the same seed, hence the same normal draws) intervals about half as wide.
  const uvp::Vector<double> w = uvp::Vector<double>::Constant(c.d.x.size(), 4.0);
  uvp::BgNbd bigger;
  const auto fit4 = bigger.fit(c.d.x, c.d.tx, c.d.T, w);
  REQUIRE(fit4.standard_errors.size() == 4);
  CHECK(fit4.standard_errors[0] == doctest::Approx(c.bg_fit.standard_errors[0] / 2).epsilon(1e-4));
  const auto iv4 = uvp::bgnbd_expected_purchases_intervals(fit4, 39, c.x, c.tx, c.T, o);
  const double ratio = (iv4.aggregate_upper - iv4.aggregate_lower) / (iv.aggregate_upper - iv.aggregate_lower);
  CHECK(ratio == doctest::Approx(0.5).epsilon(0.05));
  CHECK(((iv4.upper - iv4.lower).array() < (iv.upper - iv.lower).array()).all());
}

TEST_CASE("CLV intervals draw BG/NBD and Gamma-Gamma parameters together") {
  const auto& c = cdnow_fits();
  uvp::IntervalOptions o;
  o.draws = 100;
  o.level = 0.95;
  const uvp::Vector<double> x = c.x.head(150), tx = c.tx.head(150), T = c.T.head(150), m = c.m.head(150);
  const auto iv = uvp::clv_intervals(c.bg_fit, c.gg_fit, x, tx, T, m, {}, o);
  const auto clv = uvp::customer_lifetime_value(c.bg, c.gg, x, tx, T, m);
  for (Eigen::Index i = 0; i < clv.size(); ++i) CHECK(iv.estimate[i] == doctest::Approx(clv[i]).epsilon(1e-13));
  CHECK((iv.lower.array() <= iv.estimate.array()).all());
  CHECK((iv.estimate.array() <= iv.upper.array()).all());
  CHECK(iv.aggregate_lower < iv.aggregate_estimate);
  CHECK(iv.aggregate_estimate < iv.aggregate_upper);
}

TEST_CASE("several fits are drawn jointly, each from its own covariance") {
  const auto& c = cdnow_fits();
  // predictions: BG/NBD's r and Gamma-Gamma's p, the first and fifth entries of the joint vector
  uvp::IntervalOptions o;
  o.draws = 8000;
  o.level = 0.9;
  const auto iv = uvp::parameter_draw_intervals(
      {&c.bg_fit, &c.gg_fit}, 2,
      [](const double* th, uvp::index b, uvp::index e, double* out) {
        for (uvp::index i = b; i < e; ++i) out[i - b] = i == 0 ? th[0] : th[4];
      },
      o);
  const double z = 1.6448536269514722;  // Phi^-1(0.95)
  const double est[2] = {c.bg_fit.parameters[0], c.gg_fit.parameters[0]};
  const double se[2] = {c.bg_fit.standard_errors[0], c.gg_fit.standard_errors[0]};
  for (int i = 0; i < 2; ++i) {
    const double sl = se[i] / est[i];  // standard error of the log-parameter
    CHECK(iv.estimate[i] == est[i]);
    CHECK(iv.lower[i] == doctest::Approx(est[i] * std::exp(-z * sl)).epsilon(0.01));
    CHECK(iv.upper[i] == doctest::Approx(est[i] * std::exp(z * sl)).epsilon(0.01));
  }
}

TEST_CASE("a Pareto/NBD fit plugs into the generic intervals") {
  const auto& c = cdnow_fits();
  uvp::ParetoNbd model;
  const auto fit = model.fit(c.d.x, c.d.tx, c.d.T);
  REQUIRE(fit.covariance.size() == 16);
  auto predict = [&c](const double* th, uvp::index b, uvp::index e, double* out) {
    const uvp::ParetoNbdParams p{th[0], th[1], th[2], th[3]};
    for (uvp::index i = b; i < e; ++i)
      out[i - b] = uvp::detail::pnbd_conditional_expected(p, 39, c.x[i], c.tx[i], c.T[i]);
  };
  uvp::IntervalOptions o;
  o.draws = 100;
  const auto iv = uvp::parameter_draw_intervals(fit, c.x.size(), predict, o);
  for (Eigen::Index i : {0, 100, 399})
    CHECK(iv.estimate[i] == doctest::Approx(model.conditional_expected_purchases(39, c.x[i], c.tx[i], c.T[i])));
  CHECK((iv.lower.array() <= iv.estimate.array()).all());
  CHECK((iv.estimate.array() <= iv.upper.array()).all());
  CHECK(iv.aggregate_lower < iv.aggregate_estimate);
  CHECK(iv.aggregate_estimate < iv.aggregate_upper);
  uvp::ThreadCountGuard g(1);
  CHECK(same_bits(iv, uvp::parameter_draw_intervals(fit, c.x.size(), predict, o)));
}

TEST_CASE("interval functions reject bad input, naming it") {
  const auto& c = cdnow_fits();
  auto with = [](double level, int draws) {
    uvp::IntervalOptions o;
    o.level = level;
    o.draws = draws;
    return o;
  };
  auto bg = [&](const uvp::ClvFitResult& fit, const uvp::IntervalOptions& o) {
    return uvp::bgnbd_expected_purchases_intervals(fit, 10, c.x, c.tx, c.T, o);
  };
  CHECK_THROWS_WITH_AS(bg(c.bg_fit, with(0, 10)),
                       doctest::Contains("uvp::bgnbd_expected_purchases_intervals: level must be in (0, 1), got 0"),
                       uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(bg(c.bg_fit, with(1, 10)), doctest::Contains("level must be in (0, 1), got 1"),
                       uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(bg(c.bg_fit, with(std::nan(""), 10)), doctest::Contains("level must be in (0, 1)"),
                       uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(bg(c.bg_fit, with(0.9, 1)), doctest::Contains("draws must be >= 2, got 1"),
                       uvp::invalid_argument);
  uvp::ClvFitResult no_cov = c.bg_fit;
  no_cov.covariance.clear();
  no_cov.standard_errors.clear();
  CHECK_THROWS_WITH_AS(bg(no_cov, with(0.9, 10)),
                       doctest::Contains("uvp::bgnbd_expected_purchases_intervals: fit has no covariance"),
                       uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(bg(c.gg_fit, with(0.9, 10)), doctest::Contains("fit has 3 parameters, expected the 4"),
                       uvp::invalid_argument);
  uvp::ClvFitResult gg_no_cov = c.gg_fit;
  gg_no_cov.covariance.clear();
  CHECK_THROWS_WITH_AS(uvp::clv_intervals(c.bg_fit, gg_no_cov, c.x, c.tx, c.T, c.m),
                       doctest::Contains("uvp::clv_intervals: spend_fit has no covariance"), uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(
      uvp::bgnbd_expected_purchases_intervals(c.bg_fit, -1, c.x, c.tx, c.T),
      doctest::Contains("t must be finite and >= 0, got -1"), uvp::invalid_argument);
  auto noop = [](const double*, uvp::index, uvp::index, double*) {};
  CHECK_THROWS_WITH_AS(uvp::parameter_draw_intervals(no_cov, 5, noop),
                       doctest::Contains("uvp::parameter_draw_intervals: fits[0] has no covariance"),
                       uvp::invalid_argument);
  CHECK_THROWS_WITH_AS(uvp::parameter_draw_intervals(c.bg_fit, 0, noop),
                       doctest::Contains("customers must be >= 1, got 0"), uvp::invalid_argument);
  // a prediction that is not finite is reported, not averaged into NaN
  auto nan_at_draws = [](const double* th, uvp::index b, uvp::index e, double* out) {
    for (uvp::index i = b; i < e; ++i) out[i - b] = th[0] > 0.2426 ? std::nan("") : 1.0;
  };
  CHECK_THROWS_WITH_AS(uvp::parameter_draw_intervals(c.bg_fit, 5, nan_at_draws),
                       doctest::Contains("gives a non-finite prediction"), uvp::numeric_error);
}
