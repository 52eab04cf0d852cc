// SPDX-License-Identifier: Apache-2.0
// A small, strict pull reader for JSON text from files (the safetensors header): the caller walks
// the structure it expects; anything else, and anything that is not RFC 8259 JSON, is a
// uvp::format_error naming the byte offset. Also the UTF-8 check and string quoting a writer needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "uvp/core/error.hpp"

namespace uvp::detail {

/// The length (2 to 4) of the well-formed UTF-8 sequence that starts with the non-ASCII byte
/// text[i] (no overlong forms, no surrogates, at most U+10FFFF), or 0 if there is none.
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t i) noexcept {
  const auto b = static_cast<unsigned char>(text[i]);
  const std::size_t len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  const auto b1 = static_cast<unsigned char>(text[i + 1]);
  const unsigned char lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
  const unsigned char hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0u) != 0x80u) return 0;
  return len;
}

/// True if `text` is well-formed UTF-8 (what a JSON text and its strings must be).
inline bool is_utf8(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

/// `text` as a JSON string literal, quotes included (text must be UTF-8: see is_utf8), escaped as
/// serde_json and Python's json.dumps(ensure_ascii=False) do: \" \\ \b \f \n \r \t, other control
/// characters as \u00XX, everything else (non-ASCII included) as it is.
inline std::string json_quote(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    const char short_form = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n'
                            : c == '\r' ? 'r' : c == '\t' ? 't' : '\0';
    if (short_form != '\0') {
      out.push_back('\\');
      out.push_back(short_form);
    } else if (b < 0x20) {
      out += "\\u00";
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 0xFu]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

/// Reads JSON from `text` front to back, one token at a time. Strings are checked as UTF-8 and
/// decoded (every escape, \uXXXX with surrogate pairs included); integers are read only as the
/// non-negative whole numbers a header holds (`read_u64`); other values can be skipped
/// (`skip_value`, nesting at most `max_depth` deep, so a hostile "[[[[..." cannot exhaust the
/// stack). Errors: uvp::format_error "<where>: <what> at byte <offset> of the JSON text".
class JsonReader {
 public:
  static constexpr int max_depth = 64;

  /// `where` starts every message ("uvp::io::SafetensorsFile: 'm.safetensors': header").
  JsonReader(std::string_view text, std::string where) : text_(text), where_(std::move(where)) {}

  std::size_t position() const noexcept { return pos_; }
  const std::string& where() const noexcept { return where_; }
  /// Changes the start of later messages (to name the part being read: "...: tensor 'w'").
  void set_where(std::string where) { where_ = std::move(where); }

  /// Raises uvp::format_error naming the current byte offset.
  template <class... Args>
  [[noreturn]] void fail(const Args&... what) const {
    raise<format_error>(where_, ": ", what..., " at byte ", pos_, " of the JSON text");
  }

  void skip_whitespace() noexcept {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  bool at_end() noexcept {
    skip_whitespace();
    return pos_ == text_.size();
  }

  /// The next non-blank character, or '\0' at the end (a NUL byte in the text is never valid
  /// there either: every caller treats '\0' as "not what I expected").
  char peek() noexcept {
    skip_whitespace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  /// Consumes `c` if it is the next non-blank character.
  bool consume(char c) noexcept {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  /// Consumes `c` or fails with "expected <what>".
  void expect(char c, const char* what) {
    if (!consume(c)) fail_found("expected ", what);
  }

  /// After an element of an object or array: true if another follows (a ','), false at `close`.
  bool next_element(char close) {
    if (consume(',')) return true;
    if (consume(close)) return false;
    fail_found("expected ',' or '", close, "'");
  }

  /// A string, decoded to UTF-8.
  std::string read_string() {
    if (peek() != '"') fail_found("expected a string");
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const auto b = static_cast<unsigned char>(text_[pos_]);
      if (b == '"') {
        ++pos_;
        return out;
      }
      if (b < 0x20) fail("control character ", hex_byte(b), " in a string (it must be escaped)");
      if (b == '\\') {
        read_escape(out);
        continue;
      }
      if (b < 0x80) {
        out.push_back(static_cast<char>(b));
        ++pos_;
        continue;
      }
      const std::size_t len = utf8_sequence_length(text_, pos_);
      if (len == 0) fail("invalid UTF-8 byte ", hex_byte(b), " in a string");
      out.append(text_.data() + pos_, len);
      pos_ += len;
    }
  }

  /// A non-negative integer that fits in 64 bits, in plain JSON notation ("0", "4096"): a minus
  /// sign, a fraction, an exponent, a leading zero or a value above 2^64 - 1 fails naming `what`.
  std::uint64_t read_u64(const char* what) {
    const char c = peek();
    if (c == '-') fail(what, " is negative");
    if (c < '0' || c > '9') fail_found("expected ", what, " (a non-negative integer)");
    const std::size_t start = pos_;
    std::uint64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto d = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v > (UINT64_MAX - d) / 10) {
        pos_ = start;
        fail(what, " does not fit in 64 bits");
      }
      v = v * 10 + d;
      ++pos_;
    }
    if (text_[start] == '0' && pos_ - start > 1) {
      pos_ = start;
      fail(what, " has a leading zero");
    }
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
      pos_ = start;
      fail(what, " is not an integer");
    }
    return v;
  }

  /// Skips one value of any kind (checked as JSON, not kept).
  void skip_value(int depth = 0) {
    if (depth >= max_depth) fail("values nested more than ", max_depth, " deep");
    const char c = peek();
    if (c == '"') {
      read_string();
    } else if (c == '{') {
      ++pos_;
      if (consume('}')) return;
      do {
        read_string();
        expect(':', "':'");
        skip_value(depth + 1);
      } while (next_element('}'));
    } else if (c == '[') {
      ++pos_;
      if (consume(']')) return;
      do skip_value(depth + 1);
      while (next_element(']'));
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      skip_number();
    } else if (!(literal("true") || literal("false") || literal("null"))) {
      fail_found("expected a value");
    }
  }

  /// Consumes the literal `word` (true, false, null) if it comes next.
  bool literal(std::string_view word) noexcept {
    skip_whitespace();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

 private:
  static std::string hex_byte(unsigned char b) {
    static const char hex[] = "0123456789abcdef";
    return std::string("0x") + hex[b >> 4] + hex[b & 0xFu];
  }

  // "expected X, found 'c'" / ", found the end of the text".
  template <class... Args>
  [[noreturn]] void fail_found(const Args&... what) const {
    if (pos_ >= text_.size()) fail(what..., ", found the end of the text");
    const auto b = static_cast<unsigned char>(text_[pos_]);
    if (b >= 0x20 && b < 0x7F) fail(what..., ", found '", static_cast<char>(b), "'");
    fail(what..., ", found byte ", hex_byte(b));
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // The 4 hex digits after "\u" at pos_ (pos_ at the backslash); advances past them.
  std::uint32_t read_hex4() {
    if (pos_ + 6 > text_.size()) fail("truncated \\u escape");
    std::uint32_t v = 0;
    for (std::size_t k = pos_ + 2; k < pos_ + 6; ++k) {
      const char h = text_[k];
      const std::uint32_t d = h >= '0' && h <= '9'   ? std::uint32_t(h - '0')
                              : h >= 'a' && h <= 'f' ? std::uint32_t(h - 'a' + 10)
                              : h >= 'A' && h <= 'F' ? std::uint32_t(h - 'A' + 10)
                                                     : 16u;
      if (d == 16) fail("invalid \\u escape (expected 4 hex digits)");
      v = v * 16 + d;
    }
    pos_ += 6;
    return v;
  }

  void read_escape(std::string& out) {
    if (pos_ + 1 >= text_.size()) fail("unterminated string");
    const char e = text_[pos_ + 1];
    const char simple = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/' : e == 'b' ? '\b' : e == 'f' ? '\f'
                        : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : '\0';
    if (simple != '\0') {
      out.push_back(simple);
      pos_ += 2;
      return;
    }
    if (e != 'u') fail("invalid escape '\\", (static_cast<unsigned char>(e) >= 0x20 && static_cast<unsigned char>(e) < 0x7F)
                                                 ? std::string(1, e) : hex_byte(static_cast<unsigned char>(e)), "'");
    std::uint32_t cp = read_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      pos_ -= 6;
      fail("unpaired low surrogate in a \\u escape");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: a low one must follow
      if (!(pos_ + 1 < text_.size() && text_[pos_] == '\\' && text_[pos_ + 1] == 'u'))
        fail("unpaired high surrogate in a \\u escape");
      const std::uint32_t lo = read_hex4();
      if (lo < 0xDC00 || lo > 0xDFFF) {
        pos_ -= 6;
        fail("unpaired high surrogate in a \\u escape");
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    append_utf8(out, cp);
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  void skip_number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    auto bad = [&] {
      pos_ = start;
      fail("malformed number");
    };
    if (text_[pos_] == '-') ++pos_;
    const std::size_t int_start = pos_;
    const std::size_t n = digits();
    if (n == 0 || (n > 1 && text_[int_start] == '0')) bad();
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) bad();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) bad();
    }
  }

  std::string_view text_;
  std::string where_;
  std::size_t pos_ = 0;
};

}  // namespace uvp::detail
