// SPDX-License-Identifier: Apache-2.0
// The CDNOW examples' data set: per-customer purchase-token sequences, calibration features,
// holdout labels/spend, a fixed stratified train/validation/test split and the BG/NBD baseline.
//
// A transaction log (customer, date, quantity, amount) is split at calibration_end. Each
// customer with a purchase on or before it becomes one example:
//
//   tokens    calibration purchases, oldest first (the most recent max_len - 1 kept), one token
//             per purchase *day* (same-day transactions are summed), then one END token that
//             says how long ago the last purchase was; padding id 0 after the end;
//   label     1 if the customer bought again in (calibration_end, holdout_end], else 0;
//   features  frequency x, recency t_x, age T (weeks, as summary_from_transactions), mean spend
//             per purchase day, total calibration spend;
//   target    holdout spend (sum of the amounts in the holdout period).
//
// Vocabulary (Vocabulary::describe() writes the same table; the model files' .vocab.txt copy it):
//
//   id 0                padding
//   ids 1 .. 75         a purchase day: 1 + (gap * 5 + amount) * 3 + quantity, with
//                       gap      days since the previous purchase day: 0 first purchase,
//                                1: 1-7, 2: 8-30, 3: 31-90, 4: 91+
//                       amount   dollars that day: 0: <= 15, 1: <= 25, 2: <= 40, 3: <= 70, 4: > 70
//                       quantity items that day: 0: 1, 1: 2, 2: 3+
//   ids 76 .. 84        END: days from the last purchase to calibration_end, in 30-day steps:
//                       76 + min(days / 30, 8) (76: 0-29 days ... 84: 240+ days)
//
// The split: 20 % test, then 20 % of the rest for validation, each stratified on the label with
// a fixed seed. Nothing is tuned on the test customers.
//
// The examples read the full CDNOW log (examples/data/cdnow/CDNOW_master.txt: 23,570 customers;
// read and built in ~0.05 s) unless --data names another, e.g. its 1/10 sample CDNOW_sample.txt.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/date.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/data/split.hpp"

namespace uvp_examples {

using uvp::index;

/// A transaction log with the number of items of each transaction (TransactionLog has none).
struct PurchaseLog {
  uvp::TransactionLog log;
  std::vector<double> quantity;  ///< one per transaction, >= 0
};

/// CDNOW text layout (see uvp::read_cdnow_transactions): 4 or 5 whitespace-separated fields,
/// the quantity being the second to last.
inline PurchaseLog read_cdnow_purchases(const std::string& path) {
  PurchaseLog out;
  out.log = uvp::read_cdnow_transactions(path);  // validates every line
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = uvp::detail::split_whitespace(line);
    if (f.size() < 4) continue;
    const std::string_view date = f[f.size() - 3];
    if (date.empty() || date[0] < '0' || date[0] > '9') continue;  // the header line
    double q = 0;
    if (!uvp::detail::parse_amount(f[f.size() - 2], q) || q < 0)
      uvp::detail::raise<uvp::parse_error>(path, ": quantity '", f[f.size() - 2], "' is not a number >= 0");
    out.quantity.push_back(q);
  }
  if (static_cast<index>(out.quantity.size()) != out.log.size())
    uvp::detail::raise<uvp::parse_error>(path, ": read ", out.quantity.size(), " quantities for ", out.log.size(),
                                         " transactions");
  return out;
}

/// A CSV log with a header: one row per transaction. quantity_col may be empty, or name a column
/// the file does not have: every transaction then counts as 1 item.
inline PurchaseLog read_csv_purchases(const std::string& path, const std::string& id_col, const std::string& date_col,
                                      const std::string& amount_col, const std::string& quantity_col) {
  const uvp::CsvTable t = uvp::read_csv(path);
  const auto ids = t.column(id_col);
  const auto dates = t.column(date_col);
  const auto amounts = t.numeric_column<double>(amount_col);
  const bool has_q = !quantity_col.empty() && t.has_column(quantity_col);
  const uvp::Vector<double> q = has_q ? t.numeric_column<double>(quantity_col) : uvp::Vector<double>();
  PurchaseLog out;
  for (index r = 0; r < t.rows(); ++r) {
    uvp::Date d;
    try {
      d = uvp::parse_date(dates[static_cast<std::size_t>(r)]);
    } catch (const uvp::parse_error& e) {
      uvp::detail::raise<uvp::parse_error>(t.location(r, t.column_index(date_col)), ": ", e.what());
    }
    out.log.add(ids[static_cast<std::size_t>(r)], d, amounts[r]);
    out.quantity.push_back(has_q ? std::max(0.0, q[r]) : 1.0);
  }
  return out;
}

/// The token vocabulary described at the top of this file.
struct Vocabulary {
  static constexpr index padding = 0;
  static constexpr index gap_buckets = 5, amount_buckets = 5, quantity_buckets = 3;
  static constexpr index purchase_tokens = gap_buckets * amount_buckets * quantity_buckets;  // 75
  static constexpr index end_buckets = 9, end_bucket_days = 30;
  static constexpr index first_end = 1 + purchase_tokens;  // 76
  static constexpr index size = first_end + end_buckets;   // 85 ids: 0 .. 84

  /// gap_days < 0: the first purchase.
  static index purchase(std::int64_t gap_days, double amount, double quantity) noexcept {
    const index g = gap_days < 0 ? 0 : gap_days <= 7 ? 1 : gap_days <= 30 ? 2 : gap_days <= 90 ? 3 : 4;
    const index a = amount <= 15 ? 0 : amount <= 25 ? 1 : amount <= 40 ? 2 : amount <= 70 ? 3 : 4;
    const index q = quantity < 1.5 ? 0 : quantity < 2.5 ? 1 : 2;
    return 1 + (g * amount_buckets + a) * quantity_buckets + q;
  }
  static index end(std::int64_t days_since_last) noexcept {
    return first_end + std::min<index>(index(days_since_last / end_bucket_days), end_buckets - 1);
  }
  /// The table above, as text (one line per rule), for the files that go with a saved model.
  static std::string describe() {
    return "vocabulary_size 85\n"
           "padding_id 0\n"
           "purchase_id 1 + (gap * 5 + amount) * 3 + quantity\n"
           "gap_days first:0 1-7:1 8-30:2 31-90:3 91+:4\n"
           "amount_dollars <=15:0 <=25:1 <=40:2 <=70:3 >70:4\n"
           "quantity_items 1:0 2:1 3+:2\n"
           "end_id 76 + min(floor(days_since_last_purchase / 30), 8)\n"
           "order oldest_first_then_end_token_then_padding\n";
  }
};

struct DatasetOptions {
  uvp::Date calibration_end = uvp::Date::from_ymd(1997, 9, 30);
  uvp::Date holdout_end = uvp::Date::from_ymd(1998, 6, 30);
  index max_len = 32;  ///< tokens per sequence, END included
  std::uint64_t seed = 42;
  double test_fraction = 0.2, validation_fraction = 0.2;
};

/// Calibration features, in this column order.
inline const std::vector<std::string>& feature_names() {
  static const std::vector<std::string> names = {"frequency", "recency_weeks", "T_weeks", "mean_spend", "total_spend"};
  return names;
}

struct CdnowDataset {
  std::vector<std::string> id;       ///< customer ids, in order of first purchase in the log
  index max_len = 0;
  std::vector<index> tokens;         ///< customers x max_len, row-major, 0 = padding
  std::vector<index> lengths;        ///< valid tokens per customer, in [2, max_len]
  uvp::Vector<double> label;         ///< 1: bought in the holdout period
  uvp::Matrix<double> features;      ///< customers x 5, see feature_names()
  uvp::Vector<double> holdout_spend;
  uvp::CustomerSummary calibration;  ///< BG/NBD summary (weeks)
  double holdout_weeks = 0;
  std::vector<index> train, validation, test;  ///< customer indices

  index size() const noexcept { return static_cast<index>(id.size()); }
};

inline CdnowDataset build_dataset(const PurchaseLog& data, const DatasetOptions& o) {
  constexpr const char* where = "build_dataset";
  if (o.max_len < 2) uvp::detail::raise<uvp::invalid_argument>(where, ": max_len = ", o.max_len, " must be >= 2");
  CdnowDataset ds;
  ds.max_len = o.max_len;
  const auto split = uvp::calibration_holdout_split(data.log, o.calibration_end, o.holdout_end, uvp::TimeUnit::week);
  ds.calibration = split.calibration;
  ds.holdout_weeks = split.holdout_duration;
  const index n = ds.calibration.size();
  ds.id = ds.calibration.id;
  std::unordered_map<std::string, index> pos;
  for (index i = 0; i < n; ++i) pos.emplace(ds.id[std::size_t(i)], i);

  // Purchase days (amount and quantity summed per customer and day), sorted.
  struct Day {
    index customer;
    std::int64_t day;
    double amount, quantity;
  };
  std::vector<Day> days;
  const std::int64_t cal_end = o.calibration_end.days(), hold_end = o.holdout_end.days();
  ds.holdout_spend = uvp::Vector<double>::Zero(n);
  for (index r = 0; r < data.log.size(); ++r) {
    const auto it = pos.find(data.log.customer_id[std::size_t(r)]);
    if (it == pos.end()) continue;  // first purchase after calibration_end
    const std::int64_t d = data.log.date[std::size_t(r)].days();
    if (d <= cal_end)
      days.push_back({it->second, d, data.log.amount[std::size_t(r)], data.quantity[std::size_t(r)]});
    else if (d <= hold_end)
      ds.holdout_spend[it->second] += data.log.amount[std::size_t(r)];
  }
  std::sort(days.begin(), days.end(),
            [](const Day& u, const Day& v) { return u.customer != v.customer ? u.customer < v.customer : u.day < v.day; });
  std::size_t w = 0;
  for (std::size_t r = 0; r < days.size(); ++r) {
    if (w > 0 && days[w - 1].customer == days[r].customer && days[w - 1].day == days[r].day)
      days[w - 1].amount += days[r].amount, days[w - 1].quantity += days[r].quantity;
    else
      days[w++] = days[r];
  }
  days.resize(w);

  ds.tokens.assign(std::size_t(n * o.max_len), Vocabulary::padding);
  ds.lengths.assign(std::size_t(n), 0);
  ds.features.resize(n, 5);
  ds.label.resize(n);
  for (std::size_t b = 0; b < days.size();) {
    std::size_t e = b;
    double total = 0;
    while (e < days.size() && days[e].customer == days[b].customer) total += days[e++].amount;
    const index c = days[b].customer;
    const std::size_t kept = std::min<std::size_t>(e - b, std::size_t(o.max_len - 1));
    index* row = ds.tokens.data() + c * o.max_len;
    index t = 0;
    for (std::size_t k = e - kept; k < e; ++k)
      row[t++] = Vocabulary::purchase(k == b ? -1 : days[k].day - days[k - 1].day, days[k].amount, days[k].quantity);
    row[t++] = Vocabulary::end(cal_end - days[e - 1].day);
    ds.lengths[std::size_t(c)] = t;
    ds.features(c, 0) = ds.calibration.frequency[c];
    ds.features(c, 1) = ds.calibration.recency[c];
    ds.features(c, 2) = ds.calibration.T[c];
    ds.features(c, 3) = total / double(e - b);
    ds.features(c, 4) = total;
    b = e;
  }
  for (index i = 0; i < n; ++i) ds.label[i] = split.holdout_frequency[i] > 0 ? 1.0 : 0.0;

  // Stratified split: test first, then validation out of the rest.
  const auto outer = uvp::stratified_train_test_split(ds.label, o.test_fraction, o.seed);
  const uvp::Vector<double> rest_labels = uvp::take(ds.label, uvp::as_span(outer.train));
  const auto inner = uvp::stratified_train_test_split(rest_labels, o.validation_fraction, o.seed + 1);
  for (auto i : inner.train) ds.train.push_back(outer.train[std::size_t(i)]);
  for (auto i : inner.test) ds.validation.push_back(outer.train[std::size_t(i)]);
  ds.test = outer.test;
  return ds;
}

/// BG/NBD x Gamma-Gamma fitted on some customers' calibration summaries (no holdout data), and
/// their predictions for every customer of the data set.
struct BgNbdBaseline {
  uvp::BgNbdParams bgnbd;
  uvp::GammaGammaParams gamma_gamma;
  uvp::Vector<double> p_repeat;            ///< P(at least one purchase in the holdout window)
  uvp::Vector<double> expected_purchases;  ///< E[Y(t) | x, t_x, T]
  uvp::Vector<double> expected_spend;      ///< E[Y(t) | ...] * E[M | x, m_x]
};

/// P(Y(t) >= 1 | x, t_x, T) for the BG/NBD. A customer alive at T buys as a Poisson process
/// whose rate, given the history and being alive, is Gamma(r + x, alpha + T) (the dropout
/// probability p factors out of the likelihood given alive), so
///   P(Y(t) = 0 | alive) = ((alpha + T) / (alpha + T + t))^(r + x)
/// and a dead customer never buys:
///   P(Y(t) >= 1) = P(alive | x, t_x, T) * (1 - ((alpha + T) / (alpha + T + t))^(r + x)).
inline double bgnbd_probability_of_purchase(const uvp::BgNbd& model, double t, double x, double tx, double T) {
  const auto& p = model.params();
  const double alive = model.probability_alive(x, tx, T);
  return alive * -std::expm1((p.r + x) * std::log((p.alpha + T) / (p.alpha + T + t)));
}

/// Fits on the calibration data of the train + validation customers: the test customers' data is
/// never seen, as for the models the baseline is compared with.
inline BgNbdBaseline fit_bgnbd_baseline(const CdnowDataset& ds) {
  std::vector<index> fit_customers = ds.train;
  fit_customers.insert(fit_customers.end(), ds.validation.begin(), ds.validation.end());
  const auto idx = uvp::as_span(fit_customers);
  const auto& s = ds.calibration;
  uvp::BgNbd bg;
  bg.fit(uvp::take(s.frequency, idx), uvp::take(s.recency, idx), uvp::take(s.T, idx));
  // Gamma-Gamma takes log(spend): repeat buyers whose repeat purchases were free are left out.
  std::vector<double> f, m;
  for (index i : fit_customers)
    if (s.frequency[i] > 0 && s.monetary_value[i] > 0) f.push_back(s.frequency[i]), m.push_back(s.monetary_value[i]);
  uvp::GammaGamma gg;
  gg.fit(uvp::Span<const double>(f).as_vector(), uvp::Span<const double>(m).as_vector());

  BgNbdBaseline out;
  out.bgnbd = bg.params();
  out.gamma_gamma = gg.params();
  const index n = ds.size();
  out.expected_purchases = bg.conditional_expected_purchases(ds.holdout_weeks, s.frequency, s.recency, s.T);
  out.p_repeat.resize(n);
  out.expected_spend.resize(n);
  for (index i = 0; i < n; ++i) {
    out.p_repeat[i] = bgnbd_probability_of_purchase(bg, ds.holdout_weeks, s.frequency[i], s.recency[i], s.T[i]);
    out.expected_spend[i] =
        out.expected_purchases[i] * gg.conditional_expected_average_value(s.frequency[i], s.monetary_value[i]);
  }
  return out;
}

/// Rows `customers` of the token matrix and their lengths: the batch layout of uvp::nn sequence
/// blocks (row b * max_len + t of the flattened ids).
inline void gather_batch(const CdnowDataset& ds, const index* customers, index count, std::vector<index>& ids,
                         std::vector<index>& lengths) {
  ids.resize(std::size_t(count * ds.max_len));
  lengths.resize(std::size_t(count));
  for (index b = 0; b < count; ++b) {
    const index c = customers[b];
    std::copy_n(ds.tokens.data() + c * ds.max_len, ds.max_len, ids.data() + b * ds.max_len);
    lengths[std::size_t(b)] = ds.lengths[std::size_t(c)];
  }
}

}  // namespace uvp_examples
