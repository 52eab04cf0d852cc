// SPDX-License-Identifier: Apache-2.0
// Streaming transaction log -> customer summary: memory bounded by the customers, not the transactions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "uvp/clv/date.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"

namespace uvp {

/// What a SummaryAccumulator may assume about the order of the transactions it is fed.
enum class TransactionOrder {
  /// Any order (shuffled logs). Exact; besides the per-customer state it keeps one 8-byte entry
  /// per distinct (customer, purchase day) in the summarised periods - same-day rows collapse, but
  /// memory grows with the purchase days.
  any,
  /// The transactions of each customer come in non-decreasing date order (customers may
  /// interleave): a log sorted by date, or by customer then date like CDNOW's files. Memory is a
  /// fixed 32 bytes per customer (56 with a holdout period) whatever the number of transactions.
  /// Exactly the transactions whose day could not be told new or repeated are refused: one dated
  /// strictly between its customer's first and last purchase days seen so far in the same period
  /// throws uvp::invalid_argument (an earlier or the same day as the first or last is fine).
  per_customer_ascending,
};

/// Builds the summary of summary_from_transactions (or the split of calibration_holdout_split)
/// from transactions fed one at a time, so that a log too large for memory can be read as a
/// stream. The result equals those functions' on the same log: the same customers in the same
/// order, the same frequency / recency / T / holdout frequency, and the same monetary values up
/// to the rounding of summing the amounts in another order.
///
/// Per customer it keeps the first and last purchase day, the number of distinct purchase days
/// (with TransactionOrder::any, the distinct days themselves, see there), the first day's amount
/// and the repeat days' total: same-day transactions add to the amount of a day already counted; a
/// transaction dated before the customer's first day makes the old first day a repeat day.
///
/// Customers are named either by id (add(std::string_view, ...): rows in the order of each id's
/// first transaction, as summary_from_transactions; the ids are kept) or by a caller-chosen
/// number 0 <= k < 2^31 (add(index, ...): no id strings or hash map - 32 bytes per number up to
/// the largest; rows in ascending number order, `id` left empty, see summary()). Ids cost their
/// string and a hash-map entry on top. One accumulator takes one kind. Transactions after the
/// period(s) are validated and otherwise ignored.
class SummaryAccumulator {
 public:
  /// Summarises the transactions dated on or before `observation_end`.
  explicit SummaryAccumulator(Date observation_end, TimeUnit unit = TimeUnit::week,
                              TransactionOrder order = TransactionOrder::any)
      : end_(to_day("uvp::SummaryAccumulator", "observation_end", observation_end)), unit_(unit), order_(order) {}

  /// Calibration (on or before calibration_end) and holdout ((calibration_end, holdout_end])
  /// periods, for calibration_holdout(); holdout_end must be after calibration_end.
  SummaryAccumulator(Date calibration_end, Date holdout_end, TimeUnit unit,
                     TransactionOrder order = TransactionOrder::any)
      : SummaryAccumulator(calibration_end, unit, order) {
    if (!(calibration_end < holdout_end))
      detail::raise<invalid_argument>("uvp::SummaryAccumulator: holdout_end ", holdout_end.to_string(),
                                      " must be after calibration_end ", calibration_end.to_string());
    holdout_end_ = to_day("uvp::SummaryAccumulator", "holdout_end", holdout_end);
    split_ = true;
  }

  /// Adds one transaction of the customer named `id`. The amount must be finite and >= 0
  /// (uvp::invalid_argument naming the transaction's position in the stream, counted from 0).
  void add(std::string_view id, Date day, double amount) {
    constexpr const char* where = "uvp::SummaryAccumulator::add";
    use_kind(where, Kind::named);
    check_amount(where, amount, id);
    std::uint32_t k;
    if (have_last_ && id == last_id_) {  // consecutive rows of one customer (CDNOW's layout): no hashing
      k = last_index_;
    } else {
      auto [it, inserted] = ids_.try_emplace(std::string(id), static_cast<std::uint32_t>(names_.size()));
      if (inserted) {
        if (names_.size() >= kMaxCustomers)
          detail::raise<invalid_argument>(where, ": more than ", kMaxCustomers, " customers");
        names_.push_back(it->first);
        grow(names_.size());
      }
      k = it->second;
      last_id_.assign(id.data(), id.size());
      last_index_ = k;
      have_last_ = true;
    }
    record(where, k, day, amount, id);
  }

  /// Adds one transaction of customer number `customer` (0 <= customer < 2^31).
  void add(index customer, Date day, double amount) {
    constexpr const char* where = "uvp::SummaryAccumulator::add";
    use_kind(where, Kind::numbered);
    if (customer < 0 || customer >= static_cast<index>(kMaxCustomers))
      detail::raise<invalid_argument>(where, ": customer = ", customer, " (transaction ", rows_, ") must be in [0, ",
                                      kMaxCustomers, ")");
    check_amount(where, amount, customer);
    if (static_cast<std::size_t>(customer) >= cal_.size()) grow(static_cast<std::size_t>(customer) + 1);
    record(where, static_cast<std::uint32_t>(customer), day, amount, customer);
  }

  /// Adds every row of a log (in its order).
  void add(const TransactionLog& log) {
    constexpr const char* where = "uvp::SummaryAccumulator::add";
    detail::check_size(where, "transactions.date", static_cast<index>(log.date.size()), log.size());
    detail::check_size(where, "transactions.amount", static_cast<index>(log.amount.size()), log.size());
    for (std::size_t i = 0; i < log.customer_id.size(); ++i) add(log.customer_id[i], log.date[i], log.amount[i]);
  }

  /// Room in the per-customer state for `customers` customers (numbers 0 .. customers - 1, or
  /// that many ids), so that it never reallocates - nor holds the old and new copies at once -
  /// when the count is known in advance.
  void reserve(index customers) {
    detail::check_positive("uvp::SummaryAccumulator::reserve", "customers", customers);
    cal_.reserve(static_cast<std::size_t>(customers));
    if (split_) hold_.reserve(static_cast<std::size_t>(customers));
  }

  /// Transactions added so far.
  index transactions() const noexcept { return rows_; }
  /// Distinct customers seen so far (numbered: the largest number + 1), whatever their dates.
  index customers() const noexcept { return static_cast<index>(cal_.size()); }

  /// The summary of the calibration (or only) period: summary_from_transactions(log,
  /// observation_end or calibration_end, unit). Numbered customers: `id` is left empty and, when
  /// `numbers` is given, it receives each row's customer number. Throws uvp::invalid_argument when
  /// nothing was added or no transaction is on or before the end. The accumulator stays usable.
  CustomerSummary summary(std::vector<index>* numbers = nullptr) {
    constexpr const char* where = "uvp::SummaryAccumulator::summary";
    if (rows_ == 0) detail::raise<invalid_argument>(where, ": no transaction was added");
    finish_counts();
    std::vector<std::uint32_t> order;
    customers_in_order(order);
    if (order.empty())
      detail::raise<invalid_argument>(where, ": no transaction on or before observation_end ",
                                      Date::from_days(end_).to_string());
    const index n = static_cast<index>(order.size());
    CustomerSummary s;
    s.frequency.resize(n);
    s.recency.resize(n);
    s.T.resize(n);
    s.monetary_value.resize(n);
    if (kind_ == Kind::named) s.id.reserve(order.size());
    if (numbers) numbers->assign(order.begin(), order.end());
    const double scale = 1.0 / days_per(unit_);
    for (index r = 0; r < n; ++r) {
      const std::uint32_t k = order[static_cast<std::size_t>(r)];
      const Period& c = cal_[k];
      const double x = static_cast<double>(c.days) - 1;
      if (kind_ == Kind::named) s.id.push_back(names_[k]);
      s.frequency[r] = x;
      s.recency[r] = static_cast<double>(static_cast<std::int64_t>(c.last) - c.first) * scale;
      s.T[r] = static_cast<double>(end_ - c.first) * scale;
      s.monetary_value[r] = x > 0 ? c.repeat_amount / x : 0.0;
    }
    return s;
  }

  /// The calibration summary and the holdout purchases of its customers, as
  /// calibration_holdout_split(log, calibration_end, holdout_end, unit). Needs the two-date
  /// constructor (uvp::invalid_argument otherwise).
  CalibrationHoldout calibration_holdout(std::vector<index>* numbers = nullptr) {
    constexpr const char* where = "uvp::SummaryAccumulator::calibration_holdout";
    if (!split_)
      detail::raise<invalid_argument>(where, ": the accumulator has no holdout period (construct it with "
                                             "calibration_end and holdout_end)");
    CalibrationHoldout out;
    std::vector<index> local;
    std::vector<index>& rows = numbers ? *numbers : local;
    out.calibration = summary(&rows);
    const index n = out.calibration.size();
    out.holdout_frequency.resize(n);
    out.holdout_monetary_value.resize(n);
    for (index r = 0; r < n; ++r) {
      const Holdout& h = hold_[static_cast<std::size_t>(rows[static_cast<std::size_t>(r)])];
      out.holdout_frequency[r] = h.days;
      out.holdout_monetary_value[r] = h.days > 0 ? h.amount / h.days : 0.0;
    }
    out.holdout_duration = static_cast<double>(holdout_end_ - end_) / days_per(unit_);
    return out;
  }

 private:
  enum class Kind { none, named, numbered };
  static constexpr std::size_t kMaxCustomers = std::size_t(1) << 31;
  static constexpr std::int32_t kNoDay = std::numeric_limits<std::int32_t>::min();

  struct Period {  // calibration purchases of one customer
    std::int32_t first = kNoDay, last = kNoDay;
    std::uint32_t days = 0;  // distinct purchase days (TransactionOrder::any: filled by finish_counts)
    double first_amount = 0, repeat_amount = 0;
  };
  struct Holdout {  // holdout purchases of one customer
    std::int32_t first = kNoDay, last = kNoDay;
    std::uint32_t days = 0;
    double amount = 0;
  };

  static std::int32_t to_day(const char* where, const char* what, Date d) {
    const std::int64_t v = d.days();
    if (v <= kNoDay || v > std::numeric_limits<std::int32_t>::max())
      detail::raise<invalid_argument>(where, ": ", what, " ", d.to_string(), " is outside the supported dates");
    return static_cast<std::int32_t>(v);
  }
  static std::uint64_t key(std::uint32_t customer, std::int32_t day) noexcept {
    return (std::uint64_t(customer) << 32) | (std::uint32_t(day) ^ 0x80000000u);  // sorts by customer, then day
  }

  void use_kind(const char* where, Kind k) {
    if (kind_ == Kind::none) kind_ = k;
    if (kind_ != k)
      detail::raise<invalid_argument>(where, ": transaction ", rows_, " names its customer by ",
                                      k == Kind::named ? "id" : "number", " but the earlier ones by ",
                                      kind_ == Kind::named ? "id" : "number", " (one accumulator takes one kind)");
  }
  template <class Who>
  void check_amount(const char* where, double amount, const Who& who) const {
    if (!std::isfinite(amount) || amount < 0)
      detail::raise<invalid_argument>(where, ": transaction ", rows_, " (customer ", who, "): amount = ", amount,
                                      " must be finite and >= 0");
  }
  void grow(std::size_t n) {
    cal_.resize(n);
    if (split_) hold_.resize(n);
  }

  template <class Who>
  void record(const char* where, std::uint32_t k, Date date, double amount, const Who& who) {
    const std::int64_t day = date.days();
    if (day <= end_) {
      if (day <= kNoDay)
        detail::raise<invalid_argument>(where, ": transaction ", rows_, " (customer ", who, "): date ",
                                        date.to_string(), " is outside the supported dates");
      Period& c = cal_[k];
      const auto d = static_cast<std::int32_t>(day);
      const bool counting = order_ == TransactionOrder::per_customer_ascending;
      if (c.first == kNoDay) {
        c.first = c.last = d;
        c.first_amount = amount;
        if (counting) c.days = 1;
      } else if (d == c.first) {
        c.first_amount += amount;
      } else if (d < c.first) {  // an earlier first day (new for sure): the old one becomes a repeat day
        c.repeat_amount += c.first_amount;
        c.first_amount = amount;
        c.first = d;
        if (counting) ++c.days;
      } else {
        if (d > c.last) {
          c.last = d;
          if (counting) ++c.days;
        } else if (d < c.last && counting) {  // inside (first, last): was this day seen? unknown
          out_of_order(where, who, date, c.first, c.last);
        }
        c.repeat_amount += amount;
      }
      if (!counting) note_day(cal_days_, k, d);
    } else if (split_ && day <= holdout_end_) {
      Holdout& h = hold_[k];
      const auto d = static_cast<std::int32_t>(day);  // in (end_, holdout_end_]: fits
      if (order_ == TransactionOrder::per_customer_ascending) {
        if (h.days == 0) {
          h.first = h.last = d;
          h.days = 1;
        } else if (d > h.last) {
          h.last = d;
          ++h.days;
        } else if (d < h.first) {
          h.first = d;
          ++h.days;
        } else if (d != h.first && d != h.last) {
          out_of_order(where, who, date, h.first, h.last);
        }
      } else {
        note_day(hold_days_, k, d);
      }
      h.amount += amount;
    }
    ++rows_;
  }

  template <class Who>
  [[noreturn]] void out_of_order(const char* where, const Who& who, Date date, std::int32_t first,
                                 std::int32_t last) const {
    detail::raise<invalid_argument>(where, ": transaction ", rows_, " (customer ", who, ", ", date.to_string(),
                                    ") falls between that customer's purchase days ",
                                    Date::from_days(first).to_string(), " and ", Date::from_days(last).to_string(),
                                    " seen so far; TransactionOrder::per_customer_ascending needs each customer's "
                                    "transactions in date order (use TransactionOrder::any)");
  }

  // (customer, day) keys, sorted and de-duplicated whenever they have doubled since the last time,
  // so repeated same-day rows never hold more than about twice the distinct days' memory.
  struct DayKeys {
    std::vector<std::uint64_t> keys;
    std::size_t compacted = 0;
  };
  static void note_day(DayKeys& s, std::uint32_t k, std::int32_t d) {
    s.keys.push_back(key(k, d));
    if (s.keys.size() >= std::max<std::size_t>(2 * s.compacted, std::size_t(1) << 16)) compact(s);
  }
  static void compact(DayKeys& s) {
    std::sort(s.keys.begin(), s.keys.end());
    s.keys.erase(std::unique(s.keys.begin(), s.keys.end()), s.keys.end());
    s.compacted = s.keys.size();
  }
  void finish_counts() {
    if (order_ != TransactionOrder::any) return;
    compact(cal_days_);
    for (Period& c : cal_) c.days = 0;
    for (std::uint64_t u : cal_days_.keys) ++cal_[static_cast<std::size_t>(u >> 32)].days;
    if (split_) {
      compact(hold_days_);
      for (Holdout& h : hold_) h.days = 0;
      for (std::uint64_t u : hold_days_.keys) ++hold_[static_cast<std::size_t>(u >> 32)].days;
    }
  }

  // The customers with a calibration purchase: by first appearance (named; names_ is in that
  // order already) or by number.
  void customers_in_order(std::vector<std::uint32_t>& order) const {
    order.clear();
    for (std::size_t k = 0; k < cal_.size(); ++k)
      if (cal_[k].days > 0) order.push_back(static_cast<std::uint32_t>(k));
  }

  std::int64_t end_;
  std::int64_t holdout_end_ = 0;
  TimeUnit unit_;
  TransactionOrder order_;
  bool split_ = false;
  Kind kind_ = Kind::none;
  index rows_ = 0;
  std::vector<Period> cal_;
  std::vector<Holdout> hold_;
  DayKeys cal_days_, hold_days_;
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::vector<std::string> names_;
  std::string last_id_;
  std::uint32_t last_index_ = 0;
  bool have_last_ = false;
};

namespace detail {

inline void feed_cdnow_file(const char* where, const std::string& path, SummaryAccumulator& acc) {
  std::ifstream in = open_input_stream(where, path);  // regular files only (uvp/io/file.hpp)
  for_each_cdnow_transaction(in, path, where,
                            [&](std::string_view id, Date day, double amount) { acc.add(id, day, amount); });
}

}  // namespace detail

/// summary_from_transactions(read_cdnow_transactions(path), observation_end, unit), read as a
/// stream: the file is never held in memory (see SummaryAccumulator; `order` as there - CDNOW's
/// own files are sorted by customer and date, so per_customer_ascending holds for them).
inline CustomerSummary summarize_cdnow_file(const std::string& path, Date observation_end,
                                            TimeUnit unit = TimeUnit::week,
                                            TransactionOrder order = TransactionOrder::any) {
  SummaryAccumulator acc(observation_end, unit, order);
  detail::feed_cdnow_file("uvp::summarize_cdnow_file", path, acc);
  return acc.summary();
}

/// calibration_holdout_split(read_cdnow_transactions(path), calibration_end, holdout_end, unit),
/// read as a stream.
inline CalibrationHoldout calibration_holdout_from_cdnow_file(const std::string& path, Date calibration_end,
                                                              Date holdout_end, TimeUnit unit = TimeUnit::week,
                                                              TransactionOrder order = TransactionOrder::any) {
  SummaryAccumulator acc(calibration_end, holdout_end, unit, order);
  detail::feed_cdnow_file("uvp::calibration_holdout_from_cdnow_file", path, acc);
  return acc.calibration_holdout();
}

}  // namespace uvp
