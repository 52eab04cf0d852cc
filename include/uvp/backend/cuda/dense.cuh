// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Dense<T, uvp::cuda>: the fully connected layer (torch.nn.Linear) on the GPU, the
// specialisation of nn/dense.hpp's Dense<T, Backend>. Same tensors ("weight" {out, in}, "bias"
// {out}), equations, checks and messages:
//
//   forward   Y (n, out) = X (n, in) W^T + 1 b^T            cuBLAS GEMM + a bias kernel
//   backward  dW += dY^T X,  db += colsum(dY)  (accumulated)  cuBLAS GEMM (beta = 1) + a kernel
//             dX = dY W (written)                             cuBLAS GEMM
//
// What differs from uvp::cpu (docs/cuda.md): X, Y, dY, dX are DeviceMatrix<T> (device memory)
// instead of Eigen matrices; the constructor also takes a stream (GEMMs and kernels queue on it,
// asynchronously); the weights are copied from / to a CPU Dense explicitly (from_host /
// to_host); parameters() / grads() are DeviceSpans for uvp::Adam<T, uvp::cuda>. The finiteness
// check of X reads one index back, so forward waits for the stream (set check_finite(false) to
// skip it). One cuBLAS handle per block: forward is const but not safe to call from several host
// threads at once on one block.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: dense.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::nn {
// The primary (default Backend = cpu) is in nn/dense.hpp.
template <class T, class Backend>
class Dense;
}  // namespace uvp::nn

namespace uvp::nn {

template <class T>
class Dense<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;

  /// in_features, out_features > 0; weights U(-1/sqrt(in), 1/sqrt(in)) drawn from `rng` in the
  /// CPU Dense's order (W row by row, then b), so the same seed gives the same weights as
  /// Dense<T, uvp::cpu>. Rng: uvp::Rng, or anything with `double uniform(double lo, double hi)`.
  template <class Rng>
  Dense(index in_features, index out_features, Rng& rng, bool bias = true,
        cudaStream_t stream = nullptr)
      : Dense(in_features, out_features, bias, stream) {
    const double bound = 1.0 / std::sqrt(double(in_features));
    std::vector<T> w(static_cast<std::size_t>(in_features * out_features));
    for (auto& x : w) x = static_cast<T>(rng.uniform(-bound, bound));
    this->set_values("weight", w.data(), static_cast<index>(w.size()));
    if (bias) {
      std::vector<T> b(static_cast<std::size_t>(out_features));
      for (auto& x : b) x = static_cast<T>(rng.uniform(-bound, bound));
      this->set_values("bias", b.data(), out_features);
    }
  }

  /// in_features, out_features > 0; weights zero until set (set_values / from_host).
  Dense(index in_features, index out_features, bool bias = true, cudaStream_t stream = nullptr)
      // The sizes are checked before the cuBLAS handle is made (which needs a device).
      : cuda_backend::DeviceBlock<T>(stream),
        in_(detail::cuda_checked_positive("uvp::nn::Dense", "in_features", in_features)),
        out_(detail::cuda_checked_positive("uvp::nn::Dense", "out_features", out_features)),
        has_bias_(bias),
        blas_(stream),
        reducer_(stream) {
    weight_ = this->add_tensor("weight", {out_features, in_features});
    if (bias) bias_ = this->add_tensor("bias", {out_features});
    this->allocate_parameters();
  }

  /// A device copy of a CPU Dense (same shape, same weights).
  template <class HostDense, class = decltype(std::declval<const HostDense&>().in_features())>
  explicit Dense(const HostDense& host, cudaStream_t stream = nullptr)
      : Dense(host.in_features(), host.out_features(), host.has_bias(), stream) {
    this->from_host(host);
  }

  index in_features() const noexcept { return in_; }
  index out_features() const noexcept { return out_; }
  bool has_bias() const noexcept { return has_bias_; }
  index output_cols(index /*in_cols*/) const noexcept { return out_; }

  /// Whether forward checks X for NaN / inf (default true, as on the CPU; costs a wait).
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// Y = X W^T + b. X: (n, in); Y: (n, out), a different matrix. Asynchronous on stream()
  /// after the finiteness check.
  void forward(const cuda_backend::DeviceMatrix<T>& X, cuda_backend::DeviceMatrix<T>& Y) const {
    constexpr const char* where = "uvp::nn::Dense::forward";
    detail::cuda_check_cols(where, "X", X.cols(), in_);
    detail::cuda_check_shape(where, "Y", Y, X.rows(), out_);
    if (X.data() == Y.data() && X.size() > 0)
      detail::raise<invalid_argument>(where, ": Y overlaps X (the output must not alias the input)");
    if (check_finite_) detail::cuda_nn_check_finite(reducer_, where, "X", X);
    if (X.rows() == 0) return;
    cuda_backend::gemm<T>(blas_, cuda_backend::Trans::none, cuda_backend::Trans::transpose, X.rows(),
                          out_, in_, T(1), X.data(), this->value_ptr(weight_), T(0), Y.data());
    if (has_bias_) {
      detail::cuda_add_row_vector_kernel<T><<<detail::cuda_grid_for(Y.size()), 256, 0, this->stream()>>>(
          Y.data(), this->value_ptr(bias_), Y.rows(), Y.cols());
      UVP_CUDA_CHECK(cudaGetLastError());
    }
  }

  /// Allocating form: returns X W^T + b as a new (n, out) device matrix.
  cuda_backend::DeviceMatrix<T> forward(const cuda_backend::DeviceMatrix<T>& X) const {
    cuda_backend::DeviceMatrix<T> Y(X.rows(), out_, this->stream());
    forward(X, Y);
    return Y;
  }

  /// Parameter gradients only: dW += dY^T X, db += colsum(dY).
  void backward(const cuda_backend::DeviceMatrix<T>& X, const cuda_backend::DeviceMatrix<T>& dY) {
    check_backward("uvp::nn::Dense::backward", X, dY);
    accumulate(X, dY);
  }

  /// As above, and writes dX = dY W (n, in); dX must not be X or dY.
  void backward(const cuda_backend::DeviceMatrix<T>& X, const cuda_backend::DeviceMatrix<T>& dY,
                cuda_backend::DeviceMatrix<T>& dX) {
    constexpr const char* where = "uvp::nn::Dense::backward";
    check_backward(where, X, dY);
    detail::cuda_check_shape(where, "dX", dX, X.rows(), in_);
    accumulate(X, dY);
    if (X.rows() > 0)
      cuda_backend::gemm<T>(blas_, cuda_backend::Trans::none, cuda_backend::Trans::none, X.rows(),
                            in_, out_, T(1), dY.data(), this->value_ptr(weight_), T(0), dX.data());
  }

 private:
  void check_backward(const char* where, const cuda_backend::DeviceMatrix<T>& X,
                      const cuda_backend::DeviceMatrix<T>& dY) const {
    detail::cuda_check_cols(where, "X", X.cols(), in_);
    detail::cuda_check_shape(where, "dY", dY, X.rows(), out_);
  }

  void accumulate(const cuda_backend::DeviceMatrix<T>& X, const cuda_backend::DeviceMatrix<T>& dY) {
    if (X.rows() == 0) return;
    // dW (out, in) += dY^T (out, n) X (n, in).
    cuda_backend::gemm<T>(blas_, cuda_backend::Trans::transpose, cuda_backend::Trans::none, out_, in_,
                          X.rows(), T(1), dY.data(), X.data(), T(1), this->grad_ptr(weight_));
    if (has_bias_) {
      detail::cuda_column_sum_kernel<T><<<detail::cuda_grid_for(out_), 256, 0, this->stream()>>>(
          dY.data(), this->grad_ptr(bias_), dY.rows(), out_);
      UVP_CUDA_CHECK(cudaGetLastError());
    }
  }

  index in_, out_;
  bool has_bias_;
  bool check_finite_ = true;
  std::size_t weight_ = 0, bias_ = 0;
  cuda_backend::BlasHandle blas_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
