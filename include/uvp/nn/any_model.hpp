// SPDX-License-Identifier: Apache-2.0
// A model rebuilt from its file alone: nn::load_model<T>(path) reads a version 2 model file
// (uvp/nn/model_file.hpp), builds every block from its BlockSpec through a registry of block kinds
// and loads the weights, giving a type-erased nn::AnyModel<T>; no C++ type of the model is needed.
//
//   auto model = nn::load_model<float>("model.uvp");   // saved from an nn::Chain
//   model.eval();                                      // serving: Dropout off, inference paths on
//   nn::AnyModel<float>::Context ctx;                  // one per thread
//   auto scores = model.forward(nn::TokenBatch(ids, batch, steps, lengths), ctx);  // batch x 1
//
// AnyModel holds the blocks behind one virtual interface (one virtual call per block per forward,
// never per element) and, as nn::Chain, ONE parameter buffer for the whole model (parameters(), a
// ModelParameters<T>, with the same tensor names as the chain it was saved from). forward(x, ctx)
// takes rows (a matrix), a SequenceBatch, a TokenBatch or TokenBags, whichever the first block
// reads (input_kind()), and returns the output rows (a sequence output as its batch * steps rows),
// a view owned by ctx. Const and thread-safe with one Context per thread; results do not depend on
// the thread. backward(ctx, d_output) accumulates every parameter gradient (fine-tuning a loaded
// model; nn::step(optimizer, model) steps it). In eval mode a recurrent block (Lstm, Gru) followed
// by GlobalLastPool1d runs its inference path (forward_last), as nn::Chain does.
//
// The registry knows every library block kind that has from_spec: Dense, Relu, Sigmoid, Tanh,
// Gelu, Softmax, Dropout, LayerNorm, Sequential, Embedding, EmbeddingBag, PositionEmbedding, the
// poolings, MultiHeadSelfAttention, Conv1d, Lstm, Gru, and the composites Residual and Sum (over
// any registered blocks). A user's block joins with
//
//   nn::register_block<MyBlock<float>>();   // kind MyBlock<float>::kind; needs spec() / from_spec()
//
// (once per scalar type, before load_model). An unknown kind is a uvp::format_error naming the kind
// and the block. A hostile file cannot make load_model allocate much more than the file holds:
// before any block is built, the parameters its architecture implies are bounded by twice the
// values the file holds, plus 65536 (library kinds; a user's block can declare static index
// spec_parameter_count(const BlockSpec&) to be bounded too, else its from_spec must bound its own
// arguments).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/embedding_bag.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/model_file.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/nn/sequential.hpp"
#include "uvp/nn/serialize.hpp"

namespace uvp::nn {

/// What flows into or out of a block: rows (a matrix), a SequenceBatch, a TokenBatch, TokenBags;
/// none for "no gradient" (token ids) or "cannot follow".
enum class BatchKind { none, rows, sequence, tokens, bags };

inline const char* batch_kind_name(BatchKind k) noexcept {
  switch (k) {
    case BatchKind::rows: return "rows (a matrix)";
    case BatchKind::sequence: return "a SequenceBatch";
    case BatchKind::tokens: return "a TokenBatch";
    case BatchKind::bags: return "TokenBags";
    default: return "nothing";
  }
}

}  // namespace uvp::nn

namespace uvp::detail {

template <class T, class X>
constexpr nn::BatchKind batch_kind_of() noexcept {
  if constexpr (std::is_same_v<X, ConstMatrixView<T>>)
    return nn::BatchKind::rows;
  else if constexpr (std::is_same_v<X, nn::SequenceBatch<T>>)
    return nn::BatchKind::sequence;
  else if constexpr (std::is_same_v<X, nn::TokenBatch>)
    return nn::BatchKind::tokens;
  else if constexpr (std::is_same_v<X, nn::TokenBags>)
    return nn::BatchKind::bags;
  else
    return nn::BatchKind::none;
}

/// Any of the contract's batches, as a view (rows and a sequence's values: data, rows, cols).
template <class T>
struct AnyFlow {
  nn::BatchKind kind = nn::BatchKind::none;
  const T* data = nullptr;
  index rows = 0, cols = 0;
  index batch = 0, steps = 0;  // a sequence's
  Span<const index> lengths;
  nn::TokenBatch tokens;
  nn::TokenBags bags;

  static AnyFlow of(const ConstMatrixView<T>& m) {
    AnyFlow f;
    f.kind = nn::BatchKind::rows, f.data = m.data(), f.rows = m.rows(), f.cols = m.cols();
    return f;
  }
  static AnyFlow of(const nn::SequenceBatch<T>& s) {
    AnyFlow f;
    f.kind = nn::BatchKind::sequence, f.data = s.data, f.rows = s.batch * s.steps, f.cols = s.features;
    f.batch = s.batch, f.steps = s.steps, f.lengths = s.lengths;
    return f;
  }
  static AnyFlow of(const nn::TokenBatch& t) {
    AnyFlow f;
    f.kind = nn::BatchKind::tokens, f.tokens = t;
    return f;
  }
  static AnyFlow of(const nn::TokenBags& b) {
    AnyFlow f;
    f.kind = nn::BatchKind::bags, f.bags = b;
    return f;
  }
  static AnyFlow of(nn::NoGradient) { return AnyFlow(); }

  ConstMatrixView<T> matrix() const noexcept { return {data, rows, cols}; }
  nn::SequenceBatch<T> sequence() const noexcept {
    nn::SequenceBatch<T> s;
    s.data = data, s.batch = batch, s.steps = steps, s.features = cols, s.lengths = lengths;
    return s;
  }
  /// The same kind (and batch, steps, lengths) around other rows of the same count.
  AnyFlow with_rows(const T* d, index c) const noexcept {
    AnyFlow f = *this;
    f.data = d, f.cols = c;
    return f;
  }
  template <class X>
  X as() const {
    if constexpr (std::is_same_v<X, ConstMatrixView<T>>)
      return matrix();
    else if constexpr (std::is_same_v<X, nn::SequenceBatch<T>>)
      return sequence();
    else if constexpr (std::is_same_v<X, nn::TokenBatch>)
      return tokens;
    else
      return bags;
  }
};

/// A block's per-call state behind the erased interface.
struct AnyBlockContext {
  virtual ~AnyBlockContext() = default;
};

/// The erased block interface AnyModel holds: the layer contract with the batch kinds as values.
template <class T>
class AnyBlock {
 public:
  virtual ~AnyBlock() = default;
  virtual const char* kind() const noexcept = 0;
  virtual nn::BlockSpec spec() const = 0;
  virtual nn::BatchKind input_kind() const noexcept = 0;
  /// What flows out when `in` flows in; none when the block cannot read `in`. A rows block reads
  /// a sequence too (its rows, step by step), as in nn::Chain.
  virtual nn::BatchKind output_kind(nn::BatchKind in) const noexcept = 0;
  virtual index input_width() const = 0;
  virtual index output_width(index in) const = 0;
  /// Adds the leaf blocks to list under prefix (as the block's own collect_blocks / list.add do).
  virtual void collect(const std::string& prefix, nn::BlockList<T>& list) = 0;
  virtual void train(bool on) = 0;
  virtual std::unique_ptr<AnyBlockContext> make_context(std::uint64_t seed) const = 0;
  virtual AnyFlow<T> forward(const AnyFlow<T>& x, AnyBlockContext& ctx) const = 0;
  virtual AnyFlow<T> backward(AnyBlockContext& ctx, const AnyFlow<T>& d_output) = 0;
  /// The eval-mode inference path of a recurrent block followed by a last-step pooling.
  virtual bool has_forward_last() const noexcept { return false; }
  virtual bool selects_last_step() const noexcept { return false; }
  virtual ConstMatrixView<T> forward_last(const nn::SequenceBatch<T>&, AnyBlockContext&) const {
    raise<invalid_argument>("uvp::nn::AnyModel: block kind ", kind(), " has no forward_last");
  }
};

/// A block of the library's or a user's, by value.
template <class B>
class AnyLeaf final : public AnyBlock<typename B::value_type> {
  using T = typename B::value_type;
  using In = typename B::input_type;
  using Out = typename B::output_type;
  static constexpr nn::BatchKind in_kind = batch_kind_of<T, In>();
  static constexpr nn::BatchKind out_kind = batch_kind_of<T, Out>();
  static constexpr bool per_step_ok = in_kind == nn::BatchKind::rows && out_kind == nn::BatchKind::rows;

  struct Ctx final : AnyBlockContext {
    explicit Ctx(std::uint64_t seed) : c(make_layer_context<typename B::Context>(seed)) {}
    typename B::Context c;
    nn::SequenceBatch<T> seq;  // a per-step forward's sequence
    NnBuffer<T> last;          // forward_last's output
  };

 public:
  explicit AnyLeaf(B b) : b_(std::move(b)) {}
  const char* kind() const noexcept override { return B::kind; }
  nn::BlockSpec spec() const override { return b_.spec(); }
  nn::BatchKind input_kind() const noexcept override { return in_kind; }
  nn::BatchKind output_kind(nn::BatchKind in) const noexcept override {
    if (in == in_kind) return out_kind;
    if (per_step_ok && in == nn::BatchKind::sequence) return nn::BatchKind::sequence;
    return nn::BatchKind::none;
  }
  index input_width() const override { return b_.input_width(); }
  index output_width(index in) const override { return b_.output_width(in); }
  void collect(const std::string& prefix, nn::BlockList<T>& list) override { list.add(prefix, b_); }
  void train(bool on) override { b_.train(on); }
  std::unique_ptr<AnyBlockContext> make_context(std::uint64_t seed) const override {
    return std::make_unique<Ctx>(seed);
  }

  AnyFlow<T> forward(const AnyFlow<T>& x, AnyBlockContext& ctx) const override {
    Ctx& c = static_cast<Ctx&>(ctx);
    if constexpr (per_step_ok) {
      if (x.kind == nn::BatchKind::sequence) {
        c.seq = x.sequence();
        const ConstMatrixView<T> y = b_.forward(x.matrix(), c.c);
        return x.with_rows(y.data(), y.cols());
      }
    }
    return AnyFlow<T>::of(b_.forward(x.template as<In>(), c.c));
  }

  AnyFlow<T> backward(AnyBlockContext& ctx, const AnyFlow<T>& d) override {
    Ctx& c = static_cast<Ctx&>(ctx);
    if constexpr (per_step_ok) {
      if (d.kind == nn::BatchKind::sequence) {
        const ConstMatrixView<T> dx = b_.backward(c.c, d.matrix());
        return AnyFlow<T>::of(c.seq).with_rows(dx.data(), dx.cols());
      }
    }
    return AnyFlow<T>::of(b_.backward(c.c, d.template as<Out>()));
  }

  bool has_forward_last() const noexcept override { return uvp::detail::has_forward_last<B>::value; }
  bool selects_last_step() const noexcept override { return uvp::detail::selects_last_step<B>::value; }
  ConstMatrixView<T> forward_last(const nn::SequenceBatch<T>& x, AnyBlockContext& ctx) const override {
    if constexpr (uvp::detail::has_forward_last<B>::value) {
      Ctx& c = static_cast<Ctx&>(ctx);
      auto h = c.last.matrix(x.batch, b_.output_width(x.features));
      b_.forward_last(x, h, c.c);
      return {h.data(), h.rows(), h.cols()};
    } else {
      return AnyBlock<T>::forward_last(x, ctx);
    }
  }

 private:
  B b_;
};

/// nn::Residual over an erased block: y = x + block(x).
template <class T>
class AnyResidual final : public AnyBlock<T> {
  struct Ctx final : AnyBlockContext {
    std::unique_ptr<AnyBlockContext> inner;
    NnBuffer<T> out, dx;
  };

 public:
  explicit AnyResidual(std::unique_ptr<AnyBlock<T>> inner) : inner_(std::move(inner)) {
    const index w = inner_->input_width();
    if (w >= 0) output_width(w);
  }
  const char* kind() const noexcept override { return "Residual"; }
  nn::BlockSpec spec() const override {
    nn::BlockSpec s(kind());
    s.children.push_back(inner_->spec());
    return s;
  }
  nn::BatchKind input_kind() const noexcept override { return inner_->input_kind(); }
  nn::BatchKind output_kind(nn::BatchKind in) const noexcept override {
    const bool values = in == nn::BatchKind::rows || in == nn::BatchKind::sequence;
    return values && inner_->output_kind(in) == in ? in : nn::BatchKind::none;
  }
  index input_width() const override { return inner_->input_width(); }
  index output_width(index in) const override {
    if (in >= 0) {
      const index out = inner_->output_width(in);
      if (out != in)
        raise<shape_error>("uvp::nn::Residual: the block (", inner_->kind(), ") maps ", in, " features to ", out,
                           "; a residual needs the same width");
    }
    return in;
  }
  void collect(const std::string& prefix, nn::BlockList<T>& list) override { inner_->collect(prefix, list); }
  void train(bool on) override { inner_->train(on); }
  std::unique_ptr<AnyBlockContext> make_context(std::uint64_t seed) const override {
    auto c = std::make_unique<Ctx>();
    c->inner = inner_->make_context(seed);
    return c;
  }
  AnyFlow<T> forward(const AnyFlow<T>& x, AnyBlockContext& ctx) const override {
    Ctx& c = static_cast<Ctx&>(ctx);
    const AnyFlow<T> fx = inner_->forward(x, *c.inner);
    check_shape("uvp::nn::Residual::forward", "block(x)", fx.rows, fx.cols, x.rows, x.cols);
    auto y = c.out.matrix(fx.rows, fx.cols);
    y = x.matrix() + fx.matrix();
    return fx.with_rows(y.data(), y.cols());
  }
  AnyFlow<T> backward(AnyBlockContext& ctx, const AnyFlow<T>& d) override {
    Ctx& c = static_cast<Ctx&>(ctx);
    const AnyFlow<T> g = inner_->backward(*c.inner, d);
    auto dx = c.dx.matrix(g.rows, g.cols);
    dx = d.matrix() + g.matrix();
    return g.with_rows(dx.data(), dx.cols());
  }

 private:
  std::unique_ptr<AnyBlock<T>> inner_;
};

/// nn::Sum over two erased blocks: y = a(x) + b(x).
template <class T>
class AnySum final : public AnyBlock<T> {
  struct Ctx final : AnyBlockContext {
    std::unique_ptr<AnyBlockContext> a, b;
    NnBuffer<T> out, dx;
  };

 public:
  AnySum(std::unique_ptr<AnyBlock<T>> a, std::unique_ptr<AnyBlock<T>> b) : a_(std::move(a)), b_(std::move(b)) {
    if (a_->input_kind() != b_->input_kind() || a_->output_kind(a_->input_kind()) != b_->output_kind(b_->input_kind()))
      raise<invalid_argument>("uvp::nn::Sum: block 0 (", a_->kind(), ") reads ", nn::batch_kind_name(a_->input_kind()),
                              ", block 1 (", b_->kind(), ") ", nn::batch_kind_name(b_->input_kind()),
                              "; both must read and give the same kinds");
    const index in = input_width();
    const index wa = a_->output_width(in), wb = b_->output_width(in);
    if (wa >= 0 && wb >= 0 && wa != wb)
      raise<shape_error>("uvp::nn::Sum: block 0 (", a_->kind(), ") gives ", wa, " features, block 1 (", b_->kind(),
                         ") gives ", wb);
    const index ia = a_->input_width(), ib = b_->input_width();
    if (ia >= 0 && ib >= 0 && ia != ib)
      raise<shape_error>("uvp::nn::Sum: block 0 (", a_->kind(), ") takes ", ia, " features, block 1 (", b_->kind(),
                         ") takes ", ib);
  }
  const char* kind() const noexcept override { return "Sum"; }
  nn::BlockSpec spec() const override {
    nn::BlockSpec s(kind());
    s.children.push_back(a_->spec());
    s.children.push_back(b_->spec());
    return s;
  }
  nn::BatchKind input_kind() const noexcept override { return a_->input_kind(); }
  nn::BatchKind output_kind(nn::BatchKind in) const noexcept override {
    const nn::BatchKind oa = a_->output_kind(in);
    return oa == b_->output_kind(in) ? oa : nn::BatchKind::none;
  }
  index input_width() const override { return a_->input_width() >= 0 ? a_->input_width() : b_->input_width(); }
  index output_width(index in) const override {
    const index wa = a_->output_width(in);
    return wa >= 0 ? wa : b_->output_width(in);
  }
  void collect(const std::string& prefix, nn::BlockList<T>& list) override {
    a_->collect(prefix.empty() ? "0" : prefix + ".0", list);
    b_->collect(prefix.empty() ? "1" : prefix + ".1", list);
  }
  void train(bool on) override { a_->train(on), b_->train(on); }
  std::unique_ptr<AnyBlockContext> make_context(std::uint64_t seed) const override {
    auto c = std::make_unique<Ctx>();
    c->a = a_->make_context(seed);
    c->b = b_->make_context(seed + 1);
    return c;
  }
  AnyFlow<T> forward(const AnyFlow<T>& x, AnyBlockContext& ctx) const override {
    Ctx& c = static_cast<Ctx&>(ctx);
    const AnyFlow<T> ya = a_->forward(x, *c.a);
    const AnyFlow<T> yb = b_->forward(x, *c.b);
    check_shape("uvp::nn::Sum::forward", "second block's output", yb.rows, yb.cols, ya.rows, ya.cols);
    auto y = c.out.matrix(ya.rows, ya.cols);
    y = ya.matrix() + yb.matrix();
    return ya.with_rows(y.data(), y.cols());
  }
  AnyFlow<T> backward(AnyBlockContext& ctx, const AnyFlow<T>& d) override {
    Ctx& c = static_cast<Ctx&>(ctx);
    const AnyFlow<T> da = a_->backward(*c.a, d);
    if (da.kind == nn::BatchKind::none) {  // token ids: no input gradient
      b_->backward(*c.b, d);
      return da;
    }
    auto dx = c.dx.matrix(da.rows, da.cols);
    dx = da.matrix();
    const AnyFlow<T> db = b_->backward(*c.b, d);
    dx += db.matrix();
    return da.with_rows(dx.data(), dx.cols());
  }

 private:
  std::unique_ptr<AnyBlock<T>> a_, b_;
};

template <class B, class = void>
struct has_from_spec : std::false_type {};
template <class B>
struct has_from_spec<B, std::void_t<decltype(B::from_spec(std::declval<const nn::BlockSpec&>()))>> : std::true_type {};

template <class B, class = void>
struct has_spec_parameter_count : std::false_type {};
template <class B>
struct has_spec_parameter_count<
    B, std::void_t<decltype(index(B::spec_parameter_count(std::declval<const nn::BlockSpec&>())))>> : std::true_type {};

/// The kinds load_model can build, for scalar type T: kind -> factory and parameter bound.
template <class T>
class BlockRegistry {
 public:
  /// Builds the block of spec s; `at` names it in messages ("block 1 'lstm'").
  using Factory = std::unique_ptr<AnyBlock<T>> (*)(const nn::BlockSpec& s, const std::string& at);
  /// A lower bound on the parameters the block of s holds (what its construction allocates, up to
  /// smaller terms), computed without building it; +inf for absurd arguments.
  using Bound = double (*)(const nn::BlockSpec& s, const std::string& at);
  struct Entry {
    Factory make = nullptr;
    Bound parameters = nullptr;
  };

  static BlockRegistry& instance();

  /// Adds kind; registering the same factory again is a no-op, another one for a known kind is a
  /// uvp::invalid_argument.
  void add(const std::string& kind, Entry e) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(kind);
    if (it == entries_.end()) {
      entries_.emplace(kind, e);
      return;
    }
    if (it->second.make != e.make)
      raise<invalid_argument>("uvp::nn::register_block: kind '", printable(kind),
                              "' is already registered for another block type");
  }
  bool find(const std::string& kind, Entry& out) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(kind);
    if (it == entries_.end()) return false;
    out = it->second;
    return true;
  }
  std::vector<std::string> kinds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.first);
    return out;
  }

 private:
  BlockRegistry();
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

template <class T>
typename BlockRegistry<T>::Entry registry_entry(const nn::BlockSpec& s, const std::string& at) {
  typename BlockRegistry<T>::Entry e;
  if (!BlockRegistry<T>::instance().find(s.kind, e))
    raise<format_error>(at, " has the unknown block kind '", printable(s.kind),
                        "' (register it with uvp::nn::register_block<YourBlock>() before loading)");
  return e;
}

/// The erased block of spec s, its children built through the registry.
template <class T>
std::unique_ptr<AnyBlock<T>> build_any_block(const nn::BlockSpec& s, const std::string& at) {
  return registry_entry<T>(s, at).make(s, at);
}

/// The registry's parameter bound of s (unknown kinds: uvp::format_error naming them).
template <class T>
double spec_parameter_bound(const nn::BlockSpec& s, const std::string& at) {
  return registry_entry<T>(s, at).parameters(s, at);
}

// An argument as a size for a bound: 0 when absent or negative (from_spec refuses those), +inf
// when not finite.
inline double spec_size(const nn::BlockSpec& s, const char* name) {
  for (const auto& a : s.args)
    if (a.first == name) return std::isnan(a.second) ? HUGE_VAL : a.second < 0 ? 0.0 : a.second;
  return 0;
}

template <class T>
double children_parameter_bound(const nn::BlockSpec& s, const std::string& at) {
  double n = 0;
  for (std::size_t c = 0; c < s.children.size(); ++c) n += spec_parameter_bound<T>(s.children[c], str(at, " child ", c));
  return n;
}

/// The parameters of a library block of spec s (the dominant terms: what its tensors hold), or
/// what else its construction allocates in proportion to an argument.
template <class T>
double library_parameter_bound(const nn::BlockSpec& s, const std::string& at) {
  const std::string& k = s.kind;
  auto a = [&](const char* name) { return spec_size(s, name); };
  if (k == "Dense") return a("in_features") * a("out_features") + a("bias") * a("out_features");
  if (k == "LayerNorm") return 2 * a("elementwise_affine") * a("normalized_shape");
  // (+ 1: the table's row map of its sparse gradient, allocated even for dim 0)
  if (k == "Embedding" || k == "EmbeddingBag") return a("num_embeddings") * (a("embedding_dim") + 1);
  if (k == "PositionEmbedding") return a("max_steps") * a("embedding_dim");
  if (k == "MultiHeadSelfAttention") return 4 * a("embed_dim") * (a("embed_dim") + 1);
  if (k == "Conv1d") return a("out_channels") * (a("in_channels") * a("kernel_size") + a("bias"));
  const double layers = a("num_layers") > 1 ? a("num_layers") : 1, h = a("hidden_size"), in = a("input_size");
  if (k == "Lstm") return 4 * h * (in + h) + (layers - 1) * 8 * h * h;
  if (k == "Gru") return 3 * h * (in + h) + (layers - 1) * 6 * h * h;
  return children_parameter_bound<T>(s, at);  // Sequential, and no parameters for the rest
}

template <class B>
std::unique_ptr<AnyBlock<typename B::value_type>> make_any_leaf(const nn::BlockSpec& s, const std::string&) {
  return std::make_unique<AnyLeaf<B>>(B::from_spec(s));
}

template <class B>
double user_parameter_bound(const nn::BlockSpec& s, const std::string& at) {
  if constexpr (has_spec_parameter_count<B>::value)
    return static_cast<double>(B::spec_parameter_count(s));
  else
    return children_parameter_bound<typename B::value_type>(s, at);
}

template <class T>
std::unique_ptr<AnyBlock<T>> make_any_residual(const nn::BlockSpec& s, const std::string& at) {
  if (s.children.size() != 1)
    raise<format_error>(at, ": a Residual has one child, the file gives ", s.children.size());
  return std::make_unique<AnyResidual<T>>(build_any_block<T>(s.children[0], at + " child 0"));
}

template <class T>
std::unique_ptr<AnyBlock<T>> make_any_sum(const nn::BlockSpec& s, const std::string& at) {
  if (s.children.size() != 2) raise<format_error>(at, ": a Sum has two children, the file gives ", s.children.size());
  auto a = build_any_block<T>(s.children[0], at + " child 0");
  auto b = build_any_block<T>(s.children[1], at + " child 1");
  return std::make_unique<AnySum<T>>(std::move(a), std::move(b));
}

// Registers B when it fulfils the contract and has from_spec (a library block that does not yet is
// left out, so the registry follows the library as blocks gain spec / from_spec).
template <class B>
void add_library_block(BlockRegistry<typename B::value_type>& r) {
  if constexpr (nn::is_layer_v<B> && has_from_spec<B>::value && has_block_spec<B>::value)
    r.add(B::kind, {&make_any_leaf<B>, &library_parameter_bound<typename B::value_type>});
}

template <class T>
BlockRegistry<T>::BlockRegistry() {
  using namespace uvp::nn;
  add_library_block<Dense<T>>(*this);
  add_library_block<Relu<T>>(*this);
  add_library_block<Sigmoid<T>>(*this);
  add_library_block<Tanh<T>>(*this);
  add_library_block<Gelu<T>>(*this);
  add_library_block<Softmax<T>>(*this);
  add_library_block<Dropout<T>>(*this);
  add_library_block<LayerNorm<T>>(*this);
  add_library_block<Sequential<T>>(*this);
  add_library_block<Embedding<T>>(*this);
  add_library_block<EmbeddingBag<T>>(*this);
  add_library_block<PositionEmbedding<T>>(*this);
  add_library_block<GlobalMaxPool1d<T>>(*this);
  add_library_block<GlobalMeanPool1d<T>>(*this);
  add_library_block<GlobalLastPool1d<T>>(*this);
  add_library_block<MultiHeadSelfAttention<T>>(*this);
  add_library_block<Conv1d<T>>(*this);
  add_library_block<Lstm<T>>(*this);
  add_library_block<Gru<T>>(*this);
  add("Residual", {&make_any_residual<T>, &children_parameter_bound<T>});
  add("Sum", {&make_any_sum<T>, &children_parameter_bound<T>});
}

template <class T>
BlockRegistry<T>& BlockRegistry<T>::instance() {
  static BlockRegistry r;  // thread-safe initialisation; add / find lock
  return r;
}

inline std::uint64_t next_any_model_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Makes load_model able to build blocks of kind B::kind (B's scalar type). B fulfils the layer
/// contract and has BlockSpec spec() const and static B from_spec(const BlockSpec&). Thread-safe;
/// registering B again is a no-op; another type under a kind already known (a library kind
/// included) is a uvp::invalid_argument.
template <class B>
void register_block() {
  static_assert(check_layer<B>(), "uvp::nn::register_block: B must fulfil the layer contract (uvp/nn/layer.hpp)");
  static_assert(uvp::detail::has_from_spec<B>::value && uvp::detail::has_block_spec<B>::value,
                "uvp::nn::register_block: B needs BlockSpec spec() const and static B from_spec(const BlockSpec&)");
  uvp::detail::BlockRegistry<typename B::value_type>::instance().add(
      B::kind, {&uvp::detail::make_any_leaf<B>, &uvp::detail::user_parameter_bound<B>});
}

/// The kinds load_model<T> can build, sorted.
template <class T>
std::vector<std::string> registered_block_kinds() {
  return uvp::detail::BlockRegistry<T>::instance().kinds();
}

/// A model of blocks known at run time (see the top of this file): built from an architecture
/// (load_model, from_architecture) with one parameter buffer, run through one virtual call per
/// block.
template <class T>
class AnyModel {
 public:
  using value_type = T;
  static constexpr const char* kind = "AnyModel";

  /// Per-call state: every block's context, made on the first forward with a model. One per
  /// thread; buffers only grow.
  class Context : public uvp::detail::NnContextBase {
   public:
    /// seed: the Rng of the first block that draws (Dropout), seed + i for block i (as nn::Chain).
    explicit Context(std::uint64_t seed = 0x5eed) : seed_(seed) {}

   private:
    friend class AnyModel;
    std::uint64_t seed_, model_ = 0;
    std::vector<std::unique_ptr<uvp::detail::AnyBlockContext>> blocks_;
    uvp::detail::NnBuffer<T> x_, d_;  // a strided input / d_output, made contiguous
    uvp::detail::AnyFlow<T> out_;
    bool inference_path_ = false;
  };

  /// The blocks of arch, built through the registry with fresh weights (from each kind's
  /// from_spec; load values after). uvp::format_error for an unknown kind, the blocks' errors for
  /// bad arguments, uvp::shape_error / invalid_argument for blocks that do not fit together.
  static AnyModel from_architecture(const ModelArchitecture& arch) {
    std::vector<std::pair<std::string, std::unique_ptr<uvp::detail::AnyBlock<T>>>> blocks;
    for (std::size_t i = 0; i < arch.size(); ++i)
      blocks.emplace_back(arch[i].first, uvp::detail::build_any_block<T>(
                                             arch[i].second, uvp::detail::str("block ", i, " '",
                                                                              uvp::detail::printable(arch[i].first), "'")));
    return AnyModel(std::move(blocks));
  }

  AnyModel(AnyModel&&) noexcept = default;
  AnyModel& operator=(AnyModel&&) noexcept = default;

  index size() const noexcept { return static_cast<index>(impl_->blocks.size()); }
  const std::vector<std::string>& names() const noexcept { return impl_->names; }
  /// Every block's name and spec, in order (what a model file stores).
  ModelArchitecture architecture() const {
    ModelArchitecture out;
    for (std::size_t i = 0; i < impl_->blocks.size(); ++i) out.emplace_back(impl_->names[i], impl_->blocks[i]->spec());
    return out;
  }
  /// What forward reads, and what its output is (rows, or a sequence given as its rows).
  BatchKind input_kind() const noexcept { return impl_->input_kind; }
  BatchKind output_kind() const noexcept { return impl_->output_kind; }
  /// Features per input row (-1: any, or token ids) and per output row (-1: as the input's).
  index input_width() const { return impl_->blocks.front()->input_width(); }
  index output_width() const noexcept { return impl_->output_width; }

  ModelParameters<T>& parameters() noexcept { return *impl_->params; }
  const ModelParameters<T>& parameters() const noexcept { return *impl_->params; }
  const BlockList<T>& blocks() const noexcept { return impl_->list; }
  index parameter_count() const noexcept { return impl_->params->parameter_count(); }
  void zero_grad() noexcept { impl_->params->zero_grad(); }
  bool is_training() const noexcept { return impl_->training; }
  void train(bool on = true) {
    impl_->training = on;
    for (auto& b : impl_->blocks) b->train(on);
  }
  void eval() { train(false); }

  /// Runs every block; returns the output rows, a view owned by ctx (valid until its next
  /// forward). uvp::invalid_argument when x is not what the model reads (input_kind()); the
  /// blocks' errors for bad shapes or ids. Const and thread-safe with one ctx per thread.
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    begin(BatchKind::rows, ctx);
    if (x.rows() > 1 && x.outerStride() != x.cols()) {  // a block of a larger matrix: made contiguous
      auto c = ctx.x_.matrix(x.rows(), x.cols());
      c = x;
      return run(uvp::detail::AnyFlow<T>::of(ConstMatrixView<T>(c.data(), c.rows(), c.cols())), ctx);
    }
    return run(uvp::detail::AnyFlow<T>::of(ConstMatrixView<T>(x.data(), x.rows(), x.cols())), ctx);
  }
  ConstMatrixView<T> forward(const SequenceBatch<T>& x, Context& ctx) const {
    begin(BatchKind::sequence, ctx);
    return run(uvp::detail::AnyFlow<T>::of(x), ctx);
  }
  ConstMatrixView<T> forward(const TokenBatch& x, Context& ctx) const {
    begin(BatchKind::tokens, ctx);
    return run(uvp::detail::AnyFlow<T>::of(x), ctx);
  }
  ConstMatrixView<T> forward(const TokenBags& x, Context& ctx) const {
    begin(BatchKind::bags, ctx);
    return run(uvp::detail::AnyFlow<T>::of(x), ctx);
  }

  /// Backpropagates d_output (the shape of ctx's last forward output) through every block,
  /// accumulating parameter gradients; returns the gradient of the forward's rows or sequence
  /// values (a view owned by ctx), 0 x 0 for token ids. uvp::invalid_argument without a completed
  /// forward in ctx, or after an eval-mode forward that took the inference path.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> d_output) {
    constexpr const char* where = "uvp::nn::AnyModel::backward";
    const uvp::detail::NnBlockShape shape{{"blocks", size()}};
    uvp::detail::nn_require_forward(where, ctx, "AnyModel", &shape);
    if (ctx.model_ != impl_->id)
      uvp::detail::raise<invalid_argument>(where, ": ctx holds a forward pass of another model");
    if (ctx.inference_path_)
      uvp::detail::raise<invalid_argument>(where,
                                           ": the last forward ran in eval mode through the inference path (a "
                                           "recurrent block before GlobalLastPool1d keeps no history); call train() "
                                           "before the forward you backpropagate");
    uvp::detail::check_shape(where, "d_output", d_output.rows(), d_output.cols(), ctx.out_.rows, ctx.out_.cols);
    const T* d = d_output.data();
    if (d_output.rows() > 1 && d_output.outerStride() != d_output.cols()) {
      auto c = ctx.d_.matrix(d_output.rows(), d_output.cols());
      c = d_output;
      d = c.data();
    }
    uvp::detail::AnyFlow<T> g = ctx.out_.with_rows(d, ctx.out_.cols);
    for (std::size_t i = impl_->blocks.size(); i-- > 0;) g = impl_->blocks[i]->backward(*ctx.blocks_[i], g);
    if (g.kind == BatchKind::none) return {nullptr, 0, 0};
    return g.matrix();
  }

  /// The blocks with their names (distinct, non-empty, without '.'); checks that each reads what
  /// its predecessor gives and fits its width (uvp::invalid_argument / uvp::shape_error naming
  /// both blocks). Normally reached through load_model or from_architecture.
  explicit AnyModel(std::vector<std::pair<std::string, std::unique_ptr<uvp::detail::AnyBlock<T>>>> blocks)
      : impl_(std::make_unique<Impl>()) {
    constexpr const char* where = "uvp::nn::AnyModel";
    if (blocks.empty()) uvp::detail::raise<invalid_argument>(where, ": give at least one block");
    for (auto& b : blocks) {
      if (!b.second) uvp::detail::raise<invalid_argument>(where, ": block '", b.first, "' is null");
      impl_->names.push_back(std::move(b.first));
      impl_->blocks.push_back(std::move(b.second));
    }
    const auto& names = impl_->names;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i].empty() || names[i].find('.') != std::string::npos)
        uvp::detail::raise<invalid_argument>(where, ": block ", i, " is named '", uvp::detail::printable(names[i]),
                                             "'; a name must be non-empty and without '.'");
      for (std::size_t j = 0; j < i; ++j)
        if (names[i] == names[j])
          uvp::detail::raise<invalid_argument>(where, ": blocks ", j, " and ", i, " are both named '",
                                               uvp::detail::printable(names[i]), "'");
    }
    check_blocks();
    for (std::size_t i = 0; i < impl_->blocks.size(); ++i) impl_->blocks[i]->collect(names[i], impl_->list);
    impl_->params = std::make_unique<ModelParameters<T>>(impl_->list);  // binds every block
    impl_->id = uvp::detail::next_any_model_id();
  }

 private:
  struct Impl {
    std::vector<std::unique_ptr<uvp::detail::AnyBlock<T>>> blocks;
    std::vector<std::string> names;
    BlockList<T> list;
    std::unique_ptr<ModelParameters<T>> params;
    BatchKind input_kind = BatchKind::none, output_kind = BatchKind::none;
    index output_width = -1;
    bool training = true;
    std::uint64_t id = 0;
  };

  void check_blocks() {
    const auto& blocks = impl_->blocks;
    const auto& names = impl_->names;
    BatchKind flow = blocks[0]->input_kind();
    impl_->input_kind = flow;
    index width = -1;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const auto& b = *blocks[i];
      const index want = b.input_width();
      if (i > 0 && want >= 0 && width >= 0 && want != width)
        uvp::detail::raise<shape_error>("uvp::nn::AnyModel: block ", i, " '", uvp::detail::printable(names[i]), "' (",
                                        b.kind(), ") takes ", want, " features per row, but block ", i - 1, " '",
                                        uvp::detail::printable(names[i - 1]), "' (", blocks[i - 1]->kind(), ") gives ",
                                        width);
      const BatchKind out = b.output_kind(flow);
      if (out == BatchKind::none)
        uvp::detail::raise<invalid_argument>("uvp::nn::AnyModel: block ", i, " '", uvp::detail::printable(names[i]),
                                             "' (", b.kind(), ") reads ", batch_kind_name(b.input_kind()), ", but ",
                                             i == 0 ? std::string("it is the first block")
                                                    : uvp::detail::str("block ", i - 1, " gives ", batch_kind_name(flow)));
      const index in = width >= 0 ? width : want;
      width = b.output_width(in);
      flow = out;
    }
    impl_->output_kind = flow;
    impl_->output_width = width;
  }

  void begin(BatchKind given, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"blocks", size()}});
    if (given != impl_->input_kind)
      uvp::detail::raise<invalid_argument>("uvp::nn::AnyModel::forward: the model reads ",
                                           batch_kind_name(impl_->input_kind), ", got ", batch_kind_name(given));
    if (ctx.model_ != impl_->id) {  // first use with this model: the blocks' contexts
      ctx.blocks_.clear();
      for (std::size_t i = 0; i < impl_->blocks.size(); ++i)
        ctx.blocks_.push_back(impl_->blocks[i]->make_context(ctx.seed_ + i));
      ctx.model_ = impl_->id;
    }
  }

  ConstMatrixView<T> run(uvp::detail::AnyFlow<T> flow, Context& ctx) const {
    const auto& blocks = impl_->blocks;
    const std::size_t n = blocks.size();
    ctx.inference_path_ = false;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& b = *blocks[i];
      if (!impl_->training && i + 1 < n && flow.kind == BatchKind::sequence && b.has_forward_last() &&
          blocks[i + 1]->selects_last_step()) {
        ctx.inference_path_ = true;
        flow = uvp::detail::AnyFlow<T>::of(b.forward_last(flow.sequence(), *ctx.blocks_[i]));
        ++i;  // the pooling's work is done
        continue;
      }
      flow = b.forward(flow, *ctx.blocks_[i]);
    }
    ctx.out_ = flow;
    uvp::detail::nn_end_forward(ctx);
    return flow.matrix();
  }

  std::unique_ptr<Impl> impl_;
};

}  // namespace uvp::nn

namespace uvp::detail {

/// Rebuilds the model of a version 2 file: structure and checksum, scalar type, kinds and the
/// parameter bound, then the blocks, then the weights (every check of load).
template <class T>
nn::AnyModel<T> decode_any_model(const char* where, const std::string& source, const unsigned char* p,
                                 std::size_t size, bool allow_non_finite) {
  const ParsedModelFile parsed = parse_model_file(where, source, p, size);
  if (!parsed.has_architecture)
    raise<format_error>(where, ": ", source, " is a version 1 model file (weights only, no architecture): build "
                        "the model in C++ and load it with uvp::nn::load(path, model)");
  if (parsed.scalar != model_file_scalar_code<T>())
    raise<format_error>(where, ": ", source, " holds ", model_file_scalar_name(parsed.scalar), " values but load_model<",
                        model_file_scalar_name(model_file_scalar_code<T>()),
                        "> was called (uvp does not convert; call load_model with the file's type)");
  // Nothing is built before the file is known to hold the values its architecture implies: a
  // lying size cannot make a block allocate much more than the file holds.
  const auto& arch = parsed.architecture;
  std::vector<std::string> at;
  double implied = 0;
  try {
    for (std::size_t i = 0; i < arch.size(); ++i) {
      at.push_back(str("block ", i, " '", printable(arch[i].first), "'"));
      implied += spec_parameter_bound<T>(arch[i].second, at.back());
      // (twice, plus a little: the bounds count what construction allocates besides the weights)
      if (!(implied <= 2 * static_cast<double>(parsed.total_values) + 65536))
        raise<format_error>(at.back(), " (", printable(arch[i].second.kind),
                            "): the blocks up to this one hold at least ", implied, " parameters, but the file holds ",
                            parsed.total_values, " values");
    }
  } catch (const error& e) {
    raise<format_error>(where, ": ", source, ": ", e.what());
  }
  std::vector<std::pair<std::string, std::unique_ptr<AnyBlock<T>>>> blocks;
  std::size_t i = 0;
  try {
    for (; i < arch.size(); ++i) blocks.emplace_back(arch[i].first, build_any_block<T>(arch[i].second, at[i]));
  } catch (const error& e) {
    raise<format_error>(where, ": ", source, ": ", at[i], " (", printable(arch[i].second.kind), "): ", e.what());
  } catch (const std::bad_alloc&) {
    raise<format_error>(where, ": ", source, ": ", at[i], " (", printable(arch[i].second.kind),
                        "): out of memory building the block");
  } catch (const std::length_error&) {
    raise<format_error>(where, ": ", source, ": ", at[i], " (", printable(arch[i].second.kind),
                        "): too large to build");
  }
  std::unique_ptr<nn::AnyModel<T>> model;
  try {
    model = std::make_unique<nn::AnyModel<T>>(std::move(blocks));
  } catch (const error& e) {
    raise<format_error>(where, ": ", source, ": its blocks do not fit together: ", e.what());
  }
  try {
    apply_model_file(where, source, parsed, p, model->blocks(), allow_non_finite);
  } catch (const shape_error& e) {  // the file's tensors disagree with its own architecture
    raise<format_error>(e.what());
  }
  return std::move(*model);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// The model a version 2 file describes, with its weights, built without knowing its C++ type
/// (see the top of this file). Errors, all with the file named:
///   uvp::io_error      the file cannot be opened or read, or is not a regular file
///   uvp::format_error  everything load refuses (magic, version, truncation, checksum, scalar type,
///                      tensors, non-finite values), a version 1 file (no architecture), an
///                      unknown block kind (naming it and the block), a spec a block refuses, an
///                      architecture that implies more parameters than the file holds, blocks that
///                      do not fit together
template <class T>
AnyModel<T> load_model(const std::string& path, const LoadOptions& options = LoadOptions{}) {
  constexpr const char* where = "uvp::nn::load_model";
  const std::string bytes = uvp::detail::read_whole_file(where, path);
  return uvp::detail::decode_any_model<T>(where, uvp::detail::quoted_path(path),
                                          reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                                          options.allow_non_finite);
}

/// From bytes made by save(std::vector<std::uint8_t>&, model).
template <class T>
AnyModel<T> load_model(const std::vector<std::uint8_t>& bytes, const LoadOptions& options = LoadOptions{}) {
  return uvp::detail::decode_any_model<T>("uvp::nn::load_model", "the byte buffer", bytes.data(), bytes.size(),
                                          options.allow_non_finite);
}

/// Writes the model as a version 2 file (architecture and weights), atomically.
template <class T>
void save(const std::string& path, const AnyModel<T>& model) {
  const ModelArchitecture arch = model.architecture();
  write_file_atomic(path, uvp::detail::encode_model("uvp::nn::save", model.blocks(), &arch), "uvp::nn::save");
}
template <class T>
void save(std::vector<std::uint8_t>& bytes, const AnyModel<T>& model) {
  const ModelArchitecture arch = model.architecture();
  const std::string s = uvp::detail::encode_model("uvp::nn::save", model.blocks(), &arch);
  bytes.assign(s.begin(), s.end());
}

}  // namespace uvp::nn
