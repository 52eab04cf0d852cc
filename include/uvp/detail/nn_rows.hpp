// SPDX-License-Identifier: Apache-2.0
// Internals shared by the matrix -> matrix blocks of uvp::nn (dense, activations, dropout,
// layer_norm, sequential): a finite-input check that throws uvp::numeric_error, element-wise
// kernels applied over (possibly strided) row-major matrices with OpenMP chunks, and grow-only
// workspaces.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"

namespace uvp::detail {

/// Elements below which the element-wise passes stay on one thread (a fork costs ~ a few us).
inline constexpr index nn_parallel_elements = index(1) << 16;
/// Rows below which row-wise passes (softmax, layer norm) stay on one thread.
inline constexpr index nn_parallel_rows = 256;

/// Multiply-adds below which a layer's GEMM runs on the calling thread only.
inline constexpr double nn_parallel_gemm_work = double(1 << 21);

/// Keeps Eigen's GEMM on the calling thread for products of less than nn_parallel_gemm_work
/// multiply-adds. Eigen forks for any product above 50,000 multiply-adds, and its parallel path
/// allocates packing buffers on every call; for the small products of an MLP (a batch of 256
/// through 64-32-1) the fork and join cost more than they save, and on a busy machine they stall
/// (measured: 50x slower training with two threads on two shared cores). Lowers only this
/// thread's OpenMP thread count (an ICV of the calling task), restored on scope exit.
class NnSerialGemm {
 public:
  explicit NnSerialGemm(double multiply_adds) noexcept {
#if defined(_OPENMP)
    if (multiply_adds < nn_parallel_gemm_work && omp_get_max_threads() > 1) {
      previous_ = omp_get_max_threads();
      omp_set_num_threads(1);
    }
#else
    (void)multiply_adds;
#endif
  }
  ~NnSerialGemm() {
#if defined(_OPENMP)
    if (previous_ > 0) omp_set_num_threads(previous_);
#endif
  }
  NnSerialGemm(const NnSerialGemm&) = delete;
  NnSerialGemm& operator=(const NnSerialGemm&) = delete;

 private:
#if defined(_OPENMP)
  int previous_ = 0;  // the thread count to restore; 0: nothing was changed
#endif
};

/// Throws uvp::numeric_error naming `what`, row r and the column of the first NaN / infinity in
/// row r of M, if it has one.
template <class T>
void nn_check_finite_row(const char* where, const char* what, const Eigen::Ref<const Matrix<T>>& M, index r) {
  if (kernels::all_finite(M.row(r).data(), M.cols())) return;
  for (index c = 0; c < M.cols(); ++c)
    if (!std::isfinite(M(r, c)))
      raise<numeric_error>(where, ": ", what, " has a non-finite value (", M(r, c), ") at row ", r, ", column ", c);
}

/// Throws uvp::numeric_error naming `what`, its row and column when M has a NaN or infinity.
template <class T>
void nn_check_finite(const char* where, const char* what, const Eigen::Ref<const Matrix<T>>& M) {
  // One pass over a contiguous M; the row-by-row search only runs when it has failed.
  if (M.outerStride() == M.cols() && kernels::all_finite(M.data(), M.size())) return;
  for (index r = 0; r < M.rows(); ++r) nn_check_finite_row<T>(where, what, M, r);
}

/// f(const T* in..., T* out, n) over matrices of one shape: one call per chunk of the flat
/// array when every operand is contiguous (split across threads when large), else one per row.
/// The kernels' results depend on each element alone, so the split does not change them.
template <class T, class F, class... In>
void nn_rowwise_apply(F&& f, Eigen::Ref<Matrix<T>> out, const In&... in) {
  const index rows = out.rows(), cols = out.cols(), n = rows * cols;
  if (n == 0) return;
  const bool contiguous = out.outerStride() == cols && ((in.outerStride() == cols) && ...);
  if (contiguous) {
    constexpr index chunk = 8192;  // a multiple of every SIMD width
    const index chunks = (n + chunk - 1) / chunk;
    T* o = out.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= nn_parallel_elements)
#endif
    for (index k = 0; k < chunks; ++k) {
      const index start = k * chunk, len = std::min(chunk, n - start);
      f((in.data() + start)..., o + start, len);
    }
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= nn_parallel_elements)
#endif
  for (index r = 0; r < rows; ++r) f(in.row(r).data()..., out.row(r).data(), cols);
}

/// A cache-line aligned workspace (what the SIMD kernels read best).
template <class T>
using AlignedBuffer = std::vector<T, aligned_allocator<T>>;

/// Grows v to at least n elements and returns its data. Never shrinks, so a caller's buffers
/// settle after the first call of the largest shape and later calls allocate nothing.
template <class V>
auto* grow(V& v, index n) {
  if (static_cast<index>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

/// A buffer that only grows: views of any size up to the largest asked for so far, with no
/// allocation once that size has been reached (what keeps training loops allocation-free when
/// the last batch is smaller).
template <class T>
class NnBuffer {
 public:
  T* reserve(index n) { return grow(data_, n); }
  Eigen::Map<Matrix<T>> matrix(index rows, index cols) { return {reserve(rows * cols), rows, cols}; }
  index capacity() const noexcept { return static_cast<index>(data_.size()); }
  T* data() noexcept { return data_.data(); }
  const T* data() const noexcept { return data_.data(); }

 private:
  AlignedBuffer<T> data_;
};

}  // namespace uvp::detail
