// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::Date and uvp::parse_date.
#include <doctest/doctest.h>

#include "support/test_support.hpp"
#include "uvp/clv/date.hpp"

using uvp::Date;

TEST_CASE("Date counts days from 1970-01-01 in the proleptic Gregorian calendar") {
  CHECK(Date::from_ymd(1970, 1, 1).days() == 0);
  CHECK(Date::from_ymd(2000, 3, 1).days() == 11017);
  CHECK(Date::from_ymd(1969, 12, 31).days() == -1);
  CHECK(Date::from_ymd(1997, 9, 30) - Date::from_ymd(1997, 1, 1) == 272);
  CHECK(Date::from_ymd(1998, 6, 30) - Date::from_ymd(1997, 9, 30) == 273);  // 39 weeks
  CHECK(Date::from_ymd(2000, 2, 29) - Date::from_ymd(2000, 2, 28) == 1);
  CHECK(Date::from_ymd(2024, 2, 29).to_string() == "2024-02-29");
  CHECK((Date::from_ymd(1997, 1, 1) + 272) == Date::from_ymd(1997, 9, 30));
  CHECK(Date::from_ymd(1997, 1, 1) < Date::from_ymd(1997, 1, 2));
}

TEST_CASE("Date round-trips every day between 1600 and 2400") {
  const auto lo = Date::from_ymd(1600, 1, 1).days(), hi = Date::from_ymd(2400, 12, 31).days();
  int y = 1600, m = 1, d = 1;
  bool ok = true;
  for (auto k = lo; k <= hi; ++k) {
    const Date day = Date::from_days(k);
    ok = ok && day.year() == y && day.month() == m && day.day() == d && Date::from_ymd(y, m, d).days() == k;
    if (++d > Date::days_in_month(y, m)) {
      d = 1;
      if (++m > 12) m = 1, ++y;
    }
  }
  CHECK(ok);
}

TEST_CASE("parse_date reads ISO and CDNOW dates and ignores a time of day") {
  const Date want = Date::from_ymd(1997, 9, 30);
  CHECK(uvp::parse_date("1997-09-30") == want);
  CHECK(uvp::parse_date("19970930") == want);
  CHECK(uvp::parse_date(" 1997-09-30 13:45:00") == want);
  CHECK(uvp::parse_date("1997-09-30T13:45") == want);
  CHECK(uvp::parse_date("19970930\r") == want);
}

TEST_CASE("bad dates throw with the text and the reason") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date("1997-13-01"), uvp::parse_error,
                               "uvp::parse_date: '1997-13-01' is not a valid calendar date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date("19970229"), uvp::parse_error,
                               "'19970229' is not a valid calendar date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date("1997/09/30"), uvp::parse_error,
                               "'1997/09/30' is not a date (expected YYYY-MM-DD or YYYYMMDD)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date("1997-9-30"), uvp::parse_error, "is not a date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date("199709301"), uvp::parse_error, "is not a date");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::parse_date(""), uvp::parse_error, "is not a date");
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_ymd(1900, 2, 29), uvp::invalid_argument,
                               "uvp::Date::from_ymd: day 29 is not in [1, 28] for 1900-2");
  UVP_CHECK_THROWS_WITH_SUBSTR(Date::from_ymd(1999, 0, 1), uvp::invalid_argument, "month 0 is not in [1, 12]");
}
