// SPDX-License-Identifier: Apache-2.0
// uvp::Date and the CDNOW parser at the limits: long digit strings, far-out day counts and
// years, and the uvp::...: prefix of every CDNOW parse error. Each case used to overflow a
// signed integer (undefined behaviour) or lacked the prefix.
#include <doctest/doctest.h>

#include <climits>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "support/test_support.hpp"
#include "uvp/clv/date.hpp"
#include "uvp/clv/transactions.hpp"

using uvp::Date;

TEST_CASE("parse_digits rejects values beyond INT_MAX instead of overflowing") {
  int v = -1;
  CHECK(uvp::detail::parse_digits("2147483647", v));
  CHECK(v == INT_MAX);
  v = -1;
  CHECK_FALSE(uvp::detail::parse_digits("2147483648", v));
  CHECK_FALSE(uvp::detail::parse_digits("19970101999", v));
  CHECK_FALSE(uvp::detail::parse_digits("99999999999999999999999999", v));
  CHECK(v == -1);  // untouched on failure
  CHECK(uvp::detail::all_digits("99999999999999999999999999"));
  CHECK_FALSE(uvp::detail::all_digits(""));
  CHECK_FALSE(uvp::detail::all_digits("1997-01-01"));
}

TEST_CASE("a CDNOW line with a long digit date is a parse error naming the function, line and value") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_cdnow_transactions("1 19970101999 1 5\n", "t.txt"), uvp::parse_error,
                               "uvp::parse_cdnow_transactions: t.txt:1: uvp::parse_date: '19970101999' is not a date");
  // Also after a first valid line, and with a 30-digit field.
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::parse_cdnow_transactions("1 19970101 1 5\n2 999999999999999999999999999999 1 5\n", "t.txt"),
      uvp::parse_error, "uvp::parse_cdnow_transactions: t.txt:2: uvp::parse_date: '999999999999999999999999999999'");
  // Only a field without any digit is a header; "1997-01-01" on the first line is data.
  const auto log = uvp::parse_cdnow_transactions("id date qty amount\n7 1997-01-02 1 3.5\n");
  REQUIRE(log.size() == 1);
  CHECK(log.date[0] == Date::from_ymd(1997, 1, 2));
  const auto iso_first = uvp::parse_cdnow_transactions("7 1997-01-02 1 3.5\n");
  CHECK(iso_first.size() == 1);
}

TEST_CASE("every CDNOW parse error starts with the public function's name") {
  const auto starts_with = [](const std::string& text, const char* fn) {
    try {
      uvp::parse_cdnow_transactions(text, "f.txt");
    } catch (const uvp::parse_error& e) {
      return std::string(e.what()).rfind(std::string(fn) + ": f.txt:", 0) == 0;
    }
    return false;
  };
  for (const char* bad : {"1 19970101 1\n", "1 19971301 1 3\n", "1 19970101 1 abc\n", "1 19970101 1 -4\n",
                          "1 19970101 1 4\nid date qty amount\n", "1 19970101999 1 5\n"}) {
    CAPTURE(bad);
    CHECK(starts_with(bad, "uvp::parse_cdnow_transactions"));
  }
  // read_cdnow_transactions passes its own name to the same parser.
  std::istringstream in("1 19970101 1 abc\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::parse_cdnow_stream(in, "data.txt"), uvp::parse_error,
                               "uvp::read_cdnow_transactions: data.txt:1: amount 'abc' is not a finite number");
}

TEST_CASE("Date: day numbers beyond the int years are out_of_range errors, not overflows") {
  CHECK(Date::from_days(Date::max_days) == Date::from_ymd(INT_MAX, 12, 31));
  CHECK(Date::from_days(Date::min_days) == Date::from_ymd(INT_MIN, 1, 1));
  CHECK(Date::from_ymd(INT_MAX, 12, 31).to_string() == "2147483647-12-31");
  CHECK(Date::from_ymd(INT_MIN, 1, 1).year() == INT_MIN);
  CHECK(Date::from_days(Date::min_days).month() == 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_days(Date::max_days + 1), uvp::out_of_range_error,
                               "uvp::Date::from_days: days = 784351576777 is outside the representable day numbers");
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_days(std::numeric_limits<std::int64_t>::max()), uvp::out_of_range_error,
                               "days = 9223372036854775807 is outside");
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_days(std::numeric_limits<std::int64_t>::min()), uvp::out_of_range_error,
                               "days = -9223372036854775808 is outside");
}

TEST_CASE("Date +/- days: checked against the representable range, whatever the day count") {
  const Date d = Date::from_ymd(1997, 1, 1);
  CHECK((d + 31) == Date::from_ymd(1997, 2, 1));
  CHECK((d - 1) == Date::from_ymd(1996, 12, 31));
  CHECK((d + -1) == Date::from_ymd(1996, 12, 31));
  CHECK((Date::from_days(Date::max_days) - (Date::max_days - Date::min_days)) == Date::from_days(Date::min_days));
  constexpr auto big = std::numeric_limits<std::int64_t>::max();
  constexpr auto small = std::numeric_limits<std::int64_t>::min();
  UVP_CHECK_THROWS_WITH_SUBSTR(d + big, uvp::out_of_range_error,
                               "uvp::Date::operator+: date 9862 + 9223372036854775807 days is outside");
  UVP_CHECK_THROWS_WITH_SUBSTR(d + small, uvp::out_of_range_error, "date 9862 + -9223372036854775808 days");
  UVP_CHECK_THROWS_WITH_SUBSTR(d - small, uvp::out_of_range_error,
                               "uvp::Date::operator-: date 9862 - -9223372036854775808 days is outside");
  UVP_CHECK_THROWS_WITH_SUBSTR(d - big, uvp::out_of_range_error, "date 9862 - 9223372036854775807 days");
  CHECK_THROWS_AS(Date::from_days(Date::max_days) + 1, uvp::out_of_range_error);
  CHECK_THROWS_AS(Date::from_days(Date::min_days) - 1, uvp::out_of_range_error);
  // The difference of any two representable dates fits in int64.
  CHECK(Date::from_days(Date::max_days) - Date::from_days(Date::min_days) == Date::max_days - Date::min_days);
}

TEST_CASE("Date::from_ymd: the extreme years round-trip; bad fields still name the value") {
  for (const int y : {INT_MIN, INT_MIN + 1, -1, 0, 1, 1970, INT_MAX - 1, INT_MAX}) {
    CAPTURE(y);
    for (const int m : {1, 2, 12}) {
      const Date d = Date::from_ymd(y, m, Date::days_in_month(y, m));
      CHECK(d.year() == y);
      CHECK(d.month() == m);
      CHECK(d.day() == Date::days_in_month(y, m));
    }
  }
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_ymd(INT_MAX, 13, 1), uvp::invalid_argument, "month 13 is not in [1, 12]");
}
