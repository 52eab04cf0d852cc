// SPDX-License-Identifier: Apache-2.0
// Batch math (stable sigmoid, softplus, overflow-exact exp) and the loop skeletons of uvp's SIMD kernels.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

#include "uvp/core/config.hpp"
#include "uvp/detail/simd_compat.hpp"

namespace uvp::detail::simd {

/// True when xsimd has a register for T on the compile target. False on targets without SIMD,
/// or everywhere when UVP_NO_SIMD is defined: the kernels then run their scalar reference.
template <class T>
inline constexpr bool enabled =
#if defined(UVP_NO_SIMD)
    false;
#else
    xsimd::default_arch::supported() && xsimd::types::has_simd_register<T, xsimd::default_arch>::value;
#endif

/// Bytes a kernel's stack tail buffer is aligned to (one cache line covers every x86 / ARM batch).
inline constexpr std::size_t tail_alignment = 64;

namespace loop_detail {

template <class P>
inline void copy_back(const P* buf, P* dst, index r) noexcept {
  if constexpr (!std::is_const_v<P>) std::copy_n(buf, r, dst);
}

template <class T, index W, class Body, std::size_t... K, class... P>
inline void padded_tail(index r, Body& body, std::index_sequence<K...>, P*... ptrs) noexcept {
  alignas(tail_alignment) T buf[sizeof...(P)][W] = {};
  (std::copy_n(ptrs, r, buf[K]), ...);
  body(static_cast<P*>(buf[K])...);
  (copy_back<P>(static_cast<P*>(buf[K]), ptrs, r), ...);
}

}  // namespace loop_detail

/// Calls body(p0 + i, p1 + i, ...) for each full batch i = 0, W, 2W, ..., then once more on a
/// zero-padded stack copy of the remaining n % W elements, written back to the pointers to
/// non-const. The tail goes through the same batch code as the body, so an element's result does
/// not depend on n or on where it falls (bit for bit, unless the compiler contracts a * b + c into
/// an FMA differently at the two call sites, as GCC's default -ffp-contract=fast may on FMA
/// targets: then within an ulp or so). body may read and write the same element (x == y in
/// place). No allocation.
template <class T, class Body, class... P>
inline void for_each_batch(index n, Body&& body, P*... ptrs) noexcept {
  constexpr index w = static_cast<index>(width<T>);
  index i = 0;
  for (; i + w <= n; i += w) body((ptrs + i)...);
  if (i < n)
    loop_detail::padded_tail<T, w>(n - i, body, std::index_sequence_for<P...>{}, (ptrs + i)...);
}

/// Sum over i of term(p0 + i, p1 + i, ...) (a batch per call), with 4 batch accumulators in T
/// inside blocks of `block` elements and the block sums added in double. The rounding error is
/// then about (block / (4 W) + log2(4 W)) eps_T of sum |terms| plus n / block eps_double, instead
/// of n eps_T for a running sum.
template <class T, class Term, class... P>
inline double blocked_sum(index n, Term&& term, const P*... ptrs) noexcept {
  using B = batch<T>;
  constexpr index w = static_cast<index>(width<T>);
  constexpr index block = 1024;
  double total = 0;
  for (index start = 0; start < n; start += block) {
    const index len = std::min(block, n - start);
    B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    index i = 0;
    for (; i + 4 * w <= len; i += 4 * w) {
      a0 += term((ptrs + start + i)...);
      a1 += term((ptrs + start + i + w)...);
      a2 += term((ptrs + start + i + 2 * w)...);
      a3 += term((ptrs + start + i + 3 * w)...);
    }
    for_each_batch<T>(
        len - i, [&](const P*... q) { a0 += term(q...); }, (ptrs + start + i)...);
    total += static_cast<double>(reduce_add((a0 + a1) + (a2 + a3)));
  }
  return total;
}

/// 1 / (1 + exp(-x)) computed from e = exp(-|x|) <= 1: no overflow, exact 0 / 1 limits,
/// e / (1 + e) for x < 0 keeps full relative accuracy in the left tail.
template <class T, class A>
inline xsimd::batch<T, A> sigmoid(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B one(T(1));
  const B e = xsimd::exp(-xsimd::abs(x));
  const B d = one + e;
  return xsimd::select(x >= B(T(0)), one / d, e / d);
}

/// log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): exact for x >= 100 and tends to exp(x) for
/// x <= -100 without overflow.
template <class T, class A>
inline xsimd::batch<T, A> softplus(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  return xsimd::max(x, B(T(0))) + xsimd::log1p(xsimd::exp(-xsimd::abs(x)));
}

/// xsimd::exp, except near the overflow threshold: xsimd returns +inf for x in about
/// [88.38, 88.72] (float) and [709.44, 709.78] (double) where exp(x) is finite; there it is
/// computed as exp(x / 2)^2 (x / 2 is exact; <= 2.5 ulp).
template <class T, class A>
inline xsimd::batch<T, A> exp(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  // lo: safely below xsimd's cut-off; hi: the largest T whose exp is finite.
  const B lo(std::is_same_v<T, float> ? T(88.3) : T(709.4));
  const B hi(std::is_same_v<T, float> ? T(0x1.62e42ep+6f) : T(0x1.62e42fefa39efp+9));
  B y = xsimd::exp(x);
  const auto late = (x >= lo) & (x <= hi);
  if (xsimd::any(late)) {
    const B h = xsimd::exp(x * B(T(0.5)));
    y = xsimd::select(late, h * h, y);
  }
  return y;
}

}  // namespace uvp::detail::simd
