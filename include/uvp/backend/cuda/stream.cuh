// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::Stream: an owning, move-only CUDA stream (cudaStreamCreate / cudaStreamDestroy).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: stream.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <utility>

#include "uvp/backend/cuda/error.cuh"

namespace uvp::cuda_backend {

/// A CUDA stream this object owns. Work queued on one stream runs in order; work on different
/// streams may overlap. Pass get() to DeviceBuffer / DeviceMatrix / BlasHandle and the uvp::cuda
/// blocks, so that their copies, GEMMs and kernels queue on it. Move-only; a moved-from Stream
/// holds no stream (get() == nullptr, which CUDA reads as the legacy default stream).
class Stream {
 public:
  /// A new stream. `non_blocking` = true: it does not synchronise with the legacy default
  /// stream (cudaStreamNonBlocking). Throws uvp::backend_error when there is no device.
  explicit Stream(bool non_blocking = false) {
    UVP_CUDA_CHECK(cudaStreamCreateWithFlags(
        &stream_, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault));
  }

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      release();
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  ~Stream() { release(); }

  /// The raw stream, for the calls that take a cudaStream_t.
  cudaStream_t get() const noexcept { return stream_; }

  /// Waits until every piece of work queued on the stream is done; errors raised by kernels
  /// that ran on it surface here as uvp::backend_error.
  void synchronize() const { UVP_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  void release() noexcept {
    // Destroying a stream with queued work is allowed: the work completes, then it is freed.
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    stream_ = nullptr;
  }

  cudaStream_t stream_ = nullptr;
};

}  // namespace uvp::cuda_backend
