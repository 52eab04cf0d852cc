// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Lstm<T, uvp::cuda>: the single-layer, batch-first sequence LSTM (torch.nn.LSTM(I, H,
// batch_first=True) on packed sequences) on the GPU, the specialisation of nn/lstm.hpp's
// Lstm<T, Backend>. Same tensors ("weight_ih_l0" {4H, I}, "weight_hh_l0" {4H, H}, "bias_ih_l0"
// {4H}, "bias_hh_l0" {4H}), gate order [i | f | g | o], equations, lengths / padding rules,
// checks and messages as the CPU Lstm; the per-unit gate math is LstmCell<T, uvp::cuda>'s
// (uvp/detail/lstm_math.hpp, shared with the host).
//
//   X  (batch * S) x I, row b * S + t          lengths n_b in [1, S] (host memory; empty: all S)
//   forward   G = X W_ih^T                      one cuBLAS GEMM for every step of every sequence
//             for t < max n_b:  G_t += h_{t-1} W_hh^T   one strided GEMM (rows b * S + t, stride S 4H)
//                               gates, c_t, tanh c_t, h_t of the rows with t < n_b   one fused kernel
//             output() rows t >= n_b are 0; last_hidden() / last_cell() gathered at t = n_b - 1
//   backward  for t = max n_b - 1 .. 0:
//               dG_t, dc from dh = dh_next + dH_t + [t = n_b - 1] dh_last    one fused kernel
//               dh_next = dG_t W_hh                                          one strided GEMM
//             dW_ih += dG^T X,  dW_hh += dG^T H_prev (H_prev: h_{t-1}, h0 or 0 per row),
//             db_ih += 1^T dG,  db_hh += 1^T dG,  dX = dG W_ih             four GEMMs over all steps
//
// What differs from uvp::cpu (docs/cuda.md): X, h0, c0, dH, dh_last and the results are
// DeviceMatrix<T>; lengths stay in host memory (a HostSpan: std::vector, uvp::Span, ...); the
// Context holds device buffers that only grow; forward_last keeps no history, like the CPU, but
// runs all sequences together (no blocks of sequences per thread); the sums of the weight
// gradients run in another order (cuBLAS), so they agree with the CPU to rounding.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: lstm.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/blas_strided.cuh"
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
#include "uvp/detail/lstm_math.hpp"

namespace uvp::nn {
// The primary (default Backend = cpu) is in nn/lstm.hpp.
template <class T, class Backend>
class Lstm;
}  // namespace uvp::nn

namespace uvp::detail {

/// c_{t-1} of unit (b, j): the previous step's cell, c0 or 0.
template <class T>
__device__ inline T cuda_lstm_c_prev(const T* c, const T* c0, index b, index t, index S, index H, index j) {
  if (t > 0) return c[(b * S + t - 1) * H + j];
  return c0 != nullptr ? c0[b * H + j] : T(0);
}

/// Step t of every sequence with t < len[b]: gates rows b * S + t hold x W_ih^T + h W_hh^T on
/// entry, the activations on exit; c, tc, h rows b * S + t are written.
template <class T>
__global__ void cuda_lstm_seq_forward_kernel(T* gates, const T* b_ih, const T* b_hh, T* c, T* tc, T* h,
                                             const T* c0, const index* len, index B, index S, index H,
                                             index t) {
  const index n = B * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index b = k / H, j = k % H;
    if (t >= len[b]) continue;
    const index r = b * S + t;
    T* g = gates + r * 4 * H;
    // (b_ih + b_hh) first, as the CPU sums the biases once before adding them.
    const auto u = lstm_unit_forward(g[j] + (b_ih[j] + b_hh[j]), g[H + j] + (b_ih[H + j] + b_hh[H + j]),
                                     g[2 * H + j] + (b_ih[2 * H + j] + b_hh[2 * H + j]),
                                     g[3 * H + j] + (b_ih[3 * H + j] + b_hh[3 * H + j]),
                                     cuda_lstm_c_prev(c, c0, b, t, S, H, j));
    g[j] = u.i;
    g[H + j] = u.f;
    g[2 * H + j] = u.g;
    g[3 * H + j] = u.o;
    c[r * H + j] = u.c;
    tc[r * H + j] = u.t;
    h[r * H + j] = u.h;
  }
}

/// Inference step t: the running state hs, cs (B x H) of the sequences with t < len[b] moves
/// one step from the pre-activations in rows b * S + t of xp (read only).
template <class T>
__global__ void cuda_lstm_seq_infer_kernel(const T* xp, const T* b_ih, const T* b_hh, T* cs, T* hs,
                                           const index* len, index B, index S, index H, index t) {
  const index n = B * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index b = k / H, j = k % H;
    if (t >= len[b]) continue;
    const T* g = xp + (b * S + t) * 4 * H;
    const auto u = lstm_unit_forward(g[j] + (b_ih[j] + b_hh[j]), g[H + j] + (b_ih[H + j] + b_hh[H + j]),
                                     g[2 * H + j] + (b_ih[2 * H + j] + b_hh[2 * H + j]),
                                     g[3 * H + j] + (b_ih[3 * H + j] + b_hh[3 * H + j]), cs[k]);
    cs[k] = u.c;
    hs[k] = u.h;
  }
}

/// hn[b] = h[b * S + len[b] - 1], cn likewise (B x H each).
template <class T>
__global__ void cuda_lstm_gather_last_kernel(const T* h, const T* c, T* hn, T* cn, const index* len, index B,
                                             index S, index H) {
  const index n = B * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index b = k / H, j = k % H, r = b * S + len[b] - 1;
    hn[k] = h[r * H + j];
    cn[k] = c[r * H + j];
  }
}

/// Backward step t of the sequences with t < len[b]: dh (B x H) holds dG_{t+1} W_hh on entry;
/// adds dH row b * S + t (dH may be null) and, at t = len[b] - 1, dh_last row b (may be null);
/// writes dG row b * S + t and moves dc (B x H) to the gradient of c_{t-1}.
template <class T>
__global__ void cuda_lstm_seq_backward_kernel(const T* gates, const T* c, const T* tc, const T* c0,
                                              const T* dH, const T* dh_last, const T* dh, T* dc, T* dG,
                                              const index* len, index B, index S, index H, index t) {
  const index n = B * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index b = k / H, j = k % H;
    if (t >= len[b]) continue;
    const index r = b * S + t;
    // The CPU's order: (dG_{t+1} W_hh + dH_t) + dh_last.
    T d = dh[k];
    if (dH != nullptr) d += dH[r * H + j];
    if (dh_last != nullptr && t == len[b] - 1) d += dh_last[k];
    const T* g = gates + r * 4 * H;
    const auto u = lstm_unit_backward(g[j], g[H + j], g[2 * H + j], g[3 * H + j], tc[r * H + j],
                                      cuda_lstm_c_prev(c, c0, b, t, S, H, j), d, dc[k]);
    T* o = dG + r * 4 * H;
    o[j] = u.di;
    o[H + j] = u.df;
    o[2 * H + j] = u.dg;
    o[3 * H + j] = u.dout;
    dc[k] = u.dc;
  }
}

/// hp row b * S + t = h row b * S + t - 1 (t > 0), h0 row b (t = 0, h0 given) or 0.
template <class T>
__global__ void cuda_lstm_shift_kernel(const T* h, const T* h0, T* hp, index B, index S, index H) {
  const index n = B * S * H;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index r = k / H, j = k % H, t = r % S;
    hp[k] = t > 0 ? h[k - H] : (h0 != nullptr ? h0[(r / S) * H + j] : T(0));
  }
}

template <class T>
__global__ void cuda_fill_kernel(T* x, T value, index n) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = value;
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// What Lstm<T, uvp::cuda>::forward keeps for backward, and the scratch of forward_last and
/// backward, in device memory; one per stream / host thread. Buffers only grow.
template <class T>
class LstmDeviceContext {
 public:
  index batch() const noexcept { return batch_; }
  index seq_len() const noexcept { return seq_len_; }
  index hidden_size() const noexcept { return hidden_; }
  /// True after forward (backward may follow); false after forward_last or before any call.
  bool has_history() const noexcept { return history_; }
  /// The lengths of the last call (host memory; seq_len for every sequence when none were given).
  const std::vector<index>& lengths() const noexcept { return lengths_; }
  /// h_t of every step of the last forward: (batch * seq_len) x H, rows t >= n_b are 0.
  /// Not meaningful after forward_last.
  const DeviceMatrix<T>& output() const noexcept { return h_; }
  /// h and c at each sequence's last valid step: batch x H.
  const DeviceMatrix<T>& last_hidden() const noexcept { return hn_; }
  const DeviceMatrix<T>& last_cell() const noexcept { return cn_; }
  /// Gate activations i f g o of the last forward: (batch * seq_len) x 4H (padding rows unspecified).
  const DeviceMatrix<T>& gates() const noexcept { return gates_; }
  /// Cell states of the last forward: (batch * seq_len) x H (padding rows unspecified).
  const DeviceMatrix<T>& cells() const noexcept { return c_; }

 private:
  template <class, class>
  friend class uvp::nn::Lstm;
  index batch_ = 0, seq_len_ = 0, hidden_ = 0, input_ = 0, tmax_ = 0;
  bool history_ = false, initial_ = false;
  std::vector<index> lengths_;
  DeviceMatrix<index> len_;
  DeviceMatrix<T> gates_, c_, tc_, h_, h0_, c0_, hn_, cn_;
  DeviceMatrix<T> dgates_, dh_, dc_, hprev_, ones_;
};

}  // namespace uvp::cuda_backend

namespace uvp::nn {

template <class T>
class Lstm<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;
  using Context = cuda_backend::LstmDeviceContext<T>;
  using Matrix = cuda_backend::DeviceMatrix<T>;
  using Lengths = cuda_backend::HostSpan<index>;

  /// input_size I, hidden_size H > 0; every tensor drawn U(-1/sqrt(H), 1/sqrt(H)) from `rng` in
  /// the CPU Lstm's order, so the same seed gives the same weights as Lstm<T, uvp::cpu>.
  /// Rng: uvp::Rng or anything with uniform(lo, hi).
  template <class Rng, class = decltype(std::declval<Rng&>().uniform(0.0, 1.0))>
  Lstm(index input_size, index hidden_size, Rng& rng, cudaStream_t stream = nullptr)
      : Lstm(input_size, hidden_size, stream) {
    const double k = 1.0 / std::sqrt(double(hid_));
    for (const auto& t : this->tensors()) {
      std::vector<T> v(static_cast<std::size_t>(t.numel()));
      for (auto& x : v) x = static_cast<T>(rng.uniform(-k, k));
      this->set_values(t.name, v.data(), t.numel());
    }
  }

  /// Weights zero until set (set_values / from_host).
  Lstm(index input_size, index hidden_size, cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        in_(detail::cuda_checked_positive("uvp::nn::Lstm", "input_size", input_size)),
        hid_(detail::cuda_checked_positive("uvp::nn::Lstm", "hidden_size", hidden_size)),
        blas_(stream),
        reducer_(stream) {
    w_ih_ = this->add_tensor("weight_ih_l0", {4 * hid_, in_});
    w_hh_ = this->add_tensor("weight_hh_l0", {4 * hid_, hid_});
    b_ih_ = this->add_tensor("bias_ih_l0", {4 * hid_});
    b_hh_ = this->add_tensor("bias_hh_l0", {4 * hid_});
    this->allocate_parameters();
  }

  template <class H, class = void>
  struct has_num_layers : std::false_type {};
  template <class H>
  struct has_num_layers<H, std::void_t<decltype(std::declval<const H&>().num_layers())>> : std::true_type {};

  /// A device copy of a CPU Lstm (of one layer).
  template <class HostLstm, class = decltype(std::declval<const HostLstm&>().hidden_size())>
  explicit Lstm(const HostLstm& host, cudaStream_t stream = nullptr)
      : Lstm(host.input_size(), host.hidden_size(), stream) {
    if constexpr (has_num_layers<HostLstm>::value)
      if (host.num_layers() != 1)
        uvp::detail::raise<invalid_argument>("uvp::nn::Lstm<T, cuda>: the CUDA Lstm has one layer, the host Lstm has ",
                                             host.num_layers());
    this->from_host(host);
  }

  index input_size() const noexcept { return in_; }
  index hidden_size() const noexcept { return hid_; }
  /// Whether forward checks X, h0, c0 for NaN / inf (default true, as on the CPU; each check
  /// reads an index back, so it waits for the stream).
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// Runs the sequences X ((batch * seq_len) x I) from h0 = c0 = 0 and keeps what backward
  /// needs in ctx: ctx.output(), ctx.last_hidden(), ctx.last_cell(). lengths: empty (all
  /// seq_len) or batch values in [1, seq_len], in host memory.
  void forward(const Matrix& X, index batch, index seq_len, Lengths lengths, Context& ctx) const {
    run("uvp::nn::Lstm::forward", X, batch, seq_len, lengths, nullptr, nullptr, ctx, true);
  }
  /// As above from the initial state h0, c0 (batch x H each).
  void forward(const Matrix& X, index batch, index seq_len, Lengths lengths, const Matrix& h0,
               const Matrix& c0, Context& ctx) const {
    run("uvp::nn::Lstm::forward", X, batch, seq_len, lengths, &h0, &c0, ctx, true);
  }

  /// Inference: writes each sequence's last valid hidden state to h_last (batch x H) and keeps
  /// no history (backward cannot follow).
  void forward_last(const Matrix& X, index batch, index seq_len, Lengths lengths, Matrix& h_last,
                    Context& ctx) const {
    constexpr const char* where = "uvp::nn::Lstm::forward_last";
    detail::cuda_check_shape(where, "h_last", h_last, batch, hid_);
    run(where, X, batch, seq_len, lengths, nullptr, nullptr, ctx, false);
    copy_device(h_last.data(), ctx.hn_.data(), batch * hid_);
  }
  void forward_last(const Matrix& X, index batch, index seq_len, Lengths lengths, const Matrix& h0,
                    const Matrix& c0, Matrix& h_last, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Lstm::forward_last";
    detail::cuda_check_shape(where, "h_last", h_last, batch, hid_);
    run(where, X, batch, seq_len, lengths, &h0, &c0, ctx, false);
    copy_device(h_last.data(), ctx.hn_.data(), batch * hid_);
  }

  /// Gradients of the last forward (run with ctx on this X) by backpropagation through time,
  /// from dH ((batch * seq_len) x H, of ctx.output(); padding rows ignored) and/or dh_last
  /// (batch x H, of ctx.last_hidden()); either may be 0 x 0 (none), not both. Accumulates the
  /// parameter gradients; writes dX ((batch * seq_len) x I, padding rows 0).
  void backward(const Matrix& X, const Matrix& dH, const Matrix& dh_last, Matrix& dX, Context& ctx) {
    constexpr const char* where = "uvp::nn::Lstm::backward";
    check_dx(where, dX, ctx);
    backprop(where, X, dH, dh_last, &dX, nullptr, nullptr, ctx);
  }
  /// As above, and writes dh0, dc0 (batch x H), the gradients of the initial state.
  void backward(const Matrix& X, const Matrix& dH, const Matrix& dh_last, Matrix& dX, Matrix& dh0,
                Matrix& dc0, Context& ctx) {
    constexpr const char* where = "uvp::nn::Lstm::backward";
    check_dx(where, dX, ctx);
    detail::cuda_check_shape(where, "dh0", dh0, ctx.batch_, hid_);
    detail::cuda_check_shape(where, "dc0", dc0, ctx.batch_, hid_);
    backprop(where, X, dH, dh_last, &dX, &dh0, &dc0, ctx);
  }
  /// Parameter gradients only.
  void backward(const Matrix& X, const Matrix& dH, const Matrix& dh_last, Context& ctx) {
    backprop("uvp::nn::Lstm::backward", X, dH, dh_last, nullptr, nullptr, nullptr, ctx);
  }

 private:
  void check_dx(const char* where, const Matrix& dX, const Context& ctx) const {
    detail::cuda_check_shape(where, "dX", dX, ctx.batch_ * ctx.seq_len_, in_);
  }

  void copy_device(T* dst, const T* src, index n) const {
    if (n > 0)
      UVP_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T),
                                     cudaMemcpyDeviceToDevice, this->stream()));
  }
  void zero(T* p, index n) const {
    if (n > 0) UVP_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<std::size_t>(n) * sizeof(T), this->stream()));
  }

  /// nn/lstm.hpp's lstm_check_sequences, on the host, with the same messages.
  void check_sequences(const char* where, const Matrix& X, index batch, index seq_len,
                       const Lengths& lengths) const {
    if (batch < 1) detail::raise<invalid_argument>(where, ": batch must be >= 1, got ", batch);
    if (seq_len < 1) detail::raise<invalid_argument>(where, ": seq_len must be >= 1, got ", seq_len);
    if (X.rows() != batch * seq_len)
      detail::raise<shape_error>(where, ": X has ", X.rows(), " rows, expected batch * seq_len = ",
                                 batch * seq_len);
    detail::cuda_check_cols(where, "X", X.cols(), in_);
    if (lengths.empty()) return;
    if (lengths.size() != batch)
      detail::raise<shape_error>(where, ": lengths has size ", lengths.size(), ", expected ", batch);
    for (index b = 0; b < batch; ++b) {
      if (lengths[b] == 0)
        detail::raise<invalid_argument>(where, ": lengths[", b, "] = 0 (a sequence needs at least one step)");
      if (lengths[b] < 0 || lengths[b] > seq_len)
        detail::raise<out_of_range_error>(where, ": lengths[", b, "] = ", lengths[b],
                                          " is outside [1, seq_len = ", seq_len, "]");
    }
  }

  void run(const char* where, const Matrix& X, index batch, index seq_len, const Lengths& lengths,
           const Matrix* h0, const Matrix* c0, Context& ctx, bool history) const {
    const index H = hid_, G4 = 4 * hid_, S = seq_len;
    check_sequences(where, X, batch, seq_len, lengths);
    if (h0) {
      detail::cuda_check_shape(where, "h0", *h0, batch, H);
      detail::cuda_check_shape(where, "c0", *c0, batch, H);
    }
    if (check_finite_) {
      detail::cuda_nn_check_finite(reducer_, where, "X", X);
      if (h0) {
        detail::cuda_nn_check_finite(reducer_, where, "h0", *h0);
        detail::cuda_nn_check_finite(reducer_, where, "c0", *c0);
      }
    }
    ctx.history_ = false;  // until this call has completed
    ctx.batch_ = batch, ctx.seq_len_ = S, ctx.hidden_ = H, ctx.input_ = in_;
    ctx.initial_ = h0 != nullptr;
    ctx.lengths_.assign(static_cast<std::size_t>(batch), S);
    if (!lengths.empty()) std::copy(lengths.data(), lengths.data() + batch, ctx.lengths_.begin());
    ctx.tmax_ = *std::max_element(ctx.lengths_.begin(), ctx.lengths_.end());
    ctx.len_.resize(batch, 1);
    // Pageable host memory: the call returns once the lengths are staged, so ctx.lengths_ may change.
    UVP_CUDA_CHECK(cudaMemcpyAsync(ctx.len_.data(), ctx.lengths_.data(), static_cast<std::size_t>(batch) * sizeof(index),
                                   cudaMemcpyHostToDevice, this->stream()));
    ctx.hn_.resize(batch, H);
    ctx.cn_.resize(batch, H);
    if (h0) {
      ctx.h0_.resize(batch, H);
      ctx.c0_.resize(batch, H);
      copy_device(ctx.h0_.data(), h0->data(), batch * H);
      copy_device(ctx.c0_.data(), c0->data(), batch * H);
    }
    const T* c0p = h0 ? ctx.c0_.data() : nullptr;
    const T *bih = this->value_ptr(b_ih_), *bhh = this->value_ptr(b_hh_), *Whh = this->value_ptr(w_hh_);
    const index* len = ctx.len_.data();
    using cuda_backend::Trans;
    const dim3 grid = detail::cuda_grid_for(batch * H);
    // The input projections of every step: one GEMM.
    ctx.gates_.resize(batch * S, G4);
    T* G = ctx.gates_.data();
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, batch * S, G4, in_, T(1), X.data(),
                          this->value_ptr(w_ih_), T(0), G);
    if (history) {
      ctx.c_.resize(batch * S, H);
      ctx.tc_.resize(batch * S, H);
      ctx.h_.resize(batch * S, H);
      T *c = ctx.c_.data(), *tc = ctx.tc_.data(), *h = ctx.h_.data();
      zero(h, batch * S * H);  // padded outputs
      for (index t = 0; t < ctx.tmax_; ++t) {
        if (t > 0)
          cuda_backend::gemm_ld<T>(blas_, Trans::none, Trans::transpose, batch, G4, H, T(1), h + (t - 1) * H, S * H,
                                   Whh, H, T(1), G + t * G4, S * G4);
        else if (h0)
          cuda_backend::gemm_ld<T>(blas_, Trans::none, Trans::transpose, batch, G4, H, T(1), ctx.h0_.data(), H, Whh,
                                   H, T(1), G, S * G4);
        detail::cuda_lstm_seq_forward_kernel<T>
            <<<grid, 256, 0, this->stream()>>>(G, bih, bhh, c, tc, h, c0p, len, batch, S, H, t);
        UVP_CUDA_CHECK(cudaGetLastError());
      }
      detail::cuda_lstm_gather_last_kernel<T>
          <<<grid, 256, 0, this->stream()>>>(h, c, ctx.hn_.data(), ctx.cn_.data(), len, batch, S, H);
      UVP_CUDA_CHECK(cudaGetLastError());
      ctx.history_ = true;
    } else {
      T *hs = ctx.hn_.data(), *cs = ctx.cn_.data();
      if (h0) {
        copy_device(hs, ctx.h0_.data(), batch * H);
        copy_device(cs, ctx.c0_.data(), batch * H);
      } else {
        zero(hs, batch * H);
        zero(cs, batch * H);
      }
      for (index t = 0; t < ctx.tmax_; ++t) {
        if (t > 0 || h0)
          cuda_backend::gemm_ld<T>(blas_, Trans::none, Trans::transpose, batch, G4, H, T(1), hs, H, Whh, H, T(1),
                                   G + t * G4, S * G4);
        detail::cuda_lstm_seq_infer_kernel<T>
            <<<grid, 256, 0, this->stream()>>>(G, bih, bhh, cs, hs, len, batch, S, H, t);
        UVP_CUDA_CHECK(cudaGetLastError());
      }
    }
  }

  /// An optional gradient argument: 0 rows or 0 columns = none, else exactly rows x cols.
  static bool optional(const char* where, const char* what, const Matrix& m, index rows, index cols) {
    if (m.rows() == 0 || m.cols() == 0) return false;
    detail::cuda_check_shape(where, what, m, rows, cols);
    return true;
  }

  void backprop(const char* where, const Matrix& X, const Matrix& dH, const Matrix& dh_last, Matrix* dX,
                Matrix* dh0, Matrix* dc0, Context& ctx) {
    if (!ctx.history_ || ctx.hidden_ != hid_ || ctx.input_ != in_)
      detail::raise<invalid_argument>(where,
                                      ": ctx holds no forward pass of this Lstm (call forward, not "
                                      "forward_last, first)");
    const index B = ctx.batch_, S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, N = B * S;
    detail::cuda_check_shape(where, "X", X, N, in_);
    const bool has_dH = optional(where, "dH", dH, N, H);
    const bool has_last = optional(where, "dh_last", dh_last, B, H);
    if (!has_dH && !has_last)
      detail::raise<invalid_argument>(where, ": dH and dh_last are both empty (nothing to backpropagate)");
    ctx.dgates_.resize(N, G4);
    ctx.dh_.resize(B, H);
    ctx.dc_.resize(B, H);
    T *dG = ctx.dgates_.data(), *dh = ctx.dh_.data(), *dc = ctx.dc_.data();
    zero(dG, N * G4);  // padding rows stay 0
    zero(dh, B * H);
    zero(dc, B * H);
    const T* Whh = this->value_ptr(w_hh_);
    const T* c0p = ctx.initial_ ? ctx.c0_.data() : nullptr;
    const dim3 grid = detail::cuda_grid_for(B * H);
    using cuda_backend::Trans;
    for (index t = ctx.tmax_ - 1; t >= 0; --t) {
      detail::cuda_lstm_seq_backward_kernel<T><<<grid, 256, 0, this->stream()>>>(
          ctx.gates_.data(), ctx.c_.data(), ctx.tc_.data(), c0p, has_dH ? dH.data() : nullptr,
          has_last ? dh_last.data() : nullptr, dh, dc, dG, ctx.len_.data(), B, S, H, t);
      UVP_CUDA_CHECK(cudaGetLastError());
      // dh_{t-1} = dG_t W_hh (rows that are padding at t have dG = 0, hence dh = 0).
      cuda_backend::gemm_ld<T>(blas_, Trans::none, Trans::none, B, H, G4, T(1), dG + t * G4, S * G4, Whh, H, T(0),
                               dh, H);
    }
    // Weight gradients over all steps at once; H_prev pairs each row of dG with h_{t-1}.
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, G4, in_, N, T(1), dG, X.data(), T(1),
                          this->grad_ptr(w_ih_));
    ctx.hprev_.resize(N, H);
    detail::cuda_lstm_shift_kernel<T><<<detail::cuda_grid_for(N * H), 256, 0, this->stream()>>>(
        ctx.h_.data(), ctx.initial_ ? ctx.h0_.data() : nullptr, ctx.hprev_.data(), B, S, H);
    UVP_CUDA_CHECK(cudaGetLastError());
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, G4, H, N, T(1), dG, ctx.hprev_.data(), T(1),
                          this->grad_ptr(w_hh_));
    // Bias gradients: 1^T dG (a GEMM, not a sequential column sum over N rows).
    if (ctx.ones_.size() < N) {
      ctx.ones_.resize(N, 1);
      detail::cuda_fill_kernel<T><<<detail::cuda_grid_for(N), 256, 0, this->stream()>>>(ctx.ones_.data(), T(1), N);
      UVP_CUDA_CHECK(cudaGetLastError());
    }
    for (std::size_t b : {b_ih_, b_hh_})
      cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, 1, G4, N, T(1), ctx.ones_.data(), dG, T(1),
                            this->grad_ptr(b));
    if (dX)
      cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, N, in_, G4, T(1), dG, this->value_ptr(w_ih_), T(0),
                            dX->data());
    if (dh0) copy_device(dh0->data(), dh, B * H);
    if (dc0) copy_device(dc0->data(), dc, B * H);
  }

  index in_, hid_;
  bool check_finite_ = true;
  std::size_t w_ih_ = 0, w_hh_ = 0, b_ih_ = 0, b_hh_ = 0;
  cuda_backend::BlasHandle blas_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
