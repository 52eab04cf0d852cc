// SPDX-License-Identifier: Apache-2.0
// Training losses on device memory: BCE with logits and MSE, mean reduction, with their gradient
// written in the same pass (one kernel reads each input once, writes grad, and sums in double).
//
//   bce_with_logits:  loss = sum_i w_i [max(z_i, 0) - z_i y_i + log(1 + exp(-|z_i|))] / N
//                     grad_i = w_i (sigmoid(z_i) - y_i) / N
//   mse_loss:         loss = sum_i w_i (p_i - y_i)^2 / N,   grad_i = 2 w_i (p_i - y_i) / N
//
// As uvp::bce_with_logits / uvp::mse_loss (losses/*.hpp) with Reduction::mean, on DeviceSpans;
// the per-element formulas are shared (uvp/detail/loss_math.hpp). The loss comes back to the
// host, so these wait for the reducer's stream. Sums are a fixed-order tree in double (the CPU
// sums left to right in double), so the two agree to about 1e-15 relative, not to the bit.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: losses.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/loss_math.hpp"

namespace uvp::detail {

// Reduction terms: term(i) adds sample i's weighted loss and writes its gradient (if any).
template <class T>
struct CudaBceTerm {
  const T *z, *y, *w;
  T* grad;
  double scale;
  __device__ double operator()(index i) const {
    const double wi = w ? double(w[i]) : 1.0;
    if (grad) grad[i] = static_cast<T>(wi * double(bce_logits_delta(z[i], y[i])) * scale);
    return wi * double(bce_logits_value(z[i], y[i]));
  }
};

template <class T>
struct CudaMseTerm {
  const T *p, *y, *w;
  T* grad;
  double scale;
  __device__ double operator()(index i) const {
    const double wi = w ? double(w[i]) : 1.0;
    const double d = double(p[i]) - double(y[i]);
    if (grad) grad[i] = static_cast<T>(2.0 * wi * d * scale);
    return wi * d * d;
  }
};

/// losses/reduction.hpp's check_elementwise_loss (mean): sizes only, as on the CPU. An empty
/// batch (n = 0) is valid, as on the CPU: the callers return 0 without a launch.
template <class T>
double cuda_check_elementwise_loss(const char* where, index n, cuda_backend::DeviceSpan<const T> targets,
                                   cuda_backend::DeviceSpan<T> grad,
                                   cuda_backend::DeviceSpan<const T> weights) {
  cuda_check_size(where, "targets", targets.size(), n);
  if (!grad.empty()) cuda_check_size(where, "grad", grad.size(), n);
  if (!weights.empty()) cuda_check_size(where, "weights", weights.size(), n);
  return n > 0 ? 1.0 / double(n) : 1.0;
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// Mean binary cross-entropy of logits (N) against targets (N, soft labels in [0, 1] allowed);
/// weights (optional, N) scale each term; grad (optional, N) receives dloss/dz. All spans are
/// device memory; the work queues on reducer.stream(). An empty batch gives 0 (no launch).
/// Throws uvp::shape_error for a size that differs, uvp::backend_error when CUDA fails.
template <class T>
double bce_with_logits(Reducer& reducer, DeviceSpan<const T> logits, DeviceSpan<const T> targets,
                       DeviceSpan<T> grad = {}, DeviceSpan<const T> weights = {}) {
  const index n = logits.size();
  const double scale =
      detail::cuda_check_elementwise_loss("uvp::cuda_backend::bce_with_logits", n, targets, grad, weights);
  if (n == 0) return 0.0;
  return reducer.sum(detail::CudaBceTerm<T>{logits.data(), targets.data(),
                                            weights.empty() ? nullptr : weights.data(),
                                            grad.empty() ? nullptr : grad.data(), scale},
                     n) *
         scale;
}

/// Mean squared error of predictions (N) against targets (N), as bce_with_logits for the rest.
template <class T>
double mse_loss(Reducer& reducer, DeviceSpan<const T> predictions, DeviceSpan<const T> targets,
                DeviceSpan<T> grad = {}, DeviceSpan<const T> weights = {}) {
  const index n = predictions.size();
  const double scale = detail::cuda_check_elementwise_loss("uvp::cuda_backend::mse_loss", n, targets, grad, weights);
  if (n == 0) return 0.0;
  return reducer.sum(detail::CudaMseTerm<T>{predictions.data(), targets.data(),
                                            weights.empty() ? nullptr : weights.data(),
                                            grad.empty() ? nullptr : grad.data(), scale},
                     n) *
         scale;
}

}  // namespace uvp::cuda_backend
