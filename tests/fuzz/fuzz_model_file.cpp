// SPDX-License-Identifier: Apache-2.0
// Fuzz target: nn::load of arbitrary bytes into a fixed model (Embedding -> Lstm -> Dense). A failed
// load must leave every parameter byte-identical; a successful one must leave only finite values.
// Input byte 0 selects a mode: odd -> the trailing CRC-32 is recomputed over the mutated bytes, so
// the fuzzer reaches the checks behind the checksum instead of stopping at it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/serialize.hpp"

namespace {

struct Model {
  uvp::Rng rng{7};
  uvp::nn::Embedding<float> emb{12, 4, rng, 0};
  uvp::nn::Lstm<float> lstm{4, 3, rng};
  uvp::nn::Dense<float> head{3, 1, rng};
  uvp::nn::BlockList<float> list = uvp::nn::blocks<float>("emb", emb, "lstm", lstm, "head", head);
};

std::vector<unsigned char> snapshot(const uvp::nn::BlockList<float>& list) {
  std::vector<unsigned char> out;
  for (const auto& e : list.entries()) {
    const auto v = e.block->parameters().values();
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    out.insert(out.end(), p, p + static_cast<std::size_t>(v.size()) * sizeof(float));
  }
  return out;
}

}  // namespace

#if defined(UVP_FUZZ_MAKE_SEEDS)
// The seed corpus: the model saved (mode bytes 0 and 1), in double (another scalar type) and cut short.
#include <fstream>
#include <string>
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  Model model;
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, model.list);
  auto write = [&](const char* name, std::uint8_t mode, std::size_t n) {
    std::ofstream out(std::string(argv[1]) + "/" + name, std::ios::binary | std::ios::trunc);
    out.put(static_cast<char>(mode));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
  };
  write("valid", 0, bytes.size());
  write("valid_crc_fixed", 1, bytes.size());
  write("truncated", 1, bytes.size() / 2);
  uvp::Rng rng(7);
  uvp::nn::Dense<double> other(3, 1, rng);
  uvp::nn::save(bytes, uvp::nn::blocks<double>("head", other));
  write("other_model_double", 1, bytes.size());
  return 0;
}
#else
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static Model model;  // one model for the whole run: a failed load must never change it
  std::vector<std::uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) && bytes.size() >= 4) {
    const std::uint32_t crc = uvp::detail::crc32(bytes.data(), bytes.size() - 4);
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + std::size_t(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  const std::vector<unsigned char> before = snapshot(model.list);
  bool loaded = false;
  try {
    uvp::nn::load(bytes, model.list);
    loaded = true;
  } catch (const uvp::error&) {
    if (snapshot(model.list) != before) uvp_fuzz::finding("a failed load changed the model");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvp fuzz finding: %s\n", e.what());
    uvp_fuzz::finding("an exception that is not a uvp::error");
  }
  if (loaded)
    for (const auto& e : model.list.entries())
      for (float v : e.block->parameters().values())
        if (!std::isfinite(v)) uvp_fuzz::finding("a load accepted a non-finite weight");
  return 0;
}
#endif
