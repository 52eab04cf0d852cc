// SPDX-License-Identifier: Apache-2.0
// An RFC 4180 CSV reader: a header row, quoted fields, missing values, numeric columns.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"

namespace uvp {

/// How read_csv tokenizes its input.
///
/// Grammar (RFC 4180, with the usual relaxations):
/// - records end at LF or CRLF; a final record without a line ending is accepted; blank lines
///   are skipped (as pandas does), so a one-column file cannot hold an empty value on its own line;
/// - a field that starts with `quote` is quoted: it may hold the delimiter, line breaks, and the
///   quote written twice (`""` -> `"`); after its closing quote only the delimiter or the end of
///   the record may follow. A quote inside an unquoted field is kept literally (as Python's csv);
/// - a UTF-8 byte-order mark at the start of the input is skipped. Columns in error positions
///   count bytes from 1.
struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  /// true: the first record holds the column names (duplicates are an error).
  /// false: every record is data and the columns are named "0", "1", ... (as pandas' header=None).
  bool header = true;
  /// Field texts that mean "missing" besides the empty field, compared after unquoting
  /// (e.g. {"NA", "N/A", "?"}). Quoted or not, an empty field is always missing (as pandas).
  std::vector<std::string> missing_values = {};
};

/// What numeric_column does with a missing field.
enum class Missing {
  error,  ///< throw uvp::parse_error naming the field's file:line:column (default)
  nan,    ///< store a quiet NaN
};

class CsvTable;
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
CsvTable read_csv_string(std::string text, std::string name = "<string>",
                         const CsvOptions& options = {});

/// A parsed CSV file: column names and rows x cols text fields, kept in one buffer (fields are
/// views into the file's text, so a table costs about the file's size plus 16 bytes a field).
class CsvTable {
 public:
  CsvTable() = default;

  /// The file path (read_csv) or the name given to read_csv_string; used in error messages.
  const std::string& name() const noexcept { return name_; }
  const std::vector<std::string>& column_names() const noexcept { return names_; }
  /// Data records (the header is not counted).
  index rows() const noexcept { return rows_; }
  index cols() const noexcept { return static_cast<index>(names_.size()); }

  bool has_column(std::string_view column) const noexcept { return find(column) >= 0; }

  /// Position of `column` in column_names(); unknown names throw uvp::out_of_range_error listing
  /// the available columns.
  index column_index(std::string_view column) const {
    const index c = find(column);
    if (c < 0) {
      std::string available;
      const index shown = std::min<index>(cols(), 64);
      for (index i = 0; i < shown; ++i) {
        if (i) available += ", ";
        available += '\'' + detail::printable(names_[std::size_t(i)]) + '\'';
      }
      if (shown < cols()) available += detail::str(", ... (", cols() - shown, " more)");
      if (available.empty()) available = "(none)";
      detail::raise<out_of_range_error>("uvp::CsvTable::column_index: no column named '",
                                        detail::printable(column), "' in ", detail::printable(name_, 1024),
                                        "; columns are: ", available);
    }
    return c;
  }

  /// The unquoted text of one field (a view into the table: valid while the table lives).
  /// A missing field reads as its text ("" or the missing token).
  std::string_view field(index row, index col) const {
    check_cell("uvp::CsvTable::field", row, col);
    return text_of(cell(row, col));
  }

  bool is_missing(index row, index col) const {
    check_cell("uvp::CsvTable::is_missing", row, col);
    return (cell(row, col).flags & missing_flag) != 0;
  }

  /// Every field of a column as text, rows() long.
  std::vector<std::string> column(std::string_view column_name) const {
    const index c = column_index(column_name);
    std::vector<std::string> out;
    out.reserve(std::size_t(rows_));
    for (index r = 0; r < rows_; ++r) out.emplace_back(text_of(cell(r, c)));
    return out;
  }

  /// Number of missing fields in a column.
  index missing_count(std::string_view column_name) const {
    const index c = column_index(column_name);
    index n = 0;
    for (index r = 0; r < rows_; ++r) n += (cell(r, c).flags & missing_flag) ? 1 : 0;
    return n;
  }

  /// A column parsed as numbers (T = float or double), rows() long. Surrounding blanks and a
  /// leading '+' are allowed; "inf" and "nan" parse as such. A field that is not a number, or is
  /// out of T's range, throws uvp::parse_error "file:line:col: column 'x': ..."; a missing field
  /// throws the same unless `missing` is Missing::nan.
  template <class T>
  Vector<T> numeric_column(std::string_view column_name, Missing missing = Missing::error) const {
    static_assert(std::is_floating_point_v<T>,
                  "uvp::CsvTable::numeric_column<T>: T must be float or double");
    const index c = column_index(column_name);
    Vector<T> out(rows_);
    for (index r = 0; r < rows_; ++r)
      out[r] = parse_number<T>("uvp::CsvTable::numeric_column", r, c, missing);
    return out;
  }

  /// Several columns as a rows() x names.size() matrix, in the order given.
  template <class T>
  Matrix<T> numeric_matrix(const std::vector<std::string>& columns,
                           Missing missing = Missing::error) const {
    static_assert(std::is_floating_point_v<T>,
                  "uvp::CsvTable::numeric_matrix<T>: T must be float or double");
    std::vector<index> idx;
    idx.reserve(columns.size());
    for (const auto& n : columns) idx.push_back(column_index(n));
    Matrix<T> out(rows_, static_cast<index>(idx.size()));
    for (index r = 0; r < rows_; ++r)
      for (std::size_t j = 0; j < idx.size(); ++j)
        out(r, index(j)) = parse_number<T>("uvp::CsvTable::numeric_matrix", r, idx[j], missing);
    return out;
  }

  /// "file:line:col" of a field's first character (its opening quote if quoted), 1-based.
  std::string location(index row, index col) const {
    check_cell("uvp::CsvTable::location", row, col);
    return locate(row, col);
  }

 private:
  friend CsvTable read_csv(const std::string&, const CsvOptions&);
  friend CsvTable read_csv_string(std::string, std::string, const CsvOptions&);

  static constexpr std::uint32_t missing_flag = 1;
  static constexpr std::uint32_t escaped_flag = 2;  // the text lives in escaped_, not text_

  struct Cell {
    index begin;
    std::uint32_t size;
    std::uint32_t flags;
  };

  index find(std::string_view column) const noexcept {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == column) return static_cast<index>(i);
    return -1;
  }

  const Cell& cell(index row, index col) const noexcept {
    return cells_[std::size_t(row * cols() + col)];
  }

  std::string_view text_of(const Cell& c) const noexcept {
    const std::string& buf = (c.flags & escaped_flag) ? escaped_ : text_;
    return std::string_view(buf.data() + c.begin, c.size);
  }

  void check_cell(const char* where, index row, index col) const {
    if (row < 0 || row >= rows_)
      detail::raise<out_of_range_error>(where, ": row ", row, " out of range [0, ", rows_, ")");
    if (col < 0 || col >= cols())
      detail::raise<out_of_range_error>(where, ": col ", col, " out of range [0, ", cols(), ")");
  }

  // Re-scans the record from its start so that positions stay exact past quoted line breaks.
  std::string locate(index row, index col) const {
    const char* const base = text_.data();
    const char* const end = base + text_.size();
    const char* p = base + row_pos_[std::size_t(row)];
    for (index f = 0; f < col && p < end; ++f) {
      if (*p == options_.quote) {
        ++p;
        while (p < end) {
          if (*p == options_.quote) {
            if (p + 1 < end && p[1] == options_.quote) {
              p += 2;
              continue;
            }
            ++p;
            break;
          }
          ++p;
        }
      }
      while (p < end && *p != options_.delimiter && *p != '\n') ++p;
      if (p < end && *p == options_.delimiter) ++p;
    }
    index line = row_line_[std::size_t(row)];
    const char* line_start = base + row_pos_[std::size_t(row)];
    for (const char* q = line_start; q < p; ++q)
      if (*q == '\n') {
        ++line;
        line_start = q + 1;
      }
    return detail::str(detail::printable(name_, 1024), ':', line, ':', p - line_start + 1);
  }

  template <class T>
  T parse_number(const char* where, index r, index c, Missing missing) const {
    const Cell& cl = cell(r, c);
    if (cl.flags & missing_flag) {
      if (missing == Missing::nan) return std::numeric_limits<T>::quiet_NaN();
      detail::raise<parse_error>(where, ": ", locate(r, c), ": column '",
                                 detail::printable(names_[std::size_t(c)]),
                                 "': missing value (pass uvp::Missing::nan to read it as NaN)");
    }
    std::string_view s = text_of(cl);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    T value{};
    const int status = from_chars_checked(s, value);
    if (status != 0)
      detail::raise<parse_error>(where, ": ", locate(r, c), ": column '",
                                 detail::printable(names_[std::size_t(c)]), "': cannot parse \"",
                                 detail::printable(text_of(cl)), "\" as a number",
                                 status == 2 ? (std::is_same_v<T, float> ? " (out of float range)"
                                                                          : " (out of double range)")
                                             : "");
    return value;
  }

  // 0: ok, 1: not a number (or trailing characters), 2: out of range.
  template <class T>
  static int from_chars_checked(std::string_view s, T& value) {
    if (s.empty()) return 1;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
    const auto res = std::from_chars(s.data(), s.data() + s.size(), value);
    if (res.ec == std::errc::result_out_of_range) return 2;
    if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return 1;
    return 0;
#else
    // Fallback for standard libraries without floating-point from_chars (locale-dependent).
    std::string tmp(s);
    char* endp = nullptr;
    errno = 0;
    const double d = std::strtod(tmp.c_str(), &endp);
    if (endp != tmp.c_str() + tmp.size()) return 1;
    if (errno == ERANGE && std::abs(d) > 1) return 2;
    if (std::isfinite(d) && std::abs(d) > double(std::numeric_limits<T>::max())) return 2;
    value = static_cast<T>(d);
    return 0;
#endif
  }

  void parse(const char* where);

  std::string name_;
  std::string text_;
  std::string escaped_;
  CsvOptions options_;
  std::vector<std::string> names_;
  std::vector<Cell> cells_;
  std::vector<index> row_pos_;   // byte offset of each data record's first character
  std::vector<index> row_line_;  // its 1-based line number
  index rows_ = 0;
};

namespace detail {

inline void check_csv_options(const char* where, const CsvOptions& o) {
  auto bad = [](char ch) { return ch == '\n' || ch == '\r' || ch == '\0'; };
  if (bad(o.delimiter))
    raise<invalid_argument>(where, ": options.delimiter must not be a line break or NUL, got code ",
                            int(o.delimiter));
  if (bad(o.quote))
    raise<invalid_argument>(where, ": options.quote must not be a line break or NUL, got code ",
                            int(o.quote));
  if (o.delimiter == o.quote)
    raise<invalid_argument>(where, ": options.delimiter and options.quote are both '", o.delimiter,
                            "'");
}

}  // namespace detail

inline void CsvTable::parse(const char* where) {
  detail::check_csv_options(where, options_);
  if (text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) text_.erase(0, 3);

  const char delim = options_.delimiter;
  const char quote = options_.quote;
  const char* const base = text_.data();
  const char* const end = base + text_.size();
  const char* p = base;
  const char* line_start = base;
  index line = 1;

  auto fail = [&](const char* at, index at_line, const char* at_line_start, const auto&... msg) {
    detail::raise<parse_error>(where, ": ", detail::printable(name_, 1024), ':', at_line, ':',
                               at - at_line_start + 1, ": ", msg...);
  };

  bool stop[256] = {};
  stop[static_cast<unsigned char>(delim)] = stop[static_cast<unsigned char>('\n')] = stop[0] = true;
  std::vector<Cell> record;
  auto is_missing_text = [&](const char* s, std::size_t n) {
    if (n == 0) return true;
    for (const auto& tok : options_.missing_values)
      if (tok.size() == n && std::memcmp(tok.data(), s, n) == 0) return true;
    return false;
  };

  // Parses one record starting at p (not at a blank line); appends its cells to `out`.
  // Returns the position where field number `expected` started (or the record's end), for
  // the field-count message.
  auto parse_record = [&](std::vector<Cell>& out, index expected, const char*& extra_at,
                          index& extra_line, const char*& extra_line_start) {
    extra_at = nullptr;
    for (index f = 0;; ++f) {
      if (f == expected) {
        extra_at = p;
        extra_line = line;
        extra_line_start = line_start;
      }
      Cell c{0, 0, 0};
      const char* content = p;
      std::size_t n = 0;
      if (p < end && *p == quote) {
        const char* open = p;
        const index open_line = line;
        const char* open_line_start = line_start;
        const char* q = p + 1;
        bool escaped = false;
        for (;;) {
          const void* hit = std::memchr(q, quote, std::size_t(end - q));
          const char* qe = hit ? static_cast<const char*>(hit) : end;
          for (const char* t = q; t < qe; ++t)  // line breaks inside the quotes
            if (*t == '\n') {
              ++line;
              line_start = t + 1;
            }
          if (!hit) fail(open, open_line, open_line_start, "unterminated quoted field");
          if (qe + 1 < end && qe[1] == quote) {
            escaped = true;
            q = qe + 2;
            continue;
          }
          content = open + 1;
          n = std::size_t(qe - content);
          p = qe + 1;
          break;
        }
        if (p < end && *p != delim && *p != '\n' && !(*p == '\r' && (p + 1 == end || p[1] == '\n')))
          fail(p, line, line_start, "unexpected character '", detail::printable(std::string_view(p, 1)),
               "' after the closing quote of a quoted field");
        if (escaped) {
          c.flags |= escaped_flag;
          c.begin = static_cast<index>(escaped_.size());
          for (const char* t = content; t < content + n; ++t) {
            escaped_.push_back(*t);
            if (*t == quote) ++t;  // the second of a doubled quote
          }
          const std::size_t m = escaped_.size() - std::size_t(c.begin);
          if (is_missing_text(escaped_.data() + c.begin, m)) c.flags |= missing_flag;
          n = m;
        } else {
          c.begin = static_cast<index>(content - base);
          if (is_missing_text(content, n)) c.flags |= missing_flag;
        }
      } else {
        // The string's terminating NUL is a sentinel: one table test per byte in the hot loop.
        const char* e = p;
        for (;;) {
          while (!stop[static_cast<unsigned char>(*e)]) ++e;
          if (*e != '\0' || e == end) break;
          ++e;  // a NUL inside the data
        }
        n = std::size_t(e - p);
        if (n > 0 && p[n - 1] == '\r' && (e == end || *e == '\n')) --n;  // CRLF / final CR
        c.begin = static_cast<index>(p - base);
        if (is_missing_text(p, n)) c.flags |= missing_flag;
        p = e;
      }
      if (n > std::size_t(std::numeric_limits<std::uint32_t>::max()))
        fail(content, line, line_start, "field longer than 4 GiB");
      c.size = static_cast<std::uint32_t>(n);
      out.push_back(c);
      if (p < end && *p == '\r') ++p;  // CR of a CRLF after a closing quote
      if (p >= end) return;
      if (*p == '\n') {
        ++p;
        ++line;
        line_start = p;
        return;
      }
      ++p;  // delimiter: another field follows (possibly empty, possibly at the end)
    }
  };

  auto skip_blank_lines = [&] {
    while (p < end) {
      if (*p == '\n') {
        ++p;
      } else if (*p == '\r' && (p + 1 == end || p[1] == '\n')) {
        p += (p + 1 == end) ? 1 : 2;
      } else {
        return;
      }
      ++line;
      line_start = p;
    }
  };

  const char* extra_at = nullptr;
  index extra_line = 0;
  const char* extra_line_start = nullptr;

  skip_blank_lines();
  if (p >= end) fail(p, line, line_start, options_.header ? "empty input, expected a header row" : "empty input");

  index ncols = 0;
  if (options_.header) {
    const index header_line = line;
    const char* header_line_start = line_start;
    const char* header_at = p;
    record.clear();
    parse_record(record, -1, extra_at, extra_line, extra_line_start);
    names_.reserve(record.size());
    for (const Cell& c : record) names_.emplace_back(text_of(c));
    // Duplicates by sorting (name, position): O(n log n), so a header of 10^5 or more columns is
    // checked at once. Reported as a pairwise scan would: the earliest column that repeats an
    // earlier name, with that name's first column.
    std::vector<std::pair<std::string_view, std::size_t>> sorted;
    sorted.reserve(names_.size());
    for (std::size_t i = 0; i < names_.size(); ++i) sorted.emplace_back(names_[i], i);
    std::sort(sorted.begin(), sorted.end());
    std::size_t first = 0, second = names_.size();
    for (std::size_t k = 1; k < sorted.size(); ++k)
      if (sorted[k].first == sorted[k - 1].first && sorted[k].second < second &&
          (k < 2 || sorted[k - 2].first != sorted[k].first)) {
        first = sorted[k - 1].second;
        second = sorted[k].second;
      }
    if (second < names_.size())
      fail(header_at, header_line, header_line_start, "duplicate column name '",
           detail::printable(names_[second]), "' (columns ", first + 1, " and ", second + 1, ")");
    ncols = static_cast<index>(names_.size());
  }

  // One cell per field: reserve from the count of line ends (an upper bound on records but for
  // quoted line breaks), and never more cells than the text can hold: a record of n fields takes
  // at least n - 1 delimiters and a line end, so a wide header over many short lines (malformed,
  // reported at its first short row) cannot make the reservation explode.
  index lines_left = 1;
  for (const char* q = p; (q = static_cast<const char*>(std::memchr(q, '\n', std::size_t(end - q))));
       ++q)
    ++lines_left;
  auto reserve_cells = [&](index width) {
    const index by_text = static_cast<index>(end - p) + 1;
    const index bound = width > 0 && lines_left > by_text / width ? by_text : lines_left * width;
    cells_.reserve(cells_.size() + std::size_t(bound));
  };
  row_pos_.reserve(std::size_t(lines_left));
  row_line_.reserve(std::size_t(lines_left));

  for (;;) {
    skip_blank_lines();
    if (p >= end) break;
    const char* rec_at = p;
    const index rec_line = line;
    if (ncols == 0) {  // header = false: the first record decides the width
      parse_record(cells_, -1, extra_at, extra_line, extra_line_start);
      ncols = static_cast<index>(cells_.size());
      names_.reserve(std::size_t(ncols));
      for (index i = 0; i < ncols; ++i) names_.push_back(std::to_string(i));
      reserve_cells(ncols);
    } else {
      if (cells_.capacity() == 0) reserve_cells(ncols);
      const std::size_t before = cells_.size();
      const char* rec_line_start = line_start;
      parse_record(cells_, ncols, extra_at, extra_line, extra_line_start);
      const index got = static_cast<index>(cells_.size() - before);
      if (got != ncols) {
        if (got > ncols)
          fail(extra_at, extra_line, extra_line_start, "row has ", got, " fields, expected ", ncols);
        // Too few: point at the end of the record's last field.
        const char* e = (p > rec_at && p[-1] == '\n') ? p - 1 : p;
        if (e > rec_at && e[-1] == '\r') --e;
        index l = rec_line;
        const char* ls = rec_line_start;
        for (const char* t = rec_at; t < e; ++t)
          if (*t == '\n') {
            ++l;
            ls = t + 1;
          }
        fail(e, l, ls, "row has ", got, " field", got == 1 ? "" : "s", ", expected ", ncols);
      }
    }
    row_pos_.push_back(static_cast<index>(rec_at - base));
    row_line_.push_back(rec_line);
    ++rows_;
  }
}

/// Reads a whole CSV file (see CsvOptions for the grammar). A path that is missing, unreadable, or
/// not a regular file (a directory, FIFO, device) throws uvp::io_error naming the path (see
/// detail::read_whole_file); malformed text throws uvp::parse_error
/// "uvp::read_csv: path:line:col: what". The file is read in one piece and tokenized in place.
inline CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  constexpr const char* where = "uvp::read_csv";
  detail::check_csv_options(where, options);
  CsvTable t;
  t.text_ = detail::read_whole_file(where, path);
  t.name_ = path;
  t.options_ = options;
  t.parse(where);
  return t;
}

/// Parses CSV text held in memory; `name` stands for the file in error messages.
inline CsvTable read_csv_string(std::string text, std::string name, const CsvOptions& options) {
  CsvTable t;
  t.text_ = std::move(text);
  t.name_ = std::move(name);
  t.options_ = options;
  t.parse("uvp::read_csv_string");
  return t;
}

}  // namespace uvp
