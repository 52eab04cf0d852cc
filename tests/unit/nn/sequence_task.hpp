// SPDX-License-Identifier: Apache-2.0
// A synthetic purchase-intent task for the end-to-end and concurrency tests, and the
// Embedding -> Lstm -> Dense model that learns it.
//
// Sequences of event ids in [1, vocab) (0 is padding), lengths 4..max_len. The label is 1 when
// an "add to cart" event (id 1) is among the last three valid events and no "leave" event (id 2)
// comes after it: it depends on order and on where each sequence ends, so a bag of events
// cannot learn it and the lengths must be honoured.
#pragma once

#include <vector>

#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/module.hpp"

namespace uvp_test {

using uvp::index;

struct SequenceBatch {
  index batch = 0, seq_len = 0;
  std::vector<index> ids;      // batch * seq_len, 0 at padding
  std::vector<index> lengths;  // batch
  std::vector<float> labels;   // batch
};

inline SequenceBatch make_sequences(index n, index seq_len, index vocab, uvp::Rng& rng) {
  SequenceBatch s;
  s.batch = n;
  s.seq_len = seq_len;
  s.ids.assign(static_cast<std::size_t>(n * seq_len), 0);
  s.lengths.resize(static_cast<std::size_t>(n));
  s.labels.resize(static_cast<std::size_t>(n));
  for (index b = 0; b < n; ++b) {
    const index len = 4 + static_cast<index>(rng.uniform_int(static_cast<std::uint64_t>(seq_len - 3)));
    s.lengths[static_cast<std::size_t>(b)] = len;
    for (index t = 0; t < len; ++t) {
      // ids 1 and 2 are frequent enough that both classes are common
      const double u = rng.uniform(0.0, 1.0);
      index id = u < 0.15 ? 1 : u < 0.27 ? 2 : 3 + static_cast<index>(rng.uniform_int(static_cast<std::uint64_t>(vocab - 3)));
      s.ids[static_cast<std::size_t>(b * seq_len + t)] = id;
    }
    float label = 0;
    for (index t = len - 1; t >= 0 && t >= len - 3; --t) {
      const index id = s.ids[static_cast<std::size_t>(b * seq_len + t)];
      if (id == 2) break;
      if (id == 1) { label = 1; break; }
    }
    s.labels[static_cast<std::size_t>(b)] = label;
  }
  return s;
}

/// Embedding(vocab, emb, padding 0) -> Lstm(emb, hidden) -> last valid hidden -> Dense(hidden, 1).
struct SequenceModel {
  uvp::nn::Embedding<float> emb;
  uvp::nn::Lstm<float> lstm;
  uvp::nn::Dense<float> head;

  SequenceModel(index vocab, index emb_dim, index hidden, uvp::Rng& rng)
      : emb(vocab, emb_dim, rng, 0), lstm(emb_dim, hidden, rng), head(hidden, 1, rng) {}

  uvp::nn::BlockList<float> blocks() { return uvp::nn::blocks<float>("emb", emb, "lstm", lstm, "head", head); }

  /// Per-call workspace: what makes scoring const and thread-safe.
  struct Workspace {
    uvp::Matrix<float> x, h_last, logits, d_logits, dh_last, dx;
    uvp::nn::LstmContext<float> lstm;
  };

  /// Logits of sequences [first, first + n) of s, into ws.logits (n x 1).
  void score(const SequenceBatch& s, index first, index n, Workspace& ws, bool keep_history = false) const {
    const index L = s.seq_len;
    uvp::Span<const index> ids(s.ids.data() + first * L, n * L);
    uvp::Span<const index> lengths(s.lengths.data() + first, n);
    ws.x.resize(n * L, emb.embedding_dim());
    emb.forward(ids, ws.x);
    ws.h_last.resize(n, lstm.hidden_size());
    if (keep_history) {
      lstm.forward(ws.x, n, L, lengths, ws.lstm);
      ws.h_last = ws.lstm.last_hidden();
    } else {
      lstm.forward_last(ws.x, n, L, lengths, ws.h_last, ws.lstm);
    }
    ws.logits.resize(n, 1);
    head.forward(ws.h_last, ws.logits);
  }

  /// One forward + backward over sequences [first, first + n); returns the mean BCE loss.
  double train_step(const SequenceBatch& s, index first, index n, Workspace& ws) {
    score(s, first, n, ws, true);
    ws.d_logits.resize(n, 1);
    const double loss = uvp::bce_with_logits<float>(
        uvp::Span<const float>(ws.logits.data(), n), uvp::Span<const float>(s.labels.data() + first, n),
        uvp::Span<float>(ws.d_logits.data(), n));
    ws.dh_last.resize(n, lstm.hidden_size());
    head.backward(ws.h_last, ws.d_logits, ws.dh_last);
    ws.dx.resize(n * s.seq_len, emb.embedding_dim());
    lstm.backward(ws.x, uvp::Matrix<float>(0, lstm.hidden_size()), ws.dh_last, ws.dx, ws.lstm);
    emb.backward(uvp::Span<const index>(s.ids.data() + first * s.seq_len, n * s.seq_len), ws.dx);
    return loss;
  }
};

}  // namespace uvp_test
