// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Embedding<T, uvp::cuda>: the embedding table (torch.nn.Embedding(sparse=True)) on the
// GPU, the specialisation of nn/embedding.hpp's Embedding<T, Backend>. Same tensor ("weight"
// {num_embeddings, embedding_dim}), padding_idx rule, checks and messages, and the same sparse
// row gradient (nn/module.hpp's SparseRowGrad) and lazy optimizer step (uvp::nn::step):
//
//   forward      out[i, :] = W[ids[i], :]                                 a gather kernel
//   backward     G[r, :] += sum of d_out[i, :] over ids[i] = r != padding_idx, for the touched
//                rows r only: the K rows held so far and the n new ids are sorted by row (CUB
//                radix sort, stable), run-length encoded, and each row summed in position order
//                (its held sum first), so every row has the CPU's bits and the run's bits do not
//                vary (no atomics). Rows are kept in ascending order (the CPU: first touch).
//   sparse_step  opt.begin_step(), then the Adam / Sgd rule (uvp/detail/*_math.hpp, the device
//                kernels' formulas) on the touched rows of W and of the optimizer's state only:
//                torch.optim.SparseAdam's lazy rule with torch.optim.Adam's eps placement.
//
// What differs from uvp::cpu (docs/cuda.md): ids are device memory (DeviceSpan<const index>),
// out / d_out DeviceMatrix<T>; there is no dense gradient table (grads() is empty, as the CPU
// Block::grads of a sparse tensor), so memory is the table plus O(touched rows); the gradient's
// row count is read back by backward (it waits for the stream, as the id check of forward does).
// forward_bag / backward_bag are not implemented on the GPU yet. The constructor draws no
// weights: copy them from a CPU Embedding (constructor or from_host).
#pragma once

#if !defined(__CUDACC__)
#error "uvp: embedding.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>

#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "uvp/backend/cuda/adam.cuh"
#include "uvp/backend/cuda/block.cuh"
#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/error.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/backend/cuda/row_kernels.cuh"
#include "uvp/backend/cuda/sgd.cuh"
#include "uvp/backend/tags.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/adam_math.hpp"
#include "uvp/detail/sgd_math.hpp"

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

/// The sort's input: entries [0, held) are the held rows (source j = slot j), entries
/// [held, held + n) the new ids (source held + i = d_out row i); padding gets the key `num`,
/// which sorts last and is dropped.
__global__ void cuda_embedding_keys_kernel(const index* held_rows, index held, const index* ids,
                                           index n, index padding_idx, index num, index* keys,
                                           index* sources) {
  const index total = held + n;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index j = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; j < total; j += stride) {
    const index r = j < held ? held_rows[j] : ids[j - held];
    keys[j] = r == padding_idx ? num : r;
    sources[j] = j;
  }
}

/// *rows = the number of runs without the padding run (the last one when present).
__global__ void cuda_embedding_count_kernel(const index* unique, const index* runs, index num,
                                            index* rows) {
  const index r = *runs;
  *rows = r > 0 && unique[r - 1] == num ? r - 1 : r;
}

/// Row s of the new gradient = its sources summed in position order (the held sum first, then
/// d_out rows by position): the CPU's order of additions, so the CPU's bits.
template <class T>
__global__ void cuda_embedding_reduce_kernel(const index* unique, const index* counts,
                                             const index* starts, const index* sources,
                                             const T* held_values, index held, const T* d_out,
                                             index rows, index dim, index* new_rows,
                                             T* new_values) {
  const index total = rows * dim;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += stride) {
    const index s = k / dim, c = k % dim;
    const index* src = sources + starts[s];
    T acc = T(0);
    for (index q = 0; q < counts[s]; ++q) {
      const index j = src[q];
      const T g = j < held ? held_values[j * dim + c] : d_out[(j - held) * dim + c];
      acc = q == 0 ? g : acc + g;
    }
    new_values[k] = acc;
    if (c == 0) new_rows[s] = unique[s];
  }
}

/// adam_update_element on element c of touched row rows[s]: table W, state at offset + row * dim.
template <bool Amsgrad, class T>
__global__ void cuda_embedding_adam_kernel(T* w, const index* rows, const T* g, T* m, T* v,
                                           T* vmax, index count, index dim, AdamCoefficients<T> c) {
  const index total = count * dim;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += stride) {
    const index e = rows[k / dim] * dim + k % dim;
    adam_update_element<Amsgrad>(w[e], g[k], m[e], v[e], Amsgrad ? vmax + e : nullptr, c);
  }
}

/// sgd_update_element on the touched rows (b: the momentum buffer at the table's offset).
template <bool Momentum, bool Nesterov, class T>
__global__ void cuda_embedding_sgd_kernel(T* w, const index* rows, const T* g, T* b, index count,
                                          index dim, SgdCoefficients<T> c) {
  const index total = count * dim;
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += stride) {
    const index e = rows[k / dim] * dim + k % dim;
    sgd_update_element<Momentum, Nesterov>(w[e], g[k], Momentum ? b + e : nullptr, c);
  }
}

/// buf holds at least n elements afterwards (it only grows; contents are not kept).
template <class X>
void cuda_grow(cuda_backend::DeviceBuffer<X>& buf, index n, cudaStream_t stream) {
  if (buf.size() < n) buf = cuda_backend::DeviceBuffer<X>(n > 2 * buf.size() ? n : 2 * buf.size(), stream);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Not a cuda_backend::DeviceBlock: that base keeps a dense gradient for every tensor. The
/// members with DeviceBlock's names (tensors, parameters, values, set_values, from_host, ...)
/// behave the same; the gradient is the touched rows (sparse_size, grad_rows, grad_values).
template <class T>
class Embedding<T, cuda> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "uvp::nn::Embedding<T, uvp::cuda>: T must be float or double");

 public:
  using value_type = T;
  using backend_type = cuda;

  /// num_embeddings, embedding_dim > 0; padding_idx in [0, num_embeddings) or -1 (none).
  /// Weights are zero until set (set_values / from_host).
  Embedding(index num_embeddings, index embedding_dim, index padding_idx = -1,
            cudaStream_t stream = nullptr)
      : num_(num_embeddings), dim_(embedding_dim), padding_idx_(padding_idx), stream_(stream),
        reducer_(stream) {
    constexpr const char* where = "uvp::nn::Embedding";
    if (num_embeddings <= 0)
      detail::raise<invalid_argument>(where, ": num_embeddings must be > 0, got ", num_embeddings);
    if (embedding_dim <= 0)
      detail::raise<invalid_argument>(where, ": embedding_dim must be > 0, got ", embedding_dim);
    if (padding_idx < -1 || padding_idx >= num_embeddings)
      detail::raise<out_of_range_error>(where, ": padding_idx = ", padding_idx, " is outside [0, ",
                                        num_embeddings, ") and is not -1 (none)");
    tensors_.push_back({"weight", {num_embeddings, embedding_dim}, 0});
    table_ = cuda_backend::DeviceBuffer<T>(num_embeddings * embedding_dim, stream);
    UVP_CUDA_CHECK(cudaMemsetAsync(table_.data(), 0, table_.bytes(), stream));
  }

  /// A device copy of a CPU Embedding (same table, same padding_idx).
  template <class HostEmbedding,
            class = decltype(std::declval<const HostEmbedding&>().num_embeddings())>
  explicit Embedding(const HostEmbedding& host, cudaStream_t stream = nullptr)
      : Embedding(host.num_embeddings(), host.embedding_dim(), host.padding_idx(), stream) {
    from_host(host);
  }

  index num_embeddings() const noexcept { return num_; }
  index embedding_dim() const noexcept { return dim_; }
  index padding_idx() const noexcept { return padding_idx_; }
  cudaStream_t stream() const noexcept { return stream_; }

  // --- the table (DeviceBlock's names) ---
  const std::vector<cuda_backend::DeviceTensorInfo>& tensors() const noexcept { return tensors_; }
  const cuda_backend::DeviceTensorInfo& tensor(const std::string& name) const {
    if (name != "weight")
      detail::raise<invalid_argument>("uvp::cuda_backend::DeviceBlock::tensor: no tensor named '",
                                      name, "'");
    return tensors_.front();
  }
  index parameter_count() const noexcept { return table_.size(); }
  cuda_backend::DeviceSpan<T> parameters() noexcept { return table_; }
  cuda_backend::DeviceSpan<const T> parameters() const noexcept { return table_; }
  cuda_backend::DeviceSpan<T> values(const cuda_backend::DeviceTensorInfo&) noexcept { return table_; }
  cuda_backend::DeviceSpan<const T> values(const cuda_backend::DeviceTensorInfo&) const noexcept {
    return table_;
  }
  /// Empty, as the CPU Block::grads of a sparse tensor: the gradient is grad_rows / grad_values.
  cuda_backend::DeviceSpan<const T> grads() const noexcept { return {}; }

  void set_values(const std::string& name, const T* host, index n) {
    check_count("uvp::cuda_backend::DeviceBlock::set_values", tensor(name), n);
    table_.to_device(host, n);
  }
  void get_values(const std::string& name, T* host, index n) const {
    check_count("uvp::cuda_backend::DeviceBlock::get_values", tensor(name), n);
    table_.to_host(host, n);
  }
  /// The table from a CPU Embedding (matched by tensor name and shape).
  template <class HostBlock>
  void from_host(const HostBlock& host) {
    const auto& h = host.tensor("weight");
    check_host_shape("uvp::cuda_backend::DeviceBlock::from_host", h.shape);
    const auto v = host.values(h);
    set_values("weight", v.data(), static_cast<index>(v.size()));
  }
  /// The table into a CPU Embedding.
  template <class HostBlock>
  void to_host(HostBlock& host) const {
    const auto& h = host.tensor("weight");
    check_host_shape("uvp::cuda_backend::DeviceBlock::to_host", h.shape);
    auto v = host.values(h);
    get_values("weight", v.data(), static_cast<index>(v.size()));
  }

  // --- forward / backward ---

  /// out (n x d) = the rows ids[0], ..., ids[n - 1]. ids: n device indices in [0, num).
  /// Checking the ids reads one index back, so this waits for the stream.
  void forward(cuda_backend::DeviceSpan<const index> ids, cuda_backend::DeviceMatrix<T>& out) const {
    constexpr const char* where = "uvp::nn::Embedding::forward";
    const index n = ids.size();
    detail::cuda_check_shape(where, "out", out, n, dim_);
    check_ids(where, ids);
    if (n == 0) return;
    detail::cuda_embedding_gather_kernel<T><<<detail::cuda_grid_for(n * dim_), 256, 0, stream_>>>(
        table_.data(), ids.data(), out.data(), n, dim_);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  cuda_backend::DeviceMatrix<T> forward(cuda_backend::DeviceSpan<const index> ids) const {
    cuda_backend::DeviceMatrix<T> out(ids.size(), dim_, stream_);
    forward(ids, out);
    return out;
  }

  /// Accumulates d_out (n x d) into the sparse gradient: row ids[i] += d_out[i, :] for every
  /// non-padding position, duplicates summed in position order. Reads the new row count back
  /// (waits for the stream). Scratch grows with held rows + n and is kept for later calls.
  void backward(cuda_backend::DeviceSpan<const index> ids, const cuda_backend::DeviceMatrix<T>& d_out) {
    constexpr const char* where = "uvp::nn::Embedding::backward";
    const index n = ids.size();
    detail::cuda_check_shape(where, "d_out", d_out, n, dim_);
    check_ids(where, ids);
    if (n == 0) return;
    const index held = rows_count_, m = held + n;
    if (m > index(INT_MAX))
      detail::raise<invalid_argument>(where, ": ", m, " rows and ids exceed one sort (2^31 - 1)");
    for (auto* b : {&keys_, &keys_sorted_, &sources_, &sources_sorted_, &unique_, &counts_, &starts_})
      detail::cuda_grow(*b, m, stream_);
    detail::cuda_grow(runs_, 2, stream_);

    const dim3 grid = detail::cuda_grid_for(m);
    detail::cuda_embedding_keys_kernel<<<grid, 256, 0, stream_>>>(
        rows_[cur_].data(), held, ids.data(), n, padding_idx_, num_, keys_.data(), sources_.data());
    UVP_CUDA_CHECK(cudaGetLastError());

    // Keys are in [0, num]: sort only their low bits.
    int bits = 1;
    while (bits < 62 && (index(1) << bits) <= num_) ++bits;
    const int items = static_cast<int>(m);
    std::size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
    UVP_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys_.data(), keys_sorted_.data(),
                                                   sources_.data(), sources_sorted_.data(), items, 0,
                                                   bits, stream_));
    UVP_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, rle_bytes, keys_sorted_.data(), unique_.data(),
                                                      counts_.data(), runs_.data(), items, stream_));
    UVP_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, counts_.data(), starts_.data(),
                                                 items, stream_));  // an upper bound: rows <= m
    std::size_t bytes = sort_bytes > rle_bytes ? sort_bytes : rle_bytes;
    if (scan_bytes > bytes) bytes = scan_bytes;
    detail::cuda_grow(temp_, static_cast<index>(bytes) + 1, stream_);
    std::size_t have = static_cast<std::size_t>(temp_.size());
    UVP_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp_.data(), have, keys_.data(), keys_sorted_.data(),
                                                   sources_.data(), sources_sorted_.data(), items, 0,
                                                   bits, stream_));
    have = static_cast<std::size_t>(temp_.size());
    UVP_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(temp_.data(), have, keys_sorted_.data(), unique_.data(),
                                                      counts_.data(), runs_.data(), items, stream_));
    detail::cuda_embedding_count_kernel<<<1, 1, 0, stream_>>>(unique_.data(), runs_.data(), num_,
                                                              runs_.data() + 1);
    UVP_CUDA_CHECK(cudaGetLastError());
    const index rows = cuda_backend::read_element(runs_.data() + 1, 0, stream_);
    if (rows > 0) {  // where each row's run starts in the sorted sources
      have = static_cast<std::size_t>(temp_.size());
      UVP_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp_.data(), have, counts_.data(), starts_.data(),
                                                   static_cast<int>(rows), stream_));
    }

    const int next = 1 - cur_;
    detail::cuda_grow(rows_[next], rows, stream_);
    detail::cuda_grow(values_[next], rows * dim_, stream_);
    if (rows > 0) {
      detail::cuda_embedding_reduce_kernel<T><<<detail::cuda_grid_for(rows * dim_), 256, 0, stream_>>>(
          unique_.data(), counts_.data(), starts_.data(), sources_sorted_.data(), values_[cur_].data(),
          held, d_out.data(), rows, dim_, rows_[next].data(), values_[next].data());
      UVP_CUDA_CHECK(cudaGetLastError());
    }
    cur_ = next;
    rows_count_ = rows;
  }

  // --- the sparse gradient ---

  /// Forgets the touched rows (no device work; the buffers are kept).
  void zero_grad() noexcept { rows_count_ = 0; }
  /// Number of distinct rows touched since zero_grad (padding_idx never counts).
  index sparse_size() const noexcept { return rows_count_; }
  /// The touched rows, ascending (device memory).
  cuda_backend::DeviceSpan<const index> grad_rows() const noexcept {
    return {rows_[cur_].data(), rows_count_};
  }
  /// Their gradient rows, sparse_size() x embedding_dim, row-major (device memory).
  cuda_backend::DeviceSpan<const T> grad_values() const noexcept {
    return {values_[cur_].data(), rows_count_ * dim_};
  }
  /// Copies the touched rows and their gradient rows to the host (waits for the stream).
  void sparse_grad_to_host(std::vector<index>& rows, std::vector<T>& values) const {
    rows.resize(static_cast<std::size_t>(rows_count_));
    values.resize(static_cast<std::size_t>(rows_count_ * dim_));
    if (rows_count_ == 0) return;
    UVP_CUDA_CHECK(cudaMemcpyAsync(rows.data(), rows_[cur_].data(), rows.size() * sizeof(index),
                                   cudaMemcpyDeviceToHost, stream_));
    UVP_CUDA_CHECK(cudaMemcpyAsync(values.data(), values_[cur_].data(), values.size() * sizeof(T),
                                   cudaMemcpyDeviceToHost, stream_));
    UVP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // --- the lazy optimizer step (uvp::nn::step's rule for a sparse tensor) ---

  /// One step of opt (uvp::Adam<T, uvp::cuda> or uvp::Sgd<T, uvp::cuda>): begin_step(), then
  /// the touched rows of the table and of opt's state (the table's elements sit at
  /// [offset, offset + num * dim) of the state) are updated; untouched rows keep their values
  /// and moments. An unsized state is sized to num * dim (offset must then be 0). Checks (and
  /// with options().check_finite, the gradient's finiteness) come before any change.
  template <class Optimizer>
  void sparse_step(Optimizer& opt, index offset = 0) {
    const bool unsized = opt.size() == 0 && offset == 0;
    check_slice("uvp::nn::Embedding::sparse_step", opt, offset, unsized ? num_ * dim_ : opt.size());
    if (unsized) opt.resize(num_ * dim_);
    opt.begin_step();
    run(opt, offset);
  }

  /// The row updates of sparse_step without begin_step(): for an optimizer shared with other
  /// blocks, whose step the caller has begun (as uvp::nn::step does with update()).
  template <class Optimizer>
  void sparse_update(Optimizer& opt, index offset) {
    constexpr const char* where = "uvp::nn::Embedding::sparse_update";
    if (opt.steps() == 0)
      detail::raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    check_slice(where, opt, offset, opt.size());
    run(opt, offset);
  }

 private:
  template <class Optimizer>
  void check_slice(const char* where, const Optimizer& opt, index offset, index state_size) {
    static_assert(std::is_same_v<Optimizer, Adam<T, cuda>> || std::is_same_v<Optimizer, Sgd<T, cuda>>,
                  "uvp::nn::Embedding<T, uvp::cuda>: the optimizer must be uvp::Adam<T, uvp::cuda> "
                  "or uvp::Sgd<T, uvp::cuda>");
    const index n = num_ * dim_;
    if (state_size == 0)
      detail::raise<invalid_argument>(where,
                                      ": the state is not sized; call resize(n) or take a full step first");
    if (offset < 0 || offset > state_size - n)
      detail::raise<out_of_range_error>(where, ": slice [", offset, ", ", offset + n,
                                        ") is outside the state of size ", state_size);
    if (opt.options().check_finite && rows_count_ > 0)
      detail::cuda_check_finite<numeric_error>(reducer_, where, "grads", values_[cur_].data(),
                                               rows_count_ * dim_);
  }

  // The optimizers expose their state read-only; the step writes it in place, as their own
  // update() does (the buffers are theirs, not const objects).
  void run(Adam<T, cuda>& opt, index offset) {
    if (rows_count_ == 0) return;
    const auto c = detail::adam_coefficients<T>(opt.options(), opt.lr(), opt.steps());
    T* m = const_cast<T*>(opt.exp_avg().data()) + offset;
    T* v = const_cast<T*>(opt.exp_avg_sq().data()) + offset;
    const dim3 grid = detail::cuda_grid_for(rows_count_ * dim_);
    const index* r = rows_[cur_].data();
    const T* g = values_[cur_].data();
    if (opt.options().amsgrad)
      detail::cuda_embedding_adam_kernel<true, T><<<grid, 256, 0, opt.stream()>>>(
          table_.data(), r, g, m, v, const_cast<T*>(opt.max_exp_avg_sq().data()) + offset,
          rows_count_, dim_, c);
    else
      detail::cuda_embedding_adam_kernel<false, T><<<grid, 256, 0, opt.stream()>>>(
          table_.data(), r, g, m, v, nullptr, rows_count_, dim_, c);
    UVP_CUDA_CHECK(cudaGetLastError());
  }
  void run(Sgd<T, cuda>& opt, index offset) {
    if (rows_count_ == 0) return;
    const auto c = detail::sgd_coefficients<T>(opt.options(), opt.lr(), opt.steps());
    const dim3 grid = detail::cuda_grid_for(rows_count_ * dim_);
    const index* r = rows_[cur_].data();
    const T* g = values_[cur_].data();
    T* b = opt.options().momentum == 0 ? nullptr : const_cast<T*>(opt.momentum_buffer().data()) + offset;
    if (opt.options().momentum == 0)
      detail::cuda_embedding_sgd_kernel<false, false, T><<<grid, 256, 0, opt.stream()>>>(
          table_.data(), r, g, b, rows_count_, dim_, c);
    else if (opt.options().nesterov)
      detail::cuda_embedding_sgd_kernel<true, true, T><<<grid, 256, 0, opt.stream()>>>(
          table_.data(), r, g, b, rows_count_, dim_, c);
    else
      detail::cuda_embedding_sgd_kernel<true, false, T><<<grid, 256, 0, opt.stream()>>>(
          table_.data(), r, g, b, rows_count_, dim_, c);
    UVP_CUDA_CHECK(cudaGetLastError());
  }

  void check_ids(const char* where, cuda_backend::DeviceSpan<const index> ids) const {
    const index i = reducer_.first_index(detail::CudaIdOutOfRange{ids.data(), num_}, ids.size());
    if (i < ids.size())
      detail::raise<out_of_range_error>(where, ": ids[", i, "] = ",
                                        cuda_backend::read_element(ids.data(), i, stream_),
                                        " is out of range [0, ", num_, ")");
  }
  static void check_count(const char* where, const cuda_backend::DeviceTensorInfo& t, index n) {
    if (n != t.numel())
      detail::raise<shape_error>(where, ": tensor \"", t.name, "\" has ", t.numel(),
                                 " elements, the host has ", n);
  }
  template <class Shape>
  void check_host_shape(const char* where, const Shape& shape) const {
    const bool same = shape.size() == 2 && index(shape[0]) == num_ && index(shape[1]) == dim_;
    if (!same)
      detail::raise<shape_error>(where, ": tensor \"weight\" has a different shape on the host");
  }

  index num_, dim_, padding_idx_;
  cudaStream_t stream_;
  std::vector<cuda_backend::DeviceTensorInfo> tensors_;
  cuda_backend::DeviceBuffer<T> table_;
  // The sparse gradient, double-buffered (backward reads one, writes the other).
  cuda_backend::DeviceBuffer<index> rows_[2];
  cuda_backend::DeviceBuffer<T> values_[2];
  int cur_ = 0;
  index rows_count_ = 0;
  // backward's scratch; it only grows.
  cuda_backend::DeviceBuffer<index> keys_, keys_sorted_, sources_, sources_sorted_, unique_, counts_,
      starts_, runs_;
  cuda_backend::DeviceBuffer<unsigned char> temp_;
  mutable cuda_backend::Reducer reducer_;
};

}  // namespace uvp::nn
