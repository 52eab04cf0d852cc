// SPDX-License-Identifier: Apache-2.0
// Embedding table with a sparse row gradient: torch.nn.Embedding(sparse=True) lookups and
// torch.nn.EmbeddingBag(mode="sum" / "mean", sparse=True) bags.
//
// The layer contract (uvp/nn/layer.hpp), TokenBatch -> SequenceBatch<T>:
//
//   SequenceBatch<T> y = emb.forward(tokens, ctx);   // row b * steps + t = W[ids[b * steps + t]]
//   emb.backward(ctx, d_y);                           // accumulates the sparse gradient
//
// y has the batch, steps and lengths of tokens (padding positions are looked up too: give them
// padding_idx so they get no gradient); backward returns NoGradient (ids have none). For bags
// see nn::EmbeddingBag (uvp/nn/embedding_bag.hpp), for positions nn::PositionEmbedding.
// The low-level forms below (forward(ids, out), backward(ids, d_out), forward_bag, backward_bag)
// take flat ids and caller-owned buffers; the contract forms are built on them.
//
// n = ids.size(), B = offsets.size(), d = embedding_dim, W = "weight" (num_embeddings x d).
//
//   lookup   out[i, :] = W[ids[i], :]                                        out: n x d
//            dW[ids[i], :] += d_out[i, :]             for every i with ids[i] != padding_idx
//   bags     bag b holds the positions P_b = [offsets[b], offsets[b + 1]), the last bag running
//            to n (torch's offsets with include_last_offset = False); K_b = {i in P_b : ids[i] !=
//            padding_idx} (padding is left out of the sum and of the mean's count, as in torch)
//            sum:  out[b, :] = sum_{i in K_b} W[ids[i], :]                   out: B x d
//            mean: out[b, :] = sum_{i in K_b} W[ids[i], :] / |K_b|  (0 when K_b is empty)
//            dW[ids[i], :] += d_out[b, :] * (mean ? 1 / |K_b| : 1)  for every i in K_b
//
// The gradient is sparse: backward accumulates only the rows it touches (Block::sparse_grad()),
// and uvp::nn::step updates only those rows (torch.optim.SparseAdam's lazy rule), so a
// 10^6-row table costs no dense gradient buffer and no per-step pass over untouched rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/sequence_batch.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

/// Asks for the first bytes (at most 256) of a row that is read a little later: a gather from a
/// table far larger than the caches is otherwise latency-bound.
inline void prefetch_row(const void* p, std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = static_cast<const char*>(p);
  const std::size_t end = bytes < 256 ? bytes : 256;
  for (std::size_t k = 0; k < end; k += 64) __builtin_prefetch(c + k);
#else
  (void)p;
  (void)bytes;
#endif
}

/// Fills w with N(0, 1) draws by the Box-Muller transform, one SIMD batch of (log, sincos) per two
/// batches of values: about 5x faster than init::normal's scalar polar method, which matters
/// for a 10^6 x 64 table. Uniforms come from rng (24 bits each for float, 53 for double), so a
/// seed gives the same table wherever the SIMD width (and so xsimd's kernels) is the same.
template <class T>
void fill_standard_normal(Span<T> w, Rng& rng) {
  if constexpr (!simd::enabled<T>) {
    init::normal(w, 0.0, 1.0, rng);
  } else {
    using B = simd::batch<T>;
    constexpr index W = index(B::size);
    alignas(simd::tail_alignment) T u1[W], u2[W], out[2 * W];
    const B minus_two(T(-2)), two_pi(T(6.283185307179586));
    for (index i = 0; i < w.size(); i += 2 * W) {
      for (index k = 0; k < W; ++k) {
        if constexpr (std::is_same_v<T, float>) {
          const std::uint64_t r = rng();
          u1[k] = float((r >> 40) + 1) * 0x1.0p-24f;  // (0, 1]: log(u1) is finite
          u2[k] = float((r >> 8) & 0xffffff) * 0x1.0p-24f;
        } else {
          u1[k] = double((rng() >> 11) + 1) * 0x1.0p-53;
          u2[k] = double(rng() >> 11) * 0x1.0p-53;
        }
      }
      const B radius = xsimd::sqrt(minus_two * xsimd::log(B::load_aligned(u1)));
      const auto sc = xsimd::sincos(two_pi * B::load_aligned(u2));
      T* dst = i + 2 * W <= w.size() ? w.data() + i : out;
      (radius * sc.second).store_unaligned(dst);
      (radius * sc.first).store_unaligned(dst + W);
      if (dst == out) std::copy(out, out + (w.size() - i), w.data() + i);
    }
  }
}

/// Checks what a TokenBatch's blocks read besides the ids: batch, steps >= 0 and lengths empty or
/// batch values in [1, steps].
inline void check_token_lengths(const char* where, const nn::TokenBatch& x) {
  if (x.batch < 0 || x.steps < 0)
    raise<invalid_argument>(where, ": x.batch = ", x.batch, " and x.steps = ", x.steps, " must be >= 0");
  if (x.lengths.empty()) return;
  check_size(where, "x.lengths", x.lengths.size(), x.batch);
  for (index b = 0; b < x.batch; ++b)
    if (x.lengths[b] < 1 || x.lengths[b] > x.steps)
      raise<out_of_range_error>(where, ": x.lengths[", b, "] = ", x.lengths[b], " is outside [1, x.steps = ",
                                x.steps, "]");
}

}  // namespace uvp::detail

namespace uvp::nn {

/// How forward_bag pools the rows of a bag (torch.nn.EmbeddingBag's mode; "max" is not offered).
enum class BagMode { sum, mean };

/// A table of num_embeddings rows of embedding_dim values, looked up by integer id.
/// Tensor: "weight" {num_embeddings, embedding_dim}, sparse (its gradient is the touched rows).
/// Ids must lie in [0, num_embeddings); anything else is a uvp::out_of_range_error that names the
/// position and the id, raised before any output or gradient is written.
template <class T, class Backend = uvp::cpu>
class Embedding : public Block<T> {
  static_assert(std::is_same_v<Backend, uvp::cpu>,
                "uvp::nn::Embedding: only the uvp::cpu backend is implemented; use Embedding<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = TokenBatch;
  using output_type = SequenceBatch<T>;
  static constexpr const char* kind = "Embedding";

  /// What the contract forward keeps for backward: its output rows and a view of its tokens.
  /// One per thread; the buffer only grows.
  class Context : public uvp::detail::NnContextBase {
   private:
    friend class Embedding;
    uvp::detail::AlignedBuffer<T> out_;
    TokenBatch x_;
  };

  /// Weights drawn N(0, 1) as torch.nn.Embedding does (by uvp::detail::fill_standard_normal),
  /// then row padding_idx set to 0.
  /// padding_idx: a row in [0, num_embeddings) that gets no gradient and is left out of bags,
  /// or -1 for none (torch's padding_idx = None; torch's negative indices are not accepted).
  Embedding(index num_embeddings, index embedding_dim, uvp::Rng& rng, index padding_idx = -1)
      : num_(num_embeddings), dim_(embedding_dim), padding_idx_(padding_idx) {
    constexpr const char* where = "uvp::nn::Embedding";
    uvp::detail::check_positive(where, "num_embeddings", num_embeddings);
    uvp::detail::check_positive(where, "embedding_dim", embedding_dim);
    if (padding_idx < -1 || padding_idx >= num_embeddings)
      uvp::detail::raise<out_of_range_error>(where, ": padding_idx = ", padding_idx,
                                             " is outside [0, ", num_embeddings, ") and is not -1 (none)");
    this->add_tensor("weight", {num_embeddings, embedding_dim}, true);
    this->allocate_parameters();
    Span<T> w = this->values(this->tensors()[0]);
    uvp::detail::fill_standard_normal(w, rng);
    if (padding_idx_ >= 0) init::zeros(w.subspan(padding_idx_ * dim_, dim_));
  }

  index num_embeddings() const noexcept { return num_; }
  index embedding_dim() const noexcept { return dim_; }
  index padding_idx() const noexcept { return padding_idx_; }

  /// The table, num_embeddings x embedding_dim, row-major.
  ConstMatrixView<T> weight() const noexcept { return {table(), num_, dim_}; }
  MatrixView<T> weight() noexcept { return {table(), num_, dim_}; }

  /// Any id sequence (-1); rows of embedding_dim values out.
  index input_width() const noexcept { return -1; }
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::Embedding::output_width", in);
    return dim_;
  }

  /// y (batch * steps) x embedding_dim with the batch, steps and lengths of x: row i = W[x.ids[i]].
  /// Ids outside [0, num_embeddings) raise as the low-level forward does. The view is owned by ctx
  /// (valid until its next forward); ctx keeps a view of x. Const and thread-safe.
  SequenceBatch<T> forward(const TokenBatch& x, Context& ctx) const {
    constexpr const char* where = "uvp::nn::Embedding::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_token_lengths(where, x);
    uvp::detail::check_size(where, "x.ids", x.ids.size(), x.batch * x.steps);
    const index n = x.ids.size();
    MatrixView<T> out(uvp::detail::grow(ctx.out_, n * dim_), n, dim_);
    forward(x.ids, out);
    ctx.x_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {ConstMatrixView<T>(out.data(), n, dim_), x.batch, x.steps, x.lengths};
  }

  /// Accumulates d_output (the batch, steps and embedding_dim of ctx's forward) into the sparse
  /// gradient, as backward(ids, d_out) does for ctx's ids. uvp::invalid_argument without a
  /// completed forward in ctx, uvp::shape_error for another shape.
  NoGradient backward(Context& ctx, const SequenceBatch<T>& d_output) {
    constexpr const char* where = "uvp::nn::Embedding::backward";
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "Embedding", &s);
    const TokenBatch& x = ctx.x_;
    uvp::detail::check_batch_sizes(where, "d_output", d_output);
    uvp::detail::check_sequence_shape(where, "d_output", d_output.batch, d_output.steps, d_output.features, x.batch,
                                      x.steps, dim_);
    backward(x.ids, d_output.values());
    return {};
  }

  /// kind "Embedding", args num_embeddings, embedding_dim, padding_idx.
  BlockSpec spec() const {
    BlockSpec s(kind);
    s.set("num_embeddings", double(num_)).set("embedding_dim", double(dim_)).set("padding_idx", double(padding_idx_));
    return s;
  }
  /// The block spec() describes, its table drawn from a fixed seed (the weights are loaded after).
  static Embedding from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::Embedding::from_spec", s, kind);
    constexpr index max = uvp::detail::nn_spec_max_size;
    uvp::Rng rng;
    return Embedding(s.get_index("num_embeddings", -max, max), s.get_index("embedding_dim", -max, max), rng,
                     s.get_index("padding_idx", -max, max));
  }

  // Low-level forms: flat ids and caller-owned buffers.

  /// out (n x d) = the rows ids[0], ..., ids[n - 1] (padding rows included, as in torch).
  void forward(Span<const index> ids, MatrixRef<T> out) const {
    constexpr const char* where = "uvp::nn::Embedding::forward";
    const index n = ids.size();
    uvp::detail::check_shape(where, "out", out.rows(), out.cols(), n, dim_);
    check_ids(where, ids);
    const T* w = table();
    const std::size_t bytes = std::size_t(dim_) * sizeof(T);
    const index stride = out.outerStride();
    T* o = out.data();
    const auto copy = [&](index i0, index i1) {
      for (index i = i0; i < i1; ++i) {
        if (i + prefetch_distance < i1) uvp::detail::prefetch_row(w + ids[i + prefetch_distance] * dim_, bytes);
        std::memcpy(o + i * stride, w + ids[i] * dim_, bytes);
      }
    };
    if (n * dim_ < parallel_threshold) {
      copy(0, n);
      return;
    }
    // Blocks of 4,096 rows, each taken by whichever thread is free (uvp::parallel_chunks: no
    // busy-waiting OpenMP team left behind to compete with the backward that follows).
    constexpr index block = 4096;
    uvp::parallel_chunks((n + block - 1) / block, [&](index k) { copy(k * block, std::min(n, (k + 1) * block)); });
  }

  Matrix<T> forward(Span<const index> ids) const {
    Matrix<T> out(ids.size(), dim_);
    forward(ids, out);
    return out;
  }

  /// Accumulates d_out (n x d) into the sparse gradient: row ids[i] += d_out[i, :] for every
  /// non-padding position, duplicates summed in position order. d_out may hold NaN or inf (it is
  /// passed on as it is, like any upstream gradient).
  void backward(Span<const index> ids, ConstMatrixRef<T> d_out) {
    constexpr const char* where = "uvp::nn::Embedding::backward";
    uvp::detail::check_shape(where, "d_out", d_out.rows(), d_out.cols(), ids.size(), dim_);
    check_ids(where, ids);
    const T* g = d_out.data();
    const index stride = d_out.outerStride();
    scatter<false>(ids, [g, stride](index i) { return g + i * stride; }, [](index) { return T(1); });
  }

  /// out (B x d): bag b pools the non-padding rows of ids[offsets[b] .. offsets[b + 1]) (the last
  /// bag to the end of ids) by their sum or mean; an empty bag gives a row of zeros. offsets:
  /// torch's, non-decreasing, offsets[0] = 0, every offset <= n.
  void forward_bag(Span<const index> ids, Span<const index> offsets, BagMode mode, MatrixRef<T> out) const {
    constexpr const char* where = "uvp::nn::Embedding::forward_bag";
    check_offsets(where, ids.size(), offsets);
    const index bags = offsets.size();
    uvp::detail::check_shape(where, "out", out.rows(), out.cols(), bags, dim_);
    check_ids(where, ids);
    const T* w = table();
    const index n = ids.size();
    const std::size_t bytes = std::size_t(dim_) * sizeof(T);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n * dim_ >= parallel_threshold)
#endif
    for (index b = 0; b < bags; ++b) {
      auto o = out.row(b);
      o.setZero();
      const index end = b + 1 < bags ? offsets[b + 1] : n;
      index count = 0;
      for (index i = offsets[b]; i < end; ++i) {
        if (i + prefetch_distance < end) uvp::detail::prefetch_row(w + ids[i + prefetch_distance] * dim_, bytes);
        const index r = ids[i];
        if (r == padding_idx_) continue;
        o += ConstMatrixView<T>(w + r * dim_, 1, dim_);
        ++count;
      }
      if (mode == BagMode::mean && count > 1) o *= T(1) / T(count);
    }
  }

  Matrix<T> forward_bag(Span<const index> ids, Span<const index> offsets, BagMode mode = BagMode::mean) const {
    Matrix<T> out(offsets.size(), dim_);
    forward_bag(ids, offsets, mode, out);
    return out;
  }

  /// Accumulates the gradient of forward_bag: d_out is B x d; row ids[i] of bag b gets
  /// d_out[b, :] (sum) or d_out[b, :] / |K_b| (mean), padding positions nothing.
  void backward_bag(Span<const index> ids, Span<const index> offsets, BagMode mode, ConstMatrixRef<T> d_out) {
    constexpr const char* where = "uvp::nn::Embedding::backward_bag";
    check_offsets(where, ids.size(), offsets);
    const index bags = offsets.size();
    uvp::detail::check_shape(where, "d_out", d_out.rows(), d_out.cols(), bags, dim_);
    check_ids(where, ids);
    const index n = ids.size();
    // bag_of_[i]: the bag of position i; bag_scale_[b]: 1 or 1 / |K_b|.
    uvp::detail::grow(bag_of_, n);
    uvp::detail::grow(bag_scale_, bags);
    for (index b = 0; b < bags; ++b) {
      const index end = b + 1 < bags ? offsets[b + 1] : n;
      index count = 0;
      for (index i = offsets[b]; i < end; ++i) {
        bag_of_[std::size_t(i)] = b;
        count += ids[i] != padding_idx_;
      }
      bag_scale_[std::size_t(b)] = mode == BagMode::mean && count > 0 ? T(1) / T(count) : T(1);
    }
    const T* g = d_out.data();
    const index stride = d_out.outerStride();
    const index* bag = bag_of_.data();
    const T* scale = bag_scale_.data();
    if (mode == BagMode::mean)
      scatter<true>(ids, [=](index i) { return g + bag[i] * stride; }, [=](index i) { return scale[bag[i]]; });
    else
      scatter<false>(ids, [=](index i) { return g + bag[i] * stride; }, [](index) { return T(1); });
  }

 private:
  uvp::detail::NnBlockShape shape() const noexcept {
    return {{"num_embeddings", num_}, {"embedding_dim", dim_}};
  }

  // Below this many gathered / scattered values (4 MiB of floats) a loop stays on one thread: a
  // smaller copy takes tens of microseconds, less than waking a second thread, and next to
  // another busy program every fork risks waiting for a descheduled thread (W2's and W3's
  // embeddings, 100,000-200,000 values a step, stay serial; W7's 6.4 M do not).
  static constexpr index parallel_threshold = index(1) << 20;
  static constexpr index prefetch_distance = 16;

  T* table() noexcept { return this->values(this->tensors()[0]).data(); }
  const T* table() const noexcept { return this->values(this->tensors()[0]).data(); }

  void check_ids(const char* where, Span<const index> ids) const {
    for (index i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= num_)
        uvp::detail::raise<out_of_range_error>(where, ": ids[", i, "] = ", ids[i], " is out of range [0, ",
                                               num_, ")");
  }

  static void check_offsets(const char* where, index n, Span<const index> offsets) {
    if (offsets.empty()) {
      if (n > 0)
        uvp::detail::raise<invalid_argument>(where, ": offsets is empty but ids has ", n,
                                             " entries (each id must belong to a bag)");
      return;
    }
    if (offsets[0] != 0)
      uvp::detail::raise<invalid_argument>(where, ": offsets[0] = ", offsets[0],
                                           ", expected 0 (the first bag starts at position 0)");
    for (index b = 1; b < offsets.size(); ++b) {
      if (offsets[b] < offsets[b - 1])
        uvp::detail::raise<invalid_argument>(where, ": offsets[", b, "] = ", offsets[b], " is less than offsets[",
                                             b - 1, "] = ", offsets[b - 1], " (offsets must be non-decreasing)");
      if (offsets[b] > n)
        uvp::detail::raise<out_of_range_error>(where, ": offsets[", b, "] = ", offsets[b],
                                               " is greater than the number of ids, ", n);
    }
  }

  // Adds scale(i) * grad_row(i) to the sparse gradient row of ids[i] for every non-padding i,
  // with the result of scatter_serial bit for bit, whatever the thread count: rows get their
  // slots in the order of their first occurrence, and every row sums its terms in position
  // order. With several threads the rows are split among `parts` owners (the power of 2 >= the
  // thread count) by (r / 8) % parts (8 entries of slot_of_row share a cache line), and three
  // loops of uvp::parallel_chunks run over the owners, with no serial pass over the positions:
  //   1. each owner lists the first occurrences of its rows new to the gradient (ascending);
  //   (serial: the gradient grows by the new rows)
  //   2. each numbers its first occurrences: the slot of position i is the count of first
  //      occurrences before i in all lists (a merge of the sorted lists), rows[slot] = ids[i];
  //   3. the gradient rows are added by their owners, now owners of slots in blocks of 16 (the
  //      rows lie next to each other in slot order: few cache lines with two writers), positions
  //      in order: a row's first occurrence copies its row, later ones add.
  template <bool Scaled, class GradRow, class Scale>
  void scatter(Span<const index> ids, GradRow grad_row, Scale scale) {
    if constexpr (!Scaled) (void)scale;
    const index n = ids.size(), threads = uvp::num_threads();
    if (threads == 1 || n * dim_ < parallel_threshold) {
      scatter_serial<Scaled>(ids, grad_row, scale);
      return;
    }
    SparseRowGrad<T>& sg = this->sparse_grad_mutable();
    index parts = 1;
    while (parts < threads) parts *= 2;
    const index d = dim_, pad = padding_idx_, next = sg.size(), mask = parts - 1;
    if (static_cast<index>(firsts_.size()) < parts) firsts_.resize(std::size_t(parts));
    index* cursor = uvp::detail::grow(cursor_, parts * parts);  // part p's read position in each list
    index* slot_of_row = sg.slot_of_row.data();
    const index* id = ids.data();
    const auto owns = [mask](index r, index p) { return ((r >> 3) & mask) == p; };
    // Prefetches slot_of_row's entry of the row `prefetch_distance` positions on, if p owns it.
    const auto prefetch = [&](index i, index p) {
      if (i + prefetch_distance < n && owns(id[i + prefetch_distance], p))
        uvp::detail::prefetch_row(slot_of_row + id[i + prefetch_distance], 1);
    };
    uvp::parallel_chunks(parts, [&](index p) {  // 1.
      std::vector<index>& mine = firsts_[std::size_t(p)];
      mine.clear();
      for (index i = 0; i < n; ++i) {
        prefetch(i, p);
        const index r = id[i];
        if (r == pad || !owns(r, p) || slot_of_row[r] != -1) continue;
        slot_of_row[r] = -2;  // seen; numbered in 2.
        mine.push_back(i);
      }
    });
    index total = 0;
    for (index p = 0; p < parts; ++p) total += static_cast<index>(firsts_[std::size_t(p)].size());
    sg.rows.resize(std::size_t(next + total));
    sg.values.resize(std::size_t((next + total) * d));
    index* rows = sg.rows.data();
    T* values = sg.values.data();
    index* first_at = uvp::detail::grow(first_at_, total);  // new slot next + j: its first position
    uvp::parallel_chunks(parts, [&](index p) {  // 2.
      index* at = cursor + p * parts;
      std::fill_n(at, parts, index(0));
      const std::vector<index>& mine = firsts_[std::size_t(p)];
      for (std::size_t j = 0; j < mine.size(); ++j) {
        const index i = mine[j];
        index before = index(j);
        for (index q = 0; q < parts; ++q) {
          if (q == p) continue;
          const std::vector<index>& other = firsts_[std::size_t(q)];
          index& c = at[q];
          while (c < static_cast<index>(other.size()) && other[std::size_t(c)] < i) ++c;
          before += c;
        }
        rows[next + before] = id[i];
        slot_of_row[id[i]] = next + before;
        first_at[before] = i;
      }
    });
    uvp::parallel_chunks(parts, [&](index p) {  // 3.
      for (index i = 0; i < n; ++i) {
        if (i + prefetch_distance < n) uvp::detail::prefetch_row(slot_of_row + id[i + prefetch_distance], 1);
        const index r = id[i];
        if (r == pad) continue;
        const index k = slot_of_row[r];
        if (((k >> 4) & mask) != p) continue;
        const bool first = k >= next && first_at[k - next] == i;
        Eigen::Map<Vector<T>> dst(values + k * d, d);
        const Eigen::Map<const Vector<T>> g(grad_row(i), d);
        if constexpr (Scaled) {
          if (first)
            dst = g * scale(i);  // as scatter_serial: the copy, then *= scale
          else
            dst += scale(i) * g;
        } else {
          if (first)
            dst = g;
          else
            dst += g;
        }
      }
    });
  }

  // One pass on one thread: a row's first occurrence is appended, later ones added.
  template <bool Scaled, class GradRow, class Scale>
  void scatter_serial(Span<const index> ids, GradRow grad_row, Scale scale) {
    if constexpr (!Scaled) (void)scale;
    SparseRowGrad<T>& sg = this->sparse_grad_mutable();
    const index n = ids.size(), d = dim_;
    index* slot_of_row = sg.slot_of_row.data();
    for (index i = 0; i < n; ++i) {
      if (i + prefetch_distance < n) uvp::detail::prefetch_row(slot_of_row + ids[i + prefetch_distance], 1);
      const index r = ids[i];
      if (r == padding_idx_) continue;
      index& k = slot_of_row[r];
      const T* g = grad_row(i);
      if (k < 0) {
        k = sg.size();
        sg.rows.push_back(r);
        sg.values.insert(sg.values.end(), g, g + d);
        if constexpr (Scaled) Eigen::Map<Vector<T>>(sg.values.data() + k * d, d) *= scale(i);
      } else {
        Eigen::Map<Vector<T>> dst(sg.values.data() + k * d, d);
        if constexpr (Scaled)
          dst += scale(i) * Eigen::Map<const Vector<T>>(g, d);
        else
          dst += Eigen::Map<const Vector<T>>(g, d);
      }
    }
  }

  index num_, dim_, padding_idx_;
  // Workspaces of backward / backward_bag; they only grow.
  std::vector<std::vector<index>> firsts_;  // backward's first occurrences, per owner of rows
  std::vector<index> cursor_;
  std::vector<index> first_at_;
  std::vector<index> bag_of_;
  std::vector<T> bag_scale_;
};

}  // namespace uvp::nn
