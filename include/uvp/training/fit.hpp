// SPDX-License-Identifier: Apache-2.0
// uvp::fit: the one minibatch training loop, for any model that follows the layer contract
// (an nn::Chain of library or user blocks) and for the linear models.
//
//   uvp::Rng rng(42);
//   uvp::nn::Chain model(uvp::nn::Dense<float>(8, 16, rng), uvp::nn::Relu<float>(),
//                        uvp::nn::Dense<float>(16, 1, rng));
//   uvp::Adam<float> adam;
//   uvp::TrainOptions<uvp::RowData<float>> o;
//   o.epochs = 60, o.batch_size = 64, o.patience = 5, o.progress = stderr;
//   o.validation = uvp::RowData<float>(X_val, y_val);
//   o.metric = [](auto y, auto p) { return uvp::roc_auc<float>({y.data(), y.size()}, {p.data(), p.size()}); };
//   o.metric_name = "roc_auc";
//   uvp::FitResult r = uvp::fit(model, uvp::RowData<float>(X, y), uvp::BceWithLogitsLoss<float>(), adam, o);
//   uvp::Matrix<float> p = uvp::predict_proba(model, uvp::RowData<float>(X_test));
//
// Every epoch: the rows are shuffled (uvp::Rng seeded with options.seed: same seed, same result,
// whatever the thread count), cut into minibatches gathered into buffers the trainer owns (a
// sequence batch trimmed to its longest sequence), and for each: zero_grad, forward (training
// mode), loss and d_output, backward, the model's penalty (the linear models' l2), a check of the
// loss, gradient clipping, one optimizer step (nn::step over the model's one buffer). Then the
// validation score, the report to the callbacks and the progress line, early stopping. Nothing is
// allocated per step once the first epoch has run.
//
// What the trainer needs of a model M with scalar T:
//   typename M::input_type   ConstMatrixView<T> (trained on RowData<T>) or nn::TokenBatch
//                            (SequenceData<T>); the output of forward is ConstMatrixView<T>
//   typename M::Context      default-constructible (or from a seed, as nn::Chain's)
//   forward(input, ctx) const, backward(ctx, d_output)       (the layer contract)
//   parameters()             with values() and grads() (nn::ModelParameters: nn::step; any other,
//                            as uvp::Parameters: optimizer.step(values, grads))
//   optional: zero_grad(), train(bool), eval(); double add_penalty() (adds a regulariser's
//   gradient, returns its value); accumulate_gradients(ctx, d_output) (backward without the
//   input's gradient, which the trainer never needs).
//
// A non-finite loss stops training and is reported in FitResult::diverged (never thrown): the
// parameters are restored to the best epoch's (early stopping) or those after the last complete
// epoch. When the input rows of the failing batch hold a NaN or infinity, uvp::invalid_argument
// naming the row and column is raised instead (after the same restore).
//
// After fit the model is in eval mode (if it has one).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/optim/clip.hpp"
#include "uvp/training/early_stopping.hpp"
#include "uvp/training/fit_options.hpp"
#include "uvp/training/loss_functions.hpp"
#include "uvp/training/predict.hpp"
#include "uvp/training/training_data.hpp"

namespace uvp {

/// FitOptions plus what depends on the data's type: validation data and the metric computed on
/// it after every epoch.
template <class Data>
struct TrainOptions : FitOptions {
  using value_type = typename Data::value_type;
  /// Scored after every epoch (eval mode); empty (size 0): no validation.
  Data validation{};
  /// metric(y, predictions): y and the model's outputs on the validation data (n x outputs,
  /// logits for a BCE-trained model). Empty: the validation loss (the training loss functor).
  std::function<double(ConstMatrixView<value_type>, ConstMatrixView<value_type>)> metric;
  std::string metric_name = "metric";  ///< shown as val_<name> on the progress line
  bool higher_is_better = true;        ///< of the metric (a loss is always lower-is-better)
  index predict_chunk = 1024;          ///< rows per forward when scoring the validation data

  TrainOptions() = default;
  TrainOptions(const FitOptions& o) : FitOptions(o) {}  // NOLINT: implicit on purpose
};

namespace detail {

template <class M, class = void>
struct has_penalty : std::false_type {};
template <class M>
struct has_penalty<M, std::void_t<decltype(double(std::declval<M&>().add_penalty()))>> : std::true_type {};

template <class M, class = void>
struct has_accumulate_gradients : std::false_type {};
template <class M>
struct has_accumulate_gradients<M, std::void_t<decltype(std::declval<M&>().accumulate_gradients(
                                       std::declval<typename M::Context&>(),
                                       std::declval<ConstMatrixView<typename M::value_type>>()))>> : std::true_type {};

template <class M, class = void>
struct has_zero_grad : std::false_type {};
template <class M>
struct has_zero_grad<M, std::void_t<decltype(std::declval<M&>().zero_grad())>> : std::true_type {};

template <class M, class = void>
struct has_train_mode : std::false_type {};
template <class M>
struct has_train_mode<M, std::void_t<decltype(std::declval<M&>().train(true))>> : std::true_type {};

template <class M>
void set_training(M& model, bool on) {
  if constexpr (has_train_mode<M>::value) model.train(on);
}

template <class M>
void fit_zero_grad(M& model) {
  if constexpr (has_zero_grad<M>::value)
    model.zero_grad();
  else
    model.parameters().zero_grad();
}

/// One optimizer step over the whole model.
template <class Optimizer, class M>
void fit_step(Optimizer& opt, M& model) {
  if constexpr (has_model_parameters<M>::value) {
    nn::step(opt, model);
  } else {
    auto& p = model.parameters();
    using T = std::remove_const_t<typename decltype(p.values())::element_type>;
    opt.step(p.values(), Span<const T>(p.grads()));
  }
}

template <class Loss>
const char* loss_name() {
  if constexpr (std::is_convertible_v<decltype(Loss::name), const char*>)
    return Loss::name;
  else
    return "loss";
}

}  // namespace detail

namespace detail {

template <class M, class Data, class Loss, class Optimizer, class... Callbacks>
FitResult run_fit(const char* where, M& model, const Data& data, Loss& loss, Optimizer& opt,
                  const TrainOptions<Data>& o, Callbacks&... callbacks) {
  using T = typename Data::value_type;
  static_assert(std::is_same_v<typename M::value_type, T>, "uvp::fit: the data and the model must have the same scalar type");
  using Out = decltype(std::declval<const M&>().forward(std::declval<const data_input_t<Data>&>(),
                                                       std::declval<typename M::Context&>()));
  static_assert(std::is_same_v<std::decay_t<Out>, ConstMatrixView<T>>,
                "uvp::fit: the model must end in a matrix (one row per sample), e.g. a pooling and a Dense");
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();

  check_fit_options(where, o);
  check_fit_optimizer(where, opt);
  check_fit_data(where, "data", data);
  const bool has_validation = o.validation.size() > 0;
  if (has_validation) {
    check_fit_data(where, "options.validation", o.validation);
    check_data_like(where, data, o.validation);
    if (o.predict_chunk < 1)
      raise<invalid_argument>(where, ": options.predict_chunk must be >= 1, got ", o.predict_chunk);
  }
  if constexpr (!has_set_lr<Optimizer>::value) {
    if (o.schedule) raise<invalid_argument>(where, ": options.schedule needs an optimizer with set_lr(double)");
  }

  const index n = data.size();
  const index bs = std::min(o.batch_size, n);
  BatchSource<Data> src;
  src.reserve(data, bs, o.shuffle);
  std::vector<index> order;
  if (o.shuffle) {
    order.resize(std::size_t(n));
    std::iota(order.begin(), order.end(), index(0));
  }
  Rng rng(o.seed);
  auto ctx = make_fit_context<typename M::Context>(o.seed);
  auto values = model.parameters().values();
  std::vector<T> last_good(values.begin(), values.end());
  Matrix<T> d_out, val_pred, val_grad;
  Loss val_loss = loss;
  bool prepared = false;

  const bool early = o.patience > 0;
  EarlyStopping<T> stop(typename EarlyStopping<T>::Options{
      early ? o.patience : 1, o.min_delta, has_validation && o.metric ? o.higher_is_better : false});
  FitResult result;
  index steps = 0;

  auto finish = [&](std::string message) {
    if (early && o.restore_best && stop.has_best()) {
      stop.restore(model.parameters().values());
      result.restored_best = true;
    }
    if (early) result.best_epoch = stop.best_epoch(), result.best_score = stop.best_score();
    set_training(model, false);
    result.message = std::move(message);
    return result;
  };
  // Restores the best (early stopping) or the last good parameters after a non-finite loss.
  auto restore_after_failure = [&] {
    auto v = model.parameters().values();
    if (early && stop.has_best())
      stop.restore(v), result.restored_best = true;
    else
      std::copy(last_good.begin(), last_good.end(), v.begin());
  };
  auto diverged = [&](index epoch, double bad_loss) {
    restore_after_failure();
    result.diverged = true;
    result.epochs_run = epoch;
    if (early) result.best_epoch = stop.best_epoch(), result.best_score = stop.best_score();
    set_training(model, false);
    result.message = str(where, ": training diverged in epoch ", epoch, " (loss ", bad_loss,
                         ", or non-finite parameters); parameters restored to those ",
                         result.restored_best ? str("of the best epoch, ", stop.best_epoch())
                                              : std::string("after the last complete epoch"),
                         " (lower the learning rate)");
    return result;
  };

  for (index epoch = 1; epoch <= o.epochs; ++epoch) {
    set_training(model, true);
    if constexpr (has_set_lr<Optimizer>::value)
      if (o.schedule && !o.schedule_per_step) opt.set_lr(o.schedule.lr(epoch - 1));
    if (o.shuffle) rng.shuffle(order.begin(), order.end());
    double loss_sum = 0;
    index batches = 0;
    for (index s = 0; s < n; s += bs) {
      const index m = std::min(bs, n - s);
      if constexpr (has_set_lr<Optimizer>::value)
        if (o.schedule && o.schedule_per_step) opt.set_lr(o.schedule.lr(steps));
      const auto batch = src.gather(data, o.shuffle ? order.data() : nullptr, s, m);
      fit_zero_grad(model);
      const ConstMatrixView<T> out = static_cast<const M&>(model).forward(batch.input, ctx);
      if (!prepared) {
        loss.prepare(where, data.targets(), out.cols());
        if (has_validation) {
          val_loss = loss;
          val_loss.prepare(where, o.validation.targets(), out.cols(), /*fit_weights=*/false);
        }
        prepared = true;
      }
      if (d_out.rows() < m || d_out.cols() != out.cols()) d_out.resize(bs, out.cols());
      MatrixView<T> d(d_out.data(), m, out.cols());
      double batch_loss = loss(out, batch.y, batch.w, d);
      if constexpr (has_accumulate_gradients<M>::value)
        model.accumulate_gradients(ctx, ConstMatrixView<T>(d.data(), m, d.cols()));
      else
        model.backward(ctx, ConstMatrixView<T>(d.data(), m, d.cols()));
      if constexpr (has_penalty<M>::value) batch_loss += model.add_penalty();
      if (!std::isfinite(batch_loss)) {
        // A NaN or inf in the input makes its batch's loss non-finite, so the rows are checked
        // here, only when needed, instead of in a pass over all the data before training.
        src.check_finite_input(where, data, o.shuffle ? order.data() : nullptr, s, m, restore_after_failure);
        return diverged(epoch, batch_loss);
      }
      if (o.clip_grad_norm > 0) clip_grad_norm(model, o.clip_grad_norm);
      fit_step(opt, model);
      ++steps;
      loss_sum += batch_loss;
      ++batches;
    }
    values = model.parameters().values();
    if (!values.as_vector().allFinite()) return diverged(epoch, loss_sum / double(batches));
    std::copy(values.begin(), values.end(), last_good.begin());
    result.epochs_run = epoch;
    result.final_train_loss = loss_sum / double(batches);

    EpochReport report{epoch, o.epochs, result.final_train_loss};
    if (has_validation) {
      set_training(model, false);
      predict_rows(where, static_cast<const M&>(model), o.validation, o.predict_chunk, src, ctx, val_pred);
      if (o.metric) {
        report.validation = o.metric(ConstMatrixView<T>(o.validation.targets()),
                                     ConstMatrixView<T>(val_pred.data(), val_pred.rows(), val_pred.cols()));
      } else {
        if (val_grad.rows() != val_pred.rows() || val_grad.cols() != val_pred.cols())
          val_grad.resize(val_pred.rows(), val_pred.cols());
        report.validation = val_loss(ConstMatrixView<T>(val_pred.data(), val_pred.rows(), val_pred.cols()),
                                     o.validation.targets(),
                                     o.validation.sample_weight.empty() ? nullptr : o.validation.sample_weight.data(),
                                     MatrixView<T>(val_grad.data(), val_grad.rows(), val_grad.cols()));
      }
      result.final_validation = report.validation;
    }
    if constexpr (has_lr<Optimizer>::value) report.lr = double(opt.lr());
    report.elapsed_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (o.progress) {
      const double eta = report.elapsed_seconds / double(epoch) * double(o.epochs - epoch);
      std::fprintf(o.progress, "epoch %ld/%ld  loss %.4f", long(epoch), long(o.epochs), report.train_loss);
      if (has_validation)
        std::fprintf(o.progress, "  val_%s %.4f", o.metric ? o.metric_name.c_str() : loss_name<Loss>(),
                     report.validation);
      std::fprintf(o.progress, "  %.1fs  eta %.0fs\n", report.elapsed_seconds, eta);
      std::fflush(o.progress);
    }
    const double monitored = has_validation ? report.validation : report.train_loss;
    const bool go_on_early = early ? stop.update(monitored, model.parameters().values()) : true;
    const bool go_on = notify_epoch(report, callbacks...);
    if (!go_on || !go_on_early) {
      result.stopped_early = true;
      return finish(!go_on ? str("stopped by a callback after epoch ", epoch)
                           : str("early stopping after epoch ", epoch, ": no improvement for ", o.patience,
                                 " epochs; best epoch ", stop.best_epoch()));
    }
  }
  return finish(str("completed ", o.epochs, " epochs"));
}

}  // namespace detail

/// Trains model on data by minibatches, minimising loss (BceWithLogitsLoss, MseLoss,
/// CrossEntropyLoss or a user functor, see training/loss_functions.hpp) with optimizer (Adam,
/// Sgd, ...). options: TrainOptions<Data> (with validation data and metric) or plain FitOptions.
/// Each callback is called as cb(const EpochReport&) after every epoch; false from any stops.
/// Bad options or data raise a uvp::error naming the argument before anything is changed.
template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(Model& model, const Data& data, Loss loss, Optimizer& optimizer, const TrainOptions<Data>& options,
              Callbacks&&... callbacks) {
  return detail::run_fit("uvp::fit", model, data, loss, optimizer, options, callbacks...);
}

template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(Model& model, const Data& data, Loss loss, Optimizer& optimizer, const FitOptions& options = {},
              Callbacks&&... callbacks) {
  return detail::run_fit("uvp::fit", model, data, loss, optimizer, TrainOptions<Data>(options), callbacks...);
}

}  // namespace uvp
