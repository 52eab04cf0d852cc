// SPDX-License-Identifier: Apache-2.0
// Gradient clipping by global L2 norm and by value, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//
// Reference: Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
// ICML 2013 (norm clipping). A model's gradients are one flat buffer (uvp::Parameters<T>::grads()),
// so "the norm over all parameters" is the norm of that one span.
#pragma once

#include <cmath>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// Scales grads (n values, in place) by min(1, max_norm / (||grads||_2 + 1e-6)) and returns
/// ||grads||_2 before scaling, exactly as torch.nn.utils.clip_grad_norm_(norm_type = 2): the
/// multiplication happens even when the factor is 1 (a no-op), and a non-finite norm scales the
/// gradients by 0 / NaN unless error_if_nonfinite, which throws uvp::numeric_error instead
/// (before touching grads). The sum of squares is accumulated blockwise with block sums in double.
/// max_norm: finite and > 0. An empty span has norm 0.
template <class T>
double clip_grad_norm(Span<T> grads, double max_norm, bool error_if_nonfinite = false) {
  static_assert(is_scalar_v<T>, "uvp::clip_grad_norm: T must be float or double");
  constexpr const char* where = "uvp::clip_grad_norm";
  detail::check_option_positive(where, "max_norm", max_norm);
  const double total = std::sqrt(static_cast<double>(kernels::squared_norm(grads.data(), grads.size())));
  if (error_if_nonfinite && !std::isfinite(total))
    detail::raise<numeric_error>(where, ": the total norm of grads is non-finite (", total, ")");
  const double coef = std::min(max_norm / (total + 1e-6), 1.0);
  kernels::scale(T(coef), grads.data(), grads.size());
  return total;
}

/// Clamps every gradient (n values, in place) to [-clip_value, clip_value], as
/// torch.nn.utils.clip_grad_value_; NaN stays NaN. clip_value: finite and > 0.
template <class T>
void clip_grad_value(Span<T> grads, double clip_value) {
  static_assert(is_scalar_v<T>, "uvp::clip_grad_value: T must be float or double");
  detail::check_option_positive("uvp::clip_grad_value", "clip_value", clip_value);
  const T hi = T(clip_value);
  namespace s = detail::simd;
  if constexpr (!s::enabled<T>) {
    for (T& g : grads) g = g < -hi ? -hi : (g > hi ? hi : g);
  } else {
    using B = s::batch<T>;
    const B vhi(hi), vlo(-hi);
    s::for_each_batch<T>(
        grads.size(),
        [&](T* gp) {
          const B g = B::load_unaligned(gp);
          xsimd::select(g < vlo, vlo, xsimd::select(g > vhi, vhi, g)).store_unaligned(gp);
        },
        grads.data());
  }
}

}  // namespace uvp
