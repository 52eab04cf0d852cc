// SPDX-License-Identifier: Apache-2.0
// A model composed at compile time from blocks that fulfil the layer contract (uvp/nn/layer.hpp),
// torch.nn.Sequential's idea with the types known to the compiler: no virtual call, no variant,
// const forward with one Context per thread, one parameter buffer for the whole model.
//
//   uvp::Rng rng(42);
//   nn::Chain model(nn::Embedding<float>(85, 32, rng, 0), nn::Lstm<float>(32, 64, rng),
//                   nn::GlobalLastPool1d<float>(), nn::Dense<float>(64, 1, rng));
//   decltype(model)::Context ctx;                        // one per thread
//   auto logits = model.forward(nn::TokenBatch(ids, batch, steps, lengths), ctx);  // batch x 1
//   model.backward(ctx, d_logits);                       // accumulates every gradient
//   nn::step(adam, model);                               // one call for the whole model
//
// Data flows from block to block as the contract's batches: TokenBatch -> SequenceBatch ->
// ... -> a matrix. A block with matrix input placed where a SequenceBatch flows is applied to its
// (batch * steps) x features rows, the output re-wrapped with the same batch, steps and lengths
// (a Dense or LayerNorm on every step). Widths are checked when the chain is built: a block that
// does not fit its predecessor raises uvp::shape_error naming both blocks and both sizes; a block
// whose input kind cannot follow its predecessor's output does not compile.
//
// Names: the blocks are "0", "1", ... (torch.nn.Sequential's state_dict keys: "0.weight",
// "1.weight_ih_l0") unless set_names gives others ("embedding", "lstm", "pool", "head").
//
// In eval mode, a recurrent block (Lstm, Gru) followed by GlobalLastPool1d runs its inference
// path (forward_last: no history kept, blocked over sequences); a backward after such a forward
// raises. Results are the same as the training path's.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

// What flows out of block B when In flows in, and whether B runs on the rows of a sequence.
template <class B, class In>
struct chain_link {
  using T = typename B::value_type;
  static constexpr bool per_step =
      std::is_same_v<typename B::input_type, ConstMatrixView<T>> && std::is_same_v<In, nn::SequenceBatch<T>>;
  static_assert(per_step || std::is_same_v<In, typename B::input_type>,
                "uvp::nn::Chain: a block's input kind does not follow its predecessor's output (e.g. a "
                "sequence block after a matrix, or token ids in the middle): check the order of the blocks");
  using output = std::conditional_t<per_step, nn::SequenceBatch<T>, typename B::output_type>;
};

// The input of block I of Blocks... when In flows into block 0.
template <std::size_t I, class In, class... Blocks>
struct chain_input;
template <class In, class B, class... Rest>
struct chain_input<0, In, B, Rest...> {
  using type = In;
};
template <std::size_t I, class In, class B, class... Rest>
struct chain_input<I, In, B, Rest...> {
  using type = typename chain_input<I - 1, typename chain_link<B, In>::output, Rest...>::type;
};

template <class B, class = void>
struct has_forward_last : std::false_type {};
template <class B>
struct has_forward_last<B, std::void_t<decltype(std::declval<const B&>().forward_last(
                               std::declval<const nn::SequenceBatch<typename B::value_type>&>(),
                               std::declval<MatrixRef<typename B::value_type>>(), std::declval<typename B::Context&>()))>>
    : std::true_type {};

template <class B, class = void>
struct selects_last_step : std::false_type {};
template <class B>
struct selects_last_step<B, std::enable_if_t<B::selects_last_step>> : std::true_type {};

template <class B, class = void>
struct has_block_spec : std::false_type {};
template <class B>
struct has_block_spec<B, std::void_t<decltype(std::declval<const B&>().spec())>> : std::true_type {};

template <class C>
C make_layer_context(std::uint64_t seed) {
  if constexpr (std::is_constructible_v<C, std::uint64_t>)
    return C(seed);
  else
    return C();
}

}  // namespace uvp::detail

namespace uvp::nn {

template <class... Blocks>
class Chain {
  static_assert(sizeof...(Blocks) > 0, "uvp::nn::Chain: give at least one block");
  static_assert((check_layer<Blocks>() && ...), "uvp::nn::Chain: every block must fulfil the layer contract");

  using First = std::tuple_element_t<0, std::tuple<Blocks...>>;
  static constexpr std::size_t N = sizeof...(Blocks);

 public:
  using value_type = typename First::value_type;
  using T = value_type;
  static_assert((std::is_same_v<typename Blocks::value_type, T> && ...),
                "uvp::nn::Chain: every block must have the same scalar type");
  using input_type = typename First::input_type;
  template <std::size_t I>
  using input_of = typename uvp::detail::chain_input<I, input_type, Blocks...>::type;
  using output_type = typename uvp::detail::chain_link<std::tuple_element_t<N - 1, std::tuple<Blocks...>>,
                                                      input_of<N - 1>>::output;
  /// What backward takes: a matrix argument binds to Matrix, Map or a block of one.
  using d_output_arg =
      std::conditional_t<std::is_same_v<output_type, ConstMatrixView<T>>, ConstMatrixRef<T>, const output_type&>;
  /// What forward takes: likewise.
  using input_arg =
      std::conditional_t<std::is_same_v<input_type, ConstMatrixView<T>>, ConstMatrixRef<T>, const input_type&>;
  static constexpr const char* kind = "Chain";

  /// Per-call state: every block's context. One per thread; buffers only grow.
  class Context : public uvp::detail::NnContextBase {
   public:
    /// seed: the Rng of the first block that draws (Dropout), seed + i for block i.
    explicit Context(std::uint64_t seed = 0x5eed) : Context(seed, std::index_sequence_for<Blocks...>()) {}
    /// Block I's context.
    template <std::size_t I>
    const auto& block() const noexcept {
      return std::get<I>(blocks_);
    }

   private:
    friend class Chain;
    template <std::size_t... I>
    Context(std::uint64_t seed, std::index_sequence<I...>)
        : blocks_(uvp::detail::make_layer_context<typename Blocks::Context>(seed + I)...) {}
    std::tuple<typename Blocks::Context...> blocks_;
    std::array<SequenceBatch<T>, N> seq_in_{};  // what flowed into per-step blocks
    uvp::detail::NnBuffer<T> last_;             // the inference path's pooled output
    bool inference_path_ = false;
  };

  /// The blocks, named "0", "1", ... Checks that each fits its predecessor's width.
  explicit Chain(Blocks... blocks) : impl_(std::make_unique<Impl>(std::move(blocks)...)) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < N; ++i) names.push_back(std::to_string(i));
    check_widths(names);
    rebuild(std::move(names));
  }

  Chain(Chain&&) noexcept = default;
  Chain& operator=(Chain&&) noexcept = default;

  /// Renames the blocks (N distinct, non-empty names without '.'); tensor names follow
  /// ("lstm.weight_ih_l0"). Values are kept. Call before an optimizer has state for the model.
  Chain& set_names(std::vector<std::string> names) {
    constexpr const char* where = "uvp::nn::Chain::set_names";
    uvp::detail::check_size(where, "names", static_cast<index>(names.size()), static_cast<index>(N));
    for (std::size_t i = 0; i < N; ++i) {
      if (names[i].empty() || names[i].find('.') != std::string::npos)
        uvp::detail::raise<invalid_argument>(where, ": names[", i, "] = '", names[i],
                                             "' must be non-empty and without '.'");
      for (std::size_t j = 0; j < i; ++j)
        if (names[i] == names[j])
          uvp::detail::raise<invalid_argument>(where, ": names[", j, "] and names[", i, "] are both '", names[i], "'");
    }
    rebuild(std::move(names));
    return *this;
  }

  static constexpr index size() noexcept { return static_cast<index>(N); }
  const std::vector<std::string>& names() const noexcept { return impl_->names; }

  /// Block I.
  template <std::size_t I>
  auto& get() noexcept {
    return std::get<I>(impl_->blocks);
  }
  template <std::size_t I>
  const auto& get() const noexcept {
    return std::get<I>(impl_->blocks);
  }

  /// The model's one buffer of values and gradients, with its named tensors.
  ModelParameters<T>& parameters() noexcept { return *impl_->params; }
  const ModelParameters<T>& parameters() const noexcept { return *impl_->params; }
  /// The leaf blocks with their names (what nn::save / nn::load read and write).
  const BlockList<T>& blocks() const noexcept { return impl_->list; }
  index parameter_count() const noexcept { return impl_->params->parameter_count(); }

  void zero_grad() noexcept { impl_->params->zero_grad(); }
  bool is_training() const noexcept { return impl_->training; }
  void train(bool on = true) noexcept {
    impl_->training = on;
    std::apply([on](auto&... b) { (b.train(on), ...); }, impl_->blocks);
  }
  void eval() noexcept { train(false); }

  /// The first block's input width (-1: any) and the width of the output for `in` input features.
  index input_width() const { return std::get<0>(impl_->blocks).input_width(); }
  index output_width(index in) const {
    index w = in;
    std::apply([&w](const auto&... b) { ((w = b.output_width(w)), ...); }, impl_->blocks);
    return w;
  }

  /// Every block's spec with its name, in order (for model files). Needs spec() on every block.
  std::vector<std::pair<std::string, BlockSpec>> architecture() const {
    static_assert((uvp::detail::has_block_spec<Blocks>::value && ...),
                  "uvp::nn::Chain::architecture: every block needs BlockSpec spec() const (see uvp/nn/layer.hpp)");
    std::vector<std::pair<std::string, BlockSpec>> out;
    std::size_t i = 0;
    std::apply([&](const auto&... b) { ((out.emplace_back(impl_->names[i++], b.spec())), ...); }, impl_->blocks);
    return out;
  }

  /// Runs every block on x; returns a view owned by ctx (valid until its next forward). Const
  /// and thread-safe with one ctx per thread.
  output_type forward(input_arg x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"blocks", size()}});
    ctx.inference_path_ = false;
    const output_type y = forward_from<0>(x, ctx);
    uvp::detail::nn_end_forward(ctx);
    return y;
  }

  /// Backpropagates d_output (the gradient of ctx's last forward output) through every block,
  /// accumulating parameter gradients; returns the gradient of the forward's input (a view owned
  /// by ctx; NoGradient for token ids).
  gradient_t<input_type> backward(Context& ctx, d_output_arg d_output) {
    constexpr const char* where = "uvp::nn::Chain::backward";
    const uvp::detail::NnBlockShape shape{{"blocks", size()}};
    uvp::detail::nn_require_forward(where, ctx, "Chain", &shape);
    if (ctx.inference_path_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": the last forward ran in eval mode through the inference path (a "
                                           "recurrent block before GlobalLastPool1d keeps no history); call train() "
                                           "before the forward you backpropagate");
    return backward_from<N - 1>(ctx, d_output);
  }

 private:
  struct Impl {
    explicit Impl(Blocks&&... b) : blocks(std::move(b)...) {}
    std::tuple<Blocks...> blocks;
    std::vector<std::string> names;
    BlockList<T> list;
    std::unique_ptr<ModelParameters<T>> params;
    bool training = true;
  };

  template <std::size_t I>
  static constexpr bool fuses_last() {
    if constexpr (I + 1 < N) {
      using B = std::tuple_element_t<I, std::tuple<Blocks...>>;
      using P = std::tuple_element_t<I + 1, std::tuple<Blocks...>>;
      return uvp::detail::has_forward_last<B>::value && uvp::detail::selects_last_step<P>::value &&
             std::is_same_v<input_of<I>, SequenceBatch<T>>;
    } else {
      return false;
    }
  }

  template <std::size_t I, class In>
  output_type forward_from(const In& in, Context& ctx) const {
    using B = std::tuple_element_t<I, std::tuple<Blocks...>>;
    const B& b = std::get<I>(impl_->blocks);
    auto& c = std::get<I>(ctx.blocks_);
    if constexpr (fuses_last<I>()) {
      if (!impl_->training) {
        ctx.inference_path_ = true;
        auto h = ctx.last_.matrix(in.batch, b.output_width(in.features));
        b.forward_last(in, h, c);
        const ConstMatrixView<T> pooled(h.data(), h.rows(), h.cols());
        if constexpr (I + 2 < N)
          return forward_from<I + 2>(pooled, ctx);
        else
          return pooled;
      }
    }
    using Link = uvp::detail::chain_link<B, input_of<I>>;
    if constexpr (Link::per_step) {
      ctx.seq_in_[I] = in;
      const ConstMatrixView<T> rows = b.forward(in.values(), c);
      const SequenceBatch<T> out(rows, in.batch, in.steps, in.lengths);
      if constexpr (I + 1 < N)
        return forward_from<I + 1>(out, ctx);
      else
        return out;
    } else {
      const auto out = b.forward(in, c);
      if constexpr (I + 1 < N)
        return forward_from<I + 1>(out, ctx);
      else
        return out;
    }
  }

  // d: the gradient of block I's output (the caller's may be a Ref with a row stride).
  template <std::size_t I, class DOut>
  gradient_t<input_type> backward_from(Context& ctx, const DOut& d) {
    using B = std::tuple_element_t<I, std::tuple<Blocks...>>;
    B& b = std::get<I>(impl_->blocks);
    auto& c = std::get<I>(ctx.blocks_);
    using Link = uvp::detail::chain_link<B, input_of<I>>;
    if constexpr (Link::per_step) {
      const SequenceBatch<T>& seq = ctx.seq_in_[I];
      const ConstMatrixView<T> dx = b.backward(c, d.values());
      const SequenceBatch<T> d_in(dx, seq.batch, seq.steps, seq.lengths);
      if constexpr (I == 0)
        return d_in;
      else
        return backward_from<I - 1>(ctx, d_in);
    } else {
      const auto d_in = b.backward(c, d);
      if constexpr (I == 0)
        return d_in;
      else
        return backward_from<I - 1>(ctx, d_in);
    }
  }

  void check_widths(const std::vector<std::string>& names) const {
    index width = -1;
    const char* prev_kind = nullptr;
    std::size_t i = 0;
    std::apply(
        [&](const auto&... b) {
          (([&] {
             const index want = b.input_width();
             if (i > 0 && want >= 0 && width >= 0 && want != width)
               uvp::detail::raise<shape_error>("uvp::nn::Chain: block ", i, " '", names[i], "' (", b.kind, ") takes ",
                                               want, " features per row, but block ", i - 1, " '", names[i - 1],
                                               "' (", prev_kind, ") gives ", width);
             const index in = width >= 0 ? width : want;
             width = in >= 0 ? b.output_width(in) : b.output_width(-1);
             prev_kind = b.kind;
             ++i;
           }()),
           ...);
        },
        impl_->blocks);
  }

  void rebuild(std::vector<std::string> names) {
    BlockList<T> list;
    std::size_t i = 0;
    std::apply([&](auto&... b) { ((list.add(names[i++], b)), ...); }, impl_->blocks);
    auto params = std::make_unique<ModelParameters<T>>(list);  // binds every block
    impl_->names = std::move(names);
    impl_->list = std::move(list);
    impl_->params = std::move(params);
  }

  std::unique_ptr<Impl> impl_;
};

}  // namespace uvp::nn
