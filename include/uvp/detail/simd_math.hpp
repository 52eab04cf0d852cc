// SPDX-License-Identifier: Apache-2.0
// Batch math defined for every argument (exp, expm1, tanh, erf, sigmoid, softplus) and SIMD loop skeletons.
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

/// x with NaN lanes replaced by 0 and every other lane clamped to [lo, hi]. xsimd 8's exp,
/// expm1, tanh and erf turn their argument into an integer exponent with a plain float-to-int
/// cast (lane by lane for int64), which is undefined behaviour for NaN, +-inf and |x| beyond
/// about 6e18 (and what clang's -fsanitize=float-cast-overflow reports). The wrappers below feed
/// xsimd a safe argument chosen so that the result is the one xsimd gives for the original x,
/// then put NaN lanes back.
template <class T, class A>
inline xsimd::batch<T, A> safe_argument(const xsimd::batch<T, A>& x, T lo, T hi) noexcept {
  using B = xsimd::batch<T, A>;
  // min / max may pass a NaN lane through or not, depending on the ISA: the select decides.
  return xsimd::select(x != x, B(T(0)), xsimd::min(xsimd::max(x, B(lo)), B(hi)));
}

/// xsimd::exp's bounds: exp(x) = 0 for x <= minlog and +inf for x >= maxlog (xsimd returns
/// those exact values there, so clamping to them changes no result).
template <class T>
inline constexpr T exp_minlog = std::is_same_v<T, float> ? T(-88.3762626647949f) : T(-708.3964185322641);
template <class T>
inline constexpr T exp_maxlog = std::is_same_v<T, float> ? T(88.3762626647949f) : T(709.78271289338400);

/// xsimd::exp, with two differences: every argument is defined (-inf gives 0, +inf gives +inf,
/// NaN gives NaN, with no float-to-int cast of a non-finite or huge value; see safe_argument),
/// and near the overflow threshold, where xsimd returns +inf for x in about [88.38, 88.72]
/// (float) and [709.44, 709.78] (double) although exp(x) is finite, it is computed as
/// exp(x / 2)^2 (x / 2 is exact; <= 2.5 ulp). Every SIMD exp of the library goes through here.
template <class T, class A>
inline xsimd::batch<T, A> exp(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B xc = safe_argument(x, exp_minlog<T>, exp_maxlog<T>);
  // lo: safely below xsimd's cut-off; hi: the largest T whose exp is finite.
  const B lo(std::is_same_v<T, float> ? T(88.3) : T(709.4));
  const B hi(std::is_same_v<T, float> ? T(0x1.62e42ep+6f) : T(0x1.62e42fefa39efp+9));
  B y = xsimd::exp(xc);
  const auto late = (x >= lo) & (x <= hi);
  if (xsimd::any(late)) {
    const B h = xsimd::exp(xsimd::select(late, x, xc) * B(T(0.5)));  // late lanes: finite, < hi
    y = xsimd::select(late, h * h, y);
  }
  return xsimd::select(x != x, x, y);
}

/// xsimd::expm1 (exp(x) - 1) with every argument defined: -1 below log(eps), +inf above maxlog,
/// NaN for NaN (the clamp bounds lie beyond both cut-offs, so no result changes).
template <class T, class A>
inline xsimd::batch<T, A> expm1(const xsimd::batch<T, A>& x) noexcept {
  const auto y = xsimd::expm1(safe_argument(x, exp_minlog<T>, T(2) * exp_maxlog<T>));
  return xsimd::select(x != x, x, y);
}

/// xsimd::tanh with every argument defined: tanh(x) is exactly +-1 in T for |x| >= maxlog / 2
/// (xsimd's 1 - 2 / (1 + exp(2|x|)) rounds to 1 there), so |x| is clamped to maxlog.
template <class T, class A>
inline xsimd::batch<T, A> tanh(const xsimd::batch<T, A>& x) noexcept {
  const auto y = xsimd::tanh(safe_argument(x, -exp_maxlog<T>, exp_maxlog<T>));
  return xsimd::select(x != x, x, y);
}

/// xsimd::erf with every argument defined: erf(x) is exactly +-1 in T for |x| >= 6 (xsimd's
/// 1 - exp(-x^2) erfc(x) rounds to 1), so |x| is clamped to 30.
template <class T, class A>
inline xsimd::batch<T, A> erf(const xsimd::batch<T, A>& x) noexcept {
  const auto y = xsimd::erf(safe_argument(x, T(-30), T(30)));
  return xsimd::select(x != x, x, y);
}

/// 1 / (1 + exp(-x)) computed from e = exp(-|x|) <= 1: no overflow, exact 0 / 1 limits,
/// e / (1 + e) for x < 0 keeps full relative accuracy in the left tail.
template <class T, class A>
inline xsimd::batch<T, A> sigmoid(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B one(T(1));
  const B e = simd::exp(-xsimd::abs(x));
  const B d = one + e;
  return xsimd::select(x >= B(T(0)), one / d, e / d);
}

/// log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): exact for x >= 100 and tends to exp(x) for
/// x <= -100 without overflow.
template <class T, class A>
inline xsimd::batch<T, A> softplus(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  return xsimd::max(x, B(T(0))) + xsimd::log1p(simd::exp(-xsimd::abs(x)));
}

}  // namespace uvp::detail::simd
