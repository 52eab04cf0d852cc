// SPDX-License-Identifier: Apache-2.0
// Customers of a CdnowDataset as uvp::SequenceData (what uvp::fit and uvp::predict read), and the
// training settings the purchase examples share: BCE-with-logits, validation ROC-AUC, early
// stopping, a progress line on stderr.
#pragma once

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cdnow_sequences.hpp"
#include "example_cli.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/fit.hpp"
#include "uvp/training/training_data.hpp"

namespace uvp_examples {

/// Some customers' token sequences (rows of ds.tokens, each ds.max_len ids, padded with 0), their
/// lengths and labels, owned here; data() is a view of them, valid while this object lives (and
/// is not moved).
struct SequenceSet {
  std::vector<index> ids, lengths;
  uvp::Vector<float> y;
  index steps = 0;

  uvp::SequenceData<float> data() const {
    return uvp::SequenceData<float>(uvp::as_span(ids), steps, uvp::as_span(lengths), y);
  }
  /// The sequences without the labels (for uvp::predict).
  uvp::SequenceData<float> inputs() const {
    return uvp::SequenceData<float>(uvp::as_span(ids), steps, uvp::as_span(lengths));
  }
};

/// The given customers of ds, in that order.
inline SequenceSet sequence_set(const CdnowDataset& ds, const std::vector<index>& customers) {
  SequenceSet s;
  s.steps = ds.max_len;
  gather_batch(ds, customers.data(), index(customers.size()), s.ids, s.lengths);
  s.y.resize(index(customers.size()));
  for (std::size_t k = 0; k < customers.size(); ++k) s.y[index(k)] = float(ds.label[customers[k]]);
  return s;
}

/// ROC-AUC of logits (or probabilities: the ranking is the same) against 0/1 labels, as
/// uvp::TrainOptions::metric takes it.
inline double roc_auc_metric(uvp::ConstMatrixView<float> y, uvp::ConstMatrixView<float> logits) {
  return uvp::roc_auc<float>(uvp::Span<const float>(y.data(), y.size()),
                             uvp::Span<const float>(logits.data(), logits.size()));
}

/// The purchase examples' training settings: at most `epochs` epochs of minibatches of `batch`
/// (--epochs, --batch and --patience override the example's values), seeded by --seed, scored
/// by ROC-AUC on `validation` after every epoch, stopping once it has not improved for
/// `patience` epochs and restoring the best epoch's weights; a progress line per epoch on stderr.
inline uvp::TrainOptions<uvp::SequenceData<float>> purchase_train_options(const SequenceSet& validation,
                                                                         const CommonArgs& args, index epochs,
                                                                         index patience, index batch = 64) {
  uvp::TrainOptions<uvp::SequenceData<float>> o;
  o.epochs = args.epochs > 0 ? args.epochs : epochs;
  o.batch_size = args.batch > 0 ? args.batch : batch;
  o.seed = args.seed + 7;
  o.patience = args.patience > 0 ? args.patience : patience;
  o.validation = validation.data();
  o.metric = roc_auc_metric;
  o.metric_name = "roc_auc";
  o.progress = stderr;
  return o;
}

/// Adam's options for a purchase model: lr, decoupled weight decay (AdamW, Loshchilov & Hutter
/// 2019) when weight_decay > 0 (--lr and --weight-decay override).
inline uvp::AdamOptions purchase_adam(const CommonArgs& args, double lr, double weight_decay = 0) {
  uvp::AdamOptions ao;
  ao.lr = args.lr > 0 ? args.lr : lr;
  ao.weight_decay = args.weight_decay >= 0 ? args.weight_decay : weight_decay;
  ao.decoupled_weight_decay = ao.weight_decay > 0;
  return ao;
}

}  // namespace uvp_examples
