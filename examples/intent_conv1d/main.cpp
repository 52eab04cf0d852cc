// SPDX-License-Identifier: Apache-2.0
// Repeat-purchase intent from a customer's purchase tokens with a 1-D CNN: will a CDNOW customer
// buy again in the 39-week holdout period?
//
//   ids (batch x L) -> Embedding(85, 32, padding 0) -> Conv1d(32 -> 64, kernel 3, padding 1)
//       -> ReLU -> GlobalMaxPool1d over the valid steps -> Dense(64 -> 1) -> sigmoid
//
// Trained with BCE-with-logits and Adam, early stopping on validation ROC-AUC. Prints the
// confusion matrix at threshold 0.5, accuracy / recall / precision / f1 and roc_auc of the test
// customers, for the CNN and for the BG/NBD baseline. Writes DIR/predictions.csv and DIR/roc.svg.
//
//   intent_conv1d [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "../common/example_cli.hpp"
#include "../common/nn_training.hpp"
#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/pooling.hpp"

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;

constexpr index kEmbed = 32, kChannels = 64, kKernel = 3;

struct ConvModel {
  index max_len;
  uvp::nn::Embedding<float> embedding;
  uvp::nn::Conv1d<float> conv;
  uvp::nn::GlobalMaxPool1d<float> pool;
  uvp::nn::Dense<float> head;
  // Activations of the last forward, reused batch after batch.
  uvp::nn::Conv1d<float>::Context conv_ctx;
  std::vector<index> ids, argmax;
  Matrix<float> emb, feat, pooled, d_pooled, d_feat, d_emb, d_logits;
  index batch = 0;

  ConvModel(index max_len_, uvp::Rng& rng)
      : max_len(max_len_),
        embedding(ex::Vocabulary::size, kEmbed, rng, ex::Vocabulary::padding),
        conv(kEmbed, kChannels, kKernel, rng, {/*stride=*/1, /*padding=*/1, /*bias=*/true}),
        head(kChannels, 1, rng) {}

  uvp::nn::BlockList<float> blocks() {
    return uvp::nn::blocks<float>("embedding", embedding, "conv", conv, "head", head);
  }

  void forward(const std::vector<index>& ids_, const std::vector<index>& lengths, index batch_, Vector<float>& logits) {
    ids = ids_, batch = batch_;
    const index rows = batch * max_len;
    emb.resize(rows, kEmbed), feat.resize(rows, kChannels), pooled.resize(batch, kChannels);
    argmax.resize(std::size_t(batch * kChannels));
    embedding.forward(uvp::as_span(ids), emb);
    conv.forward(emb, batch, max_len, uvp::as_span(lengths), feat, conv_ctx);  // padding 1: L_out = L
    uvp::kernels::relu(feat.data(), feat.data(), feat.size());
    pool.forward(feat, batch, max_len, conv_ctx.output_lengths(), pooled, uvp::as_span(argmax));
    head.forward(pooled, uvp::MatrixView<float>(logits.data(), batch, 1));
  }

  void backward(const Vector<float>& d_logits_) {
    const index rows = batch * max_len;
    d_pooled.resize(batch, kChannels), d_feat.resize(rows, kChannels), d_emb.resize(rows, kEmbed);
    head.backward(pooled, uvp::ConstMatrixView<float>(d_logits_.data(), batch, 1), d_pooled);
    pool.backward(d_pooled, uvp::as_span(argmax), d_feat);
    // relu'(z) from its output: feat > 0 exactly where the pre-activation was.
    uvp::kernels::relu_backward(feat.data(), d_feat.data(), d_feat.data(), d_feat.size());
    conv.backward(emb, d_feat, d_emb, conv_ctx);
    embedding.backward(uvp::as_span(ids), d_emb);
  }
};

// Confusion matrix and threshold metrics at 0.5, printed as `<prefix>tp: ...`.
void print_threshold_metrics(const std::string& prefix, const Vector<double>& y, const Vector<double>& p) {
  Vector<double> hard(p.size());
  double tp = 0, fp = 0, tn = 0, fn = 0;
  for (index i = 0; i < p.size(); ++i) {
    hard[i] = p[i] >= 0.5 ? 1.0 : 0.0;
    (y[i] > 0 ? (hard[i] > 0 ? tp : fn) : (hard[i] > 0 ? fp : tn)) += 1;
  }
  const uvp::Span<const double> ys = uvp::as_span(y), hs = uvp::as_span(hard);
  std::printf("%stp: %.0f\n%sfp: %.0f\n%stn: %.0f\n%sfn: %.0f\n", prefix.c_str(), tp, prefix.c_str(), fp,
              prefix.c_str(), tn, prefix.c_str(), fn);
  std::printf("%saccuracy: %.4f\n", prefix.c_str(), uvp::accuracy<double>(ys, hs));
  std::printf("%srecall: %.4f\n", prefix.c_str(), uvp::recall<double>(ys, hs));
  std::printf("%sprecision: %.4f\n", prefix.c_str(), uvp::precision<double>(ys, hs));
  std::printf("%sf1: %.4f\n", prefix.c_str(), uvp::f1_score<double>(ys, hs));
  std::printf("%sroc_auc: %.4f\n", prefix.c_str(), uvp::roc_auc<double>(ys, uvp::as_span(p)));
}

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);

  const ex::BgNbdBaseline base = ex::fit_bgnbd_baseline(ds);

  uvp::Rng rng(args.seed);
  ConvModel model(ds.max_len, rng);
  ex::TrainOptions to;
  if (args.epochs > 0) to.epochs = args.epochs;
  to.seed = args.seed;
  if (args.lr > 0) to.lr = args.lr;
  const ex::TrainReport rep = ex::train_purchase_model(model, ds, to);

  const Vector<double> y_test = uvp::take(ds.label, uvp::as_span(ds.test));
  const Vector<double> p_cnn = ex::predict_purchase(model, ds, ds.test);
  const Vector<double> p_bg = uvp::take(base.p_repeat, uvp::as_span(ds.test));
  std::printf("parameters: %ld\n", long(model.blocks().parameter_count()));
  std::printf("epochs_run: %ld\nbest_epoch: %ld\nvalidation_roc_auc: %.4f\n", long(rep.epochs_run),
              long(rep.best_epoch), rep.best_validation_auc);
  print_threshold_metrics("", y_test, p_cnn);
  print_threshold_metrics("bgnbd_", y_test, p_bg);

  std::filesystem::create_directories(args.out);
  ex::save_purchase_predictions(args.out + "/predictions.csv", ds, p_cnn, p_bg);
  ex::save_roc(args.out + "/roc.svg", "Repeat purchase in the holdout: ROC on the test customers", y_test,
               {{"Conv1d", &p_cnn}, {"BG/NBD", &p_bg}});
  std::fprintf(stderr, "wrote %s/predictions.csv, roc.svg\n", args.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = ex::parse_common(argc, argv, "out/intent_conv1d",
                                       "usage: intent_conv1d [options]\n"
                                       "Embedding -> Conv1d -> GlobalMaxPool1d -> Dense: P(repeat purchase).\n");
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intent_conv1d: %s\n", e.what());
    return 2;
  }
}
