// SPDX-License-Identifier: Apache-2.0
// A residual connection around one block: y = x + block(x) (He et al. 2016, "Deep Residual
// Learning"; the "Add" of Vaswani et al. 2017's "Add & Norm", which a LayerNorm after it
// completes). The block keeps its width; its input and output are the same kind (rows or
// sequences).
//
//   nn::Residual(nn::MultiHeadSelfAttention<float>(32, 4, rng))   // x + attention(x)
//
// A composite: its block's tensors keep their own names under the Residual's
// ("2.in_proj_weight"), as if the wrapper were not there.
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

// The rows of a matrix or of a sequence batch, and the same kind re-built around new rows.
template <class T>
ConstMatrixView<T> layer_rows(const ConstMatrixView<T>& x) noexcept {
  return {x.data(), x.rows(), x.cols()};
}
template <class T>
ConstMatrixView<T> layer_rows(const nn::SequenceBatch<T>& x) noexcept {
  return x.values();
}
template <class T>
ConstMatrixView<T> layer_like(const ConstMatrixView<T>&, ConstMatrixView<T> rows) noexcept {
  return rows;
}
template <class T>
nn::SequenceBatch<T> layer_like(const nn::SequenceBatch<T>& x, ConstMatrixView<T> rows) {
  return nn::SequenceBatch<T>(rows, x.batch, x.steps, x.lengths);
}

}  // namespace uvp::detail

namespace uvp::nn {

template <class B>
class Residual {
  static_assert(check_layer<B>(), "uvp::nn::Residual: the block must fulfil the layer contract");
  static_assert(std::is_same_v<typename B::input_type, typename B::output_type>,
                "uvp::nn::Residual: the block's output must be of its input's kind (rows or sequences)");

 public:
  using value_type = typename B::value_type;
  using T = value_type;
  using input_type = typename B::input_type;
  using output_type = input_type;
  using arg_type = std::conditional_t<std::is_same_v<input_type, ConstMatrixView<T>>, ConstMatrixRef<T>, const input_type&>;
  static constexpr const char* kind = "Residual";
  static constexpr bool is_rows = std::is_same_v<input_type, ConstMatrixView<T>>;

  class Context : public uvp::detail::NnContextBase {
   public:
    Context() = default;
    explicit Context(std::uint64_t seed) : inner_(make(seed)) {}
    const typename B::Context& inner() const noexcept { return inner_; }

   private:
    friend class Residual;
    static typename B::Context make(std::uint64_t seed) {
      if constexpr (std::is_constructible_v<typename B::Context, std::uint64_t>)
        return typename B::Context(seed);
      else
        return typename B::Context();
    }
    typename B::Context inner_;
    uvp::detail::NnBuffer<T> out_, dx_;
  };

  /// block: must map w features to w features (checked when the width is known).
  explicit Residual(B block) : block_(std::move(block)) {
    const index w = block_.input_width();
    if (w >= 0) check_width(w);
  }

  B& block() noexcept { return block_; }
  const B& block() const noexcept { return block_; }

  index input_width() const { return block_.input_width(); }
  index output_width(index in) const {
    if (in >= 0) check_width(in);
    return in;
  }
  void train(bool on = true) noexcept { block_.train(on); }
  void eval() noexcept { train(false); }
  bool is_training() const noexcept { return block_.is_training(); }
  void collect_blocks(const std::string& prefix, BlockList<T>& list) { list.add(prefix, block_); }

  template <class S = B, class = decltype(std::declval<const S&>().spec())>
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.children.push_back(block_.spec());
    return s;
  }
  template <class S = B, class = decltype(S::from_spec(std::declval<const BlockSpec&>()))>
  static Residual from_spec(const BlockSpec& s) {
    if (s.kind != kind || s.children.size() != 1)
      uvp::detail::raise<format_error>("uvp::nn::Residual::from_spec: expected kind Residual with one child, got ",
                                       s.kind, " with ", s.children.size());
    return Residual(B::from_spec(s.children[0]));
  }

  /// y = x + block(x), owned by ctx (valid until its next forward).
  output_type forward(arg_type x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"width", block_.input_width()}});
    const auto fx = block_.forward(x, ctx.inner_);
    const ConstMatrixView<T> f = uvp::detail::layer_rows(fx);
    auto y = ctx.out_.matrix(f.rows(), f.cols());
    if constexpr (is_rows) {
      uvp::detail::check_shape("uvp::nn::Residual::forward", "block(x)", f.rows(), f.cols(), x.rows(), x.cols());
      y = x + f;
    } else {
      uvp::detail::check_shape("uvp::nn::Residual::forward", "block(x)", f.rows(), f.cols(), x.values().rows(),
                               x.values().cols());
      y = x.values() + f;
    }
    uvp::detail::nn_end_forward(ctx);
    return uvp::detail::layer_like(fx, ConstMatrixView<T>(y.data(), y.rows(), y.cols()));
  }

  /// d_input = d_output + the block's input gradient; the block's parameter gradients accumulate.
  output_type backward(Context& ctx, arg_type d_output) {
    constexpr const char* where = "uvp::nn::Residual::backward";
    uvp::detail::nn_require_forward(where, ctx, "Residual");
    const auto d_inner = block_.backward(ctx.inner_, d_output);
    const ConstMatrixView<T> g = uvp::detail::layer_rows(d_inner);
    auto dx = ctx.dx_.matrix(g.rows(), g.cols());
    if constexpr (is_rows)
      dx = d_output + g;
    else
      dx = d_output.values() + g;
    return uvp::detail::layer_like(d_inner, ConstMatrixView<T>(dx.data(), dx.rows(), dx.cols()));
  }

 private:
  void check_width(index w) const {
    const index out = block_.output_width(w);
    if (out != w)
      uvp::detail::raise<shape_error>("uvp::nn::Residual: the block (", B::kind, ") maps ", w, " features to ", out,
                                      "; a residual needs the same width");
  }
  B block_;
};

}  // namespace uvp::nn
