// SPDX-License-Identifier: Apache-2.0
// Backend policy tags and their traits; every block is templated on one (default: uvp::cpu).
#pragma once

#include <type_traits>

namespace uvp {

/// The CPU backend: Eigen for linear algebra, xsimd for element-wise work, OpenMP for threads.
struct cpu {};
/// The CUDA backend: device memory, cuBLAS, kernels. Its code is visible only to nvcc
/// (include "uvp/backend/cuda/cuda.cuh" from a .cu file); a host-only build never sees it.
struct cuda {};

template <class Backend>
struct backend_traits {
  static_assert(sizeof(Backend) == 0,
                "uvp: unknown backend; use uvp::cpu or uvp::cuda as the Backend template argument");
};
template <>
struct backend_traits<cpu> {
  static constexpr const char* name = "cpu";
  static constexpr bool is_device = false;
};
template <>
struct backend_traits<cuda> {
  static constexpr const char* name = "cuda";
  static constexpr bool is_device = true;
};

template <class Backend>
inline constexpr bool is_backend_v = std::is_same_v<Backend, cpu> || std::is_same_v<Backend, cuda>;

/// Scalar types the blocks accept.
template <class T>
inline constexpr bool is_scalar_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

}  // namespace uvp
