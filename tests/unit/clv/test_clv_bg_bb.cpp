// SPDX-License-Identifier: Apache-2.0
// Tests of the BG/BB model: Fader, Hardie & Shang (2010) on the donations data, the gradient,
// predictions against mpmath, hard cases and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_bb.hpp"
#include "uvp/core/parallel.hpp"

using uvp::BgBb;
using uvp::BgBbParams;
using V = uvp::Vector<double>;

namespace {
const BgBbParams published{1.204, 0.750, 0.657, 2.783};

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

struct Donations {
  V x, tx, n, w;
};

/// examples/data/donations/donations.csv: frequency, recency, periods, weights (22 rows).
Donations read_donations() {
  std::ifstream in(uvp_test::data_path("donations/donations.csv"));
  REQUIRE_MESSAGE(in.good(), "cannot open donations.csv");
  std::string line;
  std::getline(in, line);
  std::vector<double> v;
  while (std::getline(in, line)) {
    for (char& c : line)
      if (c == ',') c = ' ';
    std::istringstream ls(line);
    double a;
    while (ls >> a) v.push_back(a);
  }
  REQUIRE(v.size() == 88);
  Donations d{V(22), V(22), V(22), V(22)};
  for (Eigen::Index i = 0; i < 22; ++i) {
    d.x[i] = v[static_cast<std::size_t>(4 * i)];
    d.tx[i] = v[static_cast<std::size_t>(4 * i + 1)];
    d.n[i] = v[static_cast<std::size_t>(4 * i + 2)];
    d.w[i] = v[static_cast<std::size_t>(4 * i + 3)];
  }
  return d;
}
}  // namespace

TEST_CASE("BG/BB on the donations data reproduces Fader, Hardie & Shang (2010) and scipy's optimum") {
  const auto d = read_donations();
  CHECK(d.w.sum() == 11104);
  BgBb model;
  const auto res = model.fit(d.x, d.tx, d.n, d.w);
  CHECK(res.converged);
  CHECK(res.warnings.empty());
  const auto p = model.params();
  // Published: alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783 (LL = -33,225.6).
  CHECK(std::abs(p.alpha - 1.204) < 5e-4);
  CHECK(std::abs(p.beta - 0.750) < 5e-4);
  CHECK(std::abs(p.gamma - 0.657) < 5e-4);
  CHECK(std::abs(p.delta - 2.783) < 5e-4);
  CHECK(std::abs(res.log_likelihood - (-33225.6)) < 0.05);
  // bgbb_mle.txt: alpha beta gamma delta LL, the standard errors, LL at the published values.
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/bgbb_mle.txt"));
  CHECK(rel(p.alpha, ref[0]) < 1e-6);
  CHECK(rel(p.beta, ref[1]) < 1e-6);
  CHECK(rel(p.gamma, ref[2]) < 1e-6);
  CHECK(rel(p.delta, ref[3]) < 1e-6);
  CHECK(res.log_likelihood >= ref[4] - 1e-8);
  CHECK(res.log_likelihood == doctest::Approx(ref[4]).epsilon(1e-12));
  CHECK(uvp::bgbb_log_likelihood(published, d.x, d.tx, d.n, d.w) == doctest::Approx(ref[9]).epsilon(1e-12));
  CHECK(res.objective == doctest::Approx(-res.log_likelihood / 11104).epsilon(1e-14));
  REQUIRE(res.standard_errors.size() == 4);
  CHECK(res.parameter_names == std::vector<std::string>{"alpha", "beta", "gamma", "delta"});
  for (std::size_t k = 0; k < 4; ++k) {
    CAPTURE(k);
    CHECK(rel(res.standard_errors[k], ref[5 + k]) < 1e-4);
  }
  // Expanding the weights to one row per donor gives the same fit.
  std::vector<double> ex, et, en;
  for (Eigen::Index i = 0; i < 22; ++i)
    for (int k = 0; k < static_cast<int>(d.w[i]); ++k) ex.push_back(d.x[i]), et.push_back(d.tx[i]), en.push_back(d.n[i]);
  const Eigen::Map<const V> X(ex.data(), static_cast<Eigen::Index>(ex.size())),
      Tx(et.data(), static_cast<Eigen::Index>(et.size())), N(en.data(), static_cast<Eigen::Index>(en.size()));
  BgBb full;
  const auto rf = full.fit(X, Tx, N);
  CHECK(rf.converged);
  CHECK(rf.log_likelihood == doctest::Approx(res.log_likelihood).epsilon(1e-11));
  CHECK(rel(full.params().delta, p.delta) < 1e-6);
}

TEST_CASE("the BG/BB fit converges to the same optimum from several starting points") {
  const auto d = read_donations();
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/bgbb_mle.txt"));
  for (const auto& s : {BgBbParams{0.1, 0.1, 0.1, 0.1}, {10, 10, 10, 10}, {5, 0.2, 0.3, 20}}) {
    CAPTURE(s.alpha);
    uvp::BgBbFitOptions o;
    o.initial = s;
    BgBb m;
    const auto res = m.fit(d.x, d.tx, d.n, d.w, o);
    CHECK(res.converged);
    CHECK(rel(m.params().alpha, ref[0]) < 1e-6);
    CHECK(rel(m.params().delta, ref[3]) < 1e-6);
  }
}

TEST_CASE("the analytic BG/BB gradient matches central differences, also for long histories") {
  auto d = read_donations();
  // Add customers with many opportunities (n = 400) so the running sums are exercised.
  V x(25), tx(25), n(25), w(25);
  x << d.x, 5, 150, 0;
  tx << d.tx, 200, 390, 0;
  n << d.n, 400, 400, 300;
  w << d.w, 3, 2, 7;
  for (const auto& p : {published, BgBbParams{0.3, 5.0, 3.0, 0.4}, BgBbParams{4, 1.5, 0.2, 9}}) {
    Eigen::Vector4d g, fd;
    uvp::bgbb_log_likelihood(p, x, tx, n, w, &g);
    for (int k = 0; k < 4; ++k) {
      const double* pp[4] = {&p.alpha, &p.beta, &p.gamma, &p.delta};
      const double h = 1e-4 * *pp[k];
      auto at = [&](double step) {
        BgBbParams q = p;
        double* pq[4] = {&q.alpha, &q.beta, &q.gamma, &q.delta};
        *pq[k] += step;
        return uvp::bgbb_log_likelihood(q, x, tx, n, w);
      };
      fd[k] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    }
    CAPTURE(g.transpose());
    CAPTURE(fd.transpose());
    CHECK(uvp_test::rel_error(g, fd) < 1e-7);
  }
}

TEST_CASE("BG/BB predictions match FHS (2010) eq. 8, 11, 13 and 14 evaluated with mpmath") {
  // alpha beta gamma delta x t_x n P(alive) E[n*=1] E[n*=5] E[n*=30] DERT(0.1) DERT(0.5) LL
  for (const auto& row : clv_test::fixture_rows("clv/bgbb_predictions.txt", 14)) {
    const BgBb m({row[0], row[1], row[2], row[3]});
    const double x = row[4], tx = row[5], n = row[6];
    CAPTURE(row[2]);
    CAPTURE(x);
    CAPTURE(tx);
    CAPTURE(n);
    CHECK(rel(m.probability_alive(x, tx, n), row[7]) < 1e-11);
    CHECK(rel(m.conditional_expected_transactions(1, x, tx, n), row[8]) < 1e-11);
    CHECK(rel(m.conditional_expected_transactions(5, x, tx, n), row[9]) < 1e-11);
    CHECK(rel(m.conditional_expected_transactions(30, x, tx, n), row[10]) < 1e-11);
    CHECK(rel(m.discounted_expected_residual_transactions(0.1, x, tx, n), row[11]) < 1e-11);
    CHECK(rel(m.discounted_expected_residual_transactions(0.5, x, tx, n), row[12]) < 1e-11);
    CHECK(rel(m.log_likelihood(x, tx, n), row[13]) < 1e-12);
  }
  // alpha beta gamma delta n E[X(n)]
  for (const auto& row : clv_test::fixture_rows("clv/bgbb_expected.txt", 6)) {
    const BgBb m({row[0], row[1], row[2], row[3]});
    CAPTURE(row[4]);
    CHECK(rel(m.expected_transactions(row[4]), row[5]) < 1e-11);
  }
  const BgBb m(published);
  CHECK(m.expected_transactions(0) == 0);
  CHECK(m.conditional_expected_transactions(0, 3, 4, 6) == 0);
}

TEST_CASE("BG/BB vector predictions equal the scalar ones for any thread count") {
  const auto d = read_donations();
  const BgBb m(published);
  V x(2000), tx(2000), n(2000);
  for (Eigen::Index i = 0; i < 2000; ++i) {
    x[i] = d.x[i % 22];
    tx[i] = d.tx[i % 22];
    n[i] = d.n[i % 22] + static_cast<double>(i % 5);
  }
  const auto run = [&](int threads) {
    uvp::ThreadCountGuard g(uvp::has_openmp ? threads : 1);
    return std::make_tuple(m.conditional_expected_transactions(5, x, tx, n), m.probability_alive(x, tx, n),
                           m.discounted_expected_residual_transactions(0.1, x, tx, n));
  };
  const auto a = run(1), b = run(2);
  CHECK(std::get<0>(a) == std::get<0>(b));
  CHECK(std::get<1>(a) == std::get<1>(b));
  CHECK(std::get<2>(a) == std::get<2>(b));
  for (Eigen::Index i = 0; i < 2000; i += 37) {
    CHECK(std::get<0>(a)[i] == m.conditional_expected_transactions(5, x[i], tx[i], n[i]));
    CHECK(std::get<1>(a)[i] == m.probability_alive(x[i], tx[i], n[i]));
    CHECK(std::get<2>(a)[i] == m.discounted_expected_residual_transactions(0.1, x[i], tx[i], n[i]));
  }
}

TEST_CASE("BG/BB hard cases: heavy and long histories, huge counts, unidentifiable data") {
  auto d = read_donations();
  // Huge weights: the estimate does not change (the objective is a weighted mean).
  BgBb a, b;
  a.fit(d.x, d.tx, d.n, d.w);
  const auto rb = b.fit(d.x, d.tx, d.n, V(d.w * 1e6));
  CHECK(rb.converged);
  CHECK(rel(b.params().gamma, a.params().gamma) < 1e-6);
  // A long, heavy history: ln L of about -1e3 still gives finite predictions (log-space ratios).
  const BgBb m(published);
  CHECK(std::isfinite(m.log_likelihood(3000, 5000, 5000)));
  CHECK(m.log_likelihood(3000, 5000, 5000) < -1000);
  const double pa = m.probability_alive(3000, 5000, 5000);
  CHECK(pa > 0.99);
  CHECK(pa <= 1);
  CHECK(std::isfinite(m.conditional_expected_transactions(100, 3000, 5000, 5000)));
  CHECK(m.probability_alive(1, 1, 5000) < 1e-3);
  // A customer who never transacted over 5000 opportunities: alive with a tiny probability.
  CHECK(m.probability_alive(0, 0, 5000) > 0);
  // Unidentifiable data are refused: no transaction at all, every n = 0, one pattern.
  V z = V::Zero(4), six = V::Constant(4, 6);
  UVP_CHECK_THROWS_WITH_SUBSTR(BgBb().fit(z, z, six), uvp::invalid_argument, "no customer has a transaction");
  UVP_CHECK_THROWS_WITH_SUBSTR(BgBb().fit(z, z, z), uvp::invalid_argument, "every n is 0");
  V one(1), one_t(1), one_n(1);
  one << 2;
  one_t << 4;
  one_n << 6;
  UVP_CHECK_THROWS_WITH_SUBSTR(BgBb().fit(one, one_t, one_n), uvp::invalid_argument, "there is only one customer");
  // Everybody transacting at every opportunity: p -> 1 and theta -> 0, reported as not converged.
  V w(3), fx(3), ft(3), fn(3);
  fx << 6, 3, 1;
  ft << 6, 3, 1;
  fn << 6, 3, 1;
  w << 10, 10, 10;
  BgBb all;
  const auto ra = all.fit(fx, ft, fn, w);
  CHECK_FALSE(ra.converged);
  bool said = false;
  for (const auto& msg : ra.warnings) said = said || msg.find("not identified") != std::string::npos;
  CHECK(said);
}

TEST_CASE("bad BG/BB inputs throw uvp errors naming the argument and the value") {
  V x(3), tx(3), n(3);
  x << 0, 2, 1;
  tx << 0, 5, 3;
  n << 6, 6, 6;
  BgBb m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.params(), uvp::not_fitted_error, "uvp::BgBb::params: the model is not fitted");
  auto bad = [&](const V& a, const V& b, const V& c, const char* msg) {
    UVP_CHECK_THROWS_WITH_SUBSTR(BgBb().fit(a, b, c), uvp::invalid_argument, msg);
  };
  V y = x;
  y[1] = 1.5;
  bad(y, tx, n, "uvp::BgBb::fit: frequency[1] = 1.5 must be a whole number >= 0");
  y = x;
  y[2] = -1;
  bad(y, tx, n, "frequency[2] = -1 must be a whole number >= 0");
  V r = tx;
  r[1] = 4.5;
  bad(x, r, n, "recency[1] = 4.5 must be a whole number >= 0");
  r = tx;
  r[1] = -1;
  bad(x, r, n, "recency[1] = -1 must be a whole number >= 0");
  r = tx;
  r[1] = 7;
  bad(x, r, n, "recency[1] = 7 exceeds n[1] = 6");
  r = tx;
  r[2] = 0;
  bad(x, r, n, "frequency[2] = 1 exceeds recency[2] = 0");
  r = tx;
  r[0] = 2;
  bad(x, r, n, "recency[0] = 2 but frequency[0] = 0");
  V nn = n;
  nn[0] = 2.5;
  bad(x, tx, nn, "n[0] = 2.5 must be a whole number >= 0");
  nn[0] = NAN;
  bad(x, tx, nn, "n[0] = nan must be a whole number >= 0");
  bad(V(0), V(0), V(0), "uvp::BgBb::fit: frequency is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, V(2)), uvp::shape_error, "n has size 2, expected 3");
  V w(3);
  w << 1, -1, 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, n, w), uvp::invalid_argument, "weights[1] = -1 must be finite and >= 0");
  w << 0, 0, 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, n, w), uvp::invalid_argument, "weights sum to 0");
  uvp::BgBbFitOptions o;
  o.initial = BgBbParams{1, 1, 0, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, n, o), uvp::invalid_argument, "parameter gamma must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(BgBb({1, -2, 1, 1}), uvp::invalid_argument,
                               "uvp::BgBb::BgBb: parameter beta must be finite and > 0, got -2");
  const BgBb f(published);
  UVP_CHECK_THROWS_WITH_SUBSTR(f.conditional_expected_transactions(2.5, 1, 1, 6), uvp::invalid_argument,
                               "uvp::BgBb::conditional_expected_transactions: n_star must be a whole number >= 0, got 2.5");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.expected_transactions(-1), uvp::invalid_argument,
                               "uvp::BgBb::expected_transactions: n must be a whole number >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.conditional_expected_transactions(1e12, 1, 1, 6), uvp::invalid_argument,
                               "n_star = 1e+12 exceeds the supported 1e7 opportunities");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.probability_alive(1, 1, 2e7), uvp::invalid_argument,
                               "n[0] = 2e+07 exceeds the supported 1e7 opportunities");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.discounted_expected_residual_transactions(0, 1, 1, 6), uvp::invalid_argument,
                               "discount_rate must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.probability_alive(1, 7, 6), uvp::invalid_argument,
                               "uvp::BgBb::probability_alive: recency[0] = 7 exceeds n[0] = 6");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.probability_alive(x, tx, V(1)), uvp::shape_error, "n has size 1, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bgbb_log_likelihood(published, x, tx, n, V(2)), uvp::shape_error,
                               "uvp::bgbb_log_likelihood: weights has size 2, expected 3");
}
