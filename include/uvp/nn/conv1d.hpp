// SPDX-License-Identifier: Apache-2.0
// 1-D convolution over time (torch.nn.Conv1d) on batch-first, channels-last sequences.
//
//   X  (batch * L) x C_in,  row b * L + t        input (PyTorch's (batch, C_in, L), transposed)
//   W  (C_out, C_in, k)     tensor "weight"      b  (C_out)  tensor "bias" (optional)
//   Y  (batch * L_out) x C_out, row b * L_out + t,   L_out = floor((L + 2p - k) / s) + 1
//
//   Y(b, t, o) = b_o + sum_{c, j} W(o, c, j) X(b, t s - p + j, c)
//
// with zero padding: X(b, u, c) = 0 for u < 0, u >= L, and (with lengths) u >= lengths[b].
// Computed as im2col + one GEMM: the (batch * L_out) x (k C_in) patch matrix A (column j C_in + c
// holds X(b, t s - p + j, c)) times W^T permuted to the same (j, c) order, by
// detail::row_product: an output step is bit for bit the same in any batch (docs/concepts.md).
//
// Variable lengths: sequence b has n_b = lengths[b] valid steps; the steps past n_b are read as 0
// whatever they hold, so the valid outputs are exactly what PyTorch gives for the sequence cut to
// n_b steps. Output sequence b has
//
//   m_b = floor((n_b + 2p - k) / s) + 1   valid rows (Context::output_lengths()),
//
// rows t >= m_b of Y are written 0 and the gradient arriving there is ignored. n_b + 2p < k
// (a sequence shorter than one kernel window) is an error, as it is in PyTorch.
//
// Backward, from dY (batch * L_out) x C_out:  dW += dY^T A (permuted back to (o, c, j)),
// db += colsum(dY), dX = col2im(dY W) (written; 0 at padding steps). Initialisation is PyTorch's:
// W and b ~ U(-1/sqrt(C_in k), 1/sqrt(C_in k)) (kaiming_uniform_ with a = sqrt(5)).
//
// The layer contract (uvp/nn/layer.hpp), SequenceBatch<T> -> SequenceBatch<T>:
//
//   SequenceBatch<T> y = conv.forward(x, ctx);      // x.batch, L_out steps, lengths m_b, C_out
//   SequenceBatch<T> dx = conv.backward(ctx, d_y);  // accumulates dW, db
//
// y's lengths are the m_b above (empty when x has none); with stride 1 and padding (k - 1) / 2
// for an odd k ("same"), L_out = L and m_b = n_b. Both results are views owned by ctx (valid
// until its next forward); ctx keeps a view of x. The low-level forms take the caller's buffers:
// forward(X, batch, seq_len, lengths, Y, ctx) and backward(X, dY, dX, ctx).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/row_product_math.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

/// Stride, padding and bias of a Conv1d; the defaults are PyTorch's.
struct Conv1dOptions {
  index stride = 1;   ///< >= 1
  index padding = 0;  ///< zeros added on both ends of every sequence, >= 0
  bool bias = true;   ///< false: no "bias" tensor (torch's bias=False)
};

template <class T, class Backend = cpu>
class Conv1d : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Conv1d: only the uvp::cpu backend is implemented; use Conv1d<T, uvp::cpu>");

  using Buffer = uvp::detail::AlignedBuffer<T>;

 public:
  using backend_type = Backend;
  using input_type = SequenceBatch<T>;
  using output_type = SequenceBatch<T>;
  static constexpr const char* kind = "Conv1d";

  /// What forward saves for backward (the patch matrix) and backward's scratch. Owned by the
  /// caller, one per thread for concurrent forwards; its buffers only grow, so once the largest
  /// batch has been seen neither forward nor backward allocates.
  class Context : public uvp::detail::NnContextBase {
   public:
    index batch() const noexcept { return batch_; }
    index seq_len() const noexcept { return seq_len_; }
    index out_len() const noexcept { return out_len_; }
    /// Valid output steps m_b of each sequence of the last forward: empty when it had no lengths
    /// (all out_len()) or did not complete, else batch values in [1, out_len()]. Pass them on to
    /// the next block.
    Span<const index> output_lengths() const noexcept {
      return has_lengths_ && holds_forward() ? as_span(out_lengths_) : Span<const index>();
    }

   private:
    friend class Conv1d;
    index batch_ = 0, seq_len_ = 0, out_len_ = 0;
    bool has_lengths_ = false;
    std::vector<index> lengths_, out_lengths_;  // always batch values (seq_len / out_len when full)
    Buffer cols_, w2_;                          // forward: patches, permuted weight
    Buffer dy_, dcols_, dw2_;                   // backward scratch
    Buffer y_, dx_;                             // the contract forms' Y and dX
    SequenceBatch<T> in_;                       // the contract forward's x
  };

  /// in_channels, out_channels, kernel_size >= 1; see Conv1dOptions for the rest.
  Conv1d(index in_channels, index out_channels, index kernel_size, Rng& rng, Conv1dOptions options = {})
      : in_(in_channels), out_(out_channels), k_(kernel_size), stride_(options.stride),
        padding_(options.padding), has_bias_(options.bias) {
    constexpr const char* where = "uvp::nn::Conv1d";
    uvp::detail::check_positive(where, "in_channels", in_channels);
    uvp::detail::check_positive(where, "out_channels", out_channels);
    uvp::detail::check_positive(where, "kernel_size", kernel_size);
    uvp::detail::check_positive(where, "stride", options.stride);
    uvp::detail::check_non_negative(where, "padding", options.padding);
    weight_ = this->add_tensor("weight", {out_channels, in_channels, kernel_size});
    if (has_bias_) bias_ = this->add_tensor("bias", {out_channels});
    this->allocate_parameters();
    const double bound = 1.0 / std::sqrt(double(in_channels * kernel_size));
    init::uniform(this->values(this->tensors()[weight_]), -bound, bound, rng);
    if (has_bias_) init::uniform(this->values(this->tensors()[bias_]), -bound, bound, rng);
  }

  index in_channels() const noexcept { return in_; }
  index out_channels() const noexcept { return out_; }
  index kernel_size() const noexcept { return k_; }
  index stride() const noexcept { return stride_; }
  index padding() const noexcept { return padding_; }
  bool has_bias() const noexcept { return has_bias_; }

  /// L_out = floor((L + 2p - k) / s) + 1 for an input of L steps; uvp::invalid_argument when
  /// L + 2p < k (no complete window).
  index output_length(index seq_len) const {
    if (seq_len + 2 * padding_ < k_)
      uvp::detail::raise<invalid_argument>("uvp::nn::Conv1d: seq_len ", seq_len, " + 2 * padding ", padding_,
                                           " is shorter than kernel_size ", k_);
    return (seq_len + 2 * padding_ - k_) / stride_ + 1;
  }

  /// W flat in PyTorch's (C_out, C_in, k) order, and b (empty without bias).
  Span<T> weight() noexcept { return this->values(this->tensors()[weight_]); }
  Span<const T> weight() const noexcept { return this->values(this->tensors()[weight_]); }
  Span<T> bias() noexcept { return has_bias_ ? this->values(this->tensors()[bias_]) : Span<T>(); }
  Span<const T> bias() const noexcept {
    return has_bias_ ? this->values(this->tensors()[bias_]) : Span<const T>();
  }
  Span<const T> weight_grad() const noexcept { return this->grads(this->tensors()[weight_]); }
  Span<const T> bias_grad() const noexcept {
    return has_bias_ ? this->grads(this->tensors()[bias_]) : Span<const T>();
  }

  /// C_in features in, C_out out; output_width raises uvp::shape_error for in other than C_in
  /// (or -1).
  index input_width() const noexcept { return in_; }
  index output_width(index in) const {
    if (in != -1 && in != in_) uvp::detail::nn_width_mismatch("uvp::nn::Conv1d::output_width", "Conv1d", in, in_);
    return out_;
  }

  /// Y = conv(x): x.batch sequences of L_out steps with lengths m_b (see the top of this file),
  /// C_out features. Checks and messages are the low-level forward's. Const and thread-safe:
  /// writes only ctx.
  SequenceBatch<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Conv1d::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_batch_sizes(where, "x", x);
    uvp::detail::check_not_in_context<T>(where, "x", x.values(), ctx.y_, ctx.dx_);
    if (x.steps < 1) uvp::detail::raise<invalid_argument>(where, ": seq_len must be >= 1, got ", x.steps);
    const index lout = output_length(x.steps), rows = x.batch * lout;
    MatrixView<T> Y(uvp::detail::grow(ctx.y_, rows * out_), rows, out_);
    forward(x.values(), x.batch, x.steps, x.lengths, Y, ctx);
    ctx.in_ = x;
    return {ConstMatrixView<T>(Y.data(), rows, out_), x.batch, lout, ctx.output_lengths()};
  }

  /// dX (the shape of ctx's forward input, 0 at padding steps) from d_output (the shape of its
  /// output; rows past m_b ignored); dW and db are accumulated. uvp::invalid_argument without a
  /// completed forward in ctx, uvp::shape_error for another shape.
  SequenceBatch<T> backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::Conv1d::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Conv1d", &s);
    const SequenceBatch<T>& x = ctx.in_;
    uvp::detail::check_batch_sizes(where, "d_output", d_output);
    uvp::detail::check_sequence_shape(where, "d_output", d_output.batch, d_output.steps, d_output.features,
                                      ctx.batch_, ctx.out_len_, out_);
    uvp::detail::check_not_in_context<T>(where, "d_output", d_output.values(), ctx.dx_);
    const index rows = x.batch * x.steps;
    MatrixView<T> dX(uvp::detail::grow(ctx.dx_, rows * in_), rows, in_);
    backward(x.values(), d_output.values(), dX, ctx);
    return {ConstMatrixView<T>(dX.data(), rows, in_), x.batch, x.steps, x.lengths};
  }

  /// kind "Conv1d", args in_channels, out_channels, kernel_size, stride, padding, bias (0 / 1).
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.set("in_channels", double(in_)).set("out_channels", double(out_)).set("kernel_size", double(k_));
    s.set("stride", double(stride_)).set("padding", double(padding_)).set("bias", has_bias_ ? 1.0 : 0.0);
    return s;
  }
  /// The block spec() describes, initialised from a fixed seed (the weights are loaded after).
  static Conv1d from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::Conv1d::from_spec", s, kind);
    constexpr index max = uvp::detail::nn_spec_max_size;
    uvp::Rng rng;
    Conv1dOptions o;
    o.stride = s.get_index("stride", -max, max);
    o.padding = s.get_index("padding", -max, max);
    o.bias = s.get_bool("bias");
    return Conv1d(s.get_index("in_channels", -max, max), s.get_index("out_channels", -max, max),
                  s.get_index("kernel_size", -max, max), rng, o);
  }

  // Low-level forms: the caller's buffers.

  /// Y = conv(X). X: (batch * seq_len) x C_in, finite at valid steps; lengths: empty (all
  /// seq_len) or batch values in [1, seq_len]; Y: (batch * L_out) x C_out. Const and thread-safe:
  /// writes only Y and ctx.
  void forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths, MatrixRef<T> Y,
               Context& ctx) const {
    constexpr const char* where = "uvp::nn::Conv1d::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_sequence_batch<T>(where, X, in_, batch, seq_len, lengths);
    const index lout = output_length(seq_len);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), batch * lout, out_);
    uvp::detail::check_finite_steps<T>(where, "X", X, batch, seq_len, lengths);
    prepare(where, ctx, batch, seq_len, lout, lengths);

    const index K = k_ * in_, rows = batch * lout;
    im2col(X, ctx);
    // W (o, c, j) -> w2 (o, j C_in + c): the column order of the patches.
    const T* w = weight().data();
    T* w2 = ctx.w2_.data();
    for (index o = 0; o < out_; ++o)
      for (index c = 0; c < in_; ++c)
        for (index j = 0; j < k_; ++j) w2[o * K + j * in_ + c] = w[(o * in_ + c) * k_ + j];

    // One kernel for any number of rows: an output step depends on its patch alone, whatever
    // the batch around it (detail/row_product_math.hpp).
    const ConstMatrixView<T> A(ctx.cols_.data(), rows, K);
    uvp::detail::row_product_wt<T>(A, w2, out_, has_bias_ ? bias().data() : nullptr, Y);
    if (ctx.has_lengths_)
      for (index b = 0; b < batch; ++b) {
        const index m = ctx.out_lengths_[static_cast<std::size_t>(b)];
        Y.middleRows(b * lout + m, lout - m).setZero();
      }
    uvp::detail::nn_end_forward(ctx);
  }

  /// Allocating form: returns Y as a new (batch * L_out) x C_out matrix.
  Matrix<T> forward(ConstMatrixRef<T> X, index batch, index seq_len, Span<const index> lengths,
                    Context& ctx) const {
    Matrix<T> Y(std::max<index>(batch, 0) * output_length(seq_len), out_);
    forward(X, batch, seq_len, lengths, Y, ctx);
    return Y;
  }

  /// Accumulates dW and db from dY ((batch * L_out) x C_out, finite at valid rows) and writes
  /// dX ((batch * seq_len) x C_in; 0 at padding steps). X is the forward input (its shape is
  /// checked; the patches were saved in ctx by the forward call that filled it).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, MatrixRef<T> dX, Context& ctx) {
    constexpr const char* where = "uvp::nn::Conv1d::backward";
    check_backward(where, X, dY, ctx);
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), X.rows(), in_);
    backward_impl(dY, &dX, ctx);
  }

  /// Parameter gradients only (the first block of a network needs no dX).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, Context& ctx) {
    check_backward("uvp::nn::Conv1d::backward", X, dY, ctx);
    backward_impl(dY, nullptr, ctx);
  }

 private:
  void prepare(const char* where, Context& ctx, index batch, index seq_len, index lout,
               Span<const index> lengths) const {
    ctx.batch_ = batch;
    ctx.seq_len_ = seq_len;
    ctx.out_len_ = lout;
    ctx.has_lengths_ = !lengths.empty();
    ctx.lengths_.resize(static_cast<std::size_t>(batch));
    ctx.out_lengths_.resize(static_cast<std::size_t>(batch));
    for (index b = 0; b < batch; ++b) {
      const index n = lengths.empty() ? seq_len : lengths[b];
      if (n + 2 * padding_ < k_) {
        uvp::detail::raise<invalid_argument>(where, ": lengths[", b, "] = ", n, " + 2 * padding ", padding_,
                                             " is shorter than kernel_size ", k_);
      }
      ctx.lengths_[static_cast<std::size_t>(b)] = n;
      ctx.out_lengths_[static_cast<std::size_t>(b)] = (n + 2 * padding_ - k_) / stride_ + 1;
    }
    uvp::detail::grow(ctx.cols_, batch * lout * k_ * in_);
    uvp::detail::grow(ctx.w2_, out_ * k_ * in_);
  }

  /// Patch row b * L_out + t, block j: X row b * L + (t s - p + j), or zeros outside [0, n_b) and
  /// for t >= m_b (so padded output rows contribute nothing to dW).
  void im2col(const ConstMatrixRef<T>& X, Context& ctx) const {
    const index batch = ctx.batch_, L = ctx.seq_len_, lout = ctx.out_len_, C = in_, K = k_ * in_;
    const index s = stride_, p = padding_, k = k_;
    const index* len = ctx.lengths_.data();
    const index* mlen = ctx.out_lengths_.data();
    T* const cols = ctx.cols_.data();
    const T* const x = X.data();
    const index ld = X.outerStride();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (batch > 1 && batch * lout * K >= (index(1) << 16))
#endif
    for (index b = 0; b < batch; ++b) {
      const index n = len[b], m = mlen[b];
      for (index t = 0; t < lout; ++t) {
        T* row = cols + (b * lout + t) * K;
        if (t >= m) {
          std::fill(row, row + K, T(0));
          continue;
        }
        for (index j = 0; j < k; ++j) {
          const index u = t * s - p + j;
          if (u < 0 || u >= n)
            std::fill(row + j * C, row + (j + 1) * C, T(0));
          else
            std::memcpy(row + j * C, x + (b * L + u) * ld, static_cast<std::size_t>(C) * sizeof(T));
        }
      }
    }
  }

  void check_backward(const char* where, const ConstMatrixRef<T>& X, const ConstMatrixRef<T>& dY,
                      const Context& ctx) const {
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Conv1d", &s);
    uvp::detail::check_shape(where, "X", X.rows(), X.cols(), ctx.batch_ * ctx.seq_len_, in_);
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), ctx.batch_ * ctx.out_len_, out_);
    uvp::detail::check_finite_steps<T>(where, "dY", dY, ctx.batch_, ctx.out_len_, ctx.output_lengths());
  }

  void backward_impl(const ConstMatrixRef<T>& dY, MatrixRef<T>* dX, Context& ctx) {
    const index batch = ctx.batch_, L = ctx.seq_len_, lout = ctx.out_len_, C = in_, K = k_ * in_;
    const index rows = batch * lout;
    if (batch == 0) return;  // an empty batch: no gradient, parameters untouched
    // Rows past m_b may hold anything: use a copy with them zeroed, so they add nothing.
    const T* dy_data = dY.data();
    index dy_ld = dY.outerStride();
    if (ctx.has_lengths_) {
      MatrixView<T> masked(uvp::detail::grow(ctx.dy_, rows * out_), rows, out_);
      for (index b = 0; b < batch; ++b) {
        const index m = ctx.out_lengths_[static_cast<std::size_t>(b)];
        masked.middleRows(b * lout, m) = dY.middleRows(b * lout, m);
        masked.middleRows(b * lout + m, lout - m).setZero();
      }
      dy_data = masked.data();
      dy_ld = out_;
    }
    const uvp::detail::ConstStridedView<T> dy(dy_data, rows, out_, Eigen::OuterStride<>(dy_ld));
    const ConstMatrixView<T> A(ctx.cols_.data(), rows, K);

    // dW2 = dY^T A (C_out x K), then added to dW in PyTorch's (o, c, j) order.
    MatrixView<T> dW2(uvp::detail::grow(ctx.dw2_, out_ * K), out_, K);
    dW2.noalias() = dy.transpose() * A;
    T* gw = this->grads(this->tensors()[weight_]).data();
    for (index o = 0; o < out_; ++o)
      for (index c = 0; c < C; ++c)
        for (index j = 0; j < k_; ++j) gw[(o * C + c) * k_ + j] += dW2(o, j * C + c);
    if (has_bias_) {
      auto gb = this->grads(this->tensors()[bias_]).as_vector();
      for (index r = 0; r < rows; ++r) gb += dy.row(r).transpose();
    }
    if (!dX) return;

    // dA = dY W2 (rows x K), scattered back onto the input steps each patch was read from.
    MatrixView<T> dA(uvp::detail::grow(ctx.dcols_, rows * K), rows, K);
    dA.noalias() = dy * ConstMatrixView<T>(ctx.w2_.data(), out_, K);
    MatrixRef<T>& dx = *dX;
    const index s = stride_, p = padding_, k = k_;
    const index* len = ctx.lengths_.data();
    const index* mlen = ctx.out_lengths_.data();
    const T* const da = dA.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (batch > 1 && rows * K >= (index(1) << 16))
#endif
    for (index b = 0; b < batch; ++b) {
      dx.middleRows(b * L, L).setZero();
      const index n = len[b], m = mlen[b];
      for (index t = 0; t < m; ++t) {
        const T* src = da + (b * lout + t) * K;
        for (index j = 0; j < k; ++j) {
          const index u = t * s - p + j;
          if (u < 0 || u >= n) continue;
          T* dst = dx.row(b * L + u).data();
          const T* g = src + j * C;
          for (index c = 0; c < C; ++c) dst[c] += g[c];
        }
      }
    }
  }

  uvp::detail::NnBlockShape shape() const noexcept {
    return {{"in_channels", in_}, {"out_channels", out_}, {"kernel_size", k_}, {"stride", stride_},
            {"padding", padding_}};
  }

  index in_, out_, k_, stride_, padding_;
  bool has_bias_;
  std::size_t weight_ = 0, bias_ = 0;
};

}  // namespace uvp::nn
