// SPDX-License-Identifier: Apache-2.0
// Repeat purchase from the sequence of a customer's purchases, with self-attention: will a
// CDNOW customer buy again in the 39-week holdout period?
//
//   X = Embedding(85, 32, padding 0)[ids] + Embedding(L + 1, 32, padding L)[position]   (learned
//       positions; padded steps get the padding row, so X is 0 there)
//   Y = X + MultiHeadSelfAttention(32, 4 heads)(X), keys masked past each sequence's length
//       (the residual connection of a Transformer block)
//   logit = Dense(32 -> 1)(mean of Y over the valid steps)        p = sigmoid(logit)
//
// Trained with BCE-with-logits and Adam, early stopping on validation ROC-AUC. Prints roc_auc,
// pr_auc, f1 and log_loss of the test customers for the model and for the BG/NBD baseline,
// writes DIR/predictions.csv and DIR/roc.svg.
//
//   purchase_attention [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "../common/example_cli.hpp"
#include "../common/nn_training.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/pooling.hpp"

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;

constexpr index kEmbed = 32, kHeads = 4;

struct AttentionModel {
  index max_len;
  uvp::nn::Embedding<float> tokens, positions;
  uvp::nn::MultiHeadSelfAttention<float> attention;
  uvp::nn::GlobalMeanPool1d<float> pool;
  uvp::nn::Dense<float> head;
  // What the last forward saved for backward.
  uvp::nn::MultiHeadSelfAttention<float>::Context attn_ctx;
  std::vector<index> ids, pos_ids, lengths;
  Matrix<float> X, Y, pooled, d_pooled, d_Y, d_X;
  index batch = 0;

  AttentionModel(index max_len_, uvp::Rng& rng)
      : max_len(max_len_),
        tokens(ex::Vocabulary::size, kEmbed, rng, ex::Vocabulary::padding),
        positions(max_len_ + 1, kEmbed, rng, /*padding_idx=*/max_len_),
        attention(kEmbed, kHeads, rng),
        head(kEmbed, 1, rng) {}

  uvp::nn::BlockList<float> blocks() {
    return uvp::nn::blocks<float>("tokens", tokens, "positions", positions, "attention", attention, "head", head);
  }

  void forward(const std::vector<index>& ids_, const std::vector<index>& lengths_, index batch_,
               Vector<float>& logits) {
    ids = ids_, lengths = lengths_, batch = batch_;
    const index rows = batch * max_len;
    pos_ids.resize(std::size_t(rows));
    for (index b = 0; b < batch; ++b)
      for (index t = 0; t < max_len; ++t) pos_ids[std::size_t(b * max_len + t)] = t < lengths[std::size_t(b)] ? t : max_len;
    X.resize(rows, kEmbed), Y.resize(rows, kEmbed), d_X.resize(rows, kEmbed), pooled.resize(batch, kEmbed);
    tokens.forward(uvp::as_span(ids), X);
    positions.forward(uvp::as_span(pos_ids), d_X);  // d_X as scratch
    X += d_X;
    attention.forward(X, batch, max_len, uvp::as_span(lengths), Y, attn_ctx);
    Y += X;
    pool.forward(Y, batch, max_len, uvp::as_span(lengths), pooled);
    head.forward(pooled, uvp::MatrixView<float>(logits.data(), batch, 1));
  }

  void backward(const Vector<float>& d_logits) {
    const index rows = batch * max_len;
    d_pooled.resize(batch, kEmbed), d_Y.resize(rows, kEmbed), d_X.resize(rows, kEmbed);
    head.backward(pooled, uvp::ConstMatrixView<float>(d_logits.data(), batch, 1), d_pooled);
    pool.backward(d_pooled, uvp::as_span(lengths), d_Y);
    attention.backward(X, d_Y, d_X, attn_ctx);
    d_X += d_Y;  // the residual path
    tokens.backward(uvp::as_span(ids), d_X);
    positions.backward(uvp::as_span(pos_ids), d_X);
  }
};

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);

  const ex::BgNbdBaseline base = ex::fit_bgnbd_baseline(ds);

  uvp::Rng rng(args.seed);
  AttentionModel model(ds.max_len, rng);
  ex::TrainOptions to;
  if (args.epochs > 0) to.epochs = args.epochs;
  to.seed = args.seed;
  if (args.lr > 0) to.lr = args.lr;
  const ex::TrainReport rep = ex::train_purchase_model(model, ds, to);

  const Vector<double> y_test = uvp::take(ds.label, uvp::as_span(ds.test));
  const Vector<double> p_attn = ex::predict_purchase(model, ds, ds.test);
  const Vector<double> p_bg = uvp::take(base.p_repeat, uvp::as_span(ds.test));
  std::printf("parameters: %ld\n", long(model.blocks().parameter_count()));
  std::printf("epochs_run: %ld\nbest_epoch: %ld\nvalidation_roc_auc: %.4f\n", long(rep.epochs_run),
              long(rep.best_epoch), rep.best_validation_auc);
  ex::print_classification("", y_test, p_attn);
  ex::print_classification("bgnbd_", y_test, p_bg);

  std::filesystem::create_directories(args.out);
  ex::save_purchase_predictions(args.out + "/predictions.csv", ds, p_attn, p_bg);
  ex::save_roc(args.out + "/roc.svg", "Repeat purchase in the holdout: ROC on the test customers", y_test,
               {{"self-attention", &p_attn}, {"BG/NBD", &p_bg}});
  std::fprintf(stderr, "wrote %s/predictions.csv, roc.svg\n", args.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = ex::parse_common(argc, argv, "out/purchase_attention",
                                       "usage: purchase_attention [options]\n"
                                       "Embedding + positions -> self-attention -> mean pool -> Dense: "
                                       "P(repeat purchase).\n");
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "purchase_attention: %s\n", e.what());
    return 2;
  }
}
