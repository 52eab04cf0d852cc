// SPDX-License-Identifier: Apache-2.0
// Mean squared error and its gradient (PyTorch's MSELoss).
#pragma once

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/losses/reduction.hpp"

namespace uvp {

/// loss = sum_i w_i (p_i - y_i)^2 / N (mean) or the plain sum; predictions p and targets y have
/// size N, weights (optional) too. `grad` (optional, size N) receives 2 w_i (p_i - y_i) [/ N].
template <class T>
double mse_loss(Span<const T> predictions, Span<const T> targets, Span<T> grad = {},
                Span<const T> weights = {}, Reduction reduction = Reduction::mean) {
  constexpr const char* where = "uvp::mse_loss";
  const index n = predictions.size();
  const double scale = detail::check_elementwise_loss(where, n, targets, grad, weights, reduction);
  double total = 0;
  for (index i = 0; i < n; ++i) {
    const double w = weights.empty() ? 1.0 : double(weights[i]);
    const double d = double(predictions[i]) - double(targets[i]);
    total += w * d * d;
    if (!grad.empty()) grad[i] = static_cast<T>(2.0 * w * d * scale);
  }
  return total * scale;
}

}  // namespace uvp
