// SPDX-License-Identifier: Apache-2.0
// A calendar date (proleptic Gregorian, day resolution) and its parser, for transaction logs.
#pragma once

#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "uvp/core/error.hpp"

namespace uvp {

/// A day of the proleptic Gregorian calendar, stored as days since 1970-01-01 (negative before).
/// Differences of dates are whole days: `d1 - d0`. Conversions use H. Hinnant's
/// `days_from_civil` / `civil_from_days` algorithms (exact for every representable year).
/// The representable dates are those whose year fits in an int: day numbers in
/// [min_days, max_days] (-2147483648-01-01 .. 2147483647-12-31); from_days and the arithmetic
/// operators throw uvp::out_of_range_error beyond them, so no day count overflows.
class Date {
 public:
  /// Day numbers of -2147483648-01-01 and 2147483647-12-31.
  static constexpr std::int64_t min_days = -784353015833;
  static constexpr std::int64_t max_days = 784351576776;

  /// 1970-01-01.
  constexpr Date() noexcept = default;

  /// The date `days` days after 1970-01-01; days outside [min_days, max_days] throw
  /// uvp::out_of_range_error.
  static constexpr Date from_days(std::int64_t days) {
    if (days < min_days || days > max_days) out_of_range("uvp::Date::from_days", "days = ", days);
    return Date(days);
  }

  /// Year, month 1..12, day 1..days-in-month; anything else throws uvp::invalid_argument.
  static Date from_ymd(int year, int month, int day) {
    if (month < 1 || month > 12)
      detail::raise<invalid_argument>("uvp::Date::from_ymd: month ", month, " is not in [1, 12]");
    if (day < 1 || day > days_in_month(year, month))
      detail::raise<invalid_argument>("uvp::Date::from_ymd: day ", day, " is not in [1, ", days_in_month(year, month),
                                      "] for ", year, "-", month);
    return Date(days_from_civil(year, month, day));
  }

  constexpr std::int64_t days() const noexcept { return days_; }

  int year() const noexcept { return civil().y; }
  int month() const noexcept { return civil().m; }
  int day() const noexcept { return civil().d; }

  /// ISO 8601: "YYYY-MM-DD".
  std::string to_string() const {
    const Civil c = civil();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.y, c.m, c.d);
    return buf;
  }

  static constexpr bool is_leap(int y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
  static constexpr int days_in_month(int y, int m) noexcept {
    constexpr int table[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : table[m - 1];
  }

  /// Whole days from b to a (cannot overflow: both lie in [min_days, max_days]).
  friend constexpr std::int64_t operator-(Date a, Date b) noexcept { return a.days_ - b.days_; }
  /// The date `days` days later / earlier; a result outside [min_days, max_days] throws
  /// uvp::out_of_range_error naming the date and the day count.
  friend constexpr Date operator+(Date a, std::int64_t days) {
    // a.days_ is in range, so the bounds below cannot overflow; days is compared, not added.
    if (days < min_days - a.days_ || days > max_days - a.days_)
      out_of_range("uvp::Date::operator+", "date ", a.days_, " + ", days, " days");
    return Date(a.days_ + days);
  }
  friend constexpr Date operator-(Date a, std::int64_t days) {
    if (days > a.days_ - min_days || days < a.days_ - max_days)
      out_of_range("uvp::Date::operator-", "date ", a.days_, " - ", days, " days");
    return Date(a.days_ - days);
  }
  friend constexpr bool operator==(Date a, Date b) noexcept { return a.days_ == b.days_; }
  friend constexpr bool operator!=(Date a, Date b) noexcept { return a.days_ != b.days_; }
  friend constexpr bool operator<(Date a, Date b) noexcept { return a.days_ < b.days_; }
  friend constexpr bool operator<=(Date a, Date b) noexcept { return a.days_ <= b.days_; }
  friend constexpr bool operator>(Date a, Date b) noexcept { return a.days_ > b.days_; }
  friend constexpr bool operator>=(Date a, Date b) noexcept { return a.days_ >= b.days_; }

 private:
  struct Civil {
    int y, m, d;
  };
  constexpr explicit Date(std::int64_t days) noexcept : days_(days) {}

  template <class... Args>
  [[noreturn]] static void out_of_range(const char* where, const Args&... what) {
    detail::raise<out_of_range_error>(where, ": ", what..., " is outside the representable day numbers [",
                                      min_days, ", ", max_days, "] (years -2147483648 .. 2147483647)");
  }

  static constexpr std::int64_t days_from_civil(std::int64_t y, int m, int d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
  }
  Civil civil() const noexcept {
    const std::int64_t z = days_ + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    return {static_cast<int>(yoe + era * 400 + (m <= 2)), m, d};
  }

  std::int64_t days_ = 0;
};

namespace detail {
/// True when s is one or more decimal digits (of any length).
inline bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

/// Reads s as a non-negative decimal int; false when s is empty, holds a non-digit, or its value
/// exceeds INT_MAX (checked before each step, so a long digit string cannot overflow).
inline bool parse_digits(std::string_view s, int& out) noexcept {
  if (!all_digits(s)) return false;
  int v = 0;
  for (char c : s) {
    const int digit = c - '0';
    if (v > (INT_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}
}  // namespace detail

/// Parses "YYYY-MM-DD" or "YYYYMMDD" (CDNOW's layout). A time of day after the date, separated
/// by a space or 'T' ("1997-01-01 13:45:00", "1997-01-01T13:45"), is accepted and ignored: the
/// CLV summaries work at day resolution. Anything else throws uvp::parse_error naming the text.
inline Date parse_date(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  std::string_view ys, ms, ds, rest;
  if (s.size() >= 10 && s[4] == '-' && s[7] == '-') {
    ys = s.substr(0, 4);
    ms = s.substr(5, 2);
    ds = s.substr(8, 2);
    rest = s.substr(10);
  } else if (s.size() >= 8 && s.find('-') == std::string_view::npos) {
    ys = s.substr(0, 4);
    ms = s.substr(4, 2);
    ds = s.substr(6, 2);
    rest = s.substr(8);
  } else {
    detail::raise<parse_error>("uvp::parse_date: '", text, "' is not a date (expected YYYY-MM-DD or YYYYMMDD)");
  }
  if (!rest.empty() && rest.front() != ' ' && rest.front() != 'T')
    detail::raise<parse_error>("uvp::parse_date: '", text, "' is not a date (expected YYYY-MM-DD or YYYYMMDD)");
  int y = 0, m = 0, d = 0;
  if (!detail::parse_digits(ys, y) || !detail::parse_digits(ms, m) || !detail::parse_digits(ds, d))
    detail::raise<parse_error>("uvp::parse_date: '", text, "' is not a date (expected YYYY-MM-DD or YYYYMMDD)");
  if (m < 1 || m > 12 || d < 1 || d > Date::days_in_month(y, m))
    detail::raise<parse_error>("uvp::parse_date: '", text, "' is not a valid calendar date");
  return Date::from_ymd(y, m, d);
}

}  // namespace uvp
