// SPDX-License-Identifier: Apache-2.0
// Element-wise CPU kernels (placeholder scalar versions; to be vectorised with xsimd).
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"

namespace uvp::kernels {

template <class T>
void sigmoid(const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
}

template <class T>
void axpy(T a, const T* x, T* y, index n) noexcept {
  for (index i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace uvp::kernels
