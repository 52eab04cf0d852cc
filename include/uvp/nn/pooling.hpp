// SPDX-License-Identifier: Apache-2.0
// Global max, mean and last-step pooling over time of batch-first, channels-last sequences with
// lengths.
//
//   X  (batch * L) x C, row b * L + t; sequence b has n_b = lengths[b] valid steps (all L if none)
//   Y  batch x C
//
//   max:   Y(b, c) = max_{t < n_b} X(b L + t, c),  argmax[b C + c] = the row of X holding it
//          (the first one on ties); dX(argmax[b C + c], c) = dY(b, c), 0 elsewhere.
//   mean:  Y(b, c) = (1 / n_b) sum_{t < n_b} X(b L + t, c);  dX(b L + t, c) = dY(b, c) / n_b for
//          t < n_b, 0 at padding steps.
//   last:  Y(b, c) = X(b L + n_b - 1, c) (what Lstm::Context::last_hidden() holds);
//          dX(b L + n_b - 1, c) = dY(b, c), 0 elsewhere.
//
// PyTorch: X.masked_fill(~mask, -inf).amax(dim=1), (X * mask).sum(dim=1) / lengths and
// X[arange(batch), lengths - 1] on the (batch, L, C) tensor (torch.nn.AdaptiveMaxPool1d(1) /
// AdaptiveAvgPool1d(1) without padding). Padding steps are never read, so they may hold anything.
//
// The layer contract (uvp/nn/layer.hpp), SequenceBatch<T> -> ConstMatrixView<T>:
//
//   ConstMatrixView<T> y = pool.forward(x, ctx);              // batch x C, owned by ctx
//   SequenceBatch<T> dx = pool.backward(ctx, d_y);            // x's shape, padding rows 0
//
// The pools have no parameters (they are Blocks with no tensors, so a model holds them like any
// other block) and keep everything backward needs in ctx, so forward is const and thread-safe.
// The low-level forms take the caller's buffers: forward(X, batch, seq_len, lengths, Y[, argmax])
// and backward(dY, argmax or lengths, dX).
#pragma once

#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

/// batch = dY.rows(), dX (batch * L) x C with L >= 1: the backward shapes of a global pool.
/// Returns L, or 0 for an empty batch (dY and dX with 0 rows: nothing to write).
inline index check_pool_backward_1d(const char* where, index dy_rows, index dy_cols, index dx_rows,
                                    index dx_cols) {
  check_cols(where, "dX", dx_cols, dy_cols);
  if (dy_rows == 0) {
    if (dx_rows != 0)
      raise<shape_error>(where, ": dX has ", dx_rows, " rows, expected 0 (dY has 0 rows: an empty batch)");
    return 0;
  }
  if (dx_rows < dy_rows || dx_rows % dy_rows != 0)
    raise<shape_error>(where, ": dX has ", dx_rows, " rows, not batch * seq_len for batch = dY's ", dy_rows,
                       " rows");
  return dx_rows / dy_rows;
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Max over the valid steps of each sequence and channel (see the top of this file).
template <class T, class Backend = cpu>
class GlobalMaxPool1d : public Block<T> {
  static_assert(is_scalar_v<T>, "uvp::nn::GlobalMaxPool1d: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::GlobalMaxPool1d: only the uvp::cpu backend is implemented; use "
                "GlobalMaxPool1d<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = SequenceBatch<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "GlobalMaxPool1d";

  /// What forward keeps for backward (the argmax rows, a view of x) and the output buffers. One
  /// per thread; its buffers only grow.
  class Context : public uvp::detail::NnContextBase {
   public:
    /// The row of x each maximum of the last forward came from (batch * C entries, b C + c);
    /// empty unless it completed.
    Span<const index> argmax() const noexcept {
      return holds_forward() ? Span<const index>(argmax_.data(), x_.batch * x_.features) : Span<const index>();
    }

   private:
    friend class GlobalMaxPool1d;
    uvp::detail::AlignedBuffer<T> y_, dx_;
    std::vector<index> argmax_;
    SequenceBatch<T> x_;
  };

  /// Any number of channels C (-1); C out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::GlobalMaxPool1d::output_width", in);
    return in;
  }

  /// Y (x.batch x x.features), a view owned by ctx (valid until its next forward); ctx keeps a
  /// view of x. Checks and messages are the low-level forward's. Const and thread-safe.
  ConstMatrixView<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::forward";
    uvp::detail::nn_begin_forward(ctx, {});  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, "x", x);
    uvp::detail::check_not_in_context<T>(where, "x", x.values(), ctx.y_, ctx.dx_);
    const index batch = x.batch, C = x.features;
    MatrixView<T> Y(uvp::detail::grow(ctx.y_, batch * C), batch, C);
    Span<index> argmax(uvp::detail::grow(ctx.argmax_, batch * C), batch * C);
    forward(x.values(), batch, x.steps, x.lengths, Y, argmax);
    ctx.x_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {Y.data(), batch, C};
  }

  /// dX (the batch, steps, lengths and features of ctx's forward; padding rows 0), a view owned
  /// by ctx, from d_output (batch x C). uvp::invalid_argument without a completed forward in ctx,
  /// uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, ConstMatrixRef<T> d_output) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::backward";
    uvp::detail::nn_require_forward(where, ctx, "GlobalMaxPool1d");
    const SequenceBatch<T>& x = ctx.x_;
    uvp::detail::check_shape(where, "d_output", d_output.rows(), d_output.cols(), x.batch, x.features);
    uvp::detail::check_not_in_context<T>(where, "d_output", d_output, ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> dX(uvp::detail::grow(ctx.dx_, rows * x.features), rows, x.features);
    backward(d_output, Span<const index>(ctx.argmax_.data(), x.batch * x.features), dX);
    return {ConstMatrixView<T>(dX.data(), rows, x.features), x.batch, x.steps, x.lengths};
  }

  /// kind "GlobalMaxPool1d", no arguments.
  BlockSpec spec() const { return BlockSpec(kind); }
  static GlobalMaxPool1d from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::GlobalMaxPool1d::from_spec", s, kind);
    return GlobalMaxPool1d();
  }

  // Low-level forms: the caller's buffers.

  /// X: (batch * seq_len) x C, finite at valid steps; Y: batch x C; argmax: batch * C entries,
  /// receives the row of X each maximum came from (what backward needs).
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y,
               Span<index> argmax) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::forward";
    const index C = X.cols();
    uvp::detail::check_sequence_batch<T>(where, X, C, batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch, C);
    uvp::detail::check_size(where, "argmax", argmax.size(), batch * C);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b], r0 = b * seq_len;
      T* y = Y.row(b).data();
      index* arg = argmax.data() + b * C;
      const T* x0 = X.row(r0).data();
      for (index c = 0; c < C; ++c) {
        y[c] = x0[c];
        arg[c] = r0;
      }
      for (index r = r0 + 1; r < r0 + n; ++r) {
        const T* x = X.row(r).data();
        for (index c = 0; c < C; ++c)
          if (x[c] > y[c]) {
            y[c] = x[c];
            arg[c] = r;
          }
      }
    }
  }

  /// Allocating form: returns Y (batch x C) and resizes argmax to batch * C.
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
                    std::vector<index>& argmax) const {
    Matrix<T> Y(batch > 0 ? batch : 0, X.cols());
    argmax.resize(static_cast<std::size_t>(Y.size()));
    forward(X, batch, seq_len, lengths, Y, as_span(argmax));
    return Y;
  }

  /// dX = 0 except dX(argmax[b C + c], c) = dY(b, c). dY: batch x C; argmax: from forward;
  /// dX: (batch * seq_len) x C (written).
  void backward(ConstMatrixRef<T> dY, Span<const index> argmax, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::GlobalMaxPool1d::backward";
    const index batch = dY.rows(), C = dY.cols();
    const index L = uvp::detail::check_pool_backward_1d(where, batch, C, dX.rows(), dX.cols());
    uvp::detail::check_size(where, "argmax", argmax.size(), batch * C);
    for (index b = 0; b < batch; ++b)
      for (index c = 0; c < C; ++c) {
        const index r = argmax[b * C + c];
        if (r < b * L || r >= (b + 1) * L)
          uvp::detail::raise<out_of_range_error>(where, ": argmax[", b * C + c, "] = ", r,
                                                 " is not a row of sequence ", b, " [", b * L, ", ",
                                                 (b + 1) * L, ")");
      }
    dX.setZero();
    for (index b = 0; b < batch; ++b)
      for (index c = 0; c < C; ++c) dX(argmax[b * C + c], c) = dY(b, c);
  }
};

/// Mean over the valid steps of each sequence and channel (see the top of this file).
template <class T, class Backend = cpu>
class GlobalMeanPool1d : public Block<T> {
  static_assert(is_scalar_v<T>, "uvp::nn::GlobalMeanPool1d: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::GlobalMeanPool1d: only the uvp::cpu backend is implemented; use "
                "GlobalMeanPool1d<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = SequenceBatch<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "GlobalMeanPool1d";

  /// What forward keeps for backward (a view of x) and the output buffers. One per thread; its
  /// buffers only grow.
  class Context : public uvp::detail::NnContextBase {
   private:
    friend class GlobalMeanPool1d;
    uvp::detail::AlignedBuffer<T> y_, dx_;
    SequenceBatch<T> x_;
  };

  /// Any number of channels C (-1); C out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::GlobalMeanPool1d::output_width", in);
    return in;
  }

  /// Y (x.batch x x.features), a view owned by ctx (valid until its next forward); ctx keeps a
  /// view of x. Checks and messages are the low-level forward's. Const and thread-safe.
  ConstMatrixView<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::forward";
    uvp::detail::nn_begin_forward(ctx, {});  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, "x", x);
    uvp::detail::check_not_in_context<T>(where, "x", x.values(), ctx.y_, ctx.dx_);
    const index batch = x.batch, C = x.features;
    MatrixView<T> Y(uvp::detail::grow(ctx.y_, batch * C), batch, C);
    forward(x.values(), batch, x.steps, x.lengths, Y);
    ctx.x_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {Y.data(), batch, C};
  }

  /// dX (the batch, steps, lengths and features of ctx's forward; padding rows 0), a view owned
  /// by ctx, from d_output (batch x C). uvp::invalid_argument without a completed forward in ctx,
  /// uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, ConstMatrixRef<T> d_output) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::backward";
    uvp::detail::nn_require_forward(where, ctx, "GlobalMeanPool1d");
    const SequenceBatch<T>& x = ctx.x_;
    uvp::detail::check_shape(where, "d_output", d_output.rows(), d_output.cols(), x.batch, x.features);
    uvp::detail::check_not_in_context<T>(where, "d_output", d_output, ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> dX(uvp::detail::grow(ctx.dx_, rows * x.features), rows, x.features);
    backward(d_output, x.lengths, dX);
    return {ConstMatrixView<T>(dX.data(), rows, x.features), x.batch, x.steps, x.lengths};
  }

  /// kind "GlobalMeanPool1d", no arguments.
  BlockSpec spec() const { return BlockSpec(kind); }
  static GlobalMeanPool1d from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::GlobalMeanPool1d::from_spec", s, kind);
    return GlobalMeanPool1d();
  }

  // Low-level forms: the caller's buffers.

  /// X: (batch * seq_len) x C, finite at valid steps; Y: batch x C.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::forward";
    const index C = X.cols();
    uvp::detail::check_sequence_batch<T>(where, X, C, batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch, C);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b];
      auto y = Y.row(b);
      y = X.row(b * seq_len);
      for (index r = b * seq_len + 1; r < b * seq_len + n; ++r) y += X.row(r);
      y *= T(1) / T(n);
    }
  }

  /// Allocating form: returns Y (batch x C).
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths = {}) const {
    Matrix<T> Y(batch > 0 ? batch : 0, X.cols());
    forward(X, batch, seq_len, lengths, Y);
    return Y;
  }

  /// dX(b L + t, c) = dY(b, c) / n_b for t < n_b, 0 at padding steps. dY: batch x C; lengths:
  /// those of forward; dX: (batch * L) x C (written).
  void backward(ConstMatrixRef<T> dY, Span<const index> lengths, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::GlobalMeanPool1d::backward";
    const index batch = dY.rows();
    const index L = uvp::detail::check_pool_backward_1d(where, batch, dY.cols(), dX.rows(), dX.cols());
    if (batch == 0) {
      uvp::detail::check_size(where, "lengths", lengths.size(), lengths.empty() ? 0 : batch);
      return;
    }
    uvp::detail::check_sequence_batch<T>(where, dX, dX.cols(), batch, L, lengths);
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? L : lengths[b];
      const T inv = T(1) / T(n);
      for (index t = 0; t < n; ++t) dX.row(b * L + t) = dY.row(b) * inv;
      dX.middleRows(b * L + n, L - n).setZero();
    }
  }
};


/// The value at the last valid step of each sequence (see the top of this file): the pooling of
/// a recurrent encoder's output, what Lstm::Context::last_hidden() gives.
template <class T, class Backend = cpu>
class GlobalLastPool1d : public Block<T> {
  static_assert(is_scalar_v<T>, "uvp::nn::GlobalLastPool1d: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::GlobalLastPool1d: only the uvp::cpu backend is implemented; use "
                "GlobalLastPool1d<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = SequenceBatch<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "GlobalLastPool1d";
  /// Reads only each sequence's last valid step: a Chain in eval mode lets a recurrent block
  /// before it run its no-history inference path (forward_last) instead.
  static constexpr bool selects_last_step = true;

  /// What forward keeps for backward (a view of x) and the output buffers. One per thread; its
  /// buffers only grow.
  class Context : public uvp::detail::NnContextBase {
   private:
    friend class GlobalLastPool1d;
    uvp::detail::AlignedBuffer<T> y_, dx_;
    SequenceBatch<T> x_;
  };

  /// Any number of channels C (-1); C out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::GlobalLastPool1d::output_width", in);
    return in;
  }

  /// Y (x.batch x x.features), a view owned by ctx (valid until its next forward); ctx keeps a
  /// view of x. Checks and messages are the low-level forward's. Const and thread-safe.
  ConstMatrixView<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::GlobalLastPool1d::forward";
    uvp::detail::nn_begin_forward(ctx, {});  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, "x", x);
    uvp::detail::check_not_in_context<T>(where, "x", x.values(), ctx.y_, ctx.dx_);
    const index batch = x.batch, C = x.features;
    MatrixView<T> Y(uvp::detail::grow(ctx.y_, batch * C), batch, C);
    forward(x.values(), batch, x.steps, x.lengths, Y);
    ctx.x_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {Y.data(), batch, C};
  }

  /// dX (the batch, steps, lengths and features of ctx's forward; padding rows 0), a view owned
  /// by ctx, from d_output (batch x C). uvp::invalid_argument without a completed forward in ctx,
  /// uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, ConstMatrixRef<T> d_output) const {
    constexpr const char* where = "uvp::nn::GlobalLastPool1d::backward";
    uvp::detail::nn_require_forward(where, ctx, "GlobalLastPool1d");
    const SequenceBatch<T>& x = ctx.x_;
    uvp::detail::check_shape(where, "d_output", d_output.rows(), d_output.cols(), x.batch, x.features);
    uvp::detail::check_not_in_context<T>(where, "d_output", d_output, ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> dX(uvp::detail::grow(ctx.dx_, rows * x.features), rows, x.features);
    backward(d_output, x.lengths, dX);
    return {ConstMatrixView<T>(dX.data(), rows, x.features), x.batch, x.steps, x.lengths};
  }

  /// kind "GlobalLastPool1d", no arguments.
  BlockSpec spec() const { return BlockSpec(kind); }
  static GlobalLastPool1d from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::GlobalLastPool1d::from_spec", s, kind);
    return GlobalLastPool1d();
  }

  // Low-level forms: the caller's buffers.

  /// X: (batch * seq_len) x C, finite at each sequence's last valid step; Y: batch x C.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y) const {
    constexpr const char* where = "uvp::nn::GlobalLastPool1d::forward";
    uvp::detail::check_sequence_batch<T>(where, X, X.cols(), batch, seq_len, lengths);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch, X.cols());
    // Only these rows are read, so only they must be finite.
    for (index b = 0; b < batch; ++b) uvp::detail::nn_check_finite_row<T>(where, "X", X, last_row(b, seq_len, lengths));
    for (index b = 0; b < batch; ++b) Y.row(b) = X.row(last_row(b, seq_len, lengths));
  }

  /// Allocating form: returns Y (batch x C).
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths = {}) const {
    Matrix<T> Y(batch > 0 ? batch : 0, X.cols());
    forward(X, batch, seq_len, lengths, Y);
    return Y;
  }

  /// dX(b L + n_b - 1, c) = dY(b, c), 0 elsewhere. dY: batch x C; lengths: those of forward;
  /// dX: (batch * L) x C (written).
  void backward(ConstMatrixRef<T> dY, Span<const index> lengths, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::GlobalLastPool1d::backward";
    const index batch = dY.rows();
    const index L = uvp::detail::check_pool_backward_1d(where, batch, dY.cols(), dX.rows(), dX.cols());
    if (batch == 0) {
      uvp::detail::check_size(where, "lengths", lengths.size(), lengths.empty() ? 0 : batch);
      return;
    }
    uvp::detail::check_sequence_batch<T>(where, dX, dX.cols(), batch, L, lengths);
    dX.setZero();
    for (index b = 0; b < batch; ++b) dX.row(last_row(b, L, lengths)) = dY.row(b);
  }

 private:
  static index last_row(index b, index seq_len, Span<const index> lengths) noexcept {
    return b * seq_len + (lengths.empty() ? seq_len : lengths[b]) - 1;
  }
};

}  // namespace uvp::nn
