// SPDX-License-Identifier: Apache-2.0
// Softmax cross-entropy over class logits, and its gradient (PyTorch's CrossEntropyLoss).
#pragma once

#include <cmath>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/losses/reduction.hpp"

namespace uvp {

namespace detail {
// grad: row-major (N, C) or nullptr for the loss alone.
template <class T>
double softmax_cross_entropy_impl(ConstMatrixRef<T> logits, Span<const index> targets, T* grad,
                                  Span<const T> weights, Reduction reduction) {
  constexpr const char* where = "uvp::softmax_cross_entropy";
  const index n = logits.rows(), c = logits.cols();
  if (c < 1) raise<shape_error>(where, ": logits has 0 columns, expected at least 1 class");
  check_size(where, "targets", targets.size(), n);
  if (!weights.empty()) check_size(where, "weights", weights.size(), n);
  // An empty batch (n = 0): the empty sum, 0, for both reductions.
  const double scale = reduction == Reduction::mean && n > 0 ? 1.0 / double(n) : 1.0;
  double total = 0;
  for (index i = 0; i < n; ++i) {
    const index t = targets[i];
    if (t < 0 || t >= c)
      raise<out_of_range_error>(where, ": targets[", i, "] = ", t, " out of range [0, ", c, ")");
    const double m = double(logits.row(i).maxCoeff());
    double s = 0;
    for (index j = 0; j < c; ++j) s += std::exp(double(logits(i, j)) - m);
    const double lse = m + std::log(s);
    const double w = weights.empty() ? 1.0 : double(weights[i]);
    total += w * (lse - double(logits(i, t)));
    if (grad) {
      for (index j = 0; j < c; ++j) {
        const double p = std::exp(double(logits(i, j)) - lse);
        grad[i * c + j] = static_cast<T>(w * (p - (j == t ? 1.0 : 0.0)) * scale);
      }
    }
  }
  return total * scale;
}
}  // namespace detail

/// Softmax cross-entropy. logits: (N, C), one row per sample; targets: N class ids in [0, C);
/// weights: optional, N per-sample weights.
///   l_i = w_i * (logsumexp(z_i) - z_i[t_i]);  loss = sum_i l_i / N (mean) or sum_i l_i (sum)
/// Computed with the max-shifted log-sum-exp, in double.
template <class T>
double softmax_cross_entropy(ConstMatrixRef<T> logits, Span<const index> targets,
                             Span<const T> weights = {}, Reduction reduction = Reduction::mean) {
  return detail::softmax_cross_entropy_impl<T>(logits, targets, nullptr, weights, reduction);
}

/// The same, also writing dloss/dlogits = w_i (softmax(z_i) - onehot(t_i)) [/ N] into grad (N, C).
template <class T>
double softmax_cross_entropy(ConstMatrixRef<T> logits, Span<const index> targets, MatrixRef<T> grad,
                             Span<const T> weights = {}, Reduction reduction = Reduction::mean) {
  detail::check_shape("uvp::softmax_cross_entropy", "grad", grad.rows(), grad.cols(), logits.rows(),
                      logits.cols());
  return detail::softmax_cross_entropy_impl<T>(logits, targets, grad.data(), weights, reduction);
}

}  // namespace uvp
