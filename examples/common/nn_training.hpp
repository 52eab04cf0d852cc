// SPDX-License-Identifier: Apache-2.0
// Small training-loop helpers shared by the neural CDNOW examples: keeping the best weights of a
// whole BlockList for early stopping, and the classification report / ROC plot / predictions
// file every purchase example prints and writes.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cdnow_sequences.hpp"
#include "example_cli.hpp"
#include "uvp/core/random.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/optim/adam.hpp"

namespace uvp_examples {

/// Early stopping over a whole model: uvp::EarlyStopping keeps one flat buffer, a BlockList has
/// one per block, so the best weights are copied block by block.
template <class T>
class BestWeights {
 public:
  BestWeights(const uvp::nn::BlockList<T>& model, bool higher_is_better, index patience)
      : model_(model), higher_(higher_is_better), patience_(patience) {}

  /// Records this epoch's validation score; returns whether training should go on.
  bool update(double score) {
    ++epoch_;
    if (std::isfinite(score) && (best_epoch_ == 0 || (higher_ ? score > best_ : score < best_))) {
      best_ = score, best_epoch_ = epoch_;
      saved_.clear();
      for (const auto& e : model_.entries()) {
        const auto v = e.block->parameters().values();
        saved_.emplace_back(v.begin(), v.end());
      }
    }
    return epoch_ - best_epoch_ < patience_;
  }
  void restore() const {
    if (best_epoch_ == 0) return;
    std::size_t k = 0;
    for (const auto& e : model_.entries()) {
      auto v = e.block->parameters().values();
      std::copy(saved_[k].begin(), saved_[k].end(), v.begin());
      ++k;
    }
  }
  double best_score() const noexcept { return best_; }
  index best_epoch() const noexcept { return best_epoch_; }
  index epochs_run() const noexcept { return epoch_; }

 private:
  const uvp::nn::BlockList<T>& model_;
  bool higher_;
  index patience_;
  index epoch_ = 0, best_epoch_ = 0;
  double best_ = 0;
  std::vector<std::vector<T>> saved_;
};

struct TrainOptions {
  index epochs = 60;
  index batch = 64;
  index patience = 10;  ///< epochs without a better validation ROC-AUC before stopping
  double lr = 1e-3;  // chosen on the validation split (3e-3 peaks after 3-4 epochs, same AUC)
  double weight_decay = 0;
  std::uint64_t seed = 42;
};

struct TrainReport {
  index epochs_run = 0, best_epoch = 0;
  double best_validation_auc = 0;
};

/// A model's P(repeat purchase) for the given customers, in batches: model.forward(ids, lengths,
/// batch, logits) fills `batch` logits (see train_purchase_model).
template <class Model>
uvp::Vector<double> predict_purchase(Model& model, const CdnowDataset& ds, const std::vector<index>& customers,
                                     index batch = 256) {
  uvp::Vector<double> p(index(customers.size()));
  std::vector<index> ids, lengths;
  uvp::Vector<float> logits;
  for (index s = 0; s < index(customers.size()); s += batch) {
    const index m = std::min(batch, index(customers.size()) - s);
    gather_batch(ds, customers.data() + s, m, ids, lengths);
    logits.resize(m);
    model.forward(ids, lengths, m, logits);
    for (index b = 0; b < m; ++b) p[s + b] = 1.0 / (1.0 + std::exp(-double(logits[b])));
  }
  return p;
}

/// Minibatch training of a purchase classifier on ds.train with BCE-with-logits and Adam,
/// keeping the weights of the epoch with the best ROC-AUC on ds.validation. Model:
///   uvp::nn::BlockList<float> blocks();
///   void forward(const std::vector<index>& ids, const std::vector<index>& lengths, index batch,
///                uvp::Vector<float>& logits);   // ids: batch * max_len, row-major; saves activations
///   void backward(const uvp::Vector<float>& d_logits);  // accumulates parameter gradients
/// Progress goes to stderr, one line per epoch.
template <class Model>
TrainReport train_purchase_model(Model& model, const CdnowDataset& ds, const TrainOptions& o) {
  uvp::nn::BlockList<float> blocks = model.blocks();
  uvp::AdamOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = o.weight_decay;
  ao.decoupled_weight_decay = o.weight_decay > 0;
  uvp::Adam<float> adam(ao);
  BestWeights<float> best(blocks, /*higher_is_better=*/true, o.patience);
  const uvp::Vector<double> y_val = uvp::take(ds.label, uvp::as_span(ds.validation));
  std::vector<index> order = ds.train, ids, lengths;
  uvp::Vector<float> logits, targets, grad;
  uvp::Rng rng(o.seed + 7);
  for (index epoch = 1; epoch <= o.epochs; ++epoch) {
    blocks.train();
    rng.shuffle(order.begin(), order.end());
    double loss = 0;
    for (index s = 0; s < index(order.size()); s += o.batch) {
      const index m = std::min(o.batch, index(order.size()) - s);
      gather_batch(ds, order.data() + s, m, ids, lengths);
      logits.resize(m), targets.resize(m), grad.resize(m);
      for (index b = 0; b < m; ++b) targets[b] = float(ds.label[order[std::size_t(s + b)]]);
      model.forward(ids, lengths, m, logits);
      blocks.zero_grad();
      loss += double(m) * uvp::bce_with_logits<float>(uvp::as_span(logits), uvp::as_span(targets), uvp::as_span(grad));
      model.backward(grad);
      uvp::nn::step(adam, blocks);
    }
    blocks.eval();
    const double auc = uvp::roc_auc<double>(uvp::as_span(y_val),
                                            uvp::as_span(predict_purchase(model, ds, ds.validation)));
    std::fprintf(stderr, "epoch %3ld  train_bce %.4f  val_roc_auc %.4f\n", long(epoch), loss / double(order.size()),
                 auc);
    if (!best.update(auc)) break;
  }
  best.restore();
  blocks.eval();
  return {best.epochs_run(), best.best_epoch(), best.best_score()};
}

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

/// DIR/predictions.csv for the test customers: id, label, model probability, BG/NBD probability.
inline void save_purchase_predictions(const std::string& path, const CdnowDataset& ds,
                                      const uvp::Vector<double>& p_model, const uvp::Vector<double>& p_bgnbd) {
  std::vector<std::string> rows;
  char buf[128];
  for (std::size_t k = 0; k < ds.test.size(); ++k) {
    const index c = ds.test[k];
    std::snprintf(buf, sizeof buf, ",%.0f,%.6f,%.6f", ds.label[c], p_model[index(k)], p_bgnbd[index(k)]);
    rows.push_back(ds.id[std::size_t(c)] + buf);
  }
  write_csv(path, "customer_id,bought_in_holdout,p_model,p_bgnbd", rows);
}

}  // namespace uvp_examples
