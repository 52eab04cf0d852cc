// SPDX-License-Identifier: Apache-2.0
// uvp::nn::LstmCell<T, uvp::cuda>: one LSTM step (torch.nn.LSTMCell) on the GPU, the
// specialisation of nn/lstm.hpp's LstmCell<T, Backend>. Same tensors ("weight_ih" {4H, I},
// "weight_hh" {4H, H}, "bias_ih" {4H}, "bias_hh" {4H}), gate order [i | f | g | o], equations,
// checks and messages; the per-unit gate math is shared with the host (uvp/detail/lstm_math.hpp).
//
//   forward   G (B, 4H) = x W_ih^T + h W_hh^T                 two cuBLAS GEMMs (beta 0, then 1)
//             gates, c', h' from G + b_ih + b_hh and c         one fused kernel over B x H units
//   backward  dG, dc from the saved gates, c, tanh(c'), dh', dc'   one fused kernel
//             dW_ih += dG^T x, dW_hh += dG^T h, db_ih += colsum(dG), db_hh += colsum(dG)
//             dx = dG W_ih, dh = dG W_hh                       cuBLAS GEMMs
//
// What differs from uvp::cpu (docs/cuda.md): x, h, c and the outputs are DeviceMatrix<T>; the
// Context (one per stream / host thread) holds device buffers that only grow; the constructor
// takes a stream; the finiteness checks of x, h, c read an index back each (set
// check_finite(false) to skip them). The sequence Lstm<T, uvp::cuda> is not written yet.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: lstm_cell.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/lstm_math.hpp"

namespace uvp::nn {
// The primary (default Backend = cpu) is in nn/lstm.hpp.
template <class T, class Backend>
class LstmCell;
}  // namespace uvp::nn

namespace uvp::detail {

/// Unit (r, j): gates[r, :] holds x W_ih^T + h W_hh^T on entry, the activations i f g o on exit.
template <class T>
__global__ void cuda_lstm_forward_kernel(T* gates, const T* b_ih, const T* b_hh, const T* c_prev,
                                         T* c_out, T* tc, T* h_out, index rows, index H) {
  const index n = rows * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index r = k / H, j = k % H;
    T* g = gates + r * 4 * H;
    // (b_ih + b_hh) first, as the CPU sums the biases once before adding them.
    const auto u = lstm_unit_forward(g[j] + (b_ih[j] + b_hh[j]),
                                     g[H + j] + (b_ih[H + j] + b_hh[H + j]),
                                     g[2 * H + j] + (b_ih[2 * H + j] + b_hh[2 * H + j]),
                                     g[3 * H + j] + (b_ih[3 * H + j] + b_hh[3 * H + j]), c_prev[k]);
    g[j] = u.i;
    g[H + j] = u.f;
    g[2 * H + j] = u.g;
    g[3 * H + j] = u.o;
    c_out[k] = u.c;
    tc[k] = u.t;
    h_out[k] = u.h;
  }
}

/// Unit (r, j): dG[r, :] and dc (the gradient of c_prev) from the saved forward and dh', dc'
/// (dc_out may be null: 0). dc may be dc_out itself.
template <class T>
__global__ void cuda_lstm_backward_kernel(const T* gates, const T* c_prev, const T* tc,
                                          const T* dh_out, const T* dc_out, T* dG, T* dc,
                                          index rows, index H) {
  const index n = rows * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index r = k / H, j = k % H;
    const T* g = gates + r * 4 * H;
    T* d = dG + r * 4 * H;
    const auto u = lstm_unit_backward(g[j], g[H + j], g[2 * H + j], g[3 * H + j], tc[k],
                                      c_prev[k], dh_out[k], dc_out ? dc_out[k] : T(0));
    d[j] = u.di;
    d[H + j] = u.df;
    d[2 * H + j] = u.dg;
    d[3 * H + j] = u.dout;
    dc[k] = u.dc;
  }
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// What LstmCell<T, uvp::cuda>::forward keeps for backward (gate activations, tanh(c')) and
/// backward's scratch, in device memory; one per stream / host thread. Buffers only grow.
template <class T>
class LstmCellDeviceContext {
 public:
  index batch() const noexcept { return batch_; }
  /// Gate activations i f g o of the last forward: batch x 4H (device memory).
  const DeviceMatrix<T>& gates() const noexcept { return gates_; }

 private:
  template <class, class>
  friend class uvp::nn::LstmCell;
  index batch_ = 0, hidden_ = 0, input_ = 0;
  DeviceMatrix<T> gates_, tc_, dgates_;
};

}  // namespace uvp::cuda_backend

namespace uvp::nn {

template <class T>
class LstmCell<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;
  using Context = cuda_backend::LstmCellDeviceContext<T>;
  using Matrix = cuda_backend::DeviceMatrix<T>;

  /// input_size I, hidden_size H > 0; every tensor drawn U(-1/sqrt(H), 1/sqrt(H)) from `rng` in
  /// the CPU cell's order (weight_ih, weight_hh, bias_ih, bias_hh), so the same seed gives the
  /// same weights as LstmCell<T, uvp::cpu>. Rng: uvp::Rng or anything with uniform(lo, hi).
  template <class Rng>
  LstmCell(index input_size, index hidden_size, Rng& rng, cudaStream_t stream = nullptr)
      : LstmCell(input_size, hidden_size, stream) {
    const double k = 1.0 / std::sqrt(double(hid_));
    for (const auto& t : this->tensors()) {
      std::vector<T> v(static_cast<std::size_t>(t.numel()));
      for (auto& x : v) x = static_cast<T>(rng.uniform(-k, k));
      this->set_values(t.name, v.data(), t.numel());
    }
  }

  /// Weights zero until set (set_values / from_host).
  LstmCell(index input_size, index hidden_size, cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        in_(detail::cuda_checked_positive("uvp::nn::LstmCell", "input_size", input_size)),
        hid_(detail::cuda_checked_positive("uvp::nn::LstmCell", "hidden_size", hidden_size)),
        blas_(stream),
        reducer_(stream) {
    w_ih_ = this->add_tensor("weight_ih", {4 * hid_, in_});
    w_hh_ = this->add_tensor("weight_hh", {4 * hid_, hid_});
    b_ih_ = this->add_tensor("bias_ih", {4 * hid_});
    b_hh_ = this->add_tensor("bias_hh", {4 * hid_});
    this->allocate_parameters();
  }

  /// A device copy of a CPU LstmCell.
  template <class HostCell, class = decltype(std::declval<const HostCell&>().hidden_size())>
  explicit LstmCell(const HostCell& host, cudaStream_t stream = nullptr)
      : LstmCell(host.input_size(), host.hidden_size(), stream) {
    this->from_host(host);
  }

  index input_size() const noexcept { return in_; }
  index hidden_size() const noexcept { return hid_; }
  /// Whether forward checks x, h, c for NaN / inf (default true, as on the CPU).
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// h_out, c_out (B x H) = the step from x (B x I), h, c (B x H). h_out / c_out may be h / c.
  void forward(const Matrix& x, const Matrix& h, const Matrix& c, Matrix& h_out, Matrix& c_out,
               Context& ctx) const {
    constexpr const char* where = "uvp::nn::LstmCell::forward";
    const index B = x.rows(), H = hid_;
    detail::cuda_check_cols(where, "x", x.cols(), in_);
    detail::cuda_check_shape(where, "h", h, B, H);
    detail::cuda_check_shape(where, "c", c, B, H);
    detail::cuda_check_shape(where, "h_out", h_out, B, H);
    detail::cuda_check_shape(where, "c_out", c_out, B, H);
    if (check_finite_) {
      detail::cuda_nn_check_finite(reducer_, where, "x", x);
      detail::cuda_nn_check_finite(reducer_, where, "h", h);
      detail::cuda_nn_check_finite(reducer_, where, "c", c);
    }
    ctx.batch_ = B, ctx.hidden_ = H, ctx.input_ = in_;
    ctx.gates_.resize(B, 4 * H);
    ctx.tc_.resize(B, H);
    if (B == 0) return;
    using cuda_backend::Trans;
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, B, 4 * H, in_, T(1), x.data(),
                          this->value_ptr(w_ih_), T(0), ctx.gates_.data());
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, B, 4 * H, H, T(1), h.data(),
                          this->value_ptr(w_hh_), T(1), ctx.gates_.data());
    detail::cuda_lstm_forward_kernel<T><<<detail::cuda_grid_for(B * H), 256, 0, this->stream()>>>(
        ctx.gates_.data(), this->value_ptr(b_ih_), this->value_ptr(b_hh_), c.data(), c_out.data(),
        ctx.tc_.data(), h_out.data(), B, H);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  /// Gradients of the last forward (run with ctx on these x, h, c): from dh_out (B x H) and
  /// dc_out (B x H, or 0 x 0 for none), accumulates the parameter gradients and writes dx
  /// (B x I), dh, dc (B x H).
  void backward(const Matrix& x, const Matrix& h, const Matrix& c, const Matrix& dh_out,
                const Matrix& dc_out, Matrix& dx, Matrix& dh, Matrix& dc, Context& ctx) {
    constexpr const char* where = "uvp::nn::LstmCell::backward";
    const index B = x.rows(), H = hid_;
    if (ctx.hidden_ != H || ctx.input_ != in_ || ctx.batch_ != B)
      detail::raise<invalid_argument>(where, ": ctx holds no forward of this cell on ", B,
                                      " rows (call forward first)");
    detail::cuda_check_cols(where, "x", x.cols(), in_);
    detail::cuda_check_shape(where, "h", h, B, H);
    detail::cuda_check_shape(where, "c", c, B, H);
    detail::cuda_check_shape(where, "dh_out", dh_out, B, H);
    const bool has_dc = dc_out.rows() != 0 && dc_out.cols() != 0;
    if (has_dc) detail::cuda_check_shape(where, "dc_out", dc_out, B, H);
    detail::cuda_check_shape(where, "dx", dx, B, in_);
    detail::cuda_check_shape(where, "dh", dh, B, H);
    detail::cuda_check_shape(where, "dc", dc, B, H);
    if (B == 0) return;
    ctx.dgates_.resize(B, 4 * H);
    T* dG = ctx.dgates_.data();
    detail::cuda_lstm_backward_kernel<T><<<detail::cuda_grid_for(B * H), 256, 0, this->stream()>>>(
        ctx.gates_.data(), c.data(), ctx.tc_.data(), dh_out.data(), has_dc ? dc_out.data() : nullptr,
        dG, dc.data(), B, H);
    UVP_CUDA_CHECK(cudaGetLastError());
    using cuda_backend::Trans;
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, 4 * H, in_, B, T(1), dG, x.data(),
                          T(1), this->grad_ptr(w_ih_));
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, 4 * H, H, B, T(1), dG, h.data(),
                          T(1), this->grad_ptr(w_hh_));
    for (std::size_t b : {b_ih_, b_hh_}) {
      detail::cuda_column_sum_kernel<T><<<detail::cuda_grid_for(4 * H), 256, 0, this->stream()>>>(
          dG, this->grad_ptr(b), B, 4 * H);
      UVP_CUDA_CHECK(cudaGetLastError());
    }
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, B, in_, 4 * H, T(1), dG,
                          this->value_ptr(w_ih_), T(0), dx.data());
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, B, H, 4 * H, T(1), dG,
                          this->value_ptr(w_hh_), T(0), dh.data());
  }

 private:
  index in_, hid_;
  bool check_finite_ = true;
  std::size_t w_ih_ = 0, w_hh_ = 0, b_ih_ = 0, b_hh_ = 0;
  cuda_backend::BlasHandle blas_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
