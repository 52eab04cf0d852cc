// SPDX-License-Identifier: Apache-2.0
// uvp::cuda_backend::DeviceBlock<T>: what the uvp::cuda neural blocks share, the device
// counterpart of uvp::nn::Block<T> (nn/module.hpp): named tensors with PyTorch's names and
// shapes, stored back to back in one flat parameter buffer and one flat gradient buffer in
// device memory, and explicit copies of those tensors from and to the CPU block of the same
// kind (matched by name and shape).
//
//   parameters() / grads()   DeviceSpans over all tensors (what an optimizer steps over:
//                            uvp::Adam<T, uvp::cuda>::step(block.parameters(), block.grads()))
//   values(t) / grads(t)     one tensor's slice of them
//   from_host(cpu_block)     values of every tensor from a uvp::nn::Block<T> with the same tensors
//   to_host(cpu_block)       values back into it; grads_to_host(cpu_block) copies gradients
//
// Unlike the CPU flat buffer there is no alignment padding between tensors, and every gradient
// is dense (Embedding, whose gradient is sparse rows, has its own storage: embedding.cuh).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: block.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <string>
#include <utility>
#include <vector>

#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::cuda_backend {

/// One named tensor of a device block: its PyTorch name and shape and where it starts in the
/// flat buffers.
struct DeviceTensorInfo {
  std::string name;
  std::vector<index> shape;
  index offset = 0;

  index numel() const noexcept {
    index n = 1;
    for (index d : shape) n *= d;
    return n;
  }
};

/// Base of the uvp::cuda blocks (not virtual, used by value; move-only). Copies run on
/// stream() and return when complete.
template <class T>
class DeviceBlock {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "uvp::cuda blocks: T must be float or double");

 public:
  using value_type = T;

  const std::vector<DeviceTensorInfo>& tensors() const noexcept { return tensors_; }
  /// The tensor called `name`; uvp::invalid_argument when there is none (as Block::tensor).
  const DeviceTensorInfo& tensor(const std::string& name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return t;
    detail::raise<invalid_argument>("uvp::cuda_backend::DeviceBlock::tensor: no tensor named '",
                                    name, "'");
  }
  index parameter_count() const noexcept { return values_.size(); }
  cudaStream_t stream() const noexcept { return stream_; }

  /// All values / all gradients, flat, in tensor order (device memory).
  DeviceSpan<T> parameters() noexcept { return {values_.data(), values_.size()}; }
  DeviceSpan<const T> parameters() const noexcept { return {values_.data(), values_.size()}; }
  DeviceSpan<T> grads() noexcept { return {grads_.data(), grads_.size()}; }
  DeviceSpan<const T> grads() const noexcept { return {grads_.data(), grads_.size()}; }
  DeviceSpan<T> values(const DeviceTensorInfo& t) noexcept { return {values_.data() + t.offset, t.numel()}; }
  DeviceSpan<const T> values(const DeviceTensorInfo& t) const noexcept {
    return {values_.data() + t.offset, t.numel()};
  }
  DeviceSpan<T> grads(const DeviceTensorInfo& t) noexcept { return {grads_.data() + t.offset, t.numel()}; }
  DeviceSpan<const T> grads(const DeviceTensorInfo& t) const noexcept {
    return {grads_.data() + t.offset, t.numel()};
  }

  /// Sets every gradient to 0 (asynchronous on stream()).
  void zero_grad() {
    if (!grads_.empty()) UVP_CUDA_CHECK(cudaMemsetAsync(grads_.data(), 0, grads_.bytes(), stream_));
  }

  /// Copies n host values into tensor `name` (n must be its numel()).
  void set_values(const std::string& name, const T* host, index n) {
    const auto& t = tensor(name);
    check_count("uvp::cuda_backend::DeviceBlock::set_values", t, n);
    copy(values_.data() + t.offset, host, t.numel(), cudaMemcpyHostToDevice);
  }
  /// Copies tensor `name`'s values / gradients into n host elements (n must be its numel()).
  void get_values(const std::string& name, T* host, index n) const {
    const auto& t = tensor(name);
    check_count("uvp::cuda_backend::DeviceBlock::get_values", t, n);
    copy(host, values_.data() + t.offset, t.numel(), cudaMemcpyDeviceToHost);
  }
  void get_grads(const std::string& name, T* host, index n) const {
    const auto& t = tensor(name);
    check_count("uvp::cuda_backend::DeviceBlock::get_grads", t, n);
    copy(host, grads_.data() + t.offset, t.numel(), cudaMemcpyDeviceToHost);
  }

  /// Values of every tensor from the CPU block `host` (a uvp::nn::Block<T>: tensors(),
  /// tensor(name), values(info)), matched by name; shapes must agree (else uvp::shape_error).
  template <class HostBlock>
  void from_host(const HostBlock& host) {
    for (const auto& t : tensors_) {
      const auto& h = host.tensor(t.name);
      check_host_shape("uvp::cuda_backend::DeviceBlock::from_host", t, h.shape);
      const auto v = host.values(h);
      set_values(t.name, v.data(), static_cast<index>(v.size()));
    }
  }
  /// Values of every tensor into the CPU block `host`, matched by name.
  template <class HostBlock>
  void to_host(HostBlock& host) const {
    for (const auto& t : tensors_) {
      const auto& h = host.tensor(t.name);
      check_host_shape("uvp::cuda_backend::DeviceBlock::to_host", t, h.shape);
      auto v = host.values(h);
      get_values(t.name, v.data(), static_cast<index>(v.size()));
    }
  }
  /// Gradients of every tensor into the CPU block's dense gradients (overwritten, not added).
  /// A CPU tensor with a sparse gradient (Embedding) has none: use get_grads for it.
  template <class HostBlock>
  void grads_to_host(HostBlock& host) const {
    for (const auto& t : tensors_) {
      const auto& h = host.tensor(t.name);
      check_host_shape("uvp::cuda_backend::DeviceBlock::grads_to_host", t, h.shape);
      auto g = host.grads(h);
      if (g.size() == 0)
        detail::raise<invalid_argument>("uvp::cuda_backend::DeviceBlock::grads_to_host: the "
                                        "host tensor \"",
                                        t.name, "\" has no dense gradient; use get_grads");
      get_grads(t.name, g.data(), static_cast<index>(g.size()));
    }
  }

 protected:
  explicit DeviceBlock(cudaStream_t stream) noexcept : stream_(stream) {}
  DeviceBlock(DeviceBlock&&) noexcept = default;
  DeviceBlock& operator=(DeviceBlock&&) noexcept = default;
  ~DeviceBlock() = default;

  /// Registers a tensor (before allocate_parameters); returns its position in tensors().
  std::size_t add_tensor(std::string name, std::vector<index> shape) {
    DeviceTensorInfo t{std::move(name), std::move(shape), next_offset_};
    next_offset_ += t.numel();
    tensors_.push_back(std::move(t));
    return tensors_.size() - 1;
  }

  /// Allocates the flat buffers; values are zero until set, gradients zero.
  void allocate_parameters() {
    values_ = DeviceBuffer<T>(next_offset_, stream_);
    grads_ = DeviceBuffer<T>(next_offset_, stream_);
    if (!values_.empty()) UVP_CUDA_CHECK(cudaMemsetAsync(values_.data(), 0, values_.bytes(), stream_));
    zero_grad();
  }

  const T* value_ptr(std::size_t tensor) const noexcept { return values_.data() + tensors_[tensor].offset; }
  T* grad_ptr(std::size_t tensor) noexcept { return grads_.data() + tensors_[tensor].offset; }

 private:
  static void check_count(const char* where, const DeviceTensorInfo& t, index n) {
    if (n != t.numel())
      detail::raise<shape_error>(where, ": tensor \"", t.name, "\" has ", t.numel(),
                                 " elements, the host has ", n);
  }
  template <class Shape>
  static void check_host_shape(const char* where, const DeviceTensorInfo& t, const Shape& shape) {
    bool same = static_cast<std::size_t>(shape.size()) == t.shape.size();
    for (std::size_t i = 0; same && i < t.shape.size(); ++i) same = index(shape[i]) == t.shape[i];
    if (!same)
      detail::raise<shape_error>(where, ": tensor \"", t.name,
                                 "\" has a different shape on the host");
  }
  void copy(void* dst, const void* src, index count, cudaMemcpyKind kind) const {
    if (count == 0) return;
    UVP_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(count) * sizeof(T), kind, stream_));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  cudaStream_t stream_ = nullptr;
  std::vector<DeviceTensorInfo> tensors_;
  index next_offset_ = 0;
  DeviceBuffer<T> values_, grads_;
};

}  // namespace uvp::cuda_backend
