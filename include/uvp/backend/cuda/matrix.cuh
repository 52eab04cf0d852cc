// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::DeviceMatrix<T>: a rows x cols row-major matrix in device memory, and the
// explicit host <-> device copies (to_device / to_host) the uvp::cuda blocks take and return.
//
// Layout: element (r, c) is at data()[r * cols() + c], as in uvp::Matrix<T> (row-major Eigen),
// so a host uvp::Matrix and a DeviceMatrix of the same shape copy into each other byte for byte.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: matrix.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

// Host matrices are anything with data(), rows() and cols() (uvp::Matrix<T>, an Eigen::Map or
// Ref, or a small struct); Eigen is not included here, so its traits are detected, not named.
template <class M, class = void>
struct cuda_has_is_row_major : std::false_type {};
template <class M>
struct cuda_has_is_row_major<M, std::void_t<decltype(M::IsRowMajor)>> : std::true_type {};
template <class M, class = void>
struct cuda_has_outer_stride : std::false_type {};
template <class M>
struct cuda_has_outer_stride<M, std::void_t<decltype(std::declval<const M&>().outerStride())>>
    : std::true_type {};
template <class M, class = void>
struct cuda_has_resize : std::false_type {};
template <class M>
struct cuda_has_resize<M, std::void_t<decltype(std::declval<M&>().resize(index(), index()))>>
    : std::true_type {};

/// Throws unless the host matrix `m` is stored densely in row-major order (a column-major
/// Eigen matrix with more than one row and column, or a strided view, is not).
template <class M>
void cuda_check_host_layout(const char* where, const M& m) {
  const index rows = static_cast<index>(m.rows()), cols = static_cast<index>(m.cols());
  if (rows <= 1 || cols <= 1) return;  // a vector is the same in either order
  if constexpr (cuda_has_is_row_major<M>::value) {
    if (!M::IsRowMajor)
      raise<invalid_argument>(where, ": the host matrix (", rows, " x ", cols,
                              ") is column-major; use uvp::Matrix<T> (row-major)");
  }
  if constexpr (cuda_has_outer_stride<M>::value) {
    if (static_cast<index>(m.outerStride()) != cols)
      raise<invalid_argument>(where, ": the host matrix (", rows, " x ", cols,
                              ") has row stride ", static_cast<index>(m.outerStride()),
                              ", expected ", cols, " (a dense row-major matrix)");
  }
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// A rows x cols row-major matrix of T in device memory, owning a DeviceBuffer. Copies between
/// host and device are always explicit: the constructor from host data, to_device and to_host
/// (member and free functions). Copies run on the matrix's stream and return when complete,
/// so host memory may be reused at once; to_host first waits for the work queued on that stream.
/// resize() keeps the allocation when the new size fits, so a workspace that is resized to the
/// batch shape on every call allocates only while it grows. Move-only.
template <class T>
class DeviceMatrix {
 public:
  using value_type = T;

  /// A 0 x 0 matrix; allocates nothing and makes no CUDA call.
  DeviceMatrix() noexcept = default;

  /// An uninitialised rows x cols matrix (rows, cols >= 0) whose copies use `stream`.
  /// Throws uvp::invalid_argument for a negative dimension, uvp::backend_error when cudaMalloc
  /// fails.
  DeviceMatrix(index rows, index cols, cudaStream_t stream = nullptr)
      : buffer_(checked_size("uvp::cuda_backend::DeviceMatrix", rows, cols), stream),
        rows_(rows),
        cols_(cols) {}

  /// A device copy of the rows x cols row-major matrix at host pointer `host`.
  DeviceMatrix(const T* host, index rows, index cols, cudaStream_t stream = nullptr)
      : DeviceMatrix(rows, cols, stream) {
    to_device(host, rows, cols);
  }

  /// A moved-from matrix is 0 x 0 and empty.
  DeviceMatrix(DeviceMatrix&& other) noexcept
      : buffer_(std::move(other.buffer_)),
        rows_(std::exchange(other.rows_, 0)),
        cols_(std::exchange(other.cols_, 0)) {}
  DeviceMatrix& operator=(DeviceMatrix&& other) noexcept {
    if (this != &other) {
      buffer_ = std::move(other.buffer_);
      rows_ = std::exchange(other.rows_, 0);
      cols_ = std::exchange(other.cols_, 0);
    }
    return *this;
  }
  DeviceMatrix(const DeviceMatrix&) = delete;
  DeviceMatrix& operator=(const DeviceMatrix&) = delete;

  index rows() const noexcept { return rows_; }
  index cols() const noexcept { return cols_; }
  index size() const noexcept { return rows_ * cols_; }
  bool empty() const noexcept { return size() == 0; }
  /// Device pointer to element (0, 0); nullptr when nothing was ever allocated.
  T* data() noexcept { return buffer_.data(); }
  const T* data() const noexcept { return buffer_.data(); }
  cudaStream_t stream() const noexcept { return buffer_.stream(); }
  /// Elements allocated (>= size()).
  index capacity() const noexcept { return buffer_.size(); }

  /// Gives the matrix the shape rows x cols; reallocates only when rows * cols > capacity().
  /// The contents are unspecified afterwards.
  void resize(index rows, index cols) {
    const index n = checked_size("uvp::cuda_backend::DeviceMatrix::resize", rows, cols);
    if (n > buffer_.size()) buffer_ = DeviceBuffer<T>(n, buffer_.stream());
    rows_ = rows;
    cols_ = cols;
  }

  /// Sets every element to zero (cudaMemsetAsync on the matrix's stream; asynchronous).
  void set_zero() {
    if (size() > 0)
      UVP_CUDA_CHECK(cudaMemsetAsync(data(), 0, static_cast<std::size_t>(size()) * sizeof(T),
                                     stream()));
  }

  /// Copies the rows x cols row-major host matrix at `host` into this one; the shapes must agree.
  /// Throws uvp::shape_error on a shape mismatch, uvp::backend_error when the copy fails.
  void to_device(const T* host, index rows, index cols) {
    check_shape("uvp::cuda_backend::DeviceMatrix::to_device", rows, cols);
    copy(data(), host, cudaMemcpyHostToDevice);
  }

  /// Copies this matrix into the rows x cols row-major host matrix at `host`, after the work
  /// queued on the matrix's stream. Throws uvp::shape_error on a shape mismatch.
  void to_host(T* host, index rows, index cols) const {
    check_shape("uvp::cuda_backend::DeviceMatrix::to_host", rows, cols);
    copy(host, data(), cudaMemcpyDeviceToHost);
  }

 private:
  static index checked_size(const char* where, index rows, index cols) {
    if (rows < 0 || cols < 0)
      detail::raise<invalid_argument>(where, ": shape ", rows, " x ", cols,
                                      " has a negative dimension");
    if (cols != 0 && rows > PTRDIFF_MAX / cols)
      detail::raise<invalid_argument>(where, ": shape ", rows, " x ", cols,
                                      " overflows the element count");
    return rows * cols;
  }

  void check_shape(const char* where, index rows, index cols) const {
    if (rows != rows_ || cols != cols_)
      detail::raise<shape_error>(where, ": host matrix is ", rows, " x ", cols, ", expected ",
                                 rows_, " x ", cols_);
  }

  void copy(void* dst, const void* src, cudaMemcpyKind kind) const {
    if (size() == 0) return;
    UVP_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(size()) * sizeof(T), kind,
                                   stream()));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }

  DeviceBuffer<T> buffer_;
  index rows_ = 0;
  index cols_ = 0;
};

/// A device copy of a host matrix: anything with data(), rows() and cols() stored densely in
/// row-major order (uvp::Matrix<T>, a row-major Eigen::Map / Ref, a vector). Copies on `stream`.
/// Throws uvp::invalid_argument for a column-major or strided Eigen matrix.
template <class HostMatrix>
auto to_device(const HostMatrix& host, cudaStream_t stream = nullptr) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(host.data())>>;
  detail::cuda_check_host_layout("uvp::cuda_backend::to_device", host);
  return DeviceMatrix<T>(host.data(), static_cast<index>(host.rows()),
                         static_cast<index>(host.cols()), stream);
}

/// Copies `device` into the host matrix `host` after the work queued on device.stream(). A host
/// type with resize(rows, cols) (uvp::Matrix<T>) is resized first; other types (a Map, a Ref)
/// must already have the device matrix's shape (else uvp::shape_error).
template <class T, class HostMatrix>
void to_host(const DeviceMatrix<T>& device, HostMatrix& host) {
  static_assert(std::is_same_v<decltype(host.data()), T*>,
                "uvp::cuda_backend::to_host: the host matrix must be writable and hold the same "
                "scalar type as the DeviceMatrix");
  if constexpr (detail::cuda_has_resize<HostMatrix>::value) {
    if (static_cast<index>(host.rows()) != device.rows() ||
        static_cast<index>(host.cols()) != device.cols())
      host.resize(device.rows(), device.cols());
  }
  detail::cuda_check_host_layout("uvp::cuda_backend::to_host", host);
  device.to_host(host.data(), static_cast<index>(host.rows()), static_cast<index>(host.cols()));
}

}  // namespace uvp::cuda_backend
