// SPDX-License-Identifier: Apache-2.0
// Gated recurrent unit: a stacked, batch-first sequence GRU over packed variable-length sequences,
// torch.nn.GRU(I, H, num_layers=L, batch_first=True), with PyTorch's equations, gate order and names.
//
// References: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
// Statistical Machine Translation", EMNLP 2014 (the unit); the equations and gate layout of
// PyTorch's nn.GRU documentation, which this file reproduces exactly (the reset gate multiplies
// W_hn h + b_hn, not h):
//
//   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
//
// Tensors, per layer k < L, in state_dict order (PyTorch's names and shapes, so state_dicts
// compare one to one): "weight_ih_l{k}" {3H, I (k = 0) or H}, "weight_hh_l{k}" {3H, H},
// "bias_ih_l{k}" {3H}, "bias_hh_l{k}" {3H}; rows 0..H-1 belong to r, H..2H-1 to z, 2H..3H-1 to n.
// All are initialised U(-1/sqrt(H), 1/sqrt(H)) in that order (PyTorch's reset_parameters).
// Layer k > 0 reads layer k - 1's hidden states (no dropout between layers).
//
// The layer contract (uvp/nn/layer.hpp), the documented API:
//   forward(x, ctx)          x: SequenceBatch<T>, (batch * steps) x I, batch-first, sequence b
//                            with n_b = x.length(b) in [1, steps] valid steps; returns the top
//                            layer's h_t at every step, (batch * steps) x H, rows t >= n_b 0
//                            (pad_packed_sequence(..., total_length=steps) of PyTorch's output on
//                            pack_padded_sequence(x, lengths, batch_first=True,
//                            enforce_sorted=False)); from h0 = 0. Keeps a view of x in ctx.
//   backward(ctx, d_output)  BPTT through every layer and step from the gradient of that output
//                            (padding rows ignored); accumulates (+=) every weight gradient and
//                            returns dX, (batch * steps) x I, padding rows 0, owned by ctx.
//   forward_last(x, h_last, ctx)   inference: h_last (batch x H) = the top layer's h at each
//                            sequence's last valid step, keeping no history (backward cannot follow).
//   ctx.output(), ctx.last_hidden() (batch x H, top layer; PyTorch's h_n[L - 1]), and
//   ctx.last_hidden(k) (h_n[k]).
// Low-level form: backward(ctx, dH, dh_last) from dH ((batch * steps) x H, or empty) and/or
// dh_last (batch x H, the gradient of ctx.last_hidden(), or empty).
//
// Cost: per layer one GEMM for the input projections of all steps, then per step one GEMM
// h W_hh^T over the sequences still running (each chunk's sequences are ordered by length, so
// these are the first rows of a compact state) and one fused, xsimd-vectorised pass for the
// gates. Backward: the same per step, then one GEMM per weight over all steps. Large batches are
// split into chunks of sequences that OpenMP threads run through every layer and step on their
// own; the split depends on the sizes only, and each chunk sums its own weight gradients, added
// in chunk order: the results are the same, bit for bit, for any thread count. Every buffer lives
// in the caller's context and only grows: after the first call of the largest shape, forward,
// forward_last and backward allocate nothing. The forward products are detail::row_product's
// (the weights packed into the context, again only when their bits have changed since its last
// call): a sequence's outputs are bit for bit the same alone or in any batch (docs/concepts.md,
// "Same answer at any batch size").
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/gru_math.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/row_product_math.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

template <class T, class Backend>
class Gru;

/// What Gru::forward keeps for backward, and the scratch of forward_last and backward. Owned by
/// the caller: one per thread for concurrent forwards. Its buffers only grow.
/// Every view below is empty (0 rows) unless the last call completed (holds_forward()).
template <class T>
class GruContext : public uvp::detail::NnContextBase {
  static_assert(is_scalar_v<T>, "uvp::nn::GruContext: T must be float or double");

 public:
  index batch() const noexcept { return batch_; }
  index steps() const noexcept { return steps_; }
  index hidden_size() const noexcept { return hidden_; }
  index num_layers() const noexcept { return layers_; }
  /// True after forward (backward may follow); false after forward_last, after a call that
  /// threw, or before any call.
  bool has_history() const noexcept { return history_ && holds_forward(); }
  /// The lengths of the last call (steps for every sequence when none were given).
  Span<const index> lengths() const noexcept { return {lengths_.data(), done(batch_)}; }
  /// The top layer's h_t at every step of the last forward, (batch * steps) x H, padding rows 0;
  /// what forward returned. Empty after forward_last.
  SequenceBatch<T> output() const {
    const index b = has_history() ? batch_ : 0;
    const T* top = b ? h_.data() + (layers_ - 1) * batch_ * steps_ * hidden_ : nullptr;
    return SequenceBatch<T>(ConstMatrixView<T>(top, b * steps_, hidden_), b, steps_,
                            given_lengths_ && b ? Span<const index>(lengths_.data(), b) : Span<const index>());
  }
  /// The top layer's h at each sequence's last valid step: batch x H (PyTorch's h_n[L - 1]).
  ConstMatrixView<T> last_hidden() const noexcept { return layer_last(layers_ - 1); }
  /// Layer k's h at each sequence's last valid step: batch x H (PyTorch's h_n[k]).
  /// uvp::out_of_range_error unless 0 <= k < num_layers().
  ConstMatrixView<T> last_hidden(index k) const {
    uvp::detail::nn_check_index("uvp::nn::GruContext::last_hidden", "layer", k, "num_layers", layers_);
    return layer_last(k);
  }

 private:
  template <class, class>
  friend class Gru;
  using Buffer = uvp::detail::AlignedBuffer<T>;
  index done(index rows) const noexcept { return holds_forward() ? rows : 0; }
  ConstMatrixView<T> layer_last(index k) const noexcept {
    const index b = done(batch_);
    return {b ? last_.data() + k * batch_ * hidden_ : nullptr, b, hidden_};
  }

  index batch_ = 0, steps_ = 0, hidden_ = 0, input_ = 0, layers_ = 1, chunks_ = 1;
  bool history_ = false, given_lengths_ = false;
  SequenceBatch<T> x_;                 // the input of the last forward (a view)
  std::vector<index> lengths_, order_;  // order_: each chunk's (block's) sequences by length, longest first
  Buffer bias_, zeros_;                // per layer [b_ir + b_hr | b_iz + b_hz | b_in | b_hn]; a zero row
  Buffer gates_, q_, h_, last_;        // per layer: r z n, W_hn h + b_hn, h (batch-first); h_n
  Buffer hcur_, p_;                    // the running h and h W_hh^T of the sequences still running
  Buffer xp_, seq_;                    // forward_last: input projections, a lower layer's outputs
  std::vector<uvp::detail::PackedRhs<T>> packed_;  // W_ih^T, W_hh^T of each layer, packed for row_product
  Buffer dxp_, dhp_, dh_, dps_, dmid_, dx_, dw_;  // backward
};

/// A stacked GRU over batch-first sequences of variable length, torch.nn.GRU(I, H, num_layers=L,
/// batch_first=True) on packed sequences. See the top of this file for the equations, tensors
/// and shapes.
template <class T, class Backend = cpu>
class Gru : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Gru: only the uvp::cpu backend is implemented; use Gru<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using value_type = T;
  using input_type = SequenceBatch<T>;
  using output_type = SequenceBatch<T>;
  using Context = GruContext<T>;
  static constexpr const char* kind = "Gru";

  /// input_size I, hidden_size H, num_layers L > 0; every tensor drawn U(-1/sqrt(H), 1/sqrt(H))
  /// in state_dict order (PyTorch).
  Gru(index input_size, index hidden_size, Rng& rng, index num_layers = 1)
      : in_(input_size), hid_(hidden_size), layers_(num_layers) {
    constexpr const char* where = "uvp::nn::Gru";
    uvp::detail::check_positive(where, "input_size", input_size);
    uvp::detail::check_positive(where, "hidden_size", hidden_size);
    uvp::detail::check_positive(where, "num_layers", num_layers);
    for (index l = 0; l < layers_; ++l) {
      const std::string k = std::to_string(l);
      this->add_tensor("weight_ih_l" + k, {3 * hid_, layer_input(l)});
      this->add_tensor("weight_hh_l" + k, {3 * hid_, hid_});
      this->add_tensor("bias_ih_l" + k, {3 * hid_});
      this->add_tensor("bias_hh_l" + k, {3 * hid_});
    }
    this->allocate_parameters();
    const double k = 1.0 / std::sqrt(double(hid_));
    for (const auto& t : this->tensors()) init::uniform(this->values(t), -k, k, rng);
  }

  // ---- The layer contract (uvp/nn/layer.hpp) ----

  index input_width() const noexcept { return in_; }
  index output_width(index /*in*/) const noexcept { return hid_; }

  /// The top layer's hidden state at every step of x ((batch * steps) x input_size, finite),
  /// padding rows 0: a view owned by ctx, valid until its next forward. Keeps a view of x (which
  /// must stay alive and unchanged until backward) and every layer's gates in ctx. Const and
  /// thread-safe.
  SequenceBatch<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    run("uvp::nn::Gru::forward", x, ctx, true);
    return ctx.output();
  }

  /// Gradients of ctx's last forward by backpropagation through time, from d_output (the
  /// gradient of its output: same batch and steps, H features; padding rows ignored).
  /// Accumulates every weight gradient; returns dX ((batch * steps) x I, padding rows 0), a view
  /// owned by ctx.
  SequenceBatch<T> backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::Gru::backward";
    require_history(where, ctx);
    if (d_output.batch != ctx.batch_ || d_output.steps != ctx.steps_)
      uvp::detail::raise<shape_error>(where, ": d_output has batch = ", d_output.batch, " and steps = ",
                                      d_output.steps, ", expected those of the forward, ", ctx.batch_, " and ",
                                      ctx.steps_);
    uvp::detail::check_cols(where, "d_output", d_output.features, hid_);
    if (d_output.data == nullptr && ctx.batch_ > 0)
      uvp::detail::raise<invalid_argument>(where, ": d_output has no data");
    const ConstMatrixRef<T> dH(d_output.values());
    return backprop(&dH, nullptr, ctx);
  }

  /// Inference: h_last (batch x H) = the top layer's h at each sequence's last valid step; ctx
  /// keeps no history (ctx.last_hidden(k) holds every layer's; backward cannot follow). Const and
  /// thread-safe.
  void forward_last(const SequenceBatch<T>& x, MatrixRef<T> h_last, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Gru::forward_last";
    uvp::detail::nn_begin_forward(ctx, shape());
    if (x.batch >= 0)  // (a negative batch is reported by the checks of x)
      uvp::detail::check_shape(where, "h_last", h_last.rows(), h_last.cols(), x.batch, hid_);
    run(where, x, ctx, false);
    h_last = ctx.last_hidden();
  }

  /// The block's constructor arguments: {input_size, hidden_size, num_layers}.
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.set("input_size", double(in_)).set("hidden_size", double(hid_)).set("num_layers", double(layers_));
    return s;
  }
  /// A Gru of s's sizes (its weights are loaded after); uvp::format_error if s is not a Gru's.
  static Gru from_spec(const BlockSpec& s) {
    if (s.kind != kind)
      uvp::detail::raise<format_error>("uvp::nn::Gru::from_spec: kind is '", s.kind, "', expected 'Gru'");
    Rng rng(0);
    return Gru(s.get_index("input_size", 1), s.get_index("hidden_size", 1), rng, s.get_index("num_layers", 1));
  }

  // ---- Low-level form and accessors ----

  /// As backward(ctx, d_output), from dH ((batch * steps) x H, the gradient of ctx.output();
  /// padding rows ignored) and/or dh_last (batch x H, of ctx.last_hidden()); either may be empty
  /// (no rows), not both.
  SequenceBatch<T> backward(Context& ctx, ConstMatrixRef<T> dH, ConstMatrixRef<T> dh_last) {
    constexpr const char* where = "uvp::nn::Gru::backward";
    require_history(where, ctx);
    const index B = ctx.batch_, N = B * ctx.steps_;
    const bool has_dH = optional(where, "dH", dH.rows(), dH.cols(), N, hid_);
    const bool has_last = optional(where, "dh_last", dh_last.rows(), dh_last.cols(), B, hid_);
    if (!has_dH && !has_last && B > 0)
      uvp::detail::raise<invalid_argument>(where, ": dH and dh_last are both empty (nothing to backpropagate)");
    return backprop(has_dH ? &dH : nullptr, has_last ? &dh_last : nullptr, ctx);
  }

  index input_size() const noexcept { return in_; }
  index hidden_size() const noexcept { return hid_; }
  index num_layers() const noexcept { return layers_; }

  /// Layer k's W_ih (3H x I or H), W_hh (3H x H), b_ih, b_hh (3H): views into the parameter
  /// buffer. uvp::out_of_range_error unless 0 <= k < num_layers().
  MatrixView<T> weight_ih(index k) { return {value(checked(k), 0), 3 * hid_, layer_input(k)}; }
  ConstMatrixView<T> weight_ih(index k) const { return {value(checked(k), 0), 3 * hid_, layer_input(k)}; }
  MatrixView<T> weight_hh(index k) { return {value(checked(k), 1), 3 * hid_, hid_}; }
  ConstMatrixView<T> weight_hh(index k) const { return {value(checked(k), 1), 3 * hid_, hid_}; }
  Span<T> bias_ih(index k) { return {value(checked(k), 2), 3 * hid_}; }
  Span<const T> bias_ih(index k) const { return {value(checked(k), 2), 3 * hid_}; }
  Span<T> bias_hh(index k) { return {value(checked(k), 3), 3 * hid_}; }
  Span<const T> bias_hh(index k) const { return {value(checked(k), 3), 3 * hid_}; }

 private:
  using Strided = uvp::detail::StridedView<T>;
  using ConstStrided = uvp::detail::ConstStridedView<T>;
  /// forward_last works on blocks of sequences whose input projections (and, with several
  /// layers, hidden states) fit in about this many bytes, so that they are still in cache when
  /// the steps read them.
  static constexpr index block_bytes = index(1) << 20;

  index layer_input(index l) const noexcept { return l == 0 ? in_ : hid_; }
  index checked(index l) const {
    uvp::detail::nn_check_index("uvp::nn::Gru", "layer", l, "num_layers", layers_);
    return l;
  }
  // Tensor j (0 w_ih, 1 w_hh, 2 b_ih, 3 b_hh) of layer l. Always through values() / grads():
  // a model may have bound the block to its own buffer since the last call.
  const TensorInfo& info(index l, int j) const noexcept { return this->tensors()[std::size_t(4 * l + j)]; }
  const T* value(index l, int j) const noexcept { return this->values(info(l, j)).data(); }
  T* value(index l, int j) noexcept { return this->values(info(l, j)).data(); }
  ConstMatrixView<T> w_ih(index l) const noexcept { return {value(l, 0), 3 * hid_, layer_input(l)}; }
  ConstMatrixView<T> w_hh(index l) const noexcept { return {value(l, 1), 3 * hid_, hid_}; }

  static bool optional(const char* where, const char* what, index r, index c, index rows, index cols) {
    if (r == 0 || c == 0) return false;
    uvp::detail::check_shape(where, what, r, c, rows, cols);
    return true;
  }

  void require_history(const char* where, const Context& ctx) const {
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Gru", &s);
    if (!ctx.history_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": ctx holds no forward pass of this Gru (call forward, not "
                                           "forward_last, first)");
  }

  // Sorts the sequences [b0, b1) by length, longest first (ties by position): the sequences
  // still running at step t are then the first ones.
  static void sort_by_length(index* order, index b0, index b1, const index* len) noexcept {
    for (index b = b0; b < b1; ++b) order[b - b0] = b;
    std::sort(order, order + (b1 - b0), [len](index a, index b) { return len[a] != len[b] ? len[a] > len[b] : a < b; });
  }

  void run(const char* where, const SequenceBatch<T>& x, Context& ctx, bool history) const {
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this call completes
    if (x.data == nullptr && x.batch * x.steps > 0)
      uvp::detail::raise<invalid_argument>(where, ": x has batch = ", x.batch, " and steps = ", x.steps,
                                           " but no data");
    const ConstMatrixView<T> X = x.values();
    uvp::detail::check_sequence_batch<T>(where, X, in_, x.batch, x.steps, x.lengths,
                                         uvp::detail::LengthsWording::steps);
    uvp::detail::nn_check_finite<T>(where, "X", X);
    const index B = x.batch, S = x.steps, H = hid_, G3 = 3 * hid_, L = layers_, N = B * S;
    ctx.history_ = false;  // until this call has completed
    ctx.batch_ = B, ctx.steps_ = S, ctx.hidden_ = H, ctx.input_ = in_, ctx.layers_ = L;
    ctx.given_lengths_ = !x.lengths.empty();
    ctx.x_ = x;
    index* len = uvp::detail::grow(ctx.lengths_, B);
    for (index b = 0; b < B; ++b) len[b] = x.length(b);
    uvp::detail::grow(ctx.order_, B);
    T* bias = uvp::detail::grow(ctx.bias_, L * 4 * H);
    for (index l = 0; l < L; ++l) {
      const T *bi = value(l, 2), *bh = value(l, 3);
      T* o = bias + l * 4 * H;
      for (index j = 0; j < 2 * H; ++j) o[j] = bi[j] + bh[j];
      std::copy_n(bi + 2 * H, H, o + 2 * H);
      std::copy_n(bh + 2 * H, H, o + 3 * H);
    }
    std::fill_n(uvp::detail::grow(ctx.zeros_, H), H, T(0));
    // Packed once per call (or kept from the last call on the same weights), read by every
    // chunk's products.
    if (static_cast<index>(ctx.packed_.size()) < 2 * L) ctx.packed_.resize(static_cast<std::size_t>(2 * L));
    for (index l = 0; l < L; ++l) {
      ctx.packed_[std::size_t(2 * l)].pack_transposed_cached(value(l, 0), G3, layer_input(l));
      ctx.packed_[std::size_t(2 * l + 1)].pack_transposed_cached(value(l, 1), G3, H);
    }
    uvp::detail::grow(ctx.last_, L * B * H);
    uvp::detail::grow(ctx.hcur_, B * H);
    uvp::detail::grow(ctx.p_, B * G3);
    index work = 0;
    for (index l = 0; l < L; ++l) work += S * G3 * (layer_input(l) + H);
    const index chunks = uvp::detail::gru_chunk_count(B, work);
    ctx.chunks_ = chunks;
    const index threads = std::min<index>(chunks, num_threads());
    // Eigen's own threads would change how its products sum with the thread count: the
    // parallelism is the chunks'.
    uvp::detail::NnSerialGemm serial(0);
    if (history) {
      uvp::detail::grow(ctx.gates_, L * N * G3);
      uvp::detail::grow(ctx.q_, L * N * H);
      uvp::detail::grow(ctx.h_, L * N * H);
      uvp::detail::gru_for_chunks(chunks, threads, [&](index k) {
        forward_chunk(X, B * k / chunks, B * (k + 1) / chunks, ctx);
      });
      ctx.history_ = true;
    } else {
      const index row_bytes = index(sizeof(T)) * S * (G3 + (L > 1 ? H : 0));
      const index per_block = std::max<index>(1, block_bytes / row_bytes);
      const index block = std::max<index>(1, std::min(per_block, (B + chunks - 1) / chunks));
      uvp::detail::grow(ctx.xp_, chunks * block * S * G3);
      if (L > 1) uvp::detail::grow(ctx.seq_, chunks * block * S * H);
      uvp::detail::gru_for_chunks(chunks, threads, [&](index k) {
        infer_chunk(X, B * k / chunks, B * (k + 1) / chunks, block, k, ctx);
      });
    }
    uvp::detail::nn_end_forward(ctx);
  }

  // Sequences [b0, b1), every layer, with history: r z n, q, h of every step, batch-first.
  void forward_chunk(const ConstMatrixView<T>& X, index b0, index b1, Context& ctx) const {
    const index B = ctx.batch_, S = ctx.steps_, H = hid_, G3 = 3 * hid_, N = B * S, nb = b1 - b0;
    if (nb <= 0) return;
    const index* len = ctx.lengths_.data();
    index* order = ctx.order_.data() + b0;
    sort_by_length(order, b0, b1, len);
    const index tmax = len[order[0]];
    T *hc = ctx.hcur_.data() + b0 * H, *p = ctx.p_.data() + b0 * G3;
    for (index l = 0; l < layers_; ++l) {
      T *G = ctx.gates_.data() + l * N * G3, *q = ctx.q_.data() + l * N * H, *h = ctx.h_.data() + l * N * H;
      const T* bias = ctx.bias_.data() + l * 4 * H;
      const auto &Wih = ctx.packed_[std::size_t(2 * l)], &Whh = ctx.packed_[std::size_t(2 * l + 1)];
      // The input projections of all steps of the chunk: one product. Every product here is
      // row_product's, whose rows do not depend on the others: a sequence's result is the same
      // in any batch, chunk or thread.
      if (l == 0)
        uvp::detail::row_product(X.data() + b0 * S * in_, in_, nb * S, Wih, nullptr, false, G + b0 * S * G3, G3);
      else
        uvp::detail::row_product(ctx.h_.data() + ((l - 1) * N + b0 * S) * H, H, nb * S, Wih, nullptr, false,
                                 G + b0 * S * G3, G3);
      for (index b = b0; b < b1; ++b) std::fill(h + (b * S + len[b]) * H, h + (b + 1) * S * H, T(0));
      std::fill_n(hc, nb * H, T(0));
      index na = nb;
      for (index t = 0; t < tmax; ++t) {
        while (len[order[na - 1]] <= t) --na;
        if (t == 0)
          std::fill_n(p, na * G3, T(0));
        else
          uvp::detail::row_product(hc, H, na, Whh, nullptr, false, p, G3);
        for (index i = 0; i < na; ++i) {
          const index r = order[i] * S + t;
          uvp::detail::gru_forward_row(G + r * G3, p + i * G3, bias, hc + i * H, q + r * H, h + r * H, H);
        }
      }
      for (index i = 0; i < nb; ++i) std::copy_n(hc + i * H, H, ctx.last_.data() + (l * B + order[i]) * H);
    }
  }

  // Sequences [b0, b1) without history, in blocks of `block` sequences (chunk k's slots of xp_
  // and seq_): each layer's outputs go to seq_ for the next layer, the top one's only to h_n.
  void infer_chunk(const ConstMatrixView<T>& X, index b0, index b1, index block, index k, Context& ctx) const {
    const index B = ctx.batch_, S = ctx.steps_, H = hid_, G3 = 3 * hid_;
    const index* len = ctx.lengths_.data();
    T* xp = ctx.xp_.data() + k * block * S * G3;
    T* seq = layers_ > 1 ? ctx.seq_.data() + k * block * S * H : nullptr;
    for (index s0 = b0; s0 < b1; s0 += block) {
      const index s1 = std::min(b1, s0 + block), ns = s1 - s0;
      index* order = ctx.order_.data() + s0;
      sort_by_length(order, s0, s1, len);
      const index tmax = len[order[0]];
      T *hc = ctx.hcur_.data() + s0 * H, *p = ctx.p_.data() + s0 * G3;
      for (index l = 0; l < layers_; ++l) {
        const T* bias = ctx.bias_.data() + l * 4 * H;
        const auto &Wih = ctx.packed_[std::size_t(2 * l)], &Whh = ctx.packed_[std::size_t(2 * l + 1)];
        const bool top = l == layers_ - 1;
        if (l == 0)
          uvp::detail::row_product(X.data() + s0 * S * in_, in_, ns * S, Wih, nullptr, false, xp, G3);
        else
          uvp::detail::row_product(seq, H, ns * S, Wih, nullptr, false, xp, G3);
        std::fill_n(hc, ns * H, T(0));
        index na = ns;
        for (index t = 0; t < tmax; ++t) {
          while (len[order[na - 1]] <= t) --na;
          if (t == 0)
            std::fill_n(p, na * G3, T(0));
          else
            uvp::detail::row_product(hc, H, na, Whh, nullptr, false, p, G3);
          for (index i = 0; i < na; ++i) {
            const index r = (order[i] - s0) * S + t;
            uvp::detail::gru_forward_row_inplace(xp + r * G3, p + i * G3, bias, hc + i * H, H);
            if (!top) std::copy_n(hc + i * H, H, seq + r * H);
          }
        }
        if (!top)  // padding rows of the next layer's input: finite (read by its GEMM, never used)
          for (index b = s0; b < s1; ++b) std::fill(seq + ((b - s0) * S + len[b]) * H, seq + (b - s0 + 1) * S * H, T(0));
        for (index i = 0; i < ns; ++i) std::copy_n(hc + i * H, H, ctx.last_.data() + (l * B + order[i]) * H);
      }
    }
  }

  // Where chunk k accumulates the gradient of tensor j of layer l: the block's gradient itself
  // with one chunk, else the chunk's slot of ctx.dw_ (summed in chunk order afterwards).
  T* grad_target(Context& ctx, index k, index l, int j) noexcept {
    if (ctx.chunks_ == 1) return this->grads(info(l, j)).data();
    return ctx.dw_.data() + k * this->parameter_count() + partial_offset(l, j);
  }
  index partial_offset(index l, int j) const noexcept {
    index off = 0;
    for (index i = 0; i < 4 * l + j; ++i) off += this->tensors()[std::size_t(i)].numel();
    return off;
  }

  SequenceBatch<T> backprop(const ConstMatrixRef<T>* dH, const ConstMatrixRef<T>* dh_last, Context& ctx) {
    const index B = ctx.batch_, S = ctx.steps_, H = hid_, G3 = 3 * hid_, N = B * S, L = layers_;
    T* dx = uvp::detail::grow(ctx.dx_, N * in_);
    const Span<const index> lens = ctx.given_lengths_ ? Span<const index>(ctx.lengths_.data(), B) : Span<const index>();
    const SequenceBatch<T> result(ConstMatrixView<T>(B ? dx : nullptr, N, in_), B, S, lens);
    if (B == 0) return result;  // an empty batch: no gradient, parameters untouched
    uvp::detail::grow(ctx.dxp_, N * G3);
    uvp::detail::grow(ctx.dhp_, N * G3);
    uvp::detail::grow(ctx.dh_, B * H);
    uvp::detail::grow(ctx.dps_, B * G3);
    if (L > 1) uvp::detail::grow(ctx.dmid_, 2 * N * H);
    const index chunks = ctx.chunks_, P = this->parameter_count();
    if (chunks > 1) uvp::detail::grow(ctx.dw_, chunks * P);
    const index threads = std::min<index>(chunks, num_threads());
    uvp::detail::NnSerialGemm serial(0);
    uvp::detail::gru_for_chunks(chunks, threads, [&](index k) {
      if (chunks > 1) std::fill_n(ctx.dw_.data() + k * P, P, T(0));
      backward_chunk(B * k / chunks, B * (k + 1) / chunks, k, dH, dh_last, ctx);
    });
    if (chunks > 1) {
      T* g = this->parameters().grads().data();
      for (index k = 0; k < chunks; ++k)
        for (index l = 0; l < L; ++l)
          for (int j = 0; j < 4; ++j) {
            const TensorInfo& t = info(l, j);
            kernels::axpy(T(1), ctx.dw_.data() + k * P + partial_offset(l, j), g + t.slot.offset, t.numel());
          }
    }
    return result;
  }

  // BPTT over sequences [b0, b1), layer by layer from the top: the gradients of each layer's
  // pre-activations, its weight gradients, and the gradient of its input (dX, or the next lower
  // layer's dH in ctx.dmid_).
  void backward_chunk(index b0, index b1, index k, const ConstMatrixRef<T>* dH, const ConstMatrixRef<T>* dh_last,
                      Context& ctx) {
    const index B = ctx.batch_, S = ctx.steps_, H = hid_, G3 = 3 * hid_, N = B * S, nb = b1 - b0, n = nb * S;
    if (nb <= 0) return;
    const index* len = ctx.lengths_.data();
    const index* order = ctx.order_.data() + b0;
    const index tmax = len[order[0]];
    T *dxp = ctx.dxp_.data(), *dhp = ctx.dhp_.data(), *dh = ctx.dh_.data() + b0 * H, *dps = ctx.dps_.data() + b0 * G3;
    const T* zeros = ctx.zeros_.data();
    for (index l = layers_ - 1; l >= 0; --l) {
      const T *G = ctx.gates_.data() + l * N * G3, *q = ctx.q_.data() + l * N * H, *h = ctx.h_.data() + l * N * H;
      const ConstMatrixView<T> Whh = w_hh(l);
      const bool top = l == layers_ - 1;
      const T* src = top ? nullptr : ctx.dmid_.data() + ((l + 1) % 2) * N * H;  // dH of a lower layer
      for (index b = b0; b < b1; ++b) {
        std::fill(dxp + (b * S + len[b]) * G3, dxp + (b + 1) * S * G3, T(0));
        std::fill(dhp + (b * S + len[b]) * G3, dhp + (b + 1) * S * G3, T(0));
      }
      std::fill_n(dh, nb * H, T(0));
      index na = 0;
      for (index t = tmax - 1; t >= 0; --t) {
        while (na < nb && len[order[na]] > t) ++na;
        for (index i = 0; i < na; ++i) {
          const index b = order[i], r = b * S + t;
          T* d = dh + i * H;
          if (top) {
            if (dH) kernels::axpy(T(1), dH->row(r).data(), d, H);
            if (dh_last && t == len[b] - 1) kernels::axpy(T(1), dh_last->row(b).data(), d, H);
          } else {
            kernels::axpy(T(1), src + r * H, d, H);
          }
          uvp::detail::gru_backward_row(G + r * G3, q + r * H, t > 0 ? h + (r - 1) * H : zeros, d, dxp + r * G3,
                                        dps + i * G3, H);
          std::copy_n(dps + i * G3, G3, dhp + r * G3);
        }
        // dh_{t-1} = dh_t z + dp_t W_hh over the sequences running at t (the others have dh = 0).
        if (t > 0) MatrixView<T>(dh, na, H).noalias() += ConstMatrixView<T>(dps, na, G3) * Whh;
      }
      // Weight and bias gradients of the chunk, all steps at once.
      const ConstMatrixView<T> dA(dxp + b0 * S * G3, n, G3), dP(dhp + b0 * S * G3, n, G3);
      const T* in = l == 0 ? nullptr : ctx.h_.data() + ((l - 1) * N + b0 * S) * H;
      MatrixView<T> gWih(grad_target(ctx, k, l, 0), G3, layer_input(l)), gWhh(grad_target(ctx, k, l, 1), G3, H);
      if (l == 0)
        gWih.noalias() += dA.transpose() * ctx.x_.values().middleRows(b0 * S, n);
      else
        gWih.noalias() += dA.transpose() * ConstMatrixView<T>(in, n, H);
      T *gbi = grad_target(ctx, k, l, 2), *gbh = grad_target(ctx, k, l, 3);
      for (index r = 0; r < n; ++r) {
        kernels::axpy(T(1), dxp + (b0 * S + r) * G3, gbi, G3);
        kernels::axpy(T(1), dhp + (b0 * S + r) * G3, gbh, G3);
      }
      // gWhh += sum_t dp_t^T h_{t-1}: rows r + 1 of dp pair with rows r of h. At t = 0 (h_{-1} = 0)
      // the pair would cross into the previous sequence, so those dp rows are zeroed first (their
      // bias gradient is taken above): the sum is then exact.
      if (S > 1) {
        Strided(dhp + b0 * S * G3, nb, G3, Eigen::OuterStride<>(S * G3)).setZero();
        gWhh.noalias() += ConstMatrixView<T>(dhp + (b0 * S + 1) * G3, n - 1, G3).transpose() *
                          ConstMatrixView<T>(h + b0 * S * H, n - 1, H);
      }
      // The gradient of this layer's input.
      T* din = l == 0 ? ctx.dx_.data() : ctx.dmid_.data() + (l % 2) * N * H;
      MatrixView<T>(din + b0 * S * layer_input(l), n, layer_input(l)).noalias() = dA * w_ih(l);
    }
  }

  uvp::detail::NnBlockShape shape() const noexcept {
    return {{"input_size", in_}, {"hidden_size", hid_}, {"num_layers", layers_}};
  }

  index in_, hid_, layers_;
};

}  // namespace uvp::nn
