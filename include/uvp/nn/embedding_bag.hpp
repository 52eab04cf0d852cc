// SPDX-License-Identifier: Apache-2.0
// Bags of embeddings pooled by sum or mean (torch.nn.EmbeddingBag(mode="sum" / "mean",
// sparse=True)) as a block of the layer contract: TokenBags -> ConstMatrixView<T>.
//
//   Matrix y = bag.forward(TokenBags{ids, offsets}, ctx);   // bags x embedding_dim
//   bag.backward(ctx, d_y);                                 // accumulates the sparse gradient
//
// Bag b holds ids[offsets[b] .. offsets[b + 1]) (the last bag to the end of ids); padding_idx is
// left out of the sum and of the mean's count; an empty bag gives a row of zeros. The formulas,
// checks and messages are Embedding::forward_bag's and backward_bag's, which this block calls:
// it is an Embedding (tensor "weight" {num_embeddings, embedding_dim}, sparse gradient) with a
// mode, whose forward and backward take bags.
#pragma once

#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

/// An Embedding looked up by bags of ids and pooled per bag (see the top of this file).
template <class T, class Backend = uvp::cpu>
class EmbeddingBag : public Embedding<T, Backend> {
  using Base = Embedding<T, Backend>;

 public:
  using input_type = TokenBags;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "EmbeddingBag";

  /// What forward keeps for backward: its output rows and a view of its bags. One per thread;
  /// the buffer only grows.
  class Context : public uvp::detail::NnContextBase {
   private:
    friend class EmbeddingBag;
    uvp::detail::AlignedBuffer<T> out_;
    TokenBags x_;
  };

  /// As Embedding's constructor (weights N(0, 1), row padding_idx 0), plus the pooling mode
  /// (torch's default: mean).
  EmbeddingBag(index num_embeddings, index embedding_dim, uvp::Rng& rng, BagMode mode = BagMode::mean,
               index padding_idx = -1)
      : Base(num_embeddings, embedding_dim, rng, padding_idx), mode_(mode) {
    if (mode != BagMode::sum && mode != BagMode::mean)
      uvp::detail::raise<invalid_argument>("uvp::nn::EmbeddingBag: mode = ", int(mode), " is not sum (0) or mean (1)");
  }

  BagMode mode() const noexcept { return mode_; }

  /// Any number of ids per bag (-1); rows of embedding_dim values out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::EmbeddingBag::output_width", in);
    return this->embedding_dim();
  }

  /// y (bags x embedding_dim) = forward_bag(x.ids, x.offsets, mode()). The view is owned by ctx
  /// (valid until its next forward); ctx keeps a view of x. Const and thread-safe.
  ConstMatrixView<T> forward(const TokenBags& x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    const index bags = x.offsets.size(), d = this->embedding_dim();
    MatrixView<T> out(uvp::detail::grow(ctx.out_, bags * d), bags, d);
    this->forward_bag(x.ids, x.offsets, mode_, out);
    ctx.x_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {out.data(), bags, d};
  }

  /// Accumulates the sparse gradient of ctx's forward from d_output (bags x embedding_dim), as
  /// backward_bag does. uvp::invalid_argument without a completed forward in ctx,
  /// uvp::shape_error for another shape.
  NoGradient backward(Context& ctx, ConstMatrixRef<T> d_output) {
    constexpr const char* where = "uvp::nn::EmbeddingBag::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "EmbeddingBag", &s);
    uvp::detail::check_shape(where, "d_output", d_output.rows(), d_output.cols(), ctx.x_.offsets.size(),
                             this->embedding_dim());
    this->backward_bag(ctx.x_.ids, ctx.x_.offsets, mode_, d_output);
    return {};
  }

  /// kind "EmbeddingBag", args num_embeddings, embedding_dim, padding_idx, mode (0 sum, 1 mean).
  BlockSpec spec() const {
    BlockSpec s = Base::spec();
    s.kind = kind;
    s.set("mode", double(static_cast<int>(mode_)));
    return s;
  }
  /// The block spec() describes, its table drawn from a fixed seed (the weights are loaded after).
  static EmbeddingBag from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::EmbeddingBag::from_spec", s, kind);
    constexpr index max = uvp::detail::nn_spec_max_size;
    uvp::Rng rng;
    return EmbeddingBag(s.get_index("num_embeddings", -max, max), s.get_index("embedding_dim", -max, max), rng,
                        static_cast<BagMode>(s.get_index("mode", 0, 1)), s.get_index("padding_idx", -max, max));
  }

 private:
  uvp::detail::NnBlockShape shape() const noexcept {
    return {{"num_embeddings", this->num_embeddings()}, {"embedding_dim", this->embedding_dim()},
            {"mode", index(mode_)}};
  }

  BagMode mode_;
};

}  // namespace uvp::nn
