// SPDX-License-Identifier: Apache-2.0
// Argument checks on device data with the CPU's messages: one pass finds the first offending
// element (Reducer::first_index), which is then copied to the host and named in the exception.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: checks.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cmath>

#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

template <class T>
struct CudaIsNonFinite {
  const T* x;
  __device__ bool operator()(index i) const { return !isfinite(x[i]); }
};
template <class T>
struct CudaIsNotBinary {
  const T* y;
  __device__ bool operator()(index i) const { return !(y[i] == T(0) || y[i] == T(1)); }
};
template <class T>
struct CudaIsBadWeight {
  const T* w;
  __device__ bool operator()(index i) const { return !(w[i] >= T(0)) || !isfinite(w[i]); }
};
template <class T>
struct CudaIsNotProbability {
  const T* p;
  __device__ bool operator()(index i) const { return !(p[i] >= T(0) && p[i] <= T(1)); }
};

/// As core/check.hpp's check_finite: "<where>: <what> has a non-finite value (v) at flat index i".
/// `error` is the exception type (uvp::invalid_argument for inputs, uvp::numeric_error for the
/// gradients an optimizer is given).
template <class Error = invalid_argument, class T>
void cuda_check_finite(cuda_backend::Reducer& r, const char* where, const char* what,
                       const T* x, index n) {
  const index i = r.first_index(CudaIsNonFinite<T>{x}, n);
  if (i < n)
    raise<Error>(where, ": ", what, " has a non-finite value (",
                 cuda_backend::read_element(x, i, r.stream()), ") at flat index ", i);
}

/// As core/check.hpp's check_binary_labels.
template <class T>
void cuda_check_binary_labels(cuda_backend::Reducer& r, const char* where, const char* what,
                              const T* y, index n) {
  const index i = r.first_index(CudaIsNotBinary<T>{y}, n);
  if (i < n)
    raise<invalid_argument>(where, ": ", what, "[", i, "] = ",
                            cuda_backend::read_element(y, i, r.stream()),
                            " is not a binary label (expected 0 or 1)");
}

/// As core/check.hpp's check_sample_weight for a non-empty weight vector of size n.
template <class T>
void cuda_check_sample_weight(cuda_backend::Reducer& r, const char* where, const T* w, index n) {
  const index i = r.first_index(CudaIsBadWeight<T>{w}, n);
  if (i < n)
    raise<invalid_argument>(where, ": sample_weight[", i, "] = ",
                            cuda_backend::read_element(w, i, r.stream()),
                            " must be finite and >= 0");
}

/// As metrics/classification.hpp's log_loss check of y_prob.
template <class T>
void cuda_check_probabilities(cuda_backend::Reducer& r, const char* where, const T* p, index n) {
  const index i = r.first_index(CudaIsNotProbability<T>{p}, n);
  if (i < n)
    raise<invalid_argument>(where, ": y_prob[", i, "] = ",
                            cuda_backend::read_element(p, i, r.stream()),
                            " is not a probability (expected a value in [0, 1])");
}

}  // namespace uvp::detail
