// SPDX-License-Identifier: Apache-2.0
// Synthetic customers drawn from the BG/NBD and Gamma-Gamma generative processes (tests, benchmarks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/bg_nbd_covariates.hpp"
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

/// One BG/NBD purchase history of length T at purchase rate lambda and dropout probability p (the
/// process of simulate_customers), written into s.frequency / recency / alive at i.
inline void draw_bgnbd_history(Rng& rng, double lambda, double p, double T, SimulatedCustomers& s, index i) {
  double t = 0, x = 0, last = 0;
  bool alive = true;
  if (lambda > 0) {
    for (;;) {
      t += -std::log1p(-rng.uniform()) / lambda;
      if (t > T) break;
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
    detail::draw_bgnbd_history(rng, lambda, p, T[i], s, i);
    const double x = s.frequency[i];
    if (spend && x > 0) {
      const double nu = detail::draw_gamma(rng, spend->q) / spend->gamma;
      s.monetary_value[i] = detail::draw_gamma(rng, spend->p * x) / nu / x;
    }
  }
  return s;
}

/// Customers drawn from the BG/NBD with static covariates: customer i buys and drops out as in
/// simulate_customers, with lambda ~ Gamma(r, rate alpha_i) and p ~ Beta(a_i, b_i) at their own
/// parameters (see BgNbdCovariatesParams: alpha_i = alpha exp(-gamma_trans' z_trans,i), a_i and b_i
/// scaled by exp(gamma_life' z_life,i)). Z_trans / Z_life: one row per entry of T (or no columns).
/// Reproducible for a given Rng seed; bad parameters, T or covariates throw uvp::invalid_argument.
inline SimulatedCustomers simulate_customers(const BgNbdCovariatesParams& params, const ConstMatrixRef<double>& Z_trans,
                                             const ConstMatrixRef<double>& Z_life, const ConstVectorRef<double>& T,
                                             Rng& rng) {
  constexpr const char* where = "uvp::simulate_customers";
  const index n = T.size();
  detail::check_covariates(where, "Z_trans", Z_trans, n);
  detail::check_covariates(where, "Z_life", Z_life, n);
  detail::check_bgnbd_cov_params(where, params, Z_trans.cols(), Z_life.cols());
  for (index i = 0; i < n; ++i)
    if (!std::isfinite(T[i]) || T[i] < 0)
      detail::raise<invalid_argument>(where, ": T[", i, "] = ", T[i], " must be finite and >= 0");
  SimulatedCustomers s;
  s.frequency = Vector<double>::Zero(n);
  s.recency = Vector<double>::Zero(n);
  s.T = T;
  s.monetary_value = Vector<double>::Zero(n);
  s.purchase_rate.resize(n);
  s.dropout_probability.resize(n);
  s.alive.resize(n);
  for (index i = 0; i < n; ++i) {
    const BgNbdParams q = detail::bgnbd_individual_params(params, Z_trans, Z_life, i);
    if (!(q.alpha > 0 && q.a > 0 && q.b > 0) || !std::isfinite(q.alpha) || !std::isfinite(q.a) || !std::isfinite(q.b))
      detail::raise<invalid_argument>(where, ": customer ", i, "'s parameters alpha_i = ", q.alpha, ", a_i = ", q.a,
                                      ", b_i = ", q.b, " are not finite and > 0 (covariates too large for gamma)");
    const double lambda = detail::draw_gamma(rng, q.r) / q.alpha;
    const double p = detail::draw_beta(rng, q.a, q.b);
    s.purchase_rate[i] = lambda;
    s.dropout_probability[i] = p;
    detail::draw_bgnbd_history(rng, lambda, p, T[i], s, i);
  }
  return s;
}

namespace detail {

/// The random stream of customer i under `seed` (SplitMix64 of the pair, so streams do not
/// overlap): what a customer draws does not depend on which thread or call draws it.
inline Rng customer_rng(std::uint64_t seed, index i) noexcept {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(i) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return Rng(z ^ (z >> 31));
}

}  // namespace detail

/// simulate_customers with customer i drawn from its own stream of `seed` (detail::customer_rng),
/// in parallel (OpenMP): the same seed gives the same customers whatever the thread count, but not
/// the customers of the Rng& overload. Fast enough for 10^7 customers.
inline SimulatedCustomers simulate_customers(const BgNbdParams& purchases, const ConstVectorRef<double>& T,
                                             std::uint64_t seed,
                                             const std::optional<GammaGammaParams>& spend = std::nullopt) {
  constexpr const char* where = "uvp::simulate_customers";
  detail::check_bgnbd_params(where, purchases);
  if (spend) detail::check_gg_params(where, *spend);
  for (index i = 0; i < T.size(); ++i)
    if (!std::isfinite(T[i]) || T[i] < 0)
      detail::raise<invalid_argument>(where, ": T[", i, "] = ", T[i], " must be finite and >= 0");
  const index n = T.size();
  SimulatedCustomers s;
  s.frequency.resize(n);
  s.recency.resize(n);
  s.T = T;
  s.monetary_value = Vector<double>::Zero(n);
  s.purchase_rate.resize(n);
  s.dropout_probability.resize(n);
  s.alive.resize(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4096) if (n > 16384)
#endif
  for (index i = 0; i < n; ++i) {
    Rng rng = detail::customer_rng(seed, i);
    const double lambda = detail::draw_gamma(rng, purchases.r) / purchases.alpha;
    const double p = detail::draw_beta(rng, purchases.a, purchases.b);
    s.purchase_rate[i] = lambda;
    s.dropout_probability[i] = p;
    detail::draw_bgnbd_history(rng, lambda, p, T[i], s, i);
    const double x = s.frequency[i];
    if (spend && x > 0) {
      const double nu = detail::draw_gamma(rng, spend->q) / spend->gamma;
      s.monetary_value[i] = detail::draw_gamma(rng, spend->p * x) / nu / x;
    }
  }
  return s;
}

/// One row of a simulated transaction log (simulate_transactions).
struct SimulatedTransaction {
  index customer;  ///< the customer's number
  Date date;
  double amount;
};

/// Appends to `out` the transactions of customers [begin, end) of a synthetic log in whole days,
/// customer by customer and in date order within each: customer i makes their first purchase
/// round(T[i] * days_per(unit)) days before `observation_end`, then buys and drops out as in
/// simulate_customers (parameters in `unit`), a purchase at time t after the first landing on day
/// first + floor(t * days_per(unit)); every transaction (the first too) is worth Gamma(p, rate nu_i)
/// with nu_i ~ Gamma(q, rate gamma). Customer i draws from its own stream of `seed`, so any split
/// of the customers into calls, and any thread count (OpenMP over blocks of customers), gives the
/// same log - a log can be streamed in chunks. Its summary at observation_end is BG/NBD data in
/// whole days (same-day purchases merge). Bad parameters, T or range throw uvp::invalid_argument.
inline void simulate_transactions(const BgNbdParams& purchases, const GammaGammaParams& spend,
                                  const ConstVectorRef<double>& T, Date observation_end, TimeUnit unit,
                                  std::uint64_t seed, index begin, index end, std::vector<SimulatedTransaction>& out) {
  constexpr const char* where = "uvp::simulate_transactions";
  detail::check_bgnbd_params(where, purchases);
  detail::check_gg_params(where, spend);
  if (begin < 0 || end < begin || end > T.size())
    detail::raise<invalid_argument>(where, ": customers [", begin, ", ", end, ") are not within [0, ", T.size(), ")");
  for (index i = begin; i < end; ++i)
    if (!std::isfinite(T[i]) || T[i] < 0 || T[i] * days_per(unit) > 1e8)
      detail::raise<invalid_argument>(where, ": T[", i, "] = ", T[i], " must be finite, >= 0 and < 1e8 days");
  constexpr index block = 4096;
  const index blocks = (end - begin + block - 1) / block;
  std::vector<std::vector<SimulatedTransaction>> parts(static_cast<std::size_t>(blocks));
  const double dpu = days_per(unit);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
#endif
  for (index b = 0; b < blocks; ++b) {
    auto& part = parts[static_cast<std::size_t>(b)];
    for (index i = begin + b * block; i < std::min(end, begin + (b + 1) * block); ++i) {
      Rng rng = detail::customer_rng(seed, i);
      const double lambda = detail::draw_gamma(rng, purchases.r) / purchases.alpha;
      const double p = detail::draw_beta(rng, purchases.a, purchases.b);
      const double nu = detail::draw_gamma(rng, spend.q) / spend.gamma;
      const auto age = static_cast<std::int64_t>(std::llround(T[i] * dpu));
      const std::int64_t first = observation_end.days() - age;
      const double horizon = static_cast<double>(age) / dpu;
      part.push_back({i, Date::from_days(first), detail::draw_gamma(rng, spend.p) / nu});
      double t = 0;
      if (lambda > 0) {
        for (;;) {
          t += -std::log1p(-rng.uniform()) / lambda;
          if (t > horizon) break;
          const auto day = std::min(age, static_cast<std::int64_t>(std::llround(t * dpu)));
          part.push_back({i, Date::from_days(first + day), detail::draw_gamma(rng, spend.p) / nu});
          if (rng.uniform() < p) break;
        }
      }
    }
  }
  std::size_t total = out.size();
  for (const auto& part : parts) total += part.size();
  out.reserve(total);
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
}

}  // namespace uvp
