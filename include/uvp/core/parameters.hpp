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
template <class T>
class Parameters {
 public:
  using storage = std::vector<T, detail::aligned_allocator<T>>;

  Parameters() = default;
  explicit Parameters(index n) { resize(n); }

  /// Resizes both buffers and sets every value and gradient to zero. Invalidates Spans.
  /// with_grads = false keeps no dense gradient buffer (grads() is empty): for blocks whose
  /// gradients are sparse, such as a 10^6-row embedding table.
  void resize(index n, bool with_grads = true) {
    if (n < 0) detail::raise<invalid_argument>("uvp::Parameters::resize: n must be >= 0, got ", n);
    values_.assign(static_cast<std::size_t>(n), T(0));
    grads_.assign(with_grads ? static_cast<std::size_t>(n) : 0, T(0));
  }

  bool has_grads() const noexcept { return grads_.size() == values_.size(); }

  index size() const noexcept { return static_cast<index>(values_.size()); }

  Span<T> values() noexcept { return as_span(values_); }
  Span<const T> values() const noexcept { return as_span(values_); }
  Span<T> grads() noexcept { return as_span(grads_); }
  Span<const T> grads() const noexcept { return as_span(grads_); }

  Span<T> values(ParamSlot s) noexcept { return values().subspan(s.offset, s.count); }
  Span<const T> values(ParamSlot s) const noexcept { return values().subspan(s.offset, s.count); }
  Span<T> grads(ParamSlot s) noexcept { return grads().subspan(s.offset, s.count); }
  Span<const T> grads(ParamSlot s) const noexcept { return grads().subspan(s.offset, s.count); }

  void zero_grad() noexcept { std::fill(grads_.begin(), grads_.end(), T(0)); }

 private:
  storage values_;
  storage grads_;
};

}  // namespace uvp
