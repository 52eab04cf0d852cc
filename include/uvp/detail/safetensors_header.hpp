// SPDX-License-Identifier: Apache-2.0
// The safetensors header: its entry types and the validating parser over bytes in memory, which
// uvp::io::SafetensorsFile (uvp/io/safetensors.hpp) runs on every file and the fuzz target on
// every input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/detail/json_reader.hpp"
#include "uvp/io/file.hpp"

namespace uvp::io {

/// The element types uvp converts from; every other dtype of the format is `other` (its name is
/// in SafetensorsEntry::dtype_name).
enum class SafetensorsDtype { f16, bf16, f32, f64, other };

/// One tensor of a safetensors file, as its header describes it.
struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::other;
  std::string dtype_name;            ///< as in the file: "F32", "I64", ...
  std::vector<std::int64_t> shape;   ///< PyTorch's shape; {} for a scalar
  std::uint64_t begin = 0, end = 0;  ///< byte offsets in the data section (after the header)
  /// The number of elements: the product of shape (1 for a scalar). The header parser has checked
  /// that it fits in std::int64_t.
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (const std::int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace uvp::io

namespace uvp::detail {

/// The largest header uvp reads, in bytes: the official implementation's limit (100 MB).
inline constexpr std::uint64_t safetensors_max_header = 100000000;
/// The most dimensions a tensor may have (NumPy 2 allows 64; the format sets no limit, so without
/// one a header of "[0,0,0,..." could ask for a vector of 50 million dimensions).
inline constexpr std::size_t safetensors_max_rank = 64;

/// The bits per element of a dtype the format defines, 0 for a name it does not. The list is the
/// official implementation's (safetensors 0.5): sub-byte types (F4, F6_*) are packed.
inline unsigned safetensors_dtype_bits(std::string_view name) noexcept {
  static constexpr std::pair<const char*, unsigned> table[] = {
      {"BOOL", 8},    {"F4", 4},    {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8},
      {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},  {"U16", 16},    {"F16", 16}, {"BF16", 16}, {"I32", 32},
      {"U32", 32},    {"F32", 32},  {"C64", 64},    {"F64", 64},    {"I64", 64}, {"U64", 64}};
  for (const auto& [n, bits] : table)
    if (name == n) return bits;
  return 0;
}

inline io::SafetensorsDtype safetensors_dtype(std::string_view name) noexcept {
  return name == "F16" ? io::SafetensorsDtype::f16 : name == "BF16" ? io::SafetensorsDtype::bf16
         : name == "F32" ? io::SafetensorsDtype::f32 : name == "F64" ? io::SafetensorsDtype::f64
                         : io::SafetensorsDtype::other;
}

/// A parsed, validated header.
struct SafetensorsHeader {
  std::vector<io::SafetensorsEntry> tensors;  ///< sorted by data offset (then name)
  std::vector<std::size_t> by_name;           ///< indices into tensors, sorted by name
  std::map<std::string, std::string> metadata;
};

/// Parses and validates the JSON header of a safetensors file whose data section (everything
/// after the header) has `data_size` bytes. `where` starts every message (the file reader passes
/// "uvp::io::SafetensorsFile: '<path>'"). Raises uvp::format_error for any header that the
/// official implementation would refuse, and more:
/// - not JSON (RFC 8259, strictly: no comments, no trailing commas, UTF-8 only, no lone
///   surrogates), not an object, or not starting with '{' (trailing blanks are allowed: writers
///   pad the header with spaces); values nested more than JsonReader::max_depth deep;
/// - `__metadata__` that is not an object of strings (null is an empty one);
/// - a tensor entry that is not an object, lacks "dtype", "shape" or "data_offsets", has one of
///   them twice or of the wrong kind (shape: at most 64 non-negative integers; data_offsets:
///   exactly two), or names a dtype the format does not define (other keys are ignored, as the
///   official reader does);
/// - an empty or duplicate tensor name;
/// - element count overflowing std::int64_t, or its byte size overflowing std::uint64_t;
/// - data_offsets with end < begin, end past the data section, or end - begin != the byte size
///   of numel elements of the dtype;
/// - tensors that overlap or leave a gap between them, or do not cover the data section to its
///   end (the official reader refuses all three; so a file uvp accepts is one every reader takes).
inline SafetensorsHeader parse_safetensors_header(std::string_view header, std::uint64_t data_size,
                                                  std::string_view where = "uvp::detail::parse_safetensors_header") {
  const std::string base(where);
  SafetensorsHeader out;
  if (header.empty() || header[0] != '{')
    raise<format_error>(base, ": the header does not start with '{' (",
                        header.empty() ? std::string("it is empty") : str("it starts with '", printable(header.substr(0, 16)), "'"),
                        "); not a safetensors file?");
  JsonReader r(header, base + ": header");
  bool have_metadata = false;
  r.expect('{', "'{'");
  if (!r.consume('}')) {
    do {
      r.set_where(base + ": header");
      std::string key = r.read_string();
      r.expect(':', "':'");
      if (key == "__metadata__") {
        r.set_where(base + ": __metadata__");
        if (have_metadata) r.fail("__metadata__ appears twice");
        have_metadata = true;
        if (r.literal("null")) continue;
        if (r.peek() != '{') r.fail("__metadata__ is not an object");
        r.expect('{', "'{'");
        if (r.consume('}')) continue;
        do {
          std::string k = r.read_string();
          r.expect(':', "':'");
          if (r.peek() != '"') r.fail("the value of '", printable(k), "' is not a string");
          if (out.metadata.count(k)) r.fail("key '", printable(k), "' appears twice");
          std::string v = r.read_string();
          out.metadata.emplace(std::move(k), std::move(v));
        } while (r.next_element('}'));
        continue;
      }
      const std::string at = str(base, ": tensor '", printable(key), "'");
      r.set_where(at);
      if (key.empty()) r.fail("a tensor has an empty name");
      io::SafetensorsEntry e;
      e.name = std::move(key);
      if (r.peek() != '{') r.fail("the entry is not an object");
      r.expect('{', "'{'");
      bool have_dtype = false, have_shape = false, have_offsets = false;
      if (!r.consume('}')) {
        do {
          const std::string field = r.read_string();
          r.expect(':', "':'");
          auto once = [&](bool& seen) {
            if (seen) r.fail("\"", field, "\" appears twice");
            seen = true;
          };
          if (field == "dtype") {
            once(have_dtype);
            if (r.peek() != '"') r.fail("dtype is not a string");
            e.dtype_name = r.read_string();
            if (safetensors_dtype_bits(e.dtype_name) == 0)
              r.fail("unknown dtype '", printable(e.dtype_name), "'");
            e.dtype = safetensors_dtype(e.dtype_name);
          } else if (field == "shape") {
            once(have_shape);
            if (r.peek() != '[') r.fail("shape is not an array");
            r.expect('[', "'['");
            if (!r.consume(']')) {
              do {
                if (e.shape.size() == safetensors_max_rank)
                  r.fail("shape has more than ", safetensors_max_rank, " dimensions");
                const std::uint64_t d = r.read_u64("a shape dimension");
                if (d > std::uint64_t(INT64_MAX)) r.fail("shape dimension ", d, " is larger than 2^63 - 1");
                e.shape.push_back(static_cast<std::int64_t>(d));
              } while (r.next_element(']'));
            }
          } else if (field == "data_offsets") {
            once(have_offsets);
            if (r.peek() != '[') r.fail("data_offsets is not an array");
            r.expect('[', "'['");
            e.begin = r.read_u64("data_offsets[0]");
            r.expect(',', "',' (data_offsets has two elements)");
            e.end = r.read_u64("data_offsets[1]");
            r.expect(']', "']' (data_offsets has two elements)");
          } else {
            r.skip_value(2);
          }
        } while (r.next_element('}'));
      }
      const char* missing = !have_dtype ? "dtype" : !have_shape ? "shape" : !have_offsets ? "data_offsets" : nullptr;
      if (missing) raise<format_error>(at, ": the entry has no \"", missing, "\"");
      r.set_where(base + ": header");
      // Element count and byte size, each checked for overflow.
      std::uint64_t numel = 1;
      for (const std::int64_t d : e.shape) {
        const auto u = static_cast<std::uint64_t>(d);
        if (u != 0 && numel > std::uint64_t(INT64_MAX) / u)
          raise<format_error>(at, ": shape has more than 2^63 - 1 elements");
        numel *= u;
      }
      const std::uint64_t bits = safetensors_dtype_bits(e.dtype_name);
      if (numel > UINT64_MAX / bits)
        raise<format_error>(at, ": ", numel, " elements of ", e.dtype_name, " overflow a 64-bit byte count");
      if (numel * bits % 8 != 0)
        raise<format_error>(at, ": ", numel, " elements of ", e.dtype_name, " do not fill whole bytes");
      const std::uint64_t bytes = numel * bits / 8;
      if (e.end < e.begin)
        raise<format_error>(at, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
      if (e.end > data_size)
        raise<format_error>(at, ": data_offsets [", e.begin, ", ", e.end,
                            "] point past the end of the data section (", data_size, " bytes)");
      if (e.end - e.begin != bytes)
        raise<format_error>(at, ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
                            " bytes, but shape and dtype need ", bytes, " (", numel, " x ", e.dtype_name, ")");
      out.tensors.push_back(std::move(e));
    } while (r.next_element('}'));
  }
  r.set_where(base + ": header");
  if (!r.at_end()) r.fail("unexpected text after the header object");

  // Names: unique. Offsets: one tensor after another, from 0 to the end of the data section.
  std::sort(out.tensors.begin(), out.tensors.end(), [](const io::SafetensorsEntry& a, const io::SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  out.by_name.resize(out.tensors.size());
  for (std::size_t i = 0; i < out.by_name.size(); ++i) out.by_name[i] = i;
  std::sort(out.by_name.begin(), out.by_name.end(),
            [&](std::size_t a, std::size_t b) { return out.tensors[a].name < out.tensors[b].name; });
  for (std::size_t i = 1; i < out.by_name.size(); ++i)
    if (out.tensors[out.by_name[i]].name == out.tensors[out.by_name[i - 1]].name)
      raise<format_error>(base, ": tensor '", printable(out.tensors[out.by_name[i]].name), "' appears twice");
  std::uint64_t at = 0;
  const io::SafetensorsEntry* previous = nullptr;
  for (const auto& e : out.tensors) {
    if (e.begin < at)
      raise<format_error>(base, ": tensor '", printable(e.name), "': data_offsets [", e.begin, ", ", e.end,
                          "] overlap tensor '", printable(previous->name), "' [", previous->begin, ", ",
                          previous->end, "]");
    if (e.begin > at)
      raise<format_error>(base, ": tensor '", printable(e.name), "': data_offsets [", e.begin, ", ", e.end,
                          "] leave a gap of ", e.begin - at, " bytes ",
                          previous ? str("after tensor '", printable(previous->name), "'") : std::string("at the start"),
                          " of the data section");
    at = e.end;
    previous = &e;
  }
  if (at != data_size)
    raise<format_error>(base, ": the tensors cover ", at, " bytes of the data section, but it has ", data_size,
                        " (", data_size - at, " bytes after the last tensor belong to none)");
  return out;
}

}  // namespace uvp::detail
