// SPDX-License-Identifier: Apache-2.0
// The flat parameter and gradient buffers a model owns, and the layout that carves them into
// per-layer slices.
#pragma once

#include <algorithm>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"

namespace uvp {

/// Where one layer's parameters live inside the flat buffers.
struct ParamSlot {
  index offset = 0;
  index count = 0;
};

/// Hands out slots in the order layers ask for them. Every slot starts on a 64-byte boundary
/// (16 floats / 8 doubles) so that SIMD loads of each layer's weights are aligned.
template <class T>
class ParameterLayout {
 public:
  static constexpr index alignment = index(64 / sizeof(T));

  ParamSlot add(index count) {
    if (count < 0) detail::raise<invalid_argument>("uvp::ParameterLayout::add: count must be >= 0, got ", count);
    ParamSlot s{size_, count};
    size_ += (count + alignment - 1) / alignment * alignment;
    return s;
  }
  index size() const noexcept { return size_; }

 private:
  index size_ = 0;
};

/// One contiguous buffer of parameter values and one of gradients, of equal size.
/// Optimizers, save/load and host-device copies work on these two arrays as a whole;
/// layers hold Spans into them (see docs/concepts.md).
///
/// A block's Parameters either own their two buffers or, once bind() is called, refer to a
/// region of a model's buffers (nn::Chain binds every block to one model-wide buffer). Copying a
/// Parameters always gives an owning copy of the values and gradients.
template <class T>
class Parameters {
 public:
  using storage = std::vector<T, detail::aligned_allocator<T>>;

  Parameters() = default;
  explicit Parameters(index n) { resize(n); }
  Parameters(const Parameters& o) : values_(o.values().begin(), o.values().end()), grads_(o.grads().begin(), o.grads().end()) {
    point_at_storage();
  }
  Parameters& operator=(const Parameters& o) {
    if (this != &o) {
      storage v(o.values().begin(), o.values().end()), g(o.grads().begin(), o.grads().end());
      values_.swap(v), grads_.swap(g);
      point_at_storage();
    }
    return *this;
  }
  // A moved vector keeps its heap block, so owning pointers stay valid; bound ones are external.
  Parameters(Parameters&& o) noexcept
      : values_(std::move(o.values_)), grads_(std::move(o.grads_)), v_(o.v_), g_(o.g_), n_(o.n_), gn_(o.gn_), bound_(o.bound_) {
    o.v_ = o.g_ = nullptr, o.n_ = o.gn_ = 0, o.bound_ = false;
  }
  Parameters& operator=(Parameters&& o) noexcept {
    values_ = std::move(o.values_), grads_ = std::move(o.grads_);
    v_ = o.v_, g_ = o.g_, n_ = o.n_, gn_ = o.gn_, bound_ = o.bound_;
    o.v_ = o.g_ = nullptr, o.n_ = o.gn_ = 0, o.bound_ = false;
    return *this;
  }

  /// Resizes both buffers and sets every value and gradient to zero. Invalidates Spans and ends a
  /// binding (the buffers are owned again).
  /// with_grads = false keeps no dense gradient buffer (grads() is empty): for blocks whose
  /// gradients are sparse, such as a 10^6-row embedding table.
  void resize(index n, bool with_grads = true) {
    if (n < 0) detail::raise<invalid_argument>("uvp::Parameters::resize: n must be >= 0, got ", n);
    values_.assign(static_cast<std::size_t>(n), T(0));
    grads_.assign(with_grads ? static_cast<std::size_t>(n) : 0, T(0));
    point_at_storage();
  }

  /// Moves the values into `values` (and the gradients into `grads`) and from now on reads and
  /// writes there; the owned buffers are released. values.size() must equal size(); grads must be
  /// empty when there is no dense gradient (has_grads() false), else of size(). The caller keeps
  /// the memory alive and in place for as long as this object uses it.
  void bind(Span<T> values, Span<T> grads) {
    constexpr const char* where = "uvp::Parameters::bind";
    detail::check_size(where, "values", values.size(), n_);
    detail::check_size(where, "grads", grads.size(), gn_);
    if (values.data() != v_) std::copy(v_, v_ + n_, values.data());
    if (gn_ > 0 && grads.data() != g_) std::copy(g_, g_ + gn_, grads.data());
    storage().swap(values_), storage().swap(grads_);
    v_ = values.data(), g_ = grads.data(), bound_ = true;
  }
  /// True after bind(): the buffers belong to someone else (a model).
  bool is_bound() const noexcept { return bound_; }

  bool has_grads() const noexcept { return gn_ == n_; }

  index size() const noexcept { return n_; }

  Span<T> values() noexcept { return {v_, n_}; }
  Span<const T> values() const noexcept { return {v_, n_}; }
  Span<T> grads() noexcept { return {g_, gn_}; }
  Span<const T> grads() const noexcept { return {g_, gn_}; }

  Span<T> values(ParamSlot s) noexcept { return values().subspan(s.offset, s.count); }
  Span<const T> values(ParamSlot s) const noexcept { return values().subspan(s.offset, s.count); }
  Span<T> grads(ParamSlot s) noexcept { return grads().subspan(s.offset, s.count); }
  Span<const T> grads(ParamSlot s) const noexcept { return grads().subspan(s.offset, s.count); }

  void zero_grad() noexcept { std::fill(g_, g_ + gn_, T(0)); }

 private:
  void point_at_storage() noexcept {
    v_ = values_.data(), g_ = grads_.data();
    n_ = static_cast<index>(values_.size()), gn_ = static_cast<index>(grads_.size());
    bound_ = false;
  }
  storage values_;
  storage grads_;
  T* v_ = nullptr;
  T* g_ = nullptr;
  index n_ = 0, gn_ = 0;
  bool bound_ = false;
};

}  // namespace uvp
