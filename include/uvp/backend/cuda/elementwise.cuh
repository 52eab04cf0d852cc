// SPDX-License-Identifier: Apache-2.0
// Element-wise CUDA kernels: thin launchers over the scalar functions the CPU code also uses.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: elementwise.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/elementwise_math.hpp"

namespace uvp::detail {

/// Grid-stride loop, so any n works with a capped grid.
template <class T>
__global__ void sigmoid_kernel(const T* x, T* y, index n) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = sigmoid_scalar(x[i]);
}

/// 256 threads per block; at most 65535 blocks (the grid-stride loop covers the rest).
inline dim3 cuda_grid_for(index n, unsigned block = 256) {
  const index blocks = (n + block - 1) / block;
  return dim3(static_cast<unsigned>(blocks < 65535 ? blocks : 65535));
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// y[i] = sigmoid(x[i]) for i in [0, n), on device pointers (x == y is allowed), asynchronous on
/// `stream`. The same uvp::detail::sigmoid_scalar as on the CPU, so the two agree to rounding.
/// Throws uvp::invalid_argument for n < 0, uvp::backend_error when the launch fails.
template <class T>
void sigmoid(const T* x, T* y, index n, cudaStream_t stream = nullptr) {
  if (n < 0)
    detail::raise<invalid_argument>("uvp::cuda_backend::sigmoid: n is ", n, ", expected >= 0");
  if (n == 0) return;
  constexpr unsigned block = 256;
  detail::sigmoid_kernel<T><<<detail::cuda_grid_for(n, block), block, 0, stream>>>(x, y, n);
  UVP_CUDA_CHECK(cudaGetLastError());  // launch errors (no device, bad configuration)
}

/// sigmoid over whole buffers, on y's stream. Throws uvp::shape_error when the sizes differ.
template <class T>
void sigmoid(const DeviceBuffer<T>& x, DeviceBuffer<T>& y) {
  if (x.size() != y.size())
    detail::raise<shape_error>("uvp::cuda_backend::sigmoid: y has size ", y.size(), ", expected ",
                               x.size());
  sigmoid(x.data(), y.data(), x.size(), y.stream());
}

}  // namespace uvp::cuda_backend
