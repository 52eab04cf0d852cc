// SPDX-License-Identifier: Apache-2.0
// Embedding -> Lstm -> Dense learns an order-dependent synthetic purchase rule (sequence_task.hpp)
// to >= 0.95 test ROC-AUC in a few seconds, trained with Adam through uvp::nn::step.
#include <doctest/doctest.h>

#include <chrono>
#include <numeric>

#include "unit/nn/sequence_task.hpp"
#include "support/test_support.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/optim/adam.hpp"

TEST_CASE("Embedding -> LSTM -> Dense learns a sequence rule to >= 0.95 AUC") {
  using uvp_test::index;
  uvp::Rng rng(2026);
  const index vocab = 24, seq_len = 12;
  const auto train = uvp_test::make_sequences(1536, seq_len, vocab, rng);
  const auto test = uvp_test::make_sequences(1024, seq_len, vocab, rng);
  const double positives = std::accumulate(test.labels.begin(), test.labels.end(), 0.0);
  REQUIRE(positives > 150);
  REQUIRE(positives < 1024 - 150);

  uvp_test::SequenceModel model(vocab, 8, 24, rng);
  auto blocks = model.blocks();
  uvp::Adam<float> adam(uvp::AdamOptions{0.02});
  uvp_test::SequenceModel::Workspace ws;

  auto test_auc = [&] {
    model.score(test, 0, test.batch, ws);
    return uvp::roc_auc<float>(uvp::Span<const float>(test.labels.data(), test.batch),
                               uvp::Span<const float>(ws.logits.data(), test.batch));
  };
  const double auc_before = test_auc();

  const auto start = std::chrono::steady_clock::now();
  const index batch = 64;
  double first_loss = 0, last_loss = 0, auc = 0;
  for (int epoch = 0; epoch < 30 && (epoch < 2 || auc < 0.97); ++epoch) {
    double loss = 0;
    for (index first = 0; first < train.batch; first += batch) {
      blocks.zero_grad();
      loss += model.train_step(train, first, batch, ws);
      uvp::nn::step(adam, blocks);
    }
    loss /= double(train.batch / batch);
    if (epoch == 0) first_loss = loss;
    last_loss = loss;
    auc = test_auc();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("AUC before training " << auc_before << ", after " << auc << "; loss " << first_loss << " -> "
                                 << last_loss << " in " << seconds << " s");
  CHECK(auc >= 0.95);
  CHECK(last_loss < first_loss);
  // Only the 24 table rows exist; the embedding's sparse gradient touched at most those.
  CHECK(model.emb.sparse_grad().size() <= vocab);
}
