// SPDX-License-Identifier: Apache-2.0
// Tests of the BG/NBD + Gamma-Gamma simulator, and that the fits recover the generating parameters.
#include <doctest/doctest.h>

#include <cmath>

#include "support/test_support.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/simulate.hpp"

namespace {
const uvp::BgNbdParams truth{0.243, 4.414, 0.793, 2.426};
const uvp::GammaGammaParams spend{6.25, 3.74, 15.44};
}  // namespace

TEST_CASE("draw_gamma has the right mean and variance; draw_beta the right mean") {
  uvp::Rng rng(7);
  for (double k : {0.243, 0.793, 2.5, 12.0}) {
    CAPTURE(k);
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const double g = uvp::detail::draw_gamma(rng, k);
      s += g, s2 += g * g;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    CHECK(std::abs(mean - k) < 4 * std::sqrt(k / n));                              // 4 standard errors
    CHECK(std::abs(var - k) < 0.05 * k + 4 * std::sqrt((6 * k * k + 2 * k) / n));  // loose, heavy tails
  }
  double s = 0;
  for (int i = 0; i < 100000; ++i) s += uvp::detail::draw_beta(rng, 0.793, 2.426);
  CHECK(std::abs(s / 100000 - 0.793 / (0.793 + 2.426)) < 4 * std::sqrt(0.25 * 0.25 / 3.2 / 100000) + 1e-3);
}

TEST_CASE("simulated customers agree with E[X(T)] and P(alive) of the model") {
  const int n = 100000;
  uvp::Rng rng(2024);
  const uvp::Vector<double> T = uvp::Vector<double>::Constant(n, 39.0);
  const auto s = uvp::simulate_customers(truth, T, rng);
  const uvp::BgNbd model(truth);
  // FHL eq. 9: E[X(39)] = 1.1967... repeat purchases for a new customer.
  const double mean = s.frequency.mean();
  const double sd = std::sqrt((s.frequency.array() - mean).square().mean());
  CHECK(std::abs(mean - model.expected_purchases(39)) < 4 * sd / std::sqrt(double(n)));
  // P(alive | data) is the posterior probability: its average equals the simulated alive share.
  const auto pa = model.probability_alive(s.frequency, s.recency, s.T);
  CHECK(std::abs(pa.mean() - s.alive.mean()) < 4 * 0.5 / std::sqrt(double(n)));
  CHECK((s.recency.array() <= s.T.array()).all());
  CHECK(((s.frequency.array() > 0) || (s.recency.array() == 0)).all());
  // Same seed, same customers.
  uvp::Rng again(2024);
  CHECK(uvp::simulate_customers(truth, T, again).frequency == s.frequency);
}

TEST_CASE("the fits recover the generating parameters of 100,000 synthetic customers") {
  // Under a sanitizer 10,000 customers, with bounds sqrt(10) times wider (the same number of
  // standard errors): the same paths at a tenth of the instrumented work.
  const int n = uvp_test::sanitized ? 10000 : 100000;
  const double widen = std::sqrt(100000.0 / n);
  uvp::Rng rng(99);
  uvp::Vector<double> T(n);
  for (int i = 0; i < n; ++i) T[i] = rng.uniform(27.0, 39.0);  // first purchases spread over 12 weeks
  const auto s = uvp::simulate_customers(truth, T, rng, spend);
  uvp::BgNbd bg;
  const auto r = bg.fit(s.frequency, s.recency, s.T);
  CHECK(r.converged);
  const auto p = bg.params();
  // Across seeds at this size the estimates scatter by about 1% (r, alpha) to 3% (a, b) and 4% (p,
  // gamma) of the truth: the bounds are about 4 of those.
  CHECK(p.r == doctest::Approx(truth.r).epsilon(0.06 * widen));
  CHECK(p.alpha == doctest::Approx(truth.alpha).epsilon(0.08 * widen));
  CHECK(p.a == doctest::Approx(truth.a).epsilon(0.10 * widen));
  CHECK(p.b == doctest::Approx(truth.b).epsilon(0.12 * widen));
  uvp::GammaGamma gg;
  const auto rg = gg.fit(s.frequency, s.monetary_value);
  CHECK(rg.converged);
  CHECK(rg.warnings.empty());
  CHECK(gg.params().p == doctest::Approx(spend.p).epsilon(0.15 * widen));  // p and gamma trade off: ~4 sd
  CHECK(gg.params().q == doctest::Approx(spend.q).epsilon(0.10 * widen));
  CHECK(gg.params().gamma == doctest::Approx(spend.gamma).epsilon(0.20 * widen));
  // The population mean spend is better determined than p, q, gamma separately.
  CHECK(gg.expected_average_value() == doctest::Approx(spend.p * spend.gamma / (spend.q - 1)).epsilon(0.03 * widen));
}

TEST_CASE("simulate_customers validates its inputs") {
  uvp::Rng rng(1);
  const uvp::Vector<double> T = uvp::Vector<double>::Constant(3, -1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simulate_customers(truth, T, rng), uvp::invalid_argument,
                               "uvp::simulate_customers: T[0] = -1 must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simulate_customers({0, 1, 1, 1}, uvp::Vector<double>::Ones(2), rng),
                               uvp::invalid_argument, "parameter r must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::simulate_customers(truth, uvp::Vector<double>::Ones(2), rng, uvp::GammaGammaParams{1, -2, 1}),
      uvp::invalid_argument, "parameter q must be finite and > 0, got -2");
}
