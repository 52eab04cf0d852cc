// SPDX-License-Identifier: Apache-2.0
// Synthetic customers drawn from the BG/NBD and Gamma-Gamma generative processes (tests, benchmarks).
#pragma once

#include <cmath>
#include <optional>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// Simulated summaries, one entry per customer, plus the latent draws behind them.
struct SimulatedCustomers {
  Vector<double> frequency, recency, T, monetary_value;
  Vector<double> purchase_rate;        ///< lambda_i
  Vector<double> dropout_probability;  ///< p_i
  Vector<double> alive;                ///< 1 if still alive at T_i, else 0
};

namespace detail {

/// Gamma(shape k, scale 1) by Marsaglia & Tsang (2000), "A simple method for generating gamma
/// variables", ACM TOMS 26(3); k < 1 through Gamma(k) = Gamma(k + 1) U^(1/k).
inline double draw_gamma(Rng& rng, double k) {
  if (k < 1) {
    const double u = rng.uniform();
    return draw_gamma(rng, k + 1) * std::pow(u, 1 / k);
  }
  const double d = k - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

inline double draw_beta(Rng& rng, double a, double b) {
  for (;;) {
    const double x = draw_gamma(rng, a), y = draw_gamma(rng, b);
    if (x + y > 0) return x / (x + y);
  }
}

}  // namespace detail

/// Draws one customer per entry of T (their age at the end of observation), all in the time unit
/// of `purchases.alpha`: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); from the first purchase at
/// time 0 the customer buys at the arrival times of a Poisson process of rate lambda, and after each
/// repeat purchase drops out with probability p (FHL 2005, section 3). frequency / recency are the
/// repeat purchases in (0, T] and the time of the last one. With `spend`, each customer's mean
/// value per transaction is nu ~ Gamma(q, rate gamma) and the mean of their x repeat values
/// (each Gamma(p, rate nu)) is drawn exactly as Gamma(p x, rate nu) / x; monetary_value is 0 when
/// x = 0. Reproducible for a given Rng seed. Parameters > 0 and T finite >= 0, else
/// uvp::invalid_argument.
inline SimulatedCustomers simulate_customers(const BgNbdParams& purchases, const ConstVectorRef<double>& T, Rng& rng,
                                             const std::optional<GammaGammaParams>& spend = std::nullopt) {
  constexpr const char* where = "uvp::simulate_customers";
  detail::check_bgnbd_params(where, purchases);
  if (spend) detail::check_gg_params(where, *spend);
  for (index i = 0; i < T.size(); ++i)
    if (!std::isfinite(T[i]) || T[i] < 0)
      detail::raise<invalid_argument>(where, ": T[", i, "] = ", T[i], " must be finite and >= 0");
  const index n = T.size();
  SimulatedCustomers s;
  s.frequency = Vector<double>::Zero(n);
  s.recency = Vector<double>::Zero(n);
  s.T = T;
  s.monetary_value = Vector<double>::Zero(n);
  s.purchase_rate.resize(n);
  s.dropout_probability.resize(n);
  s.alive.resize(n);
  for (index i = 0; i < n; ++i) {
    const double lambda = detail::draw_gamma(rng, purchases.r) / purchases.alpha;
    const double p = detail::draw_beta(rng, purchases.a, purchases.b);
    s.purchase_rate[i] = lambda;
    s.dropout_probability[i] = p;
    double t = 0, x = 0, last = 0;
    bool alive = true;
    if (lambda > 0) {
      for (;;) {
        t += -std::log1p(-rng.uniform()) / lambda;
        if (t > T[i]) break;
        x += 1;
        last = t;
        if (rng.uniform() < p) {
          alive = false;
          break;
        }
      }
    }
    s.frequency[i] = x;
    s.recency[i] = last;
    s.alive[i] = alive ? 1.0 : 0.0;
    if (spend && x > 0) {
      const double nu = detail::draw_gamma(rng, spend->q) / spend->gamma;
      s.monetary_value[i] = detail::draw_gamma(rng, spend->p * x) / nu / x;
    }
  }
  return s;
}

}  // namespace uvp
