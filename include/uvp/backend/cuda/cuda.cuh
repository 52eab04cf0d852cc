// SPDX-License-Identifier: Apache-2.0
// Umbrella header of the CUDA backend (uvp::cuda): include it from .cu files compiled by nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: cuda.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/tags.hpp"
