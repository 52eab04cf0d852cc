// SPDX-License-Identifier: Apache-2.0
// The item-id sequences and labels of W2 / W4a / W4b (WORKLOADS.md), drawn identically by uvp's
// benchmarks and their LibTorch peers from uvp::Rng.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "uvp/core/random.hpp"

namespace uvp_bench {

/// The W2 model's shapes: item vocabulary, embedding width, LSTM hidden size.
inline constexpr std::int64_t lstm_vocab = 10000, lstm_embed = 32, lstm_hidden = 64, lstm_seq_len = 50;

/// `batches` batches of `batch` full-length sequences of item ids, uniform in [0, lstm_vocab),
/// batch-first (id of sequence b, step t of batch k at ids[(k * batch + b) * seq_len + t]), and
/// one 0/1 label per sequence (probability 0.5 each).
struct LstmData {
  std::int64_t batch = 0, seq_len = 0, batches = 0;
  std::vector<std::int64_t> ids;
  std::vector<float> labels;

  const std::int64_t* batch_ids(std::int64_t k) const { return ids.data() + (k % batches) * batch * seq_len; }
  const float* batch_labels(std::int64_t k) const { return labels.data() + (k % batches) * batch; }
};

inline LstmData make_lstm_data(std::int64_t batch, std::int64_t batches, std::uint64_t seed,
                               std::int64_t seq_len = lstm_seq_len) {
  static_assert(std::is_same_v<std::int64_t, std::ptrdiff_t>, "ids double as uvp::index spans");
  LstmData d;
  d.batch = batch, d.seq_len = seq_len, d.batches = batches;
  uvp::Rng rng(seed);
  d.ids.resize(std::size_t(batches * batch * seq_len));
  for (auto& id : d.ids) id = std::int64_t(rng.uniform_int(std::uint64_t(lstm_vocab)));
  d.labels.resize(std::size_t(batches * batch));
  for (auto& y : d.labels) y = rng.uniform() < 0.5 ? 1.0f : 0.0f;
  return d;
}

}  // namespace uvp_bench
