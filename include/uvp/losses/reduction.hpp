// SPDX-License-Identifier: Apache-2.0
// How a loss combines per-element terms (PyTorch's `reduction` argument).
#pragma once

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// mean: sum of (weighted) terms / number of terms (PyTorch's convention, also with weights);
/// sum: the plain sum. An empty batch (N = 0) is valid for every loss and both reductions: the
/// loss is 0 and nothing is written (PyTorch's mean of nothing is NaN; uvp returns no NaN).
enum class Reduction { mean, sum };

namespace detail {
/// Checks the arguments every element-wise loss takes (n inputs, targets, optional
/// grad and weights of the same size) and returns the factor of the reduction (1 for an empty
/// batch, whose loss is the empty sum 0).
template <class T>
double check_elementwise_loss(const char* where, index n, Span<const T> targets, Span<T> grad,
                              Span<const T> weights, Reduction reduction) {
  check_size(where, "targets", targets.size(), n);
  if (!grad.empty()) check_size(where, "grad", grad.size(), n);
  if (!weights.empty()) check_size(where, "weights", weights.size(), n);
  return reduction == Reduction::mean && n > 0 ? 1.0 / double(n) : 1.0;
}
}  // namespace detail

}  // namespace uvp
