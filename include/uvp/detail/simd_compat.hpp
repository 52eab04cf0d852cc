// SPDX-License-Identifier: Apache-2.0
// The few xsimd names that changed after 8.x, behind one interface (8.1 on Debian 12; 13-14 elsewhere).
#pragma once

#include <xsimd/xsimd.hpp>

namespace uvp::detail::simd {

template <class T>
using batch = xsimd::batch<T, xsimd::default_arch>;
template <class T>
using batch_bool = xsimd::batch_bool<T, xsimd::default_arch>;

template <class T>
inline constexpr std::size_t width = batch<T>::size;

/// Horizontal sum of a batch (`hadd` in xsimd 8, `reduce_add` later).
template <class T, class A>
inline T reduce_add(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(b);
#else
  return xsimd::hadd(b);
#endif
}

/// Converts a batch_bool between element types (`bool_cast` in xsimd 8, `batch_bool_cast` later).
template <class To, class From, class A>
inline auto bool_cast(const xsimd::batch_bool<From, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::batch_bool_cast<To>(b);
#else
  return xsimd::bool_cast(b);
#endif
}

}  // namespace uvp::detail::simd
