// SPDX-License-Identifier: Apache-2.0
// Transaction log -> per-customer (frequency, recency, T, monetary value), and a calibration/holdout split.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "uvp/clv/date.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// The unit in which recency, T and prediction horizons are measured. Transactions are always
/// grouped by calendar day; the unit only scales the day counts (week = 7 days), which is
/// lifetimes' `freq="D", freq_multiplier=7` and reproduces Fader & Hardie's CDNOW summary.
enum class TimeUnit { day, week };

/// Days in one unit.
inline constexpr double days_per(TimeUnit unit) noexcept { return unit == TimeUnit::week ? 7.0 : 1.0; }

/// Per-customer summary in the notation of Fader, Hardie & Lee (2005); one entry per customer.
struct CustomerSummary {
  std::vector<std::string> id;    ///< customer ids, in the order of their first transaction in the log
  Vector<double> frequency;       ///< x: number of repeat purchase days (distinct days after the first)
  Vector<double> recency;         ///< t_x: time from the first to the last purchase day
  Vector<double> T;               ///< T: time from the first purchase day to the observation end
  Vector<double> monetary_value;  ///< mean amount of the repeat purchase days (0 when x = 0)

  index size() const noexcept { return frequency.size(); }
};

namespace detail {

struct DayAmount {
  index customer;
  std::int64_t day;
  double amount;
};

/// Validates the log and returns the dense customer index of each row (order of first appearance).
inline std::vector<index> index_customers(const char* where, const TransactionLog& log,
                                          std::vector<std::string>& names) {
  check_not_empty(where, "transactions", log.size());
  check_size(where, "transactions.date", static_cast<index>(log.date.size()), log.size());
  check_size(where, "transactions.amount", static_cast<index>(log.amount.size()), log.size());
  std::vector<index> cust(log.customer_id.size());
  std::unordered_map<std::string, index> ids;
  ids.reserve(log.customer_id.size() / 2 + 1);
  for (std::size_t i = 0; i < log.customer_id.size(); ++i) {
    const double a = log.amount[i];
    if (!std::isfinite(a) || a < 0)
      raise<invalid_argument>(where, ": transactions.amount[", i, "] = ", a, " must be finite and >= 0");
    auto [it, inserted] = ids.emplace(log.customer_id[i], static_cast<index>(names.size()));
    if (inserted) names.push_back(log.customer_id[i]);
    cust[i] = it->second;
  }
  return cust;
}

/// Transactions with date in (begin, end] summed per (customer, day), sorted by customer then day.
inline std::vector<DayAmount> purchase_days(const TransactionLog& log, const std::vector<index>& cust,
                                            std::int64_t begin_exclusive, std::int64_t end_inclusive) {
  std::vector<DayAmount> rows;
  rows.reserve(cust.size());
  for (std::size_t i = 0; i < cust.size(); ++i) {
    const std::int64_t d = log.date[i].days();
    if (d > begin_exclusive && d <= end_inclusive) rows.push_back({cust[i], d, log.amount[i]});
  }
  std::sort(rows.begin(), rows.end(), [](const DayAmount& u, const DayAmount& v) {
    return u.customer != v.customer ? u.customer < v.customer : u.day < v.day;
  });
  std::size_t out = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (out > 0 && rows[out - 1].customer == rows[i].customer && rows[out - 1].day == rows[i].day)
      rows[out - 1].amount += rows[i].amount;
    else
      rows[out++] = rows[i];
  }
  rows.resize(out);
  return rows;
}

inline CustomerSummary summarize_days(const std::vector<DayAmount>& days, const std::vector<std::string>& names,
                                      std::int64_t end, TimeUnit unit, std::vector<index>* kept = nullptr) {
  // Customers appear in `days` sorted by their first-appearance index, so the output keeps that order.
  index n = 0;
  for (std::size_t i = 0; i < days.size(); ++i)
    if (i == 0 || days[i].customer != days[i - 1].customer) ++n;
  CustomerSummary s;
  s.id.reserve(static_cast<std::size_t>(n));
  s.frequency.resize(n);
  s.recency.resize(n);
  s.T.resize(n);
  s.monetary_value.resize(n);
  if (kept) kept->clear();
  const double scale = 1.0 / days_per(unit);
  index k = 0;
  for (std::size_t i = 0; i < days.size();) {
    std::size_t j = i + 1;
    double repeat_total = 0;
    while (j < days.size() && days[j].customer == days[i].customer) repeat_total += days[j++].amount;
    const auto x = static_cast<double>(j - i - 1);
    s.id.push_back(names[static_cast<std::size_t>(days[i].customer)]);
    if (kept) kept->push_back(days[i].customer);
    s.frequency[k] = x;
    s.recency[k] = static_cast<double>(days[j - 1].day - days[i].day) * scale;
    s.T[k] = static_cast<double>(end - days[i].day) * scale;
    s.monetary_value[k] = x > 0 ? repeat_total / x : 0.0;
    ++k;
    i = j;
  }
  return s;
}

}  // namespace detail

/// Per-customer summary of the transactions dated on or before `observation_end` (later ones are
/// ignored; customers whose first purchase is later do not appear), with the definitions of
/// lifetimes' `summary_data_from_transaction_data(..., freq="D", freq_multiplier=days_per(unit))`:
/// - the transactions of one customer on one calendar day count as one purchase whose amount is
///   their sum;
/// - frequency = number of purchase days after the first one (repeat purchases);
/// - recency = (last purchase day - first purchase day) / days_per(unit);
/// - T = (observation_end - first purchase day) / days_per(unit);
/// - monetary_value = mean amount of the repeat purchase days (the first purchase is excluded), 0
///   when frequency = 0.
/// Throws uvp::invalid_argument for an empty log, columns of different lengths, a non-finite or
/// negative amount, or no transaction on or before observation_end.
inline CustomerSummary summary_from_transactions(const TransactionLog& log, Date observation_end,
                                                 TimeUnit unit = TimeUnit::week) {
  constexpr const char* where = "uvp::summary_from_transactions";
  std::vector<std::string> names;
  const auto cust = detail::index_customers(where, log, names);
  const auto days = detail::purchase_days(log, cust, std::numeric_limits<std::int64_t>::min(), observation_end.days());
  if (days.empty())
    detail::raise<invalid_argument>(where, ": no transaction on or before observation_end ",
                                    observation_end.to_string());
  return detail::summarize_days(days, names, observation_end.days(), unit);
}

/// The same, observed up to the last transaction date in the log.
inline CustomerSummary summary_from_transactions(const TransactionLog& log, TimeUnit unit = TimeUnit::week) {
  detail::check_not_empty("uvp::summary_from_transactions", "transactions", log.size());
  const Date last = *std::max_element(log.date.begin(), log.date.end());
  return summary_from_transactions(log, last, unit);
}

/// A calibration summary and what the same customers did in the holdout period that follows.
struct CalibrationHoldout {
  CustomerSummary calibration;            ///< summary_from_transactions(log, calibration_end, unit)
  Vector<double> holdout_frequency;       ///< purchase days in (calibration_end, holdout_end], per customer
  Vector<double> holdout_monetary_value;  ///< mean amount of those purchase days (0 if none)
  double holdout_duration = 0;            ///< (holdout_end - calibration_end) / days_per(unit)
};

/// Splits the log at `calibration_end`: the calibration summary covers the customers with a
/// purchase on or before it; their holdout purchases are the purchase days in
/// (calibration_end, holdout_end]. As in lifetimes' `calibration_and_holdout_data`, except that the
/// holdout monetary value is the mean per purchase *day* (lifetimes averages the raw rows), so it is
/// defined like the calibration monetary value. Throws uvp::invalid_argument when holdout_end is
/// not after calibration_end, plus the errors of summary_from_transactions.
inline CalibrationHoldout calibration_holdout_split(const TransactionLog& log, Date calibration_end, Date holdout_end,
                                                    TimeUnit unit = TimeUnit::week) {
  constexpr const char* where = "uvp::calibration_holdout_split";
  if (!(calibration_end < holdout_end))
    detail::raise<invalid_argument>(where, ": holdout_end ", holdout_end.to_string(), " must be after calibration_end ",
                                    calibration_end.to_string());
  std::vector<std::string> names;
  const auto cust = detail::index_customers(where, log, names);
  const auto cal = detail::purchase_days(log, cust, std::numeric_limits<std::int64_t>::min(), calibration_end.days());
  if (cal.empty())
    detail::raise<invalid_argument>(where, ": no transaction on or before calibration_end ",
                                    calibration_end.to_string());
  CalibrationHoldout out;
  std::vector<index> kept;
  out.calibration = detail::summarize_days(cal, names, calibration_end.days(), unit, &kept);
  const index n = out.calibration.size();
  std::vector<index> position(names.size(), -1);
  for (index k = 0; k < n; ++k) position[static_cast<std::size_t>(kept[static_cast<std::size_t>(k)])] = k;
  out.holdout_frequency = Vector<double>::Zero(n);
  out.holdout_monetary_value = Vector<double>::Zero(n);
  const auto hold = detail::purchase_days(log, cust, calibration_end.days(), holdout_end.days());
  for (const auto& d : hold) {
    const index k = position[static_cast<std::size_t>(d.customer)];
    if (k < 0) continue;  // first purchase in the holdout period: not a calibration customer
    out.holdout_frequency[k] += 1;
    out.holdout_monetary_value[k] += d.amount;
  }
  for (index k = 0; k < n; ++k)
    if (out.holdout_frequency[k] > 0) out.holdout_monetary_value[k] /= out.holdout_frequency[k];
  out.holdout_duration = static_cast<double>(holdout_end - calibration_end) / days_per(unit);
  return out;
}

}  // namespace uvp
