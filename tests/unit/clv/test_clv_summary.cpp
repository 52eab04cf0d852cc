// SPDX-License-Identifier: Apache-2.0
// Tests of the transaction-log summaries: the published CDNOW summary, same-day aggregation, the holdout split.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/clv/summary.hpp"

using uvp::Date;

namespace {

struct PublishedRow {
  int id;
  double x, tx, T, zbar;
};

// cdnow_customers_summary_with_transactions.csv: ID,x,t_x,T,zbar (CRLF).
std::vector<PublishedRow> read_published() {
  std::ifstream in(uvp_test::data_path("cdnow/cdnow_customers_summary_with_transactions.csv"));
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);
  std::vector<PublishedRow> rows;
  while (std::getline(in, line)) {
    for (char& c : line)
      if (c == ',') c = ' ';
    std::istringstream ls(line);
    PublishedRow r{};
    ls >> r.id >> r.x >> r.tx >> r.T >> r.zbar;
    rows.push_back(r);
  }
  return rows;
}

uvp::TransactionLog cdnow() { return uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt")); }

}  // namespace

TEST_CASE("the CDNOW sample summary at 1997-09-30 in weeks reproduces the published one for all 2,357 customers") {
  const auto s = uvp::summary_from_transactions(cdnow(), Date::from_ymd(1997, 9, 30), uvp::TimeUnit::week);
  const auto pub = read_published();
  REQUIRE(pub.size() == 2357);
  REQUIRE(s.size() == 2357);
  int mismatches = 0;
  for (std::size_t i = 0; i < pub.size(); ++i) {
    const auto k = static_cast<uvp::index>(i);
    const bool same = std::stoi(s.id[i]) == pub[i].id && s.frequency[k] == pub[i].x &&
                      std::abs(s.recency[k] - pub[i].tx) <= 0.005 + 1e-9 &&
                      std::abs(s.T[k] - pub[i].T) <= 0.005 + 1e-9 &&
                      std::abs(s.monetary_value[k] - pub[i].zbar) <= 0.005 + 1e-9;
    if (!same && ++mismatches <= 5)
      MESSAGE("customer " << pub[i].id << ": got " << s.frequency[k] << " " << s.recency[k] << " " << s.T[k] << " "
                          << s.monetary_value[k]);
  }
  CHECK(mismatches == 0);
  // cdnow_customers_summary.csv (ID,frequency,recency,T) holds the same x, t_x, T.
  std::ifstream in(uvp_test::data_path("cdnow/cdnow_customers_summary.csv"));
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);
  CHECK(line == "ID,frequency,recency,T");
  int rows = 0, bad = 0;
  while (std::getline(in, line)) {
    for (char& c : line)
      if (c == ',') c = ' ';
    std::istringstream ls(line);
    int id;
    double x, tx, T;
    ls >> id >> x >> tx >> T;
    const auto k = static_cast<uvp::index>(rows++);
    if (k >= s.size() || std::stoi(s.id[static_cast<std::size_t>(k)]) != id || s.frequency[k] != x ||
        std::abs(s.recency[k] - tx) > 0.005 + 1e-9 || std::abs(s.T[k] - T) > 0.005 + 1e-9)
      ++bad;
  }
  CHECK(rows == 2357);
  CHECK(bad == 0);
  // Customer 1: purchases on 1997-01-01, -01-18 and -08-02 (and 1997-12-12, after the end).
  CHECK(s.frequency[0] == 2);
  CHECK(s.recency[0] == doctest::Approx(213.0 / 7).epsilon(1e-15));
  CHECK(s.T[0] == doctest::Approx(272.0 / 7).epsilon(1e-15));
  CHECK(s.monetary_value[0] == doctest::Approx((29.73 + 14.96) / 2).epsilon(1e-15));
  CHECK((s.frequency.array() == s.frequency.array().floor()).all());
}

TEST_CASE("same-day transactions are one purchase; later transactions and customers are ignored") {
  uvp::TransactionLog log;
  const Date d0 = Date::from_ymd(2021, 3, 1);
  log.add("b", d0 + 7, 5.0);  // b appears first in the log
  log.add("a", d0, 10.0);
  log.add("a", d0, 2.5);  // same day as the first purchase: joins it, not a repeat
  log.add("a", d0 + 14, 4.0);
  log.add("a", d0 + 14, 6.0);  // same day: one repeat purchase worth 10
  log.add("a", d0 + 21, 1.0);
  log.add("b", d0 + 7, 1.0);
  log.add("c", d0 + 40, 3.0);   // after the end: c does not appear
  log.add("a", d0 + 35, 99.0);  // after the end: ignored
  const auto s = uvp::summary_from_transactions(log, d0 + 28, uvp::TimeUnit::day);
  REQUIRE(s.size() == 2);
  CHECK(s.id[0] == "b");
  CHECK(s.id[1] == "a");
  CHECK(s.frequency[0] == 0);
  CHECK(s.recency[0] == 0);
  CHECK(s.T[0] == 21);
  CHECK(s.monetary_value[0] == 0);
  CHECK(s.frequency[1] == 2);
  CHECK(s.recency[1] == 21);
  CHECK(s.T[1] == 28);
  CHECK(s.monetary_value[1] == doctest::Approx(5.5));  // (10 + 1) / 2
  const auto w = uvp::summary_from_transactions(log, d0 + 28, uvp::TimeUnit::week);
  CHECK(w.recency[1] == 3);
  CHECK(w.T[1] == 4);
  // Default end: the last date in the log (d0 + 40), so c appears with T = 0.
  const auto all = uvp::summary_from_transactions(log);
  REQUIRE(all.size() == 3);
  CHECK(all.id[2] == "c");
  CHECK(all.T[2] == 0);
  CHECK(all.frequency[1] == 3);
}

TEST_CASE("calibration_holdout_split counts the holdout purchase days of the calibration customers") {
  const auto ref = uvp_test::read_numbers(uvp_test::fixture_path("clv/cdnow_holdout.txt"));
  const auto split = uvp::calibration_holdout_split(cdnow(), Date::from_ymd(1997, 9, 30), Date::from_ymd(1998, 6, 30));
  REQUIRE(split.calibration.size() == static_cast<uvp::index>(ref[0]));
  CHECK(split.holdout_duration == 39);
  CHECK(split.holdout_frequency.sum() == ref[1]);
  CHECK((split.holdout_frequency.array() > 0).count() == static_cast<uvp::index>(ref[2]));
  for (int k = 0; k < 10; ++k) {
    CHECK(std::stoi(split.calibration.id[static_cast<std::size_t>(k)]) == static_cast<int>(ref[3 + 2 * k]));
    CHECK(split.holdout_frequency[k] == ref[4 + 2 * k]);
  }
  // Customer 1's only holdout purchase: 1997-12-12, $26.48.
  CHECK(split.holdout_monetary_value[0] == doctest::Approx(26.48));

  uvp::TransactionLog log;
  const Date d0 = Date::from_ymd(2021, 3, 1);
  log.add("a", d0, 1);
  log.add("a", d0 + 10, 2);
  log.add("a", d0 + 10, 3);  // one holdout day worth 5
  log.add("a", d0 + 12, 7);
  log.add("n", d0 + 11, 8);  // first purchase in the holdout: not a calibration customer
  log.add("a", d0 + 30, 9);  // after holdout_end
  const auto s = uvp::calibration_holdout_split(log, d0 + 7, d0 + 14, uvp::TimeUnit::day);
  REQUIRE(s.calibration.size() == 1);
  CHECK(s.holdout_frequency[0] == 2);
  CHECK(s.holdout_monetary_value[0] == doctest::Approx(6));
  CHECK(s.holdout_duration == 7);
}

TEST_CASE("summaries reject bad logs with the argument and the value") {
  uvp::TransactionLog empty;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(empty, Date::from_ymd(2020, 1, 1)), uvp::invalid_argument,
                               "uvp::summary_from_transactions: transactions is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(empty), uvp::invalid_argument, "transactions is empty");
  uvp::TransactionLog log;
  log.add("a", Date::from_ymd(2020, 1, 5), 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(log, Date::from_ymd(2020, 1, 1)), uvp::invalid_argument,
                               "no transaction on or before observation_end 2020-01-01");
  auto bad = log;
  bad.amount[0] = -2;  // the columns are public: the summary re-checks them
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(bad, Date::from_ymd(2020, 2, 1)), uvp::invalid_argument,
                               "transactions.amount[0] = -2 must be finite and >= 0");
  bad.amount[0] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(bad, Date::from_ymd(2020, 2, 1)), uvp::invalid_argument,
                               "transactions.amount[0] = nan");
  bad = log;
  bad.date.push_back(Date::from_ymd(2020, 1, 6));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summary_from_transactions(bad, Date::from_ymd(2020, 2, 1)), uvp::shape_error,
                               "transactions.date has size 2, expected 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::calibration_holdout_split(log, Date::from_ymd(2020, 2, 1), Date::from_ymd(2020, 2, 1)),
      uvp::invalid_argument,
      "uvp::calibration_holdout_split: holdout_end 2020-02-01 must be after calibration_end 2020-02-01");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::calibration_holdout_split(log, Date::from_ymd(2020, 1, 1), Date::from_ymd(2020, 2, 1)),
      uvp::invalid_argument, "no transaction on or before calibration_end 2020-01-01");
}
