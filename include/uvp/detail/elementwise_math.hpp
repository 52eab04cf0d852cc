// SPDX-License-Identifier: Apache-2.0
// Scalar element-wise functions shared by host code and CUDA kernels (one definition, both sides).
#pragma once

#include <cmath>

#include "uvp/core/config.hpp"

namespace uvp::detail {

/// Logistic sigmoid 1 / (1 + exp(-x)) for float or double, on the host or (under nvcc) the device.
/// Only exp of a non-positive argument is taken, so it never overflows: large negative x gives a
/// small positive value instead of 1 / inf, and sigmoid(-x) == 1 - sigmoid(x) up to rounding.
template <class T>
UVP_HOST_DEVICE inline T sigmoid_scalar(T x) noexcept {
  using std::exp;  // nvcc provides __host__ __device__ overloads of std::exp for float and double
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T z = exp(x);
  return z / (T(1) + z);
}

}  // namespace uvp::detail
