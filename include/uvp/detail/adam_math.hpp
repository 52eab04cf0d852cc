// SPDX-License-Identifier: Apache-2.0
// Adam's options and its per-element update, shared by the CPU (uvp::Adam<T, cpu>) and CUDA
// (uvp::Adam<T, cuda>) backends: no Eigen, no xsimd, so nvcc compiles it for the device too.
// The CPU runs the same adam_update_element on T (scalar loop) and on xsimd batches of T (SIMD
// loop, detail/optimizer_base.hpp), so the formula exists once.
//
// The update is torch.optim.Adam / AdamW (PyTorch 1.13), see optim/adam.hpp for the equations.
// Per step, the scalars below are computed once in double and rounded to T (adam_coefficients);
// per element, adam_update_element applies, in this order (PyTorch's add, mul_, add_, addcmul_,
// addcdiv_):
//
//   g' = g + l2 * p;  p' = p * shrink;  m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
//   v_hat = amsgrad ? (vmax = max(vmax, v)) : v
//   p = p' + neg_step_size * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"
#include "uvp/detail/lane_ops.hpp"
#include "uvp/detail/rounding_math.hpp"

namespace uvp {

/// Options of uvp::Adam (both backends); the defaults are PyTorch's.
struct AdamOptions {
  double lr = 1e-3;                     ///< learning rate, > 0
  double beta1 = 0.9;                   ///< decay of the first moment, in [0, 1)
  double beta2 = 0.999;                 ///< decay of the second moment, in [0, 1)
  double eps = 1e-8;                    ///< added to the denominator, > 0
  double weight_decay = 0;              ///< >= 0; an L2 term in the gradient, or AdamW's decay
  bool decoupled_weight_decay = false;  ///< true: AdamW (decay applied to p, scaled by lr)
  bool amsgrad = false;                 ///< true: AMSGrad (normalise by the running max of v)
  bool check_finite = false;            ///< true: throw uvp::numeric_error on NaN / inf gradients
};

namespace detail {

/// The per-step scalars of one Adam step, rounded to T (or broadcast to a batch of T).
template <class T>
struct AdamCoefficients {
  T l2, shrink, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps,
      neg_step_size;

  /// The same values as U (a batch type: each broadcast to every lane).
  template <class U>
  AdamCoefficients<U> as() const noexcept {
    return {U(l2), U(shrink), U(beta1), U(one_minus_beta1), U(beta2), U(one_minus_beta2),
            U(bias_correction2_sqrt), U(eps), U(neg_step_size)};
  }
};

/// The coefficients of step t >= 1 with learning rate lr, computed in double and rounded once.
template <class T>
inline AdamCoefficients<T> adam_coefficients(const AdamOptions& o, double lr, index t) noexcept {
  const bool decoupled = o.decoupled_weight_decay;
  const double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(t));
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(o.beta2, static_cast<double>(t)));
  return {T(decoupled ? 0.0 : o.weight_decay),
          T(decoupled ? 1 - lr * o.weight_decay : 1.0),
          T(o.beta1),
          T(1 - o.beta1),
          T(o.beta2),
          T(1 - o.beta2),
          T(bias_correction2_sqrt),
          T(o.eps),
          T(-(lr / bias_correction1))};
}

/// One element of one Adam step: updates p, m, v (and *vmax when Amsgrad) in place. T is float,
/// double, or (CPU SIMD loop) an xsimd batch of them. Each product and sum is rounded once
/// (rn_mul / rn_add: no FMA on the device either) and sqrt and division are IEEE-rounded on both
/// sides, so the CUDA kernel gives the CPU's bits.
template <bool Amsgrad, class T>
UVP_HOST_DEVICE inline void adam_update_element(T& p, T g, T& m, T& v, T* vmax,
                                                const AdamCoefficients<T>& c) noexcept {
  using std::sqrt;  // nvcc provides __host__ __device__ overloads for float and double
  const T gi = rn_add(g, rn_mul(c.l2, p));
  const T pi = rn_mul(p, c.shrink);
  m = rn_add(rn_mul(m, c.beta1), rn_mul(c.one_minus_beta1, gi));
  v = rn_add(rn_mul(v, c.beta2), rn_mul(rn_mul(c.one_minus_beta2, gi), gi));
  T vh = v;
  if constexpr (Amsgrad) {
    vh = LaneOps<T>::max(*vmax, v);  // std::max(vmax, v), NaN included
    *vmax = vh;
  }
  const T denom = rn_add(sqrt(vh) / c.bias_correction2_sqrt, c.eps);
  p = rn_add(pi, rn_mul(c.neg_step_size, m / denom));
}

}  // namespace detail
}  // namespace uvp
