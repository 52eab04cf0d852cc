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
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/nn/residual.hpp"
#include "uvp/nn/sum.hpp"
#include "uvp/nn/activations.hpp"
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

namespace {

// Eight threads run one const composed model on the same batch, 5 times each, each with its own
// Context, and must get the serial output bit for bit.
template <class Model>
void check_concurrent_chain(const Model& model, const uvp::nn::TokenBatch& tokens) {
  typename Model::Context serial_ctx;
  const uvp::Matrix<float> serial = model.forward(tokens, serial_ctx);
  constexpr int threads = 8;
  std::vector<uvp::Matrix<float>> out(threads);
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      typename Model::Context ctx;  // per thread: the only mutable state
      for (int rep = 0; rep < 5; ++rep) out[static_cast<std::size_t>(k)] = model.forward(tokens, ctx);
    });
  for (auto& t : pool) t.join();
  for (int k = 0; k < threads; ++k) CHECK(out[static_cast<std::size_t>(k)] == serial);
}

}  // namespace

TEST_CASE("concurrent const forward of composed models (nn::Chain) equals the serial result") {
  using uvp::index;
  namespace nn = uvp::nn;
  uvp::Rng rng(23);
  const index vocab = 16, steps = 10;
  const auto data = uvp_test::make_sequences(48, steps, vocab, rng);
  const nn::TokenBatch tokens(uvp::Span<const index>(data.ids.data(), index(data.ids.size())), data.batch, steps,
                              uvp::Span<const index>(data.lengths.data(), data.batch));

  SUBCASE("token + position embeddings, residual self-attention, LayerNorm, mean pool, Dense") {
    nn::Chain model(nn::Sum(nn::Embedding<float>(vocab, 8, rng, 0), nn::PositionEmbedding<float>(steps, 8, rng)),
                    nn::Residual(nn::MultiHeadSelfAttention<float>(8, 2, rng)), nn::LayerNorm<float>(8),
                    nn::GlobalMeanPool1d<float>(), nn::Dense<float>(8, 1, rng));
    model.eval();
    check_concurrent_chain(model, tokens);
  }
  SUBCASE("Embedding, Conv1d, Relu on every step, max pool, Dense") {
    nn::Chain model(nn::Embedding<float>(vocab, 8, rng, 0), nn::Conv1d<float>(8, 6, 3, rng), nn::Relu<float>(),
                    nn::GlobalMaxPool1d<float>(), nn::Dense<float>(6, 1, rng));
    model.eval();
    check_concurrent_chain(model, tokens);
  }
  SUBCASE("Embedding, 2-layer Lstm, last step, Dense: training and eval (inference) paths") {
    nn::Chain model(nn::Embedding<float>(vocab, 8, rng, 0), nn::Lstm<float>(8, 12, rng, 2),
                    nn::GlobalLastPool1d<float>(), nn::Dense<float>(12, 1, rng));
    check_concurrent_chain(model, tokens);
    decltype(model)::Context ctx;
    const uvp::Matrix<float> with_history = model.forward(tokens, ctx);
    model.eval();  // Lstm::forward_last before GlobalLastPool1d
    check_concurrent_chain(model, tokens);
    const uvp::Matrix<float> inference = model.forward(tokens, ctx);
    CHECK((inference - with_history).cwiseAbs().maxCoeff() < 1e-6f);
    const uvp::Matrix<float> d = uvp::Matrix<float>::Ones(data.batch, 1);
    CHECK_THROWS_AS(model.backward(ctx, d), uvp::invalid_argument);
  }
  SUBCASE("Embedding, 2-layer Gru, last step, Dense: training and eval (inference) paths") {
    nn::Chain model(nn::Embedding<float>(vocab, 8, rng, 0), nn::Gru<float>(8, 12, rng, 2), nn::GlobalLastPool1d<float>(),
                    nn::Dense<float>(12, 1, rng));
    check_concurrent_chain(model, tokens);  // train mode: full history
    decltype(model)::Context ctx;
    const uvp::Matrix<float> with_history = model.forward(tokens, ctx);
    model.eval();  // Gru::forward_last before GlobalLastPool1d
    check_concurrent_chain(model, tokens);
    const uvp::Matrix<float> inference = model.forward(tokens, ctx);
    CHECK((inference - with_history).cwiseAbs().maxCoeff() < 1e-6f);
    const uvp::Matrix<float> d = uvp::Matrix<float>::Ones(data.batch, 1);
    CHECK_THROWS_AS(model.backward(ctx, d), uvp::invalid_argument);  // the inference path keeps no history
  }
}
