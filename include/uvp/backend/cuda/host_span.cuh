// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::HostSpan<T>: a read-only view of host memory (pointer + size) for the small
// host-side arguments of the uvp::cuda blocks (sequence lengths), built implicitly from anything
// with data() and size(): std::vector, std::array, uvp::Span (which the .cuh headers cannot name,
// since it lives with Eigen in core/tensor.hpp). Empty by default.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: host_span.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <type_traits>
#include <utility>

#include "uvp/core/config.hpp"

namespace uvp::cuda_backend {

template <class T>
class HostSpan {
 public:
  constexpr HostSpan() noexcept = default;
  constexpr HostSpan(const T* data, index size) noexcept : data_(data), size_(size) {}
  /// From a contiguous host range of T (data() and size()).
  template <class Range,
            class = std::enable_if_t<std::is_convertible_v<decltype(std::declval<const Range&>().data()), const T*>>>
  constexpr HostSpan(const Range& r) noexcept  // NOLINT(google-explicit-constructor): a view
      : data_(r.data()), size_(static_cast<index>(r.size())) {}

  constexpr const T* data() const noexcept { return data_; }
  constexpr index size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr const T& operator[](index i) const noexcept { return data_[i]; }

 private:
  const T* data_ = nullptr;
  index size_ = 0;
};

}  // namespace uvp::cuda_backend
