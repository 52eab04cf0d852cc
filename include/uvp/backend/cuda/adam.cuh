// SPDX-License-Identifier: Apache-2.0
// uvp::Adam<T, uvp::cuda>: the CPU optimizer's specialisation for parameters and gradients in
// device memory. Same options struct (uvp::AdamOptions), checks, messages and member functions
// (optim/optimizer.hpp) as uvp::Adam<T, uvp::cpu>, and the same per-element update
// (uvp/detail/adam_math.hpp), run by one fused kernel per step: one read of p, g and the state
// and one write of p and the state per element.
//
// What differs from uvp::cpu: params / grads are DeviceSpans (device memory); the state lives in
// device memory (as DeviceBuffers); the constructor also takes the stream the kernels queue on.
// step() is asynchronous unless options().check_finite is set (that check reads an index back,
// so it waits for the stream).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: adam.cuh is CUDA code: include it only from .cu files compiled by nvcc"
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
#include "uvp/detail/adam_math.hpp"

namespace uvp {
namespace detail {

template <bool Amsgrad, class T>
__global__ void cuda_adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, index n,
                                 AdamCoefficients<T> c) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    adam_update_element<Amsgrad>(p[i], g[i], m[i], v[i], Amsgrad ? vmax + i : nullptr, c);
}

}  // namespace detail

/// Adam / AdamW / AMSGrad for one flat parameter vector in device memory (see optim/adam.hpp for
/// the algorithm and the member functions' contract). State m, v (and vmax with amsgrad) in
/// device memory, allocated on the first full step (or by resize) and never again until reset().
template <class T>
class Adam<T, cuda> {
  static_assert(is_scalar_v<T>, "uvp::Adam<T, uvp::cuda>: T must be float or double");

 public:
  using value_type = T;
  using backend_type = cuda;
  using options_type = AdamOptions;

  /// Kernels (and the check_finite pass) queue on `stream`.
  explicit Adam(AdamOptions options = {}, cudaStream_t stream = nullptr)
      : options_(validated(options)), lr_(options.lr), stream_(stream), reducer_(stream) {}

  const AdamOptions& options() const noexcept { return options_; }
  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    detail::cuda_check_lr("uvp::Adam::set_lr", lr);
    lr_ = lr;
  }
  index steps() const noexcept { return steps_; }
  index size() const noexcept { return size_; }
  cudaStream_t stream() const noexcept { return stream_; }

  /// The state, in device memory (vmax empty without amsgrad).
  const cuda_backend::DeviceBuffer<T>& exp_avg() const noexcept { return m_; }
  const cuda_backend::DeviceBuffer<T>& exp_avg_sq() const noexcept { return v_; }
  const cuda_backend::DeviceBuffer<T>& max_exp_avg_sq() const noexcept { return vmax_; }

  void reset() noexcept {
    m_ = {};
    v_ = {};
    vmax_ = {};
    size_ = 0;
    steps_ = 0;
    lr_ = options_.lr;
  }

  void resize(index n) {
    if (n <= 0) detail::raise<invalid_argument>("uvp::Adam::resize: n must be > 0, got ", n);
    allocate(n);
  }

  /// One step over the whole vector: params (updated in place) and grads in device memory.
  void step(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads) {
    constexpr const char* where = "uvp::Adam::step";
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
    detail::cuda_check_step("uvp::Adam::step", params, grads, offset, size_,
                            options_.check_finite, reducer());
    begin_step();
    run(params, grads, offset);
  }

  /// Counts one step (t <- t + 1) for the update() calls that follow.
  void begin_step() noexcept { ++steps_; }

  /// Updates elements [offset, offset + n) with the current step's coefficients.
  void update(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads,
              index offset) {
    constexpr const char* where = "uvp::Adam::update";
    if (steps_ == 0)
      detail::raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    detail::cuda_check_step(where, params, grads, offset, size_, options_.check_finite,
                            reducer());
    run(params, grads, offset);
  }

 private:
  void allocate(index n) {
    m_ = cuda_backend::DeviceBuffer<T>(n, stream_);
    v_ = cuda_backend::DeviceBuffer<T>(n, stream_);
    UVP_CUDA_CHECK(cudaMemsetAsync(m_.data(), 0, m_.bytes(), stream_));
    UVP_CUDA_CHECK(cudaMemsetAsync(v_.data(), 0, v_.bytes(), stream_));
    if (options_.amsgrad) {
      vmax_ = cuda_backend::DeviceBuffer<T>(n, stream_);
      UVP_CUDA_CHECK(cudaMemsetAsync(vmax_.data(), 0, vmax_.bytes(), stream_));
    }
    size_ = n;
    steps_ = 0;
  }

  cuda_backend::Reducer* reducer() noexcept { return options_.check_finite ? &reducer_ : nullptr; }

  static AdamOptions validated(const AdamOptions& o) {
    constexpr const char* where = "uvp::Adam";
    detail::cuda_check_option_positive(where, "lr", o.lr);
    detail::cuda_check_option_unit_open(where, "beta1", o.beta1);
    detail::cuda_check_option_unit_open(where, "beta2", o.beta2);
    detail::cuda_check_option_positive(where, "eps", o.eps);
    detail::cuda_check_option_non_negative(where, "weight_decay", o.weight_decay);
    return o;
  }

  void run(cuda_backend::DeviceSpan<T> params, cuda_backend::DeviceSpan<const T> grads,
           index offset) {
    const auto c = detail::adam_coefficients<T>(options_, lr_, steps_);
    const index n = params.size();
    const dim3 grid = detail::cuda_grid_for(n);
    if (options_.amsgrad)
      detail::cuda_adam_kernel<true, T><<<grid, 256, 0, stream_>>>(
          params.data(), grads.data(), m_.data() + offset, v_.data() + offset,
          vmax_.data() + offset, n, c);
    else
      detail::cuda_adam_kernel<false, T><<<grid, 256, 0, stream_>>>(
          params.data(), grads.data(), m_.data() + offset, v_.data() + offset, nullptr, n, c);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  AdamOptions options_;
  double lr_;
  cudaStream_t stream_;
  index steps_ = 0;
  index size_ = 0;
  cuda_backend::DeviceBuffer<T> m_, v_, vmax_;
  cuda_backend::Reducer reducer_;
};

}  // namespace uvp
