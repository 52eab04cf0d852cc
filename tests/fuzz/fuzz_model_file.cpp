// SPDX-License-Identifier: Apache-2.0
// Fuzz target: model files of both format versions. Input byte 0 selects the mode: bit 0 set -> the
// trailing CRC-32 is recomputed over the mutated bytes, so the fuzzer reaches the checks behind the
// checksum instead of stopping at it; bit 1 clear -> nn::load of the bytes into a fixed model
// (Embedding -> Lstm -> Dense as a BlockList, and Dense -> Relu -> Dense as an nn::Chain, whose
// version 2 architecture is checked), where a failed load must leave every parameter
// byte-identical and a successful one only finite values; bit 1 set -> nn::load_model<float>
// rebuilds the model from the file alone (version 2 parsing, the block registry, the parameter
// bound), and a model it returns runs one small forward of its input kind. Every failure must be a
// uvp::error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/any_model.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/model_file.hpp"
#include "uvp/nn/serialize.hpp"

namespace {

struct Model {
  uvp::Rng rng{7};
  uvp::nn::Embedding<float> emb{12, 4, rng, 0};
  uvp::nn::Lstm<float> lstm{4, 3, rng};
  uvp::nn::Dense<float> head{3, 1, rng};
  uvp::nn::BlockList<float> list = uvp::nn::blocks<float>("emb", emb, "lstm", lstm, "head", head);
};

// A chain with an architecture (every block has spec()): the version 2 seeds are its files.
inline auto make_chain() {
  uvp::Rng rng(11);
  uvp::nn::Chain chain(uvp::nn::Dense<float>(3, 4, rng), uvp::nn::Relu<float>(), uvp::nn::Dense<float>(4, 2, rng));
  chain.set_names({"fc1", "act", "fc2"});
  return chain;
}

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
  // Version 2: the chain's file, for nn::load (mode 1) and load_model (modes 2, 3), and cut short.
  uvp::nn::save(bytes, make_chain());
  write("v2_chain", 1, bytes.size());
  write("v2_load_model", 2, bytes.size());
  write("v2_load_model_crc_fixed", 3, bytes.size());
  write("v2_truncated", 3, bytes.size() - 9);
  return 0;
}
#else
// One small forward of the model's input kind; its errors must be uvp::errors.
void run_loaded(const uvp::nn::AnyModel<float>& model) {
  uvp::nn::AnyModel<float>::Context ctx;
  const std::vector<uvp::index> ids = {0, 1, 0, 1, 1, 0};
  const std::vector<uvp::index> offsets = {0, 2};
  const uvp::index w = model.input_width();
  switch (model.input_kind()) {
    case uvp::nn::BatchKind::rows: {
      const uvp::Matrix<float> x = uvp::Matrix<float>::Constant(2, w >= 1 && w <= 64 ? w : 3, 0.5f);
      model.forward(x, ctx);
      break;
    }
    case uvp::nn::BatchKind::sequence: {
      const uvp::Matrix<float> x = uvp::Matrix<float>::Constant(6, w >= 1 && w <= 64 ? w : 3, 0.5f);
      model.forward(uvp::nn::SequenceBatch<float>(x, 2, 3), ctx);
      break;
    }
    case uvp::nn::BatchKind::tokens:
      model.forward(uvp::nn::TokenBatch(uvp::Span<const uvp::index>(ids.data(), 6), 2, 3), ctx);
      break;
    case uvp::nn::BatchKind::bags:
      model.forward(uvp::nn::TokenBags{uvp::Span<const uvp::index>(ids.data(), 6),
                                       uvp::Span<const uvp::index>(offsets.data(), 2)},
                    ctx);
      break;
    default:
      break;
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static Model model;  // one model for the whole run: a failed load must never change it
  static auto chain = make_chain();
  std::vector<std::uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) && bytes.size() >= 4) {
    const std::uint32_t crc = uvp::detail::crc32(bytes.data(), bytes.size() - 4);
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + std::size_t(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  if (data[0] & 2) {
    uvp_fuzz::expect_uvp_errors_only([&] {
      const auto loaded = uvp::nn::load_model<float>(bytes);
      for (float v : loaded.parameters().values())
        if (!std::isfinite(v)) uvp_fuzz::finding("load_model accepted a non-finite weight");
      run_loaded(loaded);
    });
    return 0;
  }
  const std::vector<unsigned char> before = snapshot(model.list);
  const std::vector<unsigned char> chain_before = snapshot(chain.blocks());
  bool loaded = false, chain_loaded = false;
  try {
    uvp::nn::load(bytes, model.list);
    loaded = true;
  } catch (const uvp::error&) {
    if (snapshot(model.list) != before) uvp_fuzz::finding("a failed load changed the model");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvp fuzz finding: %s\n", e.what());
    uvp_fuzz::finding("an exception that is not a uvp::error");
  }
  try {
    uvp::nn::load(bytes, chain);
    chain_loaded = true;
  } catch (const uvp::error&) {
    if (snapshot(chain.blocks()) != chain_before) uvp_fuzz::finding("a failed load changed the chain");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvp fuzz finding: %s\n", e.what());
    uvp_fuzz::finding("an exception that is not a uvp::error");
  }
  if (loaded)
    for (const auto& e : model.list.entries())
      for (float v : e.block->parameters().values())
        if (!std::isfinite(v)) uvp_fuzz::finding("a load accepted a non-finite weight");
  if (chain_loaded)
    for (float v : chain.parameters().values())
      if (!std::isfinite(v)) uvp_fuzz::finding("a load accepted a non-finite weight");
  return 0;
}
#endif
