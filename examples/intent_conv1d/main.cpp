// SPDX-License-Identifier: Apache-2.0
// Repeat-purchase intent from a customer's purchase tokens with a 1-D CNN: will a CDNOW customer
// buy again in the 39-week holdout period?
//
//   ids (batch x L) -> Embedding(85, 32, padding 0) -> Conv1d(32 -> 64, kernel 3, padding 1)
//       -> ReLU -> GlobalMaxPool1d over the valid steps -> Dense(64 -> 1) -> sigmoid
//
// The model is examples/common/purchase_models.hpp's intent_conv1d_model (an nn::Chain), trained
// by uvp::fit: BCE-with-logits, AdamW (weight decay 0.5), minibatches of 256, ROC-AUC on the validation customers
// after every epoch, early stopping with the best epoch's weights restored. Prints the confusion
// matrix at threshold 0.5, accuracy / recall / precision / f1 and roc_auc of the test customers
// for the CNN and its two baselines (BG/NBD, bgnbd_*; the RFM logistic regression,
// rfm_logreg_*), the paired-bootstrap 95 % intervals of the ROC-AUC differences (vs_bgnbd_*,
// vs_rfm_logreg_*), writes DIR/predictions.csv and DIR/roc.svg, and saves the model:
// DIR/intent_conv1d.uvpm (weights and architecture).
//
//   intent_conv1d [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N] [--lr X]
#include <cstdio>
#include <exception>
#include <string>

#include "../common/example_cli.hpp"
#include "../common/purchase_models.hpp"
#include "../common/purchase_report.hpp"
#include "../common/sequence_data.hpp"
#include "uvp/metrics/classification.hpp"

namespace {

using uvp::index;
using uvp::Vector;
namespace ex = uvp_examples;

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

  // The model and its training (lr, patience: chosen on the validation customers, see README.md).
  uvp::Rng rng(args.seed);
  ex::IntentConv1d model = ex::intent_conv1d_model(rng);
  const ex::SequenceSet train = ex::sequence_set(ds, ds.train), validation = ex::sequence_set(ds, ds.validation);
  uvp::Adam<float> adam(ex::purchase_adam(args, /*lr=*/1e-3, /*weight_decay=*/0.5));
  const auto options = ex::purchase_train_options(validation, args, /*epochs=*/40, /*patience=*/6, /*batch=*/256);
  const uvp::FitResult fit = uvp::fit(model, train.data(), uvp::BceWithLogitsLoss<float>(), adam, options);

  ex::PurchaseReportOptions ro;
  ro.name = "intent_conv1d", ro.label = "Conv1d", ro.print = print_threshold_metrics;
  ex::report_purchase_model(model, fit, ds, args, ro, [](uvp::Rng& r) { return ex::intent_conv1d_model(r); });
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
