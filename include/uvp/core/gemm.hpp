// SPDX-License-Identifier: Apache-2.0
// General matrix product C = alpha A B + beta C on row-major matrices: uvp's GEMM entry point.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

#if defined(UVP_USE_BLAS)
// The Fortran BLAS prototypes as Eigen declares them (the UVP_USE_BLAS CMake option also defines
// EIGEN_USE_BLAS, under which Eigen includes this same header).
#include <Eigen/src/misc/blas.h>
#endif

namespace uvp {

/// The implementation behind uvp::gemm for float and double in this build: "blas" when compiled
/// with UVP_USE_BLAS (the CMake option of that name; links the system BLAS), "eigen" otherwise.
inline const char* gemm_backend_name() noexcept {
#if defined(UVP_USE_BLAS)
  return "blas";
#else
  return "eigen";
#endif
}

namespace detail {

/// True when the memory spans of two strided row-major matrices overlap.
template <class T>
bool ranges_overlap(const T* a, index a_rows, index a_stride, index a_cols, const T* b, index b_rows,
                    index b_stride, index b_cols) noexcept {
  if (a_rows == 0 || a_cols == 0 || b_rows == 0 || b_cols == 0) return false;
  const auto lo_a = reinterpret_cast<std::uintptr_t>(a);
  const auto hi_a = reinterpret_cast<std::uintptr_t>(a + (a_rows - 1) * a_stride + a_cols);
  const auto lo_b = reinterpret_cast<std::uintptr_t>(b);
  const auto hi_b = reinterpret_cast<std::uintptr_t>(b + (b_rows - 1) * b_stride + b_cols);
  return lo_a < hi_b && lo_b < hi_a;
}

#if defined(UVP_USE_BLAS)
// Row-major C = A B is column-major C^T = B^T A^T: B goes first.
inline void blas_gemm(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc) {
  sgemm_("N", "N", &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}
inline void blas_gemm(int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                      int ldb, double beta, double* c, int ldc) {
  dgemm_("N", "N", &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}
#endif

}  // namespace detail

/// C = alpha * A B + beta * C for row-major matrices: A is (m, k), B is (k, n), C is (m, n).
///
/// As in BLAS, beta = 0 (the default) overwrites C without reading it (NaN in C does not
/// propagate), and C must not share memory with A or B. A and B bind without a copy to a
/// row-major Matrix, Map or block (other expressions are evaluated into a temporary first); C to
/// a writable row-major Matrix, Map or block.
///
/// By default the product is Eigen's (`C.noalias() = alpha * A * B`), multi-threaded over
/// uvp::num_threads() when uvp is built with OpenMP. Compiled with UVP_USE_BLAS, float and double
/// products call the system BLAS's sgemm_/dgemm_ directly (with OpenBLAS's OpenMP build they
/// follow the same thread count); see docs/performance.md (W6) for what each reaches.
///
/// Throws uvp::shape_error when the shapes do not agree and uvp::invalid_argument when C overlaps
/// A or B.
template <class T>
void gemm(ConstMatrixRef<T> A, ConstMatrixRef<T> B, MatrixRef<T> C, T alpha = T(1), T beta = T(0)) {
  constexpr const char* where = "uvp::gemm";
  detail::check_rows(where, "B", B.rows(), A.cols());
  detail::check_shape(where, "C", C.rows(), C.cols(), A.rows(), B.cols());
  if (detail::ranges_overlap(C.data(), C.rows(), C.outerStride(), C.cols(), A.data(), A.rows(),
                             A.outerStride(), A.cols()))
    detail::raise<invalid_argument>(where, ": C overlaps A (the output must not alias an input)");
  if (detail::ranges_overlap(C.data(), C.rows(), C.outerStride(), C.cols(), B.data(), B.rows(),
                             B.outerStride(), B.cols()))
    detail::raise<invalid_argument>(where, ": C overlaps B (the output must not alias an input)");

  const index m = A.rows(), k = A.cols(), n = B.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = beta C
    if (beta == T(0))
      C.setZero();
    else
      C *= beta;
    return;
  }
#if defined(UVP_USE_BLAS)
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    constexpr index int_max = std::numeric_limits<int>::max();
    if (m <= int_max && n <= int_max && k <= int_max && A.outerStride() <= int_max &&
        B.outerStride() <= int_max && C.outerStride() <= int_max) {
      detail::blas_gemm(int(m), int(n), int(k), alpha, A.data(), int(A.outerStride()), B.data(),
                        int(B.outerStride()), beta, C.data(), int(C.outerStride()));
      return;
    }
  }
#endif
  if (beta == T(0)) {
    C.noalias() = alpha * A * B;
  } else {
    if (beta != T(1)) C *= beta;
    C.noalias() += alpha * A * B;
  }
}

}  // namespace uvp
