// SPDX-License-Identifier: Apache-2.0
// uvp::Sgd<T, uvp::cuda>: the CPU optimizer's specialisation for parameters and gradients in
// device memory. Same options struct (uvp::SgdOptions), checks, messages and member functions
// (optim/optimizer.hpp) as uvp::Sgd<T, uvp::cpu>, and the same per-element update
// (uvp/detail/sgd_math.hpp), run by one fused kernel per step: one read of p, g and the state
// and one write of p and the state per element.
//
// What differs from uvp::cpu: params / grads are DeviceSpans (device memory); the state lives in
// device memory (as DeviceBuffers); the constructor also takes the stream the kernels queue on.
// step() is asynchronous unless options().check_finite is set (that check reads an index back,
// so it waits for the stream).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: sgd.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/optimizer.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/sgd_math.hpp"

namespace uvp {
namespace detail {

template <bool Momentum, bool Nesterov, class T>
__global__ void cuda_sgd_kernel(T* p, const T* g, T* b, index n, SgdCoefficients<T> c) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    sgd_update_element<Momentum, Nesterov>(p[i], g[i], Momentum ? b + i : nullptr, c);
}

}  // namespace detail

/// SGD (momentum, Nesterov, weight decay) for one flat parameter vector in device memory (see
/// optim/sgd.hpp for the algorithm and the member functions' contract). State: the momentum
/// buffer in device memory, allocated on the first full step only when momentum > 0.
template <class T>
class Sgd<T, cuda> {
  static_assert(is_scalar_v<T>, "uvp::Sgd<T, uvp::cuda>: T must be float or double");

 public:
  using value_type = T;
  using backend_type = cuda;
  using options_type = SgdOptions;

  /// Kernels (and the check_finite pass) queue on `stream`.
  explicit Sgd(SgdOptions options = {}, cudaStream_t stream = nullptr)
      : options_(validated(options)), lr_(options.lr), stream_(stream), reducer_(stream) {}

  const SgdOptions& options() const noexcept { return options_; }
  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    detail::cuda_check_lr("uvp::Sgd::set_lr", lr);
    lr_ = lr;
  }
  index steps() const noexcept { return steps_; }
  index size() const noexcept { return size_; }
  cudaStream_t stream() const noexcept { return stream_; }

  /// The momentum buffer in device memory (empty when momentum = 0).
  const cuda_backend::DeviceBuffer<T>& momentum_buffer() const noexcept { return buf_; }

  void reset() noexcept {
    buf_ = {};
    size_ = 0;
    steps_ = 0;
    lr_ = options_.lr;
  }

  void resize(index n) {
    if (n <= 0) detail::raise<invalid_argument>("uvp::Sgd::resize: n must be > 0, got ", n);
    allocate(n);
  }

  /// One step over the whole vector: params (updated in place) and grads in device memory.
  void step(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads) {
    constexpr const char* where = "uvp::Sgd::step";
    if (size_ != 0) detail::cuda_check_size(where, "params", params.size(), size_);
    detail::cuda_check_step(where, params, grads, 0, size_ == 0 ? params.size() : size_,
                            options_.check_finite, reducer());
    if (size_ == 0) allocate(params.size());
    begin_step();
    run(params, grads, 0);
  }

  /// One step over elements [offset, offset + n) of the vector (params, grads: that slice).
  void step(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads,
            index offset) {
    detail::cuda_check_step("uvp::Sgd::step", params, grads, offset, size_,
                            options_.check_finite, reducer());
    begin_step();
    run(params, grads, offset);
  }

  /// Counts one step for the update() calls that follow.
  void begin_step() noexcept { ++steps_; }

  /// Updates elements [offset, offset + n) for the current step.
  void update(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads,
              index offset) {
    constexpr const char* where = "uvp::Sgd::update";
    if (steps_ == 0)
      detail::raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    detail::cuda_check_step(where, params, grads, offset, size_, options_.check_finite,
                            reducer());
    run(params, grads, offset);
  }

 private:
  void allocate(index n) {
    if (options_.momentum != 0) {
      buf_ = cuda_backend::DeviceBuffer<T>(n, stream_);
      UVP_CUDA_CHECK(cudaMemsetAsync(buf_.data(), 0, buf_.bytes(), stream_));
    }
    size_ = n;
    steps_ = 0;
  }

  cuda_backend::Reducer* reducer() noexcept { return options_.check_finite ? &reducer_ : nullptr; }

  static SgdOptions validated(const SgdOptions& o) {
    constexpr const char* where = "uvp::Sgd";
    detail::cuda_check_option_positive(where, "lr", o.lr);
    if (!(o.momentum >= 0 && o.momentum <= 1))
      detail::raise<invalid_argument>(where, ": momentum must be in [0, 1], got ", o.momentum);
    if (!(o.dampening >= 0 && o.dampening <= 1))
      detail::raise<invalid_argument>(where, ": dampening must be in [0, 1], got ", o.dampening);
    detail::cuda_check_option_non_negative(where, "weight_decay", o.weight_decay);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      detail::raise<invalid_argument>(where,
                                      ": nesterov needs momentum > 0 and dampening = 0, got "
                                      "momentum ",
                                      o.momentum, " and dampening ", o.dampening);
    return o;
  }

  void run(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads,
           index offset) {
    const auto c = detail::sgd_coefficients<T>(options_, lr_, steps_);
    const index n = params.size();
    const dim3 grid = detail::cuda_grid_for(n);
    T* p = params.data();
    const T* g = grads.data();
    if (options_.momentum == 0)
      detail::cuda_sgd_kernel<false, false, T><<<grid, 256, 0, stream_>>>(p, g, nullptr, n, c);
    else if (options_.nesterov)
      detail::cuda_sgd_kernel<true, true, T><<<grid, 256, 0, stream_>>>(p, g, buf_.data() + offset,
                                                                     n, c);
    else
      detail::cuda_sgd_kernel<true, false, T><<<grid, 256, 0, stream_>>>(p, g, buf_.data() + offset,
                                                                      n, c);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  SgdOptions options_;
  double lr_;
  cudaStream_t stream_;
  index steps_ = 0;
  index size_ = 0;
  cuda_backend::DeviceBuffer<T> buf_;
  cuda_backend::Reducer reducer_;
};

}  // namespace uvp
