// SPDX-License-Identifier: Apache-2.0
// Early stopping on a validation metric, with the best parameters kept and restorable.
#pragma once

#include <cmath>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// Tracks a validation score epoch by epoch (what uvp::fit does with options.patience > 0; use it
/// directly with a loop of your own or a callback). `update` returns false once the score has not
/// improved by more than `min_delta` for `patience` consecutive epochs; it keeps a copy of the
/// parameters at the best score, which `restore` writes back. Works with any model, since every
/// model's parameters are one flat buffer.
///
///   uvp::EarlyStopping<float>::Options eo;
///   eo.patience = 3;
///   uvp::EarlyStopping<float> stop(eo);
///   model.fit(X, y, opt, opts, [&](const uvp::EpochReport&) {
///     return stop.update(uvp::roc_auc(yv, model.predict_proba(Xv)), model.parameters().values());
///   });
///   stop.restore(model.parameters().values());
template <class T>
class EarlyStopping {
 public:
  struct Options {
    index patience = 5;
    double min_delta = 0.0;
    bool higher_is_better = true;  ///< true for AUC / accuracy, false for a loss
  };

  explicit EarlyStopping(Options o) : o_(o) {
    detail::check_positive("uvp::EarlyStopping", "patience", o.patience);
    detail::check_non_negative("uvp::EarlyStopping", "min_delta", o.min_delta);
  }

  /// Records this epoch's score; returns whether training should go on. A NaN score never improves.
  bool update(double score, Span<const T> params) {
    ++epoch_;
    const bool improved = std::isfinite(score) &&
                          (!has_best_ || (o_.higher_is_better ? score > best_ + o_.min_delta
                                                              : score < best_ - o_.min_delta));
    if (improved) {
      best_ = score;
      best_epoch_ = epoch_;
      has_best_ = true;
      bad_epochs_ = 0;
      best_params_.assign(params.begin(), params.end());
    } else {
      ++bad_epochs_;
    }
    return bad_epochs_ < o_.patience;
  }

  /// Writes the best parameters back; false when no finite score was ever recorded.
  bool restore(Span<T> params) const {
    if (!has_best_) return false;
    detail::check_size("uvp::EarlyStopping::restore", "params", params.size(), index(best_params_.size()));
    std::copy(best_params_.begin(), best_params_.end(), params.begin());
    return true;
  }

  double best_score() const noexcept { return best_; }
  index best_epoch() const noexcept { return best_epoch_; }  ///< 1-based; 0 before any improvement
  bool has_best() const noexcept { return has_best_; }

 private:
  Options o_;
  std::vector<T> best_params_;
  double best_ = 0;
  index epoch_ = 0, best_epoch_ = 0, bad_epochs_ = 0;
  bool has_best_ = false;
};

}  // namespace uvp
