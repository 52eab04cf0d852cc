// SPDX-License-Identifier: Apache-2.0
// Options and per-epoch reports of uvp's minibatch training loops.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <type_traits>
#include <utility>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// Minibatch training settings shared by the models' fit().
struct FitOptions {
  index epochs = 10;         ///< passes over the training rows
  index batch_size = 256;    ///< rows per optimizer step; the last batch of an epoch may be smaller
  bool shuffle = true;       ///< reshuffle the rows before every epoch
  std::uint64_t seed = 42;   ///< seed of the shuffling (uvp::Rng): same seed, same result
  double lr = 1e-2;          ///< learning rate of the default optimizer (Adam) when none is passed;
                             ///< finite and > 0 on every path (also checked when an optimizer is passed)
};

/// What a callback sees after each epoch.
struct EpochReport {
  index epoch = 0;          ///< 1-based
  index epochs = 0;         ///< planned epochs
  double train_loss = 0;    ///< mean of the training objective over the epoch's minibatches
};

/// How fit() ended. A diverging fit (non-finite loss) stops and is reported here, not thrown.
struct FitResult {
  index epochs_run = 0;
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;   ///< a callback returned false
  bool diverged = false;        ///< the loss became non-finite; parameters are those after the last complete epoch
  std::string message;          ///< why it stopped, in words
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

/// Enables an overload only when every callback is callable as cb(const EpochReport&).
template <class... Callbacks>
using enable_if_callbacks =
    std::enable_if_t<std::conjunction_v<std::is_invocable<Callbacks&, const EpochReport&>...>, int>;

inline void check_fit_options(const char* where, const FitOptions& o) {
  if (o.epochs < 1) raise<invalid_argument>(where, ": options.epochs must be >= 1, got ", o.epochs);
  if (o.batch_size < 1) raise<invalid_argument>(where, ": options.batch_size must be >= 1, got ", o.batch_size);
  check_option_positive(where, "options.lr", o.lr);
}

template <class O, class = void>
struct has_lr : std::false_type {};
template <class O>
struct has_lr<O, std::void_t<decltype(double(std::declval<const O&>().lr()))>> : std::true_type {};

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
