// SPDX-License-Identifier: Apache-2.0
// Options, per-epoch reports and results of uvp's one minibatch training loop (uvp::fit, and the
// linear models' fit, which runs through it).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include <type_traits>
#include <utility>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// A learning-rate schedule held by value: any schedule of optim/schedule.hpp (StepLr, CosineLr,
/// LinearWarmup<...>: anything with `double lr(index) const`) or a callable `double(index)`.
/// Empty by default (the optimizer's lr is left alone).
class LrSchedule {
 public:
  LrSchedule() = default;
  template <class S, std::enable_if_t<!std::is_same_v<std::decay_t<S>, LrSchedule>, int> = 0,
            class = decltype(double(std::declval<const S&>().lr(index(0))))>
  LrSchedule(S s) : fn_([s](index k) { return double(s.lr(k)); }) {}  // NOLINT: implicit on purpose
  template <class F, std::enable_if_t<std::is_invocable_r_v<double, const F&, index>, long> = 0>
  LrSchedule(F f) : fn_(std::move(f)) {}  // NOLINT: implicit on purpose

  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  /// The learning rate of step k (0-based); 0 when empty.
  double lr(index k) const { return fn_ ? fn_(k) : 0.0; }

 private:
  std::function<double(index)> fn_;
};

/// Minibatch training settings of uvp::fit and the models' fit(). The first five fields are the
/// original ones (aggregate initialisation FitOptions{epochs, batch_size, shuffle, seed, lr} keeps
/// working); the others default to "off".
struct FitOptions {
  index epochs = 10;         ///< passes over the training rows
  index batch_size = 256;    ///< rows per optimizer step; the last batch of an epoch may be smaller
  bool shuffle = true;       ///< reshuffle the rows before every epoch
  std::uint64_t seed = 42;   ///< seed of the shuffling (uvp::Rng) and of the model's context
                             ///< (Dropout): same seed, same result, whatever the thread count
  double lr = 1e-2;          ///< learning rate of the default optimizer (Adam) when none is passed;
                             ///< finite and > 0 on every path (also checked when an optimizer is passed)

  /// > 0: before every step, scale the gradients (the dense ones and the touched rows of every
  /// embedding table together) so that their global L2 norm is at most this
  /// (torch.nn.utils.clip_grad_norm_). 0: no clipping.
  double clip_grad_norm = 0;
  /// Sets the optimizer's learning rate (optimizer.set_lr) from schedule.lr(k) before the first
  /// step of every epoch (k = epoch - 1, PyTorch's scheduler.step() once per epoch), or before
  /// every step (k = steps taken so far) when schedule_per_step. Empty: the lr is left alone.
  LrSchedule schedule;
  bool schedule_per_step = false;

  /// > 0: early stopping. Training stops once the monitored score (the validation metric, the
  /// validation loss without a metric, the training loss without validation data) has not
  /// improved by more than min_delta for `patience` consecutive epochs; the parameters of the
  /// best epoch (the model's whole buffer) are restored at the end when restore_best.
  index patience = 0;
  double min_delta = 0;
  bool restore_best = true;

  /// A progress line per epoch on this stream (stderr: `progress = stderr`):
  ///   epoch 3/60  loss 0.4123  val_roc_auc 0.7712  2.1s  eta 40s
  /// nullptr (the default): the library prints nothing.
  std::FILE* progress = nullptr;
};

/// What a callback sees after each epoch.
struct EpochReport {
  index epoch = 0;          ///< 1-based
  index epochs = 0;         ///< planned epochs
  double train_loss = 0;    ///< mean of the training objective over the epoch's minibatches
  /// The validation metric (or validation loss) of this epoch; NaN without validation data.
  double validation = std::numeric_limits<double>::quiet_NaN();
  double lr = std::numeric_limits<double>::quiet_NaN();  ///< the optimizer's lr (NaN if it has none)
  double elapsed_seconds = 0;  ///< since the start of training
};

/// How fit() ended. A diverging fit (non-finite loss) stops and is reported here, not thrown.
struct FitResult {
  index epochs_run = 0;
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;   ///< a callback returned false, or early stopping ended training
  bool diverged = false;        ///< the loss became non-finite; parameters are restored (see message)
  std::string message;          ///< why it stopped, in words
  /// With early stopping (options.patience > 0): the best epoch (1-based, 0 if none) and its score.
  index best_epoch = 0;
  double best_score = std::numeric_limits<double>::quiet_NaN();
  bool restored_best = false;   ///< the parameters are those of best_epoch
  double final_validation = std::numeric_limits<double>::quiet_NaN();  ///< of the last epoch run
};

namespace detail {
/// Enables an overload only for optimizer types: those with step(Span<T>, Span<const T>).
template <class O, class T, class = void>
struct is_optimizer : std::false_type {};
template <class O, class T>
struct is_optimizer<O, T, std::void_t<decltype(std::declval<O&>().step(std::declval<Span<T>>(),
                                                                     std::declval<Span<const T>>()))>>
    : std::true_type {};
template <class O, class T>
using enable_if_optimizer = std::enable_if_t<is_optimizer<O, T>::value, int>;

/// Enables an overload only for FitOptions and what derives from it (TrainOptions<Data>).
template <class O>
using enable_if_fit_options = std::enable_if_t<std::is_base_of_v<FitOptions, O>, int>;

/// Enables an overload only when every callback is callable as cb(const EpochReport&).
template <class... Callbacks>
using enable_if_callbacks =
    std::enable_if_t<std::conjunction_v<std::is_invocable<Callbacks&, const EpochReport&>...>, int>;

inline void check_fit_options(const char* where, const FitOptions& o) {
  if (o.epochs < 1) raise<invalid_argument>(where, ": options.epochs must be >= 1, got ", o.epochs);
  if (o.batch_size < 1) raise<invalid_argument>(where, ": options.batch_size must be >= 1, got ", o.batch_size);
  check_option_positive(where, "options.lr", o.lr);
  check_option_non_negative(where, "options.clip_grad_norm", o.clip_grad_norm);
  if (o.patience < 0) raise<invalid_argument>(where, ": options.patience must be >= 0, got ", o.patience);
  check_option_non_negative(where, "options.min_delta", o.min_delta);
}

template <class O, class = void>
struct has_lr : std::false_type {};
template <class O>
struct has_lr<O, std::void_t<decltype(double(std::declval<const O&>().lr()))>> : std::true_type {};

template <class O, class = void>
struct has_set_lr : std::false_type {};
template <class O>
struct has_set_lr<O, std::void_t<decltype(std::declval<O&>().set_lr(1.0))>> : std::true_type {};

/// A caller-supplied optimizer: its options were validated by its constructor (uvp's Adam and
/// Sgd, see optim/optimizer.hpp); its current learning rate, which schedules change, must be
/// finite and >= 0 when the type has lr().
template <class Optimizer>
void check_fit_optimizer(const char* where, const Optimizer& opt) {
  if constexpr (has_lr<Optimizer>::value) {
    const double lr = double(opt.lr());
    if (!(lr >= 0) || !std::isfinite(lr))
      raise<invalid_argument>(where, ": the optimizer's lr must be finite and >= 0, got ", lr);
  }
}

/// Calls every callback with the report; false from any of them stops training.
template <class... Callbacks>
bool notify_epoch(const EpochReport& r, Callbacks&... cbs) {
  bool go_on = true;
  ((go_on = static_cast<bool>(cbs(r)) && go_on), ...);
  return go_on;
}
}  // namespace detail

}  // namespace uvp
