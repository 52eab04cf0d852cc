// SPDX-License-Identifier: Apache-2.0
// purchase_lstm with the LSTM's training on the GPU (target purchase_lstm_gpu, UVP_WITH_CUDA=ON):
// the same model (purchase_models.hpp's purchase_lstm_model, an nn::Chain holding the weights in
// its one buffer), the same data, report and saved files as main.cpp, but trained by a loop
// wired by hand: the embedding, the head, Adam and the weights stay on the host, the LSTM's
// forward and backward run on the GPU (lstm_gpu.cu: uvp::nn::Lstm<float, uvp::cuda>). Early
// stopping on validation ROC-AUC keeps the best epoch's weights (uvp::EarlyStopping over the
// model's buffer); the report and the checks after training run the model on the host.
// Without a CUDA device it prints "skipped: no CUDA device" and exits 0.
//
//   purchase_lstm_gpu [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N] [--lr X]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

#include "../common/example_cli.hpp"
#include "../common/purchase_models.hpp"
#include "../common/purchase_report.hpp"
#include "../common/sequence_data.hpp"
#include "lstm_gpu.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/early_stopping.hpp"

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;
using S = ex::PurchaseModelSizes;

// The host model's blocks with the LSTM's forward and backward on the GPU.
struct GpuTrainer {
  GpuTrainer(ex::PurchaseLstm& m, index len) : model(m), max_len(len) {}

  ex::PurchaseLstm& model;
  index max_len;
  ex::GpuLstm gpu{S::embed, S::lstm_hidden};  // runs the model's Lstm (its weights and gradients stay on the host)
  std::vector<index> ids;
  Matrix<float> emb, h_last, d_last, d_emb;
  index batch = 0;

  void forward(const std::vector<index>& ids_, const std::vector<index>& lengths, index batch_, Vector<float>& logits) {
    auto& embedding = model.get<0>();
    auto& lstm = model.get<1>();
    auto& head = model.get<3>();
    ids = ids_, batch = batch_;
    emb.resize(batch * max_len, S::embed);
    embedding.forward(uvp::as_span(ids), emb);
    gpu.set_weights(lstm.weight_ih().data(), lstm.weight_hh().data(), lstm.bias_ih().data(), lstm.bias_hh().data());
    h_last.resize(batch, S::lstm_hidden);
    gpu.forward(emb.data(), batch, max_len, lengths.data(), h_last.data());
    head.forward(h_last, uvp::MatrixView<float>(logits.data(), batch, 1));
  }

  void backward(const Vector<float>& d_logits) {
    auto& embedding = model.get<0>();
    auto& lstm = model.get<1>();
    auto& head = model.get<3>();
    d_last.resize(batch, S::lstm_hidden), d_emb.resize(batch * max_len, S::embed);
    head.backward(h_last, uvp::ConstMatrixView<float>(d_logits.data(), batch, 1), d_last);
    const auto grad = [&](const char* name) { return lstm.grads(lstm.tensor(name)).data(); };
    gpu.backward(d_last.data(), d_emb.data(), grad("weight_ih_l0"), grad("weight_hh_l0"), grad("bias_ih_l0"),
                 grad("bias_hh_l0"));
    embedding.backward(uvp::as_span(ids), d_emb);
  }
};

// Minibatch BCE + Adam on ds.train, early stopping on ds.validation's ROC-AUC (scored on the
// host: the model's eval-mode forward).
uvp::FitResult train_on_gpu(ex::PurchaseLstm& model, const ex::CdnowDataset& ds, const ex::CommonArgs& args) {
  // main.cpp's settings (see README.md).
  const index epochs = args.epochs > 0 ? args.epochs : 40, batch_size = args.batch > 0 ? args.batch : 256;
  uvp::Adam<float> adam(ex::purchase_adam(args, /*lr=*/1e-3, /*weight_decay=*/0.5));
  uvp::EarlyStopping<float>::Options eo;
  eo.patience = args.patience > 0 ? args.patience : 6;
  eo.higher_is_better = true;
  uvp::EarlyStopping<float> stop(eo);
  GpuTrainer gpu(model, ds.max_len);
  const Vector<double> y_val = uvp::take(ds.label, uvp::as_span(ds.validation));
  std::vector<index> order = ds.train, ids, lengths;
  Vector<float> logits, targets, grad;
  uvp::Rng rng(args.seed + 7);
  uvp::FitResult r;
  for (index epoch = 1; epoch <= epochs; ++epoch) {
    model.train();
    rng.shuffle(order.begin(), order.end());
    double loss = 0;
    for (index s = 0; s < index(order.size()); s += batch_size) {
      const index m = std::min(batch_size, index(order.size()) - s);
      ex::gather_batch(ds, order.data() + s, m, ids, lengths);
      logits.resize(m), targets.resize(m), grad.resize(m);
      for (index b = 0; b < m; ++b) targets[b] = float(ds.label[order[std::size_t(s + b)]]);
      gpu.forward(ids, lengths, m, logits);
      model.zero_grad();
      loss += double(m) * uvp::bce_with_logits<float>(uvp::as_span(logits), uvp::as_span(targets), uvp::as_span(grad));
      gpu.backward(grad);
      uvp::nn::step(adam, model);
    }
    model.eval();
    const Vector<double> p_val = ex::predict_purchase(model, ds, ds.validation);
    const double auc = uvp::roc_auc<double>(uvp::as_span(y_val), uvp::as_span(p_val));
    std::fprintf(stderr, "epoch %ld/%ld  loss %.4f  val_roc_auc %.4f\n", long(epoch), long(epochs),
                 loss / double(order.size()), auc);
    r.epochs_run = epoch;
    if (!stop.update(auc, model.parameters().values())) break;
  }
  if (stop.has_best()) stop.restore(model.parameters().values()), r.restored_best = true;
  r.best_epoch = stop.best_epoch(), r.best_score = stop.best_score();
  model.eval();
  return r;
}

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);
  uvp::Rng rng(args.seed);
  ex::PurchaseLstm model = ex::purchase_lstm_model(rng);
  const uvp::FitResult fit = train_on_gpu(model, ds, args);
  ex::PurchaseReportOptions ro;
  ro.name = "purchase_lstm", ro.label = "LSTM (trained on the GPU)";
  ex::report_purchase_model(model, fit, ds, args, ro, [](uvp::Rng& r) { return ex::purchase_lstm_model(r); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (!ex::GpuLstm::available()) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  try {
    const auto args = ex::parse_common(argc, argv, "out/purchase_lstm_gpu",
                                       "usage: purchase_lstm_gpu [options]\n"
                                       "Embedding -> LSTM (on the GPU) -> Dense: P(repeat purchase in the holdout "
                                       "window).\n");
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "purchase_lstm_gpu: %s\n", e.what());
    return 2;
  }
}
