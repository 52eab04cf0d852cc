// SPDX-License-Identifier: Apache-2.0
// Binary cross-entropy computed from logits, and its gradient (PyTorch's BCEWithLogitsLoss).
#pragma once

#include <cmath>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/losses/reduction.hpp"

namespace uvp {

namespace detail {
/// log(1 + exp(-|z|)) + max(z, 0) - z*y: exact for any |z| (no exp overflow, no log(0)).
template <class T>
inline T bce_logit_term(T z, T y) noexcept {
  return std::max(z, T(0)) - z * y + std::log1p(std::exp(-std::abs(z)));
}
/// sigmoid(z) without overflow for large |z|.
template <class T>
inline T stable_sigmoid(T z) noexcept {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}
/// The training-loop form: mean BCE over n logits (weights w may be null) with its gradient
/// g = w (sigmoid(z) - y) / n, vectorised. g doubles as scratch for the softplus terms, so no
/// buffer is needed beyond the caller's. Assumes validated inputs (labels checked once per fit).
template <class T>
inline double bce_logits_batch(const T* z, const T* y, const T* w, T* g, index n) noexcept {
  if (n == 0) return 0;  // an empty batch: no loss, no gradient
  kernels::softplus(z, g, n);  // softplus(z) - z*y is the stable BCE term
  double total = 0;
  if (w) {
    for (index i = 0; i < n; ++i) total += double(w[i]) * double(g[i] - z[i] * y[i]);
  } else {
    for (index i = 0; i < n; ++i) total += double(g[i] - z[i] * y[i]);
  }
  kernels::sigmoid(z, g, n);
  const T inv_n = T(1) / T(n);
  if (w) {
    for (index i = 0; i < n; ++i) g[i] = w[i] * (g[i] - y[i]) * inv_n;
  } else {
    for (index i = 0; i < n; ++i) g[i] = (g[i] - y[i]) * inv_n;
  }
  return total / double(n);
}
}  // namespace detail

/// Binary cross-entropy with logits.
///   l_i = w_i * [max(z_i, 0) - z_i y_i + log(1 + exp(-|z_i|))]
///   loss = sum_i l_i / N (Reduction::mean) or sum_i l_i (Reduction::sum)
/// logits z and targets y have size N; targets may be soft labels in [0, 1]; weights (optional,
/// empty = all ones) have size N. When `grad` is non-empty (size N) it receives dloss/dz_i =
/// w_i (sigmoid(z_i) - y_i) [/ N]. Accumulates in double. Stable for any finite |z|.
template <class T>
double bce_with_logits(Span<const T> logits, Span<const T> targets, Span<T> grad = {},
                       Span<const T> weights = {}, Reduction reduction = Reduction::mean) {
  constexpr const char* where = "uvp::bce_with_logits";
  const index n = logits.size();
  const double scale = detail::check_elementwise_loss(where, n, targets, grad, weights, reduction);
  double total = 0;
  for (index i = 0; i < n; ++i) {
    const T z = logits[i], y = targets[i];
    const T w = weights.empty() ? T(1) : weights[i];
    total += double(w) * double(detail::bce_logit_term(z, y));
    if (!grad.empty()) grad[i] = static_cast<T>(double(w) * double(detail::stable_sigmoid(z) - y) * scale);
  }
  return total * scale;
}

}  // namespace uvp
