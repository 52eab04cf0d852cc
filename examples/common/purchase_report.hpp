// SPDX-License-Identifier: Apache-2.0
// What every purchase example prints and writes after training: the classification report of
// the test customers for the model and its two baselines (BG/NBD, the RFM logistic regression),
// the bootstrap intervals of the ROC-AUC differences, DIR/predictions.csv, DIR/roc.svg, and the
// saved model (DIR/<name>.uvpm), reloaded and checked.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "auc_difference.hpp"
#include "cdnow_sequences.hpp"
#include "example_cli.hpp"
#include "rfm_baseline.hpp"
#include "sequence_data.hpp"
#include "uvp/core/random.hpp"
#include "uvp/io/file.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/nn/model_file.hpp"
#include "uvp/training/fit_options.hpp"
#include "uvp/training/predict.hpp"

namespace uvp_examples {

/// roc_auc, pr_auc, f1 (threshold 0.5) and log_loss of probabilities p for labels y, printed as
/// `<prefix>roc_auc: ...`; returns the ROC-AUC.
inline double print_classification(const std::string& prefix, const uvp::Vector<double>& y,
                                   const uvp::Vector<double>& p) {
  const auto ys = uvp::as_span(y), ps = uvp::as_span(p);
  uvp::Vector<double> hard(p.size());
  for (index i = 0; i < p.size(); ++i) hard[i] = p[i] >= 0.5 ? 1.0 : 0.0;
  const double auc = uvp::roc_auc<double>(ys, ps);
  std::printf("%sroc_auc: %.4f\n", prefix.c_str(), auc);
  std::printf("%spr_auc: %.4f\n", prefix.c_str(), uvp::pr_auc<double>(ys, ps));
  std::printf("%sf1: %.4f\n", prefix.c_str(), uvp::f1_score<double>(ys, uvp::as_span(hard)));
  std::printf("%slog_loss: %.4f\n", prefix.c_str(), uvp::log_loss<double>(ys, ps));
  return auc;
}

/// ROC curves of several scorers on the same labels, one SVG.
inline void save_roc(const std::string& path, const std::string& title, const uvp::Vector<double>& y,
                     const std::vector<std::pair<std::string, const uvp::Vector<double>*>>& scorers) {
  uvp::SvgPlot plot(title, "false positive rate", "true positive rate");
  plot.x_range(0, 1).y_range(0, 1);
  for (const auto& [name, p] : scorers) {
    const auto roc = uvp::roc_curve<double>(uvp::as_span(y), uvp::as_span(*p));
    char label[160];
    std::snprintf(label, sizeof label, "%s (AUC %.3f)", name.c_str(),
                  uvp::roc_auc<double>(uvp::as_span(y), uvp::as_span(*p)));
    plot.add_line(uvp::Span<const double>(roc.fpr.data(), index(roc.fpr.size())),
                  uvp::Span<const double>(roc.tpr.data(), index(roc.tpr.size())), label);
  }
  plot.add_diagonal("chance").save(path);
}

/// DIR/predictions.csv for the test customers: id, label, model probability, BG/NBD probability
/// and, when given, the RFM logistic regression's.
inline void save_purchase_predictions(const std::string& path, const CdnowDataset& ds,
                                      const uvp::Vector<double>& p_model, const uvp::Vector<double>& p_bgnbd,
                                      const uvp::Vector<double>* p_rfm = nullptr) {
  std::vector<std::string> rows;
  char buf[160];
  for (std::size_t k = 0; k < ds.test.size(); ++k) {
    const index c = ds.test[k];
    int n = std::snprintf(buf, sizeof buf, ",%.0f,%.6f,%.6f", ds.label[c], p_model[index(k)], p_bgnbd[index(k)]);
    if (p_rfm) std::snprintf(buf + n, sizeof buf - std::size_t(n), ",%.6f", (*p_rfm)[index(k)]);
    rows.push_back(ds.id[std::size_t(c)] + buf);
  }
  write_csv(path, std::string("customer_id,bought_in_holdout,p_model,p_bgnbd") + (p_rfm ? ",p_rfm_logreg" : ""),
            rows);
}

/// A model's P(repeat purchase) for the given customers (uvp::predict_proba, in eval mode).
template <class Model>
uvp::Vector<double> predict_purchase(const Model& model, const CdnowDataset& ds, const std::vector<index>& customers) {
  const SequenceSet s = sequence_set(ds, customers);
  return uvp::predict_proba(model, s.inputs()).col(0).template cast<double>();
}

/// A composed model's architecture as text, one line per block: `lstm Lstm(input_size 32,
/// hidden_size 64, num_layers 1)`, a composite's children in brackets.
inline std::string spec_text(const uvp::nn::BlockSpec& s) {
  std::string t = s.kind + "(";
  for (std::size_t i = 0; i < s.args.size(); ++i)
    t += (i ? ", " : "") + s.args[i].first + " " + uvp::detail::str(s.args[i].second);
  t += ")";
  if (!s.children.empty()) {
    t += " [";
    for (std::size_t i = 0; i < s.children.size(); ++i) t += (i ? ", " : "") + spec_text(s.children[i]);
    t += "]";
  }
  return t;
}
/// A composed model's architecture on one line: `embedding Embedding(...) -> lstm Lstm(...) -> ...`.
template <class Model>
std::string architecture_text(const Model& model) {
  std::string t;
  for (const auto& [name, spec] : model.architecture()) t += (t.empty() ? "" : " -> ") + name + " " + spec_text(spec);
  return t;
}

/// How a purchase example reports (the model's label in the ROC plot, its metric printer).
struct PurchaseReportOptions {
  std::string name;         ///< the model file: DIR/<name>.uvpm
  std::string label;        ///< the model's curve in roc.svg
  /// Prints a scorer's metric lines with a prefix ("", "bgnbd_", "rfm_logreg_").
  void (*print)(const std::string&, const uvp::Vector<double>&, const uvp::Vector<double>&) =
      [](const std::string& prefix, const uvp::Vector<double>& y, const uvp::Vector<double>& p) {
        print_classification(prefix, y, p);
      };
};

/// Everything after training: fits the BG/NBD and RFM logistic-regression baselines (train +
/// validation customers), prints
///
///   parameters, epochs_run, best_epoch, validation_roc_auc        (from the fit)
///   roc_auc ... (the model), bgnbd_..., rfm_logreg_...            (test customers)
///   vs_bgnbd_roc_auc_diff(_ci95), vs_rfm_logreg_roc_auc_diff(_ci95)
///   reload_max_abs_diff: 0
///
/// writes DIR/predictions.csv, DIR/roc.svg, saves the model (DIR/<name>.uvpm: weights and
/// architecture, all a server needs with examples/common's vocabulary) and loads it into make(rng) (a model initialised from another
/// seed) to check it predicts the same.
template <class Model, class Make>
void report_purchase_model(const Model& model, const uvp::FitResult& fit, const CdnowDataset& ds,
                           const CommonArgs& args, const PurchaseReportOptions& ro, Make make) {
  const BgNbdBaseline base = fit_bgnbd_baseline(ds);
  const RfmLogreg rfm = fit_rfm_logreg(ds, args.seed);
  const uvp::Vector<double> y_test = uvp::take(ds.label, uvp::as_span(ds.test));
  const uvp::Vector<double> p_model = predict_purchase(model, ds, ds.test);
  const uvp::Vector<double> p_bg = uvp::take(base.p_repeat, uvp::as_span(ds.test));
  const uvp::Vector<double> p_rfm = uvp::take(rfm.p_repeat, uvp::as_span(ds.test));
  std::printf("parameters: %ld\n", long(model.parameter_count()));
  std::printf("epochs_run: %ld\nbest_epoch: %ld\nvalidation_roc_auc: %.4f\n", long(fit.epochs_run),
              long(fit.best_epoch), fit.best_score);
  if (fit.diverged) std::printf("diverged: %s\n", fit.message.c_str());
  ro.print("", y_test, p_model);
  ro.print("bgnbd_", y_test, p_bg);
  ro.print("rfm_logreg_", y_test, p_rfm);
  print_auc_difference("vs_bgnbd_", y_test, p_model, p_bg, args.seed);
  print_auc_difference("vs_rfm_logreg_", y_test, p_model, p_rfm, args.seed);

  // Save, then load into a model initialised from another seed and check it predicts the same.
  std::filesystem::create_directories(args.out);
  const std::string weights = args.out + "/" + ro.name + ".uvpm";
  uvp::nn::save(weights, model);
  std::printf("architecture: %s\n", architecture_text(model).c_str());
  uvp::Rng other(args.seed + 1000);
  auto reloaded = make(other);
  uvp::nn::load(weights, reloaded);
  reloaded.eval();
  const uvp::Vector<double> p_reloaded = predict_purchase(reloaded, ds, ds.test);
  std::printf("reload_max_abs_diff: %.3g\n", (p_reloaded - p_model).cwiseAbs().maxCoeff());

  save_purchase_predictions(args.out + "/predictions.csv", ds, p_model, p_bg, &p_rfm);
  save_roc(args.out + "/roc.svg", "Repeat purchase in the holdout: ROC on the test customers", y_test,
           {{ro.label, &p_model}, {"BG/NBD", &p_bg}, {"RFM logistic regression", &p_rfm}});
  std::fprintf(stderr, "wrote %s/predictions.csv, roc.svg, %s.uvpm\n", args.out.c_str(), ro.name.c_str());
}

}  // namespace uvp_examples
