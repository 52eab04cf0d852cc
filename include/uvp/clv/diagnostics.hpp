// SPDX-License-Identifier: Apache-2.0
// The data of the standard BTYD diagnostic plots, for any purchase model: holdout purchases by
// calibration frequency, the period-transactions histogram, frequency x recency matrices, and the
// cumulative / incremental tracking of repeat transactions over calendar time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/date.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

// The functions below are templates over the purchase model. A model needs, in its own time unit:
//   double expected_purchases(double t)                                   E[X(t)], new customer
//   double conditional_expected_purchases(double t, double x, double tx, double T)
//   double probability_alive(double x, double tx, double T)
// and, for period_transactions only, a function found by argument-dependent lookup
//   double purchase_count_probability(const Model&, double t, int x)      P(X(t) = x)
// (provided here for BgNbd, MbgNbd and ParetoNbd). uvp::BgNbd, uvp::MbgNbd and uvp::ParetoNbd have the three
// members.

namespace detail {

inline void check_summary_columns(const char* where, const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                                  const ConstVectorRef<double>& T) {
  check_rft(where, f, r, T);
}

inline void check_bucket_count(const char* where, int max_frequency) {
  if (max_frequency < 1 || max_frequency > 1000)
    raise<invalid_argument>(where, ": max_frequency = ", max_frequency, " must be in [1, 1000]");
}

// log B(u, v) for u, v > 0.
inline double count_log_beta(double u, double v) noexcept { return log_gamma(u) + log_gamma(v) - log_gamma(u + v); }

}  // namespace detail

namespace detail {

/// P(X(t) = x) of a model of the BG/NBD family: the count of a customer who stays alive is
/// NB(j) = Gamma(r+j)/(Gamma(r) j!) (alpha/(alpha+t))^r (t/(alpha+t))^j, and
///   P(X(t) = x) = w_alive NB(x) + w_dropout P(NB >= x),
/// w_alive = E[P(still alive after the x-th purchase)] and w_dropout = E[P(dropped out right after
/// it)] over the dropout probability (given as logs; -inf for 0). Log space: no overflow for large x.
inline double bg_family_count_probability(double r, double alpha, double t, int x, double log_w_alive,
                                          double log_w_dropout) {
  if (t == 0) return x == 0 ? std::exp(log_w_alive) + std::exp(log_w_dropout) : 0.0;
  const double log_p = std::log(alpha) - std::log(alpha + t);  // log(alpha / (alpha + t))
  const double log_q = std::log(t) - std::log(alpha + t);      // log(t / (alpha + t))
  const double lg_r = log_gamma(r);
  auto log_nb = [&](long j) {
    const auto dj = static_cast<double>(j);
    return log_gamma(r + dj) - lg_r - log_gamma(dj + 1) + r * log_p + dj * log_q;
  };
  double out = std::exp(log_w_alive + log_nb(x));
  if (std::isfinite(log_w_dropout)) {
    // P(NB >= x): 1 - P(NB < x) while that is not small; a small tail is summed term by term
    // (NB(j+1) / NB(j) = (r+j)/(j+1) t/(alpha+t)), as 1 - P(NB < x) would cancel to rounding.
    double below = 0;
    for (int j = 0; j < x; ++j) below += std::exp(log_nb(j));
    double tail = 1 - below;
    if (below > 0.5) {
      const double q = std::exp(log_q);
      double term = std::exp(log_nb(x)), sum = 0;
      for (long j = x; term > 1e-17 * sum && j < x + 10000000L; ++j) {
        sum += term;
        term *= (r + static_cast<double>(j)) / (static_cast<double>(j) + 1) * q;
      }
      tail = sum;
    }
    out += std::exp(log_w_dropout) * std::max(0.0, tail);
  }
  return out;
}

inline void check_count_arguments(const char* where, double t, int x) {
  if (!std::isfinite(t) || t < 0) raise<invalid_argument>(where, ": t = ", t, " must be finite and >= 0");
  // The pmfs cost O(x): a count beyond ten million is a mistake, not a customer.
  if (x < 0 || x > 10000000) raise<invalid_argument>(where, ": x = ", x, " must be in [0, 1e7]");
}

}  // namespace detail

/// P(X(t) = x) for a BG/NBD customer who made their first purchase at time 0 (Fader, Hardie & Lee
/// 2005, eq. 8):
///   B(a, b+x)/B(a, b) NB(x) + [x > 0] B(a+1, b+x-1)/B(a, b) (1 - sum_{j<x} NB(j)),
/// NB(j) = Gamma(r+j)/(Gamma(r) j!) (alpha/(alpha+t))^r (t/(alpha+t))^j: a customer can only drop
/// out right after a repeat purchase. t finite and >= 0, x >= 0.
inline double bgnbd_purchase_count_probability(const BgNbdParams& p, double t, int x) {
  constexpr const char* where = "uvp::bgnbd_purchase_count_probability";
  detail::check_bgnbd_params(where, p);
  detail::check_count_arguments(where, t, x);
  const double lb = detail::count_log_beta(p.a, p.b);
  return detail::bg_family_count_probability(
      p.r, p.alpha, t, x, detail::count_log_beta(p.a, p.b + x) - lb,
      x > 0 ? detail::count_log_beta(p.a + 1, p.b + x - 1) - lb : -std::numeric_limits<double>::infinity());
}

/// P(X(t) = x) for an MBG/NBD customer (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but the
/// customer may also drop out at time 0, so
///   B(a, b+x+1)/B(a, b) NB(x) + B(a+1, b+x)/B(a, b) (1 - sum_{j<x} NB(j)).
inline double mbgnbd_purchase_count_probability(const MbgNbdParams& p, double t, int x) {
  constexpr const char* where = "uvp::mbgnbd_purchase_count_probability";
  detail::check_mbgnbd_params(where, p);
  detail::check_count_arguments(where, t, x);
  const double lb = detail::count_log_beta(p.a, p.b);
  return detail::bg_family_count_probability(p.r, p.alpha, t, x, detail::count_log_beta(p.a, p.b + x + 1) - lb,
                                             detail::count_log_beta(p.a + 1, p.b + x) - lb);
}

/// P(X(t) = 0), ..., P(X(t) = max_x) for a Pareto/NBD customer who made their first purchase at
/// time 0. Given a lifetime tau (exponential of rate mu ~ Gamma(s, beta): P(tau > u) =
/// (beta/(beta+u))^s), the count is the NBD count of min(tau, t), so
///   P(X(t) = x) = (beta/(beta+t))^s NB_t(x) + int_0^t s/beta (beta/(beta+u))^(s+1) NB_u(x) du,
///   NB_u(x) = Gamma(r+x)/(Gamma(r) x!) (alpha/(alpha+u))^r (u/(alpha+u))^x.
/// The integrand is smooth; it is integrated by 16-point Gauss-Legendre on 48 panels that halve
/// towards 0 ([t/2, t], [t/4, t/2], ...), so features at any scale of alpha or beta down to
/// t 2^-47 are resolved (the closed form of Fader & Hardie's note subtracts nearly equal
/// hypergeometric terms instead). Every x shares the nodes: O(48 x 16 x max_x).
inline std::vector<double> pnbd_purchase_count_distribution(const ParetoNbdParams& p, double t, int max_x) {
  constexpr const char* where = "uvp::pnbd_purchase_count_distribution";
  detail::check_pnbd_params(where, p);
  detail::check_count_arguments(where, t, max_x);
  const auto m = static_cast<std::size_t>(max_x) + 1;
  std::vector<double> out(m, 0.0);
  if (t == 0) {
    out[0] = 1;
    return out;
  }
  // NB_u(0..max_x) scaled by `weight`, added to out: the recurrence NB(x+1) = NB(x) (r+x)/(x+1) q.
  auto add_nb = [&](double u, double weight) {
    const double q = u / (p.alpha + u);
    double nb = weight * std::exp(p.r * (std::log(p.alpha) - std::log(p.alpha + u)));
    for (std::size_t x = 0; x < m; ++x) {
      out[x] += nb;
      nb *= (p.r + static_cast<double>(x)) / (static_cast<double>(x) + 1) * q;
    }
  };
  add_nb(t, std::exp(p.s * (std::log(p.beta) - std::log(p.beta + t))));
  static const double gl_x[8] = {0.0950125098376374, 0.2816035507792589, 0.4580167776572274, 0.6178762444026438,
                                 0.7554044083550030, 0.8656312023878318, 0.9445750230732326, 0.9894009349916499};
  static const double gl_w[8] = {0.1894506104550685, 0.1826034150449236, 0.1691565193950025, 0.1495959888165767,
                                 0.1246289712555339, 0.0951585116824928, 0.0622535239386479, 0.0271524594117541};
  const double log_s_over_beta = std::log(p.s) - std::log(p.beta);
  auto density = [&](double u) {  // s/beta (beta/(beta+u))^(s+1)
    return std::exp(log_s_over_beta + (p.s + 1) * (std::log(p.beta) - std::log(p.beta + u)));
  };
  constexpr int panels = 48;
  double hi = t;
  for (int k = 0; k < panels; ++k) {
    const double lo = k + 1 == panels ? 0.0 : hi / 2;
    const double mid = (lo + hi) / 2, half = (hi - lo) / 2;
    for (int i = 0; i < 8; ++i)
      for (double sign : {-1.0, 1.0}) {
        const double u = mid + sign * half * gl_x[i];
        add_nb(u, half * gl_w[i] * density(u));
      }
    hi = lo;
  }
  return out;
}

/// P(X(t) = x) for a Pareto/NBD customer (see pnbd_purchase_count_distribution).
inline double pnbd_purchase_count_probability(const ParetoNbdParams& p, double t, int x) {
  return pnbd_purchase_count_distribution(p, t, x).back();
}

/// P(X(t) = x) under a fitted BgNbd / MbgNbd / ParetoNbd (see above).
inline double purchase_count_probability(const BgNbd& model, double t, int x) {
  return bgnbd_purchase_count_probability(model.params(), t, x);
}
inline double purchase_count_probability(const MbgNbd& model, double t, int x) {
  return mbgnbd_purchase_count_probability(model.params(), t, x);
}
inline double purchase_count_probability(const ParetoNbd& model, double t, int x) {
  return pnbd_purchase_count_probability(model.params(), t, x);
}

/// Mean holdout purchases per calibration frequency, actual and expected: the "calibration vs
/// holdout purchases" plot (Fader, Hardie & Lee 2005, Figure 4; lifetimes'
/// plot_calibration_purchases_vs_holdout_purchases). Customers with frequency >= max_frequency
/// share the last bucket ("7+"). Buckets without customers are left out.
struct HoldoutByFrequency {
  std::vector<double> frequency;  ///< bucket: 0, 1, ..., max_frequency (the last one means "or more")
  std::vector<double> customers;  ///< customers in the bucket
  std::vector<double> actual;     ///< mean actual holdout purchases
  std::vector<double> expected;   ///< mean E[purchases in the holdout | x, t_x, T] under the model
};

/// Buckets the calibration customers (frequency, recency, T) by frequency and averages
/// holdout_purchases and the model's conditional expectation over holdout_duration. All vectors
/// one entry per customer; holdout_purchases finite and >= 0; holdout_duration finite and >= 0.
template <class Model>
HoldoutByFrequency holdout_by_frequency(const Model& model, const ConstVectorRef<double>& frequency,
                                        const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                        const ConstVectorRef<double>& holdout_purchases, double holdout_duration,
                                        int max_frequency = 7) {
  constexpr const char* where = "uvp::holdout_by_frequency";
  detail::check_summary_columns(where, frequency, recency, T);
  detail::check_size(where, "holdout_purchases", holdout_purchases.size(), frequency.size());
  detail::check_bucket_count(where, max_frequency);
  for (index i = 0; i < holdout_purchases.size(); ++i)
    if (!std::isfinite(holdout_purchases[i]) || holdout_purchases[i] < 0)
      detail::raise<invalid_argument>(where, ": holdout_purchases[", i, "] = ", holdout_purchases[i],
                                      " must be finite and >= 0");
  if (!std::isfinite(holdout_duration) || holdout_duration < 0)
    detail::raise<invalid_argument>(where, ": holdout_duration = ", holdout_duration, " must be finite and >= 0");
  const index n = frequency.size();
  std::vector<double> predicted(static_cast<std::size_t>(n));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 256) if (n > 4096)
#endif
  for (index i = 0; i < n; ++i)
    predicted[static_cast<std::size_t>(i)] =
        model.conditional_expected_purchases(holdout_duration, frequency[i], recency[i], T[i]);
  const auto buckets = static_cast<std::size_t>(max_frequency) + 1;
  std::vector<double> count(buckets, 0), act(buckets, 0), pred(buckets, 0);
  for (index i = 0; i < n; ++i) {  // summed in customer order: independent of the thread count
    const auto b = static_cast<std::size_t>(std::min(frequency[i], static_cast<double>(max_frequency)));
    count[b] += 1, act[b] += holdout_purchases[i], pred[b] += predicted[static_cast<std::size_t>(i)];
  }
  HoldoutByFrequency out;
  for (std::size_t b = 0; b < buckets; ++b) {
    if (count[b] == 0) continue;
    out.frequency.push_back(static_cast<double>(b));
    out.customers.push_back(count[b]);
    out.actual.push_back(act[b] / count[b]);
    out.expected.push_back(pred[b] / count[b]);
  }
  return out;
}

/// Number of customers with 0, 1, ..., max_frequency or more repeat transactions in the
/// calibration period, actual and expected: the period-transactions histogram (lifetimes'
/// plot_period_transactions). The expected count of bucket x is sum_i P(X(T_i) = x) over the
/// customers (each observed for their own T_i), the last bucket 1 - sum of the others, so the
/// expected column sums to the number of customers.
struct PeriodTransactions {
  std::vector<double> frequency;  ///< 0, 1, ..., max_frequency (the last one means "or more")
  std::vector<double> actual;     ///< customers with that many repeat transactions
  std::vector<double> expected;   ///< expected number of such customers under the model
};

template <class Model>
PeriodTransactions period_transactions(const Model& model, const ConstVectorRef<double>& frequency,
                                       const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                       int max_frequency = 7) {
  constexpr const char* where = "uvp::period_transactions";
  detail::check_summary_columns(where, frequency, recency, T);
  detail::check_bucket_count(where, max_frequency);
  const auto buckets = static_cast<std::size_t>(max_frequency) + 1;
  PeriodTransactions out;
  out.frequency.resize(buckets);
  out.actual.assign(buckets, 0);
  out.expected.assign(buckets, 0);
  for (std::size_t b = 0; b < buckets; ++b) out.frequency[b] = static_cast<double>(b);
  // Customers share few distinct T (a cohort's first-purchase days): one pmf per distinct T.
  std::map<double, double> by_T;
  for (index i = 0; i < frequency.size(); ++i) {
    out.actual[static_cast<std::size_t>(std::min(frequency[i], static_cast<double>(max_frequency)))] += 1;
    by_T[T[i]] += 1;
  }
  for (const auto& [t, count] : by_T) {
    double head = 0;
    for (int x = 0; x < max_frequency; ++x) {
      const double p = purchase_count_probability(model, t, x);
      out.expected[static_cast<std::size_t>(x)] += count * p;
      head += p;
    }
    out.expected[buckets - 1] += count * std::max(0.0, 1 - head);
  }
  return out;
}

/// A model output on a grid of frequency (rows) x recency (columns) for customers observed for T:
/// the frequency/recency matrices of lifetimes (plot_frequency_recency_matrix,
/// plot_probability_alive_matrix). Cells with frequency 0 and recency > 0 cannot occur and hold NaN.
struct FrequencyRecencyMatrix {
  std::vector<double> frequency;  ///< row values: 0, 1, ..., max_frequency
  std::vector<double> recency;    ///< column values: recency_points values from 0 to T
  double T = 0;                   ///< the customers' age
  Matrix<double> values;          ///< frequency.size() x recency.size()
};

namespace detail {

inline FrequencyRecencyMatrix frequency_recency_grid(const char* where, double T, int max_frequency,
                                                     int recency_points) {
  if (!std::isfinite(T) || !(T > 0)) raise<invalid_argument>(where, ": T = ", T, " must be finite and > 0");
  if (max_frequency < 1 || max_frequency > 10000)
    raise<invalid_argument>(where, ": max_frequency = ", max_frequency, " must be in [1, 10000]");
  if (recency_points < 2 || recency_points > 10000)
    raise<invalid_argument>(where, ": recency_points = ", recency_points, " must be in [2, 10000]");
  FrequencyRecencyMatrix m;
  m.T = T;
  for (int x = 0; x <= max_frequency; ++x) m.frequency.push_back(x);
  for (int k = 0; k < recency_points; ++k) m.recency.push_back(k == recency_points - 1 ? T : T * k / (recency_points - 1));
  m.values.setConstant(max_frequency + 1, recency_points, std::numeric_limits<double>::quiet_NaN());
  return m;
}

template <class Cell>
void fill_frequency_recency(FrequencyRecencyMatrix& m, Cell&& cell) {
  const index rows = m.values.rows(), cols = m.values.cols();
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (rows * cols > 4096)
#endif
  for (index i = 0; i < rows; ++i)
    for (index j = 0; j < cols; ++j) {
      const double x = m.frequency[static_cast<std::size_t>(i)], tx = m.recency[static_cast<std::size_t>(j)];
      if (x == 0 && tx > 0) continue;
      m.values(i, j) = cell(x, tx);
    }
}

}  // namespace detail

/// E[purchases in the next `t` | x, t_x, T] on the grid x = 0..max_frequency, t_x = recency_points
/// values from 0 to T. t finite and >= 0, T > 0.
template <class Model>
FrequencyRecencyMatrix expected_purchases_matrix(const Model& model, double t, double T, int max_frequency = 30,
                                                 int recency_points = 31) {
  constexpr const char* where = "uvp::expected_purchases_matrix";
  if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": t = ", t, " must be finite and >= 0");
  FrequencyRecencyMatrix m = detail::frequency_recency_grid(where, T, max_frequency, recency_points);
  detail::fill_frequency_recency(m, [&](double x, double tx) { return model.conditional_expected_purchases(t, x, tx, T); });
  return m;
}

/// P(alive | x, t_x, T) on the same grid.
template <class Model>
FrequencyRecencyMatrix probability_alive_matrix(const Model& model, double T, int max_frequency = 30,
                                                int recency_points = 31) {
  FrequencyRecencyMatrix m = detail::frequency_recency_grid("uvp::probability_alive_matrix", T, max_frequency, recency_points);
  detail::fill_frequency_recency(m, [&](double x, double tx) { return model.probability_alive(x, tx, T); });
  return m;
}

/// The repeat transactions of a cohort over calendar time, from the log: the actual half of the
/// tracking plot (Fader, Hardie & Lee 2005, Figure 2; BTYD's bgnbd.PlotTrackingCum / Inc).
/// The cohort is every customer whose first purchase is on or before calibration_end (the
/// customers of calibration_holdout_split). Time 0 is `start`, the cohort's earliest first purchase
/// day; a purchase on day d happens at (d - start) / days_per(unit). As in the summaries, one
/// customer's transactions on one day are one purchase, and a repeat purchase is a purchase day
/// after the customer's first.
struct RepeatTransactionTracking {
  Date start;                            ///< the day time 0 stands for
  double calibration_end = 0;            ///< calibration_end in units since start
  double holdout_end = 0;                ///< holdout_end in units since start
  std::vector<double> first_purchase;    ///< each cohort customer's first purchase, units since start
  std::vector<double> period_end;        ///< 1, 2, ..., then holdout_end (the last period may be short)
  std::vector<double> actual_incremental;  ///< repeat purchases in (period_end[k-1], period_end[k]]
  std::vector<double> actual_cumulative;   ///< repeat purchases in (0, period_end[k]]
};

/// Builds the RepeatTransactionTracking of a log (see there). Throws uvp::invalid_argument when
/// holdout_end is not after calibration_end or no transaction is on or before calibration_end,
/// plus the errors of summary_from_transactions.
inline RepeatTransactionTracking track_repeat_transactions(const TransactionLog& log, Date calibration_end,
                                                           Date holdout_end, TimeUnit unit = TimeUnit::week) {
  constexpr const char* where = "uvp::track_repeat_transactions";
  if (!(calibration_end < holdout_end))
    detail::raise<invalid_argument>(where, ": holdout_end ", holdout_end.to_string(), " must be after calibration_end ",
                                    calibration_end.to_string());
  std::vector<std::string> names;
  const auto cust = detail::index_customers(where, log, names);
  const auto days = detail::purchase_days(log, cust, std::numeric_limits<std::int64_t>::min(), holdout_end.days());
  // `days` is sorted by customer then day: a customer's first row is their first purchase day.
  std::int64_t start = std::numeric_limits<std::int64_t>::max();
  for (std::size_t i = 0; i < days.size(); ++i)
    if ((i == 0 || days[i].customer != days[i - 1].customer) && days[i].day <= calibration_end.days())
      start = std::min(start, days[i].day);
  if (start == std::numeric_limits<std::int64_t>::max())
    detail::raise<invalid_argument>(where, ": no transaction on or before calibration_end ",
                                    calibration_end.to_string());
  const double u = days_per(unit);
  RepeatTransactionTracking out;
  out.start = Date::from_days(start);
  out.calibration_end = static_cast<double>(calibration_end.days() - start) / u;
  out.holdout_end = static_cast<double>(holdout_end.days() - start) / u;
  const auto periods = static_cast<std::size_t>(std::ceil(out.holdout_end - 1e-12));
  for (std::size_t k = 1; k <= periods; ++k) out.period_end.push_back(std::min(static_cast<double>(k), out.holdout_end));
  out.actual_incremental.assign(periods, 0);
  std::int64_t first = 0;
  bool in_cohort = false;
  for (std::size_t i = 0; i < days.size(); ++i) {
    if (i == 0 || days[i].customer != days[i - 1].customer) {
      first = days[i].day;
      in_cohort = first <= calibration_end.days();
      if (in_cohort) out.first_purchase.push_back(static_cast<double>(first - start) / u);
      continue;
    }
    if (!in_cohort) continue;
    // Period k (1-based) holds times in (k - 1, k]: day offsets in ((k - 1) u, k u].
    const std::int64_t offset = days[i].day - start;  // > 0: a repeat day is after the first
    const auto k = static_cast<std::size_t>((offset + static_cast<std::int64_t>(u) - 1) / static_cast<std::int64_t>(u));
    out.actual_incremental[std::min(k, periods) - 1] += 1;
  }
  out.actual_cumulative.resize(periods);
  double acc = 0;
  for (std::size_t k = 0; k < periods; ++k) out.actual_cumulative[k] = acc += out.actual_incremental[k];
  return out;
}

/// The model half of the tracking plot: expected repeat transactions of the cohort by calendar
/// time, sum_i E[X(t - first_purchase_i)] over the customers who had made their first purchase by
/// t (FHL 2005, Figure 2), at every period end, cumulative and per period.
struct TrackingExpectation {
  std::vector<double> cumulative;   ///< at period_end[k]
  std::vector<double> incremental;  ///< cumulative[k] - cumulative[k - 1]
};

/// sum_i E[X(t - t0_i)] at each t of `times` (customers with t0_i >= t contribute 0). Customers
/// are grouped by distinct t0 (a cohort's first-purchase days), so the cost is distinct t0 x times
/// evaluations of expected_purchases. times and first_purchase finite.
template <class Model>
std::vector<double> expected_cumulative_repeat_transactions(const Model& model, const std::vector<double>& first_purchase,
                                                            const std::vector<double>& times) {
  constexpr const char* where = "uvp::expected_cumulative_repeat_transactions";
  detail::check_finite(where, "first_purchase", first_purchase.data(), static_cast<index>(first_purchase.size()));
  detail::check_finite(where, "times", times.data(), static_cast<index>(times.size()));
  std::map<double, double> cohorts;
  for (double t0 : first_purchase) cohorts[t0] += 1;
  const std::vector<std::pair<double, double>> groups(cohorts.begin(), cohorts.end());
  const index ng = static_cast<index>(groups.size()), nt = static_cast<index>(times.size());
  Matrix<double> part = Matrix<double>::Zero(ng, std::max<index>(nt, 1));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4) if (ng * nt > 2048)
#endif
  for (index g = 0; g < ng; ++g)
    for (index k = 0; k < nt; ++k) {
      const double age = times[static_cast<std::size_t>(k)] - groups[static_cast<std::size_t>(g)].first;
      if (age > 0) part(g, k) = groups[static_cast<std::size_t>(g)].second * model.expected_purchases(age);
    }
  std::vector<double> out(static_cast<std::size_t>(nt), 0.0);
  for (index k = 0; k < nt; ++k)  // summed in cohort order: independent of the thread count
    for (index g = 0; g < ng; ++g) out[static_cast<std::size_t>(k)] += part(g, k);
  return out;
}

/// The expectation matching a RepeatTransactionTracking, at its period ends.
template <class Model>
TrackingExpectation expected_tracking(const Model& model, const RepeatTransactionTracking& tracking) {
  TrackingExpectation out;
  out.cumulative = expected_cumulative_repeat_transactions(model, tracking.first_purchase, tracking.period_end);
  out.incremental.resize(out.cumulative.size());
  for (std::size_t k = 0; k < out.cumulative.size(); ++k)
    out.incremental[k] = out.cumulative[k] - (k ? out.cumulative[k - 1] : 0.0);
  return out;
}

}  // namespace uvp
