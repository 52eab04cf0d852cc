// SPDX-License-Identifier: Apache-2.0
// cuBLAS GEMMs on row-major device matrices with explicit row strides, and the strided-batched
// form: what the sequence blocks need to work on "step t of every sequence" (rows b * S + t of a
// batch-first buffer: a matrix with row stride S * cols) and on all attention heads at once.
//
//   gemm_ld           C = alpha op(A) op(B) + beta C; A, B, C row-major with row strides lda, ldb, ldc
//   gemm_ld_batched   the same for `count` matrix triples at a fixed distance (elements) apart
//
// A row-major matrix with row stride ld is the column-major transpose with leading dimension ld,
// so C^T = op(B)^T op(A)^T: cublas<T>gemm(op_b, op_a, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc).
// blas.cuh's gemm is the special case of contiguous matrices (ld = the stored row length).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: blas_strided.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <type_traits>

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

/// Checks one GEMM dimension or stride for cuBLAS (int) and returns it as int.
inline int cuda_blas_int(const char* where, const char* what, index v, index lo) {
  if (v < lo || v > INT_MAX)
    raise<invalid_argument>(where, ": ", what, " is ", v, ", expected in [", lo, ", ", INT_MAX, "]");
  return static_cast<int>(v);
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// C = alpha op(A) op(B) + beta C for row-major device matrices with row strides: op(A) is m x k
/// (A stored m x k with row stride lda, or k x m when trans_a == Trans::transpose), op(B) is k x n
/// (stored k x n or n x k, row stride ldb), C is m x n with row stride ldc. Asynchronous on the
/// handle's stream. beta == 0: C is not read. Throws uvp::invalid_argument for a size outside
/// [0, INT_MAX] or a stride shorter than its stored row.
template <class T>
void gemm_ld(const BlasHandle& blas, Trans trans_a, Trans trans_b, index m, index n, index k,
             detail::cuda_scalar_t<T> alpha, const T* a, index lda, const T* b, index ldb,
             detail::cuda_scalar_t<T> beta, T* c, index ldc) {
  static_assert(is_scalar_v<T>, "uvp::cuda_backend::gemm_ld: T must be float or double");
  constexpr const char* where = "uvp::cuda_backend::gemm_ld";
  const bool ta = trans_a == Trans::transpose, tb = trans_b == Trans::transpose;
  const int mi = detail::cuda_blas_int(where, "m", m, 0), ni = detail::cuda_blas_int(where, "n", n, 0);
  const int ki = detail::cuda_blas_int(where, "k", k, 0);
  // Stored row lengths: the smallest legal stride (>= 1: cuBLAS rejects 0).
  const index row_a = ta ? m : k, row_b = tb ? k : n;
  const int la = detail::cuda_blas_int(where, "lda", lda, row_a > 1 ? row_a : 1);
  const int lb = detail::cuda_blas_int(where, "ldb", ldb, row_b > 1 ? row_b : 1);
  const int lc = detail::cuda_blas_int(where, "ldc", ldc, n > 1 ? n : 1);
  if (m == 0 || n == 0) return;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if constexpr (std::is_same_v<T, float>) {
    UVP_CUBLAS_CHECK(cublasSgemm(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, lb, a, la, &beta, c, lc));
  } else {
    UVP_CUBLAS_CHECK(cublasDgemm(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, lb, a, la, &beta, c, lc));
  }
}

/// `count` GEMMs C_i = alpha op(A_i) op(B_i) + beta C_i with A_i = a + i * stride_a (elements),
/// B_i = b + i * stride_b, C_i = c + i * stride_c, each as in gemm_ld (one cuBLAS call,
/// cublas<T>gemmStridedBatched). What attention uses for its heads.
template <class T>
void gemm_ld_batched(const BlasHandle& blas, Trans trans_a, Trans trans_b, index m, index n, index k,
                     detail::cuda_scalar_t<T> alpha, const T* a, index lda, index stride_a, const T* b,
                     index ldb, index stride_b, detail::cuda_scalar_t<T> beta, T* c, index ldc,
                     index stride_c, index count) {
  static_assert(is_scalar_v<T>, "uvp::cuda_backend::gemm_ld_batched: T must be float or double");
  constexpr const char* where = "uvp::cuda_backend::gemm_ld_batched";
  const bool ta = trans_a == Trans::transpose, tb = trans_b == Trans::transpose;
  const int mi = detail::cuda_blas_int(where, "m", m, 0), ni = detail::cuda_blas_int(where, "n", n, 0);
  const int ki = detail::cuda_blas_int(where, "k", k, 0);
  const int cnt = detail::cuda_blas_int(where, "count", count, 0);
  const index row_a = ta ? m : k, row_b = tb ? k : n;
  const int la = detail::cuda_blas_int(where, "lda", lda, row_a > 1 ? row_a : 1);
  const int lb = detail::cuda_blas_int(where, "ldb", ldb, row_b > 1 ? row_b : 1);
  const int lc = detail::cuda_blas_int(where, "ldc", ldc, n > 1 ? n : 1);
  if (m == 0 || n == 0 || count == 0) return;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const long long sa = stride_a, sb = stride_b, sc = stride_c;
  if constexpr (std::is_same_v<T, float>) {
    UVP_CUBLAS_CHECK(cublasSgemmStridedBatched(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, lb, sb, a,
                                               la, sa, &beta, c, lc, sc, cnt));
  } else {
    UVP_CUBLAS_CHECK(cublasDgemmStridedBatched(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, lb, sb, a,
                                               la, sa, &beta, c, lc, sc, cnt));
  }
}

}  // namespace uvp::cuda_backend
