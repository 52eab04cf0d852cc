// SPDX-License-Identifier: Apache-2.0
// Umbrella header of the CUDA backend (uvp::cuda): include it from .cu files compiled by nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: cuda.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include "uvp/backend/cuda/adam.cuh"
#include "uvp/backend/cuda/attention.cuh"
#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/blas_strided.cuh"
#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/conv1d.cuh"
#include "uvp/backend/cuda/dense.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/embedding.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/host_span.cuh"
#include "uvp/backend/cuda/layer_norm.cuh"
#include "uvp/backend/cuda/losses.cuh"
#include "uvp/backend/cuda/lstm.cuh"
#include "uvp/backend/cuda/lstm_cell.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/metrics.cuh"
#include "uvp/backend/cuda/optimizer.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/cuda/sgd.cuh"
#include "uvp/backend/cuda/stream.cuh"
#include "uvp/backend/tags.hpp"
