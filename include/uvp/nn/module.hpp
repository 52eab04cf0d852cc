// SPDX-License-Identifier: Apache-2.0
// What every neural block shares: its named weight tensors in one flat Parameters buffer,
// train/eval mode, zero_grad, and (for embeddings) a sparse row gradient. Models made of several
// blocks are handled as a BlockList: one optimizer step, one zero_grad, one file.
#pragma once

#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::detail {

/// A block's shape as a context records it: up to six named sizes ({"embed_dim", 8}, ...).
struct NnBlockShape {
  static constexpr int max_dims = 6;
  const char* names[max_dims] = {};
  index values[max_dims] = {};
  int size = 0;

  NnBlockShape() = default;
  NnBlockShape(std::initializer_list<std::pair<const char*, index>> dims) noexcept {
    for (const auto& d : dims)
      if (size < max_dims) names[size] = d.first, values[size++] = d.second;
  }
  friend bool operator==(const NnBlockShape& a, const NnBlockShape& b) noexcept {
    if (a.size != b.size) return false;
    for (int i = 0; i < a.size; ++i)
      if (a.values[i] != b.values[i]) return false;
    return true;
  }
  std::string str() const {
    std::string out;
    for (int i = 0; i < size; ++i) out += (i ? ", " : "") + std::string(names[i]) + " = " + std::to_string(values[i]);
    return out;
  }
};

/// What every nn block's Context shares: whether it holds a completed forward pass, and the
/// shape of the block that ran it. A block's forward calls nn_begin_forward first (so a forward
/// that throws, at any point, leaves the context invalid) and nn_end_forward last; its backward
/// and the context's accessors call nn_require_forward. One mechanism for every block.
class NnContextBase {
 public:
  /// True when the last forward run with this context completed; false before any forward and
  /// after one that threw. Backward and the index accessors require it.
  bool holds_forward() const noexcept { return complete_; }

 protected:
  NnContextBase() = default;

 private:
  friend void nn_begin_forward(NnContextBase& ctx, const NnBlockShape& shape) noexcept;
  friend void nn_end_forward(NnContextBase& ctx) noexcept;
  friend void nn_require_forward(const char* where, const NnContextBase& ctx, const char* block,
                                 const NnBlockShape* shape);
  NnBlockShape shape_;
  bool complete_ = false;
};

inline void nn_begin_forward(NnContextBase& ctx, const NnBlockShape& shape) noexcept {
  ctx.complete_ = false;
  ctx.shape_ = shape;
}

inline void nn_end_forward(NnContextBase& ctx) noexcept { ctx.complete_ = true; }

/// uvp::invalid_argument unless ctx holds a completed forward pass (of a block of this shape,
/// when shape is given). `block` is the block's name in the message ("Lstm").
inline void nn_require_forward(const char* where, const NnContextBase& ctx, const char* block,
                               const NnBlockShape* shape = nullptr) {
  if (!ctx.complete_)
    raise<invalid_argument>(where, ": ctx holds no forward pass of this ", block,
                            " (call forward first; a forward that threw leaves none)");
  if (shape && !(ctx.shape_ == *shape))
    raise<invalid_argument>(where, ": ctx comes from a block with ", ctx.shape_.str(), ", this one has ",
                            shape->str());
}

/// out_of_range_error unless 0 <= i < bound: "<where>: <what> = i is outside [0, <bound_name> = bound)".
inline void nn_check_index(const char* where, const char* what, index i, const char* bound_name, index bound) {
  if (i < 0 || i >= bound)
    raise<out_of_range_error>(where, ": ", what, " = ", i, " is outside [0, ", bound_name, " = ", bound, ")");
}

}  // namespace uvp::detail

namespace uvp::nn {

/// One named weight tensor of a block, with PyTorch's name and shape ("weight", {out, in}).
struct TensorInfo {
  std::string name;
  std::vector<index> shape;
  ParamSlot slot;
  bool sparse = false;  ///< gradient kept as touched rows (SparseRowGrad), not in grads()

  index numel() const noexcept {
    index n = 1;
    for (index d : shape) n *= d;
    return n;
  }
};

/// The gradient of a sparse tensor (an embedding table of rows x dim): the rows a backward pass
/// touched, each once, and their accumulated gradient rows.
template <class T>
struct SparseRowGrad {
  index dim = 0;
  std::vector<index> rows;               ///< distinct row ids, in first-touch order
  std::vector<T> values;                 ///< rows.size() x dim, row-major
  std::vector<index> slot_of_row;        ///< row id -> position in rows, -1 if untouched

  void clear() noexcept {
    for (index r : rows) slot_of_row[static_cast<std::size_t>(r)] = -1;
    rows.clear();
    values.clear();
  }
  index size() const noexcept { return static_cast<index>(rows.size()); }
  Span<const T> row(index k) const noexcept { return {values.data() + k * dim, dim}; }
  Span<T> row(index k) noexcept { return {values.data() + k * dim, dim}; }
};

/// Base of every trainable block (not virtual: blocks are used by value; BlockList keeps
/// pointers to this base). A block registers its tensors in its constructor with add_tensor,
/// then calls allocate_parameters() once; the values are then initialised through values(info).
template <class T>
class Block {
  static_assert(is_scalar_v<T>, "uvp::nn blocks: T must be float or double");

 public:
  using value_type = T;

  Parameters<T>& parameters() noexcept { return params_; }
  const Parameters<T>& parameters() const noexcept { return params_; }
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }

  /// Number of trainable scalars (without the alignment padding of the flat buffer).
  index parameter_count() const noexcept {
    index n = 0;
    for (const auto& t : tensors_) n += t.numel();
    return n;
  }

  Span<T> values(const TensorInfo& t) noexcept { return params_.values(t.slot); }
  Span<const T> values(const TensorInfo& t) const noexcept { return params_.values(t.slot); }
  /// Dense gradient of t; empty for a sparse tensor (see sparse_grad()).
  Span<T> grads(const TensorInfo& t) noexcept {
    return t.sparse ? Span<T>() : params_.grads(t.slot);
  }
  Span<const T> grads(const TensorInfo& t) const noexcept {
    return t.sparse ? Span<const T>() : params_.grads(t.slot);
  }

  /// The tensor called name; uvp::invalid_argument if there is none.
  const TensorInfo& tensor(const std::string& name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return t;
    uvp::detail::raise<invalid_argument>("uvp::nn::Block::tensor: no tensor named '", name, "'");
  }

  void zero_grad() noexcept {
    params_.zero_grad();
    sparse_.clear();
  }

  /// Size of the flat buffer the block's tensors need (parameter_count() plus the 64-byte
  /// alignment padding between tensors); what a model reserves for the block.
  index buffer_size() const noexcept { return params_.size(); }
  /// Moves the block's values (and dense gradients) into a region of a model's buffers and uses
  /// that region from now on: values has buffer_size() elements, grads as many (or none, for a
  /// block with a sparse tensor). The region must start on a 64-byte boundary and outlive the
  /// block's use of it; nn::Chain does this for every block it holds.
  void bind(Span<T> values, Span<T> grads) { params_.bind(values, grads); }

  bool is_training() const noexcept { return training_; }
  void train(bool on = true) noexcept { training_ = on; }
  void eval() noexcept { training_ = false; }

  bool has_sparse_grad() const noexcept { return sparse_index_ >= 0; }
  const SparseRowGrad<T>& sparse_grad() const noexcept { return sparse_; }
  /// Writable: what gradient clipping scales (the rows themselves must not be changed).
  SparseRowGrad<T>& sparse_grad() noexcept { return sparse_; }
  /// The sparse tensor (has_sparse_grad() must be true).
  const TensorInfo& sparse_tensor() const noexcept { return tensors_[static_cast<std::size_t>(sparse_index_)]; }

 protected:
  Block() = default;

  /// Registers a tensor; returns its position in tensors(). A sparse tensor must be the block's
  /// only tensor and have rank 2 (rows x dim).
  std::size_t add_tensor(std::string name, std::vector<index> shape, bool sparse = false) {
    TensorInfo t{std::move(name), std::move(shape), {}, sparse};
    for (index d : t.shape)
      if (d < 0) uvp::detail::raise<invalid_argument>("uvp::nn::Block: tensor '", t.name, "' has a negative dimension ", d);
    if (sparse && (!tensors_.empty() || t.shape.size() != 2))
      uvp::detail::raise<invalid_argument>("uvp::nn::Block: a sparse tensor must be the only tensor and of rank 2");
    if (sparse_index_ >= 0)
      uvp::detail::raise<invalid_argument>("uvp::nn::Block: a block with a sparse tensor has no other tensors");
    t.slot = layout_.add(t.numel());
    if (sparse) {
      sparse_index_ = static_cast<index>(tensors_.size());
      sparse_.dim = t.shape[1];
      sparse_.slot_of_row.assign(static_cast<std::size_t>(t.shape[0]), -1);
    }
    tensors_.push_back(std::move(t));
    return tensors_.size() - 1;
  }

  /// Allocates the flat buffer for the tensors added so far (values and gradients zero).
  void allocate_parameters() { params_.resize(layout_.size(), sparse_index_ < 0); }

  /// Accumulates g (dim values) into the sparse gradient row of `row` (a valid row id).
  void accumulate_sparse_row(index row, const T* g) {
    index& k = sparse_.slot_of_row[static_cast<std::size_t>(row)];
    if (k < 0) {
      k = sparse_.size();
      sparse_.rows.push_back(row);
      sparse_.values.insert(sparse_.values.end(), g, g + sparse_.dim);
      return;
    }
    T* dst = sparse_.values.data() + k * sparse_.dim;
    for (index j = 0; j < sparse_.dim; ++j) dst[j] += g[j];
  }
  SparseRowGrad<T>& sparse_grad_mutable() noexcept { return sparse_; }

 private:
  ParameterLayout<T> layout_;
  Parameters<T> params_;
  std::vector<TensorInfo> tensors_;
  SparseRowGrad<T> sparse_;
  index sparse_index_ = -1;
  bool training_ = true;
};

/// A model as a list of named blocks: what optimizers, zero_grad and save/load work on.
/// Names are joined with '.' to the tensors' own names ("lstm.weight_ih_l0").
/// The list holds pointers: the blocks must outlive it and must not move.
template <class T>
class BlockList {
 public:
  struct Entry {
    std::string name;
    Block<T>* block;
  };

  BlockList() = default;

  template <class B>
  BlockList& add(std::string name, B& block) {
    if constexpr (std::is_base_of_v<Block<T>, B>) {
      entries_.push_back({std::move(name), &block});
    } else {
      // Composites (Sequential, user models) add their children themselves.
      block.collect_blocks(name, *this);
    }
    return *this;
  }

  const std::vector<Entry>& entries() const noexcept { return entries_; }
  index size() const noexcept { return static_cast<index>(entries_.size()); }

  /// Trainable scalars of all blocks.
  index parameter_count() const noexcept {
    index n = 0;
    for (const auto& e : entries_) n += e.block->parameter_count();
    return n;
  }
  /// Size of the concatenated flat buffers: what an optimizer's state is sized to.
  index state_size() const noexcept {
    index n = 0;
    for (const auto& e : entries_) n += e.block->parameters().size();
    return n;
  }

  void zero_grad() noexcept {
    for (const auto& e : entries_) e.block->zero_grad();
  }
  void train(bool on = true) noexcept {
    for (const auto& e : entries_) e.block->train(on);
  }
  void eval() noexcept { train(false); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace uvp::nn

namespace uvp::detail {
/// A hint to the cache that p will be written soon; nothing where the compiler has no builtin.
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1);
#else
  (void)p;
#endif
}

template <class T>
void add_nn_blocks(nn::BlockList<T>&) {}
template <class T, class N, class B, class... Rest>
void add_nn_blocks(nn::BlockList<T>& list, const N& name, B& block, Rest&... rest) {
  list.add(std::string(name), block);
  add_nn_blocks<T>(list, rest...);
}
}  // namespace uvp::detail

namespace uvp::nn {

/// BlockList of (name, block) pairs: nn::blocks<float>("emb", emb, "lstm", lstm, "head", head).
template <class T, class... Rest>
BlockList<T> blocks(Rest&... rest) {
  static_assert(sizeof...(Rest) % 2 == 0, "uvp::nn::blocks: pass name, block pairs");
  BlockList<T> list;
  uvp::detail::add_nn_blocks<T>(list, rest...);
  return list;
}

/// One optimizer step over every block of the list: dense tensors as one slice each, sparse
/// tensors (embedding tables) lazily, row by row, over the rows their last backward touched
/// (torch.optim.SparseAdam's rule: untouched rows keep their values and moments).
/// The optimizer's state covers list.state_size() elements; it is sized on the first call.
template <class Optimizer, class T>
void step(Optimizer& opt, const BlockList<T>& list) {
  static_assert(std::is_same_v<typename Optimizer::value_type, T>,
                "uvp::nn::step: optimizer and blocks must have the same scalar type");
  const index total = list.state_size();
  if (opt.size() == 0)
    opt.resize(total);
  else if (opt.size() != total)
    uvp::detail::raise<shape_error>("uvp::nn::step: the optimizer's state has ", opt.size(),
                                    " elements, the blocks have ", total,
                                    " (was it used for another model? call reset())");
  opt.begin_step();
  index offset = 0;
  for (const auto& e : list.entries()) {
    Block<T>& b = *e.block;
    if (b.has_sparse_grad()) {
      const auto& sg = b.sparse_grad();
      const TensorInfo& t = b.sparse_tensor();
      Span<T> table = b.values(t);
      for (index k = 0; k < sg.size(); ++k) {
        const index r = sg.rows[static_cast<std::size_t>(k)];
        // Rows are scattered over a table that is far larger than the caches: fetching the row
        // updated a few iterations later halves the step's time (measured for W7's table).
        if (k + 8 < sg.size()) uvp::detail::prefetch_for_write(table.data() + sg.rows[static_cast<std::size_t>(k + 8)] * sg.dim);
        opt.update(table.subspan(r * sg.dim, sg.dim), sg.row(k), offset + t.slot.offset + r * sg.dim);
      }
    } else if (b.parameters().size() > 0) {
      opt.update(b.parameters().values(), Span<const T>(b.parameters().grads()), offset);
    }
    offset += b.parameters().size();
  }
}

}  // namespace uvp::nn
