// SPDX-License-Identifier: Apache-2.0
// A chain of matrix -> matrix layers (torch.nn.Sequential) and make_mlp, the ready-made
// multi-layer perceptron built on it.
//
//   X (n, c_0) -> layer 0 -> H_0 (n, c_1) -> layer 1 -> ... -> H_{L-1} (n, c_L) = output
//
// Layers are Dense, Relu, Sigmoid, Tanh, Gelu, Softmax, Dropout and LayerNorm. forward() is
// const: every H_i, the Dropout masks, the LayerNorm statistics and the Rng that draws the masks
// live in a caller-owned Sequential::Context (one per thread), whose buffers only grow, so a
// training loop allocates nothing once it has seen its largest batch. backward() walks the
// chain back through the same context: parameter gradients are accumulated (+=) into each
// layer, the input gradient dX (when asked for) is written. Layers before the first one with
// parameters are skipped when dX is not needed.
//
// collect_blocks(prefix, list) names the children "<prefix>.<i>" (or "<i>" for an empty
// prefix), as torch.nn.Sequential's state_dict does ("0.weight", "0.bias", "2.weight", ...);
// every child is a uvp::nn::Block, the parameterless ones with no tensors.
//
// Sequential follows the layer contract (uvp/nn/layer.hpp) as a composite: Y = forward(X, ctx)
// returns a view owned by ctx, which keeps a view of X, and dX = backward(ctx, dY) returns dX
// owned by ctx; input_width() / output_width(in) walk the layers, and spec() lists each layer's
// spec as a child, from which from_spec() rebuilds the chain. The low-level backward forms take
// X again (and write dX into a caller's buffer, or skip it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

template <class T, class Backend = cpu>
class Sequential {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Sequential: only the uvp::cpu backend is implemented; use Sequential<T, uvp::cpu>");

 public:
  using value_type = T;
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Sequential";
  using Layer = std::variant<Dense<T, Backend>, Relu<T, Backend>, Sigmoid<T, Backend>, Tanh<T, Backend>,
                             Gelu<T, Backend>, Softmax<T, Backend>, Dropout<T, Backend>, LayerNorm<T, Backend>>;

  /// What one forward pass leaves for backward: each layer's output, the Dropout masks and
  /// LayerNorm statistics, the Rng of the masks (seeded by the caller), gradient buffers.
  class Context : public uvp::detail::NnContextBase {
   public:
    explicit Context(std::uint64_t seed = 0x5eed) : rng(seed) {}
    Rng rng;  ///< draws the Dropout masks of forward passes in training mode

    /// Output of layer i of the last forward (rows x its columns). uvp::invalid_argument when
    /// ctx holds no completed forward, uvp::out_of_range_error for i outside [0, layers).
    ConstMatrixView<T> output(index i) const {
      constexpr const char* where = "uvp::nn::Sequential::Context::output";
      uvp::detail::nn_require_forward(where, *this, "Sequential");
      uvp::detail::nn_check_index(where, "i", i, "layers", layers_);
      return view(i);
    }
    /// Rows of the last forward (-1 before the first).
    index rows() const noexcept { return rows_; }

   private:
    friend class Sequential;
    ConstMatrixView<T> view(index i) const noexcept {
      return {out_[static_cast<std::size_t>(i)].data(), rows_, cols_[static_cast<std::size_t>(i)]};
    }
    void prepare(index layers, index rows) {
      if (static_cast<index>(out_.size()) != layers) {
        out_.resize(static_cast<std::size_t>(layers));
        cols_.resize(static_cast<std::size_t>(layers));
        dropout_.resize(static_cast<std::size_t>(layers));
        norm_.resize(static_cast<std::size_t>(layers));
      }
      rows_ = rows;
      layers_ = layers;
    }
    std::vector<uvp::detail::NnBuffer<T>> out_;
    std::vector<index> cols_;
    std::vector<typename Dropout<T, Backend>::Context> dropout_;
    std::vector<typename LayerNorm<T, Backend>::Context> norm_;
    uvp::detail::NnBuffer<T> grad_[2];
    uvp::detail::NnBuffer<T> dx_;     // the contract backward's dX
    uvp::detail::SavedRows<T> x_;     // the last forward's input
    index rows_ = -1, layers_ = -1, in_cols_ = -1;
  };

  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Appends a layer and returns it (its address stays valid while the Sequential lives, moves
  /// included). Collect blocks into a BlockList after the last add.
  template <class L>
  L& add(L layer) {
    static_assert(std::is_constructible_v<Layer, L&&>,
                  "uvp::nn::Sequential::add: the layer must be one of Dense, Relu, Sigmoid, Tanh, Gelu, "
                  "Softmax, Dropout, LayerNorm with the Sequential's T and Backend");
    layer.train(training_);
    layers_.push_back(std::make_unique<Layer>(std::in_place_type<L>, std::move(layer)));
    return std::get<L>(*layers_.back());
  }

  index size() const noexcept { return static_cast<index>(layers_.size()); }
  Layer& layer(index i) { return *layers_.at(static_cast<std::size_t>(i)); }
  const Layer& layer(index i) const { return *layers_.at(static_cast<std::size_t>(i)); }

  /// Layer i as an L; uvp::invalid_argument if it is another kind, out_of_range_error if i is.
  template <class L>
  L& get(index i) {
    return const_cast<L&>(static_cast<const Sequential&>(*this).template get<L>(i));
  }
  template <class L>
  const L& get(index i) const {
    if (i < 0 || i >= size())
      uvp::detail::raise<out_of_range_error>("uvp::nn::Sequential::get: layer ", i, " out of range [0, ", size(), ")");
    const L* p = std::get_if<L>(layers_[static_cast<std::size_t>(i)].get());
    if (!p) uvp::detail::raise<invalid_argument>("uvp::nn::Sequential::get: layer ", i, " is of another kind");
    return *p;
  }

  // ---- The layer contract -----------------------------------------------------------------

  /// The first layer's input width (-1: any, or no layers).
  index input_width() const noexcept {
    return layers_.empty() ? -1 : std::visit([](const auto& b) { return b.input_width(); }, *layers_.front());
  }
  /// The last layer's output width for `in` input features (-1: not known), through every layer;
  /// uvp::shape_error naming the layer (index and kind) that does not take its input.
  index output_width(index in) const {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      try {
        in = std::visit([&](const auto& b) { return b.output_width(in); }, *layers_[i]);
      } catch (const shape_error& e) {
        uvp::detail::raise<shape_error>("uvp::nn::Sequential::output_width: layer ", i, " (", layer_kind(i), "): ",
                                        e.what());
      }
    }
    return in;
  }

  // forward(X, ctx), the contract's forward, is with the other forward forms below.

  /// From dY (n, c_L), the gradient of the output of ctx's last forward: accumulates every
  /// layer's parameter gradients and returns dX (n, c_0), owned by ctx (valid until its next
  /// backward). The forward's X must still be alive and unchanged.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) {
    constexpr const char* where = "uvp::nn::Sequential::backward";
    const uvp::detail::NnBlockShape shape{{"layers", size()}};
    uvp::detail::nn_require_forward(where, ctx, "Sequential", &shape);
    uvp::detail::check_shape(where, "d_output", dY.rows(), dY.cols(), ctx.rows_,
                             ctx.cols_[static_cast<std::size_t>(ctx.layers_ - 1)]);
    if (uvp::detail::nn_in_buffer<T>(dY, ctx.dx_))
      uvp::detail::raise<invalid_argument>(where, ": d_output lies in the context's own input-gradient buffer (the "
                                           "result of its last backward); copy it first");
    const auto X = ctx.x_.view();
    auto dX = ctx.dx_.matrix(X.rows(), X.cols());
    MatrixRef<T> dx_ref(dX);
    backward_impl(X, ctx, dY, &dx_ref);
    return {ctx.dx_.data(), X.rows(), X.cols()};
  }

  /// Kind "Sequential", no arguments, each layer's spec as a child.
  BlockSpec spec() const {
    BlockSpec s(kind);
    for (const auto& l : layers_) s.children.push_back(std::visit([](const auto& b) { return b.spec(); }, *l));
    return s;
  }
  /// The Sequential of spec s, its layers rebuilt by their from_spec (weights from a fixed seed:
  /// load them after). uvp::format_error for a spec of another kind or a child of a kind that
  /// a Sequential cannot hold; the layer's error for a bad child.
  static Sequential from_spec(const BlockSpec& s) {
    constexpr const char* where = "uvp::nn::Sequential::from_spec";
    uvp::detail::nn_check_spec_kind(where, s, kind);
    Sequential out;
    for (std::size_t i = 0; i < s.children.size(); ++i)
      if (!out.add_from_spec(s.children[i]))
        uvp::detail::raise<format_error>(where, ": child ", i, " is of kind '", s.children[i].kind,
                                         "', which a Sequential cannot hold (Dense, Relu, Sigmoid, Tanh, Gelu, "
                                         "Softmax, Dropout, LayerNorm)");
    return out;
  }

  // ---- Layers, modes and the low-level forms -------------------------------------------------

  /// Output columns for an input of in_cols columns.
  index output_cols(index in_cols) const noexcept {
    for (const auto& l : layers_) in_cols = std::visit([&](const auto& b) { return b.output_cols(in_cols); }, *l);
    return in_cols;
  }

  index parameter_count() const noexcept {
    index n = 0;
    for (const auto& l : layers_) n += block(*l).parameter_count();
    return n;
  }
  void zero_grad() noexcept {
    for (auto& l : layers_) block(*l).zero_grad();
  }
  bool is_training() const noexcept { return training_; }
  void train(bool on = true) noexcept {
    training_ = on;
    for (auto& l : layers_) block(*l).train(on);
  }
  void eval() noexcept { train(false); }

  /// Adds every layer to list as "<prefix>.<i>" ("<i>" when prefix is empty).
  void collect_blocks(const std::string& prefix, BlockList<T>& list) {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      std::string name = prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i);
      std::visit([&](auto& b) { list.add(std::move(name), b); }, *layers_[i]);
    }
  }

  /// Runs the chain on X (n, c_0); returns a view of the output, owned by ctx and valid until its
  /// next forward. ctx keeps a view of X for backward(ctx, dY). (The layer contract's forward.)
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    const index L = size(), n = X.rows();
    constexpr const char* where = "uvp::nn::Sequential::forward";
    uvp::detail::nn_begin_forward(ctx, {{"layers", L}});  // invalid until this forward completes
    if (L == 0) uvp::detail::raise<invalid_argument>(where, ": the Sequential has no layers");
    if (in_context(X, ctx))
      uvp::detail::raise<invalid_argument>(where, ": X lies in the context's own buffers (an output or gradient of "
                                           "its last pass); give this forward another context");
    ctx.prepare(L, n);
    ctx.in_cols_ = X.cols();
    ctx.x_.set(X);
    index cols = X.cols();
    for (index i = 0; i < L; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const index out_cols = std::visit([&](const auto& b) { return b.output_cols(cols); }, *layers_[k]);
      ctx.cols_[k] = out_cols;
      auto Y = ctx.out_[k].matrix(n, out_cols);
      if (i == 0)
        forward_layer(k, X, Y, ctx);
      else
        forward_layer(k, ctx.view(i - 1), Y, ctx);
      cols = out_cols;
    }
    uvp::detail::nn_end_forward(ctx);
    return ctx.view(L - 1);
  }

  /// As above, copying the output into Y (n, output_cols(c_0)).
  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y, Context& ctx) const {
    const auto out = forward(X, ctx);
    uvp::detail::check_shape("uvp::nn::Sequential::forward", "Y", Y.rows(), Y.cols(), out.rows(), out.cols());
    Y = out;
  }

  /// Allocating form with a local context (Dropout masks from a default-seeded Rng).
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Context ctx;
    return forward(X, ctx);
  }

  /// Accumulates every layer's parameter gradients from dY (n, c_L), the gradient of the
  /// output of ctx's last forward, whose input was X.
  void backward(ConstMatrixRef<T> X, Context& ctx, ConstMatrixRef<T> dY) { backward_impl(X, ctx, dY, nullptr); }

  /// As above, and writes dX (n, c_0), the gradient with respect to X.
  void backward(ConstMatrixRef<T> X, Context& ctx, ConstMatrixRef<T> dY, MatrixRef<T> dX) {
    backward_impl(X, ctx, dY, &dX);
  }

 private:
  static bool in_context(const ConstMatrixRef<T>& X, const Context& ctx) noexcept {
    for (const auto& b : ctx.out_)
      if (uvp::detail::nn_in_buffer<T>(X, b)) return true;
    return uvp::detail::nn_in_buffer<T>(X, ctx.grad_[0]) || uvp::detail::nn_in_buffer<T>(X, ctx.grad_[1]) ||
           uvp::detail::nn_in_buffer<T>(X, ctx.dx_);
  }

  const char* layer_kind(std::size_t i) const noexcept {
    return std::visit([](const auto& b) { return std::decay_t<decltype(b)>::kind; }, *layers_[i]);
  }

  // Appends the layer of spec c if its kind is alternative I or a later one of Layer.
  template <std::size_t I = 0>
  bool add_from_spec(const BlockSpec& c) {
    if constexpr (I < std::variant_size_v<Layer>) {
      using L = std::variant_alternative_t<I, Layer>;
      if (c.kind != L::kind) return add_from_spec<I + 1>(c);
      add(L::from_spec(c));
      return true;
    } else {
      (void)c;
      return false;
    }
  }

  static Block<T>& block(Layer& l) noexcept {
    return std::visit([](auto& b) -> Block<T>& { return b; }, l);
  }
  static const Block<T>& block(const Layer& l) noexcept {
    return std::visit([](const auto& b) -> const Block<T>& { return b; }, l);
  }

  void forward_layer(std::size_t k, ConstMatrixRef<T> in, MatrixRef<T> out, Context& ctx) const {
    std::visit(
        [&](const auto& b) {
          using B = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<B, Dropout<T, Backend>>)
            b.forward(in, out, ctx.dropout_[k], ctx.rng);
          else if constexpr (std::is_same_v<B, LayerNorm<T, Backend>>)
            b.forward(in, out, ctx.norm_[k]);
          else
            b.forward(in, out);
        },
        *layers_[k]);
  }

  // Layer k's backward: in / out are its forward input and output, dy the gradient of out; dx
  // (nullptr: not needed) receives the gradient of in.
  void backward_layer(std::size_t k, ConstMatrixRef<T> in, ConstMatrixRef<T> out, ConstMatrixRef<T> dy,
                      MatrixRef<T>* dx, Context& ctx) {
    std::visit(
        [&](auto& b) {
          using B = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<B, Dense<T, Backend>>) {
            if (dx)
              b.backward(in, dy, *dx);
            else
              b.backward(in, dy);
          } else if constexpr (std::is_same_v<B, LayerNorm<T, Backend>>) {
            if (dx)
              b.backward(in, ctx.norm_[k], dy, *dx);
            else
              b.backward(in, ctx.norm_[k], dy);
          } else if constexpr (std::is_same_v<B, Dropout<T, Backend>>) {
            if (dx) b.backward(ctx.dropout_[k], dy, *dx);
          } else {
            if (dx) b.backward(B::backward_from_output ? out : in, dy, *dx);
          }
        },
        *layers_[k]);
  }

  void backward_impl(const ConstMatrixRef<T>& X, Context& ctx, const ConstMatrixRef<T>& dY, MatrixRef<T>* dX) {
    constexpr const char* where = "uvp::nn::Sequential::backward";
    const index L = size(), n = X.rows();
    const uvp::detail::NnBlockShape shape{{"layers", L}};
    uvp::detail::nn_require_forward(where, ctx, "Sequential", &shape);
    if (ctx.layers_ != L || ctx.rows_ != n || ctx.in_cols_ != X.cols())
      uvp::detail::raise<shape_error>(where, ": the context holds a forward pass of ", ctx.rows_ < 0 ? 0 : ctx.rows_,
                                      " rows through ", ctx.layers_ < 0 ? 0 : ctx.layers_, " layers, X has ", n,
                                      " rows and the Sequential ", L, " layers (run forward on this X first)");
    const index out_cols = ctx.cols_[static_cast<std::size_t>(L - 1)];
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), n, out_cols);
    if (dX) uvp::detail::check_shape(where, "dX", dX->rows(), dX->cols(), n, X.cols());

    // The first layer that needs a backward: 0 when dX is wanted, else the first with parameters.
    index stop = 0;
    if (!dX) {
      stop = L;
      for (index i = 0; i < L; ++i)
        if (block(*layers_[static_cast<std::size_t>(i)]).parameter_count() > 0) {
          stop = i;
          break;
        }
    }
    int buf = 0;  // dx goes to ctx.grad_[buf], alternating
    const T* g = nullptr;  // the gradient of layer i's output (n, cols_[i]), when not dY
    for (index i = L - 1; i >= stop; --i) {
      const auto k = static_cast<std::size_t>(i);
      const ConstMatrixRef<T> dy =
          i == L - 1 ? ConstMatrixRef<T>(dY) : ConstMatrixRef<T>(ConstMatrixView<T>(g, n, ctx.cols_[k]));
      if (i == 0) {
        backward_layer(k, X, ctx.view(0), dy, dX, ctx);
        break;
      }
      auto dx = ctx.grad_[buf].matrix(n, ctx.cols_[k - 1]);
      MatrixRef<T> dx_ref(dx);
      backward_layer(k, ctx.view(i - 1), ctx.view(i), dy, i > stop ? &dx_ref : nullptr, ctx);
      g = dx.data();
      buf ^= 1;
    }
  }

  std::vector<std::unique_ptr<Layer>> layers_;
  bool training_ = true;
};

/// Activation between the layers of make_mlp.
enum class Activation { none, relu, sigmoid, tanh, gelu };

/// Options of make_mlp.
struct MlpOptions {
  Activation output = Activation::none;  ///< after the last Dense (none: a linear output, for regression)
  double dropout = 0;                    ///< p of a Dropout after each hidden activation (0: none)
  bool layer_norm = false;               ///< a LayerNorm after each hidden Dense, before its activation
  bool bias = true;                      ///< Dense layers with a bias
};

}  // namespace uvp::nn

namespace uvp::detail {
template <class T, class Backend>
void nn_add_activation(nn::Sequential<T, Backend>& s, nn::Activation a) {
  switch (a) {
    case nn::Activation::none: break;
    case nn::Activation::relu: s.add(nn::Relu<T, Backend>()); break;
    case nn::Activation::sigmoid: s.add(nn::Sigmoid<T, Backend>()); break;
    case nn::Activation::tanh: s.add(nn::Tanh<T, Backend>()); break;
    case nn::Activation::gelu: s.add(nn::Gelu<T, Backend>()); break;
    default: raise<invalid_argument>("uvp::nn::make_mlp: unknown activation ", static_cast<int>(a));
  }
}
}  // namespace uvp::detail

namespace uvp::nn {

/// A multi-layer perceptron: sizes = {in, h_1, ..., h_k, out} (at least 2 entries, all > 0)
/// gives Dense(in, h_1), [LayerNorm], activation, [Dropout], ..., Dense(h_k, out), [output
/// activation]: make_mlp<float>({n_features, 64, 32, 1}, Activation::relu, rng) is the 64-32-1
/// ReLU value regressor. Weights are drawn from rng in layer order (PyTorch's default init).
template <class T, class Backend = cpu>
Sequential<T, Backend> make_mlp(const std::vector<index>& sizes, Activation hidden, Rng& rng,
                                const MlpOptions& options = {}) {
  constexpr const char* where = "uvp::nn::make_mlp";
  if (sizes.size() < 2)
    uvp::detail::raise<invalid_argument>(where, ": sizes needs at least 2 entries (in, out), got ", sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] <= 0) uvp::detail::raise<invalid_argument>(where, ": sizes[", i, "] must be > 0, got ", sizes[i]);
  if (!(options.dropout >= 0.0 && options.dropout < 1.0))
    uvp::detail::raise<invalid_argument>(where, ": options.dropout must be in [0, 1), got ", options.dropout);
  Sequential<T, Backend> s;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    s.add(Dense<T, Backend>(sizes[i], sizes[i + 1], rng, options.bias));
    if (i + 2 == sizes.size()) break;
    if (options.layer_norm) s.add(LayerNorm<T, Backend>(sizes[i + 1]));
    uvp::detail::nn_add_activation(s, hidden);
    if (options.dropout > 0) s.add(Dropout<T, Backend>(options.dropout));
  }
  uvp::detail::nn_add_activation(s, options.output);
  return s;
}

}  // namespace uvp::nn
