// SPDX-License-Identifier: Apache-2.0
// Eight threads score one const, trained Embedding -> Lstm -> Dense model at once, each with its
// own workspace, and get bit-for-bit the serial results. Run under ThreadSanitizer in CI.
#include <doctest/doctest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "unit/nn/sequence_task.hpp"
#include "support/test_support.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/optim/adam.hpp"

TEST_CASE("concurrent const forward of a trained sequence model equals the serial result") {
  using uvp_test::index;
  uvp::Rng rng(7);
  const index vocab = 16, seq_len = 10;
  const auto data = uvp_test::make_sequences(256, seq_len, vocab, rng);

  uvp_test::SequenceModel model(vocab, 8, 16, rng);
  {  // a few training steps, so the weights are not the initial ones
    auto blocks = model.blocks();
    uvp::Adam<float> adam(uvp::AdamOptions{0.01});
    uvp_test::SequenceModel::Workspace ws;
    for (index first = 0; first < data.batch; first += 32) {
      blocks.zero_grad();
      model.train_step(data, first, 32, ws);
      uvp::nn::step(adam, blocks);
    }
  }
  const uvp_test::SequenceModel& frozen = model;

  // Serial reference: every sequence scored alone (batch 1, the online-inference path).
  std::vector<float> serial(static_cast<std::size_t>(data.batch));
  {
    uvp_test::SequenceModel::Workspace ws;
    for (index b = 0; b < data.batch; ++b) {
      frozen.score(data, b, 1, ws);
      serial[static_cast<std::size_t>(b)] = ws.logits(0, 0);
    }
  }

  constexpr int threads = 8;
  std::vector<std::vector<float>> results(threads, std::vector<float>(static_cast<std::size_t>(data.batch)));
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k) {
    pool.emplace_back([&, k] {
      uvp_test::SequenceModel::Workspace ws;  // per thread: the only mutable state
      // Each thread walks the sequences in its own order, to interleave differently.
      for (index i = 0; i < data.batch; ++i) {
        const index b = (i * (2 * k + 1)) % data.batch;
        frozen.score(data, b, 1, ws);
        results[static_cast<std::size_t>(k)][static_cast<std::size_t>(b)] = ws.logits(0, 0);
      }
    });
  }
  for (auto& t : pool) t.join();
  for (int k = 0; k < threads; ++k)
    CHECK(std::memcmp(results[static_cast<std::size_t>(k)].data(), serial.data(), serial.size() * sizeof(float)) == 0);
}

TEST_CASE("concurrent const forward of attention and conv1d equals the serial result") {
  using uvp::index;
  uvp::Rng rng(11);
  const index batch = 6, seq_len = 9, E = 8;
  uvp::nn::MultiHeadSelfAttention<float> attn(E, 2, rng);
  uvp::nn::Conv1d<float> conv(E, 5, 3, rng);
  uvp::Matrix<float> X(batch * seq_len, E);
  for (index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.normal(0.0, 1.0));
  const std::vector<index> lengths = {9, 3, 5, 4, 9, 7};

  auto run = [&](uvp::Matrix<float>& ya, uvp::Matrix<float>& yc) {
    typename uvp::nn::MultiHeadSelfAttention<float>::Context actx;
    typename uvp::nn::Conv1d<float>::Context cctx;
    ya.resize(batch * seq_len, E);
    attn.forward(X, batch, seq_len, uvp::Span<const index>(lengths.data(), batch), ya, actx);
    const index L_out = seq_len - 2;
    yc.resize(batch * L_out, 5);
    conv.forward(X, batch, seq_len, uvp::Span<const index>(lengths.data(), batch), yc, cctx);
  };
  uvp::Matrix<float> ya0, yc0;
  run(ya0, yc0);

  constexpr int threads = 8;
  std::vector<uvp::Matrix<float>> ya(threads), yc(threads);
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      for (int rep = 0; rep < 20; ++rep) run(ya[static_cast<std::size_t>(k)], yc[static_cast<std::size_t>(k)]);
    });
  for (auto& t : pool) t.join();
  for (int k = 0; k < threads; ++k) {
    CHECK(ya[static_cast<std::size_t>(k)] == ya0);
    CHECK(yc[static_cast<std::size_t>(k)] == yc0);
  }
}
