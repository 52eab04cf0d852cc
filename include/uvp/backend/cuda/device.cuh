// SPDX-License-Identifier: Apache-2.0
// Queries whether a CUDA device can be used, without throwing when there is none.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: device.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

namespace uvp::cuda_backend {

/// Number of CUDA devices this process can use; 0 when there is none, no driver, or a driver
/// older than the runtime (all of which the runtime reports as errors; they are not thrown here,
/// since "no device" is an answer, not a failure).
inline int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // leave no error behind for the caller's next check
    return 0;
  }
  return n;
}

/// True when at least one CUDA device can be used. Call it before any other uvp::cuda_backend
/// function: those throw uvp::backend_error when there is no device.
inline bool device_available() noexcept { return device_count() > 0; }

}  // namespace uvp::cuda_backend
