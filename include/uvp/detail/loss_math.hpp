// SPDX-License-Identifier: Apache-2.0
// Per-element formulas of the losses and metrics, shared by host code and CUDA kernels (no Eigen).
//
//   bce_logits_value(z, y)  = max(z, 0) - z y + log(1 + exp(-|z|))   (BCE of logit z, target y)
//   bce_logits_delta(z, y)  = sigmoid(z) - y                         (its derivative in z)
//   log_loss_term(y, p, lo, hi) = -log(q), q = clip(p, lo, hi) if y == 1 else 1 - clip(p, lo, hi)
//
// The same operations, in the same order and type, as losses/bce_with_logits.hpp and
// metrics/classification.hpp, so that the CUDA results differ from the CPU only by the device's
// exp / log1p / log rounding (CUDA's are within 1-2 ulp) and by the order of the final sums.
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"
#include "uvp/detail/elementwise_math.hpp"

namespace uvp::detail {

/// Binary cross-entropy of logit z and (soft) target y, stable for any finite |z|.
template <class T>
UVP_HOST_DEVICE inline T bce_logits_value(T z, T y) noexcept {
  using std::exp;
  using std::fabs;
  using std::log1p;
  return (z < T(0) ? T(0) : z) - z * y + log1p(exp(-fabs(z)));
}

/// d bce_logits_value / dz = sigmoid(z) - y, in T.
template <class T>
UVP_HOST_DEVICE inline T bce_logits_delta(T z, T y) noexcept {
  return sigmoid_scalar(z) - y;
}

/// One sample's log loss (natural log, in double) of label y (0 or 1) and probability p, which
/// is clipped to [lo, hi] in T first (as sklearn clips in the array's dtype).
template <class T>
UVP_HOST_DEVICE inline double log_loss_term(T y, T p, T lo, T hi) noexcept {
  using std::log;
  const double c = double(p < lo ? lo : (hi < p ? hi : p));
  return -log(y == T(1) ? c : 1.0 - c);
}

}  // namespace uvp::detail
