// SPDX-License-Identifier: Apache-2.0
// The losses uvp::fit minimises, as functors over a minibatch: BCE with logits, MSE and softmax
// cross-entropy (the functions of uvp/losses/), with sample weights and scikit-learn's class
// weights, and the `balanced` weights helper.
//
// A loss functor L for scalar T provides
//   void prepare(const char* where, ConstMatrixView<T> y, index outputs, bool fit_weights = true);
//       checks the training (or validation) targets once before they are used: y is n x k, the
//       model gives `outputs` values per row; with fit_weights, resolves `balanced` class weights
//       from y (the validation targets are checked with the training weights kept).
//   double operator()(ConstMatrixView<T> output, ConstMatrixView<T> y, const T* sample_weight,
//                     MatrixView<T> d_output);
//       the mean (weighted) loss of a minibatch, with its gradient written to d_output (the shape
//       of output). sample_weight: the batch's weights or nullptr.
//   static constexpr const char* name;   // "bce": the progress line's "val_bce"
// Weights multiply the per-sample terms and the mean divides by the number of terms (uvp's
// Reduction::mean, scikit-learn's class_weight and sample_weight). PyTorch's CrossEntropyLoss(weight)
// divides by the sum of the weights instead.
#pragma once

#include <cmath>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/losses/cross_entropy.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// scikit-learn's compute_class_weight("balanced"): n / (n_classes * count(c)) for class ids
/// y in [0, n_classes). uvp::invalid_argument if a class has no rows or y holds another value.
template <class T>
std::vector<double> balanced_class_weight(Span<const T> y, index n_classes) {
  constexpr const char* where = "uvp::balanced_class_weight";
  if (n_classes < 2) detail::raise<invalid_argument>(where, ": n_classes must be >= 2, got ", n_classes);
  std::vector<double> count(static_cast<std::size_t>(n_classes), 0.0);
  for (index i = 0; i < y.size(); ++i) {
    const T v = y[i];
    if (!(v >= T(0) && v < T(n_classes)) || v != std::floor(v))
      detail::raise<invalid_argument>(where, ": y[", i, "] = ", v, " is not a class id in [0, ", n_classes, ")");
    count[static_cast<std::size_t>(v)] += 1;
  }
  std::vector<double> w(count.size());
  for (std::size_t c = 0; c < count.size(); ++c) {
    if (count[c] == 0)
      detail::raise<invalid_argument>(where, ": balanced class weights need every class in y, class ", c,
                                      " has no rows");
    w[c] = double(y.size()) / (double(n_classes) * count[c]);
  }
  return w;
}

namespace detail {
inline void check_loss_width(const char* where, index y_cols, index outputs) {
  if (y_cols != outputs)
    raise<shape_error>(where, ": y has ", y_cols, " columns, but the model gives ", outputs, " outputs per row");
}
}  // namespace detail

/// Binary cross-entropy on logits (PyTorch's BCEWithLogitsLoss), one or k labels per row (each
/// in [0, 1]; 0/1 when class weights are used). The weight of a term is
/// sample_weight * (y == 1 ? class_weight_positive : class_weight_negative); `balanced` sets the
/// class weights to n / (2 n_c) from the training labels. For 0/1 labels,
/// class_weight_positive = p is PyTorch's pos_weight = p up to the mean's denominator.
template <class T>
class BceWithLogitsLoss {
 public:
  using value_type = T;
  static constexpr const char* name = "bce";

  double class_weight_negative = 1.0;  ///< finite, > 0
  double class_weight_positive = 1.0;  ///< finite, > 0
  bool balanced = false;

  BceWithLogitsLoss() = default;
  BceWithLogitsLoss(double negative, double positive, bool balanced_ = false)
      : class_weight_negative(negative), class_weight_positive(positive), balanced(balanced_) {}
  /// PyTorch's pos_weight for 0/1 labels.
  static BceWithLogitsLoss pos_weight(double p) { return BceWithLogitsLoss(1.0, p); }

  void prepare(const char* where, ConstMatrixView<T> y, index outputs, bool fit_weights = true) {
    detail::check_option_positive(where, "loss.class_weight_negative", class_weight_negative);
    detail::check_option_positive(where, "loss.class_weight_positive", class_weight_positive);
    detail::check_loss_width(where, y.cols(), outputs);
    const index n = y.size();
    weighted_ = balanced || class_weight_negative != 1.0 || class_weight_positive != 1.0;
    if (weighted_) {
      detail::check_binary_labels(where, "y", y.data(), n);
    } else {
      for (index i = 0; i < n; ++i)
        if (!(y.data()[i] >= T(0) && y.data()[i] <= T(1)))
          detail::raise<invalid_argument>(where, ": y[", i, "] = ", y.data()[i], " is not a label in [0, 1]");
    }
    if (!fit_weights) return;
    cw0_ = class_weight_negative, cw1_ = class_weight_positive;
    if (balanced) {
      index pos = 0;
      for (index i = 0; i < n; ++i) pos += y.data()[i] == T(1);
      if (pos == 0 || pos == n)
        detail::raise<invalid_argument>(where, ": balanced class weights need both classes in y, got only ",
                                        pos == 0 ? "0" : "1");
      cw0_ = double(n) / (2.0 * double(n - pos));
      cw1_ = double(n) / (2.0 * double(pos));
    }
  }

  double operator()(ConstMatrixView<T> out, ConstMatrixView<T> y, const T* sample_weight, MatrixView<T> grad) {
    const index n = out.rows(), k = out.cols(), m = n * k;
    const T* w = nullptr;
    if (weighted_ || sample_weight) {
      if (index(w_.size()) < m) w_.resize(std::size_t(m));
      for (index i = 0; i < n; ++i)
        for (index j = 0; j < k; ++j) {
          const double s = sample_weight ? double(sample_weight[i]) : 1.0;
          w_[std::size_t(i * k + j)] = T(s * (y(i, j) == T(1) ? cw1_ : cw0_));
        }
      w = w_.data();
    }
    return detail::bce_logits_batch(out.data(), y.data(), w, grad.data(), m);
  }

  double class_weight_negative_used() const noexcept { return cw0_; }  ///< after prepare (balanced resolved)
  double class_weight_positive_used() const noexcept { return cw1_; }

 private:
  std::vector<T> w_;
  double cw0_ = 1, cw1_ = 1;
  bool weighted_ = false;
};

/// Mean squared error (PyTorch's MSELoss), one or k finite targets per row; sample weights
/// multiply every output of their row.
template <class T>
class MseLoss {
 public:
  using value_type = T;
  static constexpr const char* name = "mse";

  void prepare(const char* where, ConstMatrixView<T> y, index outputs, bool /*fit_weights*/ = true) {
    detail::check_loss_width(where, y.cols(), outputs);
    detail::check_finite(where, "y", y.data(), y.size());
  }

  double operator()(ConstMatrixView<T> out, ConstMatrixView<T> y, const T* sample_weight, MatrixView<T> grad) {
    const index n = out.rows(), k = out.cols(), m = n * k;
    const T* w = sample_weight;
    if (sample_weight && k > 1) {
      if (index(w_.size()) < m) w_.resize(std::size_t(m));
      for (index i = 0; i < n; ++i)
        for (index j = 0; j < k; ++j) w_[std::size_t(i * k + j)] = sample_weight[i];
      w = w_.data();
    }
    return mse_loss<T>(Span<const T>(out.data(), m), Span<const T>(y.data(), m), Span<T>(grad.data(), m),
                       w ? Span<const T>(w, m) : Span<const T>{});
  }

 private:
  std::vector<T> w_;
};

/// Softmax cross-entropy over C class logits (PyTorch's CrossEntropyLoss); y holds one class id
/// in [0, C) per row. class_weight: empty or C values > 0 (scikit-learn's class_weight);
/// `balanced` computes them with balanced_class_weight from the training labels.
template <class T>
class CrossEntropyLoss {
 public:
  using value_type = T;
  static constexpr const char* name = "cross_entropy";

  std::vector<double> class_weight;
  bool balanced = false;

  CrossEntropyLoss() = default;
  explicit CrossEntropyLoss(std::vector<double> weights, bool balanced_ = false)
      : class_weight(std::move(weights)), balanced(balanced_) {}

  void prepare(const char* where, ConstMatrixView<T> y, index outputs, bool fit_weights = true) {
    if (y.cols() != 1)
      detail::raise<shape_error>(where, ": y has ", y.cols(), " columns; CrossEntropyLoss reads one column of class ids");
    if (outputs < 2)
      detail::raise<shape_error>(where, ": CrossEntropyLoss needs >= 2 outputs (class logits) per row, the model gives ",
                                 outputs);
    for (index i = 0; i < y.rows(); ++i) {
      const T v = y(i, 0);
      if (!(v >= T(0) && v < T(outputs)) || v != std::floor(v))
        detail::raise<invalid_argument>(where, ": y[", i, "] = ", v, " is not a class id in [0, ", outputs, ")");
    }
    if (!fit_weights) return;
    cw_ = class_weight;
    if (balanced) {
      cw_ = balanced_class_weight<T>(Span<const T>(y.data(), y.rows()), outputs);
    } else if (!cw_.empty()) {
      detail::check_size(where, "loss.class_weight", index(cw_.size()), outputs);
      for (std::size_t c = 0; c < cw_.size(); ++c)
        if (!(cw_[c] > 0) || !std::isfinite(cw_[c]))
          detail::raise<invalid_argument>(where, ": loss.class_weight[", c, "] must be finite and > 0, got ", cw_[c]);
    }
  }

  double operator()(ConstMatrixView<T> out, ConstMatrixView<T> y, const T* sample_weight, MatrixView<T> grad) {
    const index n = out.rows();
    if (index(t_.size()) < n) t_.resize(std::size_t(n));
    for (index i = 0; i < n; ++i) t_[std::size_t(i)] = static_cast<index>(y(i, 0));
    Span<const T> w;
    if (sample_weight || !cw_.empty()) {
      if (index(w_.size()) < n) w_.resize(std::size_t(n));
      for (index i = 0; i < n; ++i)
        w_[std::size_t(i)] = T((sample_weight ? double(sample_weight[i]) : 1.0) *
                               (cw_.empty() ? 1.0 : cw_[std::size_t(t_[std::size_t(i)])]));
      w = Span<const T>(w_.data(), n);
    }
    return softmax_cross_entropy<T>(out, Span<const index>(t_.data(), n), MatrixRef<T>(grad), w);
  }

 private:
  std::vector<index> t_;
  std::vector<T> w_;
  std::vector<double> cw_;
};

}  // namespace uvp
