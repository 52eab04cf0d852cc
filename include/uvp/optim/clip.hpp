// SPDX-License-Identifier: Apache-2.0
// Gradient clipping by global L2 norm and by value, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//
// Reference: Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
// ICML 2013 (norm clipping). A model's gradients are one flat buffer (uvp::Parameters<T>::grads()),
// so "the norm over all parameters" is the norm of that one span.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>
#include <utility>

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

namespace detail {
template <class P, class = void>
struct has_sparse_blocks : std::false_type {};
template <class P>
struct has_sparse_blocks<P, std::void_t<decltype(std::declval<P&>().sparse_blocks())>> : std::true_type {};
}  // namespace detail

/// clip_grad_norm over a whole model (anything whose parameters() has grads(): nn::Chain, the
/// linear models): the norm is taken over the dense gradients and, for a model with embedding
/// tables (nn::ModelParameters::sparse_blocks()), the touched rows of their sparse gradients
/// together, and all of them are scaled by the same factor, as clip_grad_norm_ over every
/// parameter's .grad in PyTorch. Returns the norm before scaling.
template <class Model, class = decltype(std::declval<Model&>().parameters().grads())>
double clip_grad_norm(Model& model, double max_norm, bool error_if_nonfinite = false) {
  constexpr const char* where = "uvp::clip_grad_norm";
  detail::check_option_positive(where, "max_norm", max_norm);
  auto& p = model.parameters();
  auto grads = p.grads();
  using T = std::remove_const_t<typename decltype(grads)::element_type>;
  double sq = static_cast<double>(kernels::squared_norm(grads.data(), grads.size()));
  if constexpr (detail::has_sparse_blocks<std::decay_t<decltype(p)>>::value)
    for (auto* b : p.sparse_blocks()) {
      const auto& v = b->sparse_grad().values;
      sq += static_cast<double>(kernels::squared_norm(v.data(), static_cast<index>(v.size())));
    }
  const double total = std::sqrt(sq);
  if (error_if_nonfinite && !std::isfinite(total))
    detail::raise<numeric_error>(where, ": the total norm of the model's gradients is non-finite (", total, ")");
  const double coef = std::min(max_norm / (total + 1e-6), 1.0);
  kernels::scale(T(coef), grads.data(), grads.size());
  if constexpr (detail::has_sparse_blocks<std::decay_t<decltype(p)>>::value)
    for (auto* b : p.sparse_blocks()) {
      auto& v = b->sparse_grad().values;
      kernels::scale(T(coef), v.data(), static_cast<index>(v.size()));
    }
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
