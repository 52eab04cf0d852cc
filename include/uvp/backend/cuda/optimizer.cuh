// SPDX-License-Identifier: Apache-2.0
// What uvp::Adam<T, uvp::cuda> and uvp::Sgd<T, uvp::cuda> share: the forward declarations of
// the CPU primaries they specialise, and optim/optimizer.hpp's argument checks with the same
// messages (that header is not included: it brings Eigen).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: optimizer.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp {

// The primaries (with their default Backend = cpu) are in optim/adam.hpp and optim/sgd.hpp.
template <class T, class Backend>
class Adam;
template <class T, class Backend>
class Sgd;

namespace detail {

// The option checks of optim/optimizer.hpp, with the same messages (that header brings Eigen).
inline void cuda_check_option_positive(const char* where, const char* what, double value) {
  if (!(value > 0) || !std::isfinite(value))
    raise<invalid_argument>(where, ": ", what, " must be finite and > 0, got ", value);
}
inline void cuda_check_option_non_negative(const char* where, const char* what, double value) {
  if (!(value >= 0) || !std::isfinite(value))
    raise<invalid_argument>(where, ": ", what, " must be finite and >= 0, got ", value);
}
inline void cuda_check_option_unit_open(const char* where, const char* what, double value) {
  if (!(value >= 0 && value < 1))
    raise<invalid_argument>(where, ": ", what, " must be in [0, 1), got ", value);
}
inline void cuda_check_lr(const char* where, double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    raise<invalid_argument>(where, ": lr must be finite and >= 0, got ", lr);
}

/// optimizer.hpp's check_step for device spans: sizes and slice first, then (optionally) the
/// gradients' finiteness on the device, all before anything is modified.
template <class T>
void cuda_check_step(const char* where, cuda_backend::DeviceSpan<T> params,
                     cuda_backend::DeviceSpan<const T> grads, index offset, index state_size,
                     bool check_finite_grads, cuda_backend::Reducer* reducer) {
  cuda_check_not_empty(where, "params", params.size());
  cuda_check_size(where, "grads", grads.size(), params.size());
  if (state_size == 0)
    raise<invalid_argument>(where,
                            ": the state is not sized; call resize(n) or take a full step first");
  if (offset < 0 || offset > state_size - params.size())
    raise<out_of_range_error>(where, ": slice [", offset, ", ", offset + params.size(),
                              ") is outside the state of size ", state_size);
  if (check_finite_grads)
    cuda_check_finite<numeric_error>(*reducer, where, "grads", grads.data(), grads.size());
}

}  // namespace detail

}  // namespace uvp
