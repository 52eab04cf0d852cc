// SPDX-License-Identifier: Apache-2.0
// W3's minibatches (item-id sequences of variable length and binary labels), drawn identically by uvp's benchmark and the LibTorch peer.
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/core/random.hpp"

namespace uvp_bench {

/// W3 of WORKLOADS.md: `batches` minibatches of `batch` sequences of at most `seq_len` item ids
/// in [1, vocab) (id 0 = padding, the embedding's padding_idx). Sequence b of a batch has
/// lengths[b] ~ U{min_len, ..., seq_len} valid steps; steps t >= lengths[b] hold id 0. Labels
/// ~ Bernoulli(1/2). Everything comes from uvp::Rng(seed), so both sides see the same batches.
struct W3Data {
  static constexpr std::int64_t batch = 32, seq_len = 50, vocab = 10'000, d_model = 64, heads = 4;
  static constexpr std::int64_t min_len = 5, batches = 16;
  static constexpr std::uint64_t seed = 20240603;

  std::vector<std::vector<std::int64_t>> ids;      // batches x (batch * seq_len), row-major
  std::vector<std::vector<std::int64_t>> lengths;  // batches x batch
  std::vector<std::vector<float>> labels;          // batches x batch

  W3Data() {
    uvp::Rng rng(seed);
    for (std::int64_t k = 0; k < batches; ++k) {
      std::vector<std::int64_t> id(static_cast<std::size_t>(batch * seq_len), 0), len(static_cast<std::size_t>(batch));
      std::vector<float> y(static_cast<std::size_t>(batch));
      for (std::int64_t b = 0; b < batch; ++b) {
        len[std::size_t(b)] = min_len + std::int64_t(rng.uniform_int(std::uint64_t(seq_len - min_len + 1)));
        for (std::int64_t t = 0; t < len[std::size_t(b)]; ++t)
          id[std::size_t(b * seq_len + t)] = 1 + std::int64_t(rng.uniform_int(std::uint64_t(vocab - 1)));
        y[std::size_t(b)] = rng.uniform() < 0.5 ? 1.0f : 0.0f;
      }
      ids.push_back(std::move(id));
      lengths.push_back(std::move(len));
      labels.push_back(std::move(y));
    }
  }
};

}  // namespace uvp_bench
