// SPDX-License-Identifier: Apache-2.0
// General matrix product C = alpha A B + beta C on row-major matrices: uvp's GEMM entry point.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/gemm_kernel.hpp"

#if defined(UVP_USE_BLAS)
// The Fortran BLAS prototypes as Eigen declares them (the UVP_USE_BLAS CMake option also defines
// EIGEN_USE_BLAS, under which Eigen includes this same header).
#include <Eigen/src/misc/blas.h>
#endif

namespace uvp {

/// The implementation behind uvp::gemm for float and double in this build: "blas" when compiled
/// with UVP_USE_BLAS (the CMake option of that name; links the system BLAS); otherwise uvp's own
/// packed kernel for the SIMD target the code is compiled for ("uvp-avx512", "uvp-avx2",
/// "uvp-avx", "uvp-sse", "uvp-neon": xsimd's default architecture, so -march decides), or "eigen"
/// where there is no such target.
inline const char* gemm_backend_name() noexcept {
#if defined(UVP_USE_BLAS)
  return "blas";
#else
  return detail::packed_gemm::backend_name();
#endif
}

/// True when uvp::gemm<T> gives each element of C by an operation sequence that depends on K
/// only (see uvp::gemm): uvp's own kernel, that is float and double on a SIMD target without
/// UVP_USE_BLAS. Eigen's and a BLAS's kernels change the order with the shape and the threads.
template <class T>
inline constexpr bool gemm_is_batch_invariant =
#if defined(UVP_USE_BLAS)
    false;
#else
    detail::packed_gemm::supported<T>;
#endif

/// Which way uvp::gemm reads an operand: as stored, or transposed (a PyTorch Linear weight,
/// stored (out, in), is multiplied as Wᵀ).
enum class Trans { none, transpose };

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
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B goes first, and a row-major
// operand read as stored is a column-major one transposed ("N"), a transposed one is "T".
inline void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                      const float* b, int ldb, float beta, float* c, int ldc) {
  sgemm_(tb ? "T" : "N", ta ? "T" : "N", &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}
inline void blas_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                      const double* b, int ldb, double beta, double* c, int ldc) {
  dgemm_(tb ? "T" : "N", ta ? "T" : "N", &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}
#endif

/// C = alpha op(A) op(B) + beta C by Eigen's product (m, n, k > 0, shapes checked).
template <class T>
void eigen_gemm(bool ta, bool tb, const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B, MatrixRef<T>& C,
                T alpha, T beta) {
  auto product = [&](const auto& op_a, const auto& op_b) {
    if (beta == T(0)) {
      C.noalias() = alpha * op_a * op_b;
    } else {
      if (beta != T(1)) C *= beta;
      C.noalias() += alpha * op_a * op_b;
    }
  };
  if (ta && tb)
    product(A.transpose(), B.transpose());
  else if (ta)
    product(A.transpose(), B);
  else if (tb)
    product(A, B.transpose());
  else
    product(A, B);
}

}  // namespace detail

/// C = alpha op(A) op(B) + beta C for row-major matrices, op(X) = X or Xᵀ as trans_a and trans_b
/// say: op(A) is (m, k), op(B) is (k, n), C is (m, n). Transposition makes no copy of its own: the
/// kernel reads the operand in place while packing it into panels. A single row times a
/// transposed B is the exception that costs: it runs a scalar loop (the per-element order below
/// leaves no vector form without transposing B), about 6 times slower than B as stored (see
/// docs/performance.md, W6).
///
/// As in BLAS, beta = 0 (the default) overwrites C without reading it (NaN in C does not
/// propagate), and C must not share memory with A or B. A and B bind without a copy to a
/// row-major Matrix, Map or block (other expressions are evaluated into a temporary first); C to
/// a writable row-major Matrix, Map or block.
///
/// Backends (gemm_backend_name()): for float and double, uvp's own GEMM (detail/gemm_kernel.hpp):
/// A and B packed into panels, an xsimd register-blocked micro-kernel (14 x 32 floats with
/// AVX-512, 6 x 16 with AVX2), multi-threaded over uvp::num_threads() when uvp is built with
/// OpenMP and the product has over 2^21 multiply-adds. Compiled with UVP_USE_BLAS, they call the
/// system BLAS's sgemm_/dgemm_ instead (with OpenBLAS's OpenMP build they follow the same thread
/// count). Other element types, and targets xsimd has no SIMD architecture for, use Eigen's
/// product. See docs/performance.md (W6) for what each reaches.
///
/// The same answer at any batch size (uvp's own kernel; gemm_is_batch_invariant<T>): each element
/// C[i][j] is computed by a sequence of floating-point operations that depends on K only, not on
/// the number of rows m, the position of row i, n, the other rows' values, or the thread count.
/// K is cut into ceil(K / 512) blocks of equal length (the last one shorter), s_b is the sum of
/// A[i][p] B[p][j] over block b by fused multiply-adds from 0 in increasing p, and C[i][j] =
/// alpha s_0 (+ beta C[i][j] by one more fused multiply-add when beta != 0), then C[i][j] =
/// fma(alpha, s_b, C[i][j]) for the next blocks. So row i of a batch is bit-identical to the same
/// row multiplied alone, at 1 or many threads. Eigen's and a BLAS's products do not promise this
/// (Eigen, for one, switches to other kernels for one row and for small products).
///
/// Throws uvp::shape_error when the shapes do not agree and uvp::invalid_argument when C overlaps
/// A or B.
template <class T>
void gemm(Trans trans_a, Trans trans_b, ConstMatrixRef<T> A, ConstMatrixRef<T> B, MatrixRef<T> C,
          T alpha = T(1), T beta = T(0)) {
  constexpr const char* where = "uvp::gemm";
  const bool ta = trans_a == Trans::transpose, tb = trans_b == Trans::transpose;
  const index m = ta ? A.cols() : A.rows(), k = ta ? A.rows() : A.cols();
  const index n = tb ? B.rows() : B.cols();
  if (tb)
    detail::check_cols(where, "B (transposed)", B.cols(), k);
  else
    detail::check_rows(where, "B", B.rows(), k);
  detail::check_shape(where, "C", C.rows(), C.cols(), m, n);
  if (detail::ranges_overlap(C.data(), C.rows(), C.outerStride(), C.cols(), A.data(), A.rows(),
                             A.outerStride(), A.cols()))
    detail::raise<invalid_argument>(where, ": C overlaps A (the output must not alias an input)");
  if (detail::ranges_overlap(C.data(), C.rows(), C.outerStride(), C.cols(), B.data(), B.rows(),
                             B.outerStride(), B.cols()))
    detail::raise<invalid_argument>(where, ": C overlaps B (the output must not alias an input)");

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
      detail::blas_gemm(ta, tb, int(m), int(n), int(k), alpha, A.data(), int(A.outerStride()), B.data(),
                        int(B.outerStride()), beta, C.data(), int(C.outerStride()));
      return;
    }
  }
  detail::eigen_gemm<T>(ta, tb, A, B, C, alpha, beta);
#else
  if constexpr (detail::packed_gemm::supported<T>) {
    // Element (r, c) of op(X) at data[r * rs + c * cs].
    const detail::packed_gemm::operand<T> a{A.data(), ta ? 1 : A.outerStride(), ta ? A.outerStride() : 1};
    const detail::packed_gemm::operand<T> b{B.data(), tb ? 1 : B.outerStride(), tb ? B.outerStride() : 1};
    detail::packed_gemm::gemm<T>(m, n, k, alpha, a, b, beta, C.data(), C.outerStride());
  } else {
    detail::eigen_gemm<T>(ta, tb, A, B, C, alpha, beta);
  }
#endif
}

/// C = alpha A B + beta C: uvp::gemm(Trans::none, Trans::none, A, B, C, alpha, beta).
template <class T>
void gemm(ConstMatrixRef<T> A, ConstMatrixRef<T> B, MatrixRef<T> C, T alpha = T(1), T beta = T(0)) {
  gemm<T>(Trans::none, Trans::none, A, B, C, alpha, beta);
}

}  // namespace uvp
