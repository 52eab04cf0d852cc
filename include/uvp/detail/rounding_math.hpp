// SPDX-License-Identifier: Apache-2.0
// Products and sums rounded once each, on the host and on the device: nvcc fuses a * b + c into
// one FMA by default (one rounding instead of two), the host build (no -mfma) does not. Formulas
// that must give the same bits on both backends (the optimizers' updates) use these.
#pragma once

#include "uvp/core/config.hpp"

namespace uvp::detail {

/// a * b, rounded to nearest, never contracted with a neighbouring add.
template <class T>
UVP_HOST_DEVICE inline T rn_mul(T a, T b) noexcept {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == sizeof(float))
    return __fmul_rn(a, b);
  else
    return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

/// a + b, rounded to nearest, never contracted with a neighbouring multiply.
template <class T>
UVP_HOST_DEVICE inline T rn_add(T a, T b) noexcept {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == sizeof(float))
    return __fadd_rn(a, b);
  else
    return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace uvp::detail
