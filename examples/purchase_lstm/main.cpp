// SPDX-License-Identifier: Apache-2.0
// Repeat purchase from the sequence of a customer's purchases, with an LSTM: will a CDNOW
// customer buy again in the 39-week holdout period?
//
//   ids (batch x L) -> Embedding(85, 32, padding 0) -> Lstm(32 -> 64) over the valid steps
//       -> h at the last valid step -> Dense(64 -> 1) -> sigmoid
//
// Trained with BCE-with-logits and Adam, early stopping on validation ROC-AUC. Prints roc_auc,
// pr_auc, f1 and log_loss of the test customers for the LSTM and for the BG/NBD baseline, writes
// DIR/predictions.csv and DIR/roc.svg, and saves the model for serving:
//
//   DIR/purchase_lstm.uvpm   the weights (uvp::nn::save; entries "embedding", "lstm", "head")
//   DIR/purchase_lstm.txt    what a server needs to rebuild the model and the token sequences
//
//   purchase_lstm [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N]
//
// Built with UVP_EXAMPLE_LSTM_CUDA=1 (target purchase_lstm_gpu, UVP_WITH_CUDA=ON), the LSTM's
// forward and backward run on the GPU (lstm_gpu.cu: uvp::nn::Lstm<float, uvp::cuda>); the
// embedding, the head, Adam and the weights stay on the host, so training, early stopping and
// the saved model are the same code. Without a CUDA device that build prints
// "skipped: no CUDA device" and exits 0.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "../common/example_cli.hpp"
#include "../common/nn_training.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/serialize.hpp"
#if defined(UVP_EXAMPLE_LSTM_CUDA)
#include "lstm_gpu.hpp"
#endif

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;

constexpr index kEmbed = 32, kHidden = 64;

struct LstmModel {
  index max_len;
  uvp::nn::Embedding<float> embedding;
  uvp::nn::Lstm<float> lstm;
  uvp::nn::Dense<float> head;
  // What the last forward saved for backward.
  uvp::nn::Lstm<float>::Context lstm_ctx;
  std::vector<index> ids;
  Matrix<float> emb, d_last, d_emb;
  index batch = 0;
#if defined(UVP_EXAMPLE_LSTM_CUDA)
  ex::GpuLstm gpu{kEmbed, kHidden};  // runs `lstm` (its weights and gradients stay here)
  Matrix<float> h_last;
#endif

  LstmModel(index max_len_, uvp::Rng& rng)
      : max_len(max_len_),
        embedding(ex::Vocabulary::size, kEmbed, rng, ex::Vocabulary::padding),
        lstm(kEmbed, kHidden, rng),
        head(kHidden, 1, rng) {}

  uvp::nn::BlockList<float> blocks() {
    return uvp::nn::blocks<float>("embedding", embedding, "lstm", lstm, "head", head);
  }

  void forward(const std::vector<index>& ids_, const std::vector<index>& lengths, index batch_, Vector<float>& logits) {
    ids = ids_, batch = batch_;
    emb.resize(batch * max_len, kEmbed);
    embedding.forward(uvp::as_span(ids), emb);
#if defined(UVP_EXAMPLE_LSTM_CUDA)
    gpu.set_weights(lstm.weight_ih().data(), lstm.weight_hh().data(), lstm.bias_ih().data(), lstm.bias_hh().data());
    h_last.resize(batch, kHidden);
    gpu.forward(emb.data(), batch, max_len, lengths.data(), h_last.data());
    head.forward(h_last, uvp::MatrixView<float>(logits.data(), batch, 1));
#else
    lstm.forward(emb, batch, max_len, uvp::as_span(lengths), lstm_ctx);
    head.forward(lstm_ctx.last_hidden(), uvp::MatrixView<float>(logits.data(), batch, 1));
#endif
  }

  void backward(const Vector<float>& d_logits) {
    d_last.resize(batch, kHidden), d_emb.resize(batch * max_len, kEmbed);
#if defined(UVP_EXAMPLE_LSTM_CUDA)
    head.backward(h_last, uvp::ConstMatrixView<float>(d_logits.data(), batch, 1), d_last);
    const auto grad = [&](const char* name) { return lstm.grads(lstm.tensor(name)).data(); };
    gpu.backward(d_last.data(), d_emb.data(), grad("weight_ih_l0"), grad("weight_hh_l0"), grad("bias_ih_l0"),
                 grad("bias_hh_l0"));
#else
    head.backward(lstm_ctx.last_hidden(), uvp::ConstMatrixView<float>(d_logits.data(), batch, 1), d_last);
    lstm.backward(emb, Matrix<float>(), d_last, d_emb, lstm_ctx);  // no gradient on the other outputs
#endif
    embedding.backward(uvp::as_span(ids), d_emb);
  }
};

// The settings a server needs next to the weights: architecture, sequence layout, vocabulary.
std::string model_card(const ex::CommonArgs& args, index max_len) {
  std::string s = "# purchase_lstm model settings (key value); weights in purchase_lstm.uvpm\n";
  s += "format uvp::nn::save float32\n";
  s += "entries embedding lstm head\n";
  s += "embedding uvp::nn::Embedding<float>(85, 32, padding_idx 0)\n";
  s += "lstm uvp::nn::Lstm<float>(32, 64)\n";
  s += "head uvp::nn::Dense<float>(64, 1)\n";
  s += "output sigmoid(head(last_hidden)) = P(purchase in the next " + std::string("holdout window") + ")\n";
  s += "max_len " + std::to_string(max_len) + "\n";
  s += "calibration_end " + args.calibration_end + "\n";
  s += "holdout_end " + args.holdout_end + "\n";
  s += ex::Vocabulary::describe();
  return s;
}

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);

  const ex::BgNbdBaseline base = ex::fit_bgnbd_baseline(ds);

  uvp::Rng rng(args.seed);
  LstmModel model(ds.max_len, rng);
  ex::TrainOptions to;
  if (args.epochs > 0) to.epochs = args.epochs;
  to.seed = args.seed;
  if (args.lr > 0) to.lr = args.lr;
  const ex::TrainReport rep = ex::train_purchase_model(model, ds, to);

  const Vector<double> y_test = uvp::take(ds.label, uvp::as_span(ds.test));
  const Vector<double> p_lstm = ex::predict_purchase(model, ds, ds.test);
  const Vector<double> p_bg = uvp::take(base.p_repeat, uvp::as_span(ds.test));
  std::printf("parameters: %ld\n", long(model.blocks().parameter_count()));
  std::printf("epochs_run: %ld\nbest_epoch: %ld\nvalidation_roc_auc: %.4f\n", long(rep.epochs_run),
              long(rep.best_epoch), rep.best_validation_auc);
  ex::print_classification("", y_test, p_lstm);
  ex::print_classification("bgnbd_", y_test, p_bg);

  // Save, then load into a freshly initialised model and check it predicts the same.
  std::filesystem::create_directories(args.out);
  const std::string weights = args.out + "/purchase_lstm.uvpm";
  uvp::nn::save(weights, model.blocks());
  uvp::write_file_atomic(args.out + "/purchase_lstm.txt", model_card(args, ds.max_len), "purchase_lstm");
  uvp::Rng other(args.seed + 1000);
  LstmModel reloaded(ds.max_len, other);
  uvp::nn::load(weights, reloaded.blocks());
  const Vector<double> p_reloaded = ex::predict_purchase(reloaded, ds, ds.test);
  std::printf("reload_max_abs_diff: %.3g\n", (p_reloaded - p_lstm).cwiseAbs().maxCoeff());

  ex::save_purchase_predictions(args.out + "/predictions.csv", ds, p_lstm, p_bg);
  ex::save_roc(args.out + "/roc.svg", "Repeat purchase in the holdout: ROC on the test customers", y_test,
               {{"LSTM", &p_lstm}, {"BG/NBD", &p_bg}});
  std::fprintf(stderr, "wrote %s/predictions.csv, roc.svg, purchase_lstm.uvpm, purchase_lstm.txt\n",
               args.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(UVP_EXAMPLE_LSTM_CUDA)
  if (!ex::GpuLstm::available()) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
#endif
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
