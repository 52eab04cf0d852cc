// SPDX-License-Identifier: Apache-2.0
// uvp::nn::MultiHeadSelfAttention<T, uvp::cuda>: multi-head self-attention with a key-padding
// mask from lengths and an optional causal mask (torch.nn.MultiheadAttention(E, H,
// batch_first=True) with query = key = value) on the GPU, the specialisation of
// nn/attention.hpp's MultiHeadSelfAttention<T, Backend>. Same tensors ("in_proj_weight" {3E, E},
// "in_proj_bias" {3E}, "out_proj.weight" {E, E}, "out_proj.bias" {E}), initialisation order,
// equations, lengths / padding rules, checks and messages as the CPU block.
//
//   X (batch * L) x E, row b * L + t; n_b = lengths[b]; H heads of d = E / H columns
//   forward   Xm = X with rows t >= n_b zeroed (kept for dW_in)
//             [Q K V] = Xm W_in^T + b_in                          one GEMM over all rows
//             S_bh = Q_bh K_bh^T / sqrt(d)   (n_b x n_b)          strided-batched GEMM over the heads
//             P_bh = softmax(S_bh) per row, keys j >= n_b (and j > i when causal) masked
//                                                                 one thread block per (b, h, row)
//             O_bh = P_bh V_bh                                    strided-batched GEMM over the heads
//             Y = O W_out^T + b_out, rows t >= n_b = 0            one GEMM + a mask / bias kernel
//   backward  dYm = dY with rows t >= n_b zeroed
//             dO = dYm W_out,  dW_out += dYm^T O,  db_out += colsum(dYm)
//             dV_bh = P^T dO_bh,  dP = dO_bh V_bh^T                strided-batched GEMMs
//             dS = P o (dP - rowsum(P o dP)) / sqrt(d)            one thread block per (b, h, row)
//             dQ_bh = dS K_bh,  dK_bh = dS^T Q_bh                  strided-batched GEMMs
//             dW_in += dQKV^T Xm,  db_in += colsum(dQKV),  dX = dQKV W_in   (padding rows 0)
//
// The per-head GEMMs run per sequence (count = H, m = n = n_b: padding costs nothing); when
// every sequence has the same length and H < batch they run per head instead (count = batch),
// fewer launches for the same work. Probabilities live in a (batch * H * L) x L buffer, block
// (b, h) at rows (b H + h) L, its n_b x n_b corner used, the rest 0.
//
// What differs from uvp::cpu (docs/cuda.md): X, Y, dY, dX are DeviceMatrix<T>; lengths stay in
// host memory (HostSpan); the Context holds device buffers that only grow; the NaN checks of X
// and dY (valid steps only) read an index back (check_finite(false) skips them); the sums run in
// cuBLAS's order, so results agree with the CPU to rounding.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: attention.cuh is CUDA code: include it only from .cu files compiled by nvcc"
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

namespace uvp::nn {
// The primary (default Backend = cpu) is in nn/attention.hpp.
template <class T, class Backend>
class MultiHeadSelfAttention;
}  // namespace uvp::nn

namespace uvp::detail {

/// Threads per block of the row kernels (softmax and its backward): a power of two.
inline constexpr unsigned cuda_attention_threads = 128;

/// A non-finite value at a valid step (row b * L + t with t < len[b]) of a (batch * L) x C matrix.
template <class T>
struct CudaAttentionNonFiniteStep {
  const T* x;
  const index* len;
  index L, C;
  __device__ bool operator()(index i) const {
    const index r = i / C;
    return r % L < len[r / L] && !isfinite(x[i]);
  }
};

/// Block-wide sum (or max) of one value per thread; every thread gets the result. `shared` has
/// one slot per thread.
template <class T, bool Max>
__device__ T cuda_attention_block_reduce(T v, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) {
      const T o = shared[threadIdx.x + s];
      shared[threadIdx.x] = Max ? (o > shared[threadIdx.x] ? o : shared[threadIdx.x]) : shared[threadIdx.x] + o;
    }
    __syncthreads();
  }
  const T r = shared[0];
  __syncthreads();  // shared is reused by the next reduction
  return r;
}

/// Row i of block (b, h) of P (rows (b H + h) L + i, row stride L; blockIdx.x = (b H + h) L + i):
/// on entry the scaled scores of keys j < n_b, on exit their softmax over j < m (m = n_b, or
/// i + 1 when causal) and 0 for m <= j < n_b. Rows i >= n_b are left alone (0).
template <class T>
__global__ void cuda_attention_softmax_kernel(T* P, const index* len, index H, index L, bool causal) {
  __shared__ T shared[cuda_attention_threads];
  const index row = blockIdx.x, i = row % L, b = row / (L * H), n = len[b];
  if (i >= n) return;  // the whole block leaves together
  const index m = causal ? i + 1 : n;
  T* p = P + row * L;
  T mx = -INFINITY;
  for (index j = threadIdx.x; j < m; j += blockDim.x) mx = p[j] > mx ? p[j] : mx;
  mx = cuda_attention_block_reduce<T, true>(mx, shared);
  T sum = T(0);
  for (index j = threadIdx.x; j < m; j += blockDim.x) {
    const T e = exp(p[j] - mx);  // arguments <= 0: no overflow
    p[j] = e;
    sum += e;
  }
  sum = cuda_attention_block_reduce<T, false>(sum, shared);
  const T inv = T(1) / sum;
  for (index j = threadIdx.x; j < n; j += blockDim.x) p[j] = j < m ? p[j] * inv : T(0);
}

/// The softmax Jacobian: row i of G (dP on entry, same layout as P) becomes
/// dS = scale * P o (dP - sum_j P o dP) over j < m, 0 for m <= j < n_b.
template <class T>
__global__ void cuda_attention_softmax_backward_kernel(const T* P, T* G, const index* len, index H, index L,
                                                       bool causal, T scale) {
  __shared__ T shared[cuda_attention_threads];
  const index row = blockIdx.x, i = row % L, b = row / (L * H), n = len[b];
  if (i >= n) return;
  const index m = causal ? i + 1 : n;
  const T* p = P + row * L;
  T* g = G + row * L;
  T c = T(0);
  for (index j = threadIdx.x; j < m; j += blockDim.x) c += p[j] * g[j];
  c = cuda_attention_block_reduce<T, false>(c, shared);
  for (index j = threadIdx.x; j < n; j += blockDim.x) g[j] = j < m ? scale * p[j] * (g[j] - c) : T(0);
}

/// y[r, c] = t < n_b ? from[r, c] (+ bias[c]) : 0 for r = b L + t; `from` may be y itself, bias
/// may be null.
template <class T>
__global__ void cuda_attention_mask_rows_kernel(T* y, const T* from, const T* bias, const index* len, index batch,
                                                index L, index cols) {
  const index n = batch * L * cols;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index r = k / cols;
    if (r % L >= len[r / L]) {
      y[k] = T(0);
    } else {
      const T v = from[k];
      y[k] = bias != nullptr ? v + bias[k % cols] : v;
    }
  }
}

/// out[b L + i, j] = mean over heads of P block (b, h) at (i, j) (0 outside n_b x n_b).
template <class T>
__global__ void cuda_attention_average_kernel(const T* P, T* out, index batch, index H, index L) {
  const index n = batch * L * L;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  const T inv = T(1) / T(H);
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index b = k / (L * L), ij = k % (L * L);
    T acc = T(0);
    for (index h = 0; h < H; ++h) acc += P[(b * H + h) * L * L + ij];
    out[k] = acc * inv;
  }
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// What MultiHeadSelfAttention<T, uvp::cuda>::forward keeps for backward, and backward's scratch,
/// in device memory; one per stream / host thread. Buffers only grow.
template <class T>
class AttentionDeviceContext {
 public:
  index batch() const noexcept { return batch_; }
  index seq_len() const noexcept { return seq_len_; }
  /// The lengths of the last forward (host memory; seq_len for every sequence when none were given).
  const std::vector<index>& lengths() const noexcept { return lengths_; }
  /// Attention probabilities of the last forward: (batch * H * seq_len) x seq_len; block (b, h)
  /// is rows (b H + h) seq_len .. + seq_len - 1, its n_b x n_b corner (row = query, column =
  /// key) as the CPU Context's probabilities(b, h); everything else 0.
  const DeviceMatrix<T>& probabilities() const noexcept { return probs_; }

 private:
  template <class, class>
  friend class uvp::nn::MultiHeadSelfAttention;
  index batch_ = 0, seq_len_ = 0, embed_ = 0, num_heads_ = 0;
  bool uniform_ = false;  // every n_b equal
  std::vector<index> lengths_;
  DeviceMatrix<index> len_;
  DeviceMatrix<T> x_, qkv_, o_, probs_;  // forward (x_: X with padding rows 0)
  DeviceMatrix<T> dy_, d_o_, dqkv_, dprobs_;
};

}  // namespace uvp::cuda_backend

namespace uvp::nn {

template <class T>
class MultiHeadSelfAttention<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;
  using Context = cuda_backend::AttentionDeviceContext<T>;
  using Matrix = cuda_backend::DeviceMatrix<T>;
  using Lengths = cuda_backend::HostSpan<index>;

  /// embed_dim E, num_heads H (E % H == 0). W_in ~ U(-a, a), a = sqrt(6 / (E + 3E)), then W_out ~
  /// U(-1/sqrt(E), 1/sqrt(E)), drawn from rng in the CPU block's order (so the same seed gives
  /// the same weights); biases 0. Rng: uvp::Rng or anything with uniform(lo, hi).
  template <class Rng, class = decltype(std::declval<Rng&>().uniform(0.0, 1.0))>
  MultiHeadSelfAttention(index embed_dim, index num_heads, Rng& rng, bool causal = false,
                         cudaStream_t stream = nullptr)
      : MultiHeadSelfAttention(embed_dim, num_heads, causal, stream) {
    const index E = embed_;
    const double a = std::sqrt(6.0 / double(E + 3 * E)), bound = 1.0 / std::sqrt(double(E));
    std::vector<T> w(static_cast<std::size_t>(3 * E * E));
    for (auto& x : w) x = static_cast<T>(rng.uniform(-a, a));
    this->set_values("in_proj_weight", w.data(), 3 * E * E);
    w.resize(static_cast<std::size_t>(E * E));
    for (auto& x : w) x = static_cast<T>(rng.uniform(-bound, bound));
    this->set_values("out_proj.weight", w.data(), E * E);
  }

  /// Weights zero until set (set_values / from_host).
  MultiHeadSelfAttention(index embed_dim, index num_heads, bool causal = false, cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        embed_(checked_sizes(embed_dim, num_heads)),
        nheads_(num_heads),
        head_dim_(embed_dim / num_heads),
        causal_(causal),
        blas_(stream),
        reducer_(stream) {
    w_in_ = this->add_tensor("in_proj_weight", {3 * embed_, embed_});
    b_in_ = this->add_tensor("in_proj_bias", {3 * embed_});
    w_out_ = this->add_tensor("out_proj.weight", {embed_, embed_});
    b_out_ = this->add_tensor("out_proj.bias", {embed_});
    this->allocate_parameters();
  }

  /// A device copy of a CPU MultiHeadSelfAttention (its causal flag included).
  template <class HostBlock, class = decltype(std::declval<const HostBlock&>().num_heads())>
  explicit MultiHeadSelfAttention(const HostBlock& host, cudaStream_t stream = nullptr)
      : MultiHeadSelfAttention(host.embed_dim(), host.num_heads(), host.causal(), stream) {
    this->from_host(host);
  }

  index embed_dim() const noexcept { return embed_; }
  index num_heads() const noexcept { return nheads_; }
  index head_dim() const noexcept { return head_dim_; }
  bool causal() const noexcept { return causal_; }
  void set_causal(bool on) noexcept { causal_ = on; }
  /// Whether forward / backward check X / dY for NaN / inf at valid steps (default true; each
  /// check reads an index back, so it waits for the stream).
  void check_finite(bool on) noexcept { check_finite_ = on; }

  /// Y = attention(X). X, Y: (batch * seq_len) x E (device); lengths: empty (all seq_len) or
  /// batch values in [1, seq_len] (host memory). Writes only Y and ctx.
  void forward(const Matrix& X, index batch, index seq_len, Lengths lengths, Matrix& Y, Context& ctx) const {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::forward";
    check_sequences(where, X, batch, seq_len, lengths);
    detail::cuda_check_shape(where, "Y", Y, X.rows(), embed_);
    prepare(ctx, batch, seq_len, lengths);
    const index L = seq_len, N = batch * L, E = embed_, E3 = 3 * embed_;
    const index* len = ctx.len_.data();
    if (check_finite_) check_steps(where, "X", X, L, len);
    ctx.x_.resize(N, E);
    ctx.qkv_.resize(N, E3);
    ctx.o_.resize(N, E);
    ctx.probs_.resize(batch * nheads_ * L, L);
    mask_rows(ctx.x_.data(), X.data(), nullptr, len, batch, L, E);
    using cuda_backend::Trans;
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, N, E3, E, T(1), ctx.x_.data(),
                          this->value_ptr(w_in_), T(0), ctx.qkv_.data());
    detail::cuda_add_row_vector_kernel<T><<<detail::cuda_grid_for(N * E3), 256, 0, this->stream()>>>(
        ctx.qkv_.data(), this->value_ptr(b_in_), N, E3);
    UVP_CUDA_CHECK(cudaGetLastError());
    zero(ctx.probs_.data(), ctx.probs_.size());
    zero(ctx.o_.data(), ctx.o_.size());  // padding rows of O stay 0 (dW_out reads them)
    const T scale = T(1) / std::sqrt(T(head_dim_));
    const index d = head_dim_, PL = L * L;
    T *qkv = ctx.qkv_.data(), *P = ctx.probs_.data(), *O = ctx.o_.data();
    for_groups(ctx, [&](index b, index h, index n, index count, bool over_batch) {
      const index sq = over_batch ? L * E3 : d, sp = over_batch ? nheads_ * PL : PL;
      T* q = qkv + b * L * E3 + h * d;
      T* p = P + (b * nheads_ + h) * PL;
      // S = scale Q K^T, then (after the softmax) O = P V.
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::none, Trans::transpose, n, n, d, scale, q, E3, sq, q + E, E3,
                                       sq, T(0), p, L, sp, count);
    });
    detail::cuda_attention_softmax_kernel<T><<<static_cast<unsigned>(batch * nheads_ * L),
                                               detail::cuda_attention_threads, 0, this->stream()>>>(
        P, len, nheads_, L, causal_);
    UVP_CUDA_CHECK(cudaGetLastError());
    for_groups(ctx, [&](index b, index h, index n, index count, bool over_batch) {
      const index sq = over_batch ? L * E3 : d, sp = over_batch ? nheads_ * PL : PL, so = over_batch ? L * E : d;
      const T* v = qkv + b * L * E3 + h * d + 2 * E;
      const T* p = P + (b * nheads_ + h) * PL;
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::none, Trans::none, n, d, n, T(1), p, L, sp, v, E3, sq, T(0),
                                       O + b * L * E + h * d, E, so, count);
    });
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::transpose, N, E, E, T(1), O, this->value_ptr(w_out_), T(0),
                          Y.data());
    mask_rows(Y.data(), Y.data(), this->value_ptr(b_out_), len, batch, L, E);
  }

  /// Allocating form.
  Matrix forward(const Matrix& X, index batch, index seq_len, Lengths lengths, Context& ctx) const {
    Matrix Y(X.rows(), embed_, this->stream());
    forward(X, batch, seq_len, lengths, Y, ctx);
    return Y;
  }

  /// The attention weights of the last forward averaged over heads (PyTorch's need_weights=True,
  /// average_attn_weights=True): out is (batch * seq_len) x seq_len, row b * seq_len + i holds
  /// query i's weights over the keys; masked keys and padded query rows are 0.
  void attention_weights(const Context& ctx, Matrix& out) const {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::attention_weights";
    check_context(where, ctx);
    const index L = ctx.seq_len_;
    detail::cuda_check_shape(where, "out", out, ctx.batch_ * L, L);
    detail::cuda_attention_average_kernel<T><<<detail::cuda_grid_for(ctx.batch_ * L * L), 256, 0, this->stream()>>>(
        ctx.probs_.data(), out.data(), ctx.batch_, nheads_, L);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  /// Gradients of the last forward (run with ctx on this X): dX (written, (batch * seq_len) x E,
  /// padded rows 0) and the parameter gradients (accumulated). Rows of dY at padded positions
  /// are ignored.
  void backward(const Matrix& X, const Matrix& dY, Matrix& dX, Context& ctx) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::backward";
    check_backward(where, X, dY, ctx);
    detail::cuda_check_shape(where, "dX", dX, X.rows(), embed_);
    backward_impl(where, dY, &dX, ctx);
  }
  /// As above without the input gradient.
  void backward(const Matrix& X, const Matrix& dY, Context& ctx) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::backward";
    check_backward(where, X, dY, ctx);
    backward_impl(where, dY, nullptr, ctx);
  }

 private:
  /// The CPU constructor's checks and messages, before any CUDA call.
  static index checked_sizes(index embed_dim, index num_heads) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention";
    if (embed_dim < 1) detail::raise<invalid_argument>(where, ": embed_dim must be >= 1, got ", embed_dim);
    if (num_heads < 1) detail::raise<invalid_argument>(where, ": num_heads must be >= 1, got ", num_heads);
    if (embed_dim % num_heads != 0)
      detail::raise<invalid_argument>(where, ": embed_dim = ", embed_dim, " is not divisible by num_heads = ",
                                      num_heads);
    return embed_dim;
  }

  void zero(T* p, index n) const {
    if (n > 0) UVP_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<std::size_t>(n) * sizeof(T), this->stream()));
  }
  void mask_rows(T* y, const T* from, const T* bias, const index* len, index batch, index L, index cols) const {
    detail::cuda_attention_mask_rows_kernel<T><<<detail::cuda_grid_for(batch * L * cols), 256, 0, this->stream()>>>(
        y, from, bias, len, batch, L, cols);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  /// Calls f(b, h, n, count, over_batch) for each strided-batched group of (sequence, head)
  /// pairs: per sequence b (h = 0, count = H, n = n_b), or, when every n_b is equal and H <
  /// batch, per head h (b = 0, count = batch, n = that length).
  template <class F>
  void for_groups(const Context& ctx, F&& f) const {
    if (ctx.uniform_ && nheads_ < ctx.batch_) {
      for (index h = 0; h < nheads_; ++h) f(index(0), h, ctx.lengths_[0], ctx.batch_, true);
    } else {
      for (index b = 0; b < ctx.batch_; ++b) f(b, index(0), ctx.lengths_[static_cast<std::size_t>(b)], nheads_, false);
    }
  }

  /// detail/sequence_batch.hpp's check_sequence_batch (masks wording), with the same messages.
  void check_sequences(const char* where, const Matrix& X, index batch, index seq_len, const Lengths& lengths) const {
    if (batch < 1) detail::raise<invalid_argument>(where, ": batch must be >= 1, got ", batch);
    if (seq_len < 1) detail::raise<invalid_argument>(where, ": seq_len must be >= 1, got ", seq_len);
    if (X.rows() != batch * seq_len)
      detail::raise<shape_error>(where, ": X has ", X.rows(), " rows, expected batch * seq_len = ", batch * seq_len);
    detail::cuda_check_cols(where, "X", X.cols(), embed_);
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

  /// check_finite_steps: the first NaN / inf at a valid step, by row and column.
  void check_steps(const char* where, const char* what, const Matrix& M, index L, const index* len) const {
    const index i =
        reducer_.first_index(detail::CudaAttentionNonFiniteStep<T>{M.data(), len, L, M.cols()}, M.size());
    if (i < M.size())
      detail::raise<numeric_error>(where, ": ", what, " has a non-finite value (",
                                   cuda_backend::read_element(M.data(), i, reducer_.stream()), ") at row ",
                                   i / M.cols(), ", column ", i % M.cols());
  }

  void prepare(Context& ctx, index batch, index seq_len, const Lengths& lengths) const {
    ctx.batch_ = 0;  // no valid forward until this one has been queued
    ctx.lengths_.assign(static_cast<std::size_t>(batch), seq_len);
    if (!lengths.empty()) std::copy(lengths.data(), lengths.data() + batch, ctx.lengths_.begin());
    ctx.uniform_ = true;
    for (index n : ctx.lengths_) ctx.uniform_ = ctx.uniform_ && n == ctx.lengths_[0];
    ctx.len_.resize(batch, 1);
    // Pageable host memory: the call returns once the lengths are staged.
    UVP_CUDA_CHECK(cudaMemcpyAsync(ctx.len_.data(), ctx.lengths_.data(), static_cast<std::size_t>(batch) * sizeof(index),
                                   cudaMemcpyHostToDevice, this->stream()));
    ctx.batch_ = batch, ctx.seq_len_ = seq_len, ctx.embed_ = embed_, ctx.num_heads_ = nheads_;
  }

  void check_context(const char* where, const Context& ctx) const {
    if (ctx.batch_ == 0) detail::raise<invalid_argument>(where, ": ctx holds no forward pass (call forward first)");
    if (ctx.embed_ != embed_ || ctx.num_heads_ != nheads_)
      detail::raise<invalid_argument>(where, ": ctx comes from a block with embed_dim = ", ctx.embed_,
                                      ", num_heads = ", ctx.num_heads_, ", this one has ", embed_, ", ", nheads_);
  }

  void check_backward(const char* where, const Matrix& X, const Matrix& dY, const Context& ctx) const {
    check_context(where, ctx);
    const index rows = ctx.batch_ * ctx.seq_len_;
    detail::cuda_check_shape(where, "X", X, rows, embed_);
    detail::cuda_check_shape(where, "dY", dY, rows, embed_);
  }

  void backward_impl(const char* where, const Matrix& dY, Matrix* dX, Context& ctx) {
    const index batch = ctx.batch_, L = ctx.seq_len_, N = batch * L, E = embed_, E3 = 3 * embed_;
    const index d = head_dim_, PL = L * L;
    const index* len = ctx.len_.data();
    if (check_finite_) check_steps(where, "dY", dY, L, len);
    ctx.dy_.resize(N, E);
    ctx.d_o_.resize(N, E);
    ctx.dqkv_.resize(N, E3);
    ctx.dprobs_.resize(batch * nheads_ * L, L);
    T *dy = ctx.dy_.data(), *dO = ctx.d_o_.data(), *dqkv = ctx.dqkv_.data(), *G = ctx.dprobs_.data();
    const T *qkv = ctx.qkv_.data(), *P = ctx.probs_.data();
    mask_rows(dy, dY.data(), nullptr, len, batch, L, E);
    zero(dqkv, N * E3);  // padding rows stay 0
    using cuda_backend::Trans;
    // Output projection.
    cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, N, E, E, T(1), dy, this->value_ptr(w_out_), T(0), dO);
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, E, E, N, T(1), dy, ctx.o_.data(), T(1),
                          this->grad_ptr(w_out_));
    column_sum(dy, this->grad_ptr(b_out_), N, E);
    // dV = P^T dO and dP = dO V^T per head.
    for_groups(ctx, [&](index b, index h, index n, index count, bool over_batch) {
      const index sq = over_batch ? L * E3 : d, sp = over_batch ? nheads_ * PL : PL, so = over_batch ? L * E : d;
      const index at = b * L * E3 + h * d, slot = (b * nheads_ + h) * PL;
      const T* o = dO + b * L * E + h * d;
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::transpose, Trans::none, n, d, n, T(1), P + slot, L, sp, o, E,
                                       so, T(0), dqkv + at + 2 * E, E3, sq, count);
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::none, Trans::transpose, n, n, d, T(1), o, E, so,
                                       qkv + at + 2 * E, E3, sq, T(0), G + slot, L, sp, count);
    });
    detail::cuda_attention_softmax_backward_kernel<T><<<static_cast<unsigned>(batch * nheads_ * L),
                                                        detail::cuda_attention_threads, 0, this->stream()>>>(
        P, G, len, nheads_, L, causal_, T(1) / std::sqrt(T(d)));
    UVP_CUDA_CHECK(cudaGetLastError());
    // dQ = dS K and dK = dS^T Q per head (the 1 / sqrt(d) is in dS).
    for_groups(ctx, [&](index b, index h, index n, index count, bool over_batch) {
      const index sq = over_batch ? L * E3 : d, sp = over_batch ? nheads_ * PL : PL;
      const index at = b * L * E3 + h * d, slot = (b * nheads_ + h) * PL;
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::none, Trans::none, n, d, n, T(1), G + slot, L, sp,
                                       qkv + at + E, E3, sq, T(0), dqkv + at, E3, sq, count);
      cuda_backend::gemm_ld_batched<T>(blas_, Trans::transpose, Trans::none, n, d, n, T(1), G + slot, L, sp,
                                       qkv + at, E3, sq, T(0), dqkv + at + E, E3, sq, count);
    });
    // Input projection.
    cuda_backend::gemm<T>(blas_, Trans::transpose, Trans::none, E3, E, N, T(1), dqkv, ctx.x_.data(), T(1),
                          this->grad_ptr(w_in_));
    column_sum(dqkv, this->grad_ptr(b_in_), N, E3);
    if (dX)
      cuda_backend::gemm<T>(blas_, Trans::none, Trans::none, N, E, E3, T(1), dqkv, this->value_ptr(w_in_), T(0),
                            dX->data());
  }

  void column_sum(const T* g, T* db, index rows, index cols) {
    detail::cuda_column_sum_kernel<T><<<detail::cuda_grid_for(cols), 256, 0, this->stream()>>>(g, db, rows, cols);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  index embed_, nheads_, head_dim_;
  bool causal_;
  bool check_finite_ = true;
  std::size_t w_in_ = 0, b_in_ = 0, w_out_ = 0, b_out_ = 0;
  cuda_backend::BlasHandle blas_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
