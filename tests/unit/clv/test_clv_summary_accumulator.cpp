// SPDX-License-Identifier: Apache-2.0
// Tests of the streaming summary: equal to summary_from_transactions / calibration_holdout_split on the
// CDNOW sample and on random shuffled logs, in both input orders, by id and by number; bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/clv/summary_accumulator.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"

using uvp::Date;
using uvp::TransactionOrder;

namespace {

std::string cdnow_path() { return uvp_test::data_path("cdnow/CDNOW_sample.txt"); }

// x, t_x, T and the ids exactly; monetary values up to the rounding of summing in another order.
void check_same(const uvp::CustomerSummary& got, const uvp::CustomerSummary& want, bool compare_ids = true) {
  REQUIRE(got.size() == want.size());
  if (compare_ids) CHECK(got.id == want.id);
  CHECK(got.frequency == want.frequency);
  CHECK(got.recency == want.recency);
  CHECK(got.T == want.T);
  double worst = 0;
  for (uvp::index i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(got.monetary_value[i] - want.monetary_value[i]) /
                                std::max(1.0, std::abs(want.monetary_value[i])));
  CHECK(worst <= 1e-12);
}

void check_same(const uvp::CalibrationHoldout& got, const uvp::CalibrationHoldout& want) {
  check_same(got.calibration, want.calibration);
  CHECK(got.holdout_frequency == want.holdout_frequency);
  CHECK(got.holdout_duration == want.holdout_duration);
  REQUIRE(got.holdout_monetary_value.size() == want.holdout_monetary_value.size());
  for (uvp::index i = 0; i < want.holdout_monetary_value.size(); ++i)
    CHECK(got.holdout_monetary_value[i] == doctest::Approx(want.holdout_monetary_value[i]).epsilon(1e-12));
}

// A log with many same-day rows, customers that start after the end, and rows past the holdout.
uvp::TransactionLog random_log(uvp::Rng& rng, int customers, const Date& start) {
  uvp::TransactionLog log;
  for (int c = 0; c < customers; ++c) {
    const std::string id = "c" + std::to_string(c);
    const int first = static_cast<int>(rng.uniform_int(200));
    const int rows = 1 + static_cast<int>(rng.uniform_int(12));
    for (int k = 0; k < rows; ++k) {
      // Days cluster on a few values so that same-day rows and interior days are common.
      const int day = k == 0 ? first : first + static_cast<int>(rng.uniform_int(8)) * 9;
      const double amount = rng.uniform_int(5) == 0 ? 0.0 : std::round(rng.uniform(0, 100) * 100) / 100;
      log.add(id, start + day, amount);
    }
  }
  return log;
}

uvp::TransactionLog permuted(const uvp::TransactionLog& log, const std::vector<std::size_t>& order) {
  uvp::TransactionLog out;
  for (std::size_t i : order) out.add(log.customer_id[i], log.date[i], log.amount[i]);
  return out;
}

}  // namespace

TEST_CASE("the CDNOW sample read as a stream gives summary_from_transactions' summary and split") {
  const auto log = uvp::read_cdnow_transactions(cdnow_path());
  const Date cal = Date::from_ymd(1997, 9, 30), hold = Date::from_ymd(1998, 6, 30);
  const auto want = uvp::summary_from_transactions(log, cal, uvp::TimeUnit::week);
  REQUIRE(want.size() == 2357);
  const auto want_split = uvp::calibration_holdout_split(log, cal, hold, uvp::TimeUnit::week);
  for (auto order : {TransactionOrder::any, TransactionOrder::per_customer_ascending}) {
    CAPTURE(static_cast<int>(order));
    check_same(uvp::summarize_cdnow_file(cdnow_path(), cal, uvp::TimeUnit::week, order), want);
    check_same(uvp::calibration_holdout_from_cdnow_file(cdnow_path(), cal, hold, uvp::TimeUnit::week, order),
               want_split);
    // Days as the unit, and a log fed whole.
    uvp::SummaryAccumulator acc(cal, uvp::TimeUnit::day, order);
    acc.add(log);
    CHECK(acc.transactions() == log.size());
    check_same(acc.summary(), uvp::summary_from_transactions(log, cal, uvp::TimeUnit::day));
  }
  // Customer 1 (the published first row): x = 2, t_x = 213 days, T = 272 days.
  const auto s = uvp::summarize_cdnow_file(cdnow_path(), cal);
  CHECK(s.id[0] == "0001");
  CHECK(s.frequency[0] == 2);
  CHECK(s.recency[0] == 213.0 / 7);
  CHECK(s.T[0] == 272.0 / 7);
}

TEST_CASE("random shuffled logs: any order is exact; date-sorted logs also pass per_customer_ascending") {
  uvp::Rng rng(1234);
  const Date start = Date::from_ymd(2020, 1, 1);
  for (int trial = 0; trial < 5; ++trial) {
    CAPTURE(trial);
    const auto base = random_log(rng, 300, start);
    std::vector<std::size_t> order(static_cast<std::size_t>(base.size()));
    std::iota(order.begin(), order.end(), std::size_t(0));
    rng.shuffle(order.begin(), order.end());
    const auto shuffled = permuted(base, order);
    const Date cal = start + 120, hold = start + 190;
    const auto want = uvp::summary_from_transactions(shuffled, cal, uvp::TimeUnit::week);
    const auto want_split = uvp::calibration_holdout_split(shuffled, cal, hold, uvp::TimeUnit::day);
    REQUIRE(want.size() > 100);
    REQUIRE((want.frequency.array() > 0).count() > 50);

    uvp::SummaryAccumulator acc(cal, uvp::TimeUnit::week);
    for (uvp::index i = 0; i < shuffled.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      acc.add(shuffled.customer_id[k], shuffled.date[k], shuffled.amount[k]);
    }
    check_same(acc.summary(), want);
    check_same(acc.summary(), want);  // stays usable

    uvp::SummaryAccumulator split(cal, hold, uvp::TimeUnit::day);
    split.add(shuffled);
    check_same(split.calibration_holdout(), want_split);

    // The same rows sorted by date (ties in shuffled order): each customer's rows ascend.
    std::vector<std::size_t> by_date(order.size());
    std::iota(by_date.begin(), by_date.end(), std::size_t(0));
    std::stable_sort(by_date.begin(), by_date.end(),
                     [&](std::size_t u, std::size_t v) { return shuffled.date[u] < shuffled.date[v]; });
    const auto sorted = permuted(shuffled, by_date);
    uvp::SummaryAccumulator asc(cal, hold, uvp::TimeUnit::day, TransactionOrder::per_customer_ascending);
    asc.add(sorted);
    check_same(asc.calibration_holdout(), uvp::calibration_holdout_split(sorted, cal, hold, uvp::TimeUnit::day));

    // By number (customer "c<k>" is number k): rows in number order, numbers reported.
    uvp::SummaryAccumulator num(cal, hold, uvp::TimeUnit::day);
    for (std::size_t i = 0; i < order.size(); ++i)
      num.add(static_cast<uvp::index>(std::stol(shuffled.customer_id[i].substr(1))), shuffled.date[i],
              shuffled.amount[i]);
    std::vector<uvp::index> numbers;
    const auto got = num.calibration_holdout(&numbers);
    REQUIRE(got.calibration.size() == want_split.calibration.size());
    CHECK(got.calibration.id.empty());
    CHECK(std::is_sorted(numbers.begin(), numbers.end()));
    for (uvp::index r = 0; r < got.calibration.size(); ++r) {
      const std::string id = "c" + std::to_string(numbers[static_cast<std::size_t>(r)]);
      const auto at = std::find(want_split.calibration.id.begin(), want_split.calibration.id.end(), id);
      REQUIRE(at != want_split.calibration.id.end());
      const auto w = static_cast<uvp::index>(at - want_split.calibration.id.begin());
      CHECK(got.calibration.frequency[r] == want_split.calibration.frequency[w]);
      CHECK(got.calibration.recency[r] == want_split.calibration.recency[w]);
      CHECK(got.calibration.T[r] == want_split.calibration.T[w]);
      CHECK(got.calibration.monetary_value[r] == doctest::Approx(want_split.calibration.monetary_value[w]));
      CHECK(got.holdout_frequency[r] == want_split.holdout_frequency[w]);
      CHECK(got.holdout_monetary_value[r] == doctest::Approx(want_split.holdout_monetary_value[w]));
    }
  }
}

TEST_CASE("same-day rows join one purchase; an earlier first day turns the old first day into a repeat") {
  const Date d0 = Date::from_ymd(2021, 3, 1);
  for (auto order : {TransactionOrder::any, TransactionOrder::per_customer_ascending}) {
    uvp::SummaryAccumulator acc(d0 + 28, uvp::TimeUnit::day, order);
    acc.add("a", d0 + 14, 4.0);
    acc.add("a", d0 + 14, 6.0);  // same day
    acc.add("a", d0 + 21, 1.0);
    acc.add("a", d0, 10.0);  // before the first day seen: the first purchase now; day 14 a repeat
    acc.add("a", d0, 2.5);
    acc.add("a", d0 + 21, 3.0);  // the last day again
    acc.add("a", d0 + 35, 99.0);  // after the end
    acc.add("b", d0 + 40, 1.0);   // only after the end: no row
    const auto s = acc.summary();
    REQUIRE(s.size() == 1);
    CHECK(s.id[0] == "a");
    CHECK(s.frequency[0] == 2);
    CHECK(s.recency[0] == 21);
    CHECK(s.T[0] == 28);
    CHECK(s.monetary_value[0] == doctest::Approx(7.0));  // (10 + 4) / 2
    CHECK(acc.customers() == 2);
    CHECK(acc.transactions() == 8);
  }
}

TEST_CASE("SummaryAccumulator rejects bad input with uvp::error naming the argument") {
  const Date d0 = Date::from_ymd(2021, 3, 1);
  uvp::SummaryAccumulator acc(d0 + 10, uvp::TimeUnit::day);
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.summary(), uvp::invalid_argument,
                               "uvp::SummaryAccumulator::summary: no transaction was added");
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.add("a", d0, -1.0), uvp::invalid_argument,
                               "uvp::SummaryAccumulator::add: transaction 0 (customer a): amount = -1 must be finite");
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.add("a", d0, std::nan("")), uvp::invalid_argument, "amount = nan");
  acc.add("a", d0 + 20, 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.summary(), uvp::invalid_argument,
                               "no transaction on or before observation_end 2021-03-11");
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.add(uvp::index{3}, d0, 1.0), uvp::invalid_argument,
                               "transaction 1 names its customer by number but the earlier ones by id");
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.calibration_holdout(), uvp::invalid_argument, "has no holdout period");

  uvp::SummaryAccumulator num(d0 + 10, uvp::TimeUnit::day);
  UVP_CHECK_THROWS_WITH_SUBSTR(num.add(uvp::index{-1}, d0, 1.0), uvp::invalid_argument,
                               "uvp::SummaryAccumulator::add: customer = -1 (transaction 0) must be in [0, ");

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::SummaryAccumulator(d0, d0, uvp::TimeUnit::day), uvp::invalid_argument,
                               "uvp::SummaryAccumulator: holdout_end 2021-03-01 must be after calibration_end");

  uvp::SummaryAccumulator asc(d0 + 30, d0 + 60, uvp::TimeUnit::day, TransactionOrder::per_customer_ascending);
  asc.add("a", d0, 1.0);
  asc.add("a", d0 + 9, 1.0);
  asc.add("a", d0 + 40, 1.0);
  asc.add("a", d0 + 50, 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(asc.add("a", d0 + 4, 1.0), uvp::invalid_argument,
                               "transaction 4 (customer a, 2021-03-05) falls between that customer's purchase days "
                               "2021-03-01 and 2021-03-10");
  UVP_CHECK_THROWS_WITH_SUBSTR(asc.add("a", d0 + 45, 1.0), uvp::invalid_argument, "(use TransactionOrder::any)");

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::summarize_cdnow_file("/nonexistent/cdnow.txt", d0), uvp::io_error,
                               "uvp::summarize_cdnow_file: cannot open '/nonexistent/cdnow.txt'");
  std::istringstream bad("00001 19970101 1 10.0\n00001 19970102 1 abc\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::for_each_cdnow_transaction(bad, "mem", "f", [](auto, auto, auto) {}),
                               uvp::parse_error, "f: mem:2: amount 'abc' is not a finite number");
  std::istringstream fields("00001 19970101 10.0\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::for_each_cdnow_transaction(fields, "mem", "f", [](auto, auto, auto) {}),
                               uvp::parse_error, "f: mem:1: expected 4 fields");
  std::istringstream date("id date qty amount\n00001 19971332 1 10.0\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::for_each_cdnow_transaction(date, "mem", "f", [](auto, auto, auto) {}),
                               uvp::parse_error, "f: mem:2: ");
}

TEST_CASE("a simulated log streamed in chunks summarises like the whole log, for any split and thread count") {
  const uvp::BgNbdParams truth{0.243, 4.414, 0.793, 2.426};
  const uvp::GammaGammaParams spend{6.25, 3.74, 15.44};
  const Date end = Date::from_ymd(1997, 9, 30);
  const uvp::index n = 3000;
  uvp::Vector<double> T(n);
  for (uvp::index i = 0; i < n; ++i) T[i] = static_cast<double>(189 + i % 85) / 7;
  std::vector<uvp::SimulatedTransaction> whole, parts;
  {
    uvp::ThreadCountGuard one(1);
    uvp::simulate_transactions(truth, spend, T, end, uvp::TimeUnit::week, 42, 0, n, whole);
  }
  {
    uvp::ThreadCountGuard two(2);
    uvp::simulate_transactions(truth, spend, T, end, uvp::TimeUnit::week, 42, 0, 1234, parts);
    uvp::simulate_transactions(truth, spend, T, end, uvp::TimeUnit::week, 42, 1234, n, parts);
  }
  REQUIRE(whole.size() == parts.size());
  REQUIRE(whole.size() > static_cast<std::size_t>(n));
  bool same = true;
  for (std::size_t k = 0; k < whole.size(); ++k)
    same = same && whole[k].customer == parts[k].customer && whole[k].date == parts[k].date &&
           whole[k].amount == parts[k].amount;
  CHECK(same);
  // Each customer's first purchase is T[i] weeks before the end, the rest in date order up to it.
  uvp::TransactionLog log;
  uvp::SummaryAccumulator acc(end, uvp::TimeUnit::week, TransactionOrder::per_customer_ascending);
  acc.reserve(n);
  UVP_CHECK_THROWS_WITH_SUBSTR(acc.reserve(0), uvp::invalid_argument, "uvp::SummaryAccumulator::reserve");
  for (const auto& tr : whole) {
    log.add(std::to_string(tr.customer), tr.date, tr.amount);
    acc.add(tr.customer, tr.date, tr.amount);
  }
  std::vector<uvp::index> numbers;
  const auto got = acc.summary(&numbers);
  const auto want = uvp::summary_from_transactions(log, end, uvp::TimeUnit::week);
  REQUIRE(got.size() == n);
  for (uvp::index i = 0; i < n; ++i) CHECK(want.id[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(numbers.back() == n - 1);
  check_same(got, want, false);
  CHECK((got.T - T).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((got.frequency.array() > 0).count() > n / 5);

  // simulate_customers with a seed: the same customers for 1 and 2 threads.
  uvp::Vector<double> ages = uvp::Vector<double>::Constant(50000, 39.0);
  uvp::SimulatedCustomers a, b;
  {
    uvp::ThreadCountGuard one(1);
    a = uvp::simulate_customers(truth, ages, std::uint64_t{7}, spend);
  }
  {
    uvp::ThreadCountGuard two(2);
    b = uvp::simulate_customers(truth, ages, std::uint64_t{7}, spend);
  }
  CHECK(a.frequency == b.frequency);
  CHECK(a.recency == b.recency);
  CHECK(a.monetary_value == b.monetary_value);
  CHECK(a.frequency.mean() == doctest::Approx(truth.r / truth.alpha * 39).epsilon(0.6));  // a sanity range

  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::simulate_transactions(truth, spend, T, end, uvp::TimeUnit::week, 1, 10, n + 1, parts), uvp::invalid_argument,
      "uvp::simulate_transactions: customers [10, 3001) are not within [0, 3000)");
  T[5] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simulate_transactions(truth, spend, T, end, uvp::TimeUnit::week, 1, 0, n, parts),
                               uvp::invalid_argument, "uvp::simulate_transactions: T[5] = -1 must be finite");
}
