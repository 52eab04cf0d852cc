// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Embedding<T, uvp::cuda>: the embedding table (torch.nn.Embedding) on the GPU, the
// specialisation of nn/embedding.hpp's Embedding<T, Backend>. Same tensor ("weight"
// {num_embeddings, embedding_dim}), padding_idx rule, checks and messages:
//
//   forward   out[i, :] = W[ids[i], :]                                  a gather kernel
//   backward  dW[ids[i], :] += d_out[i, :] for every i, ids[i] != padding_idx   atomicAdd scatter
//
// What differs from uvp::cpu (docs/cuda.md): ids are device memory (DeviceSpan<const index>),
// out / d_out DeviceMatrix<T>; the gradient is a dense num_embeddings x embedding_dim table in
// grads() (the CPU keeps only the touched rows), so an optimizer step over grads() updates
// every row (use zero_grad() between steps); duplicate ids are summed with atomics, so the
// order of the additions, and the last bits of a row touched several times, vary from run to
// run. forward_bag / backward_bag are not implemented on the GPU yet. The constructor draws no
// weights: copy them from a CPU Embedding (constructor or from_host).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: embedding.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"

namespace uvp::nn {
// The primary (default Backend = cpu) is in nn/embedding.hpp.
template <class T, class Backend>
class Embedding;
}  // namespace uvp::nn

namespace uvp::detail {

struct CudaIdOutOfRange {
  const index* ids;
  index num;
  __device__ bool operator()(index i) const { return ids[i] < 0 || ids[i] >= num; }
};

/// out[i * dim + c] = w[ids[i] * dim + c]; consecutive threads read consecutive columns.
template <class T>
__global__ void cuda_embedding_gather_kernel(const T* w, const index* ids, T* out, index n, index dim) {
  const index total = n * dim;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += stride)
    out[k] = w[ids[k / dim] * dim + k % dim];
}

/// g[ids[i] * dim + c] += d_out[i * dim + c] for ids[i] != padding_idx (atomics: ids repeat).
template <class T>
__global__ void cuda_embedding_scatter_kernel(const T* d_out, const index* ids, T* g, index n,
                                              index dim, index padding_idx) {
  const index total = n * dim;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += stride) {
    const index row = ids[k / dim];
    if (row != padding_idx) atomicAdd(g + row * dim + k % dim, d_out[k]);
  }
}

}  // namespace uvp::detail

namespace uvp::nn {

template <class T>
class Embedding<T, cuda> : public cuda_backend::DeviceBlock<T> {
 public:
  using backend_type = cuda;

  /// num_embeddings, embedding_dim > 0; padding_idx in [0, num_embeddings) or -1 (none).
  /// Weights are zero until set (set_values / from_host).
  Embedding(index num_embeddings, index embedding_dim, index padding_idx = -1,
            cudaStream_t stream = nullptr)
      : cuda_backend::DeviceBlock<T>(stream),
        num_(num_embeddings),
        dim_(embedding_dim),
        padding_idx_(padding_idx),
        reducer_(stream) {
    constexpr const char* where = "uvp::nn::Embedding";
    if (num_embeddings <= 0)
      detail::raise<invalid_argument>(where, ": num_embeddings must be > 0, got ", num_embeddings);
    if (embedding_dim <= 0)
      detail::raise<invalid_argument>(where, ": embedding_dim must be > 0, got ", embedding_dim);
    if (padding_idx < -1 || padding_idx >= num_embeddings)
      detail::raise<out_of_range_error>(where, ": padding_idx = ", padding_idx, " is outside [0, ",
                                        num_embeddings, ") and is not -1 (none)");
    this->add_tensor("weight", {num_embeddings, embedding_dim});
    this->allocate_parameters();
  }

  /// A device copy of a CPU Embedding (same table, same padding_idx).
  template <class HostEmbedding,
            class = decltype(std::declval<const HostEmbedding&>().num_embeddings())>
  explicit Embedding(const HostEmbedding& host, cudaStream_t stream = nullptr)
      : Embedding(host.num_embeddings(), host.embedding_dim(), host.padding_idx(), stream) {
    this->from_host(host);
  }

  index num_embeddings() const noexcept { return num_; }
  index embedding_dim() const noexcept { return dim_; }
  index padding_idx() const noexcept { return padding_idx_; }

  /// out (n x d) = the rows ids[0], ..., ids[n - 1]. ids: n device indices in [0, num).
  /// Checking the ids reads one index back, so this waits for the stream.
  void forward(cuda_backend::DeviceSpan<const index> ids, cuda_backend::DeviceMatrix<T>& out) const {
    constexpr const char* where = "uvp::nn::Embedding::forward";
    const index n = ids.size();
    detail::cuda_check_shape(where, "out", out, n, dim_);
    check_ids(where, ids);
    if (n == 0) return;
    detail::cuda_embedding_gather_kernel<T><<<detail::cuda_grid_for(n * dim_), 256, 0, this->stream()>>>(
        this->value_ptr(0), ids.data(), out.data(), n, dim_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  cuda_backend::DeviceMatrix<T> forward(cuda_backend::DeviceSpan<const index> ids) const {
    cuda_backend::DeviceMatrix<T> out(ids.size(), dim_, this->stream());
    forward(ids, out);
    return out;
  }

  /// grads() row ids[i] += d_out[i, :] for every non-padding position (d_out: n x d).
  void backward(cuda_backend::DeviceSpan<const index> ids, const cuda_backend::DeviceMatrix<T>& d_out) {
    constexpr const char* where = "uvp::nn::Embedding::backward";
    const index n = ids.size();
    detail::cuda_check_shape(where, "d_out", d_out, n, dim_);
    check_ids(where, ids);
    if (n == 0) return;
    detail::cuda_embedding_scatter_kernel<T><<<detail::cuda_grid_for(n * dim_), 256, 0, this->stream()>>>(
        d_out.data(), ids.data(), this->grad_ptr(0), n, dim_, padding_idx_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

 private:
  void check_ids(const char* where, cuda_backend::DeviceSpan<const index> ids) const {
    const index i = reducer_.first_index(detail::CudaIdOutOfRange{ids.data(), num_}, ids.size());
    if (i < ids.size())
      detail::raise<out_of_range_error>(where, ": ids[", i, "] = ",
                                        cuda_backend::read_element(ids.data(), i, this->stream()),
                                        " is out of range [0, ", num_, ")");
  }

  index num_, dim_, padding_idx_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
