// SPDX-License-Identifier: Apache-2.0
// Repeat purchase from the sequence of a customer's purchases, with an LSTM: will a CDNOW
// customer buy again in the 39-week holdout period?
//
//   ids (batch x L) -> Embedding(85, 32, padding 0) -> Lstm(32 -> 64) over the valid steps
//       -> h at the last valid step (GlobalLastPool1d) -> Dense(64 -> 1) -> sigmoid
//
// The model is examples/common/purchase_models.hpp's purchase_lstm_model (an nn::Chain), trained
// by uvp::fit: BCE-with-logits, AdamW (weight decay 0.5), minibatches of 256, ROC-AUC on the validation customers
// after every epoch, early stopping with the best epoch's weights restored. Prints roc_auc,
// pr_auc, f1 and log_loss of the test customers for the LSTM and its two baselines (BG/NBD,
// bgnbd_*; the RFM logistic regression, rfm_logreg_*), the paired-bootstrap 95 % intervals of
// the ROC-AUC differences (vs_bgnbd_*, vs_rfm_logreg_*), writes DIR/predictions.csv and
// DIR/roc.svg, and saves the model for serving:
//
//   DIR/purchase_lstm.uvpm   the model (uvp::nn::save of the Chain: weights and architecture;
//                            blocks "embedding", "lstm", "pool", "head"); examples/serve
//                            rebuilds it from this file alone
//
//   purchase_lstm [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N] [--lr X]
//
// The GPU variant (target purchase_lstm_gpu, UVP_WITH_CUDA=ON) is main_gpu.cpp.
#include <cstdio>
#include <exception>

#include "../common/example_cli.hpp"
#include "../common/purchase_models.hpp"
#include "../common/purchase_report.hpp"
#include "../common/sequence_data.hpp"

namespace {

namespace ex = uvp_examples;

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);

  // The model and its training (lr, patience: chosen on the validation customers, see README.md).
  uvp::Rng rng(args.seed);
  ex::PurchaseLstm model = ex::purchase_lstm_model(rng);
  const ex::SequenceSet train = ex::sequence_set(ds, ds.train), validation = ex::sequence_set(ds, ds.validation);
  uvp::Adam<float> adam(ex::purchase_adam(args, /*lr=*/1e-3, /*weight_decay=*/0.5));
  const auto options = ex::purchase_train_options(validation, args, /*epochs=*/40, /*patience=*/6, /*batch=*/256);
  const uvp::FitResult fit = uvp::fit(model, train.data(), uvp::BceWithLogitsLoss<float>(), adam, options);

  ex::PurchaseReportOptions ro;
  ro.name = "purchase_lstm", ro.label = "LSTM";
  ex::report_purchase_model(model, fit, ds, args, ro, [](uvp::Rng& r) { return ex::purchase_lstm_model(r); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = ex::parse_common(argc, argv, "out/purchase_lstm",
                                       "usage: purchase_lstm [options]\n"
                                       "Embedding -> LSTM -> Dense: P(repeat purchase in the holdout window).\n");
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "purchase_lstm: %s\n", e.what());
    return 2;
  }
}
