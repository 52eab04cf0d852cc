// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::DeviceBuffer<T>: an owning, move-only array in device memory.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: device_buffer.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::cuda_backend {

/// `size` elements of T in device memory (cudaMalloc), freed by the destructor. Copies between
/// host and device go through `to_device` / `to_host`, which check sizes, run on the buffer's
/// stream (default: the legacy default stream) and return once the copy is complete, so the host
/// memory may be reused at once. Move-only: a moved-from buffer is empty.
///
/// Host memory is passed as a pointer and a count, or as any contiguous range with `data()` and
/// `size()` (uvp::Span, std::vector, std::span, an Eigen vector). This header does not include
/// Eigen, so that .cu files which do not need it compile without Eigen's nvcc warnings.
template <class T>
class DeviceBuffer {
  static_assert(std::is_trivially_copyable_v<T>,
                "uvp::cuda_backend::DeviceBuffer<T>: T is copied byte-wise between host and "
                "device, so it must be trivially copyable (use float, double, int, ...)");

 public:
  using value_type = T;

  /// An empty buffer; allocates nothing and makes no CUDA call.
  DeviceBuffer() noexcept = default;

  /// Uninitialised device memory for `size` >= 0 elements; copies use `stream`.
  /// Throws uvp::invalid_argument for a negative or too large size, uvp::backend_error when
  /// cudaMalloc fails (no device, out of memory).
  explicit DeviceBuffer(index size, cudaStream_t stream = nullptr) : stream_(stream) {
    if (size < 0)
      detail::raise<invalid_argument>("uvp::cuda_backend::DeviceBuffer: size is ", size,
                                      ", expected >= 0");
    if (static_cast<std::size_t>(size) > std::numeric_limits<std::size_t>::max() / sizeof(T))
      detail::raise<invalid_argument>("uvp::cuda_backend::DeviceBuffer: size ", size,
                                      " overflows the byte count");
    if (size > 0) {
      void* p = nullptr;
      UVP_CUDA_CHECK(cudaMalloc(&p, static_cast<std::size_t>(size) * sizeof(T)));
      data_ = static_cast<T*>(p);
    }
    size_ = size;
  }

  /// A device copy of the `n` elements at `host`.
  DeviceBuffer(const T* host, index n, cudaStream_t stream = nullptr) : DeviceBuffer(n, stream) {
    to_device(host, n);
  }

  /// A device copy of a contiguous host range (anything with data() and size()).
  template <class Range, class = decltype(std::declval<const Range&>().data())>
  explicit DeviceBuffer(const Range& host, cudaStream_t stream = nullptr)
      : DeviceBuffer(host.data(), static_cast<index>(host.size()), stream) {}

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        stream_(other.stream_) {}

  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      stream_ = other.stream_;
    }
    return *this;
  }

  ~DeviceBuffer() { release(); }

  /// Copies n == size() elements from host memory into the buffer.
  /// Throws uvp::shape_error on a size mismatch, uvp::backend_error when the copy fails.
  void to_device(const T* host, index n) {
    check_host_size("uvp::cuda_backend::DeviceBuffer::to_device", n);
    if (size_ == 0) return;
    UVP_CUDA_CHECK(cudaMemcpyAsync(data_, host, bytes(), cudaMemcpyHostToDevice, stream_));
    // Pinned host memory would still be read after an async copy returns: wait, so the caller
    // may reuse `host` whatever kind of memory it is.
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  /// to_device(host.data(), host.size()) for a contiguous host range.
  template <class Range>
  void to_device(const Range& host) {
    to_device(host.data(), static_cast<index>(host.size()));
  }

  /// Copies the buffer into n == size() elements of host memory; waits for the buffer's stream
  /// first, so kernels queued on it before are complete.
  /// Throws uvp::shape_error on a size mismatch, uvp::backend_error when the copy fails.
  void to_host(T* host, index n) const {
    check_host_size("uvp::cuda_backend::DeviceBuffer::to_host", n);
    if (size_ == 0) return;
    UVP_CUDA_CHECK(cudaMemcpyAsync(host, data_, bytes(), cudaMemcpyDeviceToHost, stream_));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  /// to_host(host.data(), host.size()) for a writable contiguous host range (a uvp::Span<T>
  /// may be passed by value).
  template <class Range>
  void to_host(Range&& host) const {
    static_assert(std::is_same_v<decltype(host.data()), T*>,
                  "uvp::cuda_backend::DeviceBuffer<T>::to_host: the destination must be a "
                  "writable contiguous range of T (its data() must return T*)");
    to_host(host.data(), static_cast<index>(host.size()));
  }

  /// Device pointer (nullptr when empty); valid in kernels and cuBLAS calls, not on the host.
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  index size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(size_) * sizeof(T); }
  cudaStream_t stream() const noexcept { return stream_; }

 private:
  void check_host_size(const char* where, index n) const {
    if (n != size_) detail::raise<shape_error>(where, ": host has size ", n, ", expected ", size_);
  }

  void release() noexcept {
    // A destructor cannot throw: a failing cudaFree (a sticky error from an earlier kernel)
    // has already been, or will be, reported by the call that checks next.
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  index size_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace uvp::cuda_backend
