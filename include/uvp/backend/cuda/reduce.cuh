// SPDX-License-Identifier: Apache-2.0
// Reductions on device memory for the uvp::cuda losses, metrics and optimizers: sums in double
// (deterministic: a fixed grid, a tree per block, one block for the partials, no atomics) and
// "the first index where a predicate holds" (argument checks that name the offending element).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: reduce.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

inline constexpr unsigned cuda_reduce_block = 256;
/// Blocks of the first pass: enough to fill an H100 (132 SMs x 8), few enough for one block
/// of the second pass to add the partials.
inline constexpr unsigned cuda_reduce_blocks = 1024;

/// Sum over the block's threads of `value`, in shared memory; the result is valid in thread 0.
__device__ inline double cuda_block_sum(double value) {
  __shared__ double shared[cuda_reduce_block];
  shared[threadIdx.x] = value;
  __syncthreads();
  for (unsigned s = cuda_reduce_block / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  return shared[0];
}

/// First pass: partial[b] = sum of term(i) over the i that block b's threads visit.
/// Term: a copyable struct with `__device__ double operator()(index i) const`.
template <class Term>
__global__ void __launch_bounds__(cuda_reduce_block)
    cuda_reduce_kernel(Term term, index n, double* partial) {
  double acc = 0;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    acc += term(i);
  const double block = cuda_block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = block;
}

/// Second pass (one block): partial[0] = sum of partial[0 .. count). A template, so that the
/// header can be in several .cu files of one program (a kernel cannot be `inline`).
template <class Unused = void>
__global__ void __launch_bounds__(cuda_reduce_block)
    cuda_reduce_partials_kernel(double* partial, unsigned count) {
  double acc = 0;
  for (unsigned i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const double total = cuda_block_sum(acc);
  if (threadIdx.x == 0) partial[0] = total;
}

/// *first = min(*first, i) over the i in [0, n) where pred(i) holds (*first starts at n).
template <class Pred>
__global__ void cuda_first_index_kernel(Pred pred, index n, unsigned long long* first) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    if (pred(i)) atomicMin(first, static_cast<unsigned long long>(i));
}

/// Size checks with the CPU's messages (core/check.hpp is not included: it brings Eigen).
inline void cuda_check_not_empty(const char* where, const char* what, index size) {
  if (size <= 0) raise<invalid_argument>(where, ": ", what, " is empty");
}
inline void cuda_check_size(const char* where, const char* what, index actual, index expected) {
  if (actual != expected)
    raise<shape_error>(where, ": ", what, " has size ", actual, ", expected ", expected);
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// Owns the device scratch of the reductions (1024 partial sums and one index), allocated by
/// the first sum() / first_index() call; make one per stream and reuse it, so that later calls
/// allocate nothing. Each call waits for its stream, since it returns a host value.
class Reducer {
 public:
  /// Allocates nothing and makes no CUDA call; the work of later calls queues on `stream`.
  explicit Reducer(cudaStream_t stream = nullptr) noexcept : stream_(stream) {}

  cudaStream_t stream() const noexcept { return stream_; }

  /// sum of term(i) for i in [0, n), accumulated in double (0 for n <= 0).
  template <class Term>
  double sum(const Term& term, index n) {
    if (n <= 0) return 0.0;
    allocate();
    const index wanted = (n + detail::cuda_reduce_block - 1) / detail::cuda_reduce_block;
    const unsigned blocks = static_cast<unsigned>(
        wanted < index(detail::cuda_reduce_blocks) ? wanted : index(detail::cuda_reduce_blocks));
    detail::cuda_reduce_kernel<<<blocks, detail::cuda_reduce_block, 0, stream()>>>(
        term, n, partial_.data());
    UVP_CUDA_CHECK(cudaGetLastError());
    detail::cuda_reduce_partials_kernel<><<<1, detail::cuda_reduce_block, 0, stream()>>>(
        partial_.data(), blocks);
    UVP_CUDA_CHECK(cudaGetLastError());
    double total = 0;
    UVP_CUDA_CHECK(cudaMemcpyAsync(&total, partial_.data(), sizeof(double),
                                   cudaMemcpyDeviceToHost, stream()));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return total;
  }

  /// The smallest i in [0, n) with pred(i), or n when there is none.
  template <class Pred>
  index first_index(const Pred& pred, index n) {
    if (n <= 0) return n;
    allocate();
    unsigned long long first = static_cast<unsigned long long>(n);
    UVP_CUDA_CHECK(cudaMemcpyAsync(first_.data(), &first, sizeof(first), cudaMemcpyHostToDevice,
                                   stream()));
    detail::cuda_first_index_kernel<<<detail::cuda_grid_for(n), 256, 0, stream()>>>(
        pred, n, first_.data());
    UVP_CUDA_CHECK(cudaGetLastError());
    UVP_CUDA_CHECK(cudaMemcpyAsync(&first, first_.data(), sizeof(first), cudaMemcpyDeviceToHost,
                                   stream()));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return static_cast<index>(first);
  }

 private:
  void allocate() {
    if (partial_.empty()) {
      partial_ = DeviceBuffer<double>(index(detail::cuda_reduce_blocks), stream_);
      first_ = DeviceBuffer<unsigned long long>(index(1), stream_);
    }
  }

  cudaStream_t stream_ = nullptr;
  DeviceBuffer<double> partial_;
  DeviceBuffer<unsigned long long> first_;
};

/// The value of device element `data[i]`, copied to the host (for error messages).
template <class T>
T read_element(const T* data, index i, cudaStream_t stream = nullptr) {
  T value{};
  UVP_CUDA_CHECK(cudaMemcpyAsync(&value, data + i, sizeof(T), cudaMemcpyDeviceToHost, stream));
  UVP_CUDA_CHECK(cudaStreamSynchronize(stream));
  return value;
}

}  // namespace uvp::cuda_backend
