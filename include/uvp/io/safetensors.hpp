// SPDX-License-Identifier: Apache-2.0
// safetensors files (Hugging Face's tensor format): a validating reader of F32, F64, F16 and BF16
// tensors into float or double, and an atomic writer of F32 or F64 tensors.
//
//   uvp::io::SafetensorsFile f("model.safetensors");        // reads and checks the whole header
//   const auto* e = f.find("fc1.weight");                   // nullptr when absent
//   std::vector<float> w(static_cast<std::size_t>(e->numel()));
//   f.read<float>(*e, w);                                   // row-major, PyTorch's layout
//   uvp::io::write_safetensors<float>("out.safetensors", {{"fc1.weight", {4, 3}, w}});
//
// The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data section after the
// header) plus an optional "__metadata__" object of strings, then the raw little-endian data.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/json_reader.hpp"
#include "uvp/detail/safetensors_header.hpp"
#include "uvp/io/file.hpp"

namespace uvp::detail {

inline std::uint16_t load_le16(const unsigned char* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t load_le32(const unsigned char* p) noexcept {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}
inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  return std::uint64_t(load_le32(p)) | (std::uint64_t(load_le32(p + 4)) << 32);
}

/// IEEE half (finite: the caller has checked the exponent) to float, exactly.
inline float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  float f;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    f = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  const std::uint32_t bits = sign | ((exp + 112u) << 23) | (mant << 13);
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float bits_to_float(std::uint32_t bits) noexcept {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline double bits_to_double(std::uint64_t bits) noexcept {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

#if !defined(_WIN32)
/// Reads exactly `n` bytes at `offset` of `fd` (pread: thread-safe, no shared file position);
/// false if the file ends first.
inline bool pread_full(int fd, void* buf, std::size_t n, std::uint64_t offset, int& err) noexcept {
  auto* p = static_cast<unsigned char*>(buf);
  err = 0;
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    if (got == 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}
#endif

}  // namespace uvp::detail

namespace uvp::io {

/// A safetensors file opened for reading. The constructor reads the 8-byte length and the header
/// (nothing else) and validates all of it (see detail::parse_safetensors_header for the list), so
/// that every entry of tensors() can be read without further checks on the file's structure; the
/// data are read only by read(), tensor by tensor, straight from the file (pread, no mapping: a
/// file truncated under a reader gives an error, not a SIGBUS). The file stays open while any copy
/// of the object lives. read() is const and may run on many threads at once.
///
/// Errors: uvp::io_error for a path that is missing, unreadable or not a regular file (directories
/// are refused, as by every uvp reader); uvp::format_error for a file that is not a valid
/// safetensors file: empty or shorter than 8 bytes, a header length over 100,000,000 (the official
/// limit) or past the end of the file, and every header problem. Messages start with
/// "uvp::io::SafetensorsFile: '<path>'" and name the tensor:
/// `uvp::io::SafetensorsFile: 'm.safetensors': tensor 'lstm.weight_ih_l0': data_offsets [0, 4096]
/// point past the end of the data section (2048 bytes)`.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path) : path_(path) {
    where_ = "uvp::io::SafetensorsFile: " + detail::quoted_path(path);
    const char* fn = "uvp::io::SafetensorsFile";
    detail::check_input_file(fn, path);
#if defined(_WIN32)
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::raise<io_error>(fn, ": cannot open ", detail::quoted_path(path));
    in.seekg(0, std::ios::end);
    const std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    auto read_at = [&](void* buf, std::size_t n, std::uint64_t offset) {
      in.seekg(static_cast<std::streamoff>(offset));
      in.read(static_cast<char*>(buf), static_cast<std::streamsize>(n));
      if (!in) detail::raise<format_error>(where_, ": the file ends before its header does");
    };
#else
    int fd;
    do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) detail::raise<io_error>(fn, ": cannot open ", detail::quoted_path(path), ": ", detail::errno_text(errno));
    fd_ = std::make_shared<detail::FdCloser>(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0)
      detail::raise<io_error>(fn, ": cannot read ", detail::quoted_path(path), ": ", detail::errno_text(errno));
    if (!S_ISREG(st.st_mode))
      detail::raise<io_error>(fn, ": ", detail::quoted_path(path), " is ", detail::file_kind(st.st_mode),
                              ", expected a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    auto read_at = [&](void* buf, std::size_t n, std::uint64_t offset) {
      int err = 0;
      if (!detail::pread_full(fd, buf, n, offset, err)) {
        if (err) detail::raise<io_error>(fn, ": cannot read ", detail::quoted_path(path), ": ", detail::errno_text(err));
        detail::raise<format_error>(where_, ": the file ends before its header does (it changed while read?)");
      }
    };
#endif
    if (size == 0) detail::raise<format_error>(where_, ": the file is empty; not a safetensors file");
    if (size < 8)
      detail::raise<format_error>(where_, ": the file has ", size,
                                  " bytes, fewer than the 8 of a safetensors header length");
    unsigned char len_bytes[8];
    read_at(len_bytes, 8, 0);
    const std::uint64_t n = detail::load_le64(len_bytes);
    if (n > detail::safetensors_max_header)
      detail::raise<format_error>(where_, ": header length ", n, " is larger than the limit of ",
                                  detail::safetensors_max_header, " bytes; not a safetensors file?");
    if (n > size - 8)
      detail::raise<format_error>(where_, ": header length ", n, " runs past the end of the file (", size,
                                  " bytes); truncated?");
    std::string header(static_cast<std::size_t>(n), '\0');
    if (n > 0) read_at(&header[0], header.size(), 8);
    data_start_ = 8 + n;
    data_size_ = size - data_start_;
    header_ = detail::parse_safetensors_header(header, data_size_, where_);
  }

  /// Every tensor, sorted by data offset (then name).
  const std::vector<SafetensorsEntry>& tensors() const noexcept { return header_.tensors; }

  /// The tensor called `name`, or nullptr when the file has none (binary search).
  const SafetensorsEntry* find(std::string_view name) const noexcept {
    const auto& idx = header_.by_name;
    std::size_t lo = 0, hi = idx.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (std::string_view(header_.tensors[idx[mid]].name) < name) lo = mid + 1;
      else hi = mid;
    }
    return lo < idx.size() && header_.tensors[idx[lo]].name == name ? &header_.tensors[idx[lo]] : nullptr;
  }

  /// The header's "__metadata__" (empty when it has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return header_.metadata; }

  const std::string& path() const noexcept { return path_; }

  /// Converts the tensor's elements to T (float or double) into out (out.size() == e.numel()),
  /// in the file's row-major order. F32, F64, F16 and BF16 are read (F16 and BF16 exactly; F64
  /// into float rounds to nearest, and a value beyond float's range is refused). Raises naming
  /// the tensor: uvp::format_error on another dtype ("I64 ... cannot be read as float"), on a NaN
  /// or an infinity ("element 4 (of 6) is nan; non-finite values are refused"), or when the file
  /// was cut short since it was opened; uvp::shape_error when out has the wrong size;
  /// uvp::invalid_argument when `e` is not an entry of this file. Allocates nothing.
  template <class T>
  void read(const SafetensorsEntry& e, Span<T> out) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "uvp::io::SafetensorsFile::read: T must be float or double");
    const char* fn = "uvp::io::SafetensorsFile::read";
    const SafetensorsEntry* mine = find(e.name);
    if (!mine || mine->begin != e.begin || mine->end != e.end || mine->dtype_name != e.dtype_name ||
        mine->shape != e.shape)
      detail::raise<invalid_argument>(fn, ": ", detail::quoted_path(path_), ": tensor '", detail::printable(e.name),
                                      "' is not an entry of this file");
    const std::int64_t n = e.numel();
    if (static_cast<std::int64_t>(out.size()) != n)
      detail::raise<shape_error>(fn, ": ", detail::quoted_path(path_), ": tensor '", detail::printable(e.name), "': out has size ",
                                 out.size(), ", expected ", n);
    const char* type_name = std::is_same_v<T, float> ? "float" : "double";
    if (e.dtype == SafetensorsDtype::other)
      detail::raise<format_error>(where_, ": tensor '", detail::printable(e.name), "' has dtype ",
                                  detail::printable(e.dtype_name), ", which cannot be read as ", type_name,
                                  " (readable: F16, BF16, F32, F64)");
    const std::size_t width = e.dtype == SafetensorsDtype::f64 ? 8 : e.dtype == SafetensorsDtype::f32 ? 4 : 2;
    auto bad_value = [&](std::int64_t i, const char* what) {
      detail::raise<format_error>(where_, ": tensor '", detail::printable(e.name), "' element ", i, " (of ", n, ") is ",
                                  what, "; non-finite values are refused");
    };
    alignas(8) unsigned char buf[16384];
    const std::int64_t per_chunk = static_cast<std::int64_t>(sizeof buf / width);
#if defined(_WIN32)
    std::ifstream in(path_, std::ios::binary);
    if (!in) detail::raise<io_error>(fn, ": cannot open ", detail::quoted_path(path_));
#endif
    for (std::int64_t at = 0; at < n; at += per_chunk) {
      const std::int64_t count = n - at < per_chunk ? n - at : per_chunk;
      const std::size_t bytes = static_cast<std::size_t>(count) * width;
      const std::uint64_t offset = data_start_ + e.begin + static_cast<std::uint64_t>(at) * width;
#if defined(_WIN32)
      in.seekg(static_cast<std::streamoff>(offset));
      in.read(reinterpret_cast<char*>(buf), static_cast<std::streamsize>(bytes));
      if (!in)
        detail::raise<format_error>(where_, ": tensor '", detail::printable(e.name),
                                    "': the file ends before the tensor's data (it changed since it was opened?)");
#else
      int err = 0;
      if (!detail::pread_full(fd_->fd, buf, bytes, offset, err)) {
        if (err) detail::raise<io_error>(fn, ": cannot read ", detail::quoted_path(path_), ": ", detail::errno_text(err));
        detail::raise<format_error>(where_, ": tensor '", detail::printable(e.name),
                                    "': the file ends before the tensor's data (it changed since it was opened?)");
      }
#endif
      T* dst = out.data() + at;
      // One loop per dtype (the switch outside it), so each loop is a plain load-check-convert.
      auto each = [&](auto&& one) {
        for (std::int64_t i = 0; i < count; ++i) dst[i] = one(buf + static_cast<std::size_t>(i) * width, at + i);
      };
      switch (e.dtype) {
        case SafetensorsDtype::f16:
          each([&](const unsigned char* p, std::int64_t k) {
            const std::uint16_t h = detail::load_le16(p);
            if ((h & 0x7C00u) == 0x7C00u) bad_value(k, (h & 0x3FFu) ? "nan" : (h & 0x8000u) ? "-inf" : "inf");
            return static_cast<T>(detail::half_to_float(h));
          });
          break;
        case SafetensorsDtype::bf16:
          each([&](const unsigned char* p, std::int64_t k) {
            const std::uint16_t b = detail::load_le16(p);
            if ((b & 0x7F80u) == 0x7F80u) bad_value(k, (b & 0x7Fu) ? "nan" : (b & 0x8000u) ? "-inf" : "inf");
            return static_cast<T>(detail::bits_to_float(std::uint32_t(b) << 16));
          });
          break;
        case SafetensorsDtype::f32:
          each([&](const unsigned char* p, std::int64_t k) {
            const std::uint32_t u = detail::load_le32(p);
            if ((u & 0x7F800000u) == 0x7F800000u) bad_value(k, (u & 0x7FFFFFu) ? "nan" : (u >> 31) ? "-inf" : "inf");
            return static_cast<T>(detail::bits_to_float(u));
          });
          break;
        default:  // f64
          each([&](const unsigned char* p, std::int64_t k) {
            const std::uint64_t u = detail::load_le64(p);
            if ((u & 0x7FF0000000000000ull) == 0x7FF0000000000000ull)
              bad_value(k, (u & 0xFFFFFFFFFFFFFull) ? "nan" : (u >> 63) ? "-inf" : "inf");
            const double d = detail::bits_to_double(u);
            if constexpr (std::is_same_v<T, float>) {
              if (!(d >= -double(FLT_MAX) && d <= double(FLT_MAX)))  // the conversion would be undefined
                detail::raise<format_error>(where_, ": tensor '", detail::printable(e.name), "' element ", k, " (of ", n,
                                            ") = ", d, " is outside float's range");
            }
            return static_cast<T>(d);
          });
          break;
      }
    }
  }

 private:
  std::string path_;
  std::string where_;  // "uvp::io::SafetensorsFile: '<path>'"
  detail::SafetensorsHeader header_;
  std::uint64_t data_start_ = 0, data_size_ = 0;
#if !defined(_WIN32)
  std::shared_ptr<const detail::FdCloser> fd_;
#endif
};

/// One tensor to write: name, shape and contiguous row-major data (numel == product of shape).
template <class T>
struct SafetensorsTensorRef {
  std::string name;
  std::vector<std::int64_t> shape;
  Span<const T> data;
};

/// Writes float (F32) or double (F64) tensors to `path` atomically (write_file_atomic: readers
/// see the old file or the whole new one). Names must be unique, non-empty, valid UTF-8 and not
/// "__metadata__"; shapes non-negative with data.size() == their product; values finite (the
/// reader refuses NaN and infinity, so writing one would make a file uvp cannot load). Metadata
/// keys and values must be valid UTF-8. Bad arguments raise uvp::invalid_argument (uvp::shape_error
/// for a size mismatch) naming the tensor, before anything is written.
///
/// The layout is the official writer's: tensors sorted by name, stored one after another (each
/// tensor's offset a multiple of sizeof(T), the data section starting at a multiple of 8 in the
/// file, since the JSON header is padded with spaces to a multiple of 8), "__metadata__" first
/// when there is any. So the file loads in `safetensors.torch.load_file` and in
/// SafetensorsFile. The whole file is assembled in memory first.
template <class T>
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorRef<T>>& tensors,
                       const std::map<std::string, std::string>& metadata = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "uvp::io::write_safetensors: T must be float or double");
  const char* fn = "uvp::io::write_safetensors";
  const char* dtype = std::is_same_v<T, float> ? "F32" : "F64";
  constexpr std::uint64_t width = sizeof(T);
  std::vector<std::size_t> order(tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
    const auto& t = tensors[i];
    const std::string at = detail::str(fn, ": tensor ", i, " '", detail::printable(t.name), "'");
    if (t.name.empty()) detail::raise<invalid_argument>(fn, ": tensor ", i, " has an empty name");
    if (t.name == "__metadata__")
      detail::raise<invalid_argument>(at, ": the name __metadata__ is reserved for the header's metadata");
    if (!detail::is_utf8(t.name)) detail::raise<invalid_argument>(at, ": the name is not valid UTF-8");
    std::int64_t numel = 1;
    for (const std::int64_t d : t.shape) {
      if (d < 0) detail::raise<invalid_argument>(at, ": shape has a negative dimension (", d, ")");
      if (d != 0 && numel > std::numeric_limits<std::int64_t>::max() / d)
        detail::raise<invalid_argument>(at, ": shape has more than 2^63 - 1 elements");
      numel *= d;
    }
    if (static_cast<std::int64_t>(t.data.size()) != numel) {
      std::string shape;
      for (std::size_t k = 0; k < t.shape.size(); ++k) shape += detail::str(k ? ", " : "", t.shape[k]);
      detail::raise<shape_error>(at, ": data has size ", t.data.size(), ", expected ", numel,
                                 " (the product of shape [", shape, "])");
    }
    for (index k = 0; k < t.data.size(); ++k)
      if (!std::isfinite(t.data[k]))
        detail::raise<invalid_argument>(at, ": element ", k, " (of ", t.data.size(), ") is ", t.data[k],
                                        "; non-finite values cannot be written");
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tensors[a].name < tensors[b].name; });
  for (std::size_t i = 1; i < order.size(); ++i)
    if (tensors[order[i]].name == tensors[order[i - 1]].name)
      detail::raise<invalid_argument>(fn, ": tensor name '", detail::printable(tensors[order[i]].name),
                                      "' appears twice (tensors ", order[i - 1] < order[i] ? order[i - 1] : order[i],
                                      " and ", order[i - 1] < order[i] ? order[i] : order[i - 1], ")");
  for (const auto& [k, v] : metadata)
    if (!detail::is_utf8(k) || !detail::is_utf8(v))
      detail::raise<invalid_argument>(fn, ": metadata '", detail::printable(k), "' is not valid UTF-8");

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      header += detail::json_quote(k) + ":" + detail::json_quote(v);
    }
    header += "}";
  }
  std::uint64_t offset = 0;
  for (const std::size_t i : order) {
    const auto& t = tensors[i];
    if (header.size() > 1) header += ',';
    header += detail::json_quote(t.name) + ":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (std::size_t k = 0; k < t.shape.size(); ++k) header += detail::str(k ? "," : "", t.shape[k]);
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.data.size()) * width;
    header += detail::str("],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > detail::safetensors_max_header)
    detail::raise<invalid_argument>(fn, ": the header would have ", header.size(), " bytes, more than the ",
                                    detail::safetensors_max_header, " that readers accept (too many tensors or metadata)");

  const std::uint64_t n = header.size();
  std::string content(static_cast<std::size_t>(8 + n + offset), '\0');
  auto* out = reinterpret_cast<unsigned char*>(&content[0]);
  for (int b = 0; b < 8; ++b) out[b] = static_cast<unsigned char>((n >> (8 * b)) & 0xFFu);
  std::memcpy(out + 8, header.data(), header.size());
  out += 8 + n;
  using Bits = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
  for (const std::size_t i : order) {
    for (const T v : tensors[i].data) {  // little-endian whatever the host's order
      Bits u;
      std::memcpy(&u, &v, sizeof u);
      for (std::size_t b = 0; b < sizeof u; ++b) out[b] = static_cast<unsigned char>((u >> (8 * b)) & 0xFFu);
      out += sizeof u;
    }
  }
  write_file_atomic(path, content, fn);
}

}  // namespace uvp::io
