// SPDX-License-Identifier: Apache-2.0
// Checking macros for CUDA runtime and cuBLAS calls: a failure throws uvp::backend_error.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: error.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "uvp/core/error.hpp"

namespace uvp::detail {

/// Throws uvp::backend_error naming the call, where it was made and the runtime's status:
/// `uvp::cuda: cudaMalloc(&p, bytes) failed at buffer.cu:42: cudaErrorMemoryAllocation (out of
/// memory)`.
inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  // Reset the runtime's last-error slot so that a caught, non-sticky error does not resurface
  // in the next cudaGetLastError() check (sticky errors stay whatever we do).
  (void)cudaGetLastError();
  raise<backend_error>("uvp::cuda: ", call, " failed at ", file, ":", line, ": ",
                       cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}

/// As check_cuda, for cuBLAS statuses:
/// `uvp::cuda: cublasSgemm(...) failed at blas.cuh:80: CUBLAS_STATUS_INVALID_VALUE (...)`.
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  raise<backend_error>("uvp::cuda: ", call, " failed at ", file, ":", line, ": ",
                       cublasGetStatusName(status), " (", cublasGetStatusString(status), ")");
}

}  // namespace uvp::detail

/// Evaluates a CUDA runtime call once; if it does not return cudaSuccess, throws
/// uvp::backend_error with the call's text, file:line and the status name and string.
#define UVP_CUDA_CHECK(call) ::uvp::detail::check_cuda((call), #call, __FILE__, __LINE__)

/// Evaluates a cuBLAS call once; if it does not return CUBLAS_STATUS_SUCCESS, throws
/// uvp::backend_error with the call's text, file:line and the status name and string.
#define UVP_CUBLAS_CHECK(call) ::uvp::detail::check_cublas((call), #call, __FILE__, __LINE__)
