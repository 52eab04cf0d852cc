// SPDX-License-Identifier: Apache-2.0
// cuBLAS for uvp: an owning handle and GEMM on row-major matrices in device memory.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: blas.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <type_traits>
#include <utility>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::cuda_backend {

/// An owning cuBLAS handle (cublasCreate / cublasDestroy), move-only. Creating one initialises
/// the device context, so it throws uvp::backend_error when there is no device. A handle is not
/// thread-safe: give each host thread its own.
class BlasHandle {
 public:
  /// A handle whose calls run on `stream` (default: the legacy default stream).
  explicit BlasHandle(cudaStream_t stream = nullptr) {
    UVP_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
      set_stream(stream);
    } catch (...) {
      (void)cublasDestroy(handle_);
      throw;
    }
  }

  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  BlasHandle(BlasHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  BlasHandle& operator=(BlasHandle&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) (void)cublasDestroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~BlasHandle() {
    if (handle_ != nullptr) (void)cublasDestroy(handle_);
  }

  void set_stream(cudaStream_t stream) { UVP_CUBLAS_CHECK(cublasSetStream(handle_, stream)); }
  /// The raw handle, for cuBLAS calls uvp does not wrap; nullptr after a move.
  cublasHandle_t get() const noexcept { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace uvp::cuda_backend

namespace uvp::detail {
/// T in a non-deduced context, so `gemm(h, a, b, c, m, n, k, 1.0)` works on float buffers.
template <class T>
struct cuda_scalar {
  using type = T;
};
template <class T>
using cuda_scalar_t = typename cuda_scalar<T>::type;
}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// C = alpha * A * B + beta * C for row-major, contiguous matrices in device memory:
/// A is m x k, B is k x n, C is m x n (as uvp::Matrix<T> stores them). T is float or double.
/// cuBLAS is column-major, and a row-major matrix is its transpose read column-major, so this
/// computes C^T = B^T * A^T: cublas<T>gemm(N, N, n, m, k, alpha, B, n, A, k, beta, C, n).
/// With beta == 0, C's old contents are not read (NaN in C does not propagate).
/// The call is asynchronous on the handle's stream.
/// Throws uvp::invalid_argument when a size is negative or above INT_MAX (cuBLAS takes int),
/// uvp::backend_error when cuBLAS fails.
template <class T>
void gemm(const BlasHandle& blas, index m, index n, index k, detail::cuda_scalar_t<T> alpha,
          const T* a, const T* b, detail::cuda_scalar_t<T> beta, T* c) {
  static_assert(is_scalar_v<T>, "uvp::cuda_backend::gemm: T must be float or double");
  const index dims[3] = {m, n, k};
  const char* names[3] = {"m", "n", "k"};
  for (int i = 0; i < 3; ++i) {
    if (dims[i] < 0 || dims[i] > INT_MAX)
      detail::raise<invalid_argument>("uvp::cuda_backend::gemm: ", names[i], " is ", dims[i],
                                      ", expected in [0, ", INT_MAX, "]");
  }
  if (m == 0 || n == 0) return;
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  // Leading dimensions must be >= 1 even when k == 0 (then C = beta * C).
  const int ldb = ni, lda = ki > 0 ? ki : 1, ldc = ni;
  if constexpr (std::is_same_v<T, float>) {
    UVP_CUBLAS_CHECK(cublasSgemm(blas.get(), CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, &alpha, b, ldb,
                                 a, lda, &beta, c, ldc));
  } else {
    UVP_CUBLAS_CHECK(cublasDgemm(blas.get(), CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, &alpha, b, ldb,
                                 a, lda, &beta, c, ldc));
  }
}

/// gemm on DeviceBuffers: `a` holds m x k, `b` k x n and `c` m x n elements (row-major).
/// Throws uvp::shape_error when a buffer's size does not match its shape.
template <class T>
void gemm(const BlasHandle& blas, const DeviceBuffer<T>& a, const DeviceBuffer<T>& b,
          DeviceBuffer<T>& c, index m, index n, index k, detail::cuda_scalar_t<T> alpha = T(1),
          detail::cuda_scalar_t<T> beta = T(0)) {
  struct Expect {
    const char* name;
    index size, rows, cols;
  };
  const Expect expected[3] = {{"a", a.size(), m, k}, {"b", b.size(), k, n}, {"c", c.size(), m, n}};
  for (const auto& e : expected) {
    if (e.rows >= 0 && e.cols >= 0 && e.size != e.rows * e.cols)
      detail::raise<shape_error>("uvp::cuda_backend::gemm: ", e.name, " has size ", e.size,
                                 ", expected ", e.rows, " x ", e.cols, " = ", e.rows * e.cols);
  }
  gemm<T>(blas, m, n, k, alpha, a.data(), b.data(), beta, c.data());
}

/// Whether gemm reads an operand as stored or transposed.
enum class Trans { none, transpose };

/// C = alpha * op(A) * op(B) + beta * C for row-major, contiguous device matrices: op(A) is
/// m x k (A stored m x k, or k x m when trans_a == Trans::transpose), op(B) is k x n (B stored
/// k x n, or n x k), C is m x n. Row-major storage is the column-major transpose, so this is
/// C^T = op(B)^T op(A)^T: cublas<T>gemm(op_b, op_a, n, m, k, alpha, B, ldb, A, lda, beta, C, n)
/// with lda / ldb the stored row lengths. What Dense needs: Y = X W^T, dW += dY^T X, dX = dY W.
/// Same checks, errors and asynchrony as gemm above.
template <class T>
void gemm(const BlasHandle& blas, Trans trans_a, Trans trans_b, index m, index n, index k,
          detail::cuda_scalar_t<T> alpha, const T* a, const T* b, detail::cuda_scalar_t<T> beta,
          T* c) {
  static_assert(is_scalar_v<T>, "uvp::cuda_backend::gemm: T must be float or double");
  const index dims[3] = {m, n, k};
  const char* names[3] = {"m", "n", "k"};
  for (int i = 0; i < 3; ++i) {
    if (dims[i] < 0 || dims[i] > INT_MAX)
      detail::raise<invalid_argument>("uvp::cuda_backend::gemm: ", names[i], " is ", dims[i],
                                      ", expected in [0, ", INT_MAX, "]");
  }
  if (m == 0 || n == 0) return;
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const bool ta = trans_a == Trans::transpose, tb = trans_b == Trans::transpose;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Stored row lengths; >= 1 even for an empty k (cuBLAS rejects 0).
  const int lda = ta ? mi : (ki > 0 ? ki : 1);
  const int ldb = tb ? (ki > 0 ? ki : 1) : ni;
  if constexpr (std::is_same_v<T, float>) {
    UVP_CUBLAS_CHECK(cublasSgemm(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, ldb, a, lda,
                                 &beta, c, ni));
  } else {
    UVP_CUBLAS_CHECK(cublasDgemm(blas.get(), op_b, op_a, ni, mi, ki, &alpha, b, ldb, a, lda,
                                 &beta, c, ni));
  }
}

}  // namespace uvp::cuda_backend
