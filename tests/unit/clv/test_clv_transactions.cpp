// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::TransactionLog and the CDNOW-layout reader.
#include <doctest/doctest.h>

#include "support/test_support.hpp"
#include "uvp/clv/transactions.hpp"

using uvp::Date;

TEST_CASE("read_cdnow_transactions reads the bundled 5-column CDNOW sample") {
  const auto log = uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt"));
  REQUIRE(log.size() == 6919);
  CHECK(log.customer_id[0] == "0001");  // the sample id, kept verbatim
  CHECK(log.date[0] == Date::from_ymd(1997, 1, 1));
  CHECK(log.amount[0] == 29.33);
  CHECK(log.customer_id[6918] == "2357");
  CHECK(log.date[6918] == Date::from_ymd(1997, 3, 25));  // ...00140 2357 19970325 1 ... (last line)
}

TEST_CASE("the 4-column layout with a header line, ISO dates and blank lines") {
  const auto log = uvp::parse_cdnow_transactions(
      " customer_id  date number_of_cds  dollar_value\n"
      " 00001 19970101  1   11.77\n"
      "\n"
      "00002\t1997-01-12 1 12.00\r\n");
  REQUIRE(log.size() == 2);
  CHECK(log.customer_id[1] == "00002");
  CHECK(log.date[1] == Date::from_ymd(1997, 1, 12));
  CHECK(log.amount[1] == 12.0);
}

TEST_CASE("malformed lines name the source and the line") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 2.0\n1 19970101 1\n", "t.txt"),
                               uvp::parse_error, "t.txt:2: expected 4 fields");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 2.0\n2 19971301 1 3\n"), uvp::parse_error,
                               "<string>:2: uvp::parse_date: '19971301' is not a valid calendar date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 abc\n"), uvp::parse_error,
                               "<string>:1: amount 'abc' is not a finite number");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 nan\n"), uvp::parse_error,
                               "amount 'nan' is not a finite number");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 -4\n"), uvp::parse_error,
                               "<string>:1: amount -4 is negative");
  // Only the first line may be a header.
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101 1 4\nid date qty amount\n"), uvp::parse_error,
                               "<string>:2: uvp::parse_date: 'date' is not a date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::read_cdnow_transactions("/nonexistent/x.txt"), uvp::io_error,
                               "uvp::read_cdnow_transactions: cannot open '/nonexistent/x.txt'");
}

TEST_CASE("TransactionLog::add rejects non-finite and negative amounts") {
  uvp::TransactionLog log;
  log.add("a", Date::from_ymd(2020, 1, 1), 0.0);
  CHECK(log.size() == 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(
      log.add("b", Date::from_ymd(2020, 1, 2), -1.0), uvp::invalid_argument,
      "uvp::TransactionLog::add: amount = -1 for customer 'b' on 2020-01-02 must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(log.add("b", Date::from_ymd(2020, 1, 2), std::nan("")), uvp::invalid_argument,
                               "amount = nan");
  CHECK(log.size() == 1);
}
