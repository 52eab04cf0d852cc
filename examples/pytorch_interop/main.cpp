// SPDX-License-Identifier: Apache-2.0
// PyTorch -> uvp -> PyTorch: the purchase LSTM trained in PyTorch (train_torch.py) is loaded from
// its safetensors file into the same uvp model, reproduces PyTorch's probability of every test
// customer, is fine-tuned by uvp::fit and written back as safetensors for PyTorch.
//
//   ids (batch x 32) -> Embedding(85, 32, padding 0) -> Lstm(32 -> 64) -> h at the last valid step
//       -> Dense(64 -> 1) -> sigmoid
//
// examples/common/purchase_models.hpp's purchase_lstm_model, whose blocks are named as the torch
// module's attributes (embedding, lstm, head), so the file's tensors "embedding.weight",
// "lstm.weight_ih_l0", ..., "head.bias" are the model's tensors (uvp::nn::load_safetensors, strict:
// nothing missing, nothing left over, every shape checked).
//
//   1. load data/torch_model.safetensors (PyTorch's weights), score the test customers and compare
//      with data/torch_test_probabilities.csv (PyTorch's probabilities, written by the same
//      script): prints max_abs_diff_vs_torch and fails (exit 1) above --tolerance (1e-6);
//   2. fine-tune --epochs (2) epochs with uvp::fit (AdamW lr 3e-4, weight decay 0.5, batch 256,
//      the best validation epoch kept) and write DIR/uvp_finetuned.safetensors and
//      DIR/uvp_finetuned_probabilities.csv; `train_torch.py check` loads the file into the torch
//      module (load_state_dict(strict=True)) and compares its probabilities with that CSV.
//
//   pytorch_interop [--torch-model PATH] [--torch-probabilities PATH] [--tolerance X]
//                   [--out DIR] [--epochs N] [--lr X] [--seed S] ...
//   pytorch_interop --export-sequences FILE   the customers, split, labels and tokens, as text,
//                                             for train_torch.py (then exits)
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "../common/example_cli.hpp"
#include "../common/purchase_models.hpp"
#include "../common/purchase_report.hpp"
#include "../common/sequence_data.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/file.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/nn/safetensors_model.hpp"

#ifndef UVP_INTEROP_DATA_DIR
#define UVP_INTEROP_DATA_DIR "examples/pytorch_interop/data"
#endif

namespace {

namespace ex = uvp_examples;
using uvp::index;

struct InteropArgs {
  std::string torch_model = std::string(UVP_INTEROP_DATA_DIR) + "/torch_model.safetensors";
  std::string torch_probabilities = std::string(UVP_INTEROP_DATA_DIR) + "/torch_test_probabilities.csv";
  std::string export_sequences;
  double tolerance = 1e-6;
};

/// The data set as train_torch.py reads it: a few `key value` lines, then one line per customer
/// `split customer_id label token...` (the valid tokens only: oldest purchase first, END last).
void export_sequences(const std::string& path, const ex::CdnowDataset& ds) {
  std::string text = "uvp_sequences 1\nvocabulary_size " + std::to_string(ex::Vocabulary::size) +
                     "\nmax_len " + std::to_string(ds.max_len) + "\npadding_id " +
                     std::to_string(ex::Vocabulary::padding) + "\n";
  const std::pair<const char*, const std::vector<index>*> parts[] = {
      {"train", &ds.train}, {"validation", &ds.validation}, {"test", &ds.test}};
  for (const auto& [split, customers] : parts)
    for (const index c : *customers) {
      text += std::string(split) + " " + ds.id[std::size_t(c)] + (ds.label[c] > 0 ? " 1" : " 0");
      for (index t = 0; t < ds.lengths[std::size_t(c)]; ++t)
        text += " " + std::to_string(ds.tokens[std::size_t(c * ds.max_len + t)]);
      text += "\n";
    }
  uvp::write_file_atomic(path, text, "--export-sequences");
  std::printf("exported_customers: %lld\n", static_cast<long long>(ds.size()));
  std::fprintf(stderr, "wrote %s\n", path.c_str());
}

/// PyTorch's probabilities of the test customers (customer_id, p_torch), checked to be those
/// customers in that order: a file written for another log, seed or split is refused.
uvp::Vector<double> read_torch_probabilities(const std::string& path, const ex::CdnowDataset& ds) {
  constexpr const char* where = "read_torch_probabilities";
  const uvp::CsvTable t = uvp::read_csv(path);
  const auto ids = t.column("customer_id");
  const uvp::Vector<double> p = t.numeric_column<double>("p_torch");
  if (t.rows() != index(ds.test.size()))
    uvp::detail::raise<uvp::invalid_argument>(where, ": ", uvp::detail::quoted_path(path), " has ", t.rows(),
                                              " rows, expected one per test customer (", ds.test.size(),
                                              "): was it written for another --data or --seed?");
  for (index k = 0; k < t.rows(); ++k) {
    const std::string& want = ds.id[std::size_t(ds.test[std::size_t(k)])];
    if (ids[std::size_t(k)] != want)
      uvp::detail::raise<uvp::invalid_argument>(where, ": ", t.location(k, t.column_index("customer_id")),
                                                ": customer '", uvp::detail::printable(ids[std::size_t(k)]),
                                                "', expected test customer '", want, "' (the export's order)");
    if (!(p[k] >= 0 && p[k] <= 1))
      uvp::detail::raise<uvp::invalid_argument>(where, ": ", t.location(k, t.column_index("p_torch")),
                                                ": p_torch = ", p[k], " is not a probability");
  }
  return p;
}

/// DIR/uvp_finetuned_probabilities.csv: every float written exactly (9 significant digits).
void save_probabilities(const std::string& path, const ex::CdnowDataset& ds, const uvp::Vector<double>& p) {
  std::vector<std::string> rows;
  char buf[64];
  for (std::size_t k = 0; k < ds.test.size(); ++k) {
    const index c = ds.test[k];
    std::snprintf(buf, sizeof buf, ",%.0f,%.9g", ds.label[c], p[index(k)]);
    rows.push_back(ds.id[std::size_t(c)] + buf);
  }
  ex::write_csv(path, "customer_id,label,p_uvp", rows);
}

double test_auc(const ex::CdnowDataset& ds, const uvp::Vector<double>& p) {
  const uvp::Vector<double> y = uvp::take(ds.label, uvp::as_span(ds.test));
  return uvp::roc_auc<double>(uvp::as_span(y), uvp::as_span(p));
}

int run(const ex::CommonArgs& args, const InteropArgs& io) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  if (!io.export_sequences.empty()) {
    export_sequences(io.export_sequences, ds);
    return 0;
  }
  ex::print_dataset(ds);
  bool ok = true;

  // 1. PyTorch's weights into the uvp model (initialised from the seed first, then overwritten).
  uvp::Rng rng(args.seed);
  ex::PurchaseLstm model = ex::purchase_lstm_model(rng);
  const uvp::nn::SafetensorsLoadReport loaded = uvp::nn::load_safetensors(io.torch_model, model);
  model.eval();
  std::printf("architecture: %s\n", ex::architecture_text(model).c_str());
  std::printf("parameters: %ld\nloaded_tensors: %zu\n", long(model.parameter_count()), loaded.loaded.size());
  const uvp::Vector<double> p_torch = read_torch_probabilities(io.torch_probabilities, ds);
  const uvp::Vector<double> p_uvp = ex::predict_purchase(model, ds, ds.test);
  const double diff = (p_uvp - p_torch).cwiseAbs().maxCoeff();
  std::printf("max_abs_diff_vs_torch: %.3g\n", diff);
  std::printf("torch_test_roc_auc: %.4f\nroc_auc: %.4f\n", test_auc(ds, p_torch), test_auc(ds, p_uvp));
  if (!(diff <= io.tolerance)) {
    std::fprintf(stderr, "pytorch_interop: max_abs_diff_vs_torch %.3g is above the tolerance %.3g\n", diff,
                 io.tolerance);
    ok = false;
  }

  // 2. Fine-tune with uvp::fit (a lower learning rate than training from scratch), export.
  const ex::SequenceSet train = ex::sequence_set(ds, ds.train), validation = ex::sequence_set(ds, ds.validation);
  uvp::Adam<float> adam(ex::purchase_adam(args, /*lr=*/3e-4, /*weight_decay=*/0.5));
  const auto options = ex::purchase_train_options(validation, args, /*epochs=*/2, /*patience=*/2, /*batch=*/256);
  const uvp::FitResult fit = uvp::fit(model, train.data(), uvp::BceWithLogitsLoss<float>(), adam, options);
  model.eval();
  const uvp::Vector<double> p_tuned = ex::predict_purchase(model, ds, ds.test);
  std::printf("finetune_epochs_run: %ld\nfinetune_best_epoch: %ld\nfinetune_validation_roc_auc: %.4f\n",
              long(fit.epochs_run), long(fit.best_epoch), fit.best_score);
  if (fit.diverged) std::printf("diverged: %s\n", fit.message.c_str()), ok = false;
  std::printf("finetuned_test_roc_auc: %.4f\n", test_auc(ds, p_tuned));

  std::filesystem::create_directories(args.out);
  const std::string tuned_path = args.out + "/uvp_finetuned.safetensors";
  uvp::nn::save_safetensors(tuned_path, model, {{"format", "pt"}, {"producer", "uvp examples/pytorch_interop"}});
  save_probabilities(args.out + "/uvp_finetuned_probabilities.csv", ds, p_tuned);

  // The exported file, loaded into a model initialised from another seed, predicts the same.
  uvp::Rng other(args.seed + 1000);
  ex::PurchaseLstm reloaded = ex::purchase_lstm_model(other);
  uvp::nn::load_safetensors(tuned_path, reloaded);
  reloaded.eval();
  const double reload_diff = (ex::predict_purchase(reloaded, ds, ds.test) - p_tuned).cwiseAbs().maxCoeff();
  std::printf("finetuned_reload_max_abs_diff: %.3g\n", reload_diff);
  if (reload_diff != 0) ok = false;
  std::fprintf(stderr, "wrote %s/uvp_finetuned.safetensors, uvp_finetuned_probabilities.csv\n", args.out.c_str());
  std::printf("checks: %s\n", ok ? "passed" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    InteropArgs io;
    const auto args = ex::parse_common(
        argc, argv, "out/pytorch_interop",
        "usage: pytorch_interop [options]\n"
        "The purchase LSTM trained in PyTorch: load its safetensors file, reproduce its test\n"
        "probabilities, fine-tune with uvp::fit, export safetensors for PyTorch.\n"
        "  --torch-model PATH          PyTorch's weights (default: the committed\n"
        "                              examples/pytorch_interop/data/torch_model.safetensors)\n"
        "  --torch-probabilities PATH  PyTorch's test probabilities, CSV customer_id,label,p_torch\n"
        "                              (default: data/torch_test_probabilities.csv next to it)\n"
        "  --tolerance X               largest accepted |p_uvp - p_torch| (1e-6)\n"
        "  --export-sequences FILE     write the customers' split, label and tokens for\n"
        "                              train_torch.py, then exit\n"
        "  --epochs N                  fine-tuning epochs (2)\n",
        [&](const std::string& key, const std::function<std::string()>& value) {
          if (key == "--torch-model") io.torch_model = value();
          else if (key == "--torch-probabilities") io.torch_probabilities = value();
          else if (key == "--export-sequences") io.export_sequences = value();
          else if (key == "--tolerance") io.tolerance = ex::parse_at_least(key, value(), 0.0);
          else return false;
          return true;
        });
    return run(args, io);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pytorch_interop: %s\n", e.what());
    return 2;
  }
}
