// SPDX-License-Identifier: Apache-2.0
// One parameter buffer per model: the values of every block's tensors in one contiguous array,
// the gradients of the dense ones in a second, each tensor a named region (PyTorch state_dict
// names: "0.weight", "lstm.weight_ih_l0"). Embedding tables are sparse regions: their values sit
// at the end of the value buffer and their gradients stay the touched rows the block keeps.
//
//   values  [ dense region 0 | dense region 1 | ... | sparse table 0 | ... ]   size()
//   grads   [ dense region 0 | dense region 1 | ... ]                          dense_size()
//
// Every region starts on a 64-byte boundary. An optimizer steps the whole model with one call,
// nn::step(optimizer, model): one fused loop over the dense part, then the touched rows of each
// sparse table (torch.optim.SparseAdam's lazy rule). Early stopping, gradient clipping,
// checkpoints and (later) all-reduce over ranks work on the two arrays as a whole.
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

/// One named tensor of a model and where it lives in the model's buffers.
struct ModelTensor {
  std::string name;           ///< "<block name>.<tensor name>", PyTorch's state_dict key
  std::vector<index> shape;   ///< PyTorch's shape
  index offset = 0;           ///< first element in values() (and in grads() when dense)
  index count = 0;            ///< elements
  bool sparse = false;        ///< gradient kept as touched rows by its block, not in grads()
};

/// The flat buffers of a model made of blocks (see the top of this file). Built once from the
/// model's BlockList: every block is bound (Block::bind) to its region. The blocks must stay where
/// they are while this object lives (nn::Chain keeps them behind a stable pointer).
template <class T>
class ModelParameters {
 public:
  using value_type = T;
  using storage = std::vector<T, uvp::detail::aligned_allocator<T>>;

  ModelParameters() = default;
  ModelParameters(const ModelParameters&) = delete;
  ModelParameters& operator=(const ModelParameters&) = delete;

  /// Lays out and binds every block of list: dense blocks first, in list order, then sparse ones.
  explicit ModelParameters(const BlockList<T>& list) {
    index dense = 0, sparse = 0;
    for (const auto& e : list.entries()) (e.block->has_sparse_grad() ? sparse : dense) += e.block->buffer_size();
    values_.assign(static_cast<std::size_t>(dense + sparse), T(0));
    grads_.assign(static_cast<std::size_t>(dense), T(0));
    dense_size_ = dense;
    // Names and offsets first: a bad model throws before any block is bound.
    std::vector<index> region;
    index dense_at = 0, sparse_at = dense;
    for (const auto& e : list.entries()) {
      const Block<T>& b = *e.block;
      index& at = b.has_sparse_grad() ? sparse_at : dense_at;
      region.push_back(at);
      for (const auto& t : b.tensors())
        tensors_.push_back({e.name.empty() ? t.name : e.name + "." + t.name, t.shape, at + t.slot.offset, t.numel(),
                            t.sparse});
      at += b.buffer_size();
    }
    for (std::size_t i = 0; i < tensors_.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (tensors_[i].name == tensors_[j].name)
          uvp::detail::raise<invalid_argument>("uvp::nn::ModelParameters: two tensors are named '", tensors_[i].name,
                                               "' (give the blocks distinct names)");
    for (std::size_t k = 0; k < list.entries().size(); ++k) {
      Block<T>& b = *list.entries()[k].block;
      const index at = region[k], n = b.buffer_size();
      const bool is_sparse = b.has_sparse_grad();
      b.bind(Span<T>(values_.data() + at, n), is_sparse ? Span<T>() : Span<T>(grads_.data() + at, n));
      if (is_sparse) sparse_blocks_.push_back(&b), sparse_offsets_.push_back(at);
    }
    for (const auto& t : tensors_) parameter_count_ += t.count;
  }

  /// Every value, dense regions then sparse tables (what an optimizer's state is sized to).
  Span<T> values() noexcept { return as_span(values_); }
  Span<const T> values() const noexcept { return as_span(values_); }
  /// The gradients of the dense regions: elements [0, dense_size()) of values().
  Span<T> grads() noexcept { return as_span(grads_); }
  Span<const T> grads() const noexcept { return as_span(grads_); }
  index size() const noexcept { return static_cast<index>(values_.size()); }
  index dense_size() const noexcept { return dense_size_; }
  /// Trainable scalars (without alignment padding).
  index parameter_count() const noexcept { return parameter_count_; }

  /// Every tensor, in the order the model lists its blocks.
  const std::vector<ModelTensor>& tensors() const noexcept { return tensors_; }
  /// The tensor called name; uvp::invalid_argument listing none if absent.
  const ModelTensor& tensor(const std::string& name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return t;
    uvp::detail::raise<invalid_argument>("uvp::nn::ModelParameters::tensor: the model has no tensor named '", name,
                                         "'");
  }
  Span<T> values(const ModelTensor& t) noexcept { return values().subspan(t.offset, t.count); }
  Span<const T> values(const ModelTensor& t) const noexcept { return values().subspan(t.offset, t.count); }
  /// Dense gradient of t; empty for a sparse tensor.
  Span<const T> grads(const ModelTensor& t) const noexcept {
    return t.sparse ? Span<const T>() : grads().subspan(t.offset, t.count);
  }

  /// The blocks with a sparse table, and where each table starts in values().
  const std::vector<Block<T>*>& sparse_blocks() const noexcept { return sparse_blocks_; }
  const std::vector<index>& sparse_offsets() const noexcept { return sparse_offsets_; }

  /// Zeroes the dense gradients (one fill) and forgets the sparse ones.
  void zero_grad() noexcept {
    std::fill(grads_.begin(), grads_.end(), T(0));
    for (Block<T>* b : sparse_blocks_) b->zero_grad();
  }

 private:
  storage values_, grads_;
  index dense_size_ = 0, parameter_count_ = 0;
  std::vector<ModelTensor> tensors_;
  std::vector<Block<T>*> sparse_blocks_;
  std::vector<index> sparse_offsets_;
};

}  // namespace uvp::nn

namespace uvp::detail {
template <class M, class = void>
struct has_model_parameters : std::false_type {};
template <class M>
struct has_model_parameters<M, std::void_t<decltype(std::declval<M&>().parameters().dense_size())>> : std::true_type {};
}  // namespace uvp::detail

namespace uvp::nn {

/// One optimizer step over a whole model (anything whose parameters() is a ModelParameters):
/// the dense gradients in one call, then each sparse table lazily over the rows its last
/// backward touched (untouched rows keep their values and optimizer state). The optimizer's state
/// covers parameters().size() elements; it is sized on the first call.
template <class Optimizer, class Model,
          class = std::enable_if_t<uvp::detail::has_model_parameters<Model>::value>>
void step(Optimizer& opt, Model& model) {
  auto& p = model.parameters();
  using T = typename std::decay_t<decltype(p)>::value_type;
  static_assert(std::is_same_v<typename Optimizer::value_type, T>,
                "uvp::nn::step: the optimizer and the model must have the same scalar type");
  const index total = p.size();
  if (total == 0) return;
  if (opt.size() == 0)
    opt.resize(total);
  else if (opt.size() != total)
    uvp::detail::raise<shape_error>("uvp::nn::step: the optimizer's state has ", opt.size(),
                                    " elements, the model has ", total,
                                    " (was it used for another model? call reset())");
  opt.begin_step();
  if (p.dense_size() > 0)
    opt.update(p.values().subspan(0, p.dense_size()), Span<const T>(p.grads()), 0);
  const auto& blocks = p.sparse_blocks();
  for (std::size_t s = 0; s < blocks.size(); ++s) {
    const auto& sg = blocks[s]->sparse_grad();
    const index base = p.sparse_offsets()[s];
    Span<T> table = blocks[s]->values(blocks[s]->sparse_tensor());
    for (index k = 0; k < sg.size(); ++k) {
      const index r = sg.rows[static_cast<std::size_t>(k)];
      // Rows are scattered over a table far larger than the caches: fetching the row updated a
      // few iterations later halves the step's time (measured for W7's table).
      if (k + 8 < sg.size()) uvp::detail::prefetch_for_write(table.data() + sg.rows[static_cast<std::size_t>(k + 8)] * sg.dim);
      opt.update(table.subspan(r * sg.dim, sg.dim), sg.row(k), base + r * sg.dim);
    }
  }
}

}  // namespace uvp::nn
