// SPDX-License-Identifier: Apache-2.0
// Discounted customer lifetime value from a purchase model (BG/NBD, MBG/NBD, Pareto/NBD) and Gamma-Gamma (spend), all customers in parallel.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/clv_scoring.hpp"

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

/// Continuous discounting of expected purchases over a horizon (see discounted_expected_purchases).
/// Both in the time unit of recency and T: with weekly data, rate is per week (an annual rate of
/// 10% compounded continuously is rate = 0.1 / 52) and horizon is in weeks.
struct ContinuousDiscounting {
  double rate = 0;  ///< delta, finite and >= 0 (> 0 for an infinite horizon)
  double horizon = std::numeric_limits<double>::infinity();  ///< H, > 0; infinity: the whole residual lifetime
};

namespace detail {
inline void check_clv_options(const char* where, const ClvOptions& o) {
  if (o.months < 1) raise<invalid_argument>(where, ": months must be >= 1, got ", o.months);
  if (!std::isfinite(o.discount_rate) || !(o.discount_rate > -1))
    raise<invalid_argument>(where, ": discount_rate must be finite and > -1, got ", o.discount_rate);
  if (!std::isfinite(o.periods_per_month) || o.periods_per_month < 0)
    raise<invalid_argument>(where, ": periods_per_month must be finite and >= 0, got ", o.periods_per_month);
}

inline void check_discounting(const char* where, const ContinuousDiscounting& d) {
  if (!std::isfinite(d.rate) || d.rate < 0)
    raise<invalid_argument>(where, ": discounting.rate must be finite and >= 0, got ", d.rate);
  if (!(d.horizon > 0)) raise<invalid_argument>(where, ": discounting.horizon must be > 0, got ", d.horizon);
  if (std::isinf(d.horizon) && d.rate == 0)
    raise<invalid_argument>(where, ": discounting.rate must be > 0 when the horizon is infinite, got 0");
}

/// The monthly horizons and discount factors of the discrete CLV sum (ClvOptions).
struct MonthlyDiscounting {
  explicit MonthlyDiscounting(const ClvOptions& options) {
    const double u = periods_per_month(options);
    for (int i = 0; i < options.months; ++i) {
      t.push_back((i + 1) * u);
      discount.push_back(std::pow(1 + options.discount_rate, -(i + 1)));
    }
  }
  std::vector<double> t, discount;
};

/// sum_i (E[Y(t_i)] - E[Y(t_{i-1})]) / (1 + d)^i for one customer (the discounted purchases of
/// score_customers); `cum` is scratch of schedule.t.size() entries.
inline double bgnbd_monthly_discounted_one(const BgNbdParams& p, const MonthlyDiscounting& schedule, double x,
                                           double tx, double T, double* cum) noexcept {
  const int months = static_cast<int>(schedule.t.size());
  bgnbd_conditional_expected(p, schedule.t.data(), months, x, tx, T, cum);
  double value = 0, prev = 0;
  for (int k = 0; k < months; ++k) {
    value += (cum[k] - prev) * schedule.discount[static_cast<std::size_t>(k)];
    prev = cum[k];
  }
  return value;
}

/// Continuously discounted expected purchases in (T, T + H] of one customer of a model with
/// cumulative expectation E[Y(t)] (expected(const double* t, int K, double* out) writes it for K
/// horizons at once):
///   DERT = int_0^H exp(-delta t) dE[Y(t)] = exp(-delta H) E[Y(H)] + delta int_0^H exp(-delta t) E[Y(t)] dt
/// (integration by parts). For BG/NBD and Pareto/NBD, E[Y(t)] is analytic in t with its nearest
/// singularity at t = -scale (scale = alpha + T, resp. beta + T), so the integral is taken in
/// v = log(1 + t / scale) (dt = (scale + t) dv), which spreads the bend near t = 0 and the long
/// tail evenly, by 16-point Gauss-Legendre on panels of width <= 0.5 in v (one call of `expected`
/// per panel: BG/NBD's 16 horizons share one hypergeometric series). The integral is cut where
/// delta t = 46 (exp(-46) ~ 1e-20, below the double precision of the result).
template <class Expected>
double continuous_dert(Expected&& expected, double scale, double delta, double H) noexcept {
  static constexpr double node[8] = {0.09501250983763745, 0.2816035507792589, 0.45801677765722737,
                                     0.6178762444026438,  0.755404408355003,  0.8656312023878318,
                                     0.9445750230732326,  0.9894009349916499};
  static constexpr double weight[8] = {0.18945061045506859, 0.1826034150449236,  0.16915651939500262,
                                       0.14959598881657676, 0.12462897125553403, 0.09515851168249259,
                                       0.062253523938647706, 0.027152459411754037};
  double value = 0;
  double end = H;
  if (delta > 0) end = std::min(H, 46 / delta);
  if (end == H && std::isfinite(H)) {  // the boundary term exp(-delta H) E[Y(H)]
    double eh;
    expected(&H, 1, &eh);
    value += std::exp(-delta * H) * eh;
  }
  if (delta == 0) return value;
  const double V = std::log1p(end / scale);
  const int panels = std::max(1, static_cast<int>(std::ceil(V / 0.5)));
  const double hw = V / panels / 2;  // half-width of a panel in v
  double t[16], ey[16];
  for (int k = 0; k < panels; ++k) {
    const double mid = (2 * k + 1) * hw;
    for (int j = 0; j < 8; ++j) {
      t[2 * j] = scale * std::expm1(mid - hw * node[j]);
      t[2 * j + 1] = scale * std::expm1(mid + hw * node[j]);
    }
    expected(static_cast<const double*>(t), 16, static_cast<double*>(ey));
    double sum = 0;
    for (int j = 0; j < 16; ++j) sum += weight[j / 2] * std::exp(-delta * t[j]) * ey[j] * (scale + t[j]);
    value += delta * hw * sum;
  }
  return value;
}

inline double bgnbd_continuous_dert(const BgNbdParams& p, double delta, double H, double x, double tx,
                                    double T) noexcept {
  return continuous_dert(
      [&](const double* t, int K, double* out) { bgnbd_conditional_expected(p, t, K, x, tx, T, out); }, p.alpha + T,
      delta, H);
}

/// Pareto/NBD: the closed form of Fader, Hardie & Lee (detail::pnbd_dert) for an infinite horizon,
/// the quadrature above over its closed-form E[Y(t)] for a finite one.
inline double pnbd_continuous_dert(const ParetoNbdParams& p, double delta, double H, double x, double tx,
                                   double T) noexcept {
  if (std::isinf(H)) return pnbd_dert(p, delta, x, tx, T);
  return continuous_dert(
      [&](const double* t, int K, double* out) {
        for (int k = 0; k < K; ++k) out[k] = pnbd_conditional_expected(p, t[k], x, tx, T);
      },
      p.beta + T, delta, H);
}

/// MBG/NBD: the quadrature above over its E[Y(t)] (BG/NBD's series with b + 1, the same
/// singularity at t = -(alpha + T)).
inline double mbgnbd_continuous_dert(const MbgNbdParams& p, double delta, double H, double x, double tx,
                                     double T) noexcept {
  return continuous_dert(
      [&](const double* t, int K, double* out) { mbgnbd_conditional_expected(p, t, K, x, tx, T, out); },
      p.alpha + T, delta, H);
}

/// The continuously discounted expected residual purchases of one customer, by model.
inline double continuous_dert_of(const BgNbdParams& p, double delta, double H, double x, double tx, double T) noexcept {
  return bgnbd_continuous_dert(p, delta, H, x, tx, T);
}
inline double continuous_dert_of(const ParetoNbdParams& p, double delta, double H, double x, double tx,
                                 double T) noexcept {
  return pnbd_continuous_dert(p, delta, H, x, tx, T);
}
inline double continuous_dert_of(const MbgNbdParams& p, double delta, double H, double x, double tx, double T) noexcept {
  return mbgnbd_continuous_dert(p, delta, H, x, tx, T);
}

/// The purchase models discounted_expected_purchases accepts: BgNbd, ParetoNbd, MbgNbd.
template <class Model>
using ContinuousDertParams = decltype(continuous_dert_of(std::declval<const Model&>().params(), 0.0, 0.0, 0.0, 0.0, 0.0));
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
  // Once per distinct (x, t_x, T) when customers share them (summaries in whole days).
  detail::bgnbd_discounted_purchases(p, t, discount, frequency, recency, T, out.probability_alive.data(),
                                     out.expected_purchases.data(), out.clv.data());
  out.clv.array() *= out.expected_average_value.array();
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

/// Continuously discounted expected residual purchases (Fader, Hardie & Lee's DERT)
///   int_0^H exp(-rate t) dE[Y(t) | x, t_x, T]
/// of one customer, in the time unit of recency and T (see ContinuousDiscounting), for a fitted
/// BgNbd, MbgNbd or ParetoNbd. BG/NBD and MBG/NBD use the quadrature of detail::continuous_dert
/// (relative error ~1e-10 or better against an mpmath integral of the conditional purchase rate:
/// tests/fixtures/clv/make_se_reference.py); Pareto/NBD uses Fader, Hardie & Lee's closed form (with
/// the confluent hypergeometric U) for an infinite horizon and the quadrature for a finite one.
/// Multiply by the margin per purchase for a continuously discounted CLV
/// (customer_lifetime_value_continuous). rate = 0 with a finite horizon gives E[Y(H)]. Bad
/// discounting or data throw uvp::invalid_argument naming the argument; an unfitted model
/// uvp::not_fitted_error.
template <class Model, class = detail::ContinuousDertParams<Model>>
double discounted_expected_purchases(const Model& model, double frequency, double recency, double T,
                                     const ContinuousDiscounting& discounting) {
  constexpr const char* where = "uvp::discounted_expected_purchases";
  detail::check_discounting(where, discounting);
  detail::check_one_rft(where, frequency, recency, T);
  return detail::continuous_dert_of(model.params(), discounting.rate, discounting.horizon, frequency, recency, T);
}

/// The same for every customer (OpenMP-parallel over customers).
template <class Model, class = detail::ContinuousDertParams<Model>>
Vector<double> discounted_expected_purchases(const Model& model, const ConstVectorRef<double>& frequency,
                                             const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                             const ContinuousDiscounting& discounting) {
  constexpr const char* where = "uvp::discounted_expected_purchases";
  detail::check_discounting(where, discounting);
  detail::check_rft(where, frequency, recency, T);
  const auto p = model.params();
  const index n = frequency.size();
  Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 64) if (n > 256)
#endif
  for (index i = 0; i < n; ++i)
    out[i] = detail::continuous_dert_of(p, discounting.rate, discounting.horizon, frequency[i], recency[i], T[i]);
  return out;
}

/// CLV with continuous discounting: discounted_expected_purchases (BgNbd, MbgNbd or ParetoNbd)
/// times the Gamma-Gamma E[spend per purchase | x, m_x], per customer. With BG/NBD, the counterpart
/// of customer_lifetime_value's monthly sum, which approaches it as the month shrinks (with
/// discount_rate = expm1(rate * month)); with Pareto/NBD, Fader, Hardie & Lee (2005)'s DERT x spend.
template <class Model, class = detail::ContinuousDertParams<Model>>
Vector<double> customer_lifetime_value_continuous(const Model& purchases, const GammaGamma& spend,
                                                  const ConstVectorRef<double>& frequency,
                                                  const ConstVectorRef<double>& recency,
                                                  const ConstVectorRef<double>& T,
                                                  const ConstVectorRef<double>& monetary_value,
                                                  const ContinuousDiscounting& discounting) {
  constexpr const char* where = "uvp::customer_lifetime_value_continuous";
  detail::check_discounting(where, discounting);
  detail::check_rft(where, frequency, recency, T);
  detail::check_size(where, "monetary_value", monetary_value.size(), frequency.size());
  const Vector<double> value = spend.conditional_expected_average_value(frequency, monetary_value);
  return discounted_expected_purchases(purchases, frequency, recency, T, discounting).cwiseProduct(value);
}

}  // namespace uvp
