// SPDX-License-Identifier: Apache-2.0
// Two blocks on the same input, their outputs added: y = a(x) + b(x). The seed models' token
// and position embeddings (Vaswani et al. 2017, section 3.5; BERT's input embeddings):
//
//   nn::Sum(nn::Embedding<float>(85, 32, rng, 0), nn::PositionEmbedding<float>(max_len, 32, rng))
//
// Both blocks read the same kind of input and give the same kind and width of output. A
// composite: the blocks are named "<name>.0" and "<name>.1" ("0.0.weight", "0.1.weight").
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/nn/residual.hpp"

namespace uvp::nn {

template <class A, class B>
class Sum {
  static_assert(check_layer<A>() && check_layer<B>(), "uvp::nn::Sum: both blocks must fulfil the layer contract");
  static_assert(std::is_same_v<typename A::input_type, typename B::input_type> &&
                    std::is_same_v<typename A::output_type, typename B::output_type> &&
                    std::is_same_v<typename A::value_type, typename B::value_type>,
                "uvp::nn::Sum: both blocks must read the same kind of input and give the same kind of output");

 public:
  using value_type = typename A::value_type;
  using T = value_type;
  using input_type = typename A::input_type;
  using output_type = typename A::output_type;
  using in_arg = std::conditional_t<std::is_same_v<input_type, ConstMatrixView<T>>, ConstMatrixRef<T>, const input_type&>;
  using out_arg =
      std::conditional_t<std::is_same_v<output_type, ConstMatrixView<T>>, ConstMatrixRef<T>, const output_type&>;
  static constexpr const char* kind = "Sum";

  class Context : public uvp::detail::NnContextBase {
   public:
    Context() = default;
    explicit Context(std::uint64_t seed) : a_(make<typename A::Context>(seed)), b_(make<typename B::Context>(seed + 1)) {}

   private:
    friend class Sum;
    template <class C>
    static C make(std::uint64_t seed) {
      if constexpr (std::is_constructible_v<C, std::uint64_t>)
        return C(seed);
      else
        return C();
    }
    typename A::Context a_;
    typename B::Context b_;
    uvp::detail::NnBuffer<T> out_, dx_;
  };

  /// a and b must give the same output width (checked where known).
  Sum(A a, B b) : a_(std::move(a)), b_(std::move(b)) {
    const index in = input_width();
    const index wa = a_.output_width(in), wb = b_.output_width(in);
    if (wa >= 0 && wb >= 0 && wa != wb)
      uvp::detail::raise<shape_error>("uvp::nn::Sum: block 0 (", A::kind, ") gives ", wa, " features, block 1 (",
                                      B::kind, ") gives ", wb);
    const index ia = a_.input_width(), ib = b_.input_width();
    if (ia >= 0 && ib >= 0 && ia != ib)
      uvp::detail::raise<shape_error>("uvp::nn::Sum: block 0 (", A::kind, ") takes ", ia, " features, block 1 (",
                                      B::kind, ") takes ", ib);
  }

  A& first() noexcept { return a_; }
  const A& first() const noexcept { return a_; }
  B& second() noexcept { return b_; }
  const B& second() const noexcept { return b_; }

  index input_width() const { return a_.input_width() >= 0 ? a_.input_width() : b_.input_width(); }
  index output_width(index in) const {
    const index wa = a_.output_width(in);
    return wa >= 0 ? wa : b_.output_width(in);
  }
  void train(bool on = true) noexcept { a_.train(on), b_.train(on); }
  void eval() noexcept { train(false); }
  bool is_training() const noexcept { return a_.is_training(); }
  void collect_blocks(const std::string& prefix, BlockList<T>& list) {
    list.add(prefix.empty() ? "0" : prefix + ".0", a_);
    list.add(prefix.empty() ? "1" : prefix + ".1", b_);
  }

  template <class SA = A, class SB = B, class = decltype(std::declval<const SA&>().spec()),
            class = decltype(std::declval<const SB&>().spec())>
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.children.push_back(a_.spec());
    s.children.push_back(b_.spec());
    return s;
  }
  template <class SA = A, class SB = B, class = decltype(SA::from_spec(std::declval<const BlockSpec&>())),
            class = decltype(SB::from_spec(std::declval<const BlockSpec&>()))>
  static Sum from_spec(const BlockSpec& s) {
    if (s.kind != kind || s.children.size() != 2)
      uvp::detail::raise<format_error>("uvp::nn::Sum::from_spec: expected kind Sum with two children, got ", s.kind,
                                       " with ", s.children.size());
    return Sum(A::from_spec(s.children[0]), B::from_spec(s.children[1]));
  }

  /// a(x) + b(x), owned by ctx.
  output_type forward(in_arg x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Sum::forward";
    uvp::detail::nn_begin_forward(ctx, {{"width", output_width(input_width())}});
    const auto ya = a_.forward(x, ctx.a_);
    const auto yb = b_.forward(x, ctx.b_);
    const ConstMatrixView<T> ra = uvp::detail::layer_rows(ya), rb = uvp::detail::layer_rows(yb);
    uvp::detail::check_shape(where, "second block's output", rb.rows(), rb.cols(), ra.rows(), ra.cols());
    auto y = ctx.out_.matrix(ra.rows(), ra.cols());
    y = ra + rb;
    uvp::detail::nn_end_forward(ctx);
    return uvp::detail::layer_like(ya, ConstMatrixView<T>(y.data(), y.rows(), y.cols()));
  }

  /// Both blocks' parameter gradients accumulate; the input gradient is the sum of theirs
  /// (NoGradient for token ids).
  gradient_t<input_type> backward(Context& ctx, out_arg d_output) {
    uvp::detail::nn_require_forward("uvp::nn::Sum::backward", ctx, "Sum");
    if constexpr (std::is_same_v<gradient_t<input_type>, NoGradient>) {
      a_.backward(ctx.a_, d_output);
      b_.backward(ctx.b_, d_output);
      return NoGradient{};
    } else {
      const auto da = a_.backward(ctx.a_, d_output);
      const ConstMatrixView<T> ra = uvp::detail::layer_rows(da);
      auto dx = ctx.dx_.matrix(ra.rows(), ra.cols());
      dx = ra;
      const auto db = b_.backward(ctx.b_, d_output);
      dx += uvp::detail::layer_rows(db);
      return uvp::detail::layer_like(da, ConstMatrixView<T>(dx.data(), dx.rows(), dx.cols()));
    }
  }

 private:
  A a_;
  B b_;
};

}  // namespace uvp::nn
