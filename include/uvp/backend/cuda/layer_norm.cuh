// SPDX-License-Identifier: Apache-2.0
// uvp::nn::LayerNorm<T, uvp::cuda>: layer normalisation over the last dimension
// (torch.nn.LayerNorm(d)) on the GPU, the specialisation of nn/layer_norm.hpp's
// LayerNorm<T, Backend>. Same tensors ("weight" = gamma {d}, "bias" = beta {d}, only with
// elementwise_affine), defaults (eps 1e-5, gamma 1, beta 0), equations and messages:
//
//   forward   per row: mean, var (two passes, biased), rstd = 1 / sqrt(var + eps) in double,
//             y = T(xhat) gamma + beta                     one block of 256 threads per row
//   backward  dgamma += sum_r T(dy xhat), dbeta += sum_r dy  one thread per column, rows in order
//             dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, in double   one block per row
//
// As on the CPU the statistics and row reductions are in double for T = float too; they are
// tree sums here (the CPU sums left to right), so mean / rstd agree to a few ulps of double.
// What differs from uvp::cpu: device matrices, a device Context (mean and rstd: 2 x n doubles),
// a stream; the NaN check of X reads an index back (check_finite(false) skips it).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: layer_norm.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::nn {
template <class T, class Backend>
class LayerNorm;
}  // namespace uvp::nn

namespace uvp::detail {

constexpr unsigned cuda_ln_block = 256;

/// Sum of v over the block (blockDim.x == cuda_ln_block); every thread gets the result.
__device__ inline double cuda_block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = cuda_ln_block / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // shared is reused by the next sum
  return total;
}

/// One block per row r: mean[r], rstd[r] and Y row r.
template <class T>
__global__ void cuda_layer_norm_forward_kernel(const T* x, T* y, const T* gamma, const T* beta, double* mean,
                                               double* rstd, index n, index d, double eps) {
  __shared__ double shared[cuda_ln_block];
  const double inv_d = 1.0 / double(d);
  for (index r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = x + r * d;
    double s = 0;
    for (index j = threadIdx.x; j < d; j += blockDim.x) s += double(xr[j]);
    const double mu = cuda_block_sum(s, shared) * inv_d;
    double q = 0;
    for (index j = threadIdx.x; j < d; j += blockDim.x) {
      const double e = double(xr[j]) - mu;
      q += e * e;
    }
    const double rs = 1.0 / sqrt(cuda_block_sum(q, shared) * inv_d + eps);
    if (threadIdx.x == 0) mean[r] = mu, rstd[r] = rs;
    for (index j = threadIdx.x; j < d; j += blockDim.x) {
      const T xh = T((double(xr[j]) - mu) * rs);
      y[r * d + j] = gamma != nullptr ? xh * gamma[j] + beta[j] : xh;
    }
  }
}

/// One block per row: dX row r (written).
template <class T>
__global__ void cuda_layer_norm_dx_kernel(const T* x, const T* dy, const T* gamma, const double* mean,
                                          const double* rstd, T* dx, index n, index d) {
  __shared__ double shared[cuda_ln_block];
  const double inv_d = 1.0 / double(d);
  for (index r = blockIdx.x; r < n; r += gridDim.x) {
    const T *xr = x + r * d, *dr = dy + r * d;
    const double mu = mean[r], rs = rstd[r];
    double s1 = 0, s2 = 0;
    for (index j = threadIdx.x; j < d; j += blockDim.x) {
      const double g = double(dr[j]) * (gamma != nullptr ? double(gamma[j]) : 1.0);
      s1 += g;
      s2 += g * (double(xr[j]) - mu) * rs;
    }
    const double m1 = cuda_block_sum(s1, shared) * inv_d, m2 = cuda_block_sum(s2, shared) * inv_d;
    for (index j = threadIdx.x; j < d; j += blockDim.x) {
      const double g = double(dr[j]) * (gamma != nullptr ? double(gamma[j]) : 1.0);
      const double xh = (double(xr[j]) - mu) * rs;
      dx[r * d + j] = T(rs * (g - m1 - xh * m2));
    }
  }
}

/// Column j: dgamma[j] += T(dy xhat), dbeta[j] += dy, row by row (the CPU's order and rounding).
template <class T>
__global__ void cuda_layer_norm_param_kernel(const T* x, const T* dy, const double* mean, const double* rstd,
                                             T* dgamma, T* dbeta, index n, index d) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index j = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; j < d; j += stride) {
    T g = dgamma[j], b = dbeta[j];
    for (index r = 0; r < n; ++r) {
      const T dv = dy[r * d + j];
      g += T(double(dv) * ((double(x[r * d + j]) - mean[r]) * rstd[r]));
      b += dv;
    }
    dgamma[j] = g, dbeta[j] = b;
  }
}

inline dim3 cuda_row_grid(index rows) { return dim3(static_cast<unsigned>(rows < 65535 ? (rows > 0 ? rows : 1) : 65535)); }

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// The row statistics of the last LayerNorm<T, uvp::cuda>::forward: mean and rstd (double,
/// device memory, rows each). One per stream / host thread; only grows.
class LayerNormDeviceContext {
 public:
  index rows() const noexcept { return rows_ < 0 ? 0 : rows_; }
  /// Device pointers to the rows() means and the rows() values 1 / sqrt(var + eps).
  const double* mean() const noexcept { return stats_.data(); }
  const double* rstd() const noexcept { return stats_.data() + rows(); }

 private:
  template <class, class>
  friend class uvp::nn::LayerNorm;
  DeviceMatrix<double> stats_;
  index rows_ = -1;  // -1: no forward yet
};

}  // namespace uvp::cuda_backend

namespace uvp::nn {

template <class T>
class LayerNorm<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;
  using Context = cuda_backend::LayerNormDeviceContext;
  using Matrix = cuda_backend::DeviceMatrix<T>;
  static constexpr bool backward_from_output = false;

  /// normalized_shape d > 0, eps > 0; gamma = 1, beta = 0 (PyTorch's defaults).
  explicit LayerNorm(index normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        d_(detail::cuda_checked_positive("uvp::nn::LayerNorm", "normalized_shape", normalized_shape)),
        eps_(checked_eps(eps)),
        affine_(elementwise_affine),
        reducer_(stream) {
    if (affine_) {
      this->add_tensor("weight", {d_});
      this->add_tensor("bias", {d_});
    }
    this->allocate_parameters();
    if (affine_) {
      const std::vector<T> ones(static_cast<std::size_t>(d_), T(1));
      this->set_values("weight", ones.data(), d_);
    }
  }

  /// A device copy of a CPU LayerNorm.
  template <class HostNorm, class = decltype(std::declval<const HostNorm&>().normalized_shape())>
  explicit LayerNorm(const HostNorm& host, cudaStream_t stream = nullptr)
      : LayerNorm(host.normalized_shape(), host.eps(), host.elementwise_affine(), stream) {
    this->from_host(host);
  }

  index normalized_shape() const noexcept { return d_; }
  double eps() const noexcept { return eps_; }
  bool elementwise_affine() const noexcept { return affine_; }
  index output_cols(index in_cols) const noexcept { return in_cols; }
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// X: (n, d); Y: (n, d), may be X itself. Saves mean and rstd of each row in ctx.
  void forward(const Matrix& X, Matrix& Y, Context& ctx) const {
    constexpr const char* where = "uvp::nn::LayerNorm::forward";
    detail::cuda_check_cols(where, "X", X.cols(), d_);
    detail::cuda_check_shape(where, "Y", Y, X.rows(), d_);
    if (check_finite_) detail::cuda_nn_check_finite(reducer_, where, "X", X);
    const index n = X.rows();
    ctx.stats_.resize(2, n);
    ctx.rows_ = n;
    if (n == 0) return;
    detail::cuda_layer_norm_forward_kernel<T><<<detail::cuda_row_grid(n), detail::cuda_ln_block, 0, this->stream()>>>(
        X.data(), Y.data(), gamma(), beta(), ctx.stats_.data(), ctx.stats_.data() + n, n, d_, eps_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  /// Allocating form (a local context).
  Matrix forward(const Matrix& X) const {
    Matrix Y(X.rows(), X.cols(), this->stream());
    Context ctx;
    forward(X, Y, ctx);
    return Y;
  }

  /// Parameter gradients only (dgamma, dbeta accumulated).
  void backward(const Matrix& X, const Context& ctx, const Matrix& dY) {
    check_backward("uvp::nn::LayerNorm::backward", X, ctx, dY);
    accumulate(X, ctx, dY);
  }
  /// As above, and writes dX (n, d); dX may be dY itself.
  void backward(const Matrix& X, const Context& ctx, const Matrix& dY, Matrix& dX) {
    constexpr const char* where = "uvp::nn::LayerNorm::backward";
    check_backward(where, X, ctx, dY);
    detail::cuda_check_shape(where, "dX", dX, X.rows(), d_);
    accumulate(X, ctx, dY);  // first: dX may overwrite dY
    const index n = X.rows();
    if (n == 0) return;
    detail::cuda_layer_norm_dx_kernel<T><<<detail::cuda_row_grid(n), detail::cuda_ln_block, 0, this->stream()>>>(
        X.data(), dY.data(), gamma(), ctx.mean(), ctx.rstd(), dX.data(), n, d_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

 private:
  static double checked_eps(double eps) {
    if (!(eps > 0)) detail::raise<invalid_argument>("uvp::nn::LayerNorm: eps must be > 0, got ", eps);
    return eps;
  }
  const T* gamma() const noexcept { return affine_ ? this->value_ptr(0) : nullptr; }
  const T* beta() const noexcept { return affine_ ? this->value_ptr(1) : nullptr; }

  void check_backward(const char* where, const Matrix& X, const Context& ctx, const Matrix& dY) const {
    detail::cuda_check_cols(where, "X", X.cols(), d_);
    if (ctx.rows_ != X.rows())
      detail::raise<shape_error>(where, ": the context holds ", ctx.rows(), " rows of statistics, X has ", X.rows(),
                                 " (run forward on this X with this context first)");
    detail::cuda_check_shape(where, "dY", dY, X.rows(), d_);
  }

  void accumulate(const Matrix& X, const Context& ctx, const Matrix& dY) {
    if (!affine_ || X.rows() == 0) return;
    detail::cuda_layer_norm_param_kernel<T><<<detail::cuda_grid_for(d_), 256, 0, this->stream()>>>(
        X.data(), dY.data(), ctx.mean(), ctx.rstd(), this->grad_ptr(0), this->grad_ptr(1), X.rows(), d_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  index d_;
  double eps_;
  bool affine_;
  bool check_finite_ = true;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
