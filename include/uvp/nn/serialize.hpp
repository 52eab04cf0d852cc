// SPDX-License-Identifier: Apache-2.0
// Model files: save / load every tensor of a model in a versioned, checksummed binary format;
// version 2 also stores the model's architecture (uvp/nn/model_file.hpp saves and checks it for an
// nn::Chain, uvp/nn/any_model.hpp rebuilds a model from it).
//
// docs/nn/model_files.md has the byte-by-byte tables. All integers are unsigned little-endian,
// all values IEEE 754 little-endian, whatever the host's byte order:
//
//   offset 0   8 bytes  magic "UVPMODEL"
//          8   u32      format version: 1 (weights only) or 2 (architecture and weights)
//         12   u32      scalar type: 1 = float32, 2 = float64
//   version 2 only:
//         16   u64      architecture size A in bytes, then A bytes: u32 block count M, M times
//                       (string name, spec); a spec is string kind, u32 argument count, that many
//                       (string name, u64 IEEE 754 bits of the double value), u32 child count, that
//                       many specs. A string is a u32 byte count and the bytes (UTF-8).
//   both:              u64 tensor count N, then N times: u32 name length n, n bytes of name
//                       ("<entry name>.<tensor name>", UTF-8, no terminator), u32 rank r, r x u64
//                       dims, prod(dims) values
//        end-4 u32      CRC-32 (ISO-HDLC, as zlib's crc32) of every byte before it
//
// load reads and checks the whole file first (magic, version, scalar type, structure and
// truncation, checksum, then every name and shape against the model, then that every value is
// finite unless LoadOptions::allow_non_finite) and copies values only when all of it passed: on
// any error the model is unchanged. Names and paths in its messages are escaped and cut
// (detail::printable), so a hostile file cannot fill a log with control bytes or megabytes; the
// architecture's sizes, counts and nesting are bounded (model_file_max_*), and every count is
// checked against the bytes left before anything is allocated for it.
// Tensors are matched by name, so the order of the model's entries may change between save and
// load. A file is never converted between float and double: loading a float32 file into a
// BlockList<double> (or the reverse) is a uvp::format_error (save the model in the type you load
// it into). save(path, BlockList) writes version 1 (a list of blocks has no architecture);
// load(path, BlockList) reads both versions (the weights of a version 2 file).
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
#include <utility>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {
/// A model's blocks as a version 2 file stores them: each block's name and spec, in order (what
/// nn::Chain::architecture() returns).
using ModelArchitecture = std::vector<std::pair<std::string, BlockSpec>>;
}  // namespace uvp::nn

namespace uvp::detail {

inline constexpr char model_file_magic[8] = {'U', 'V', 'P', 'M', 'O', 'D', 'E', 'L'};
/// The newest format version (written when the model has an architecture) and the weights-only one.
inline constexpr std::uint32_t model_file_version = 2;
inline constexpr std::uint32_t model_file_weights_version = 1;
/// Bytes before the first tensor of a version 1 file: magic, version, scalar type, tensor count.
inline constexpr std::size_t model_file_header = 24;
/// Bounds on a version 2 architecture: a hostile file cannot make a reader recurse deeper,
/// allocate longer strings, or list more blocks than these (save refuses what load would).
inline constexpr std::size_t model_file_max_depth = 16;       ///< nesting of children, top level = 1
inline constexpr std::size_t model_file_max_string = 1024;    ///< bytes of a name or kind
inline constexpr std::size_t model_file_max_args = 256;       ///< arguments of one spec
inline constexpr std::size_t model_file_max_specs = 1 << 16;  ///< specs in the whole architecture
/// Bytes of the smallest spec (empty kind, no args, no children) and of one argument.
inline constexpr std::size_t model_file_min_spec = 12, model_file_min_arg = 12;

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

inline void append_le_string(std::string& out, const std::string& s) {
  append_le_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

inline std::uint64_t double_bits(double v) noexcept {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}
inline double bits_double(std::uint64_t bits) noexcept {
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Refuses (uvp::invalid_argument) an architecture that a reader would refuse, so save never writes
// a file that load cannot read back.
inline void check_spec_for_file(const char* where, const nn::BlockSpec& s, const std::string& at, std::size_t depth,
                                std::size_t& specs) {
  if (depth > model_file_max_depth)
    raise<invalid_argument>(where, ": ", at, " nests specs deeper than ", model_file_max_depth, " levels");
  if (++specs > model_file_max_specs)
    raise<invalid_argument>(where, ": the architecture has more than ", model_file_max_specs, " specs");
  if (s.kind.empty() || s.kind.size() > model_file_max_string)
    raise<invalid_argument>(where, ": ", at, " has a kind of ", s.kind.size(), " bytes (1 to ", model_file_max_string,
                            ")");
  if (s.args.size() > model_file_max_args)
    raise<invalid_argument>(where, ": ", at, " (", printable(s.kind), ") has ", s.args.size(),
                            " arguments, at most ", model_file_max_args);
  for (std::size_t i = 0; i < s.args.size(); ++i) {
    if (s.args[i].first.empty() || s.args[i].first.size() > model_file_max_string)
      raise<invalid_argument>(where, ": ", at, " (", printable(s.kind), ") argument ", i, " has a name of ",
                              s.args[i].first.size(), " bytes (1 to ", model_file_max_string, ")");
    for (std::size_t j = 0; j < i; ++j)
      if (s.args[j].first == s.args[i].first)
        raise<invalid_argument>(where, ": ", at, " (", printable(s.kind), ") has two arguments named '",
                                printable(s.args[i].first), "'");
  }
  for (std::size_t c = 0; c < s.children.size(); ++c)
    check_spec_for_file(where, s.children[c], at + " child " + std::to_string(c), depth + 1, specs);
}

inline void append_spec(std::string& out, const nn::BlockSpec& s) {
  append_le_string(out, s.kind);
  append_le_u32(out, static_cast<std::uint32_t>(s.args.size()));
  for (const auto& a : s.args) {
    append_le_string(out, a.first);
    append_le_u64(out, double_bits(a.second));
  }
  append_le_u32(out, static_cast<std::uint32_t>(s.children.size()));
  for (const auto& c : s.children) append_spec(out, c);
}

/// The architecture section of a version 2 file (without its u64 size); uvp::invalid_argument for
/// an architecture that a reader would refuse (empty, repeated or dotted block names, limits).
inline std::string encode_architecture(const char* where, const nn::ModelArchitecture& arch) {
  if (arch.empty()) raise<invalid_argument>(where, ": the architecture has no blocks");
  std::size_t specs = 0;
  for (std::size_t i = 0; i < arch.size(); ++i) {
    const std::string& name = arch[i].first;
    if (name.empty() || name.size() > model_file_max_string || name.find('.') != std::string::npos)
      raise<invalid_argument>(where, ": block ", i, " is named '", printable(name), "'; a name has 1 to ",
                              model_file_max_string, " bytes and no '.'");
    for (std::size_t j = 0; j < i; ++j)
      if (arch[j].first == name)
        raise<invalid_argument>(where, ": blocks ", j, " and ", i, " are both named '", printable(name), "'");
    check_spec_for_file(where, arch[i].second, "block " + std::to_string(i) + " '" + printable(name) + "'", 1, specs);
  }
  std::string out;
  append_le_u32(out, static_cast<std::uint32_t>(arch.size()));
  for (const auto& [name, spec] : arch) {
    append_le_string(out, name);
    append_spec(out, spec);
  }
  return out;
}

/// The whole file in memory: version 2 with `arch` (not null), else version 1.
template <class T>
std::string encode_model(const char* where, const nn::BlockList<T>& model, const nn::ModelArchitecture* arch = nullptr) {
  const auto tensors = model_tensors(where, model);
  const std::string arch_bytes = arch ? encode_architecture(where, *arch) : std::string();
  std::size_t size = model_file_header + 4 + (arch ? 8 + arch_bytes.size() : 0);
  for (const auto& t : tensors)
    size += 4 + t.name.size() + 4 + 8 * t.info->shape.size() + static_cast<std::size_t>(t.info->numel()) * sizeof(T);
  std::string out;
  out.reserve(size);
  out.append(model_file_magic, sizeof model_file_magic);
  append_le_u32(out, arch ? model_file_version : model_file_weights_version);
  append_le_u32(out, model_file_scalar_code<T>());
  if (arch) {
    append_le_u64(out, arch_bytes.size());
    out += arch_bytes;
  }
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

/// A file's contents after its structure and checksum were checked (values stay in the bytes).
struct ParsedModelFile {
  std::uint32_t version = 0;
  std::uint32_t scalar = 0;     ///< 1 = float32, 2 = float64
  std::size_t elem = 0;         ///< bytes per value
  bool has_architecture = false;
  nn::ModelArchitecture architecture;
  std::vector<FileTensor> tensors;
  std::unordered_map<std::string, std::size_t> by_name;
  std::uint64_t total_values = 0;  ///< of every tensor together
};

// Reads a version 2 architecture section [pos, end) of p, every read bounds-checked, every count
// checked against the bytes left before anything is stored for it.
class ArchitectureReader {
 public:
  ArchitectureReader(const char* where, const std::string& source, const unsigned char* p, std::size_t pos,
                     std::size_t end)
      : where_(where), source_(source), p_(p), pos_(pos), end_(end) {}

  nn::ModelArchitecture read() {
    const std::uint64_t count = u32("the block count");
    if (count == 0) fail("the architecture lists no blocks");
    if (count > (end_ - pos_) / (4 + model_file_min_spec))
      fail(str("the block count ", count, " does not fit in the ", end_ - pos_, " bytes left"));
    nn::ModelArchitecture arch;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string at = str("block ", i);
      std::string name = string((at + "'s name").c_str());
      at += " '" + printable(name) + "'";
      if (name.empty() || name.find('.') != std::string::npos) fail(at + " has an empty or dotted name");
      for (const auto& b : arch)
        if (b.first == name) fail(str("two blocks are named '", printable(name), "'"));
      nn::BlockSpec s = spec(at, 1);
      arch.emplace_back(std::move(name), std::move(s));
    }
    if (pos_ != end_) fail(str(end_ - pos_, " unexpected bytes after the last block"));
    return arch;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    raise<format_error>(where_, ": ", source_, " is corrupted: its architecture (at offset ", pos_, "): ", what);
  }
  void need(std::size_t n, const char* what) const {
    if (end_ - pos_ < n)
      fail(str(what, " needs ", n, " bytes, ", end_ - pos_, " are left in the architecture"));
  }
  std::uint64_t u32(const char* what) {
    need(4, what);
    const std::uint64_t v = read_le(p_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  std::string string(const char* what) {
    const std::uint64_t n = u32(what);
    if (n > model_file_max_string) fail(str(what, " is ", n, " bytes long, at most ", model_file_max_string));
    need(static_cast<std::size_t>(n), what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  nn::BlockSpec spec(const std::string& at, std::size_t depth) {
    if (depth > model_file_max_depth) fail(str(at, " nests specs deeper than ", model_file_max_depth, " levels"));
    if (++specs_ > model_file_max_specs) fail(str("more than ", model_file_max_specs, " specs"));
    nn::BlockSpec s(string((at + "'s kind").c_str()));
    if (s.kind.empty()) fail(at + " has an empty kind");
    const std::string of = at + " (" + printable(s.kind) + ")";
    const std::uint64_t nargs = u32((of + "'s argument count").c_str());
    if (nargs > model_file_max_args || nargs > (end_ - pos_) / model_file_min_arg)
      fail(str(of, " has ", nargs, " arguments: more than ",
               nargs > model_file_max_args ? model_file_max_args : (end_ - pos_) / model_file_min_arg,
               nargs > model_file_max_args ? "" : " (the bytes left)"));
    for (std::uint64_t a = 0; a < nargs; ++a) {
      std::string name = string((of + "'s argument name").c_str());
      if (name.empty()) fail(of + " has an argument with an empty name");
      for (const auto& prev : s.args)
        if (prev.first == name) fail(str(of, " has two arguments named '", printable(name), "'"));
      need(8, (of + "'s value of '" + printable(name) + "'").c_str());
      const double v = bits_double(read_le(p_ + pos_, 8));
      pos_ += 8;
      s.args.emplace_back(std::move(name), v);
    }
    const std::uint64_t nchildren = u32((of + "'s child count").c_str());
    if (nchildren > (end_ - pos_) / model_file_min_spec)
      fail(str(of, " has ", nchildren, " children, which do not fit in the ", end_ - pos_, " bytes left"));
    for (std::uint64_t c = 0; c < nchildren; ++c) s.children.push_back(spec(str(of, " child ", c), depth + 1));
    return s;
  }

  const char* where_;
  const std::string& source_;
  const unsigned char* p_;
  std::size_t pos_, end_, specs_ = 0;
};

/// Checks a file's structure and checksum (either version); the values stay in p.
inline ParsedModelFile parse_model_file(const char* where, const std::string& source, const unsigned char* p,
                                        std::size_t size) {
  // Structure first: every read is bounds-checked, so a truncated file says so.
  ParsedModelFile f;
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
  f.version = static_cast<std::uint32_t>(read_le(p + pos, 4));
  pos += 4;
  if (f.version != model_file_version && f.version != model_file_weights_version)
    raise<format_error>(where, ": ", source, " has format version ", f.version, "; this build of uvp reads versions ",
                        model_file_weights_version, " and ", model_file_version);
  need(4, "the scalar type");
  f.scalar = static_cast<std::uint32_t>(read_le(p + pos, 4));
  pos += 4;
  if (f.scalar != 1 && f.scalar != 2)
    raise<format_error>(where, ": ", source, " has an unknown scalar type code ", f.scalar,
                        " (1 = float32, 2 = float64)");
  f.elem = f.scalar == 1 ? 4 : 8;
  if (f.version == model_file_version) {
    need(8, "the architecture size");
    const std::uint64_t arch_size = read_le(p + pos, 8);
    pos += 8;
    if (arch_size > size - pos)
      raise<format_error>(where, ": ", source, " is truncated: ", size, " bytes, the architecture at offset ", pos,
                          " needs ", arch_size, " more");
    f.architecture = ArchitectureReader(where, source, p, pos, pos + static_cast<std::size_t>(arch_size)).read();
    f.has_architecture = true;
    pos += static_cast<std::size_t>(arch_size);
  }
  const std::size_t elem = f.elem;
  need(8, "the tensor count");
  const std::uint64_t count = read_le(p + pos, 8);
  pos += 8;

  auto& file = f.tensors;
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
    f.total_values += t.numel;
    if (!f.by_name.emplace(t.name, file.size()).second)
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
  return f;
}

/// Checks a parsed file against the model and copies its values in; the model changes only when
/// every check passed. `source` names the file in messages ("'model.uvp'", "the stream").
template <class T>
void apply_model_file(const char* where, const std::string& source, const ParsedModelFile& parsed,
                      const unsigned char* p, const nn::BlockList<T>& model, bool allow_non_finite = false) {
  const auto& file = parsed.tensors;
  const auto& by_name = parsed.by_name;
  const std::uint32_t scalar = parsed.scalar;
  const std::size_t elem = parsed.elem;
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

/// parse_model_file then apply_model_file.
template <class T>
void decode_model(const char* where, const std::string& source, const unsigned char* p, std::size_t size,
                  const nn::BlockList<T>& model, bool allow_non_finite = false) {
  apply_model_file(where, source, parse_model_file(where, source, p, size), p, model, allow_non_finite);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// The newest model file format version, which this build writes for a model with an architecture
/// (version 1, weights only, for a BlockList); it reads both.
inline constexpr std::uint32_t model_file_version = uvp::detail::model_file_version;

/// What load accepts beyond a valid file.
struct LoadOptions {
  /// false (default): a NaN or infinity anywhere in the file's values is a uvp::format_error naming
  /// the tensor and the element's flat index, and the model is left unchanged. true: such values
  /// are loaded as they are (for a model whose non-finite weights are deliberate, such as -inf
  /// biases that mask outputs; predictions may then be NaN).
  bool allow_non_finite = false;
};

/// Writes every tensor of `model` to `path` as a version 1 file (weights only; nn::save of an
/// nn::Chain or nn::AnyModel writes version 2 with the architecture), atomically and durably (uvp::write_file_atomic: a
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
/// not changed, hence const): the tensors of a version 1 or version 2 file (whose architecture is
/// not checked here; nn::load into an nn::Chain checks it). Checks everything before copying anything; on error the model's
/// values are unchanged and the exception is:
///   uvp::io_error      the file cannot be opened or read, or `path` is not a regular file (a
///                      directory, FIFO, device)
///   uvp::format_error  not a uvp model file, an unknown format version, truncated, corrupted
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
