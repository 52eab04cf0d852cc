// SPDX-License-Identifier: Apache-2.0
// The layer contract: what every uvp::nn block provides (Dense, the activations, Dropout,
// LayerNorm, Embedding, EmbeddingBag, LstmCell, Lstm, Gru, MultiHeadSelfAttention, Conv1d, the
// poolings, the combinators) and what a user's own block must provide to compose with them, and
// the batches that flow between blocks.
//
// A block B with scalar T:
//
//   using value_type  = T;
//   using input_type  = ConstMatrixView<T> | SequenceBatch<T> | TokenBatch | TokenBags;
//   using output_type = ConstMatrixView<T> | SequenceBatch<T>;
//   class Context;                       // default-constructible, one per thread and call chain;
//                                        // derives from uvp::detail::NnContextBase
//   static constexpr const char* kind;   // "Dense": the type name in model files and messages
//
//   index input_width() const;           // features per input row it accepts (-1: any)
//   index output_width(index in) const;  // features per output row for `in` input features
//
//   output_type forward(const input_type& x, Context& ctx) const;
//       Thread-safe (const): every buffer lives in ctx. Returns a view owned by ctx, valid until
//       ctx's next forward. Keeps a view of x in ctx: x must stay alive and unchanged until the
//       backward that follows.
//   gradient_t<input_type> backward(Context& ctx, const output_type& d_output);
//       The gradient of the output of ctx's last forward in, the gradient of that forward's input
//       out (a view owned by ctx; NoGradient for token ids). Parameter gradients are accumulated
//       (+=), as PyTorch's .grad; zero_grad() clears them.
//
//   and, from nn::Block<T>: tensors() (PyTorch names and shapes), parameter_count(),
//   buffer_size(), bind(values, grads) (to a region of a model's buffer), zero_grad(), train(),
//   eval(), is_training(). A composite (Sequential, Residual) derives from no Block but hands its
//   children to a model with collect_blocks(prefix, BlockList<T>&) and has train(bool).
//
// One argument order everywhere: forward(input, ctx), backward(ctx, d_output). Blocks with
// matrix input also apply to sequences: nn::Chain hands them the (batch * steps) x features rows
// of a SequenceBatch and re-wraps their output with the same batch, steps and lengths.
//
// static_assert(uvp::nn::is_layer_v<MyBlock>) checks a block against the contract; nn::Chain
// does so for each block it is given and names what is missing.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

/// A batch of variable-length sequences, batch-first: row b * steps + t of values() is step t of
/// sequence b. lengths: empty (every sequence has all `steps` steps) or `batch` values in
/// [1, steps]; rows t >= lengths[b] are padding, which the sequence blocks leave out.
/// A view: it owns neither the values nor the lengths.
template <class T>
struct SequenceBatch {
  const T* data = nullptr;
  index batch = 0, steps = 0, features = 0;
  Span<const index> lengths;

  SequenceBatch() = default;
  /// values: (batch * steps) x features, contiguous rows. uvp::shape_error if the rows do not match.
  SequenceBatch(ConstMatrixView<T> values, index batch_, index steps_, Span<const index> lengths_ = {})
      : data(values.data()), batch(batch_), steps(steps_), features(values.cols()), lengths(lengths_) {
    constexpr const char* where = "uvp::nn::SequenceBatch";
    if (batch_ < 0 || steps_ < 0)
      uvp::detail::raise<invalid_argument>(where, ": batch = ", batch_, " and steps = ", steps_, " must be >= 0");
    uvp::detail::check_shape(where, "values", values.rows(), values.cols(), batch_ * steps_, values.cols());
    if (!lengths_.empty()) uvp::detail::check_size(where, "lengths", lengths_.size(), batch_);
  }
  /// values: any row-major matrix with contiguous rows (a Matrix, or a block of full rows).
  SequenceBatch(const ConstMatrixRef<T>& values, index batch_, index steps_, Span<const index> lengths_ = {})
      : SequenceBatch(contiguous(values), batch_, steps_, lengths_) {}
  /// All rows, (batch * steps) x features.
  ConstMatrixView<T> values() const noexcept { return {data, batch * steps, features}; }
  /// Steps of sequence b.
  index length(index b) const noexcept { return lengths.empty() ? steps : lengths[b]; }

 private:
  static ConstMatrixView<T> contiguous(const ConstMatrixRef<T>& m) {
    if (m.rows() > 1 && m.outerStride() != m.cols())
      uvp::detail::raise<invalid_argument>("uvp::nn::SequenceBatch: values must have contiguous rows (row stride ",
                                           m.outerStride(), ", columns ", m.cols(), ")");
    return {m.data(), m.rows(), m.cols()};
  }
};

/// A batch of token-id sequences (what an Embedding reads): ids (batch * steps, row-major),
/// lengths as in SequenceBatch (empty: all full). Padding positions hold the padding id.
struct TokenBatch {
  Span<const index> ids;
  index batch = 0, steps = 0;
  Span<const index> lengths;

  TokenBatch() = default;
  TokenBatch(Span<const index> ids_, index batch_, index steps_, Span<const index> lengths_ = {})
      : ids(ids_), batch(batch_), steps(steps_), lengths(lengths_) {
    constexpr const char* where = "uvp::nn::TokenBatch";
    if (batch_ < 0 || steps_ < 0)
      uvp::detail::raise<invalid_argument>(where, ": batch = ", batch_, " and steps = ", steps_, " must be >= 0");
    uvp::detail::check_size(where, "ids", ids_.size(), batch_ * steps_);
    if (!lengths_.empty()) uvp::detail::check_size(where, "lengths", lengths_.size(), batch_);
  }
  index length(index b) const noexcept { return lengths.empty() ? steps : lengths[b]; }
};

/// Bags of token ids (what an EmbeddingBag reads), torch.nn.EmbeddingBag's layout: bag b is
/// ids[offsets[b] .. offsets[b + 1]) (the last to the end of ids).
struct TokenBags {
  Span<const index> ids;
  Span<const index> offsets;
};

/// A block's constructor arguments as a model file stores them: kind "Dense", args
/// {("in_features", 64), ("out_features", 1), ("bias", 1)}. Numbers only: sizes, flags (0/1),
/// probabilities, epsilons and enumerations (as their integer value) are what blocks take.
///
/// The optional part of the contract, for blocks a model file can rebuild:
///   BlockSpec spec() const;                   // kind = B::kind and every constructor argument
///   static B from_spec(const BlockSpec& s);   // the same block (weights are loaded after)
struct BlockSpec {
  std::string kind;
  std::vector<std::pair<std::string, double>> args;
  std::vector<BlockSpec> children;  ///< a composite's blocks (Sequential, Residual), in order

  BlockSpec() = default;
  explicit BlockSpec(std::string kind_) : kind(std::move(kind_)) {}

  /// Appends (or replaces) an argument; returns *this for chaining.
  BlockSpec& set(const std::string& name, double value) {
    for (auto& a : args)
      if (a.first == name) return a.second = value, *this;
    args.emplace_back(name, value);
    return *this;
  }
  /// The argument called name; uvp::format_error naming the kind and the argument if absent.
  double get(const std::string& name) const {
    for (const auto& a : args)
      if (a.first == name) return a.second;
    uvp::detail::raise<format_error>("uvp::nn::BlockSpec: ", kind, " has no argument '", name, "'");
  }
  /// The argument as a whole number; uvp::format_error if absent or not a whole number in
  /// [lo, hi].
  index get_index(const std::string& name, index lo = -(index(1) << 52), index hi = index(1) << 52) const {
    const double v = get(name);
    if (!(v >= double(lo) && v <= double(hi)) || v != static_cast<double>(static_cast<index>(v)))
      uvp::detail::raise<format_error>("uvp::nn::BlockSpec: ", kind, " argument '", name, "' = ", v,
                                       " is not a whole number in [", lo, ", ", hi, "]");
    return static_cast<index>(v);
  }
  bool get_bool(const std::string& name) const { return get_index(name, 0, 1) != 0; }
  friend bool operator==(const BlockSpec& a, const BlockSpec& b) {
    return a.kind == b.kind && a.args == b.args && a.children == b.children;
  }
  friend bool operator!=(const BlockSpec& a, const BlockSpec& b) { return !(a == b); }
};

/// The base of every block's Context: records whether it holds a completed forward pass
/// (holds_forward()). A user's block derives its Context from it.
using ContextBase = uvp::detail::NnContextBase;

/// What backward returns for an input that has no gradient (token ids).
struct NoGradient {};

/// The type backward returns for a block whose forward reads In.
template <class In>
struct gradient_of {
  using type = In;
};
template <>
struct gradient_of<TokenBatch> {
  using type = NoGradient;
};
template <>
struct gradient_of<TokenBags> {
  using type = NoGradient;
};
template <class In>
using gradient_t = typename gradient_of<In>::type;

}  // namespace uvp::nn

namespace uvp::detail {

template <class B, class = void>
struct layer_has_types : std::false_type {};
template <class B>
struct layer_has_types<B, std::void_t<typename B::value_type, typename B::input_type, typename B::output_type,
                                      typename B::Context, decltype(B::kind)>> : std::true_type {};

template <class B, class = void>
struct layer_has_forward : std::false_type {};
template <class B>
struct layer_has_forward<B, std::void_t<decltype(std::declval<const B&>().forward(
                                std::declval<const typename B::input_type&>(), std::declval<typename B::Context&>()))>>
    : std::true_type {};

template <class B, class = void>
struct layer_has_backward : std::false_type {};
template <class B>
struct layer_has_backward<B, std::void_t<decltype(std::declval<B&>().backward(
                                 std::declval<typename B::Context&>(), std::declval<const typename B::output_type&>()))>>
    : std::true_type {};

template <class B, class = void>
struct layer_has_widths : std::false_type {};
template <class B>
struct layer_has_widths<B, std::void_t<decltype(index(std::declval<const B&>().input_width())),
                                       decltype(index(std::declval<const B&>().output_width(index(0))))>>
    : std::true_type {};

template <class B, class = void>
struct layer_is_composite : std::false_type {};
template <class B>
struct layer_is_composite<B, std::void_t<decltype(std::declval<B&>().collect_blocks(
                                 std::declval<const std::string&>(),
                                 std::declval<nn::BlockList<typename B::value_type>&>()))>> : std::true_type {};

// A block owns its tensors (derives from nn::Block) or is a composite of blocks that hands them
// to a BlockList by collect_blocks(prefix, list), as Sequential does.
template <class B, bool = layer_has_types<B>::value>
struct layer_is_block : std::false_type {};
template <class B>
struct layer_is_block<B, true>
    : std::bool_constant<std::is_base_of_v<nn::Block<typename B::value_type>, B> || layer_is_composite<B>::value> {};

}  // namespace uvp::detail

namespace uvp::nn {

/// True when B fulfils the layer contract above.
template <class B>
inline constexpr bool is_layer_v =
    uvp::detail::layer_has_types<B>::value && uvp::detail::layer_is_block<B>::value &&
    uvp::detail::layer_has_forward<B>::value && uvp::detail::layer_has_backward<B>::value &&
    uvp::detail::layer_has_widths<B>::value;

/// Fails to compile, with a sentence naming what is missing, unless B fulfils the contract.
template <class B>
constexpr bool check_layer() {
  static_assert(uvp::detail::layer_has_types<B>::value,
                "uvp::nn layer contract: the block must declare value_type, input_type, output_type, a Context "
                "class and static constexpr const char* kind (see uvp/nn/layer.hpp)");
  static_assert(uvp::detail::layer_is_block<B>::value,
                "uvp::nn layer contract: the block must derive from uvp::nn::Block<value_type> (its tensors "
                "and parameter buffer), or be a composite with collect_blocks(prefix, BlockList&)");
  static_assert(uvp::detail::layer_has_forward<B>::value,
                "uvp::nn layer contract: the block needs output_type forward(const input_type&, Context&) const");
  static_assert(uvp::detail::layer_has_backward<B>::value,
                "uvp::nn layer contract: the block needs backward(Context&, const output_type& d_output) "
                "returning the input's gradient");
  static_assert(uvp::detail::layer_has_widths<B>::value,
                "uvp::nn layer contract: the block needs index input_width() const and index output_width(index) "
                "const");
  return true;
}

}  // namespace uvp::nn

namespace uvp::detail {

/// A matrix view kept in a context (Eigen's Map cannot be re-pointed by assignment).
template <class T>
struct SavedRows {
  const T* data = nullptr;
  index rows = 0, cols = 0, stride = 0;

  void set(const ConstMatrixRef<T>& m) noexcept {
    data = m.data(), rows = m.rows(), cols = m.cols(), stride = m.outerStride();
  }
  Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> view() const noexcept {
    return {data, rows, cols, Eigen::OuterStride<>(stride > 0 ? stride : cols)};
  }
};

}  // namespace uvp::detail
