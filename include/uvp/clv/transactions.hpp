// SPDX-License-Identifier: Apache-2.0
// A transaction log (customer, date, amount) and a reader for the CDNOW text layout.
#pragma once

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvp/clv/date.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/io/file.hpp"

namespace uvp {

/// One row per purchase, in any order: who bought, on which day, for how much. The three columns
/// have the same length; amounts are finite and >= 0 (checked by add() and by the summaries).
struct TransactionLog {
  std::vector<std::string> customer_id;
  std::vector<Date> date;
  std::vector<double> amount;

  /// Appends one transaction; a non-finite or negative amount throws uvp::invalid_argument.
  void add(std::string id, Date day, double value) {
    if (!std::isfinite(value) || value < 0)
      detail::raise<invalid_argument>("uvp::TransactionLog::add: amount = ", value, " for customer '", id, "' on ",
                                      day.to_string(), " must be finite and >= 0");
    customer_id.push_back(std::move(id));
    date.push_back(day);
    amount.push_back(value);
  }

  index size() const noexcept { return static_cast<index>(customer_id.size()); }
  bool empty() const noexcept { return customer_id.empty(); }
};

namespace detail {

inline std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

inline bool parse_amount(std::string_view s, double& out) {
  if (s.empty()) return false;
  const std::string tmp(s);
  char* end = nullptr;
  out = std::strtod(tmp.c_str(), &end);
  return end == tmp.c_str() + tmp.size() && std::isfinite(out);
}

/// Calls f(id, date, amount) for each transaction of a CDNOW-layout stream, one line at a time
/// (the layout and header rule of read_cdnow_transactions). `name` (a path, or "<string>") and
/// `where` (the public function) start every message: "uvp::read_cdnow_transactions: path:line: ...".
/// Shared by the reader that builds a TransactionLog and the streaming summary (summary_accumulator.hpp).
template <class F>
void for_each_cdnow_transaction(std::istream& in, const std::string& name, const char* where, F&& f) {
  std::string line;
  index line_no = 0;
  bool seen_data = false;
  while (std::getline(in, line)) {
    ++line_no;
    const auto fields = split_whitespace(line);
    if (fields.empty()) continue;
    if (fields.size() != 4 && fields.size() != 5)
      raise<parse_error>(where, ": ", name, ":", line_no,
                         ": expected 4 fields (customer id, yyyymmdd, quantity, amount) or 5 "
                         "(master id, sample id, yyyymmdd, quantity, amount), got ",
                         fields.size());
    const std::size_t off = fields.size() - 4;  // the 5-column sample: the second column is the id
    const std::string_view id = fields[off], date_text = fields[off + 1], amount_text = fields[off + 3];
    if (!seen_data) {
      seen_data = true;
      // A header line: its date field has no digit at all ("date", "yyyymmdd"). Only a test
      // for digits, never a parse: a long digit string is a bad date, not a header.
      if (date_text.find_first_of("0123456789") == std::string_view::npos) continue;
    }
    Date day;
    try {
      day = parse_date(date_text);
    } catch (const parse_error& e) {
      raise<parse_error>(where, ": ", name, ":", line_no, ": ", e.what());
    }
    double value = 0;
    if (!parse_amount(amount_text, value))
      raise<parse_error>(where, ": ", name, ":", line_no, ": amount '", amount_text, "' is not a finite number");
    if (value < 0) raise<parse_error>(where, ": ", name, ":", line_no, ": amount ", value, " is negative");
    f(id, day, value);
  }
}

/// The CDNOW reader over a stream, into a TransactionLog.
inline TransactionLog parse_cdnow_stream(std::istream& in, const std::string& name,
                                         const char* where = "uvp::read_cdnow_transactions") {
  TransactionLog log;
  for_each_cdnow_transaction(in, name, where,
                             [&](std::string_view id, Date day, double value) { log.add(std::string(id), day, value); });
  return log;
}

}  // namespace detail

/// Reads a transaction log in the CDNOW text layout (Fader & Hardie's CDNOW_master.txt /
/// CDNOW_sample.txt): whitespace-separated fields, one transaction a line, either
///   customer_id  yyyymmdd  quantity  amount                 (CDNOW_master.txt), or
///   master_id    sample_id yyyymmdd  quantity  amount       (CDNOW_sample.txt: the sample id is kept),
/// with or without a header line (recognised by a date field without any digit on the first
/// line). The quantity is read past. Dates may also be written YYYY-MM-DD. Customer ids are kept verbatim
/// ("0001" stays "0001"). A malformed line throws uvp::parse_error naming path:line; a missing or
/// unreadable file, or a path that is not a regular file (a directory, FIFO, device), uvp::io_error.
inline TransactionLog read_cdnow_transactions(const std::string& path) {
  const std::string text = detail::read_whole_file("uvp::read_cdnow_transactions", path);
  // The parser reads a stream: one over the text in place, without copying it.
  struct TextBuf : std::streambuf {
    explicit TextBuf(const std::string& t) {
      char* b = const_cast<char*>(t.data());  // only read: a streambuf's get area is char*
      setg(b, b, b + t.size());
    }
  } buf(text);
  std::istream in(&buf);
  return detail::parse_cdnow_stream(in, detail::printable(path, 1024));
}

/// The same as read_cdnow_transactions, from text in memory; `name` appears in error messages.
inline TransactionLog parse_cdnow_transactions(const std::string& text, const std::string& name = "<string>") {
  std::istringstream in(text);
  return detail::parse_cdnow_stream(in, name, "uvp::parse_cdnow_transactions");
}

}  // namespace uvp
