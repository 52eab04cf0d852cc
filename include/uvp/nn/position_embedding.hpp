// SPDX-License-Identifier: Apache-2.0
// Learned position embeddings: a table of max_steps vectors, one per step index, as PyTorch's
// idiom nn.Embedding(max_steps, dim)(torch.arange(steps)) broadcast over the batch (what a
// Transformer adds to its token embeddings, Vaswani et al. 2017 / BERT's learned variant).
//
// The layer contract (uvp/nn/layer.hpp), TokenBatch -> SequenceBatch<T>; only x.batch, x.steps
// and x.lengths are read, never the ids:
//
//   y  (batch * steps) x dim,  row b * steps + t = W[t]     (padding steps too: harmless, the
//                                                            blocks after it leave them out)
//   dW[t] += sum_b d_y[b * steps + t]                        (every row, as the forward's adjoint)
//
// Tensor "weight" {max_steps, dim}, with a dense gradient (the table is small). steps > max_steps
// is a uvp::out_of_range_error naming both. Weights are drawn N(0, 1), as torch.nn.Embedding's.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

/// One learned vector per step index t in [0, max_steps) (see the top of this file).
template <class T, class Backend = uvp::cpu>
class PositionEmbedding : public Block<T> {
  static_assert(std::is_same_v<Backend, uvp::cpu>,
                "uvp::nn::PositionEmbedding: only the uvp::cpu backend is implemented; use "
                "PositionEmbedding<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = TokenBatch;
  using output_type = SequenceBatch<T>;
  static constexpr const char* kind = "PositionEmbedding";

  /// What forward keeps for backward: its output rows and the batch's sizes. One per thread;
  /// the buffer only grows.
  class Context : public uvp::detail::NnContextBase {
   private:
    friend class PositionEmbedding;
    uvp::detail::AlignedBuffer<T> out_;
    index batch_ = 0, steps_ = 0;
  };

  /// max_steps, embedding_dim >= 1; the table is drawn N(0, 1) from rng.
  PositionEmbedding(index max_steps, index embedding_dim, uvp::Rng& rng) : max_(max_steps), dim_(embedding_dim) {
    constexpr const char* where = "uvp::nn::PositionEmbedding";
    uvp::detail::check_positive(where, "max_steps", max_steps);
    uvp::detail::check_positive(where, "embedding_dim", embedding_dim);
    this->add_tensor("weight", {max_steps, embedding_dim});
    this->allocate_parameters();
    uvp::detail::fill_standard_normal(this->values(this->tensors()[0]), rng);
  }

  index max_steps() const noexcept { return max_; }
  index embedding_dim() const noexcept { return dim_; }

  /// The table, max_steps x embedding_dim, and its accumulated gradient.
  ConstMatrixView<T> weight() const noexcept { return {this->values(this->tensors()[0]).data(), max_, dim_}; }
  MatrixView<T> weight() noexcept { return {this->values(this->tensors()[0]).data(), max_, dim_}; }
  ConstMatrixView<T> weight_grad() const noexcept { return {this->grads(this->tensors()[0]).data(), max_, dim_}; }

  /// Any input (-1: the ids are not read); rows of embedding_dim values out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::PositionEmbedding::output_width", in);
    return dim_;
  }

  /// y (x.batch * x.steps) x embedding_dim, row b * steps + t = W[t], with the batch, steps and
  /// lengths of x. The view is owned by ctx (valid until its next forward). Const and thread-safe.
  SequenceBatch<T> forward(const TokenBatch& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::PositionEmbedding::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_token_lengths(where, x);
    if (x.steps > max_)
      uvp::detail::raise<out_of_range_error>(where, ": x.steps = ", x.steps, " exceeds max_steps = ", max_);
    const index n = x.batch * x.steps, block = x.steps * dim_;
    T* out = uvp::detail::grow(ctx.out_, n * dim_);
    // Rows 0 .. steps - 1 of W are contiguous: one copy per sequence.
    const T* w = this->values(this->tensors()[0]).data();
    for (index b = 0; b < x.batch; ++b) std::copy(w, w + block, out + b * block);
    ctx.batch_ = x.batch;
    ctx.steps_ = x.steps;
    uvp::detail::nn_end_forward(ctx);
    return {ConstMatrixView<T>(out, n, dim_), x.batch, x.steps, x.lengths};
  }

  /// dW[t] += sum_b d_output[b * steps + t] over every row of d_output (the batch, steps and
  /// embedding_dim of ctx's forward). uvp::invalid_argument without a completed forward in ctx,
  /// uvp::shape_error for another shape.
  NoGradient backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::PositionEmbedding::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "PositionEmbedding", &s);
    uvp::detail::check_batch_sizes(where, "d_output", d_output);
    uvp::detail::check_sequence_shape(where, "d_output", d_output.batch, d_output.steps, d_output.features,
                                      ctx.batch_, ctx.steps_, dim_);
    const index steps = ctx.steps_;
    MatrixView<T> g(this->grads(this->tensors()[0]).data(), steps, dim_);
    const ConstMatrixView<T> d = d_output.values();
    for (index b = 0; b < ctx.batch_; ++b) g += d.middleRows(b * steps, steps);
    return {};
  }

  /// kind "PositionEmbedding", args max_steps, embedding_dim.
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.set("max_steps", double(max_)).set("embedding_dim", double(dim_));
    return s;
  }
  /// The block spec() describes, its table drawn from a fixed seed (the weights are loaded after).
  static PositionEmbedding from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::PositionEmbedding::from_spec", s, kind);
    constexpr index max = uvp::detail::nn_spec_max_size;
    uvp::Rng rng;
    return PositionEmbedding(s.get_index("max_steps", -max, max), s.get_index("embedding_dim", -max, max), rng);
  }

 private:
  uvp::detail::NnBlockShape shape() const noexcept { return {{"max_steps", max_}, {"embedding_dim", dim_}}; }

  index max_, dim_;
};

}  // namespace uvp::nn
