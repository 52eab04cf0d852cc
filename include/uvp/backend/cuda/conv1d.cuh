// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Conv1d<T, uvp::cuda>: 1-D convolution over time (torch.nn.Conv1d) on batch-first,
// channels-last sequences on the GPU, the specialisation of nn/conv1d.hpp's Conv1d<T, Backend>.
// Same tensors ("weight" {C_out, C_in, k}, "bias" {C_out}), initialisation order, lengths /
// padding rules, equations and messages:
//
//   X (batch * L) x C_in -> Y (batch * L_out) x C_out,  L_out = floor((L + 2p - k) / s) + 1
//   forward   A = im2col(X)  (batch * L_out) x (k C_in), zeros outside [0, n_b) and for t >= m_b
//             W2 = W permuted to (o, j C_in + c);  Y = A W2^T (cuBLAS);  + b, rows t >= m_b = 0
//   backward  dY' = dY with rows t >= m_b zeroed;  dW += permute(dY'^T A);  db += colsum(dY')
//             dX = col2im(dY' W2): each dX element gathers its (t, j) terms in increasing t,
//             the CPU's order (no atomics)
//
// What differs from uvp::cpu: device matrices, lengths in host memory (HostSpan), a device
// Context, a stream, and cuda_backend::Conv1dOptions (the same fields as uvp::nn::Conv1dOptions,
// which lives with Eigen; any struct with stride, padding and bias converts). The NaN checks of
// X and dY (valid steps only) read an index back (check_finite(false) skips them).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: conv1d.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/host_span.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::nn {
template <class T, class Backend>
class Conv1d;
}  // namespace uvp::nn

namespace uvp::detail {

/// A non-finite value at a valid step (row b * S + t with t < len[b]) of a (batch * S) x C matrix.
template <class T>
struct CudaIsNonFiniteStep {
  const T* x;
  const index* len;
  index S, C;
  __device__ bool operator()(index i) const {
    const index r = i / C;
    return r % S < len[r / S] && !isfinite(x[i]);
  }
};

/// cols[(b L_out + t) K + j C + c] = X[b L + t s - p + j, c], or 0 (outside [0, n_b), t >= m_b).
template <class T>
__global__ void cuda_im2col_kernel(const T* x, T* cols, const index* len, const index* mlen, index batch, index L,
                                   index lout, index C, index k, index s, index p) {
  const index K = k * C, n = batch * lout * K;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index row = i / K, col = i % K, b = row / lout, t = row % lout, j = col / C, c = col % C;
    const index u = t * s - p + j;
    cols[i] = (t < mlen[b] && u >= 0 && u < len[b]) ? x[(b * L + u) * C + c] : T(0);
  }
}

/// w2[o K + j C + c] = w[(o C + c) k + j] (to = true), or back: w[...] += w2[...] (to = false).
template <class T>
__global__ void cuda_conv_permute_kernel(const T* w, T* w2, index out, index C, index k) {
  const index K = k * C, n = out * K;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index o = i / K, j = (i % K) / C, c = i % C;
    w2[i] = w[(o * C + c) * k + j];
  }
}
template <class T>
__global__ void cuda_conv_unpermute_add_kernel(const T* w2, T* gw, index out, index C, index k) {
  const index K = k * C, n = out * K;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index o = i / K, j = (i % K) / C, c = i % C;
    gw[(o * C + c) * k + j] += w2[i];
  }
}

/// y[r, o] = t < m_b ? y + bias[o] : 0 (bias may be null); r = b L_out + t. With `copy_from`,
/// y = that matrix masked (dY with its padding rows zeroed).
template <class T>
__global__ void cuda_conv_mask_rows_kernel(T* y, const T* from, const T* bias, const index* mlen, index batch,
                                           index lout, index cols) {
  const index n = batch * lout * cols;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index r = i / cols, o = i % cols;
    if ((r % lout) >= mlen[r / lout]) {
      y[i] = T(0);
    } else {
      const T v = from != nullptr ? from[i] : y[i];
      y[i] = bias != nullptr ? v + bias[o] : v;
    }
  }
}

/// dX[b L + u, c] = sum over t with t s - p + j = u, t < m_b, u < n_b of dA[(b L_out + t) K + j C + c].
template <class T>
__global__ void cuda_col2im_kernel(const T* da, T* dx, const index* len, const index* mlen, index batch, index L,
                                   index lout, index C, index k, index s, index p) {
  const index K = k * C, n = batch * L * C;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index row = i / C, c = i % C, b = row / L, u = row % L;
    T acc = T(0);
    if (u < len[b]) {
      // j from k - 1 down: t = (u + p - j) / s increases, the CPU's order of additions.
      for (index j = k - 1; j >= 0; --j) {
        const index q = u + p - j;
        if (q < 0 || q % s != 0) continue;
        const index t = q / s;
        if (t < mlen[b]) acc += da[(b * lout + t) * K + j * C + c];
      }
    }
    dx[i] = acc;
  }
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// Stride, padding and bias of a Conv1d<T, uvp::cuda>: uvp::nn::Conv1dOptions's fields and defaults.
struct Conv1dOptions {
  index stride = 1;   ///< >= 1
  index padding = 0;  ///< zeros added on both ends of every sequence, >= 0
  bool bias = true;   ///< false: no "bias" tensor
  constexpr Conv1dOptions() noexcept = default;
  constexpr Conv1dOptions(index stride_, index padding_, bool bias_) noexcept
      : stride(stride_), padding(padding_), bias(bias_) {}
  /// From any struct with the same fields (uvp::nn::Conv1dOptions).
  template <class O, class = decltype(std::declval<const O&>().stride + std::declval<const O&>().padding),
            class = decltype(bool(std::declval<const O&>().bias))>
  constexpr Conv1dOptions(const O& o) noexcept  // NOLINT(google-explicit-constructor)
      : stride(o.stride), padding(o.padding), bias(o.bias) {}
};

/// What Conv1d<T, uvp::cuda>::forward saves (the patches) and backward's scratch.
template <class T>
class Conv1dDeviceContext {
 public:
  index batch() const noexcept { return batch_; }
  index seq_len() const noexcept { return seq_len_; }
  index out_len() const noexcept { return out_len_; }
  /// Valid output steps m_b of the last forward (host memory): empty without lengths.
  HostSpan<index> output_lengths() const noexcept {
    return has_lengths_ ? HostSpan<index>(out_lengths_) : HostSpan<index>();
  }

 private:
  template <class, class>
  friend class uvp::nn::Conv1d;
  index batch_ = 0, seq_len_ = 0, out_len_ = 0;
  bool has_lengths_ = false;
  std::vector<index> lengths_, out_lengths_;  // host, always batch values; then copied to len_
  DeviceMatrix<index> len_;                   // lengths (row 0) and output lengths (row 1)
  DeviceMatrix<T> cols_, w2_, dy_, dcols_, dw2_;
};

}  // namespace uvp::cuda_backend

namespace uvp::nn {

template <class T>
class Conv1d<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;
  using Context = cuda_backend::Conv1dDeviceContext<T>;
  using Matrix = cuda_backend::DeviceMatrix<T>;
  using Lengths = cuda_backend::HostSpan<index>;

  /// As the CPU block: W and b ~ U(-1/sqrt(C_in k), 1/sqrt(C_in k)) drawn from rng in the same
  /// order, so the same seed gives the same weights.
  template <class Rng, class = decltype(std::declval<Rng&>().uniform(0.0, 1.0))>
  Conv1d(index in_channels, index out_channels, index kernel_size, Rng& rng,
         cuda_backend::Conv1dOptions options = {}, cudaStream_t stream = nullptr)
      : Conv1d(in_channels, out_channels, kernel_size, options, stream) {
    const double bound = 1.0 / std::sqrt(double(in_channels * kernel_size));
    for (const auto& t : this->tensors()) {
      std::vector<T> v(static_cast<std::size_t>(t.numel()));
      for (auto& x : v) x = static_cast<T>(rng.uniform(-bound, bound));
      this->set_values(t.name, v.data(), t.numel());
    }
  }

  /// Weights zero until set (set_values / from_host).
  Conv1d(index in_channels, index out_channels, index kernel_size, cuda_backend::Conv1dOptions options = {},
         cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        in_(detail::cuda_checked_positive("uvp::nn::Conv1d", "in_channels", in_channels)),
        out_(detail::cuda_checked_positive("uvp::nn::Conv1d", "out_channels", out_channels)),
        k_(detail::cuda_checked_positive("uvp::nn::Conv1d", "kernel_size", kernel_size)),
        stride_(detail::cuda_checked_positive("uvp::nn::Conv1d", "stride", options.stride)),
        padding_(checked_padding(options.padding)),
        has_bias_(options.bias),
        blas_(stream),
        reducer_(stream) {
    weight_ = this->add_tensor("weight", {out_, in_, k_});
    if (has_bias_) bias_ = this->add_tensor("bias", {out_});
    this->allocate_parameters();
  }

  /// A device copy of a CPU Conv1d.
  template <class HostConv, class = decltype(std::declval<const HostConv&>().kernel_size())>
  explicit Conv1d(const HostConv& host, cudaStream_t stream = nullptr)
      : Conv1d(host.in_channels(), host.out_channels(), host.kernel_size(),
               cuda_backend::Conv1dOptions(host.stride(), host.padding(), host.has_bias()), stream) {
    this->from_host(host);
  }

  index in_channels() const noexcept { return in_; }
  index out_channels() const noexcept { return out_; }
  index kernel_size() const noexcept { return k_; }
  index stride() const noexcept { return stride_; }
  index padding() const noexcept { return padding_; }
  bool has_bias() const noexcept { return has_bias_; }
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// L_out for an input of L steps; uvp::invalid_argument when L + 2p < k.
  index output_length(index seq_len) const {
    if (seq_len + 2 * padding_ < k_)
      detail::raise<invalid_argument>("uvp::nn::Conv1d: seq_len ", seq_len, " + 2 * padding ", padding_,
                                      " is shorter than kernel_size ", k_);
    return (seq_len + 2 * padding_ - k_) / stride_ + 1;
  }

  /// Y = conv(X). X: (batch * seq_len) x C_in; lengths: empty or batch values in [1, seq_len]
  /// (host memory); Y: (batch * L_out) x C_out.
  void forward(const Matrix& X, index batch, index seq_len, Lengths lengths, Matrix& Y, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Conv1d::forward";
    check_sequences(where, X, batch, seq_len, lengths);
    const index lout = output_length(seq_len);
    detail::cuda_check_shape(where, "Y", Y, batch * lout, out_);
    prepare(where, ctx, batch, seq_len, lout, lengths);
    if (check_finite_) check_steps(where, "X", X, seq_len, ctx.len_.data());
    const index K = k_ * in_, rows = batch * lout;
    ctx.cols_.resize(rows, K);
    ctx.w2_.resize(out_, K);
    const index* len = ctx.len_.data();
    const index* mlen = len + batch;
    detail::cuda_im2col_kernel<T><<<detail::cuda_grid_for(rows * K), 256, 0, this->stream()>>>(
        X.data(), ctx.cols_.data(), len, mlen, batch, seq_len, lout, in_, k_, stride_, padding_);
    UVP_CUDA_CHECK(cudaGetLastError());
    detail::cuda_conv_permute_kernel<T><<<detail::cuda_grid_for(out_ * K), 256, 0, this->stream()>>>(
        this->value_ptr(weight_), ctx.w2_.data(), out_, in_, k_);
    UVP_CUDA_CHECK(cudaGetLastError());
    using cuda_backend::Trans;
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, rows, out_, K, T(1), ctx.cols_.data(),
                          ctx.w2_.data(), T(0), Y.data());
    detail::cuda_conv_mask_rows_kernel<T><<<detail::cuda_grid_for(rows * out_), 256, 0, this->stream()>>>(
        Y.data(), nullptr, has_bias_ ? this->value_ptr(bias_) : nullptr, mlen, batch, lout, out_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  /// Allocating form.
  Matrix forward(const Matrix& X, index batch, index seq_len, Lengths lengths, Context& ctx) const {
    Matrix Y((batch > 0 ? batch : 0) * output_length(seq_len), out_, this->stream());
    forward(X, batch, seq_len, lengths, Y, ctx);
    return Y;
  }

  /// Accumulates dW, db from dY ((batch * L_out) x C_out) and writes dX ((batch * seq_len) x C_in).
  void backward(const Matrix& X, const Matrix& dY, Matrix& dX, Context& ctx) {
    constexpr const char* where = "uvp::nn::Conv1d::backward";
    check_backward(where, X, dY, ctx);
    detail::cuda_check_shape(where, "dX", dX, X.rows(), in_);
    backward_impl(dY, &dX, ctx);
  }
  /// Parameter gradients only.
  void backward(const Matrix& X, const Matrix& dY, Context& ctx) {
    check_backward("uvp::nn::Conv1d::backward", X, dY, ctx);
    backward_impl(dY, nullptr, ctx);
  }

 private:
  static index checked_padding(index p) {
    if (p < 0) detail::raise<invalid_argument>("uvp::nn::Conv1d: padding must be >= 0, got ", p);
    return p;
  }

  /// pooling.hpp's check_seq_batch_1d, with the same messages.
  void check_sequences(const char* where, const Matrix& X, index batch, index seq_len, const Lengths& lengths) const {
    if (batch < 1) detail::raise<invalid_argument>(where, ": batch must be >= 1, got ", batch);
    if (seq_len < 1) detail::raise<invalid_argument>(where, ": seq_len must be >= 1, got ", seq_len);
    if (X.rows() != batch * seq_len)
      detail::raise<shape_error>(where, ": X has ", X.rows(), " rows, expected batch * seq_len = ", batch * seq_len);
    detail::cuda_check_cols(where, "X", X.cols(), in_);
    if (lengths.empty()) return;
    if (lengths.size() != batch)
      detail::raise<shape_error>(where, ": lengths has size ", lengths.size(), ", expected ", batch);
    for (index b = 0; b < batch; ++b) {
      if (lengths[b] < 1)
        detail::raise<invalid_argument>(where, ": lengths[", b, "] = ", lengths[b],
                                        " must be >= 1 (a length of 0 masks every position)");
      if (lengths[b] > seq_len)
        detail::raise<out_of_range_error>(where, ": lengths[", b, "] = ", lengths[b], " exceeds seq_len = ", seq_len);
    }
  }

  /// pooling.hpp's check_finite_steps_1d: the first NaN / inf at a valid step, by row and column.
  void check_steps(const char* where, const char* what, const Matrix& M, index steps, const index* len) const {
    const index i = reducer_.first_index(detail::CudaIsNonFiniteStep<T>{M.data(), len, steps, M.cols()}, M.size());
    if (i < M.size())
      detail::raise<numeric_error>(where, ": ", what, " has a non-finite value (",
                                   cuda_backend::read_element(M.data(), i, reducer_.stream()), ") at row ",
                                   i / M.cols(), ", column ", i % M.cols());
  }

  void prepare(const char* where, Context& ctx, index batch, index seq_len, index lout, const Lengths& lengths) const {
    ctx.batch_ = 0;  // no valid forward until the checks pass
    ctx.lengths_.resize(static_cast<std::size_t>(2 * batch));
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b];
      if (n + 2 * padding_ < k_)
        detail::raise<invalid_argument>(where, ": lengths[", b, "] = ", n, " + 2 * padding ", padding_,
                                        " is shorter than kernel_size ", k_);
      ctx.lengths_[static_cast<std::size_t>(b)] = n;
      ctx.lengths_[static_cast<std::size_t>(batch + b)] = (n + 2 * padding_ - k_) / stride_ + 1;
    }
    ctx.out_lengths_.assign(ctx.lengths_.begin() + batch, ctx.lengths_.end());
    ctx.batch_ = batch, ctx.seq_len_ = seq_len, ctx.out_len_ = lout;
    ctx.has_lengths_ = !lengths.empty();
    ctx.len_.resize(2, batch);
    UVP_CUDA_CHECK(cudaMemcpyAsync(ctx.len_.data(), ctx.lengths_.data(), static_cast<std::size_t>(2 * batch) * sizeof(index),
                                   cudaMemcpyHostToDevice, this->stream()));
  }

  void check_backward(const char* where, const Matrix& X, const Matrix& dY, const Context& ctx) const {
    if (ctx.batch_ == 0)
      detail::raise<invalid_argument>(where, ": the context holds no forward pass (call forward first)");
    detail::cuda_check_shape(where, "X", X, ctx.batch_ * ctx.seq_len_, in_);
    detail::cuda_check_shape(where, "dY", dY, ctx.batch_ * ctx.out_len_, out_);
    if (check_finite_) check_steps(where, "dY", dY, ctx.out_len_, ctx.len_.data() + ctx.batch_);
  }

  void backward_impl(const Matrix& dY, Matrix* dX, Context& ctx) {
    const index batch = ctx.batch_, L = ctx.seq_len_, lout = ctx.out_len_, K = k_ * in_, rows = batch * lout;
    const index *len = ctx.len_.data(), *mlen = len + batch;
    ctx.dy_.resize(rows, out_);
    detail::cuda_conv_mask_rows_kernel<T><<<detail::cuda_grid_for(rows * out_), 256, 0, this->stream()>>>(
        ctx.dy_.data(), dY.data(), nullptr, mlen, batch, lout, out_);
    UVP_CUDA_CHECK(cudaGetLastError());
    using cuda_backend::Trans;
    ctx.dw2_.resize(out_, K);
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, out_, K, rows, T(1), ctx.dy_.data(), ctx.cols_.data(),
                          T(0), ctx.dw2_.data());
    detail::cuda_conv_unpermute_add_kernel<T><<<detail::cuda_grid_for(out_ * K), 256, 0, this->stream()>>>(
        ctx.dw2_.data(), this->grad_ptr(weight_), out_, in_, k_);
    UVP_CUDA_CHECK(cudaGetLastError());
    if (has_bias_) {
      detail::cuda_column_sum_kernel<T><<<detail::cuda_grid_for(out_), 256, 0, this->stream()>>>(
          ctx.dy_.data(), this->grad_ptr(bias_), rows, out_);
      UVP_CUDA_CHECK(cudaGetLastError());
    }
    if (!dX) return;
    ctx.dcols_.resize(rows, K);
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, rows, K, out_, T(1), ctx.dy_.data(), ctx.w2_.data(), T(0),
                          ctx.dcols_.data());
    detail::cuda_col2im_kernel<T><<<detail::cuda_grid_for(batch * L * in_), 256, 0, this->stream()>>>(
        ctx.dcols_.data(), dX->data(), len, mlen, batch, L, lout, in_, k_, stride_, padding_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  index in_, out_, k_, stride_, padding_;
  bool has_bias_;
  bool check_finite_ = true;
  std::size_t weight_ = 0, bias_ = 0;
  cuda_backend::BlasHandle blas_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
