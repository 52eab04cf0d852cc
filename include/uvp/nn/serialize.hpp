// SPDX-License-Identifier: Apache-2.0
// Model files: save / load every tensor of a BlockList in a versioned, checksummed binary format.
//
// Format version 1 (docs/nn/model_files.md has the byte-by-byte table). All integers are
// unsigned little-endian, all values IEEE 754 little-endian, whatever the host's byte order:
//
//   offset 0   8 bytes  magic "UVPMODEL"
//          8   u32      format version (1)
//         12   u32      scalar type: 1 = float32, 2 = float64
//         16   u64      tensor count N
//         24   N times: u32 name length n, n bytes of name ("<entry name>.<tensor name>", UTF-8,
//                       no terminator), u32 rank r, r x u64 dims, prod(dims) values
//        end-4 u32      CRC-32 (ISO-HDLC, as zlib's crc32) of every byte before it
//
// load reads and checks the whole file first (magic, version, scalar type, structure and
// truncation, checksum, then every name and shape against the model, then that every value is
// finite unless LoadOptions::allow_non_finite) and copies values only when all of it passed: on
// any error the model is unchanged. Names and paths in its messages are escaped and cut
// (detail::printable), so a hostile file cannot fill a log with control bytes or megabytes.
// Tensors are matched by name, so the order of the model's entries may change between save and
// load. A file is never converted between float and double: loading a float32 file into a
// BlockList<double> (or the reverse) is a uvp::format_error (save the model in the type you load
// it into).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <istream>
#include <iterator>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

inline constexpr char model_file_magic[8] = {'U', 'V', 'P', 'M', 'O', 'D', 'E', 'L'};
inline constexpr std::uint32_t model_file_version = 1;
/// Bytes before the first tensor: magic, version, scalar type, tensor count.
inline constexpr std::size_t model_file_header = 24;

template <class T>
constexpr std::uint32_t model_file_scalar_code() noexcept {
  return std::is_same_v<T, float> ? 1u : 2u;
}
inline const char* model_file_scalar_name(std::uint32_t code) noexcept {
  return code == 1 ? "float32" : code == 2 ? "float64" : "unknown";
}

/// CRC-32 with the reflected polynomial 0xEDB88320 (zlib, PNG, gzip), 8 table lookups per 8 bytes
/// ("slicing-by-8"), so a 100 MB embedding table is checked in well under a second.
struct Crc32Tables {
  std::uint32_t t[8][256];
};
constexpr Crc32Tables make_crc32_tables() noexcept {
  Crc32Tables tab{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    tab.t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i)
    for (int s = 1; s < 8; ++s) tab.t[s][i] = (tab.t[s - 1][i] >> 8) ^ tab.t[0][tab.t[s - 1][i] & 0xFFu];
  return tab;
}
inline constexpr Crc32Tables crc32_tables = make_crc32_tables();

inline std::uint32_t crc32(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) noexcept {
  const auto& t = crc32_tables.t;
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = crc ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                                    std::uint32_t(p[3]) << 24);
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; --n, ++p) crc = t[0][(crc ^ *p) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

inline bool host_is_little_endian() noexcept {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Appends n values of T in little-endian byte order.
template <class T>
void append_le_values(std::string& out, const T* v, index n) {
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(T);
  const std::size_t at = out.size();
  out.resize(at + bytes);
  char* dst = &out[at];
  if (bytes == 0) return;
  std::memcpy(dst, v, bytes);
  if (!host_is_little_endian())
    for (std::size_t i = 0; i < bytes; i += sizeof(T))
      for (std::size_t a = 0, b = sizeof(T) - 1; a < b; ++a, --b) std::swap(dst[i + a], dst[i + b]);
}
inline void append_le_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline void append_le_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline std::uint64_t read_le(const unsigned char* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t(p[i]) << (8 * i);
  return v;
}

/// One tensor of a model, under its full name.
template <class T>
struct ModelTensorRef {
  std::string name;
  nn::Block<T>* block;
  const nn::TensorInfo* info;
};

/// Every tensor of the model in entry order; uvp::invalid_argument on a repeated full name.
template <class T>
std::vector<ModelTensorRef<T>> model_tensors(const char* where, const nn::BlockList<T>& model) {
  std::vector<ModelTensorRef<T>> out;
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& e : model.entries())
    for (const auto& t : e.block->tensors()) {
      std::string name = e.name + "." + t.name;
      if (!seen.emplace(name, out.size()).second)
        raise<invalid_argument>(where, ": two tensors of the model are named '", printable(name),
                                "' (give the blocks distinct names)");
      out.push_back({std::move(name), e.block, &t});
    }
  return out;
}

/// The whole file in memory.
template <class T>
std::string encode_model(const char* where, const nn::BlockList<T>& model) {
  const auto tensors = model_tensors(where, model);
  std::size_t size = model_file_header + 4;
  for (const auto& t : tensors)
    size += 4 + t.name.size() + 4 + 8 * t.info->shape.size() + static_cast<std::size_t>(t.info->numel()) * sizeof(T);
  std::string out;
  out.reserve(size);
  out.append(model_file_magic, sizeof model_file_magic);
  append_le_u32(out, model_file_version);
  append_le_u32(out, model_file_scalar_code<T>());
  append_le_u64(out, tensors.size());
  for (const auto& t : tensors) {
    append_le_u32(out, static_cast<std::uint32_t>(t.name.size()));
    out += t.name;
    append_le_u32(out, static_cast<std::uint32_t>(t.info->shape.size()));
    for (index d : t.info->shape) append_le_u64(out, static_cast<std::uint64_t>(d));
    const Span<const T> v = static_cast<const nn::Block<T>*>(t.block)->values(*t.info);
    append_le_values(out, v.data(), v.size());
  }
  append_le_u32(out, crc32(reinterpret_cast<const unsigned char*>(out.data()), out.size()));
  return out;
}

inline std::string hex32(std::uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s.push_back(digits[(v >> (4 * i)) & 0xFu]);
  return s;
}

inline std::string format_shape(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

/// One tensor as found in a file: its name, dims and where its values start.
struct FileTensor {
  std::string name;
  std::vector<std::uint64_t> dims;
  std::size_t offset = 0;  ///< of the first value
  std::uint64_t numel = 0;
};

/// Checks a file against the model and copies its values in; the model changes only when every
/// check passed. `source` names the file in messages ("'model.uvp'", "the stream").
template <class T>
void decode_model(const char* where, const std::string& source, const unsigned char* p, std::size_t size,
                  const nn::BlockList<T>& model, bool allow_non_finite = false) {
  // Structure first: every read is bounds-checked, so a truncated file says so.
  std::size_t pos = 0;
  auto need = [&](std::size_t n, const char* what) {
    if (size - pos < n)
      raise<format_error>(where, ": ", source, " is truncated: ", size, " bytes, ", what, " at offset ", pos,
                          " needs ", n, " more");
  };
  need(sizeof model_file_magic, "the magic number");
  if (std::memcmp(p, model_file_magic, sizeof model_file_magic) != 0)
    raise<format_error>(where, ": ", source, " is not a uvp model file (it does not start with \"UVPMODEL\")");
  pos = sizeof model_file_magic;
  need(4, "the format version");
  const auto version = static_cast<std::uint32_t>(read_le(p + pos, 4));
  pos += 4;
  if (version != model_file_version)
    raise<format_error>(where, ": ", source, " has format version ", version, "; this build of uvp reads version ",
                        model_file_version);
  need(4, "the scalar type");
  const auto scalar = static_cast<std::uint32_t>(read_le(p + pos, 4));
  pos += 4;
  if (scalar != 1 && scalar != 2)
    raise<format_error>(where, ": ", source, " has an unknown scalar type code ", scalar,
                        " (1 = float32, 2 = float64)");
  const std::size_t elem = scalar == 1 ? 4 : 8;
  need(8, "the tensor count");
  const std::uint64_t count = read_le(p + pos, 8);
  pos += 8;

  std::vector<FileTensor> file;
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::uint64_t i = 0; i < count; ++i) {
    FileTensor t;
    need(4, "a tensor name length");
    const std::uint64_t n = read_le(p + pos, 4);
    pos += 4;
    need(static_cast<std::size_t>(n), "a tensor name");
    t.name.assign(reinterpret_cast<const char*>(p + pos), static_cast<std::size_t>(n));
    pos += static_cast<std::size_t>(n);
    need(4, "the rank of a tensor");
    const std::uint64_t rank = read_le(p + pos, 4);
    pos += 4;
    if (rank > (size - pos) / 8) need(static_cast<std::size_t>(rank) * 8, "the dims of a tensor");
    t.numel = 1;
    for (std::uint64_t r = 0; r < rank; ++r) {
      const std::uint64_t d = read_le(p + pos, 8);
      pos += 8;
      t.dims.push_back(d);
      if (d != 0 && t.numel > std::numeric_limits<std::uint64_t>::max() / elem / d)
        raise<format_error>(where, ": ", source, " is corrupted: tensor '", printable(t.name), "' has shape ",
                            format_shape(t.dims), "..., too large for any file");
      t.numel *= d;
    }
    need(static_cast<std::size_t>(t.numel) * elem, ("the values of tensor '" + printable(t.name) + "'").c_str());
    t.offset = pos;
    pos += static_cast<std::size_t>(t.numel) * elem;
    if (!by_name.emplace(t.name, file.size()).second)
      raise<format_error>(where, ": ", source, " has two tensors named '", printable(t.name), "'");
    file.push_back(std::move(t));
  }
  need(4, "the checksum");
  if (size - pos != 4)
    raise<format_error>(where, ": ", source, " has ", size - pos - 4, " unexpected bytes after the last tensor");
  const auto stored = static_cast<std::uint32_t>(read_le(p + pos, 4));
  const std::uint32_t computed = crc32(p, pos);
  if (stored != computed)
    raise<format_error>(where, ": ", source, " is corrupted: its CRC-32 is ", hex32(computed), ", the file says ",
                        hex32(stored));

  // Then the model: same scalar type, the same tensors under the same names and shapes.
  if (scalar != model_file_scalar_code<T>())
    raise<format_error>(where, ": ", source, " holds ", model_file_scalar_name(scalar), " values but the model is ",
                        model_file_scalar_name(model_file_scalar_code<T>()),
                        " (uvp does not convert; load it into a model of the same scalar type)");
  const auto tensors = model_tensors(where, model);
  std::vector<const FileTensor*> match(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& m = tensors[i];
    const auto it = by_name.find(m.name);
    if (it == by_name.end())
      raise<format_error>(where, ": ", source, " has no tensor '", printable(m.name), "' (the model has ",
                          tensors.size(), " tensors, the file ", file.size(),
                          "; is it a model of another architecture?)");
    const FileTensor& f = file[it->second];
    std::vector<std::uint64_t> mdims(m.info->shape.begin(), m.info->shape.end());
    if (f.dims != mdims)
      raise<shape_error>(where, ": tensor '", printable(m.name), "' has shape ", format_shape(f.dims), " in ",
                         source, " but ", format_shape(mdims), " in the model");
    match[i] = &f;
  }
  if (file.size() != tensors.size())
    for (const auto& f : file) {
      bool used = false;
      for (const FileTensor* m : match) used = used || m == &f;
      if (!used)
        raise<format_error>(where, ": ", source, " has a tensor '", printable(f.name),
                            "' that the model lacks (the file has ", file.size(), " tensors, the model ",
                            tensors.size(), "; is it a model of another architecture?)");
    }

  // Non-finite values: a NaN or an infinity in a weight only turns every prediction into NaN later,
  // far from its cause. Tested on the bits (all-ones exponent), so no value is converted.
  if (!allow_non_finite)
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const unsigned char* v = p + match[i]->offset;
      for (std::uint64_t k = 0; k < match[i]->numel; ++k) {
        const std::uint64_t bits = elem == 4 ? read_le(v + k * 4, 4) : read_le(v + k * 8, 8);
        const bool finite = elem == 4 ? ((bits >> 23) & 0xFFu) != 0xFFu : ((bits >> 52) & 0x7FFu) != 0x7FFu;
        if (finite) continue;
        const bool nan = elem == 4 ? (bits & 0x7FFFFFu) != 0 : (bits & 0xFFFFFFFFFFFFFull) != 0;
        const bool negative = (bits >> (elem * 8 - 1)) != 0;
        raise<format_error>(where, ": ", source, ": tensor '", printable(tensors[i].name), "' element ", k,
                            " (of ", match[i]->numel, ") is ", nan ? "nan" : negative ? "-inf" : "inf",
                            "; non-finite weights are refused (uvp::nn::LoadOptions::allow_non_finite "
                            "loads them anyway)");
      }
    }

  // Every check passed: copy.
  const bool swap = !host_is_little_endian();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    Span<T> dst = tensors[i].block->values(*tensors[i].info);
    const std::size_t bytes = static_cast<std::size_t>(dst.size()) * sizeof(T);
    if (bytes == 0) continue;
    auto* out = reinterpret_cast<unsigned char*>(dst.data());
    std::memcpy(out, p + match[i]->offset, bytes);
    if (swap)
      for (std::size_t k = 0; k < bytes; k += sizeof(T))
        for (std::size_t a = 0, b = sizeof(T) - 1; a < b; ++a, --b) std::swap(out[k + a], out[k + b]);
  }
}

}  // namespace uvp::detail

namespace uvp::nn {

/// The model file format version this build writes and reads.
inline constexpr std::uint32_t model_file_version = uvp::detail::model_file_version;

/// What load accepts beyond a valid file.
struct LoadOptions {
  /// false (default): a NaN or infinity anywhere in the file's values is a uvp::format_error naming
  /// the tensor and the element's flat index, and the model is left unchanged. true: such values
  /// are loaded as they are (for a model whose non-finite weights are deliberate, such as -inf
  /// biases that mask outputs; predictions may then be NaN).
  bool allow_non_finite = false;
};

/// Writes every tensor of `model` to `path`, atomically and durably (uvp::write_file_atomic: a
/// uniquely named temporary file in the same directory, synced and renamed over `path`, so an
/// existing file stays intact if writing fails, and concurrent saves and loads of one path never
/// see a partial file).
/// uvp::io_error when the file cannot be written; uvp::invalid_argument when two tensors of the
/// model share a full name.
template <class T>
void save(const std::string& path, const BlockList<T>& model) {
  write_file_atomic(path, uvp::detail::encode_model("uvp::nn::save", model), "uvp::nn::save");
}

/// Writes the same bytes to a binary stream; uvp::io_error if the stream fails.
template <class T>
void save(std::ostream& out, const BlockList<T>& model) {
  const std::string bytes = uvp::detail::encode_model("uvp::nn::save", model);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) uvp::detail::raise<io_error>("uvp::nn::save: cannot write ", bytes.size(), " bytes to the stream");
}

/// Replaces `bytes` with the file's bytes.
template <class T>
void save(std::vector<std::uint8_t>& bytes, const BlockList<T>& model) {
  const std::string s = uvp::detail::encode_model("uvp::nn::save", model);
  bytes.assign(s.begin(), s.end());
}

/// Loads a file written by save into `model` (the blocks the list points to; the list itself is
/// not changed, hence const). Checks everything before copying anything; on error the model's
/// values are unchanged and the exception is:
///   uvp::io_error      the file cannot be opened or read, or `path` is not a regular file (a
///                      directory, FIFO, device)
///   uvp::format_error  not a uvp model file, another format version, truncated, corrupted
///                      (checksum), another scalar type, tensors the model lacks / the file lacks,
///                      or a NaN / infinity among the values (unless options.allow_non_finite)
///   uvp::shape_error   a tensor of the same name but another shape (both shapes in the message)
template <class T>
void load(const std::string& path, const BlockList<T>& model, const LoadOptions& options) {
  constexpr const char* where = "uvp::nn::load";
  const std::string bytes = uvp::detail::read_whole_file(where, path);
  uvp::detail::decode_model(where, uvp::detail::quoted_path(path), reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size(), model, options.allow_non_finite);
}
template <class T>
void load(const std::string& path, const BlockList<T>& model) {
  load(path, model, LoadOptions{});
}

/// Reads the rest of a binary stream as a model file.
template <class T>
void load(std::istream& in, const BlockList<T>& model, const LoadOptions& options) {
  constexpr const char* where = "uvp::nn::load";
  std::ostringstream buffer;
  if (in.peek() != std::char_traits<char>::eof()) buffer << in.rdbuf();  // (<< of an empty rdbuf sets failbit)
  if (in.bad()) uvp::detail::raise<io_error>(where, ": cannot read the stream");
  const std::string bytes = std::move(buffer).str();
  uvp::detail::decode_model(where, "the stream", reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size(), model, options.allow_non_finite);
}
template <class T>
void load(std::istream& in, const BlockList<T>& model) {
  load(in, model, LoadOptions{});
}

/// Loads from bytes made by save(std::vector<std::uint8_t>&, model).
template <class T>
void load(const std::vector<std::uint8_t>& bytes, const BlockList<T>& model, const LoadOptions& options) {
  uvp::detail::decode_model("uvp::nn::load", "the byte buffer", bytes.data(), bytes.size(), model,
                            options.allow_non_finite);
}
template <class T>
void load(const std::vector<std::uint8_t>& bytes, const BlockList<T>& model) {
  load(bytes, model, LoadOptions{});
}

}  // namespace uvp::nn
