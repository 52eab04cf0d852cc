// SPDX-License-Identifier: Apache-2.0
// Row-wise kernels and checks the uvp::cuda neural blocks share: add a vector to every row of a
// row-major matrix, add its column sums to a vector, and name the first non-finite entry.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: row_kernels.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

/// y[r * cols + c] += b[c].
template <class T>
__global__ void cuda_add_row_vector_kernel(T* y, const T* b, index rows, index cols) {
  const index n = rows * cols;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] += b[i % cols];
}

/// db[c] += sum_r dy[r * cols + c]; one thread per column, rows in order (coalesced reads).
template <class T>
__global__ void cuda_column_sum_kernel(const T* dy, T* db, index rows, index cols) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index c = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += stride) {
    T acc = T(0);
    for (index r = 0; r < rows; ++r) acc += dy[r * cols + c];
    db[c] += acc;
  }
}

/// As detail/nn_rows.hpp's nn_check_finite: names the row and column of the first NaN / inf.
template <class T>
void cuda_nn_check_finite(cuda_backend::Reducer& r, const char* where, const char* what,
                          const cuda_backend::DeviceMatrix<T>& m) {
  const index i = r.first_index(CudaIsNonFinite<T>{m.data()}, m.size());
  if (i < m.size())
    raise<numeric_error>(where, ": ", what, " has a non-finite value (",
                         cuda_backend::read_element(m.data(), i, r.stream()), ") at row ",
                         i / m.cols(), ", column ", i % m.cols());
}

/// core/check.hpp's check_cols / check_shape, with the same messages.
inline void cuda_check_cols(const char* where, const char* what, index cols, index expected) {
  if (cols != expected)
    raise<shape_error>(where, ": ", what, " has ", cols, " columns, expected ", expected);
}
template <class T>
void cuda_check_shape(const char* where, const char* what, const cuda_backend::DeviceMatrix<T>& m,
                      index rows, index cols) {
  if (m.rows() != rows || m.cols() != cols)
    raise<shape_error>(where, ": ", what, " has shape (", m.rows(), ", ", m.cols(), "), expected (",
                       rows, ", ", cols, ")");
}

inline index cuda_checked_positive(const char* where, const char* what, index value) {
  if (value <= 0) raise<invalid_argument>(where, ": ", what, " must be > 0, got ", value);
  return value;
}

}  // namespace uvp::detail
