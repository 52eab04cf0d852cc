// SPDX-License-Identifier: Apache-2.0
// SGD's options and its per-element update, shared by the CPU (uvp::Sgd<T, cpu>) and CUDA
// (uvp::Sgd<T, cuda>) backends: no Eigen, no xsimd, so nvcc compiles it for the device too.
// The CPU runs the same sgd_update_element on T (scalar loop) and on xsimd batches of T (SIMD
// loop, detail/optimizer_base.hpp), so the formula exists once.
//
// The update is torch.optim.SGD (PyTorch 1.13), see optim/sgd.hpp for the equations. Per step
// the scalars are rounded to T once (sgd_coefficients); per element (PyTorch's add, mul_, add_,
// add):
//
//   d = g + weight_decay * p
//   b = buf_keep * b + buf_new * d;  d = nesterov ? d + momentum * b : b     (if momentum != 0)
//   p = p + neg_lr * d
//
// with buf_keep = 0 and buf_new = 1 on the first step (b <- g), momentum and 1 - dampening after.
#pragma once

#include "uvp/core/config.hpp"
#include "uvp/detail/rounding_math.hpp"

namespace uvp {

/// Options of uvp::Sgd (both backends); the defaults are PyTorch's, except lr (PyTorch has none).
struct SgdOptions {
  double lr = 0.01;           ///< learning rate, > 0
  double momentum = 0;        ///< in [0, 1]; 0 = no momentum buffer
  double dampening = 0;       ///< in [0, 1]; scales the new gradient in the buffer by 1 - dampening
  double weight_decay = 0;    ///< L2 penalty added to the gradient, >= 0
  bool nesterov = false;      ///< Nesterov momentum; needs momentum > 0 and dampening = 0
  bool check_finite = false;  ///< true: throw uvp::numeric_error on NaN / inf gradients
};

namespace detail {

/// The per-step scalars of one SGD step, rounded to T (or broadcast to a batch of T).
template <class T>
struct SgdCoefficients {
  T weight_decay, buf_keep, buf_new, momentum, neg_lr;

  /// The same values as U (a batch type: each broadcast to every lane).
  template <class U>
  SgdCoefficients<U> as() const noexcept {
    return {U(weight_decay), U(buf_keep), U(buf_new), U(momentum), U(neg_lr)};
  }
};

/// The coefficients of step t >= 1 with learning rate lr. The buffer is zero before a slice's
/// first update, so b <- 0 * b + 1 * g is exactly b <- g on step 1.
template <class T>
inline SgdCoefficients<T> sgd_coefficients(const SgdOptions& o, double lr, index t) noexcept {
  const bool first = t == 1;
  return {T(o.weight_decay), T(first ? 0.0 : o.momentum), T(first ? 1.0 : 1 - o.dampening),
          T(o.momentum), T(-lr)};
}

/// One element of one SGD step: updates p (and the momentum buffer *b when Momentum) in place.
/// T is float, double, or (CPU SIMD loop) an xsimd batch of them. Each product and sum is
/// rounded once (no FMA on the device either): the CPU's bits.
template <bool Momentum, bool Nesterov, class T>
UVP_HOST_DEVICE inline void sgd_update_element(T& p, T g, T* b,
                                               const SgdCoefficients<T>& c) noexcept {
  T d = rn_add(g, rn_mul(c.weight_decay, p));
  if constexpr (Momentum) {
    *b = rn_add(rn_mul(*b, c.buf_keep), rn_mul(c.buf_new, d));
    d = Nesterov ? rn_add(d, rn_mul(c.momentum, *b)) : *b;
  }
  p = rn_add(p, rn_mul(c.neg_lr, d));
}

}  // namespace detail
}  // namespace uvp
