// SPDX-License-Identifier: Apache-2.0
// Tests of the Gamma-Gamma spend model: the published CDNOW fit, the gradient, predictions, the correlation warning.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/gamma_gamma.hpp"

using uvp::GammaGamma;
using uvp::GammaGammaParams;

namespace {
double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
}  // namespace

TEST_CASE("Gamma-Gamma on the published CDNOW summary matches Fader & Hardie and scipy's optimum") {
  const auto d = clv_test::read_cdnow_summary();
  GammaGamma m;
  const auto res = m.fit(d.x, d.zbar);
  CHECK(res.converged);
  CHECK(res.customers == 946);
  CHECK(res.warnings.empty());  // correlation 0.11 < 0.3
  const auto p = m.params();
  CHECK(std::abs(p.p - 6.25) < 5e-3);
  CHECK(std::abs(p.q - 3.74) < 5e-3);
  CHECK(std::abs(p.gamma - 15.44) < 1e-2);  // 15.4477 on the cent-rounded zbar (scipy: the same)
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/gg_mle.txt"));
  CHECK(rel(p.p, ref[0]) < 1e-5);
  CHECK(rel(p.q, ref[1]) < 1e-5);
  CHECK(rel(p.gamma, ref[2]) < 1e-5);
  CHECK(res.log_likelihood >= ref[3] - 1e-8);
  CHECK(res.log_likelihood == doctest::Approx(ref[3]).epsilon(1e-11));
  CHECK(m.log_likelihood(d.x, d.zbar) == doctest::Approx(res.log_likelihood).epsilon(1e-14));
  // x = 0 customers carry no spend information: dropping them changes nothing.
  const GammaGammaParams q = p;
  CHECK(uvp::gamma_gamma_log_likelihood(q, d.x, d.zbar) == doctest::Approx(res.log_likelihood).epsilon(1e-14));
}

TEST_CASE("Gamma-Gamma on the summary built from CDNOW_sample.txt matches the published values to their precision") {
  // The published summary rounds zbar to cents, which moves gamma by 0.004; built from the
  // transactions the mean spends are exact.
  const auto log = uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt"));
  const auto s = uvp::summary_from_transactions(log, uvp::Date::from_ymd(1997, 9, 30));
  GammaGamma m;
  CHECK(m.fit(s).converged);
  CHECK(std::abs(m.params().p - 6.25) < 5e-3);
  CHECK(std::abs(m.params().q - 3.74) < 5e-3);
  CHECK(std::abs(m.params().gamma - 15.44) < 5e-3);
}

TEST_CASE("the Gamma-Gamma fit converges from several starting points") {
  const auto d = clv_test::read_cdnow_summary();
  GammaGamma base;
  base.fit(d.x, d.zbar);
  for (const GammaGammaParams s : {GammaGammaParams{1, 1, 1}, GammaGammaParams{0.1, 10, 100},
                                   GammaGammaParams{20, 1.5, 2}, GammaGammaParams{3, 30, 300}}) {
    CAPTURE(s.p);
    uvp::GammaGammaFitOptions o;
    o.initial = s;
    GammaGamma m;
    const auto res = m.fit(d.x, d.zbar, o);
    CHECK(res.converged);
    CHECK(rel(m.params().p, base.params().p) < 1e-5);
    CHECK(rel(m.params().q, base.params().q) < 1e-5);
    CHECK(rel(m.params().gamma, base.params().gamma) < 1e-5);
  }
}

TEST_CASE("the Gamma-Gamma gradient matches central differences") {
  const auto d = clv_test::read_cdnow_summary();
  for (const GammaGammaParams p : {GammaGammaParams{6.25, 3.74, 15.44}, GammaGammaParams{1.5, 0.7, 80}}) {
    Eigen::Vector3d g, fd;
    uvp::gamma_gamma_log_likelihood(p, d.x, d.zbar, &g);
    for (int k = 0; k < 3; ++k) {
      auto at = [&](double step) {
        GammaGammaParams q = p;
        double* pq[3] = {&q.p, &q.q, &q.gamma};
        *pq[k] += step;
        return uvp::gamma_gamma_log_likelihood(q, d.x, d.zbar);
      };
      const double h = 1e-4 * (k == 0 ? p.p : k == 1 ? p.q : p.gamma);
      fd[k] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    }
    CAPTURE(g.transpose());
    CAPTURE(fd.transpose());
    CHECK(uvp_test::rel_error(g, fd) < 1e-7);
  }
}

TEST_CASE("conditional expected spend matches note 025 eq. 5 (mpmath) at the published parameters") {
  const GammaGamma m({6.25, 3.74, 15.44});
  for (const auto& row : clv_test::fixture_rows("clv/gg_predictions.txt", 4)) {
    CAPTURE(row[0]);
    CHECK(rel(m.conditional_expected_average_value(row[1], row[2]), row[3]) < 1e-14);
  }
  CHECK(m.expected_average_value() == doctest::Approx(6.25 * 15.44 / 2.74).epsilon(1e-15));
  // Free repeat purchases (m_x = 0 with x > 0) cannot be fitted (log m) but can be scored.
  CHECK(m.conditional_expected_average_value(2, 0) == doctest::Approx(6.25 * 15.44 / (12.5 + 2.74)).epsilon(1e-15));
  const auto d = clv_test::read_cdnow_summary();
  const auto v = m.conditional_expected_average_value(d.x, d.zbar);
  CHECK(v[0] == m.conditional_expected_average_value(d.x[0], d.zbar[0]));
  CHECK(v[2] == m.expected_average_value());  // x = 0: the population mean
}

TEST_CASE("a frequency / spend correlation is returned as a readable warning, not printed") {
  const auto d = clv_test::read_cdnow_summary();
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/gg_correlation.txt"));
  CHECK(uvp::frequency_monetary_correlation(d.x, d.zbar) == doctest::Approx(ref[0]).epsilon(1e-12));
  // Make spend grow with frequency.
  uvp::Vector<double> m = d.zbar;
  for (Eigen::Index i = 0; i < m.size(); ++i)
    if (d.x[i] > 0) m[i] += 8 * d.x[i];
  const double rho = uvp::frequency_monetary_correlation(d.x, m);
  CHECK(rho > 0.3);
  GammaGamma g;
  const auto res = g.fit(d.x, m);
  CHECK(res.converged);
  REQUIRE(res.warnings.size() == 1);
  char expected[160];
  std::snprintf(expected, sizeof expected,
                "uvp::GammaGamma::fit: frequency and monetary_value are correlated (Pearson r = %.3f over 946 "
                "customers with repeat purchases, threshold 0.3)",
                rho);
  CHECK(res.warnings[0].find(expected) == 0);
  CHECK(res.warnings[0].find("assumes a customer's spend per transaction is independent") != std::string::npos);
  CHECK(g.is_fitted());  // a warning, not a refusal
  uvp::GammaGammaFitOptions o;
  o.correlation_warning = 0.05;  // CDNOW's 0.11 is then flagged too
  CHECK(GammaGamma().fit(d.x, d.zbar, o).warnings.size() == 1);
}

TEST_CASE("bad Gamma-Gamma inputs throw uvp errors naming the argument and the value") {
  using V = uvp::Vector<double>;
  V x(3), m(3);
  x << 0, 2, 1;
  m << 0, 5, 3;
  GammaGamma g;
  UVP_CHECK_THROWS_WITH_SUBSTR(g.params(), uvp::not_fitted_error, "uvp::GammaGamma::params: the model is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(g.conditional_expected_average_value(1, 2), uvp::not_fitted_error, "not fitted");
  V b = m;
  b[0] = 4;
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(x, b), uvp::invalid_argument,
                               "uvp::GammaGamma::fit: monetary_value[0] = 4 but frequency[0] = 0");
  b = m;
  b[1] = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(x, b), uvp::invalid_argument, "monetary_value[1] = 0 with frequency[1] = 2");
  b[1] = -3;
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(x, b), uvp::invalid_argument, "monetary_value[1] = -3 must be finite and >= 0");
  b[1] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(x, b), uvp::invalid_argument, "monetary_value[1] = nan");
  V y = x;
  y[2] = 0.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(y, m), uvp::invalid_argument, "frequency[2] = 0.5 must be a whole number >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(x, V(2)), uvp::shape_error, "monetary_value has size 2, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(V(0), V(0)), uvp::invalid_argument, "frequency is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(g.fit(V::Zero(3), V::Zero(3)), uvp::invalid_argument, "no customer has frequency > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(GammaGamma({1, 1, 0}), uvp::invalid_argument,
                               "parameter gamma must be finite and > 0, got 0");
  const GammaGamma low_q({2, 0.8, 10});
  UVP_CHECK_THROWS_WITH_SUBSTR(
      low_q.expected_average_value(), uvp::numeric_error,
      "uvp::GammaGamma::expected_average_value: q = 0.8 <= 1, so the population mean spend is infinite");
  UVP_CHECK_THROWS_WITH_SUBSTR(low_q.conditional_expected_average_value(0, 0), uvp::numeric_error,
                               "p * frequency + q - 1 = -0.19999999999999996 <= 0 (q = 0.8)");
  CHECK(low_q.conditional_expected_average_value(1, 20) == doctest::Approx(2 * 30 / 1.8));
}
