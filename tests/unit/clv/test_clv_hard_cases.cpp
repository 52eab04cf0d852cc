// SPDX-License-Identifier: Apache-2.0
// Hard cases for BG/NBD and Gamma-Gamma: heavy buyers, long T, huge counts and weights, tiny
// recency, t_x = T, all-zero frequency, a single customer. Each either fits with finite, sensible
// parameters and predictions (P(alive), conditional expectations, CLV) or is reported clearly.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/simulate.hpp"

using uvp::BgNbd;
using uvp::BgNbdParams;
using uvp::GammaGamma;
using uvp::Vector;

namespace {

const BgNbdParams cdnow{0.243, 4.414, 0.793, 2.426};
const uvp::GammaGammaParams spend{6.25, 3.74, 15.44};

// A CDNOW-like population (weeks, ages 27-39) with spend, seeded.
uvp::SimulatedCustomers population(int n, std::uint64_t seed) {
  uvp::Rng rng(seed);
  Vector<double> T(n);
  for (int i = 0; i < n; ++i) T[i] = 27 + 12 * rng.uniform();
  return uvp::simulate_customers(cdnow, T, rng, spend);
}

// Appends customers (x, t_x, T, m_x) to a summary.
uvp::CustomerSummary with_extra(const uvp::SimulatedCustomers& s, const std::vector<std::array<double, 4>>& extra) {
  const auto n = s.frequency.size(), k = static_cast<Eigen::Index>(extra.size());
  uvp::CustomerSummary out;
  out.frequency.resize(n + k);
  out.recency.resize(n + k);
  out.T.resize(n + k);
  out.monetary_value.resize(n + k);
  out.frequency.head(n) = s.frequency;
  out.recency.head(n) = s.recency;
  out.T.head(n) = s.T;
  out.monetary_value.head(n) = s.monetary_value;
  for (Eigen::Index j = 0; j < k; ++j) {
    const auto& e = extra[static_cast<std::size_t>(j)];
    out.frequency[n + j] = e[0];
    out.recency[n + j] = e[1];
    out.T[n + j] = e[2];
    out.monetary_value[n + j] = e[3];
  }
  for (Eigen::Index i = 0; i < n + k; ++i) out.id.push_back(std::to_string(i));
  return out;
}

bool finite_positive(const BgNbdParams& p) {
  for (double v : {p.r, p.alpha, p.a, p.b})
    if (!(v > 0) || !std::isfinite(v)) return false;
  return true;
}

// Every BG/NBD + Gamma-Gamma output for the customers of s is finite and in range.
void check_all_finite(const BgNbd& bg, const GammaGamma& gg, const uvp::CustomerSummary& s) {
  const auto pa = bg.probability_alive(s.frequency, s.recency, s.T);
  CHECK(pa.allFinite());
  CHECK(pa.minCoeff() >= 0);
  CHECK(pa.maxCoeff() <= 1);
  for (double t : {1.0, 52.0, 520.0}) {
    const auto ce = bg.conditional_expected_purchases(t, s.frequency, s.recency, s.T);
    CHECK(ce.allFinite());
    CHECK(ce.minCoeff() >= 0);
  }
  CHECK(std::isfinite(bg.expected_purchases(52)));
  const auto ev = gg.conditional_expected_average_value(s.frequency, s.monetary_value);
  CHECK(ev.allFinite());
  const auto scores = uvp::score_customers(bg, gg, s);
  CHECK(scores.probability_alive.allFinite());
  CHECK(scores.expected_purchases.allFinite());
  CHECK(scores.clv.allFinite());
  CHECK(scores.clv.minCoeff() >= 0);
}

}  // namespace

TEST_CASE("heavy buyers (x = 1,000 to 1,000,000) among ordinary customers") {
  const auto base = population(3000, 42);
  // x, t_x, T (weeks), mean spend: active heavy buyers (their last purchase about 0.1 purchase
  // intervals ago), and one who stopped long ago.
  const auto s = with_extra(base, {{1000, 39 - 0.1 * 39 / 1000, 39, 25.0}, {5000, 39 - 0.1 * 39 / 5000, 39, 18.0},
                                   {20000, 39, 39, 40.0}, {1e6, 39 - 0.1 * 39 / 1e6, 39, 12.5}, {3000, 2.0, 39, 30.0}});
  BgNbd bg;
  const auto rb = bg.fit(s);
  CHECK(rb.converged);
  CHECK(finite_positive(bg.params()));
  for (const auto& w : rb.warnings) CHECK(w.find("boundary") == std::string::npos);
  // Five extreme buyers among 3,000 thicken the tail of the purchase rates: r drops from about
  // 0.24 to about 0.05 (and alpha with it); a and b, which the heavy buyers inform little, stay near.
  CHECK(bg.params().r > 0.01);
  CHECK(bg.params().r < 0.2);
  CHECK(std::abs(bg.params().a / cdnow.a - 1) < 0.5);
  CHECK(std::abs(bg.params().b / cdnow.b - 1) < 0.5);
  GammaGamma gg;
  const auto rg = gg.fit(s);
  CHECK(rg.converged);
  check_all_finite(bg, gg, s);
  const auto n = base.frequency.size();
  const auto ce = bg.conditional_expected_purchases(52, s.frequency, s.recency, s.T);
  const auto pa = bg.probability_alive(s.frequency, s.recency, s.T);
  // An active heavy buyer keeps buying at about x / T per week while alive; but with a dropout
  // chance of about a / (a + b + x) after each purchase, over a year's 52 x / T purchases about
  // 1 - exp(-52 a / T) of them leave: the expectation is 0.3-1 times alive x 52 x / T. One silent
  // for 37 weeks after 3,000 purchases is gone.
  for (int j = 0; j < 4; ++j) {
    CAPTURE(j);
    CAPTURE(pa[n + j]);
    CAPTURE(ce[n + j]);
    const double rate = s.frequency[n + j] / s.T[n + j];
    CHECK(pa[n + j] > 0.5);
    CHECK(ce[n + j] > 0.3 * pa[n + j] * rate * 52);
    CHECK(ce[n + j] < pa[n + j] * rate * 52);
  }
  CHECK(pa[n + 4] < 1e-12);
  CHECK(ce[n + 4] < 1e-6);
  // The heavy tail makes alpha tiny (about 0.005 weeks): a new customer's E[X(t)] for t beyond
  // ~5e4 alpha has a series that does not converge in 2e6 terms, which is an error, not a NaN.
  CHECK(bg.params().alpha < 0.01);
  UVP_CHECK_THROWS_WITH_SUBSTR(bg.expected_purchases(1e4), uvp::numeric_error,
                               "uvp::BgNbd::expected_purchases: the hypergeometric series of eq. 10 did not converge");
}

TEST_CASE("ten years of daily data (T up to 3,650 days)") {
  uvp::Rng rng(7);
  const int n = 3000;
  Vector<double> T(n);
  for (int i = 0; i < n; ++i) T[i] = 3650 * rng.uniform();
  const BgNbdParams daily{0.243, 4.414 * 7, 0.793, 2.426};  // CDNOW's rates in days
  const auto s = uvp::simulate_customers(daily, T, rng, spend);
  BgNbd bg;
  const auto res = bg.fit(s.frequency, s.recency, s.T);
  CHECK(res.converged);
  CHECK(res.warnings.empty());
  REQUIRE(res.standard_errors.size() == 4);
  const double want[4] = {daily.r, daily.alpha, daily.a, daily.b};
  const double got[4] = {bg.params().r, bg.params().alpha, bg.params().a, bg.params().b};
  for (int j = 0; j < 4; ++j) {
    CAPTURE(j);
    CHECK(std::abs(got[j] - want[j]) < 4 * res.standard_errors[static_cast<std::size_t>(j)]);
  }
  GammaGamma gg;
  gg.fit(s.frequency, s.monetary_value);
  uvp::CustomerSummary sum;
  sum.frequency = s.frequency;
  sum.recency = s.recency;
  sum.T = s.T;
  sum.monetary_value = s.monetary_value;
  sum.id.resize(n);
  check_all_finite(bg, gg, sum);
  // Ten more years: finite, and at most what a customer alive for sure would buy.
  const auto ce = bg.conditional_expected_purchases(3650, s.frequency, s.recency, s.T);
  CHECK(ce.allFinite());
  for (int i = 0; i < n; i += 97) CHECK(ce[i] <= bg.conditional_expected_purchases(3650, 0, 0, 0) * 50 + 1e3);
}

TEST_CASE("huge weights (1e9 per customer) give the unweighted estimate; x = 1e6 in the weighted set") {
  const auto d = clv_test::read_cdnow_summary();
  BgNbd plain;
  const auto r0 = plain.fit(d.x, d.tx, d.T);
  const Vector<double> w = Vector<double>::Constant(d.x.size(), 1e9);
  BgNbd heavy;
  const auto r1 = heavy.fit(d.x, d.tx, d.T, w);
  CHECK(r1.converged);
  CHECK(std::abs(heavy.params().r / plain.params().r - 1) < 1e-6);
  CHECK(std::abs(heavy.params().alpha / plain.params().alpha - 1) < 1e-6);
  CHECK(std::abs(heavy.params().a / plain.params().a - 1) < 1e-6);
  CHECK(std::abs(heavy.params().b / plain.params().b - 1) < 1e-6);
  CHECK(r1.log_likelihood == doctest::Approx(1e9 * r0.log_likelihood).epsilon(1e-9));

  // Gamma-Gamma with the same weights.
  GammaGamma g0, g1;
  g0.fit(d.x, d.zbar);
  const auto rg = g1.fit(d.x, d.zbar, w);
  CHECK(rg.converged);
  CHECK(std::abs(g1.params().p / g0.params().p - 1) < 1e-6);
  CHECK(std::abs(g1.params().q / g0.params().q - 1) < 1e-6);
  CHECK(std::abs(g1.params().gamma / g0.params().gamma - 1) < 1e-6);

  // One customer with a million repeat purchases, weighted like the rest.
  Vector<double> x(d.x.size() + 1), tx(x.size()), T(x.size()), m(x.size()), ww(x.size());
  x << d.x, 1e6;
  tx << d.tx, 38.5 - 2e-6;  // last purchase 0.05 purchase intervals ago
  T << d.T, 38.5;
  m << d.zbar, 33.0;
  ww << w, 1e9;
  BgNbd bx;
  const auto rx = bx.fit(x, tx, T, ww);
  CHECK(rx.converged);
  CHECK(finite_positive(bx.params()));
  GammaGamma gx;
  const auto rgx = gx.fit(x, m, ww);
  CHECK(rgx.converged);
  const double e = bx.conditional_expected_purchases(39, 1e6, 38.5 - 2e-6, 38.5);
  const double pa = bx.probability_alive(1e6, 38.5 - 2e-6, 38.5);
  CHECK(pa > 0.5);
  CHECK(std::isfinite(e));
  CHECK(e > 0.3 * pa * 1e6);  // at most about 39 / 38.5 of a million, less those who leave on the way
  CHECK(e < pa * 1e6 * 39 / 38.5);
  const double v = gx.conditional_expected_average_value(1e6, 33.0);
  CHECK(v == doctest::Approx(33.0).epsilon(1e-3));  // a million purchases pin the mean spend
}

TEST_CASE("tiny recency and t_x = T") {
  const auto base = population(2000, 9);
  const auto s = with_extra(base, {{1, 1e-10, 39, 20}, {5, 1e-10, 39, 20}, {1, 0, 39, 20}, {3, 39, 39, 20},
                                   {50, 39, 39, 20}, {2, 1e-12, 1e-12, 20}});
  BgNbd bg;
  const auto rb = bg.fit(s);
  CHECK(rb.converged);
  GammaGamma gg;
  CHECK(gg.fit(s).converged);
  check_all_finite(bg, gg, s);
  const auto n = base.frequency.size();
  const auto pa = bg.probability_alive(s.frequency, s.recency, s.T);
  CHECK(pa[n + 0] < pa[n + 3]);  // bought at once and never again: less likely alive
  CHECK(pa[n + 1] < 1e-3);       // five purchases in the first instant, none in 39 weeks
  CHECK(pa[n + 0] == doctest::Approx(pa[n + 2]).epsilon(1e-9));  // t_x = 1e-10 is t_x = 0
  // 50 purchases, the last one today: alive unless they left right after it.
  CHECK(pa[n + 4] == doctest::Approx(1 / (1 + bg.params().a / (bg.params().b + 49))).epsilon(1e-12));
  CHECK(pa[n + 5] > 0.5);        // a customer observed for 1e-12 weeks
}

TEST_CASE("all-zero frequency and a single customer are reported, not fitted") {
  const Vector<double> z = Vector<double>::Zero(5), T = Vector<double>::LinSpaced(5, 10, 50);
  BgNbd bg;
  UVP_CHECK_THROWS_WITH_SUBSTR(bg.fit(z, z, T), uvp::invalid_argument, "no customer has a repeat purchase");
  GammaGamma gg;
  UVP_CHECK_THROWS_WITH_SUBSTR(gg.fit(z, z), uvp::invalid_argument, "no customer has frequency > 0");
  const Vector<double> x1 = Vector<double>::Constant(1, 4), t1 = Vector<double>::Constant(1, 30),
                       T1 = Vector<double>::Constant(1, 39), m1 = Vector<double>::Constant(1, 25);
  UVP_CHECK_THROWS_WITH_SUBSTR(bg.fit(x1, t1, T1), uvp::invalid_argument, "there is only one customer");
  // Gamma-Gamma on one repeat buyer: the spread of spend across customers is not identified; the
  // fit says it did not converge, and its prediction is that customer's own mean.
  const auto rg = gg.fit(x1, m1);
  CHECK_FALSE(rg.converged);
  CHECK_FALSE(rg.warnings.empty());
  CHECK(gg.conditional_expected_average_value(4, 25) == doctest::Approx(25).epsilon(1e-3));
}

TEST_CASE("P(alive) and E[Y(t)] for a near-homogeneous purchase rate and very frequent buyers match mpmath") {
  // tests/fixtures/clv/bgnbd_hard_cases.txt, made by make_bgnbd_hard_cases_reference.py (40
  // digits): r = 1e8 (before: NaN or 0, as the series' coefficients overflowed or its sum
  // cancelled; P(alive) lost 7 digits to log(alpha+T) - log(alpha+t_x)), and CDNOW's parameters
  // with x up to 1e6.
  const auto rows = clv_test::fixture_rows("clv/bgnbd_hard_cases.txt", 10);
  REQUIRE(rows.size() == 9);
  for (const auto& c : rows) {
    CAPTURE(c[0]);
    CAPTURE(c[4]);
    CAPTURE(c[5]);
    const BgNbd m(BgNbdParams{c[0], c[1], c[2], c[3]});
    const double t = c[4], x = c[5], tx = c[6], T = c[7];
    CHECK(m.probability_alive(x, tx, T) == doctest::Approx(c[8]).epsilon(1e-11));
    CHECK(m.conditional_expected_purchases(t, x, tx, T) == doctest::Approx(c[9]).epsilon(1e-11));
    // The multi-horizon path (shared series, as in score_customers) agrees.
    const double ts[3] = {t, 0.5 * t, t};
    double out[3];
    uvp::detail::bgnbd_conditional_expected(m.params(), ts, 3, x, tx, T, out);
    CHECK(out[0] == doctest::Approx(c[9]).epsilon(1e-11));
    CHECK(out[2] == out[0]);
    CHECK(std::isfinite(out[1]));
  }
}
