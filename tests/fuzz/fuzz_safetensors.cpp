// SPDX-License-Identifier: Apache-2.0
// Fuzz target: safetensors files. Input byte 0 selects the mode; the rest is the file. Bit 1 set ->
// the 8-byte header length is first reduced modulo (the rest's size - 7), so that it always fits in
// the file and the fuzzer reaches the JSON instead of stopping at the length check. Bit 0 clear ->
// detail::parse_safetensors_header on the bytes in memory; a header it accepts must satisfy what
// the reader relies on (tensors sorted by offset, one after another, covering the data section,
// byte sizes matching shape and dtype, names unique and found by name). Bit 0 set -> the bytes go
// to a file opened with io::SafetensorsFile, every F16/BF16/F32/F64 tensor is read into float and
// double (only finite values may come back), and a file whose tensors all read as double is written
// back with io::write_safetensors<double> and read again, value for value. Every failure must be a
// uvp::error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "fuzz_check.hpp"
#include "uvp/io/safetensors.hpp"

namespace {

// Scratch files: in /dev/shm where there is one (the writer's fsync costs nothing there).
std::string scratch(const char* tag) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
  return (dir / ("uvp_fuzz_safetensors_" + std::to_string(::getpid()) + "_" + tag)).string();
}

// Removes the scratch files when the run ends.
struct ScratchFiles {
  std::string input = scratch("input"), copy = scratch("copy");
  ~ScratchFiles() {
    std::remove(input.c_str());
    std::remove(copy.c_str());
  }
};
const ScratchFiles& files() {
  static const ScratchFiles f;
  return f;
}

void check_header(const uvp::detail::SafetensorsHeader& h, std::uint64_t data_size) {
  std::uint64_t at = 0;
  for (const auto& e : h.tensors) {
    if (e.begin != at || e.end < e.begin) uvp_fuzz::finding("accepted tensors that are not one after another");
    at = e.end;
    const std::uint64_t bits = uvp::detail::safetensors_dtype_bits(e.dtype_name);
    if (bits == 0 || e.name.empty()) uvp_fuzz::finding("accepted an unknown dtype or an empty name");
    if (e.numel() < 0 || std::uint64_t(e.numel()) * bits != (e.end - e.begin) * 8)
      uvp_fuzz::finding("accepted a tensor whose byte size does not match shape and dtype");
  }
  if (at != data_size) uvp_fuzz::finding("accepted tensors that do not cover the data section");
  if (h.by_name.size() != h.tensors.size()) uvp_fuzz::finding("by_name has the wrong size");
  for (std::size_t i = 1; i < h.by_name.size(); ++i)
    if (!(h.tensors[h.by_name[i - 1]].name < h.tensors[h.by_name[i]].name))
      uvp_fuzz::finding("names not unique or not sorted");
}

bool readable(uvp::io::SafetensorsDtype d) { return d != uvp::io::SafetensorsDtype::other; }

void check_file(const std::string& path) {
  const uvp::io::SafetensorsFile f(path);
  for (const auto& e : f.tensors())
    if (f.find(e.name) != &e) uvp_fuzz::finding("find() does not return the entry");
  std::vector<std::vector<double>> values;
  bool all_double = true;
  for (const auto& e : f.tensors()) {
    std::vector<double> d(static_cast<std::size_t>(e.numel()));
    std::vector<float> fl(d.size());
    try {
      f.read<double>(e, d);
    } catch (const uvp::error&) {
      all_double = false;
      continue;
    }
    if (!readable(e.dtype)) uvp_fuzz::finding("read an unconvertible dtype");
    for (double v : d)
      if (!std::isfinite(v)) uvp_fuzz::finding("read returned a non-finite value");
    uvp_fuzz::expect_uvp_errors_only([&] {
      f.read<float>(e, fl);
      for (std::size_t i = 0; i < fl.size(); ++i)
        if (!std::isfinite(fl[i]) || fl[i] != static_cast<float>(d[i]))
          uvp_fuzz::finding("float and double reads disagree");
    });
    values.push_back(std::move(d));
  }
  if (!all_double) return;
  // Everything read: the writer must take it (names and metadata came through the parser) and
  // give back the same values.
  std::vector<uvp::io::SafetensorsTensorRef<double>> refs;
  for (std::size_t i = 0; i < values.size(); ++i)
    refs.push_back({f.tensors()[i].name, f.tensors()[i].shape, values[i]});
  const std::string& copy = files().copy;
  try {
    uvp::io::write_safetensors<double>(copy, refs, f.metadata());
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "uvp fuzz finding: %s\n", ex.what());
    uvp_fuzz::finding("write_safetensors refused what SafetensorsFile read");
  }
  const uvp::io::SafetensorsFile back(copy);
  if (back.tensors().size() != values.size() || back.metadata() != f.metadata())
    uvp_fuzz::finding("the written copy has other tensors or metadata");
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto* e = back.find(f.tensors()[i].name);
    if (!e || e->shape != f.tensors()[i].shape) uvp_fuzz::finding("the written copy lost a tensor");
    std::vector<double> d(values[i].size());
    back.read<double>(*e, d);
    if (d != values[i]) uvp_fuzz::finding("the written copy has other values");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((mode & 2) && bytes.size() >= 8) {
    std::uint64_t n = uvp::detail::load_le64(reinterpret_cast<const unsigned char*>(bytes.data()));
    n %= std::uint64_t(bytes.size() - 7);
    for (int b = 0; b < 8; ++b) bytes[std::size_t(b)] = static_cast<char>((n >> (8 * b)) & 0xFFu);
  }
  if (!(mode & 1)) {
    if (bytes.size() < 8) return 0;
    const std::uint64_t n = uvp::detail::load_le64(reinterpret_cast<const unsigned char*>(bytes.data()));
    if (n > bytes.size() - 8) return 0;  // the file reader's check, tested in file mode
    const std::uint64_t data_size = bytes.size() - 8 - n;
    uvp_fuzz::expect_uvp_errors_only([&] {
      check_header(uvp::detail::parse_safetensors_header(std::string_view(bytes).substr(8, std::size_t(n)), data_size),
                   data_size);
    });
    return 0;
  }
  const std::string& path = files().input;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) uvp_fuzz::finding("cannot write the scratch file");
  }
  uvp_fuzz::expect_uvp_errors_only([&] { check_file(path); });
  return 0;
}
