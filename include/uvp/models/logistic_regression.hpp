// SPDX-License-Identifier: Apache-2.0
// Binary logistic regression trained by minibatch gradient descent with any uvp optimizer.
#pragma once

#include <cmath>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/models/detail/linear_core.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/loss_functions.hpp"

namespace uvp {

struct LogisticRegressionOptions {
  /// L2 penalty on the weights (not the bias): the objective is
  ///   (1/N) sum_i s_i * bce(z_i, y_i) + (l2 / 2) |w|^2,
  /// so scikit-learn's LogisticRegression(C) on N rows corresponds to l2 = 1 / (C N).
  double l2 = 0.0;
  bool fit_intercept = true;
  /// Per-class weights (negative, positive) multiplied into the sample weights, as scikit-learn's
  /// class_weight; `balanced` sets them to N / (2 N_c) from the training labels.
  double class_weight_negative = 1.0;
  double class_weight_positive = 1.0;
  bool balanced = false;
};

/// P(y = 1 | x) = sigmoid(x . w + b). X is (N, d), row-major, one sample per row; labels are 0/1.
///
/// State follows the layer contract (docs/concepts.md): the weights and bias live in one flat
/// `Parameters` buffer; `decision_function`/`predict_proba` are const and allocate only their
/// result (or nothing, with the overloads that write into caller memory), so one fitted model
/// serves many threads at once.
template <class T, class Backend = cpu>
class LogisticRegression : public detail::LinearModelBase<T> {
  static_assert(is_scalar_v<T>, "uvp::LogisticRegression<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::LogisticRegression: only the uvp::cpu backend is implemented so far");

 public:
  using Options = LogisticRegressionOptions;

  explicit LogisticRegression(index n_features, Options options = {})
      : detail::LinearModelBase<T>("uvp::LogisticRegression", n_features, options.fit_intercept, options.l2,
                                   "uvp::LogisticRegression::forward", "uvp::LogisticRegression::backward"),
        options_(options) {
    constexpr const char* where = "uvp::LogisticRegression";
    detail::check_option_non_negative(where, "options.l2", options.l2);
    detail::check_option_positive(where, "options.class_weight_negative", options.class_weight_negative);
    detail::check_option_positive(where, "options.class_weight_positive", options.class_weight_positive);
  }

  const Options& options() const noexcept { return options_; }

  /// Logits z = X w + b into caller memory (size N); no allocation.
  void decision_function(ConstMatrixRef<T> X, VectorRef<T> out) const {
    this->checked_forward("uvp::LogisticRegression::decision_function", X, out);
  }
  Vector<T> decision_function(ConstMatrixRef<T> X) const {
    Vector<T> z(X.rows());
    decision_function(X, z);
    return z;
  }

  /// P(y = 1 | x) per row, into caller memory (size N); no allocation.
  void predict_proba(ConstMatrixRef<T> X, VectorRef<T> out) const {
    decision_function(X, out);
    kernels::sigmoid(out.data(), out.data(), out.size());
  }
  Vector<T> predict_proba(ConstMatrixRef<T> X) const {
    Vector<T> p(X.rows());
    predict_proba(X, p);
    return p;
  }

  /// Labels 0/1: 1 where P(y = 1 | x) >= threshold.
  Vector<T> predict(ConstMatrixRef<T> X, T threshold = T(0.5)) const {
    Vector<T> p = predict_proba(X);
    for (index i = 0; i < p.size(); ++i) p[i] = p[i] >= threshold ? T(1) : T(0);
    return p;
  }

  /// Minibatch training with the given optimizer (any type with step(Span<T>, Span<const T>)):
  /// uvp::fit's loop (training/fit.hpp) with BceWithLogitsLoss carrying the class weights, and
  /// the l2 penalty. y: N labels in {0, 1}; sample_weight: empty or N non-negative weights. Each
  /// callback is called as cb(const EpochReport&) after every epoch and returns false to stop.
  /// The options' clipping, schedule, early stopping and progress line apply.
  template <class Optimizer, class FitOpts, class... Callbacks, detail::enable_if_optimizer<Optimizer, T> = 0,
            detail::enable_if_fit_options<FitOpts> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, Optimizer& optimizer,
                const FitOpts& fit_options, Span<const T> sample_weight, Callbacks&&... callbacks) {
    constexpr const char* where = "uvp::LogisticRegression::fit";
    core_.check_shape(where, X);  // values are checked during training (uvp::fit's loop)
    detail::check_size(where, "y", y.size(), X.rows());
    detail::check_binary_labels(where, "y", y.data(), y.size());
    detail::check_sample_weight(where, sample_weight.data(), sample_weight.size(), X.rows());
    const BceWithLogitsLoss<T> loss(options_.class_weight_negative, options_.class_weight_positive, options_.balanced);
    return this->fit_minibatch(where, X, y, sample_weight, loss, optimizer, fit_options, callbacks...);
  }

  template <class Optimizer, class FitOpts = FitOptions, class... Callbacks,
            detail::enable_if_optimizer<Optimizer, T> = 0, detail::enable_if_fit_options<FitOpts> = 0,
            detail::enable_if_callbacks<Callbacks...> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, Optimizer& optimizer,
                const FitOpts& fit_options = {}, Callbacks&&... callbacks) {
    return fit(X, y, optimizer, fit_options, Span<const T>{}, callbacks...);
  }

  /// Trains with Adam at fit_options.lr.
  template <class FitOpts = FitOptions, detail::enable_if_fit_options<FitOpts> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, const FitOpts& fit_options = {}) {
    detail::check_fit_options("uvp::LogisticRegression::fit", fit_options);  // before Adam sees lr: the message names fit
    AdamOptions ao;
    ao.lr = fit_options.lr;
    Adam<T> adam(ao);
    return fit(X, y, adam, fit_options, Span<const T>{});
  }

 private:
  using detail::LinearModelBase<T>::core_;
  Options options_;
};

}  // namespace uvp
