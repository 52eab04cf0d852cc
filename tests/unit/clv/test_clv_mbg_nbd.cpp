// SPDX-License-Identifier: Apache-2.0
// Tests of the MBG/NBD model: the CDNOW fit against scipy/mpmath and lifetimes' values, the
// gradient, predictions against mpmath, hard cases and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <tuple>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/core/parallel.hpp"

using uvp::MbgNbd;
using uvp::MbgNbdParams;
using V = uvp::Vector<double>;

namespace {
double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

MbgNbdParams reference_mle() {
  const auto v = uvp_test::read_numbers(uvp_test::fixture_path("clv/mbgnbd_mle.txt"));
  return {v[0], v[1], v[2], v[3]};
}
}  // namespace

TEST_CASE("MBG/NBD on CDNOW: the MLE of the independent scipy/mpmath script and lifetimes' values") {
  const auto d = clv_test::read_cdnow_summary();
  MbgNbd model;
  const auto res = model.fit(d.x, d.tx, d.T);
  CHECK(res.converged);
  CHECK(res.warnings.empty());
  CHECK(res.customers == 2357);
  const auto p = model.params();
  // mbgnbd_mle.txt: r alpha a b LL, then the standard errors, then LL at lifetimes' values.
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/mbgnbd_mle.txt"));
  CHECK(rel(p.r, ref[0]) < 1e-6);
  CHECK(rel(p.alpha, ref[1]) < 1e-6);
  CHECK(rel(p.a, ref[2]) < 1e-6);
  CHECK(rel(p.b, ref[3]) < 1e-6);
  CHECK(res.log_likelihood >= ref[4] - 1e-8);
  CHECK(res.log_likelihood == doctest::Approx(ref[4]).epsilon(1e-12));
  // lifetimes' test_modified_beta_geo_fitter (from BTYDplus): r = 0.525, alpha = 6.183, a = 0.891,
  // b = 1.614: the MLE rounds to them at their printed precision.
  CHECK(std::abs(p.r - 0.525) < 5e-4);
  CHECK(std::abs(p.alpha - 6.183) < 5e-4);
  CHECK(std::abs(p.a - 0.891) < 5e-4);
  CHECK(std::abs(p.b - 1.614) < 5e-4);
  CHECK(std::abs(res.log_likelihood - (-9582.13)) < 0.005);
  const MbgNbd rounded({0.525, 6.183, 0.891, 1.614});
  CHECK(rounded.log_likelihood(d.x, d.tx, d.T) == doctest::Approx(ref[9]).epsilon(1e-12));
  // Standard errors from the observed information against the script's numerical Hessian.
  REQUIRE(res.standard_errors.size() == 4);
  CHECK(res.parameter_names == std::vector<std::string>{"r", "alpha", "a", "b"});
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    CHECK(rel(res.standard_errors[static_cast<std::size_t>(k)], ref[5 + static_cast<std::size_t>(k)]) < 1e-4);
  }
}

TEST_CASE("MBG/NBD converges to the same optimum from several starting points") {
  const auto d = clv_test::read_cdnow_summary();
  const MbgNbdParams want = reference_mle();
  for (const auto& s : {MbgNbdParams{1, 1, 1, 1}, {0.01, 0.1, 0.05, 0.05}, {5, 100, 5, 20}, {2, 0.5, 0.2, 8}}) {
    CAPTURE(s.r);
    uvp::MbgNbdFitOptions o;
    o.initial = s;
    MbgNbd m;
    const auto res = m.fit(d.x, d.tx, d.T, o);
    CHECK(res.converged);
    CHECK(rel(m.params().r, want.r) < 1e-6);
    CHECK(rel(m.params().b, want.b) < 1e-6);
  }
}

TEST_CASE("the analytic MBG/NBD gradient matches central differences") {
  const auto d = clv_test::read_cdnow_summary();
  // Away from the MLE (where the gradient vanishes and only the differencing noise would be compared).
  for (const auto& p : {MbgNbdParams{0.4, 5, 0.8, 2}, MbgNbdParams{1.3, 0.7, 2.5, 0.4}, MbgNbdParams{0.05, 20, 0.3, 9}}) {
    Eigen::Vector4d g, fd;
    uvp::mbgnbd_log_likelihood(p, d.x, d.tx, d.T, &g);
    for (int k = 0; k < 4; ++k) {
      auto at = [&](double step) {
        MbgNbdParams q = p;
        double* pq[4] = {&q.r, &q.alpha, &q.a, &q.b};
        *pq[k] += step;
        return uvp::mbgnbd_log_likelihood(q, d.x, d.tx, d.T);
      };
      const double* pp[4] = {&p.r, &p.alpha, &p.a, &p.b};
      const double h = 1e-4 * *pp[k];
      fd[k] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    }
    CAPTURE(g.transpose());
    CAPTURE(fd.transpose());
    CHECK(uvp_test::rel_error(g, fd) < 1e-7);
  }
}

TEST_CASE("MBG/NBD predictions match the published formulas evaluated with mpmath") {
  const MbgNbd m(reference_mle());
  // t x t_x T E[Y(t)|.] P(alive): CDNOW customers, heavy buyers (x = 150, 300), t up to 520 weeks.
  for (const auto& row : clv_test::fixture_rows("clv/mbgnbd_predictions.txt", 6)) {
    CAPTURE(row[0]);
    CAPTURE(row[1]);
    CHECK(rel(m.conditional_expected_purchases(row[0], row[1], row[2], row[3]), row[4]) < 1e-10);
    CHECK(rel(m.probability_alive(row[1], row[2], row[3]), row[5]) < 1e-12);
  }
  for (const auto& row : clv_test::fixture_rows("clv/mbgnbd_new_customer.txt", 2)) {
    CAPTURE(row[0]);
    CHECK(rel(m.expected_purchases(row[0]), row[1]) < 1e-11);
  }
  // a close to 1 (interpolated), a < 1, a >> 1.
  for (const auto& row : clv_test::fixture_rows("clv/mbgnbd_unusual.txt", 10)) {
    CAPTURE(row[2]);
    const MbgNbd u({row[0], row[1], row[2], row[3]});
    CHECK(rel(u.conditional_expected_purchases(row[4], row[5], row[6], row[7]), row[8]) < 1e-9);
    CHECK(rel(u.probability_alive(row[5], row[6], row[7]), row[9]) < 1e-12);
  }
  CHECK(m.expected_purchases(0) == 0);
  CHECK(m.conditional_expected_purchases(0, 3, 20, 30) == 0);
  // Unlike BG/NBD, a customer without repeat purchases may be dead.
  CHECK(m.probability_alive(0, 0, 38) < 1);
}

TEST_CASE("MBG/NBD vector predictions equal the scalar ones for any thread count; weights compress data") {
  const auto d = clv_test::read_cdnow_summary();
  const MbgNbd m(reference_mle());
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
  std::map<std::tuple<double, double, double>, double> patterns;
  for (Eigen::Index i = 0; i < d.x.size(); ++i) patterns[{d.x[i], d.tx[i], d.T[i]}] += 1;
  V x(static_cast<Eigen::Index>(patterns.size())), tx(x.size()), T(x.size()), w(x.size());
  Eigen::Index k = 0;
  for (const auto& [key, count] : patterns) {
    std::tie(x[k], tx[k], T[k]) = key;
    w[k++] = count;
  }
  MbgNbd weighted, plain;
  const auto rw = weighted.fit(x, tx, T, w);
  const auto r0 = plain.fit(d.x, d.tx, d.T);
  CHECK(rw.converged);
  CHECK(rw.log_likelihood == doctest::Approx(r0.log_likelihood).epsilon(1e-11));
  CHECK(rel(weighted.params().alpha, plain.params().alpha) < 1e-6);
  // The penalty shrinks the parameters.
  uvp::MbgNbdFitOptions o;
  o.penalizer = 0.01;
  MbgNbd pen;
  const auto rp = pen.fit(d.x, d.tx, d.T, o);
  CHECK(rp.converged);
  CHECK(pen.params().alpha < plain.params().alpha);
  CHECK(rp.log_likelihood < r0.log_likelihood);
}

TEST_CASE("MBG/NBD hard cases: heavy buyers, long T, huge counts, unidentifiable data") {
  // Heavy buyers and long T next to CDNOW: the fit still converges and every prediction is finite.
  auto d = clv_test::read_cdnow_summary();
  d.x[0] = 400, d.tx[0] = 38, d.T[0] = 38.86;
  d.x[1] = 250, d.tx[1] = 500, d.T[1] = 520;
  MbgNbd m;
  const auto res = m.fit(d.x, d.tx, d.T);
  CHECK(res.converged);
  CHECK(std::isfinite(m.conditional_expected_purchases(52, 400, 38, 38.86)));
  // A week's silence after ~10 purchases a week is suspicious: a more recent last purchase means more.
  CHECK(m.conditional_expected_purchases(52, 400, 38.86, 38.86) > m.conditional_expected_purchases(52, 400, 38, 38.86));
  CHECK(m.conditional_expected_purchases(52, 400, 38, 38.86) > m.conditional_expected_purchases(52, 400, 30, 38.86));
  CHECK(std::isfinite(m.conditional_expected_purchases(5200, 250, 500, 520)));
  // Huge weights: the same estimate as unit weights scaled (the objective is a weighted mean).
  const auto c = clv_test::read_cdnow_summary();
  const V big = V::Constant(c.x.size(), 1e9);
  MbgNbd a, b;
  a.fit(c.x, c.tx, c.T);
  const auto rb = b.fit(c.x, c.tx, c.T, big);
  CHECK(rb.converged);
  CHECK(rel(b.params().r, a.params().r) < 1e-6);
  // All-zero frequency, one customer, identical histories, T = 0: refused with the reason.
  V z = V::Zero(5), T5 = V::Constant(5, 30);
  UVP_CHECK_THROWS_WITH_SUBSTR(MbgNbd().fit(z, z, T5), uvp::invalid_argument, "no customer has a repeat purchase");
  V one(1), one_t(1), one_T(1);
  one << 3;
  one_t << 10;
  one_T << 20;
  UVP_CHECK_THROWS_WITH_SUBSTR(MbgNbd().fit(one, one_t, one_T), uvp::invalid_argument, "there is only one customer");
  V three = V::Constant(3, 2), three_t = V::Constant(3, 5), three_T = V::Constant(3, 9);
  UVP_CHECK_THROWS_WITH_SUBSTR(MbgNbd().fit(three, three_t, three_T), uvp::invalid_argument,
                               "all 3 customers have the same history");
  UVP_CHECK_THROWS_WITH_SUBSTR(MbgNbd().fit(z, z, z), uvp::invalid_argument, "every customer has T = 0");
  // With a penalty the single customer is fitted, with a warning saying the penalty sets it.
  uvp::MbgNbdFitOptions o;
  o.penalizer = 0.1;
  MbgNbd pen;
  const auto rp = pen.fit(one, one_t, one_T, o);
  REQUIRE_FALSE(rp.warnings.empty());
  bool said = false;
  for (const auto& w : rp.warnings) said = said || w.find("set by the penalizer") != std::string::npos;
  CHECK(said);
  // Customers that all look alike in rate (everybody buying every week, nobody dropping out):
  // the heterogeneity runs off to the boundary, reported with converged = false.
  V x(4), tx(4), T(4);
  x << 10, 20, 30, 40;
  tx << 10, 20, 30, 40;
  T << 10, 20, 30, 40;
  MbgNbd flat;
  const auto rf = flat.fit(x, tx, T);
  CHECK_FALSE(rf.converged);
  bool reported = false;
  for (const auto& w : rf.warnings) reported = reported || w.find("not identified") != std::string::npos;
  CHECK(reported);
}

TEST_CASE("bad MBG/NBD inputs throw uvp errors naming the argument and the value") {
  V x(3), tx(3), T(3);
  x << 0, 2, 1;
  tx << 0, 5, 3;
  T << 10, 10, 10;
  MbgNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.params(), uvp::not_fitted_error, "uvp::MbgNbd::params: the model is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.expected_purchases(1), uvp::not_fitted_error, "uvp::MbgNbd::expected_purchases");
  V y = x;
  y[2] = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(y, tx, T), uvp::invalid_argument,
                               "uvp::MbgNbd::fit: frequency[2] = 1.5 must be a whole number >= 0");
  V r2 = tx;
  r2[1] = -0.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, r2, T), uvp::invalid_argument, "recency[1] = -0.5 must be finite and >= 0");
  r2[1] = 12;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, r2, T), uvp::invalid_argument, "recency[1] = 12 exceeds T[1] = 10");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(V(0), V(0), V(0)), uvp::invalid_argument, "uvp::MbgNbd::fit: frequency is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, V(2)), uvp::shape_error, "T has size 2, expected 3");
  V w(3);
  w << 1, -1, 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, w), uvp::invalid_argument, "weights[1] = -1 must be finite and >= 0");
  w << 0, 0, 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, w), uvp::invalid_argument, "weights sum to 0");
  uvp::MbgNbdFitOptions o;
  o.penalizer = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, o), uvp::invalid_argument, "penalizer must be finite and >= 0, got -1");
  o = {};
  o.initial = MbgNbdParams{1, 0, 1, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, o), uvp::invalid_argument, "parameter alpha must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(MbgNbd({-1, 1, 1, 1}), uvp::invalid_argument,
                               "uvp::MbgNbd::MbgNbd: parameter r must be finite and > 0, got -1");
  const MbgNbd fitted(reference_mle());
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.conditional_expected_purchases(-1, 1, 1, 2), uvp::invalid_argument,
                               "uvp::MbgNbd::conditional_expected_purchases: t must be finite and >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.probability_alive(1, 3, 2), uvp::invalid_argument, "recency[0] = 3 exceeds T[0] = 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mbgnbd_log_likelihood(reference_mle(), x, tx, V(1)), uvp::shape_error,
                               "uvp::mbgnbd_log_likelihood: T has size 1, expected 3");
}
