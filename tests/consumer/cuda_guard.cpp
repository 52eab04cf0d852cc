// SPDX-License-Identifier: Apache-2.0
// Must NOT compile with a host compiler: uvp's .cuh headers stop with a clear #error (ctest
// uvp_cuda_header_guard checks the message).
#include "uvp/backend/cuda/cuda.cuh"
