// SPDX-License-Identifier: Apache-2.0
// Multi-head self-attention (Vaswani et al., "Attention Is All You Need", NeurIPS 2017) with a
// key-padding mask and an optional causal mask: PyTorch's
// nn.MultiheadAttention(E, H, batch_first=True) called with query = key = value.
//
// X and Y are (batch * seq_len) x E, row b * seq_len + t; sequence b has n_b = lengths[b] valid
// positions. H heads of d = E / H columns each:
//
//   [Q K V] = X W_in^T + b_in                   W_in "in_proj_weight" 3E x E, b_in "in_proj_bias" 3E
//   for every sequence b and head h (rows t < n_b, columns h d .. h d + d - 1 of Q, K and V):
//     S = Q_bh K_bh^T / sqrt(d)                 n_b x n_b: keys t >= n_b are masked out
//     S_ij = -inf for j > i                     (causal only)
//     P_bh = softmax over each row of S,  O_bh = P_bh V_bh
//   Y = O W_out^T + b_out                       W_out "out_proj.weight" E x E, b_out "out_proj.bias" E
//
// Rows t >= n_b (padding) of Y are written 0 and their incoming gradients are ignored; the
// attention weights of valid rows equal PyTorch's (a padded query row, which PyTorch still
// computes, is 0 here). Backward:
//
//   dO = dY W_out,  dW_out += dY^T O,  db_out += sum_rows dY
//   dP = dO_bh V_bh^T,  dV_bh = P^T dO_bh,  dS = P o (dP - rowsum(P o dP))
//   dQ_bh = dS K_bh / sqrt(d),  dK_bh = dS^T Q_bh / sqrt(d)
//   dW_in += [dQ dK dV]^T X,  db_in += sum_rows [dQ dK dV],  dX = [dQ dK dV] W_in
//
// The layer contract (uvp/nn/layer.hpp), SequenceBatch<T> -> SequenceBatch<T>:
//
//   SequenceBatch<T> y = attn.forward(x, ctx);      // x's batch, steps and lengths; E features
//   SequenceBatch<T> dx = attn.backward(ctx, d_y);  // accumulates the parameter gradients
//
// Both results are views owned by ctx (valid until its next forward); ctx keeps a view of x,
// which must stay unchanged until the backward. The low-level forms take the caller's buffers:
// forward(X, batch, seq_len, lengths, Y, ctx) and backward(X, dY, dX, ctx). Every product of
// forward is detail::row_product's: a sequence's outputs are bit for bit the same alone or in any
// batch, at any thread count (docs/concepts.md, "Same answer at any batch size").
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/row_product_math.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

/// Softmax of row[0, m) in place (m >= 1); row[m, n) is set to 0 (masked keys). One SIMD pass
/// each for the max, exp-and-sum and scale; the last m % W elements go through a stack batch
/// padded with -inf (exp(-inf) = 0), so rows of any length stay vectorised.
template <class T>
void attention_softmax_row(T* row, index m, index n) noexcept {
  namespace s = uvp::detail::simd;
  if constexpr (!s::enabled<T>) {
    T mx = row[0];
    for (index j = 1; j < m; ++j) mx = std::max(mx, row[j]);
    T sum = T(0);
    for (index j = 0; j < m; ++j) sum += (row[j] = std::exp(row[j] - mx));
    const T inv = T(1) / sum;
    for (index j = 0; j < m; ++j) row[j] *= inv;
  } else {
    using B = s::batch<T>;
    constexpr index W = static_cast<index>(B::size);
    const index full = m - m % W;
    alignas(64) T tail[W];
    for (index j = 0; j < W; ++j) tail[j] = full + j < m ? row[full + j] : -std::numeric_limits<T>::infinity();
    B vmax = B::load_aligned(tail);
    for (index j = 0; j < full; j += W) vmax = xsimd::max(vmax, B::load_unaligned(row + j));
    alignas(64) T lanes[W];
    vmax.store_aligned(lanes);
    T mx = lanes[0];
    for (index k = 1; k < W; ++k) mx = std::max(mx, lanes[k]);
    const B vm(mx);
    // Arguments are <= 0 (-inf in the padded tail, which s::exp maps to 0 without UB).
    B vsum = s::exp(B::load_aligned(tail) - vm);
    vsum.store_aligned(tail);
    for (index j = 0; j < full; j += W) {
      const B e = s::exp(B::load_unaligned(row + j) - vm);
      e.store_unaligned(row + j);
      vsum += e;
    }
    const B inv(T(1) / s::reduce_add(vsum));
    for (index j = 0; j < full; j += W) (B::load_unaligned(row + j) * inv).store_unaligned(row + j);
    (B::load_aligned(tail) * inv).store_aligned(tail);
    std::copy(tail, tail + (m - full), row + full);
  }
  std::fill(row + m, row + n, T(0));
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Multi-head self-attention over batch-first sequences with a key-padding mask (from lengths)
/// and an optional causal mask. Tensors, in PyTorch's state_dict order and shapes:
/// "in_proj_weight" {3E, E}, "in_proj_bias" {3E}, "out_proj.weight" {E, E}, "out_proj.bias" {E}.
template <class T, class Backend = cpu>
class MultiHeadSelfAttention : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::MultiHeadSelfAttention: only the uvp::cpu backend is implemented; use "
                "MultiHeadSelfAttention<T, uvp::cpu>");

  using Buffer = uvp::detail::AlignedBuffer<T>;

 public:
  using backend_type = Backend;
  using input_type = SequenceBatch<T>;
  using output_type = SequenceBatch<T>;
  static constexpr const char* kind = "MultiHeadSelfAttention";

  /// What forward saves for backward, plus backward's scratch. Owned by the caller (one per
  /// thread for concurrent forwards); its buffers only grow, so after the first call of the
  /// largest shape neither forward nor backward allocates. Internally only the valid rows are
  /// kept, packed (sequence b at rows offsets[b] .. offsets[b] + n_b - 1), so padding costs
  /// no arithmetic.
  class Context : public uvp::detail::NnContextBase {
   public:
    index batch() const noexcept { return batch_; }
    index seq_len() const noexcept { return seq_len_; }
    /// The lengths of the last forward (seq_len for each sequence when none were given); empty
    /// unless it completed.
    Span<const index> lengths() const noexcept { return holds_forward() ? as_span(lengths_) : Span<const index>(); }
    /// Attention probabilities of sequence b and head h of the last forward: n_b x n_b (row =
    /// query, column = key). uvp::invalid_argument when ctx holds no completed forward,
    /// uvp::out_of_range_error for b outside [0, batch()) or h outside [0, num_heads).
    ConstMatrixView<T> probabilities(index b, index h) const {
      constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::Context::probabilities";
      uvp::detail::nn_require_forward(where, *this, "MultiHeadSelfAttention");
      uvp::detail::nn_check_index(where, "b", b, "batch", batch_);
      uvp::detail::nn_check_index(where, "h", h, "num_heads", num_heads_);
      return probs(b, h);
    }

   private:
    friend class MultiHeadSelfAttention;
    ConstMatrixView<T> probs(index b, index h) const noexcept {
      const index n = lengths_[static_cast<std::size_t>(b)];
      return {probs_.data() + pslot_[static_cast<std::size_t>(b)] + h * n * n, n, n};
    }
    index batch_ = 0, seq_len_ = 0, embed_ = 0, num_heads_ = 0, valid_ = 0;
    std::vector<index> lengths_, offsets_, pslot_;  // n_b; first packed row; first probability
    Buffer x_, qkv_, o_, probs_;                    // forward (x_: packed X)
    uvp::detail::PackedRhs<T> w_in_, w_out_;        // W_in^T, W_out^T packed for row_product
    std::vector<uvp::detail::PackedRhs<T>> kv_;     // per thread: K^T / sqrt(d), then V, of one head
    Buffer dy_, d_o_, dqkv_, dprobs_;               // backward scratch
    Buffer y_, dx_;                                 // the contract forms' Y and dX
    SequenceBatch<T> in_;                           // the contract forward's x
  };

  /// embed_dim E, num_heads H (E % H == 0). Initialised as PyTorch does: W_in ~ xavier_uniform
  /// (U(-a, a), a = sqrt(6 / (E + 3E))), W_out ~ U(-1/sqrt(E), 1/sqrt(E)) (nn.Linear's default),
  /// both biases 0. causal: query t attends to keys <= t only (PyTorch's square subsequent mask).
  MultiHeadSelfAttention(index embed_dim, index num_heads, Rng& rng, bool causal = false)
      : embed_(embed_dim), nheads_(num_heads), causal_(causal) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention";
    if (embed_dim < 1) uvp::detail::raise<invalid_argument>(where, ": embed_dim must be >= 1, got ", embed_dim);
    if (num_heads < 1) uvp::detail::raise<invalid_argument>(where, ": num_heads must be >= 1, got ", num_heads);
    if (embed_dim % num_heads != 0)
      uvp::detail::raise<invalid_argument>(where, ": embed_dim = ", embed_dim,
                                           " is not divisible by num_heads = ", num_heads);
    head_dim_ = embed_dim / num_heads;
    w_in_ = this->add_tensor("in_proj_weight", {3 * embed_dim, embed_dim});
    b_in_ = this->add_tensor("in_proj_bias", {3 * embed_dim});
    w_out_ = this->add_tensor("out_proj.weight", {embed_dim, embed_dim});
    b_out_ = this->add_tensor("out_proj.bias", {embed_dim});
    this->allocate_parameters();
    init::glorot_uniform(this->values(this->tensors()[w_in_]), embed_dim, 3 * embed_dim, rng);
    const double bound = 1.0 / std::sqrt(double(embed_dim));
    init::uniform(this->values(this->tensors()[w_out_]), -bound, bound, rng);
  }

  index embed_dim() const noexcept { return embed_; }
  index num_heads() const noexcept { return nheads_; }
  index head_dim() const noexcept { return head_dim_; }
  bool causal() const noexcept { return causal_; }
  void set_causal(bool on) noexcept { causal_ = on; }

  /// E features in, E out; output_width raises uvp::shape_error for in other than E (or -1).
  index input_width() const noexcept { return embed_; }
  index output_width(index in) const {
    if (in != -1 && in != embed_)
      uvp::detail::nn_width_mismatch("uvp::nn::MultiHeadSelfAttention::output_width", "MultiHeadSelfAttention", in,
                                     embed_);
    return embed_;
  }

  /// Y = attention(x): the batch, steps and lengths of x, E features, padding rows 0. Checks
  /// and messages are the low-level forward's. Const and thread-safe: writes only ctx.
  SequenceBatch<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, "x", x);
    uvp::detail::check_not_in_context<T>(where, "x", x.values(), ctx.y_, ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> Y(uvp::detail::grow(ctx.y_, rows * embed_), rows, embed_);
    forward(x.values(), x.batch, x.steps, x.lengths, Y, ctx);
    ctx.in_ = x;
    return {ConstMatrixView<T>(Y.data(), rows, embed_), x.batch, x.steps, x.lengths};
  }

  /// dX (the shape of ctx's forward input, padding rows 0) from d_output (the shape of its
  /// output; padding rows ignored); the parameter gradients are accumulated.
  /// uvp::invalid_argument without a completed forward in ctx, uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::backward";
    check_context(where, ctx);
    const SequenceBatch<T>& x = ctx.in_;
    uvp::detail::check_batch_sizes(where, "d_output", d_output);
    uvp::detail::check_sequence_shape(where, "d_output", d_output.batch, d_output.steps, d_output.features, x.batch,
                                      x.steps, embed_);
    uvp::detail::check_not_in_context<T>(where, "d_output", d_output.values(), ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> dX(uvp::detail::grow(ctx.dx_, rows * embed_), rows, embed_);
    backward(x.values(), d_output.values(), dX, ctx);
    return {ConstMatrixView<T>(dX.data(), rows, embed_), x.batch, x.steps, x.lengths};
  }

  /// kind "MultiHeadSelfAttention", args embed_dim, num_heads, causal (0 / 1).
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.set("embed_dim", double(embed_)).set("num_heads", double(nheads_)).set("causal", causal_ ? 1.0 : 0.0);
    return s;
  }
  /// The block spec() describes, initialised from a fixed seed (the weights are loaded after).
  static MultiHeadSelfAttention from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::MultiHeadSelfAttention::from_spec", s, kind);
    constexpr index max = uvp::detail::nn_spec_max_size;
    uvp::Rng rng;
    return MultiHeadSelfAttention(s.get_index("embed_dim", -max, max), s.get_index("num_heads", -max, max), rng,
                                  s.get_bool("causal"));
  }

  // Low-level forms: the caller's buffers.

  /// Y = attention(X). X, Y: (batch * seq_len) x E; lengths: empty (all seq_len) or batch
  /// values in [1, seq_len]. Const and thread-safe: writes only Y and ctx.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
               MatrixRef<T> Y, Context& ctx) const {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_sequence_batch<T>(where, X, embed_, batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), X.rows(), embed_);
    prepare(ctx, batch, seq_len, lengths);
    const index nv = ctx.valid_, E = embed_, E3 = 3 * embed_;
    MatrixView<T> x(ctx.x_.data(), nv, E);
    gather(ctx, X, x);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, as_span(ctx.lengths_));

    const index L = seq_len;
    const T* const x_data = ctx.x_.data();
    T* const qkv_data = ctx.qkv_.data();
    T* const o_data = ctx.o_.data();
    const index* const len = ctx.lengths_.data();
    const index* const off = ctx.offsets_.data();
    // Every product is row_product's (detail/row_product_math.hpp): a sequence's result does
    // not depend on the batch around it, where it lies in memory or the thread count.
    ctx.w_in_.pack_transposed(param(w_in_, E3, E).data(), E, E3, E);
    ctx.w_out_.pack_transposed(param(w_out_, E, E).data(), E, E, E);
    const T* const b_in = this->values(this->tensors()[b_in_]).data();
    const T* const b_out = this->values(this->tensors()[b_out_]).data();
    // Each thread's K / V packing buffer, grown here for the longest sequence (no allocation in
    // the loop, whichever thread takes which sequence).
    const auto threads = static_cast<std::size_t>(parallel_worth(ctx) ? std::max(1, num_threads()) : 1);
    if (ctx.kv_.size() < threads) ctx.kv_.resize(threads);
    for (std::size_t i = 0; i < threads; ++i) {
      ctx.kv_[i].reserve_for(head_dim_, L);
      ctx.kv_[i].reserve_for(L, head_dim_);
    }
    // One loop for the whole pass: each sequence's projections, heads and output rows are
    // independent, so a thread takes whole sequences (uvp::parallel_chunks: no busy-waiting
    // OpenMP team left behind, see docs/performance.md "Contention").
    const auto sequence = [&](index b) {
      const index n = len[b];
      uvp::detail::row_product(x_data + off[b] * E, E, n, ctx.w_in_, b_in, false, qkv_data + off[b] * E3, E3);
      for (index h = 0; h < nheads_; ++h) attend(ctx, b, h);
      uvp::detail::row_product(o_data + off[b] * E, E, n, ctx.w_out_, b_out, false, Y.row(b * L).data(),
                               Y.outerStride());
      Y.middleRows(b * L + n, L - n).setZero();
    };
    if (parallel_worth(ctx))
      uvp::parallel_chunks(batch, sequence);
    else
      for (index b = 0; b < batch; ++b) sequence(b);
    uvp::detail::nn_end_forward(ctx);
  }

  /// The attention weights of the last forward averaged over heads (PyTorch's need_weights=True,
  /// average_attn_weights=True): out is (batch * seq_len) x seq_len, row b * seq_len + i holds
  /// query i's weights over keys 0 .. seq_len - 1; masked keys and padded query rows are 0.
  void attention_weights(const Context& ctx, MatrixRef<T> out) const {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::attention_weights";
    check_context(where, ctx);
    const index L = ctx.seq_len_;
    uvp::detail::check_shape(where, "out", out.rows(), out.cols(), ctx.batch_ * L, L);
    out.setZero();
    const T inv_h = T(1) / T(nheads_);
    for (index b = 0; b < ctx.batch_; ++b) {
      const index n = ctx.lengths_[static_cast<std::size_t>(b)];
      auto block = out.block(b * L, 0, n, n);
      for (index h = 0; h < nheads_; ++h) block += ctx.probs(b, h);
      block *= inv_h;
    }
  }

  /// Gradients of the last forward (run with ctx on this X): dX (written, (batch * seq_len) x
  /// E, padded rows 0) and the parameter gradients (accumulated). Rows of dY at padded positions
  /// are ignored. Uses ctx as scratch; allocates nothing once ctx has grown.
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, MatrixRef<T> dX, Context& ctx) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::backward";
    check_backward(where, X, dY, ctx);
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), X.rows(), embed_);
    backward_impl(where, X, dY, ctx, &dX);
  }

  /// As above without the input gradient (when X is not trainable).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, Context& ctx) {
    constexpr const char* where = "uvp::nn::MultiHeadSelfAttention::backward";
    check_backward(where, X, dY, ctx);
    backward_impl(where, X, dY, ctx, nullptr);
  }

 private:
  ConstMatrixView<T> param(std::size_t t, index r, index c) const noexcept {
    return {this->values(this->tensors()[t]).data(), r, c};
  }
  MatrixView<T> grad(std::size_t t, index r, index c) noexcept {
    return {this->grads(this->tensors()[t]).data(), r, c};
  }
  // Bias gradients as row vectors (rowwise() broadcasting needs a compile-time vector).
  Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> row_grad(std::size_t t, index n) noexcept {
    return {this->grads(this->tensors()[t]).data(), n};
  }

  // Valid rows of a padded (batch * seq_len) matrix -> packed rows.
  static void gather(const Context& ctx, const ConstMatrixRef<T>& padded, MatrixView<T>& packed) {
    for (index b = 0; b < ctx.batch_; ++b)
      packed.middleRows(ctx.offsets_[static_cast<std::size_t>(b)], ctx.lengths_[static_cast<std::size_t>(b)]) =
          padded.middleRows(b * ctx.seq_len_, ctx.lengths_[static_cast<std::size_t>(b)]);
  }
  void prepare(Context& ctx, index batch, index seq_len, Span<const index> lengths) const {
    ctx.batch_ = batch;
    ctx.seq_len_ = seq_len;
    ctx.embed_ = embed_;
    ctx.num_heads_ = nheads_;
    const auto nb = static_cast<std::size_t>(batch);
    ctx.lengths_.resize(nb);
    ctx.offsets_.resize(nb + 1);
    ctx.pslot_.resize(nb + 1);
    ctx.offsets_[0] = ctx.pslot_[0] = 0;
    for (std::size_t b = 0; b < nb; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[static_cast<index>(b)];
      ctx.lengths_[b] = n;
      ctx.offsets_[b + 1] = ctx.offsets_[b] + n;
      ctx.pslot_[b + 1] = ctx.pslot_[b] + nheads_ * n * n;
    }
    const index nv = ctx.valid_ = ctx.offsets_[nb];
    uvp::detail::grow(ctx.x_, nv * embed_);
    uvp::detail::grow(ctx.qkv_, nv * 3 * embed_);
    uvp::detail::grow(ctx.o_, nv * embed_);
    uvp::detail::grow(ctx.probs_, ctx.pslot_[nb]);
  }

  // Work above which the per-(sequence, head) loops fork (a fork costs a few microseconds).
  static bool parallel_worth(const Context& ctx) noexcept {
    return ctx.batch_ * ctx.num_heads_ > 1 && ctx.valid_ * ctx.embed_ >= 4096;
  }

  // P = softmax(Q K^T / sqrt(d)) and O = P V for sequence b, head h.
  void attend(Context& ctx, index b, index h) const {
    const index E = embed_, E3 = 3 * embed_, d = head_dim_;
    const index n = ctx.lengths_[static_cast<std::size_t>(b)], first = ctx.offsets_[static_cast<std::size_t>(b)];
    const T scale = T(1) / std::sqrt(T(d));
    const T* base = ctx.qkv_.data() + first * E3 + h * d;
    const uvp::detail::ConstStridedView<T> Q(base, n, d, Eigen::OuterStride<>(E3));
    const uvp::detail::ConstStridedView<T> K(base + E, n, d, Eigen::OuterStride<>(E3));
    const uvp::detail::ConstStridedView<T> V(base + 2 * E, n, d, Eigen::OuterStride<>(E3));
    T* P = ctx.probs_.data() + ctx.pslot_[static_cast<std::size_t>(b)] + h * n * n;
    // Q K^T / sqrt(d) with the scale packed into K^T, then P V, through this thread's buffer.
    auto& packed = ctx.kv_[static_cast<std::size_t>(uvp::parallel_worker())];
    packed.pack_transposed(K.data(), E3, n, d, scale);
    uvp::detail::row_product(Q.data(), E3, n, packed, nullptr, false, P, n);
    for (index i = 0; i < n; ++i) uvp::detail::attention_softmax_row(P + i * n, causal_ ? i + 1 : n, n);
    packed.pack(V.data(), E3, n, d);
    uvp::detail::row_product(P, n, n, packed, nullptr, false, ctx.o_.data() + first * E + h * d, E);
  }

  // The gradients of attend: dQ, dK, dV of sequence b, head h from dO (scratch: dprobs_).
  void attend_backward(Context& ctx, index b, index h) const {
    const index E = embed_, E3 = 3 * embed_, d = head_dim_;
    const index n = ctx.lengths_[static_cast<std::size_t>(b)], first = ctx.offsets_[static_cast<std::size_t>(b)];
    const index slot = ctx.pslot_[static_cast<std::size_t>(b)] + h * n * n;
    const T scale = T(1) / std::sqrt(T(d));
    const index at = first * E3 + h * d;
    const T* qkv = ctx.qkv_.data();
    T* dqkv = ctx.dqkv_.data();
    const uvp::detail::ConstStridedView<T> Q(qkv + at, n, d, Eigen::OuterStride<>(E3));
    const uvp::detail::ConstStridedView<T> K(qkv + at + E, n, d, Eigen::OuterStride<>(E3));
    const uvp::detail::ConstStridedView<T> V(qkv + at + 2 * E, n, d, Eigen::OuterStride<>(E3));
    const ConstMatrixView<T> P(ctx.probs_.data() + slot, n, n);
    const uvp::detail::ConstStridedView<T> dO(ctx.d_o_.data() + first * E + h * d, n, d, Eigen::OuterStride<>(E));
    uvp::detail::StridedView<T> dQ(dqkv + at, n, d, Eigen::OuterStride<>(E3));
    uvp::detail::StridedView<T> dK(dqkv + at + E, n, d, Eigen::OuterStride<>(E3));
    uvp::detail::StridedView<T> dV(dqkv + at + 2 * E, n, d, Eigen::OuterStride<>(E3));
    MatrixView<T> dS(ctx.dprobs_.data() + slot, n, n);

    dV.noalias() = P.transpose() * dO;
    dS.noalias() = dO * V.transpose();  // dP, turned into dS row by row
    for (index i = 0; i < n; ++i) {
      const index m = causal_ ? i + 1 : n;  // P is 0 beyond m
      const Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>> p(P.data() + i * n, m);
      Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> g(dS.data() + i * n, m);
      const T c = (p * g).sum();
      g = scale * p * (g - c);
      std::fill(dS.data() + i * n + m, dS.data() + (i + 1) * n, T(0));
    }
    dQ.noalias() = dS * K;
    dK.noalias() = dS.transpose() * Q;
  }

  uvp::detail::NnBlockShape shape() const noexcept { return {{"embed_dim", embed_}, {"num_heads", nheads_}}; }

  void check_context(const char* where, const Context& ctx) const {
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "MultiHeadSelfAttention", &s);
  }

  void check_backward(const char* where, ConstMatrixRef<T> X, ConstMatrixRef<T> dY, const Context& ctx) const {
    check_context(where, ctx);
    const index rows = ctx.batch_ * ctx.seq_len_;
    uvp::detail::check_shape(where, "X", X.rows(), X.cols(), rows, embed_);
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), rows, embed_);
  }

  // dX may be null (no input gradient wanted).
  void backward_impl(const char* where, ConstMatrixRef<T> X, ConstMatrixRef<T> dY, Context& ctx, MatrixRef<T>* dX) {
    const index nv = ctx.valid_, E = embed_, E3 = 3 * embed_, L = ctx.seq_len_, batch = ctx.batch_;
    if (batch == 0) return;  // an empty batch: no gradient, parameters untouched
    uvp::detail::grow(ctx.dy_, nv * E);
    uvp::detail::grow(ctx.d_o_, nv * E);
    uvp::detail::grow(ctx.dqkv_, nv * E3);
    uvp::detail::grow(ctx.dprobs_, ctx.pslot_[static_cast<std::size_t>(batch)]);

    // Only the valid rows of dY: padded ones carry no gradient, whatever the caller left there.
    MatrixView<T> dy(ctx.dy_.data(), nv, E);
    gather(ctx, dY, dy);
    uvp::detail::check_finite_steps<T>(where, "dY", dY, batch, L, as_span(ctx.lengths_));

    const T* const dy_data = ctx.dy_.data();
    T* const d_o_data = ctx.d_o_.data();
    const T* const dqkv_data = ctx.dqkv_.data();
    T* const x_data = ctx.x_.data();
    const index* const len = ctx.lengths_.data();
    const index* const off = ctx.offsets_.data();
    // Parameter gradients are split into blocks of `chunk` output rows: 3E / chunk of W_in, then
    // E / chunk of W_out, each a GEMM over all valid rows of equal cost.
    constexpr index chunk = 16;
    const index chunks_in = (E3 + chunk - 1) / chunk, chunks = chunks_in + (E + chunk - 1) / chunk;
    // Two loops of uvp::parallel_chunks (Eigen's products inside do not fork): the sequences,
    // then the blocks of parameter-gradient rows. Each chunk writes its own rows, so the result
    // does not depend on the thread count or on which thread ran what.
    const bool parallel = parallel_worth(ctx);
    const auto for_each = [parallel](index count, auto&& f) {
      if (parallel)
        uvp::parallel_chunks(count, f);
      else
        for (index k = 0; k < count; ++k) f(k);
    };
    for_each(batch, [&](index b) {
      const index n = len[b];
      MatrixView<T>(x_data + off[b] * E, n, E) = X.middleRows(b * L, n);
      MatrixView<T>(d_o_data + off[b] * E, n, E).noalias() =
          ConstMatrixView<T>(dy_data + off[b] * E, n, E) * param(w_out_, E, E);
      for (index h = 0; h < nheads_; ++h) attend_backward(ctx, b, h);
      if (dX) {
        dX->middleRows(b * L, n).noalias() = ConstMatrixView<T>(dqkv_data + off[b] * E3, n, E3) * param(w_in_, E3, E);
        dX->middleRows(b * L + n, L - n).setZero();
      }
    });
    for_each(chunks, [&](index c) {
      const bool in = c < chunks_in;
      const index cols = in ? E3 : E, r0 = (in ? c : c - chunks_in) * chunk, k = std::min(chunk, cols - r0);
      // dW[r0 : r0 + k] += G[:, r0 : r0 + k]^T A, db[r0 : r0 + k] += column sums of G
      const ConstMatrixView<T> G(in ? dqkv_data : dy_data, nv, cols);
      const ConstMatrixView<T> A(in ? x_data : ctx.o_.data(), nv, E);
      MatrixView<T> dW(this->grads(this->tensors()[in ? w_in_ : w_out_]).data() + r0 * E, k, E);
      dW.noalias() += G.middleCols(r0, k).transpose() * A;
      auto db = this->grads(this->tensors()[in ? b_in_ : b_out_]).as_vector().segment(r0, k);
      for (index r = 0; r < nv; ++r) db += G.row(r).segment(r0, k).transpose();
    });
  }

  index embed_ = 0, nheads_ = 0, head_dim_ = 0;
  bool causal_ = false;
  std::size_t w_in_ = 0, b_in_ = 0, w_out_ = 0, b_out_ = 0;
};

}  // namespace uvp::nn
