// SPDX-License-Identifier: Apache-2.0
// Discounted customer lifetime value from BG/NBD (purchases) and Gamma-Gamma (spend), all customers in parallel.
#pragma once

#include <cmath>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// Horizon and discounting of customer_lifetime_value; the defaults are lifetimes'.
struct ClvOptions {
  int months = 12;                      ///< horizon in months (lifetimes' `time`), >= 1
  double discount_rate = 0.01;          ///< monthly discount rate (lifetimes' `discount_rate`), finite and > -1
  TimeUnit time_unit = TimeUnit::week;  ///< the unit of recency and T
  /// Time units in one month; 0 takes lifetimes' factors: 30 for days, 4.345 for weeks.
  double periods_per_month = 0;
};

/// The time units in one month for `options`.
inline double periods_per_month(const ClvOptions& options) noexcept {
  if (options.periods_per_month > 0) return options.periods_per_month;
  return options.time_unit == TimeUnit::week ? 4.345 : 30.0;
}

/// Per-customer scores from score_customers; one entry per customer.
struct CustomerScores {
  Vector<double> probability_alive;       ///< P(alive | x, t_x, T)
  Vector<double> expected_purchases;      ///< E[purchases in the next `months` months | x, t_x, T]
  Vector<double> expected_average_value;  ///< Gamma-Gamma E[spend per purchase | x, m_x]
  Vector<double> clv;                     ///< discounted value over the horizon (see customer_lifetime_value)
};

namespace detail {
inline void check_clv_options(const char* where, const ClvOptions& o) {
  if (o.months < 1) raise<invalid_argument>(where, ": months must be >= 1, got ", o.months);
  if (!std::isfinite(o.discount_rate) || !(o.discount_rate > -1))
    raise<invalid_argument>(where, ": discount_rate must be finite and > -1, got ", o.discount_rate);
  if (!std::isfinite(o.periods_per_month) || o.periods_per_month < 0)
    raise<invalid_argument>(where, ": periods_per_month must be finite and >= 0, got ", o.periods_per_month);
}
}  // namespace detail

/// Scores every customer (OpenMP-parallel over customers): P(alive), expected purchases over the
/// horizon, the Gamma-Gamma expected spend per purchase, and the discounted CLV
///   CLV = sum_{i=1}^{months} E[M] (E[Y(i u) | .] - E[Y((i-1) u) | .]) / (1 + discount_rate)^i,
/// u = periods_per_month(options): the expected purchases of month i times the expected spend,
/// discounted monthly - lifetimes' `GammaGammaFitter.customer_lifetime_value` with a BG/NBD model.
/// The `months` cumulative expectations of a customer share one hypergeometric series.
/// Both models must be fitted (uvp::not_fitted_error); the data are checked as in BgNbd::fit and
/// GammaGamma::fit (uvp::invalid_argument); q <= 1 throws uvp::numeric_error.
inline CustomerScores score_customers(const BgNbd& purchases, const GammaGamma& spend,
                                      const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                      const ConstVectorRef<double>& T, const ConstVectorRef<double>& monetary_value,
                                      const ClvOptions& options = {}) {
  constexpr const char* where = "uvp::score_customers";
  detail::check_clv_options(where, options);
  if (!purchases.is_fitted() || !spend.is_fitted())
    detail::raise<not_fitted_error>(where, ": the ", purchases.is_fitted() ? "GammaGamma" : "BgNbd",
                                    " model is not fitted (call fit() first)");
  detail::check_rft(where, frequency, recency, T);
  detail::check_size(where, "monetary_value", monetary_value.size(), frequency.size());
  const index n = frequency.size();
  CustomerScores out;
  out.expected_average_value = spend.conditional_expected_average_value(frequency, monetary_value);
  out.probability_alive.resize(n);
  out.expected_purchases.resize(n);
  out.clv.resize(n);
  const BgNbdParams p = purchases.params();
  const int months = options.months;
  const double u = periods_per_month(options);
  std::vector<double> t(static_cast<std::size_t>(months)), discount(static_cast<std::size_t>(months));
  for (int i = 0; i < months; ++i) {
    t[static_cast<std::size_t>(i)] = (i + 1) * u;
    discount[static_cast<std::size_t>(i)] = std::pow(1 + options.discount_rate, -(i + 1));
  }
#if defined(_OPENMP)
#pragma omp parallel if (n > 2048)
#endif
  {
    std::vector<double> cum(static_cast<std::size_t>(months));
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 512)
#endif
    for (index i = 0; i < n; ++i) {
      const double x = frequency[i], tx = recency[i], age = T[i];
      double alive = 1;
      detail::bgnbd_conditional_expected(p, t.data(), months, x, tx, age, cum.data(), &alive);
      double value = 0, prev = 0;
      for (int k = 0; k < months; ++k) {
        value += (cum[static_cast<std::size_t>(k)] - prev) * discount[static_cast<std::size_t>(k)];
        prev = cum[static_cast<std::size_t>(k)];
      }
      out.expected_purchases[i] = prev;
      out.clv[i] = value * out.expected_average_value[i];
      out.probability_alive[i] = alive;  // P(alive) = 1 / the expectation's denominator
    }
  }
  return out;
}

inline CustomerScores score_customers(const BgNbd& purchases, const GammaGamma& spend, const CustomerSummary& summary,
                                      const ClvOptions& options = {}) {
  return score_customers(purchases, spend, summary.frequency, summary.recency, summary.T, summary.monetary_value,
                         options);
}

/// The discounted CLV alone (score_customers(...).clv).
inline Vector<double> customer_lifetime_value(const BgNbd& purchases, const GammaGamma& spend,
                                              const ConstVectorRef<double>& frequency,
                                              const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                              const ConstVectorRef<double>& monetary_value,
                                              const ClvOptions& options = {}) {
  return score_customers(purchases, spend, frequency, recency, T, monetary_value, options).clv;
}

inline Vector<double> customer_lifetime_value(const BgNbd& purchases, const GammaGamma& spend,
                                              const CustomerSummary& summary, const ClvOptions& options = {}) {
  return score_customers(purchases, spend, summary, options).clv;
}

}  // namespace uvp
