// SPDX-License-Identifier: Apache-2.0
// Tests of the BG/NBD model: the published CDNOW fit, the gradient, predictions against mpmath, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <tuple>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/core/parallel.hpp"

using uvp::BgNbd;
using uvp::BgNbdParams;

namespace {
const BgNbdParams published{0.243, 4.414, 0.793, 2.426};

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
}  // namespace

TEST_CASE("BG/NBD on CDNOW reproduces Fader, Hardie & Lee (2005) and scipy's optimum") {
  const auto d = clv_test::read_cdnow_summary();
  BgNbd model;
  const auto res = model.fit(d.x, d.tx, d.T);
  CHECK(res.converged);
  CHECK(res.warnings.empty());
  CHECK(res.customers == 2357);
  const auto p = model.params();
  // Published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
  CHECK(std::abs(p.r - 0.243) < 5e-4);
  CHECK(std::abs(p.alpha - 4.414) < 5e-4);
  CHECK(std::abs(p.a - 0.793) < 5e-4);
  CHECK(std::abs(p.b - 2.426) < 5e-4);
  CHECK(std::abs(res.log_likelihood - (-9582.4)) < 0.05);
  CHECK(res.objective == doctest::Approx(-res.log_likelihood / 2357).epsilon(1e-14));
  CHECK(model.log_likelihood(d.x, d.tx, d.T) == doctest::Approx(res.log_likelihood).epsilon(1e-14));
  // scipy (Nelder-Mead + BFGS) on the same likelihood: tests/fixtures/clv/bgnbd_mle.txt.
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/bgnbd_mle.txt"));
  CHECK(rel(p.r, ref[0]) < 2e-6);
  CHECK(rel(p.alpha, ref[1]) < 2e-6);
  CHECK(rel(p.a, ref[2]) < 2e-6);
  CHECK(rel(p.b, ref[3]) < 2e-6);
  CHECK(res.log_likelihood >= ref[4] - 1e-8);  // at least as good as scipy's optimum
  CHECK(res.log_likelihood == doctest::Approx(ref[4]).epsilon(1e-11));
}

TEST_CASE("BG/NBD on the summary built from CDNOW_sample.txt also matches the published values") {
  const auto log = uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt"));
  const auto s = uvp::summary_from_transactions(log, uvp::Date::from_ymd(1997, 9, 30));
  BgNbd model;
  const auto res = model.fit(s);
  CHECK(res.converged);
  CHECK(std::abs(model.params().r - 0.243) < 5e-4);
  CHECK(std::abs(model.params().alpha - 4.414) < 5e-4);
  CHECK(std::abs(model.params().a - 0.793) < 5e-4);
  CHECK(std::abs(model.params().b - 2.426) < 5e-4);
  CHECK(std::abs(res.log_likelihood - (-9582.4)) < 0.05);
}

TEST_CASE("the fit converges to the same optimum from several starting points") {
  const auto d = clv_test::read_cdnow_summary();
  BgNbd base;
  base.fit(d.x, d.tx, d.T);
  const auto want = base.params();
  const BgNbdParams starts[] = {
      {1, 1, 1, 1}, {0.01, 0.1, 0.05, 0.05}, {5, 100, 5, 20}, {0.5, 30, 3, 0.3}, {2, 0.5, 0.2, 8}};
  for (const auto& s : starts) {
    CAPTURE(s.r);
    CAPTURE(s.alpha);
    uvp::BgNbdFitOptions o;
    o.initial = s;
    BgNbd m;
    const auto res = m.fit(d.x, d.tx, d.T, o);
    CHECK(res.converged);
    const auto p = m.params();
    CHECK(rel(p.r, want.r) < 1e-6);
    CHECK(rel(p.alpha, want.alpha) < 1e-6);
    CHECK(rel(p.a, want.a) < 1e-6);
    CHECK(rel(p.b, want.b) < 1e-6);
  }
}

TEST_CASE("the analytic gradient matches central differences") {
  const auto d = clv_test::read_cdnow_summary();
  const BgNbdParams points[] = {published, {1.3, 0.7, 2.5, 0.4}, {0.05, 20, 0.3, 9}};
  for (const auto& p : points) {
    Eigen::Vector4d g;
    uvp::bgnbd_log_likelihood(p, d.x, d.tx, d.T, &g);
    Eigen::Vector4d fd;
    for (int k = 0; k < 4; ++k) {
      BgNbdParams hi = p;
      double* ph[4] = {&hi.r, &hi.alpha, &hi.a, &hi.b};
      // Five-point stencil: truncation O(h^4), so h can be large enough to keep the rounding of the
      // ~1e4-sized sums small.
      const double h = 1e-4 * *ph[k];
      auto at = [&](double step) {
        BgNbdParams q = p;
        double* pq[4] = {&q.r, &q.alpha, &q.a, &q.b};
        *pq[k] += step;
        return uvp::bgnbd_log_likelihood(q, d.x, d.tx, d.T);
      };
      fd[k] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    }
    CAPTURE(g.transpose());
    CAPTURE(fd.transpose());
    CHECK(uvp_test::rel_error(g, fd) < 1e-7);
  }
}

TEST_CASE("predictions at the published parameters match the formulas evaluated with mpmath") {
  const BgNbd m(published);
  // id x t_x T E[Y(1)] E[Y(39)] E[Y(52)] P(alive)
  for (const auto& row : clv_test::fixture_rows("clv/bgnbd_predictions.txt", 8)) {
    CAPTURE(row[0]);
    const double x = row[1], tx = row[2], T = row[3];
    CHECK(rel(m.conditional_expected_purchases(1, x, tx, T), row[4]) < 1e-11);
    CHECK(rel(m.conditional_expected_purchases(39, x, tx, T), row[5]) < 1e-11);
    CHECK(rel(m.conditional_expected_purchases(52, x, tx, T), row[6]) < 1e-11);
    CHECK(rel(m.probability_alive(x, tx, T), row[7]) < 1e-12);
  }
  // t x t_x T E P(alive): long horizons and extreme histories.
  for (const auto& row : clv_test::fixture_rows("clv/bgnbd_extreme.txt", 6)) {
    CAPTURE(row[0]);
    CAPTURE(row[1]);
    CHECK(rel(m.conditional_expected_purchases(row[0], row[1], row[2], row[3]), row[4]) < 1e-9);
    CHECK(rel(m.probability_alive(row[1], row[2], row[3]), row[5]) < 1e-11);
  }
  // Parameters far from CDNOW's (a = 61445 needs the untransformed series).
  for (const auto& row : clv_test::fixture_rows("clv/bgnbd_unusual.txt", 10)) {
    CAPTURE(row[2]);
    const BgNbd u({row[0], row[1], row[2], row[3]});
    CHECK(rel(u.conditional_expected_purchases(row[4], row[5], row[6], row[7]), row[8]) < 1e-9);
    CHECK(rel(u.probability_alive(row[5], row[6], row[7]), row[9]) < 1e-11);
    double many[3];
    const double ts[3] = {row[4] / 3, row[4] / 2, row[4]};
    uvp::detail::bgnbd_conditional_expected({row[0], row[1], row[2], row[3]}, ts, 3, row[5], row[6], row[7], many);
    CHECK(rel(many[2], row[8]) < 1e-9);  // the multi-horizon path agrees
  }
  for (const auto& row : clv_test::fixture_rows("clv/bgnbd_new_customer.txt", 2)) {
    CAPTURE(row[0]);
    CHECK(rel(m.expected_purchases(row[0]), row[1]) < 1e-11);
  }
  CHECK(m.expected_purchases(0) == 0);
  CHECK(m.conditional_expected_purchases(0, 3, 20, 30) == 0);
}

TEST_CASE("vector predictions equal the scalar ones and do not depend on the thread count") {
  const auto d = clv_test::read_cdnow_summary();
  const BgNbd m(published);
  const auto e1 = [&] {
    uvp::ThreadCountGuard one(1);
    return m.conditional_expected_purchases(39, d.x, d.tx, d.T);
  }();
  const auto e2 = [&] {
    uvp::ThreadCountGuard two(uvp::has_openmp ? 2 : 1);
    return m.conditional_expected_purchases(39, d.x, d.tx, d.T);
  }();
  CHECK(e1 == e2);
  const auto pa = m.probability_alive(d.x, d.tx, d.T);
  for (Eigen::Index i = 0; i < d.x.size(); i += 97) {
    CHECK(e1[i] == m.conditional_expected_purchases(39, d.x[i], d.tx[i], d.T[i]));
    CHECK(pa[i] == m.probability_alive(d.x[i], d.tx[i], d.T[i]));
  }
  // Sum of the predicted holdout purchases over all customers, against mpmath.
  const auto total = uvp_test::read_numbers(uvp_test::fixture_path("clv/bgnbd_holdout_sum.txt"));
  CHECK(rel(e1.sum(), total[0]) < 1e-11);

  BgNbd f1, f2;
  {
    uvp::ThreadCountGuard one(1);
    f1.fit(d.x, d.tx, d.T);
  }
  {
    uvp::ThreadCountGuard two(uvp::has_openmp ? 2 : 1);
    f2.fit(d.x, d.tx, d.T);
  }
  CHECK(f1.params().r == f2.params().r);
  CHECK(f1.params().b == f2.params().b);
}

TEST_CASE("a = 1, a removable singularity of the expectation, is interpolated smoothly") {
  const BgNbd lo({0.3, 5, 1 - 2e-4, 2}), mid({0.3, 5, 1, 2}), hi({0.3, 5, 1 + 2e-4, 2}), near({0.3, 5, 1 + 4e-6, 2});
  for (double x : {0.0, 2.0, 9.0}) {
    CAPTURE(x);
    const double tx = x > 0 ? 20 : 0;
    const double e_lo = lo.conditional_expected_purchases(30, x, tx, 35);
    const double e_hi = hi.conditional_expected_purchases(30, x, tx, 35);
    const double e_mid = mid.conditional_expected_purchases(30, x, tx, 35);
    // E is smooth in a: inside the interpolation zone it follows the chord through a = 1 -+ 2e-4.
    const double e_near = near.conditional_expected_purchases(30, x, tx, 35);
    const double slope = (e_hi - e_lo) / 4e-4;
    CHECK(std::isfinite(e_mid));
    CHECK(std::abs(e_mid - (e_lo + 2e-4 * slope)) < 1e-7 * e_mid);
    CHECK(std::abs(e_near - (e_lo + (2e-4 + 4e-6) * slope)) < 1e-7 * e_mid);
  }
}

TEST_CASE("the penalty shrinks the parameters; weights reproduce the unweighted fit on compressed data") {
  const auto d = clv_test::read_cdnow_summary();
  BgNbd plain, pen;
  const auto r0 = plain.fit(d.x, d.tx, d.T);
  uvp::BgNbdFitOptions o;
  o.penalizer = 0.01;
  const auto r1 = pen.fit(d.x, d.tx, d.T, o);
  CHECK(r1.converged);
  auto sq = [](const BgNbdParams& p) { return p.r * p.r + p.alpha * p.alpha + p.a * p.a + p.b * p.b; };
  CHECK(sq(pen.params()) < sq(plain.params()));
  CHECK(r1.log_likelihood < r0.log_likelihood);
  CHECK(r1.objective == doctest::Approx(-r1.log_likelihood / 2357 + 0.01 * sq(pen.params())).epsilon(1e-13));

  // Compress to distinct (x, t_x, T) patterns with counts.
  std::map<std::tuple<double, double, double>, double> patterns;
  for (Eigen::Index i = 0; i < d.x.size(); ++i) patterns[{d.x[i], d.tx[i], d.T[i]}] += 1;
  uvp::Vector<double> x(static_cast<Eigen::Index>(patterns.size())), tx(x.size()), T(x.size()), w(x.size());
  Eigen::Index k = 0;
  for (const auto& [key, count] : patterns) {
    std::tie(x[k], tx[k], T[k]) = key;
    w[k++] = count;
  }
  CHECK(x.size() < 2357);
  BgNbd weighted;
  const auto rw = weighted.fit(x, tx, T, w);
  CHECK(rw.log_likelihood == doctest::Approx(r0.log_likelihood).epsilon(1e-11));
  CHECK(rel(weighted.params().r, plain.params().r) < 1e-6);
  CHECK(rel(weighted.params().b, plain.params().b) < 1e-6);
}

TEST_CASE("bad BG/NBD inputs throw uvp errors naming the argument and the value") {
  using V = uvp::Vector<double>;
  V x(3), tx(3), T(3);
  x << 0, 2, 1;
  tx << 0, 5, 3;
  T << 10, 10, 10;
  BgNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.params(), uvp::not_fitted_error, "uvp::BgNbd::params: the model is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.probability_alive(1, 1, 2), uvp::not_fitted_error, "not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.expected_purchases(1), uvp::not_fitted_error, "uvp::BgNbd::expected_purchases");
  auto bad = [&](const V& a, const V& b, const V& c, const char* msg) {
    BgNbd mm;
    UVP_CHECK_THROWS_WITH_SUBSTR(mm.fit(a, b, c), uvp::invalid_argument, msg);
  };
  V y = x;
  y[1] = std::nan("");
  bad(y, tx, T, "uvp::BgNbd::fit: frequency[1] = nan must be a whole number >= 0");
  y = x;
  y[2] = -1;
  bad(y, tx, T, "frequency[2] = -1 must be a whole number >= 0");
  y = x;
  y[2] = 1.5;
  bad(y, tx, T, "frequency[2] = 1.5 must be a whole number >= 0");
  V r2 = tx;
  r2[1] = -0.5;
  bad(x, r2, T, "recency[1] = -0.5 must be finite and >= 0");
  r2 = tx;
  r2[1] = 12;
  bad(x, r2, T, "recency[1] = 12 exceeds T[1] = 10");
  r2 = tx;
  r2[0] = 1;
  bad(x, r2, T, "recency[0] = 1 but frequency[0] = 0");
  V T2 = T;
  T2[2] = INFINITY;
  bad(x, tx, T2, "T[2] = inf must be finite and >= 0");
  bad(V(0), V(0), V(0), "uvp::BgNbd::fit: frequency is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, V(2)), uvp::shape_error, "uvp::BgNbd::fit: T has size 2, expected 3");
  V w(3);
  w << 1, -1, 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, w), uvp::invalid_argument, "weights[1] = -1 must be finite and >= 0");
  w << 0, 0, 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, w), uvp::invalid_argument, "weights sum to 0");
  uvp::BgNbdFitOptions o;
  o.penalizer = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, o), uvp::invalid_argument, "penalizer must be finite and >= 0, got -1");
  o = {};
  o.initial = BgNbdParams{1, 0, 1, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, o), uvp::invalid_argument,
                               "parameter alpha must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(BgNbd({-1, 1, 1, 1}), uvp::invalid_argument,
                               "uvp::BgNbd::BgNbd: parameter r must be finite and > 0, got -1");
  const BgNbd fitted(published);
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.conditional_expected_purchases(-1, 1, 1, 2), uvp::invalid_argument,
                               "uvp::BgNbd::conditional_expected_purchases: t must be finite and >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.conditional_expected_purchases(1, 1, 3, 2), uvp::invalid_argument,
                               "recency[0] = 3 exceeds T[0] = 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.probability_alive(x, tx, V(2)), uvp::shape_error, "T has size 2, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bgnbd_log_likelihood(published, x, r2, T), uvp::invalid_argument,
                               "uvp::bgnbd_log_likelihood: recency[0] = 1 but frequency[0] = 0");
}
