// SPDX-License-Identifier: Apache-2.0
// CPU references for the CUDA tests, compiled by the host compiler (Eigen stays out of nvcc).
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"

namespace uvp_cuda_test {

/// n values uniform in [lo, hi) from uvp::Rng(seed).
template <class T>
std::vector<T> uniform(uvp::index n, std::uint64_t seed, double lo, double hi);

/// alpha * A * B + beta * C0 with Eigen; A m x k, B k x n, C0 m x n, all row-major.
/// beta == 0 ignores C0 (as cuBLAS does), so C0 may hold NaN.
template <class T>
std::vector<T> gemm(const std::vector<T>& a, const std::vector<T>& b, const std::vector<T>& c0,
                    uvp::index m, uvp::index n, uvp::index k, T alpha, T beta);

/// Forward error bound of that GEMM in T: 2 k u (|alpha| |A| |B| + |beta| |C0|) + u per element
/// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.5), u = epsilon.
template <class T>
std::vector<T> gemm_error_bound(const std::vector<T>& a, const std::vector<T>& b,
                                const std::vector<T>& c0, uvp::index m, uvp::index n, uvp::index k,
                                T alpha, T beta);

/// The pipeline the CUDA test runs on both backends: sigmoid(A * B), row-major m x n.
template <class T>
std::vector<T> sigmoid_of_product(uvp::cpu, const std::vector<T>& a, const std::vector<T>& b,
                                  uvp::index m, uvp::index n, uvp::index k);

}  // namespace uvp_cuda_test
