// SPDX-License-Identifier: Apache-2.0
// Long short-term memory: one step (torch.nn.LSTMCell) and a stacked, batch-first sequence LSTM
// (torch.nn.LSTM(I, H, num_layers, batch_first=True)) with PyTorch's equations, gate order and
// names.
//
// References: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997;
// Gers, Schmidhuber & Cummins, "Learning to Forget", 2000 (the forget gate); the equations and
// gate layout of PyTorch's nn.LSTM documentation, which this file reproduces exactly:
//
//   G  = x W_ih^T + b_ih + h W_hh^T + b_hh        (B, 4H): column blocks [i | f | g | o], H each
//   i  = sigmoid(G_i)    f = sigmoid(G_f)    g = tanh(G_g)    o = sigmoid(G_o)
//   c' = f * c + i * g
//   h' = o * tanh(c')
//
// Tensors (PyTorch's names and shapes, so state_dicts compare one to one):
//   LstmCell  "weight_ih" {4H, I}  "weight_hh" {4H, H}  "bias_ih" {4H}  "bias_hh" {4H}
//   Lstm      "weight_ih_l{k}" {4H, I for k = 0, H above}  "weight_hh_l{k}" {4H, H}
//             "bias_ih_l{k}" {4H}  "bias_hh_l{k}" {4H}, for k = 0 .. num_layers - 1 in that order
// rows 0..H-1 of each belong to gate i, H..2H-1 to f, 2H..3H-1 to g, 3H..4H-1 to o. All are
// initialised U(-1/sqrt(H), 1/sqrt(H)) in that order (PyTorch's reset_parameters).
//
// Stacking (num_layers = L): layer 0 reads X, layer k > 0 reads layer k - 1's h_t of every step;
// there is no dropout between layers (torch's dropout = 0). Outputs are the top layer's.
//
// The layer contract (uvp/nn/layer.hpp) is the API:
//   Lstm      SequenceBatch<T> y = lstm.forward(x, ctx);     // every step's top-layer h_t, x's
//                                                             // batch, steps and lengths, H features
//             SequenceBatch<T> dx = lstm.backward(ctx, dy);  // accumulates every dW; dx owned by ctx
//             lstm.forward_last(x, h_last, ctx);             // inference: last valid h only
//   LstmCell  LstmCellState<T> s = cell.forward(LstmCellInput<T>(x, h, c), ctx);   // {h', c'}
//             LstmCellInput<T> d = cell.backward(ctx, LstmCellState<T>(dh', dc')); // {dx, dh, dc}
// Results are views owned by ctx (valid until its next call); ctx keeps a view of the input,
// which must stay alive and unchanged until backward. spec() / from_spec() give and take
// {input_size, hidden_size, num_layers} (Lstm) and {input_size, hidden_size} (LstmCell).
// The low-level forms below them take explicit buffers (and X again in backward), and the
// initial state h0, c0; both run the same code.
//
// Sequences (Lstm): X is (batch * seq_len) x I, row b * seq_len + t (batch-first); sequence b has
// n_b = lengths[b] in [1, seq_len] valid steps (lengths empty: all seq_len). The recurrence runs
// over t < n_b only, from (h0, c0) (zero when not given), exactly as PyTorch on
// pack_padded_sequence(X, lengths, batch_first=True, enforce_sorted=False):
//   output()       (batch * seq_len) x H   top-layer h_t of every step, rows t >= n_b written 0
//                                          (pad_packed_sequence(..., total_length=seq_len))
//   last_hidden()  batch x H               top-layer h at t = n_b - 1 (PyTorch's h_n[L - 1];
//                                          last_hidden(k) is h_n[k])
//   last_cell()    batch x H               top-layer c at t = n_b - 1 (PyTorch's c_n[L - 1])
// The low-level h0, c0 (and the gradients dh0, dc0) are (L * batch) x H: row k * batch + b is
// layer k's state of sequence b, PyTorch's (L, batch, H) h_0 and c_0.
//
// Backward (BPTT) from dH (gradient of output(), rows t >= n_b ignored) and/or dh_last (of
// last_hidden()), going back from t = n_b - 1 with dh = dc = 0 after the last step, layer by
// layer from the top (layer k - 1's dH is layer k's dX):
//   dh_t  = dH[t] + [t = n_b - 1] dh_last + dG_{t+1} W_hh
//   dc_t  = dc_{t+1} * f_{t+1} + dh_t * o * (1 - tanh^2(c_t))
//   dG_i = dc_t * g * i (1 - i)      dG_f = dc_t * c_{t-1} * f (1 - f)
//   dG_g = dc_t * i * (1 - g^2)      dG_o = dh_t * tanh(c_t) * o (1 - o)
//   dW_ih += sum dG^T x    dW_hh += sum dG^T h_{t-1}    db_ih += sum dG    db_hh += sum dG
//   dX = dG W_ih (rows t >= n_b: 0)    dh0 = dG_0 W_hh    dc0 = dc_0 * f_0
// Parameter gradients are accumulated (+=), input gradients written.
//
// Cost: per layer, one GEMM for the input projections of all steps, then per step one GEMM
// h W_hh^T and one fused, xsimd-vectorised pass for the gates (no temporaries). Large batches are
// split into one contiguous chunk of sequences per OpenMP thread, each running all its steps and
// layers on its own (no barrier per step). Every buffer lives in the caller's context and only
// grows: after the first call of the largest shape, forward, forward_last and backward allocate
// nothing. The forward products are detail::row_product's (the weights packed into the context,
// again only when their bits have changed since its last call), whose rows do not depend on each
// other: a sequence's outputs are bit for bit the same alone or in any batch, chunk or thread
// count (docs/concepts.md, "Same answer at any batch size").
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
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
#include "uvp/detail/elementwise_math.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/row_product_math.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

/// One step of one row. gates (4H): x W_ih^T + h W_hh^T on entry, the activations i f g o on
/// exit; bias (4H) = b_ih + b_hh; c = f c_prev + i g, tc = tanh(c), h = o tc (H each).
template <class T>
void lstm_forward_row(T* gates, const T* bias, const T* c_prev, T* c, T* tc, T* h, index H) noexcept {
  namespace s = uvp::detail::simd;
  T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
  const T *bi = bias, *bf = bias + H, *bg = bias + 2 * H, *bo = bias + 3 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T i = sigmoid_scalar(gi[j] + bi[j]), f = sigmoid_scalar(gf[j] + bf[j]);
      const T g = std::tanh(gg[j] + bg[j]), o = sigmoid_scalar(go[j] + bo[j]);
      gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o;
      const T cn = f * c_prev[j] + i * g, t = std::tanh(cn);
      c[j] = cn, tc[j] = t, h[j] = o * t;
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](T* pi, T* pf, T* pg, T* po, const T* qi, const T* qf, const T* qg, const T* qo, const T* pc,
           T* pcn, T* ptc, T* ph) {
          const B i = s::sigmoid(B::load_unaligned(pi) + B::load_unaligned(qi));
          const B f = s::sigmoid(B::load_unaligned(pf) + B::load_unaligned(qf));
          const B g = s::tanh(B::load_unaligned(pg) + B::load_unaligned(qg));
          const B o = s::sigmoid(B::load_unaligned(po) + B::load_unaligned(qo));
          const B cn = f * B::load_unaligned(pc) + i * g;
          const B t = s::tanh(cn);
          i.store_unaligned(pi);
          f.store_unaligned(pf);
          g.store_unaligned(pg);
          o.store_unaligned(po);
          cn.store_unaligned(pcn);
          t.store_unaligned(ptc);
          (o * t).store_unaligned(ph);
        },
        gi, gf, gg, go, bi, bf, bg, bo, c_prev, c, tc, h);
  }
}

/// The same step keeping nothing for backward (inference): gates read only, c and h updated in
/// place.
template <class T>
void lstm_forward_row_inplace(const T* gates, const T* bias, T* c, T* h, index H) noexcept {
  namespace s = uvp::detail::simd;
  const T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
  const T *bi = bias, *bf = bias + H, *bg = bias + 2 * H, *bo = bias + 3 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T i = sigmoid_scalar(gi[j] + bi[j]), f = sigmoid_scalar(gf[j] + bf[j]);
      const T g = std::tanh(gg[j] + bg[j]), o = sigmoid_scalar(go[j] + bo[j]);
      c[j] = f * c[j] + i * g;
      h[j] = o * std::tanh(c[j]);
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](const T* pi, const T* pf, const T* pg, const T* po, const T* qi, const T* qf, const T* qg,
           const T* qo, T* pc, T* ph) {
          const B i = s::sigmoid(B::load_unaligned(pi) + B::load_unaligned(qi));
          const B f = s::sigmoid(B::load_unaligned(pf) + B::load_unaligned(qf));
          const B g = s::tanh(B::load_unaligned(pg) + B::load_unaligned(qg));
          const B o = s::sigmoid(B::load_unaligned(po) + B::load_unaligned(qo));
          const B cn = f * B::load_unaligned(pc) + i * g;
          cn.store_unaligned(pc);
          (o * s::tanh(cn)).store_unaligned(ph);
        },
        gi, gf, gg, go, bi, bf, bg, bo, c, h);
  }
}

/// Backward of one step of one row. gates: the activations i f g o (4H); c_prev, tc = tanh(c)
/// (H); dh: the whole gradient of h (H); dc: in, the gradient of c from the later step; out, the
/// gradient of c_prev. Writes dG (4H), the gradient of the pre-activations.
template <class T>
void lstm_backward_row(const T* gates, const T* c_prev, const T* tc, const T* dh, T* dc, T* dG, index H) noexcept {
  namespace s = uvp::detail::simd;
  const T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
  T *di = dG, *df = dG + H, *dg = dG + 2 * H, *dout = dG + 3 * H;
  if constexpr (!s::enabled<T>) {
    for (index j = 0; j < H; ++j) {
      const T i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j];
      const T d = dc[j] + dh[j] * o * (T(1) - t * t);
      di[j] = d * g * i * (T(1) - i);
      df[j] = d * c_prev[j] * f * (T(1) - f);
      dg[j] = d * i * (T(1) - g * g);
      dout[j] = dh[j] * t * o * (T(1) - o);
      dc[j] = d * f;
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        H,
        [](const T* pi, const T* pf, const T* pg, const T* po, const T* pc, const T* pt, const T* pdh,
           T* pdc, T* qi, T* qf, T* qg, T* qo) {
          const B one(T(1));
          const B i = B::load_unaligned(pi), f = B::load_unaligned(pf), g = B::load_unaligned(pg);
          const B o = B::load_unaligned(po), t = B::load_unaligned(pt), dh = B::load_unaligned(pdh);
          const B d = B::load_unaligned(pdc) + dh * o * (one - t * t);
          (d * g * i * (one - i)).store_unaligned(qi);
          (d * B::load_unaligned(pc) * f * (one - f)).store_unaligned(qf);
          (d * i * (one - g * g)).store_unaligned(qg);
          (dh * t * o * (one - o)).store_unaligned(qo);
          (d * f).store_unaligned(pdc);
        },
        gi, gf, gg, go, c_prev, tc, dh, dc, di, df, dg, dout);
  }
}

/// Positions in Block::tensors() of the four LSTM tensors.
struct LstmTensorIds {
  std::size_t w_ih = 0, w_hh = 0, b_ih = 0, b_hh = 0;
};

/// Sum of the rows of a row-major rows x cols matrix added to acc (row by row: a column sum of a
/// row-major matrix would walk it with a stride).
template <class T>
void lstm_add_row_sums(const T* m, index rows, index cols, index stride, T* acc) noexcept {
  for (index r = 0; r < rows; ++r) kernels::axpy(T(1), m + r * stride, acc, cols);
}

/// Runs f(k) for k in [0, chunks): uvp::parallel_chunks, each free thread taking the next chunk.
template <class F>
void lstm_for_chunks(index chunks, F&& f) {
  if (chunks <= 1) {
    f(index(0));
    return;
  }
  uvp::parallel_chunks(chunks, f);
}

/// How many chunks of sequences a training forward (and its backward) splits a batch into: a
/// function of the batch and the work alone, never of the thread count, because the weight
/// gradients are summed chunk by chunk: the same chunks give the same bits on any number of
/// threads. Chunks of at least 16 sequences and 2^19 multiply-adds (smaller ones lose more in
/// the per-step products than a second thread gains), at most 8 (enough for a free thread to
/// take over the chunks of one another program delays).
inline index lstm_train_chunk_count(index batch, index work_per_sequence) noexcept {
  const index by_rows = batch / 16;
  const index by_work = batch * work_per_sequence / (index(1) << 19);
  return std::max<index>(1, std::min<index>({index(8), by_rows, by_work}));
}

/// How many chunks of sequences (threads) a batch is split into: one per thread while each gets
/// at least 4 sequences and about 2^18 multiply-adds (below that a fork costs more than it saves).
inline index lstm_chunk_count(index batch, index work_per_sequence) noexcept {
  const index threads = num_threads();
  if (threads <= 1) return 1;
  const index by_rows = batch / 4;
  const index by_work = batch * work_per_sequence / (index(1) << 18);
  return std::max<index>(1, std::min({threads, by_rows, by_work}));
}

/// A gradient argument that may be left out: empty (no rows or no columns) or exactly rows x cols.
inline bool lstm_optional(const char* where, const char* what, index r, index c, index rows, index cols) {
  if (r == 0 || c == 0) return false;
  check_shape(where, what, r, c, rows, cols);
  return true;
}

}  // namespace uvp::detail

namespace uvp::nn {

template <class T, class Backend>
class Lstm;
template <class T, class Backend>
class LstmCell;

/// The state of an LstmCell, what its contract forward returns: h and c (B x H each), as views
/// (pointers and sizes: an Eigen Map cannot be re-pointed). Also the gradient its backward takes
/// (dh', dc'; dc' may be empty, 0 rows: no gradient into c').
template <class T>
struct LstmCellState {
  const T* h_data = nullptr;
  index h_rows = 0, h_cols = 0;
  const T* c_data = nullptr;
  index c_rows = 0, c_cols = 0;

  LstmCellState() = default;
  LstmCellState(ConstMatrixView<T> hidden, ConstMatrixView<T> cell) noexcept
      : h_data(hidden.data()), h_rows(hidden.rows()), h_cols(hidden.cols()), c_data(cell.data()),
        c_rows(cell.rows()), c_cols(cell.cols()) {}
  ConstMatrixView<T> h() const noexcept { return {h_data, h_rows, h_cols}; }
  ConstMatrixView<T> c() const noexcept { return {c_data, c_rows, c_cols}; }
};

/// The input of an LstmCell's contract forward: x (B x I) and the state h, c (B x H), as views
/// the caller owns. Also the gradient its backward returns (dx, dh, dc), as views owned by the
/// context.
template <class T>
struct LstmCellInput {
  const T* x_data = nullptr;
  index x_rows = 0, x_cols = 0;
  const T* h_data = nullptr;
  index h_rows = 0, h_cols = 0;
  const T* c_data = nullptr;
  index c_rows = 0, c_cols = 0;

  LstmCellInput() = default;
  LstmCellInput(ConstMatrixView<T> input, ConstMatrixView<T> hidden, ConstMatrixView<T> cell) noexcept
      : x_data(input.data()), x_rows(input.rows()), x_cols(input.cols()), h_data(hidden.data()),
        h_rows(hidden.rows()), h_cols(hidden.cols()), c_data(cell.data()), c_rows(cell.rows()), c_cols(cell.cols()) {}
  /// x with the state a previous step returned (a step of a recurrence).
  LstmCellInput(ConstMatrixView<T> input, const LstmCellState<T>& state) noexcept
      : LstmCellInput(input, state.h(), state.c()) {}
  ConstMatrixView<T> x() const noexcept { return {x_data, x_rows, x_cols}; }
  ConstMatrixView<T> h() const noexcept { return {h_data, h_rows, h_cols}; }
  ConstMatrixView<T> c() const noexcept { return {c_data, c_rows, c_cols}; }
};

}  // namespace uvp::nn

namespace uvp::detail {

/// uvp::invalid_argument unless a view given as pointer and sizes can be read: sizes >= 0, data
/// set when it has elements.
template <class T>
void lstm_check_view(const char* where, const char* what, const T* data, index rows, index cols) {
  if (rows < 0 || cols < 0)
    raise<invalid_argument>(where, ": ", what, " has ", rows, " rows and ", cols, " columns (each must be >= 0)");
  if (data == nullptr && rows * cols > 0)
    raise<invalid_argument>(where, ": ", what, " has no data for its ", rows, " rows");
}

/// True when the rows x cols matrix at p lies (partly) in buffer b.
template <class T, class Buffer>
bool lstm_in_buffer(const T* p, index rows, index cols, const Buffer& b) noexcept {
  if (p == nullptr || rows * cols == 0 || b.empty()) return false;
  const std::less<const T*> lt;
  return lt(p, b.data() + b.size()) && lt(b.data(), p + rows * cols);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// What Lstm::forward keeps for backward, and the scratch of forward_last and backward. Owned by
/// the caller: one per thread for concurrent forwards. Its buffers only grow.
/// Every view below is empty (0 rows) unless the last call completed (holds_forward()). With
/// several layers, output(), last_hidden(), last_cell(), gates() and cells() are the top layer's.
template <class T>
class LstmContext : public uvp::detail::NnContextBase {
  static_assert(is_scalar_v<T>, "uvp::nn::LstmContext: T must be float or double");

 public:
  index batch() const noexcept { return batch_; }
  index seq_len() const noexcept { return seq_len_; }
  index hidden_size() const noexcept { return hidden_; }
  index num_layers() const noexcept { return layers_; }
  /// True after forward (backward may follow); false after forward_last, after a call that
  /// threw, or before any call.
  bool has_history() const noexcept { return history_ && holds_forward(); }
  /// The lengths of the last call (seq_len for every sequence when none were given).
  Span<const index> lengths() const noexcept { return {lengths_.data(), done(batch_)}; }
  /// h_t of every step of the last forward: (batch * seq_len) x H, rows t >= n_b are 0.
  /// Empty after forward_last.
  ConstMatrixView<T> output() const noexcept {
    return {top(h_, batch_ * seq_len_ * hidden_), history(batch_ * seq_len_), hidden_};
  }
  /// h and c at each sequence's last valid step (t = n_b - 1): batch x H.
  ConstMatrixView<T> last_hidden() const noexcept { return {top(hn_, batch_ * hidden_), done(batch_), hidden_}; }
  ConstMatrixView<T> last_cell() const noexcept { return {top(cn_, batch_ * hidden_), done(batch_), hidden_}; }
  /// h and c of layer `layer` (0 = bottom) at each sequence's last valid step: batch x H
  /// (PyTorch's h_n[layer], c_n[layer]). uvp::out_of_range_error for a layer not in [0, num_layers()).
  ConstMatrixView<T> last_hidden(index layer) const { return of_layer("last_hidden", hn_, layer); }
  ConstMatrixView<T> last_cell(index layer) const { return of_layer("last_cell", cn_, layer); }
  /// Gate activations i f g o of the last forward: (batch * seq_len) x 4H (padding rows unspecified).
  ConstMatrixView<T> gates() const noexcept {
    return {top(gates_, batch_ * seq_len_ * 4 * hidden_), history(batch_ * seq_len_), 4 * hidden_};
  }
  /// Cell states c_t of the last forward: (batch * seq_len) x H (padding rows unspecified).
  ConstMatrixView<T> cells() const noexcept {
    return {top(c_, batch_ * seq_len_ * hidden_), history(batch_ * seq_len_), hidden_};
  }

 private:
  template <class, class>
  friend class Lstm;
  using Buffer = uvp::detail::AlignedBuffer<T>;
  index done(index rows) const noexcept { return holds_forward() ? rows : 0; }
  index history(index rows) const noexcept { return has_history() ? rows : 0; }
  // The top layer's part of a buffer that holds `per_layer` elements per layer.
  const T* top(const Buffer& b, index per_layer) const noexcept {
    return holds_forward() && !b.empty() ? b.data() + (layers_ - 1) * per_layer : b.data();
  }
  ConstMatrixView<T> of_layer(const char* what, const Buffer& b, index layer) const {
    if (layer < 0 || layer >= layers_) {  // the message's string only when it is needed
      const std::string where = std::string("uvp::nn::LstmContext::") + what;
      uvp::detail::nn_check_index(where.c_str(), "layer", layer, "num_layers", layers_);
    }
    if (!holds_forward()) return {b.data(), 0, hidden_};
    return {b.data() + layer * batch_ * hidden_, batch_, hidden_};
  }

  index batch_ = 0, seq_len_ = 0, hidden_ = 0, input_ = 0, chunks_ = 1, layers_ = 1;
  bool history_ = false, initial_ = false;
  std::vector<index> lengths_;
  // Layer l's part of each per-layer buffer starts at l times its size for one layer.
  Buffer bias_, zeros_;                  // b_ih + b_hh per layer; a zero row (c0 when none is given)
  Buffer gates_, c_, tc_, h_, h0_, c0_;  // forward history (batch-first, like X), per layer
  Buffer hn_, cn_;                       // last valid h and c per layer; forward_last's running state
  Buffer xp_;                            // forward_last: input projections of one block per thread
  Buffer hseq_;                          // forward_last, several layers: a lower layer's h of one block
  std::vector<uvp::detail::PackedRhs<T>> packed_;  // W_ih^T, W_hh^T of each layer, packed for row_product
  Buffer dgates_, dh_, dc_, dbias_, dweights_;  // backward (dh_, dc_ per layer)
  Buffer dmid_;                          // backward, several layers: gradient of a lower layer's output
  // The layer contract: the forward's input, and the input gradient backward returns.
  SequenceBatch<T> x_;
  bool contract_ = false;
  Buffer dx_;
};

/// What LstmCell::forward keeps for backward (the gate activations and tanh(c')), and backward's
/// scratch. Owned by the caller, one per thread; its buffers only grow.
template <class T>
class LstmCellContext : public uvp::detail::NnContextBase {
  static_assert(is_scalar_v<T>, "uvp::nn::LstmCellContext: T must be float or double");

 public:
  index batch() const noexcept { return batch_; }
  /// Gate activations i f g o of the last forward: batch x 4H; empty unless it completed.
  ConstMatrixView<T> gates() const noexcept { return {gates_.data(), holds_forward() ? batch_ : 0, 4 * hidden_}; }

 private:
  template <class, class>
  friend class LstmCell;
  using Buffer = uvp::detail::AlignedBuffer<T>;

  index batch_ = 0, hidden_ = 0, input_ = 0;
  Buffer bias_, gates_, tc_, dgates_, dc_;
  // The layer contract: the forward's input (views), its output and the input gradients.
  LstmCellInput<T> in_;
  bool contract_ = false;
  Buffer h_out_, c_out_, gx_, gh_, gc_;
};

/// One LSTM step, torch.nn.LSTMCell(I, H): (h', c') = cell(x, (h, c)). x: B x I; h, c, h', c':
/// B x H. Tensors "weight_ih" {4H, I}, "weight_hh" {4H, H}, "bias_ih" {4H}, "bias_hh" {4H}.
///
/// The layer contract (uvp/nn/layer.hpp), LstmCellInput<T> -> LstmCellState<T>:
///   LstmCellState<T> s = cell.forward(LstmCellInput<T>(x, h, c), ctx);   // {h', c'}, owned by ctx
///   LstmCellInput<T> d = cell.backward(ctx, LstmCellState<T>(dh', dc'));  // {dx, dh, dc}, owned by ctx
template <class T, class Backend = cpu>
class LstmCell : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::LstmCell: only the uvp::cpu backend is implemented; use LstmCell<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using Context = LstmCellContext<T>;
  using input_type = LstmCellInput<T>;
  using output_type = LstmCellState<T>;
  static constexpr const char* kind = "LstmCell";

  /// input_size I, hidden_size H > 0; every tensor drawn U(-1/sqrt(H), 1/sqrt(H)) (PyTorch).
  LstmCell(index input_size, index hidden_size, Rng& rng) : in_(input_size), hid_(hidden_size) {
    constexpr const char* where = "uvp::nn::LstmCell";
    uvp::detail::check_positive(where, "input_size", input_size);
    uvp::detail::check_positive(where, "hidden_size", hidden_size);
    t_.w_ih = this->add_tensor("weight_ih", {4 * hid_, in_});
    t_.w_hh = this->add_tensor("weight_hh", {4 * hid_, hid_});
    t_.b_ih = this->add_tensor("bias_ih", {4 * hid_});
    t_.b_hh = this->add_tensor("bias_hh", {4 * hid_});
    this->allocate_parameters();
    const double k = 1.0 / std::sqrt(double(hid_));
    for (const auto& t : this->tensors()) init::uniform(this->values(t), -k, k, rng);
  }

  // ---- The layer contract -----------------------------------------------------------------

  /// Features of x: input_size. (The state's width is hidden_size.)
  index input_width() const noexcept { return in_; }
  /// hidden_size; uvp::shape_error if in (-1: not known) is not input_size.
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::LstmCell::output_width", in);
    if (in != -1 && in != in_) uvp::detail::nn_width_mismatch("uvp::nn::LstmCell::output_width", "LstmCell", in, in_);
    return hid_;
  }

  /// {h', c'} (B x H each) from in = {x (B x I), h, c (B x H)}, all finite: views owned by ctx,
  /// valid until its next forward. ctx keeps the views of in, which must stay alive and unchanged
  /// until the backward that follows; in must not lie in ctx's own buffers (the output of its
  /// last forward: give the next step another context). Const and thread-safe.
  LstmCellState<T> forward(const LstmCellInput<T>& in, Context& ctx) const {
    constexpr const char* where = "uvp::nn::LstmCell::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::lstm_check_view(where, "x", in.x_data, in.x_rows, in.x_cols);
    uvp::detail::lstm_check_view(where, "h", in.h_data, in.h_rows, in.h_cols);
    uvp::detail::lstm_check_view(where, "c", in.c_data, in.c_rows, in.c_cols);
    for (const auto* b : {&ctx.h_out_, &ctx.c_out_, &ctx.gx_, &ctx.gh_, &ctx.gc_})
      if (uvp::detail::lstm_in_buffer(in.x_data, in.x_rows, in.x_cols, *b) ||
          uvp::detail::lstm_in_buffer(in.h_data, in.h_rows, in.h_cols, *b) ||
          uvp::detail::lstm_in_buffer(in.c_data, in.c_rows, in.c_cols, *b))
        uvp::detail::raise<invalid_argument>(where,
                                             ": the input lies in the context's own buffers (the output or gradient "
                                             "of its last pass); give this forward another context");
    const index B = in.x_rows, H = hid_;
    MatrixView<T> h_out(uvp::detail::grow(ctx.h_out_, B * H), B, H), c_out(uvp::detail::grow(ctx.c_out_, B * H), B, H);
    forward(in.x(), in.h(), in.c(), h_out, c_out, ctx);
    ctx.in_ = in;
    ctx.contract_ = true;
    return {ConstMatrixView<T>(h_out.data(), B, H), ConstMatrixView<T>(c_out.data(), B, H)};
  }

  /// From d_output = {dh' (B x H), dc' (B x H, or empty: none)}, the gradient of ctx's last
  /// forward's output: accumulates the parameter gradients and returns {dx, dh, dc}, views owned
  /// by ctx. uvp::invalid_argument without a completed contract forward in ctx.
  LstmCellInput<T> backward(Context& ctx, const LstmCellState<T>& d_output) {
    constexpr const char* where = "uvp::nn::LstmCell::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "LstmCell", &s);
    if (!ctx.contract_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": ctx holds a forward of the low-level form (x, h, c, h_out, c_out, "
                                           "ctx); call forward(LstmCellInput, ctx) first, or the low-level backward");
    uvp::detail::lstm_check_view(where, "dh_out", d_output.h_data, d_output.h_rows, d_output.h_cols);
    uvp::detail::lstm_check_view(where, "dc_out", d_output.c_data, d_output.c_rows, d_output.c_cols);
    for (const auto* b : {&ctx.gx_, &ctx.gh_, &ctx.gc_})
      if (uvp::detail::lstm_in_buffer(d_output.h_data, d_output.h_rows, d_output.h_cols, *b) ||
          uvp::detail::lstm_in_buffer(d_output.c_data, d_output.c_rows, d_output.c_cols, *b))
        uvp::detail::raise<invalid_argument>(where,
                                             ": d_output lies in the context's own input-gradient buffers (the "
                                             "result of its last backward); copy it first");
    const LstmCellInput<T>& in = ctx.in_;
    const index B = in.x_rows, H = hid_;
    MatrixView<T> dx(uvp::detail::grow(ctx.gx_, B * in_), B, in_);
    MatrixView<T> dh(uvp::detail::grow(ctx.gh_, B * H), B, H), dc(uvp::detail::grow(ctx.gc_, B * H), B, H);
    backward(in.x(), in.h(), in.c(), d_output.h(), d_output.c(), dx, dh, dc, ctx);
    return {ConstMatrixView<T>(dx.data(), B, in_), ConstMatrixView<T>(dh.data(), B, H),
            ConstMatrixView<T>(dc.data(), B, H)};
  }

  /// {input_size, hidden_size}.
  BlockSpec spec() const { return BlockSpec(kind).set("input_size", double(in_)).set("hidden_size", double(hid_)); }
  /// The LstmCell of spec s (weights from a fixed seed: load them after). uvp::format_error for a
  /// spec of another kind or a missing argument, the constructor's error for a bad one.
  static LstmCell from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::LstmCell::from_spec", s, kind);
    Rng rng(0);
    constexpr index lo = -uvp::detail::nn_spec_max_size, hi = uvp::detail::nn_spec_max_size;
    return LstmCell(s.get_index("input_size", lo, hi), s.get_index("hidden_size", lo, hi), rng);
  }

  // ---- Accessors and the low-level forms ---------------------------------------------------

  index input_size() const noexcept { return in_; }
  index hidden_size() const noexcept { return hid_; }

  /// W_ih (4H x I), W_hh (4H x H), b_ih, b_hh (4H): views into the parameter buffer.
  MatrixView<T> weight_ih() noexcept { return {value(t_.w_ih), 4 * hid_, in_}; }
  ConstMatrixView<T> weight_ih() const noexcept { return {value(t_.w_ih), 4 * hid_, in_}; }
  MatrixView<T> weight_hh() noexcept { return {value(t_.w_hh), 4 * hid_, hid_}; }
  ConstMatrixView<T> weight_hh() const noexcept { return {value(t_.w_hh), 4 * hid_, hid_}; }
  Span<T> bias_ih() noexcept { return this->values(this->tensors()[t_.b_ih]); }
  Span<const T> bias_ih() const noexcept { return this->values(this->tensors()[t_.b_ih]); }
  Span<T> bias_hh() noexcept { return this->values(this->tensors()[t_.b_hh]); }
  Span<const T> bias_hh() const noexcept { return this->values(this->tensors()[t_.b_hh]); }

  /// Low-level form: h_out, c_out (B x H) = the step from x (B x I), h, c (B x H); all finite.
  /// h_out and c_out may be h and c themselves (an in-place step), but backward then needs the
  /// old h and c. Const and thread-safe: writes only h_out, c_out and ctx.
  void forward(ConstMatrixRef<T> x, ConstMatrixRef<T> h, ConstMatrixRef<T> c, MatrixRef<T> h_out,
               MatrixRef<T> c_out, Context& ctx) const {
    constexpr const char* where = "uvp::nn::LstmCell::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    ctx.contract_ = false;
    const index B = x.rows(), H = hid_, G4 = 4 * hid_;
    uvp::detail::check_cols(where, "x", x.cols(), in_);
    uvp::detail::check_shape(where, "h", h.rows(), h.cols(), B, H);
    uvp::detail::check_shape(where, "c", c.rows(), c.cols(), B, H);
    uvp::detail::check_shape(where, "h_out", h_out.rows(), h_out.cols(), B, H);
    uvp::detail::check_shape(where, "c_out", c_out.rows(), c_out.cols(), B, H);
    uvp::detail::nn_check_finite<T>(where, "x", x);
    uvp::detail::nn_check_finite<T>(where, "h", h);
    uvp::detail::nn_check_finite<T>(where, "c", c);
    ctx.batch_ = B, ctx.hidden_ = H, ctx.input_ = in_;
    T* bias = uvp::detail::grow(ctx.bias_, G4);
    T* gates = uvp::detail::grow(ctx.gates_, B * G4);
    T* tc = uvp::detail::grow(ctx.tc_, B * H);
    sum_biases(bias);
    if (B > 0) {
      // The kernel of any number of rows: a row's step does not depend on the batch around it.
      MatrixView<T> G(gates, B, G4);
      uvp::detail::row_product_wt<T>(x, weight_ih().data(), G4, nullptr, G);
      uvp::detail::row_product_wt<T>(h, weight_hh().data(), G4, nullptr, G, true);
      for (index r = 0; r < B; ++r)
        uvp::detail::lstm_forward_row(gates + r * G4, bias, c.row(r).data(), c_out.row(r).data(), tc + r * H,
                                      h_out.row(r).data(), H);
    }
    uvp::detail::nn_end_forward(ctx);
  }

  /// Low-level form: gradients of the last forward (run with ctx on these x, h, c): from dh_out
  /// (B x H) and dc_out (B x H, or empty for none), accumulates the parameter gradients and writes
  /// dx (B x I), dh, dc (B x H).
  void backward(ConstMatrixRef<T> x, ConstMatrixRef<T> h, ConstMatrixRef<T> c, ConstMatrixRef<T> dh_out,
                ConstMatrixRef<T> dc_out, MatrixRef<T> dx, MatrixRef<T> dh, MatrixRef<T> dc, Context& ctx) {
    constexpr const char* where = "uvp::nn::LstmCell::backward";
    const index B = x.rows(), H = hid_, G4 = 4 * hid_;
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "LstmCell", &s);
    if (ctx.hidden_ != H || ctx.input_ != in_ || ctx.batch_ != B)
      uvp::detail::raise<invalid_argument>(where, ": ctx holds no forward of this cell on ", B,
                                           " rows (call forward first)");
    uvp::detail::check_cols(where, "x", x.cols(), in_);
    uvp::detail::check_shape(where, "h", h.rows(), h.cols(), B, H);
    uvp::detail::check_shape(where, "c", c.rows(), c.cols(), B, H);
    uvp::detail::check_shape(where, "dh_out", dh_out.rows(), dh_out.cols(), B, H);
    const bool has_dc = uvp::detail::lstm_optional(where, "dc_out", dc_out.rows(), dc_out.cols(), B, H);
    uvp::detail::check_shape(where, "dx", dx.rows(), dx.cols(), B, in_);
    uvp::detail::check_shape(where, "dh", dh.rows(), dh.cols(), B, H);
    uvp::detail::check_shape(where, "dc", dc.rows(), dc.cols(), B, H);
    if (B == 0) return;
    T* dG = uvp::detail::grow(ctx.dgates_, B * G4);
    T* dcw = uvp::detail::grow(ctx.dc_, B * H);
    for (index r = 0; r < B; ++r) {
      T* d = dcw + r * H;
      if (has_dc)
        std::copy_n(dc_out.row(r).data(), H, d);
      else
        std::fill_n(d, H, T(0));
      uvp::detail::lstm_backward_row(ctx.gates_.data() + r * G4, c.row(r).data(), ctx.tc_.data() + r * H,
                                     dh_out.row(r).data(), d, dG + r * G4, H);
    }
    const ConstMatrixView<T> dGm(dG, B, G4);
    grad_matrix(t_.w_ih, in_).noalias() += dGm.transpose() * x;
    grad_matrix(t_.w_hh, H).noalias() += dGm.transpose() * h;
    T* gb = this->grads(this->tensors()[t_.b_ih]).data();
    uvp::detail::lstm_add_row_sums(dG, B, G4, G4, gb);
    uvp::detail::lstm_add_row_sums(dG, B, G4, G4, this->grads(this->tensors()[t_.b_hh]).data());
    dx.noalias() = dGm * weight_ih();
    dh.noalias() = dGm * weight_hh();
    dc = ConstMatrixView<T>(dcw, B, H);
  }

 private:
  const T* value(std::size_t t) const noexcept { return this->values(this->tensors()[t]).data(); }
  T* value(std::size_t t) noexcept { return this->values(this->tensors()[t]).data(); }
  MatrixView<T> grad_matrix(std::size_t t, index cols) noexcept {
    return {this->grads(this->tensors()[t]).data(), 4 * hid_, cols};
  }
  void sum_biases(T* out) const noexcept {
    const T *a = value(t_.b_ih), *b = value(t_.b_hh);
    for (index j = 0; j < 4 * hid_; ++j) out[j] = a[j] + b[j];
  }
  uvp::detail::NnBlockShape shape() const noexcept { return {{"input_size", in_}, {"hidden_size", hid_}}; }

  index in_, hid_;
  uvp::detail::LstmTensorIds t_;
};

/// A stacked LSTM over batch-first sequences of variable length, torch.nn.LSTM(I, H, num_layers,
/// batch_first=True) on packed sequences, without dropout between layers (torch's dropout = 0):
/// layer 0 reads X, layer k > 0 reads layer k - 1's h_t. Tensors "weight_ih_l{k}" {4H, I for
/// k = 0, else H}, "weight_hh_l{k}" {4H, H}, "bias_ih_l{k}" {4H}, "bias_hh_l{k}" {4H}, layer by
/// layer. See the top of this file for the equations, shapes and both forms of the API.
template <class T, class Backend = cpu>
class Lstm : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Lstm: only the uvp::cpu backend is implemented; use Lstm<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using Context = LstmContext<T>;
  using input_type = SequenceBatch<T>;
  using output_type = SequenceBatch<T>;
  static constexpr const char* kind = "Lstm";

  /// input_size I, hidden_size H, num_layers L > 0; every tensor drawn U(-1/sqrt(H), 1/sqrt(H))
  /// in state_dict order (PyTorch's reset_parameters).
  Lstm(index input_size, index hidden_size, Rng& rng, index num_layers = 1)
      : in_(input_size), hid_(hidden_size), layers_(num_layers) {
    constexpr const char* where = "uvp::nn::Lstm";
    uvp::detail::check_positive(where, "input_size", input_size);
    uvp::detail::check_positive(where, "hidden_size", hidden_size);
    uvp::detail::check_positive(where, "num_layers", num_layers);
    for (index l = 0; l < layers_; ++l) {
      const std::string k = std::to_string(l);
      this->add_tensor("weight_ih_l" + k, {4 * hid_, layer_input(l)});
      this->add_tensor("weight_hh_l" + k, {4 * hid_, hid_});
      this->add_tensor("bias_ih_l" + k, {4 * hid_});
      this->add_tensor("bias_hh_l" + k, {4 * hid_});
    }
    this->allocate_parameters();
    const double k = 1.0 / std::sqrt(double(hid_));
    for (const auto& t : this->tensors()) init::uniform(this->values(t), -k, k, rng);
  }

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return in_; }
  /// hidden_size; uvp::shape_error if in (-1: not known) is not input_size.
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::Lstm::output_width", in);
    if (in != -1 && in != in_) uvp::detail::nn_width_mismatch("uvp::nn::Lstm::output_width", "Lstm", in, in_);
    return hid_;
  }

  /// Every step's top-layer h_t for the sequences x (x.features = input_size, finite), from
  /// h0 = c0 = 0: a SequenceBatch with x's batch, steps and lengths and H features (padding rows
  /// 0), owned by ctx and valid until its next forward. ctx keeps a view of x, which must stay
  /// alive and unchanged until the backward that follows, and must not lie in ctx's own buffers.
  /// ctx.last_hidden() / last_cell() hold h_n, c_n. Const and thread-safe.
  SequenceBatch<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Lstm::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, x);
    for (const auto* b : {&ctx.h_, &ctx.dx_})
      if (uvp::detail::lstm_in_buffer(x.data, x.batch * x.steps, x.features, *b))
        uvp::detail::raise<invalid_argument>(where,
                                             ": x lies in the context's own buffers (the output or gradient of its "
                                             "last pass); give this forward another context");
    run(where, x.values(), x.batch, x.steps, x.lengths, nullptr, nullptr, ctx, true);
    ctx.x_ = x;
    ctx.contract_ = true;
    return {ctx.output(), x.batch, x.steps, x.lengths};
  }

  /// From d_output (x's batch and steps, H features: the gradient of the last forward's output;
  /// padding rows ignored) by backpropagation through time and through the layers: accumulates
  /// every parameter gradient and returns dX (x's batch, steps and lengths, I features, padding
  /// rows 0), owned by ctx. uvp::invalid_argument without a completed contract forward in ctx,
  /// uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::Lstm::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Lstm", &s);
    if (!ctx.history_ || !ctx.contract_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": ctx holds no contract forward of this Lstm (call forward(x, ctx), not "
                                           "forward_last or the low-level forward, first)");
    const SequenceBatch<T>& x = ctx.x_;
    uvp::detail::check_sequence_shape(where, "d_output", d_output.batch, d_output.steps, d_output.features, x.batch,
                                      x.steps, hid_);
    const index N = x.batch * x.steps;
    if (d_output.data == nullptr && N * hid_ > 0)
      uvp::detail::raise<invalid_argument>(where, ": d_output has no data for its ", N, " rows");
    if (uvp::detail::lstm_in_buffer(d_output.data, N, hid_, ctx.dx_))
      uvp::detail::raise<invalid_argument>(where,
                                           ": d_output lies in the context's own input-gradient buffer (the result "
                                           "of its last backward); copy it first");
    MatrixRef<T> dX = MatrixView<T>(uvp::detail::grow(ctx.dx_, N * in_), N, in_);
    backprop(where, x.values(), d_output.values(), ConstMatrixView<T>(nullptr, 0, hid_), &dX, nullptr, nullptr,
             ctx);
    return {ConstMatrixView<T>(dX.data(), N, in_), x.batch, x.steps, x.lengths};
  }

  /// Inference, the path nn::Chain takes in eval mode for an Lstm followed by a last-step pooling:
  /// writes each sequence's last valid top-layer h to h_last (x.batch x H) and keeps no history
  /// (backward cannot follow). Same results as forward. Const and thread-safe.
  void forward_last(const SequenceBatch<T>& x, MatrixRef<T> h_last, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, shape());
    uvp::detail::check_batch_sizes("uvp::nn::Lstm::forward_last", x);
    forward_last(x.values(), x.batch, x.steps, x.lengths, h_last, ctx);
  }

  /// {input_size, hidden_size, num_layers}.
  BlockSpec spec() const {
    return BlockSpec(kind)
        .set("input_size", double(in_))
        .set("hidden_size", double(hid_))
        .set("num_layers", double(layers_));
  }
  /// The Lstm of spec s (weights from a fixed seed: load them after). uvp::format_error for a
  /// spec of another kind or a missing argument, the constructor's error for a bad one.
  static Lstm from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::Lstm::from_spec", s, kind);
    Rng rng(0);
    constexpr index lo = -uvp::detail::nn_spec_max_size, hi = uvp::detail::nn_spec_max_size;
    return Lstm(s.get_index("input_size", lo, hi), s.get_index("hidden_size", lo, hi), rng,
                s.get_index("num_layers", lo, hi));
  }

  // ---- Accessors and the low-level forms ---------------------------------------------------

  index input_size() const noexcept { return in_; }
  index hidden_size() const noexcept { return hid_; }
  index num_layers() const noexcept { return layers_; }

  /// Layer 0's W_ih (4H x I), W_hh (4H x H), b_ih, b_hh (4H): views into the parameter buffer.
  MatrixView<T> weight_ih() noexcept { return {value(ids(0).w_ih), 4 * hid_, in_}; }
  ConstMatrixView<T> weight_ih() const noexcept { return wih(0); }
  MatrixView<T> weight_hh() noexcept { return {value(ids(0).w_hh), 4 * hid_, hid_}; }
  ConstMatrixView<T> weight_hh() const noexcept { return whh(0); }
  Span<T> bias_ih() noexcept { return this->values(this->tensors()[ids(0).b_ih]); }
  Span<const T> bias_ih() const noexcept { return this->values(this->tensors()[ids(0).b_ih]); }
  Span<T> bias_hh() noexcept { return this->values(this->tensors()[ids(0).b_hh]); }
  Span<const T> bias_hh() const noexcept { return this->values(this->tensors()[ids(0).b_hh]); }
  /// Layer `layer`'s W_ih (4H x I for layer 0, else 4H x H) and W_hh (4H x H).
  /// uvp::out_of_range_error for a layer not in [0, num_layers()).
  ConstMatrixView<T> weight_ih(index layer) const {
    check_layer("weight_ih", layer);
    return wih(layer);
  }
  ConstMatrixView<T> weight_hh(index layer) const {
    check_layer("weight_hh", layer);
    return whh(layer);
  }

  /// Low-level form: runs the sequences X ((batch * seq_len) x I, finite) from h0 = c0 = 0 and
  /// keeps what backward needs in ctx; the results are ctx.output(), ctx.last_hidden(),
  /// ctx.last_cell(). lengths: empty (all seq_len) or batch values in [1, seq_len]. Const and
  /// thread-safe.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, Context& ctx) const {
    run("uvp::nn::Lstm::forward", X, batch, seq_len, lengths, nullptr, nullptr, ctx, true);
  }
  /// As above from the initial state h0, c0 ((num_layers * batch) x H each, finite; row
  /// k * batch + b is layer k's state of sequence b, PyTorch's h_0 of shape (L, batch, H)).
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, ConstMatrixRef<T> h0,
               ConstMatrixRef<T> c0, Context& ctx) const {
    run("uvp::nn::Lstm::forward", X, batch, seq_len, lengths, &h0, &c0, ctx, true);
  }

  /// Low-level inference: writes each sequence's last valid top-layer hidden state to h_last
  /// (batch x H) and keeps no history (ctx holds only the last h and c of each layer; backward
  /// cannot follow). Const and thread-safe.
  void forward_last(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
                    MatrixRef<T> h_last, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Lstm::forward_last";
    uvp::detail::nn_begin_forward(ctx, shape());
    uvp::detail::check_shape(where, "h_last", h_last.rows(), h_last.cols(), batch, hid_);
    run(where, X, batch, seq_len, lengths, nullptr, nullptr, ctx, false);
    h_last = ctx.last_hidden();
  }
  void forward_last(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
                    ConstMatrixRef<T> h0, ConstMatrixRef<T> c0, MatrixRef<T> h_last, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Lstm::forward_last";
    uvp::detail::nn_begin_forward(ctx, shape());
    uvp::detail::check_shape(where, "h_last", h_last.rows(), h_last.cols(), batch, hid_);
    run(where, X, batch, seq_len, lengths, &h0, &c0, ctx, false);
    h_last = ctx.last_hidden();
  }

  /// Low-level form: gradients of the last forward (run with ctx on this X) by backpropagation
  /// through time and the layers, from dH ((batch * seq_len) x H, the gradient of ctx.output();
  /// padding rows ignored) and/or dh_last (batch x H, of ctx.last_hidden()); either may be empty
  /// (no rows), not both. Accumulates the parameter gradients; writes dX ((batch * seq_len) x I,
  /// padding rows 0).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dH, ConstMatrixRef<T> dh_last, MatrixRef<T> dX,
                Context& ctx) {
    constexpr const char* where = "uvp::nn::Lstm::backward";
    check_dx(where, dX, ctx);
    backprop(where, X, dH, dh_last, &dX, nullptr, nullptr, ctx);
  }
  /// As above, and writes dh0, dc0 ((num_layers * batch) x H, rows as forward's h0): the
  /// gradients of the initial state (the zero state's when forward was given none).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dH, ConstMatrixRef<T> dh_last, MatrixRef<T> dX,
                MatrixRef<T> dh0, MatrixRef<T> dc0, Context& ctx) {
    constexpr const char* where = "uvp::nn::Lstm::backward";
    check_dx(where, dX, ctx);
    uvp::detail::check_shape(where, "dh0", dh0.rows(), dh0.cols(), layers_ * ctx.batch_, hid_);
    uvp::detail::check_shape(where, "dc0", dc0.rows(), dc0.cols(), layers_ * ctx.batch_, hid_);
    backprop(where, X, dH, dh_last, &dX, &dh0, &dc0, ctx);
  }
  /// Parameter gradients only (X is not trainable).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dH, ConstMatrixRef<T> dh_last, Context& ctx) {
    backprop("uvp::nn::Lstm::backward", X, dH, dh_last, nullptr, nullptr, nullptr, ctx);
  }

 private:
  using ConstStrided = uvp::detail::ConstStridedView<T>;
  /// forward_last works on blocks of sequences whose input projections (seq_len x 4H each) fit
  /// in about this many bytes, so that they are still in cache when the steps read them.
  static constexpr index block_bytes = index(1) << 20;

  // Layer l's tensors are the four after layer l - 1's (state_dict order).
  static uvp::detail::LstmTensorIds ids(index l) noexcept {
    const auto k = static_cast<std::size_t>(4 * l);
    return {k, k + 1, k + 2, k + 3};
  }
  index layer_input(index l) const noexcept { return l == 0 ? in_ : hid_; }
  const T* value(std::size_t t) const noexcept { return this->values(this->tensors()[t]).data(); }
  T* value(std::size_t t) noexcept { return this->values(this->tensors()[t]).data(); }
  ConstMatrixView<T> wih(index l) const noexcept { return {value(ids(l).w_ih), 4 * hid_, layer_input(l)}; }
  ConstMatrixView<T> whh(index l) const noexcept { return {value(ids(l).w_hh), 4 * hid_, hid_}; }
  MatrixView<T> grad_matrix(std::size_t t, index cols) noexcept {
    return {this->grads(this->tensors()[t]).data(), 4 * hid_, cols};
  }
  T* grad(std::size_t t) noexcept { return this->grads(this->tensors()[t]).data(); }
  void check_layer(const char* what, index layer) const {
    if (layer < 0 || layer >= layers_) {
      const std::string where = std::string("uvp::nn::Lstm::") + what;
      uvp::detail::nn_check_index(where.c_str(), "layer", layer, "num_layers", layers_);
    }
  }

  void check_dx(const char* where, const MatrixRef<T>& dX, const Context& ctx) const {
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), ctx.batch_ * ctx.seq_len_, in_);
  }

  void run(const char* where, const ConstMatrixRef<T>& X, index batch, index seq_len, Span<const index> lengths,
           const ConstMatrixRef<T>* h0, const ConstMatrixRef<T>* c0, Context& ctx, bool history) const {
    const index H = hid_, G4 = 4 * hid_, S = seq_len, L = layers_;
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this call completes
    uvp::detail::check_sequence_batch<T>(where, X, in_, batch, seq_len, lengths,
                                         uvp::detail::LengthsWording::steps);
    if (h0) {
      uvp::detail::check_shape(where, "h0", h0->rows(), h0->cols(), L * batch, H);
      uvp::detail::check_shape(where, "c0", c0->rows(), c0->cols(), L * batch, H);
    }
    uvp::detail::nn_check_finite<T>(where, "X", X);
    if (h0) {
      uvp::detail::nn_check_finite<T>(where, "h0", *h0);
      uvp::detail::nn_check_finite<T>(where, "c0", *c0);
    }
    ctx.history_ = ctx.contract_ = false;  // until this call has completed
    ctx.batch_ = batch, ctx.seq_len_ = S, ctx.hidden_ = H, ctx.input_ = in_, ctx.layers_ = L;
    ctx.initial_ = h0 != nullptr;
    index* len = uvp::detail::grow(ctx.lengths_, batch);
    for (index b = 0; b < batch; ++b) len[b] = lengths.empty() ? S : lengths[b];
    T* bias = uvp::detail::grow(ctx.bias_, L * G4);
    for (index l = 0; l < L; ++l) {
      const T *a = value(ids(l).b_ih), *b = value(ids(l).b_hh);
      for (index j = 0; j < G4; ++j) bias[l * G4 + j] = a[j] + b[j];
    }
    uvp::detail::grow(ctx.zeros_, H);
    std::fill_n(ctx.zeros_.data(), H, T(0));
    // Packed once per call (or kept from the last call on the same weights), read by every
    // chunk's products.
    if (static_cast<index>(ctx.packed_.size()) < 2 * L) ctx.packed_.resize(static_cast<std::size_t>(2 * L));
    for (index l = 0; l < L; ++l) {
      ctx.packed_[std::size_t(2 * l)].pack_transposed_cached(value(ids(l).w_ih), G4, layer_input(l));
      ctx.packed_[std::size_t(2 * l + 1)].pack_transposed_cached(value(ids(l).w_hh), G4, H);
    }
    T* hn = uvp::detail::grow(ctx.hn_, L * batch * H);
    T* cn = uvp::detail::grow(ctx.cn_, L * batch * H);
    if (h0) {
      MatrixView<T>(uvp::detail::grow(ctx.h0_, L * batch * H), L * batch, H) = *h0;
      MatrixView<T>(uvp::detail::grow(ctx.c0_, L * batch * H), L * batch, H) = *c0;
    }
    const index work = S * G4 * (H + in_) + (L - 1) * S * G4 * 2 * H;
    // With history, backward sums its weight gradients over these chunks: their number must not
    // depend on the thread count (see lstm_train_chunk_count).
    const index chunks = history ? uvp::detail::lstm_train_chunk_count(batch, work)
                                 : uvp::detail::lstm_chunk_count(batch, work);
    ctx.chunks_ = chunks;
    if (history) {
      const index N = batch * S;
      uvp::detail::grow(ctx.gates_, L * N * G4);
      uvp::detail::grow(ctx.c_, L * N * H);
      uvp::detail::grow(ctx.tc_, L * N * H);
      uvp::detail::grow(ctx.h_, L * N * H);
      // Each thread runs every layer of its chunk of sequences (they are independent). Through
      // parallel_chunks even for one chunk: no product inside forks, on any thread count.
      uvp::parallel_chunks(chunks, [&](index k) {
        const index b0 = batch * k / chunks, b1 = batch * (k + 1) / chunks;
        forward_chunk(0, X, b0, b1, ctx);
        for (index l = 1; l < L; ++l) forward_chunk(l, below(l, ctx), b0, b1, ctx);
      });
      for (index l = 0; l < L; ++l)
        for (index b = 0; b < batch; ++b) {
          const index r = l * N + b * S + len[b] - 1;
          std::copy_n(ctx.h_.data() + r * H, H, hn + (l * batch + b) * H);
          std::copy_n(ctx.c_.data() + r * H, H, cn + (l * batch + b) * H);
        }
      ctx.history_ = true;
    } else {
      const index per_block = std::max<index>(1, block_bytes / index(sizeof(T) * S * G4));
      const index block = std::min(per_block, (batch + chunks - 1) / chunks);
      uvp::detail::grow(ctx.xp_, chunks * block * S * G4);
      if (L > 1) uvp::detail::grow(ctx.hseq_, chunks * block * S * H);
      uvp::detail::lstm_for_chunks(chunks, [&](index k) {
        infer_chunk(X, batch * k / chunks, batch * (k + 1) / chunks, block, ctx.xp_.data() + k * block * S * G4,
                    L > 1 ? ctx.hseq_.data() + k * block * S * H : nullptr, ctx);
      });
    }
    uvp::detail::nn_end_forward(ctx);
  }

  // The input of layer l > 0: layer l - 1's h of every step, (batch * seq_len) x H.
  ConstMatrixRef<T> below(index l, const Context& ctx) const {
    const index N = ctx.batch_ * ctx.seq_len_;
    return ConstMatrixView<T>(ctx.h_.data() + (l - 1) * N * hid_, N, hid_);
  }

  // Layer l over sequences [b0, b1) with history: gates, c, tanh(c), h of every step,
  // batch-first; X is the layer's input.
  void forward_chunk(index l, const ConstMatrixRef<T>& X, index b0, index b1, Context& ctx) const {
    const index S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, nb = b1 - b0, N = ctx.batch_ * S;
    if (nb <= 0) return;
    const index* len = ctx.lengths_.data();
    T* gates = ctx.gates_.data() + l * N * G4;
    T *c = ctx.c_.data() + l * N * H, *tc = ctx.tc_.data() + l * N * H, *h = ctx.h_.data() + l * N * H;
    const T* bias = ctx.bias_.data() + l * G4;
    const auto &Wih = ctx.packed_[std::size_t(2 * l)], &Whh = ctx.packed_[std::size_t(2 * l + 1)];
    // The input projections of all steps of the chunk: one product. Every product here is
    // row_product's, whose rows do not depend on the others: a sequence's result is the same in
    // any batch, chunk or thread.
    uvp::detail::row_product(X.data() + b0 * S * X.outerStride(), X.outerStride(), nb * S, Wih, nullptr, false,
                             gates + b0 * S * G4, G4);
    index tmax = 0;
    for (index b = b0; b < b1; ++b) {
      tmax = std::max(tmax, len[b]);
      std::fill(h + (b * S + len[b]) * H, h + (b + 1) * S * H, T(0));  // padded outputs
    }
    bool reversed = false;  // each step reads W_hh's panels in the other order (row_product)
    for (index t = 0; t < tmax; ++t) {
      T* Gt = gates + (b0 * S + t) * G4;  // step t of each sequence, row stride S * 4H
      if (t > 0)
        reversed = uvp::detail::row_product(h + (b0 * S + t - 1) * H, S * H, nb, Whh, nullptr, true, Gt, S * G4,
                                            reversed);
      else if (ctx.initial_)
        reversed = uvp::detail::row_product(ctx.h0_.data() + (l * ctx.batch_ + b0) * H, H, nb, Whh, nullptr, true,
                                            Gt, S * G4, reversed);
      for (index b = b0; b < b1; ++b) {
        if (t >= len[b]) continue;
        const index r = b * S + t;
        uvp::detail::lstm_forward_row(gates + r * G4, bias, c_prev(ctx, l, b, t), c + r * H, tc + r * H, h + r * H,
                                      H);
      }
    }
  }

  // Sequences [b0, b1) without history, in blocks of `block` sequences whose input projections
  // go to xp. Per layer, the running h and c are that layer's part of ctx.hn_, ctx.cn_ (a row
  // stops changing after its last step); a lower layer writes its h of every step to hseq
  // (block * seq_len x H), which the layer above projects before overwriting it step by step.
  void infer_chunk(const ConstMatrixRef<T>& X, index b0, index b1, index block, T* xp, T* hseq, Context& ctx) const {
    const index S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, L = layers_, B = ctx.batch_;
    const index* len = ctx.lengths_.data();
    for (index s0 = b0; s0 < b1; s0 += block) {
      const index s1 = std::min(b1, s0 + block), ns = s1 - s0;
      index tmax = 0;
      for (index b = s0; b < s1; ++b) tmax = std::max(tmax, len[b]);
      for (index l = 0; l < L; ++l) {
        const T* bias = ctx.bias_.data() + l * G4;
        T *hs = ctx.hn_.data() + l * B * H, *cs = ctx.cn_.data() + l * B * H;
        if (ctx.initial_) {
          std::copy_n(ctx.h0_.data() + (l * B + s0) * H, ns * H, hs + s0 * H);
          std::copy_n(ctx.c0_.data() + (l * B + s0) * H, ns * H, cs + s0 * H);
        } else {
          std::fill_n(hs + s0 * H, ns * H, T(0));
          std::fill_n(cs + s0 * H, ns * H, T(0));
        }
        const auto &Wih = ctx.packed_[std::size_t(2 * l)], &Whh = ctx.packed_[std::size_t(2 * l + 1)];
        if (l == 0)
          uvp::detail::row_product(X.data() + s0 * S * X.outerStride(), X.outerStride(), ns * S, Wih, nullptr, false,
                                   xp, G4);
        else
          uvp::detail::row_product(hseq, H, ns * S, Wih, nullptr, false, xp, G4);
        bool reversed = false;  // each step reads W_hh's panels in the other order (row_product)
        if (l == L - 1) {
          for (index t = 0; t < tmax; ++t) {
            if (t > 0 || ctx.initial_)  // step t of each sequence: row stride S * 4H
              reversed = uvp::detail::row_product(hs + s0 * H, H, ns, Whh, nullptr, true, xp + t * G4, S * G4, reversed);
            for (index b = s0; b < s1; ++b)
              if (t < len[b])
                uvp::detail::lstm_forward_row_inplace(xp + ((b - s0) * S + t) * G4, bias, cs + b * H, hs + b * H, H);
          }
          continue;
        }
        if (l == 0)  // padding rows of hseq stay 0 through every lower layer
          for (index b = s0; b < s1; ++b)
            std::fill(hseq + ((b - s0) * S + len[b]) * H, hseq + (b - s0 + 1) * S * H, T(0));
        for (index t = 0; t < tmax; ++t) {
          if (t > 0)
            reversed =
                uvp::detail::row_product(hseq + (t - 1) * H, S * H, ns, Whh, nullptr, true, xp + t * G4, S * G4, reversed);
          else if (ctx.initial_)
            reversed = uvp::detail::row_product(hs + s0 * H, H, ns, Whh, nullptr, true, xp + t * G4, S * G4, reversed);
          for (index b = s0; b < s1; ++b)
            if (t < len[b])
              uvp::detail::lstm_forward_row_inplace(xp + ((b - s0) * S + t) * G4, bias, cs + b * H,
                                                    hseq + ((b - s0) * S + t) * H, H);
        }
        for (index b = s0; b < s1; ++b) std::copy_n(hseq + ((b - s0) * S + len[b] - 1) * H, H, hs + b * H);
      }
    }
  }

  const T* c_prev(const Context& ctx, index l, index b, index t) const noexcept {
    const index H = hid_;
    if (t > 0) return ctx.c_.data() + (l * ctx.batch_ * ctx.seq_len_ + b * ctx.seq_len_ + t - 1) * H;
    return ctx.initial_ ? ctx.c0_.data() + (l * ctx.batch_ + b) * H : ctx.zeros_.data();
  }

  void backprop(const char* where, const ConstMatrixRef<T>& X, const ConstMatrixRef<T>& dH,
                const ConstMatrixRef<T>& dh_last, MatrixRef<T>* dX, MatrixRef<T>* dh0, MatrixRef<T>* dc0,
                Context& ctx) {
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Lstm", &s);
    if (!ctx.history_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": ctx holds no forward pass of this Lstm (call forward, not "
                                           "forward_last, first)");
    const index B = ctx.batch_, S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, N = B * S, L = layers_;
    uvp::detail::check_shape(where, "X", X.rows(), X.cols(), N, in_);
    const bool has_dH = uvp::detail::lstm_optional(where, "dH", dH.rows(), dH.cols(), N, H);
    const bool has_last = uvp::detail::lstm_optional(where, "dh_last", dh_last.rows(), dh_last.cols(), B, H);
    if (B == 0) return;  // an empty batch: no gradient, parameters untouched
    if (!has_dH && !has_last)
      uvp::detail::raise<invalid_argument>(where, ": dH and dh_last are both empty (nothing to backpropagate)");
    T* dG = uvp::detail::grow(ctx.dgates_, N * G4);
    uvp::detail::grow(ctx.dh_, L * B * H);
    uvp::detail::grow(ctx.dc_, L * B * H);
    const index chunks = ctx.chunks_, I = in_;
    T* db = uvp::detail::grow(ctx.dbias_, chunks * L * G4);
    // One thread per chunk of sequences; with several, each computes its chunk's weight
    // gradients into its own slot and the slots are summed afterwards (no GEMM shared by threads).
    // A slot holds every layer's dW_ih, dW_hh; layer l's start at offset(l).
    const index partial = G4 * (I + H) + (L - 1) * G4 * 2 * H;
    const auto offset = [&](index l) { return l == 0 ? 0 : G4 * (I + H) + (l - 1) * G4 * 2 * H; };
    T* dw = chunks > 1 ? uvp::detail::grow(ctx.dweights_, chunks * partial) : nullptr;
    // With several layers: the gradient of layer l - 1's output, dG_l W_ih_l, rows of each chunk.
    T* dmid = L > 1 ? uvp::detail::grow(ctx.dmid_, N * H) : nullptr;
    const ConstMatrixRef<T> dmid_rows = ConstMatrixView<T>(dmid, L > 1 ? N : 0, H);
    uvp::parallel_chunks(chunks, [&](index k) {  // even for one chunk: no product inside forks
      const index b0 = B * k / chunks, b1 = B * (k + 1) / chunks;
      for (index l = L - 1; l >= 0; --l) {
        const bool top = l == L - 1;
        const index Il = layer_input(l);
        backward_chunk(l, b0, b1, top ? (has_dH ? &dH : nullptr) : &dmid_rows, top && has_last ? &dh_last : nullptr,
                       db + (k * L + l) * G4, ctx);
        T* slot = dw ? dw + k * partial + offset(l) : nullptr;
        if (b1 == b0) {
          if (slot) std::fill_n(slot, G4 * (Il + H), T(0));
          continue;
        }
        const ConstMatrixView<T> dGc(dG + b0 * S * G4, (b1 - b0) * S, G4);
        if (l > 0)  // read by backward_chunk above already; now the next layer down's dH
          MatrixView<T>(dmid + b0 * S * H, (b1 - b0) * S, H).noalias() = dGc * wih(l);
        else if (dX)
          dX->middleRows(b0 * S, (b1 - b0) * S).noalias() = dGc * wih(0);
        const ConstMatrixRef<T> Xl = l == 0 ? X : below(l, ctx);
        if (slot) {
          MatrixView<T> gWih(slot, G4, Il), gWhh(slot + G4 * Il, G4, H);
          gWih.setZero();
          gWhh.setZero();
          weight_gradients(l, Xl, b0, b1, gWih, gWhh, ctx);
        } else {
          MatrixView<T> gWih = grad_matrix(ids(l).w_ih, Il), gWhh = grad_matrix(ids(l).w_hh, H);
          weight_gradients(l, Xl, b0, b1, gWih, gWhh, ctx);
        }
      }
    });
    for (index l = 0; l < L; ++l) {
      const index Il = layer_input(l);
      if (dw) {
        T *gWih = grad(ids(l).w_ih), *gWhh = grad(ids(l).w_hh);
        for (index k = 0; k < chunks; ++k) {
          const T* slot = dw + k * partial + offset(l);
          kernels::axpy(T(1), slot, gWih, G4 * Il);
          kernels::axpy(T(1), slot + G4 * Il, gWhh, G4 * H);
        }
      }
      T *gbi = grad(ids(l).b_ih), *gbh = grad(ids(l).b_hh);
      for (index k = 0; k < chunks; ++k) {
        kernels::axpy(T(1), db + (k * L + l) * G4, gbi, G4);
        kernels::axpy(T(1), db + (k * L + l) * G4, gbh, G4);
      }
    }
    if (dh0) *dh0 = ConstMatrixView<T>(ctx.dh_.data(), L * B, H);
    if (dc0) *dc0 = ConstMatrixView<T>(ctx.dc_.data(), L * B, H);
  }

  // Layer l: gWih += dG^T X and gWhh += sum_t dG_t^T h_{t-1} over the sequences [b0, b1), all
  // steps at once; X is the layer's input.
  void weight_gradients(index l, const ConstMatrixRef<T>& X, index b0, index b1, MatrixView<T>& gWih,
                        MatrixView<T>& gWhh, const Context& ctx) const {
    const index S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, nb = b1 - b0, n = nb * S;
    const T* dG = ctx.dgates_.data() + b0 * S * G4;
    const T* h = ctx.h_.data() + (l * ctx.batch_ * S + b0 * S) * H;
    const ConstMatrixView<T> dGm(dG, n, G4), Hm(h, n, H);
    gWih.noalias() += dGm.transpose() * X.middleRows(b0 * S, n);
    if (S > 1) {
      // Row r + 1 of dG pairs with row r of h: right except across sequences (r = b S + S - 1),
      // whose nb - 1 terms are taken out again.
      gWhh.noalias() += dGm.bottomRows(n - 1).transpose() * Hm.topRows(n - 1);
      if (nb > 1)
        gWhh.noalias() -= ConstStrided(dG + S * G4, nb - 1, G4, Eigen::OuterStride<>(S * G4)).transpose() *
                          ConstStrided(h + (S - 1) * H, nb - 1, H, Eigen::OuterStride<>(S * H));
    }
    if (ctx.initial_)
      gWhh.noalias() += ConstStrided(dG, nb, G4, Eigen::OuterStride<>(S * G4)).transpose() *
                        ConstMatrixView<T>(ctx.h0_.data() + (l * ctx.batch_ + b0) * H, nb, H);
  }

  // BPTT of layer l over sequences [b0, b1): dG of every step (padding rows 0), the
  // bias-gradient partial sums in db, and the gradients of the layer's h0, c0 in its part of
  // ctx.dh_, ctx.dc_.
  void backward_chunk(index l, index b0, index b1, const ConstMatrixRef<T>* dH, const ConstMatrixRef<T>* dh_last,
                      T* db, Context& ctx) const {
    const index S = ctx.seq_len_, H = hid_, G4 = 4 * hid_, nb = b1 - b0, N = ctx.batch_ * S;
    std::fill_n(db, G4, T(0));
    if (nb <= 0) return;
    const index* len = ctx.lengths_.data();
    T* dG = ctx.dgates_.data();
    T *dh = ctx.dh_.data() + (l * ctx.batch_ + b0) * H, *dc = ctx.dc_.data() + (l * ctx.batch_ + b0) * H;
    const T *gates = ctx.gates_.data() + l * N * G4, *tc = ctx.tc_.data() + l * N * H;
    const ConstMatrixView<T> Whh = whh(l);
    std::fill_n(dh, nb * H, T(0));
    std::fill_n(dc, nb * H, T(0));
    index tmax = 0;
    for (index b = b0; b < b1; ++b) {
      tmax = std::max(tmax, len[b]);
      std::fill(dG + (b * S + len[b]) * G4, dG + (b + 1) * S * G4, T(0));
    }
    for (index t = tmax - 1; t >= 0; --t) {
      for (index b = b0; b < b1; ++b) {
        if (t >= len[b]) continue;
        const index r = b * S + t;
        T* dhb = dh + (b - b0) * H;
        if (dH) kernels::axpy(T(1), dH->row(r).data(), dhb, H);
        if (dh_last && t == len[b] - 1) kernels::axpy(T(1), dh_last->row(b).data(), dhb, H);
        uvp::detail::lstm_backward_row(gates + r * G4, c_prev(ctx, l, b, t), tc + r * H, dhb, dc + (b - b0) * H,
                                       dG + r * G4, H);
        kernels::axpy(T(1), dG + r * G4, db, G4);
      }
      // dh_{t-1} = dG_t W_hh (rows that are padding at t have dG = 0, hence dh = 0).
      MatrixView<T>(dh, nb, H).noalias() =
          ConstStrided(dG + (b0 * S + t) * G4, nb, G4, Eigen::OuterStride<>(S * G4)) * Whh;
    }
  }

  // The context's record of the block: num_layers only when > 1, so that single-layer messages
  // read as before.
  uvp::detail::NnBlockShape shape() const noexcept {
    if (layers_ == 1) return {{"input_size", in_}, {"hidden_size", hid_}};
    return {{"input_size", in_}, {"hidden_size", hid_}, {"num_layers", layers_}};
  }

  index in_, hid_, layers_;
};

}  // namespace uvp::nn
