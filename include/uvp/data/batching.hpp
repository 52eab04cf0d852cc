// SPDX-License-Identifier: Apache-2.0
// Minibatches over n rows (reshuffled each epoch) and gathering a batch's rows without allocating.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

namespace detail {

inline void check_indices(const char* where, Span<const index> idx, index n) {
  for (index i = 0; i < idx.size(); ++i)
    if (idx[i] < 0 || idx[i] >= n)
      raise<out_of_range_error>(where, ": idx[", i, "] = ", idx[i], " out of range [0, ", n, ")");
}

}  // namespace detail

struct MinibatchOptions {
  index batch_size = 32;
  /// Draw a new random order of the rows at the start of every epoch (else rows in order).
  bool shuffle = true;
  /// Skip the last batch of an epoch when it is smaller than batch_size (PyTorch's drop_last);
  /// by default it is kept, so every row is visited once per epoch.
  bool drop_last = false;
  /// Seed of the iterator's own uvp::Rng (the same seed gives the same orders everywhere).
  std::uint64_t seed = 0x5eed;
};

/// Cuts 0..n-1 into batches of batch_size row indices (the last one n % batch_size when not
/// dropped), in a fresh random order each epoch. The iterator holds one permutation of n indices;
/// after construction no call allocates.
///
///     uvp::MinibatchIterator batches(X.rows(), {64});
///     for (int epoch = 0; epoch < 10; ++epoch)
///       for (uvp::Span<const uvp::index> rows; batches.next(rows);)
///         train_step(uvp::gather_rows(X, rows, xb), uvp::gather(y, rows, yb));
class MinibatchIterator {
 public:
  /// n >= 1 rows, batch_size >= 1; with drop_last, batch_size <= n (else no batch at all).
  explicit MinibatchIterator(index n, MinibatchOptions options = {}) : options_(options), rng_(options.seed) {
    constexpr const char* where = "uvp::MinibatchIterator";
    detail::check_not_empty(where, "the data (n)", n);
    detail::check_positive(where, "options.batch_size", options.batch_size);
    if (options.drop_last && options.batch_size > n)
      detail::raise<invalid_argument>(where, ": options.batch_size = ", options.batch_size,
                                      " exceeds n = ", n, " with drop_last: no batch would be produced");
    order_.resize(static_cast<std::size_t>(n));
    std::iota(order_.begin(), order_.end(), index(0));
    end_ = options.drop_last ? n / options.batch_size * options.batch_size : n;
  }

  /// The next batch of the current epoch: sets `batch` (a view into the iterator, valid until the
  /// next epoch starts) and returns true, or returns false once the epoch is exhausted; the call
  /// after that starts the next epoch (reshuffled).
  bool next(Span<const index>& batch) noexcept {
    if (!in_epoch_) start_epoch();
    if (pos_ >= end_) {
      in_epoch_ = false;
      return false;
    }
    const index m = std::min(options_.batch_size, end_ - pos_);
    batch = Span<const index>(order_.data() + pos_, m);
    pos_ += m;
    return true;
  }

  /// Starts a new epoch now (reshuffling when options.shuffle), abandoning what is left of the
  /// current one.
  void start_epoch() noexcept {
    if (options_.shuffle) rng_.shuffle(order_.begin(), order_.end());
    pos_ = 0;
    in_epoch_ = true;
    ++epoch_;
  }

  /// Rows (n).
  index size() const noexcept { return static_cast<index>(order_.size()); }
  index batch_size() const noexcept { return options_.batch_size; }
  /// ceil(n / batch_size), or floor with drop_last.
  index batches_per_epoch() const noexcept {
    return (end_ + options_.batch_size - 1) / options_.batch_size;
  }
  /// Epochs started so far.
  index epoch() const noexcept { return epoch_; }
  /// The current epoch's order of all n rows.
  Span<const index> order() const noexcept { return as_span(order_); }
  const MinibatchOptions& options() const noexcept { return options_; }

 private:
  MinibatchOptions options_;
  Rng rng_;
  std::vector<index> order_;
  index end_ = 0;
  index pos_ = 0;
  index epoch_ = 0;
  bool in_epoch_ = false;
};

/// Runs one whole (new) epoch of `batches`, calling f(Span<const index> rows) for each batch.
/// If f returns bool, returning false stops the epoch early. Returns the number of batches run.
template <class F>
index for_each_minibatch(MinibatchIterator& batches, F&& f) {
  batches.start_epoch();
  index count = 0;
  for (Span<const index> rows; batches.next(rows);) {
    ++count;
    if constexpr (std::is_same_v<std::invoke_result_t<F&, Span<const index>>, bool>) {
      if (!f(rows)) break;
    } else {
      f(rows);
    }
  }
  return count;
}

/// One epoch over n rows in batches of batch_size (last partial batch kept), in order, or in a
/// random order drawn from `rng` when it is not null. Allocates the order once per call.
template <class F>
index for_each_minibatch(index n, index batch_size, Rng* rng, F&& f) {
  constexpr const char* where = "uvp::for_each_minibatch";
  detail::check_not_empty(where, "the data (n)", n);
  detail::check_positive(where, "batch_size", batch_size);
  std::vector<index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index(0));
  if (rng) rng->shuffle(order.begin(), order.end());
  index count = 0;
  for (index pos = 0; pos < n; pos += batch_size) {
    const Span<const index> rows(order.data() + pos, std::min(batch_size, n - pos));
    ++count;
    if constexpr (std::is_same_v<std::invoke_result_t<F&, Span<const index>>, bool>) {
      if (!f(rows)) break;
    } else {
      f(rows);
    }
  }
  return count;
}

/// Copies X's rows `rows[0], rows[1], ...` into the top of `buffer` and returns a
/// rows.size() x X.cols() view of them. `buffer` grows (allocates) only when it has fewer than
/// rows.size() rows or not X.cols() columns; size it once for a full batch and the loop never
/// allocates. An index outside [0, X.rows()) throws uvp::out_of_range_error.
template <class Derived, class T>
MatrixView<T> gather_rows(const Eigen::MatrixBase<Derived>& X, Span<const index> rows, Matrix<T>& buffer) {
  static_assert(std::is_same_v<typename Derived::Scalar, T>,
                "uvp::gather_rows: X and buffer must have the same scalar type");
  detail::check_indices("uvp::gather_rows", rows, X.rows());
  if (buffer.rows() < rows.size() || buffer.cols() != X.cols())
    buffer.resize(rows.size(), X.cols());
  MatrixView<T> out(buffer.data(), rows.size(), X.cols());
  for (index i = 0; i < rows.size(); ++i) out.row(i) = X.row(rows[i]);
  return out;
}

/// The vector flavour: y[rows[0]], y[rows[1]], ... into the front of `buffer` (grown only when
/// shorter than rows.size()).
template <class Derived, class T>
VectorView<T> gather(const Eigen::MatrixBase<Derived>& y, Span<const index> rows, Vector<T>& buffer) {
  static_assert(std::is_same_v<typename Derived::Scalar, T>,
                "uvp::gather: y and buffer must have the same scalar type");
  static_assert(Derived::IsVectorAtCompileTime, "uvp::gather: y must be a vector; use gather_rows for a matrix");
  detail::check_indices("uvp::gather", rows, y.size());
  if (buffer.size() < rows.size()) buffer.resize(rows.size());
  VectorView<T> out(buffer.data(), rows.size());
  for (index i = 0; i < rows.size(); ++i) out[i] = y[rows[i]];
  return out;
}

}  // namespace uvp
