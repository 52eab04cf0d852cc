// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::DeviceSpan<T>: a non-owning view of contiguous device memory (pointer + count).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: device_span.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <type_traits>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/core/config.hpp"

namespace uvp::cuda_backend {

/// size() elements of T at device pointer data(); the device counterpart of uvp::Span<T>, taken
/// by the uvp::cuda optimizers, losses and metrics. Views a DeviceBuffer or DeviceMatrix (all of
/// it) or a pointer + count (a slice of one). Never dereference data() on the host.
template <class T>
class DeviceSpan {
 public:
  using value_type = std::remove_const_t<T>;

  constexpr DeviceSpan() noexcept = default;
  constexpr DeviceSpan(T* data, index size) noexcept : data_(data), size_(size) {}
  DeviceSpan(DeviceBuffer<value_type>& b) noexcept : data_(b.data()), size_(b.size()) {}
  DeviceSpan(DeviceMatrix<value_type>& m) noexcept : data_(m.data()), size_(m.size()) {}
  /// Read-only views of const buffers and matrices (only for DeviceSpan<const T>).
  template <class U = T, class = std::enable_if_t<std::is_const_v<U>>>
  DeviceSpan(const DeviceBuffer<value_type>& b) noexcept : data_(b.data()), size_(b.size()) {}
  template <class U = T, class = std::enable_if_t<std::is_const_v<U>>>
  DeviceSpan(const DeviceMatrix<value_type>& m) noexcept : data_(m.data()), size_(m.size()) {}
  /// DeviceSpan<T> -> DeviceSpan<const T>.
  template <class U, class = std::enable_if_t<std::is_const_v<T> && std::is_same_v<const U, T> &&
                                              !std::is_same_v<U, T>>>
  constexpr DeviceSpan(DeviceSpan<U> s) noexcept : data_(s.data()), size_(s.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr index size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  /// Elements [offset, offset + count) (not checked: the callers check their slices).
  constexpr DeviceSpan subspan(index offset, index count) const noexcept {
    return DeviceSpan(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  index size_ = 0;
};

}  // namespace uvp::cuda_backend
