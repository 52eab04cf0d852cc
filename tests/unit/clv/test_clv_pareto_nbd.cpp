// SPDX-License-Identifier: Apache-2.0
// Tests of the Pareto/NBD model: the published CDNOW fit, likelihood and gradient against mpmath,
// predictions, standard errors, hard cases and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/core/parallel.hpp"

using uvp::ParetoNbd;
using uvp::ParetoNbdParams;
using V = uvp::Vector<double>;

namespace {
const ParetoNbdParams published{0.553, 10.578, 0.606, 11.669};

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
V vec(std::initializer_list<double> v) {
  V out(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double d : v) out[i++] = d;
  return out;
}
bool has_warning(const uvp::ClvFitResult& r, const std::string& what) {
  for (const auto& w : r.warnings)
    if (w.find(what) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("Pareto/NBD on CDNOW reproduces the published estimates and scipy's optimum") {
  const auto d = clv_test::read_cdnow_summary();
  ParetoNbd model;
  const auto res = model.fit(d.x, d.tx, d.T);
  CHECK(res.converged);
  CHECK(res.customers == 2357);
  const auto p = model.params();
  // Published (Fader & Hardie; BTYD walkthrough): r = 0.553, alpha = 10.578, s = 0.606,
  // beta = 11.669, LL = -9595.0. The MLE rounds to these except beta: 11.668 (scipy agrees, below).
  // beta's standard error is 6.2, so the third decimal is far inside the noise of any optimizer's
  // stopping rule; the published 11.669 is an optimum of the same likelihood stopped earlier.
  CHECK(std::abs(p.r - 0.553) < 5e-4);
  CHECK(std::abs(p.alpha - 10.578) < 5e-4);
  CHECK(std::abs(p.s - 0.606) < 5e-4);
  CHECK(std::abs(p.beta - 11.669) < 1.5e-3);
  CHECK(std::abs(res.log_likelihood - (-9595.0)) < 0.05);
  // At the published (rounded) parameters the log-likelihood is -9594.974 as well.
  CHECK(std::abs(uvp::pnbd_log_likelihood(published, d.x, d.tx, d.T) - (-9595.0)) < 0.05);
  // scipy's optimum of an independently coded likelihood: tests/fixtures/clv/pnbd_mle.txt.
  const auto all = uvp_test::read_numbers(uvp_test::fixture_path("clv/pnbd_mle.txt"));
  REQUIRE(all.size() == 9);  // r alpha s beta loglik, then the four standard errors
  const std::vector<std::vector<double>> ref{{all.begin(), all.begin() + 5}, {all.begin() + 5, all.end()}};
  CHECK(rel(p.r, ref[0][0]) < 1e-4);
  CHECK(rel(p.alpha, ref[0][1]) < 1e-4);
  CHECK(rel(p.s, ref[0][2]) < 1e-3);
  CHECK(rel(p.beta, ref[0][3]) < 1e-3);
  CHECK(res.log_likelihood >= ref[0][4] - 1e-6);  // at least as good as scipy's optimum
  CHECK(res.log_likelihood == doctest::Approx(ref[0][4]).epsilon(1e-9));
  CHECK(model.log_likelihood(d.x, d.tx, d.T) == doctest::Approx(res.log_likelihood).epsilon(1e-14));
  // Standard errors: against the inverse of an mpmath central-difference Hessian (the fixture's
  // second row) at scipy's estimate; the two estimates differ by < 1e-3 relative.
  REQUIRE(res.standard_errors.size() == 4);
  CHECK(res.parameter_names == std::vector<std::string>{"r", "alpha", "s", "beta"});
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(rel(res.standard_errors[static_cast<std::size_t>(i)], ref[1][static_cast<std::size_t>(i) + 0]) < 5e-3);
  }
}

TEST_CASE("the BTYD walkthrough point E[X(52) | x = 26, t_x = 30.86, T = 31] = 25.46") {
  const ParetoNbd m(published);
  CHECK(std::abs(m.conditional_expected_purchases(52, 26, 30.86, 31) - 25.46) < 5e-3);
}

TEST_CASE("the per-customer log-likelihood and its gradient match mpmath (Fader & Hardie's 2F1 form)") {
  // Includes x = 500 and 1000, beta = 1e6 and 1e8, alpha = 1e5 beta (z near 1), t_x = T.
  const auto rows = clv_test::fixture_rows("clv/pnbd_loglik.txt", 12);
  REQUIRE(rows.size() >= 15);
  for (const auto& w : rows) {
    CAPTURE(w[4]);
    CAPTURE(w[5]);
    CAPTURE(w[6]);
    CAPTURE(w[3]);
    const ParetoNbdParams p{w[0], w[1], w[2], w[3]};
    Eigen::Vector4d g;
    const double ll = uvp::pnbd_log_likelihood(p, vec({w[4]}), vec({w[5]}), vec({w[6]}), &g);
    // relative 1e-11 of the log-likelihood or of its largest terms (r ln alpha, s ln beta)
    const double size = std::abs(w[7]) + std::abs(w[0] * std::log(w[1])) + std::abs(w[2] * std::log(w[3]));
    CHECK(std::abs(ll - w[7]) <= 1e-11 * size);
    for (int i = 0; i < 4; ++i) {
      CAPTURE(i);
      CHECK(std::abs(g[i] - w[8 + i]) <= 1e-8 * std::abs(w[8 + i]) + 1e-10 * (1 + std::abs(w[7])));
    }
  }
}

TEST_CASE("the analytic gradient matches central differences of the log-likelihood") {
  const auto d = clv_test::read_cdnow_summary();
  // ordinary (CDNOW) and extreme customers, in both branches (alpha >= beta and alpha < beta)
  const ParetoNbdParams ps[] = {published, {0.553, 11.669, 0.606, 10.578}, {2.0, 0.5, 3.0, 400}, {0.3, 80, 0.2, 0.05}};
  const V hx = vec({1000, 0, 300, 40, 2}), htx = vec({38.9, 0, 2, 100, 1e-3}), hT = vec({39, 39, 1000, 104, 1e4});
  for (const auto& p : ps) {
    for (int set = &p < ps + 2 ? 0 : 1; set < 2; ++set) {  // CDNOW at the first two only (test time)
      const V& x = set == 0 ? d.x : hx;
      const V& tx = set == 0 ? d.tx : htx;
      const V& T = set == 0 ? d.T : hT;
      Eigen::Vector4d g;
      const double ll = uvp::pnbd_log_likelihood(p, x, tx, T, &g);
      const double v[4] = {p.r, p.alpha, p.s, p.beta};
      for (int i = 0; i < 4; ++i) {
        CAPTURE(set);
        CAPTURE(i);
        CAPTURE(p.alpha);
        auto central = [&](double h) {
          double up[4] = {v[0], v[1], v[2], v[3]}, dn[4] = {v[0], v[1], v[2], v[3]};
          up[i] += h;
          dn[i] -= h;
          return (uvp::pnbd_log_likelihood({up[0], up[1], up[2], up[3]}, x, tx, T) -
                  uvp::pnbd_log_likelihood({dn[0], dn[1], dn[2], dn[3]}, x, tx, T)) /
                 (2 * h);
        };
        const double h = 1e-4 * v[i];
        const double fd = (4 * central(h / 2) - central(h)) / 3;  // Richardson: truncation O(h^4)
        // rounding of the differenced sum ~ eps |LL| / h
        CHECK(std::abs(g[i] - fd) <= 1e-6 * std::abs(fd) + 1e-14 * (1 + std::abs(ll)) / h);
      }
    }
  }
}

TEST_CASE("P(alive), conditional and unconditional expectations and DERT match mpmath") {
  // DERT: Fader, Hardie & Lee (2005, "RFM and CLV") eq. 2 with mpmath.hyperu(s, s, .).
  const auto rows = clv_test::fixture_rows("clv/pnbd_predictions.txt", 13);
  REQUIRE(rows.size() >= 10);
  for (const auto& w : rows) {
    CAPTURE(w[4]);
    CAPTURE(w[2]);
    const ParetoNbd m(ParetoNbdParams{w[0], w[1], w[2], w[3]});
    const double x = w[4], tx = w[5], T = w[6], t = w[7], delta = w[8];
    CHECK(m.probability_alive(x, tx, T) == doctest::Approx(w[9]).epsilon(1e-11));
    CHECK(m.conditional_expected_purchases(t, x, tx, T) == doctest::Approx(w[10]).epsilon(1e-11));
    CHECK(m.expected_purchases(t) == doctest::Approx(w[11]).epsilon(1e-12));
    CHECK(m.discounted_expected_transactions(delta, x, tx, T) == doctest::Approx(w[12]).epsilon(1e-10));
  }
}

TEST_CASE("predictions for all customers equal the one-customer ones, whatever the thread count") {
  const auto d = clv_test::read_cdnow_summary();
  const ParetoNbd m(published);
  const int saved = uvp::num_threads();
  const V pa = m.probability_alive(d.x, d.tx, d.T);
  const V ce = m.conditional_expected_purchases(39, d.x, d.tx, d.T);
  const V de = m.discounted_expected_transactions(0.003, d.x, d.tx, d.T);
  const double ll = uvp::pnbd_log_likelihood(published, d.x, d.tx, d.T);
  if (uvp::has_openmp) uvp::set_num_threads(1);
  CHECK(uvp::pnbd_log_likelihood(published, d.x, d.tx, d.T) == ll);
  const V pa1 = m.probability_alive(d.x, d.tx, d.T);
  if (uvp::has_openmp) uvp::set_num_threads(saved);
  CHECK((pa1 - pa).cwiseAbs().maxCoeff() == 0);
  for (Eigen::Index i = 0; i < d.x.size(); i += 97) {
    CHECK(pa[i] == m.probability_alive(d.x[i], d.tx[i], d.T[i]));
    CHECK(ce[i] == m.conditional_expected_purchases(39, d.x[i], d.tx[i], d.T[i]));
    CHECK(de[i] == m.discounted_expected_transactions(0.003, d.x[i], d.tx[i], d.T[i]));
  }
  // Over the CDNOW holdout (39 weeks) the model expects about as many purchases as P(alive) allows.
  CHECK(ce.sum() > 0);
  CHECK((pa.array() > 0).all());
  CHECK((pa.array() <= 1).all());
}

TEST_CASE("a weighted fit on distinct patterns equals the fit on all customers; starts agree") {
  const auto d = clv_test::read_cdnow_summary();
  std::map<std::tuple<double, double, double>, double> pats;
  for (Eigen::Index i = 0; i < d.x.size(); ++i) pats[{d.x[i], d.tx[i], d.T[i]}] += 1;
  V x(static_cast<Eigen::Index>(pats.size())), tx(x.size()), T(x.size()), w(x.size());
  Eigen::Index k = 0;
  for (const auto& [key, n] : pats) {
    x[k] = std::get<0>(key), tx[k] = std::get<1>(key), T[k] = std::get<2>(key), w[k] = n;
    ++k;
  }
  ParetoNbd full, weighted;
  const auto rf = full.fit(d.x, d.tx, d.T);
  const auto rw = weighted.fit(x, tx, T, w);
  CHECK(rw.converged);
  CHECK(rw.log_likelihood == doctest::Approx(rf.log_likelihood).epsilon(1e-12));
  CHECK(rel(weighted.params().beta, full.params().beta) < 1e-6);
  CHECK(rel(weighted.params().r, full.params().r) < 1e-7);
  const ParetoNbdParams starts[] = {{0.1, 1, 0.1, 1}, {5, 100, 5, 100}, {0.5, 30, 3, 0.3}};
  for (const auto& s : starts) {
    CAPTURE(s.r);
    uvp::ParetoNbdFitOptions o;
    o.initial = s;
    ParetoNbd m;
    const auto r = m.fit(x, tx, T, w, o);
    CHECK(r.converged);
    CHECK(r.log_likelihood == doctest::Approx(rf.log_likelihood).epsilon(1e-10));
    CHECK(rel(m.params().alpha, full.params().alpha) < 1e-4);
  }
  // A penalty shrinks the parameters (the objective includes it).
  uvp::ParetoNbdFitOptions pen;
  pen.penalizer = 0.01;
  ParetoNbd mp;
  const auto rp = mp.fit(d.x, d.tx, d.T, pen);
  CHECK(mp.params().beta < full.params().beta);
  CHECK(rp.log_likelihood < rf.log_likelihood);
}

TEST_CASE("hard cases: heavy buyers, long T, huge counts fit; unidentifiable data are reported") {
  SUBCASE("heavy buyers (x = 1000) and long T") {
    V x(10), tx(10), T(10);
    x << 1000, 800, 0, 3, 1200, 0, 5, 2, 10, 1;
    tx << 950, 700, 0, 20, 1900, 0, 100, 50, 300, 5;
    T << 1000, 1000, 1000, 2000, 2000, 30, 2000, 1500, 1900, 1000;
    ParetoNbd m;
    const auto r = m.fit(x, tx, T);
    CHECK(r.converged);
    CHECK(std::isfinite(r.log_likelihood));
    // About one purchase per time unit: silent for 50 units means gone, for half a unit means alive.
    CHECK(m.probability_alive(1000, 950, 1000) < 1e-15);
    CHECK(m.probability_alive(1000, 999.5, 1000) > 0.5);
    CHECK(m.conditional_expected_purchases(52, 1000, 999.5, 1000) > 10);
    CHECK(std::isfinite(m.discounted_expected_transactions(0.01, 1000, 999.5, 1000)));
  }
  SUBCASE("nobody visibly drops out: s and beta run off together, reported") {
    V x(6), tx(6), T(6);
    x << 1000, 800, 0, 3, 1200, 0;
    tx << 950, 700, 0, 20, 1900, 0;
    T << 1000, 1000, 1000, 2000, 2000, 30;
    ParetoNbd m;
    const auto r = m.fit(x, tx, T);
    CHECK_FALSE(r.converged);
    CHECK(has_warning(r, "do not identify heterogeneity in the dropout rate"));
    CHECK(m.params().s > 1e4);
    CHECK(std::isfinite(r.log_likelihood));
  }
  SUBCASE("huge counts: CDNOW with every weight multiplied by 1e6 has the same estimate") {
    const auto d = clv_test::read_cdnow_summary();
    const V w = V::Constant(d.x.size(), 1e6);
    ParetoNbd a, b;
    a.fit(d.x, d.tx, d.T);
    const auto r = b.fit(d.x, d.tx, d.T, w);
    CHECK(r.converged);
    CHECK(rel(b.params().r, a.params().r) < 1e-6);
    REQUIRE(r.standard_errors.size() == 4);  // 1000x smaller than CDNOW's
    CHECK(r.standard_errors[0] < 1e-4);
  }
  SUBCASE("all-zero frequency is refused, as by every BTYD fit") {
    const V x = V::Zero(50), tx = V::Zero(50), T = V::LinSpaced(50, 1, 50);
    ParetoNbd m;
    UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T), uvp::invalid_argument,
                                 "uvp::ParetoNbd::fit: no customer has a repeat purchase (every frequency is 0)");
    CHECK_FALSE(m.is_fitted());
  }
  SUBCASE("a single customer is refused without a penalizer, fitted with one") {
    ParetoNbd m;
    UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({3}), vec({10}), vec({20})), uvp::invalid_argument,
                                 "uvp::ParetoNbd::fit: there is only one customer (x = 3, t_x = 10, T = 20)");
    uvp::ParetoNbdFitOptions o;
    o.penalizer = 0.1;
    const auto r = m.fit(vec({3}), vec({10}), vec({20}), o);
    CHECK(has_warning(r, "the estimate is set by the penalizer"));
    CHECK(std::isfinite(m.params().r));
  }
  SUBCASE("every T = 0 is refused") {
    ParetoNbd m;
    UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({0, 0, 0}), vec({0, 0, 0}), vec({0, 0, 0})), uvp::invalid_argument,
                                 "every customer has T = 0");
  }
}

TEST_CASE("Pareto/NBD rejects bad input, naming the argument and index") {
  ParetoNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.params(), uvp::not_fitted_error, "uvp::ParetoNbd::params: the model is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.probability_alive(1, 1, 2), uvp::not_fitted_error, "not fitted");
  const V x = vec({1, 2, 0}), tx = vec({1, 3, 0}), T = vec({2, 4, 5});
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, vec({1, -1, 0}), T), uvp::invalid_argument,
                               "uvp::ParetoNbd::fit: recency[1] = -1 must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, vec({1, 5, 0}), T), uvp::invalid_argument, "recency[1] = 5 exceeds T[1] = 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({1, 2.5, 0}), tx, T), uvp::invalid_argument,
                               "frequency[1] = 2.5 must be a whole number >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, vec({2, NAN, 5})), uvp::invalid_argument, "T[1] = nan must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, vec({2, 4})), uvp::shape_error, "T has size 2, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, vec({1, -1, 1})), uvp::invalid_argument, "weights[1] = -1");
  uvp::ParetoNbdFitOptions o;
  o.initial = ParetoNbdParams{1, 1, -1, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, o), uvp::invalid_argument, "parameter s must be finite and > 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(ParetoNbd(ParetoNbdParams{1, 0, 1, 1}), uvp::invalid_argument, "parameter alpha");
  const ParetoNbd f(published);
  UVP_CHECK_THROWS_WITH_SUBSTR(f.discounted_expected_transactions(0, 1, 1, 2), uvp::invalid_argument,
                               "delta (discount rate per time unit) must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.conditional_expected_purchases(-1, 1, 1, 2), uvp::invalid_argument, "t must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.probability_alive(1, 3, 2), uvp::invalid_argument, "recency[0] = 3 exceeds T[0] = 2");
}
