// SPDX-License-Identifier: Apache-2.0
// What uvp::fit and uvp::predict read: rows of features, or token-id sequences, with their targets
// and optional per-sample weights. Views: they own nothing; the caller's arrays must outlive them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/nn/layer.hpp"

namespace uvp {

namespace detail {
// The data of an Eigen object whose rows are contiguous (row-major, or a single column): what a
// view of n rows of width m needs. Anything else (a column slice) raises invalid_argument.
template <class T, class M>
const T* contiguous_rows(const char* where, const char* what, const M& m) {
  static_assert(std::is_same_v<typename M::Scalar, T>, "uvp: the data's scalar type must match the model's");
  static_assert(bool(M::Flags & Eigen::DirectAccessBit),
                "uvp: pass a Matrix, Vector, Map, Ref or contiguous block (an expression has no storage)");
  bool ok = m.innerStride() == 1;
  if constexpr (bool(M::IsRowMajor))
    ok = ok && (m.rows() <= 1 || m.outerStride() == m.cols());
  else
    ok = ok && (m.cols() <= 1 || (m.rows() <= 1 && m.outerStride() == 1));
  if (!ok)
    raise<invalid_argument>(where, ": ", what, " must be stored as contiguous rows (row-major, or one column); got a ",
                            m.rows(), " x ", m.cols(), " view with outer stride ", m.outerStride());
  return m.data();
}
}  // namespace detail

/// Rows of features: X (n x features, row-major), targets y (n x outputs: one column for a
/// binary label, a regression target or a class id; k columns for multi-output), and
/// sample_weight (empty, or n finite values >= 0). y may be absent (predict).
template <class T>
struct RowData {
  using value_type = T;
  const T* x = nullptr;
  index rows = 0, features = 0;
  const T* y = nullptr;
  index outputs = 0;
  Span<const T> sample_weight;

  RowData() = default;
  /// X only (for uvp::predict).
  template <class MX, class = std::enable_if_t<std::is_base_of_v<Eigen::EigenBase<MX>, MX>>>
  explicit RowData(const MX& X)
      : x(detail::contiguous_rows<T>("uvp::RowData", "X", X)), rows(X.rows()), features(X.cols()) {}
  /// X and y (a Vector of n values, or an n x k matrix), and optional sample weights.
  template <class MX, class MY,
            class = std::enable_if_t<std::is_base_of_v<Eigen::EigenBase<MX>, MX> && std::is_base_of_v<Eigen::EigenBase<MY>, MY>>>
  RowData(const MX& X, const MY& Y, Span<const T> weights = {})
      : x(detail::contiguous_rows<T>("uvp::RowData", "X", X)), rows(X.rows()), features(X.cols()),
        y(detail::contiguous_rows<T>("uvp::RowData", "y", Y)), outputs(Y.cols()), sample_weight(weights) {
    detail::check_rows("uvp::RowData", "y", Y.rows(), X.rows());
  }

  index size() const noexcept { return rows; }
  bool has_targets() const noexcept { return y != nullptr; }
  /// All targets, size() x outputs.
  ConstMatrixView<T> targets() const noexcept { return {y, rows, outputs}; }
};

/// Token-id sequences, as an Embedding reads them: ids (n * steps, row-major: row b holds
/// sequence b, padded with the padding id after its length), lengths (empty: every sequence has
/// all `steps` steps; else n values in [1, steps]), targets y (n x outputs) and sample_weight
/// (empty, or n values). uvp::fit trims every minibatch to its longest sequence.
template <class T>
struct SequenceData {
  using value_type = T;
  Span<const index> ids;
  index steps = 0;
  Span<const index> lengths;
  index rows = 0;
  const T* y = nullptr;
  index outputs = 0;
  Span<const T> sample_weight;

  SequenceData() = default;
  /// Sequences only (for uvp::predict).
  SequenceData(Span<const index> ids_, index steps_, Span<const index> lengths_ = {})
      : ids(ids_), steps(steps_), lengths(lengths_) {
    check("uvp::SequenceData");
  }
  /// Sequences with targets y (a Vector of n values or an n x k matrix) and optional weights.
  template <class MY, class = std::enable_if_t<std::is_base_of_v<Eigen::EigenBase<MY>, MY>>>
  SequenceData(Span<const index> ids_, index steps_, Span<const index> lengths_, const MY& Y,
               Span<const T> weights = {})
      : ids(ids_), steps(steps_), lengths(lengths_), y(detail::contiguous_rows<T>("uvp::SequenceData", "y", Y)),
        outputs(Y.cols()), sample_weight(weights) {
    check("uvp::SequenceData");
    detail::check_rows("uvp::SequenceData", "y", Y.rows(), rows);
  }

  index size() const noexcept { return rows; }
  bool has_targets() const noexcept { return y != nullptr; }
  ConstMatrixView<T> targets() const noexcept { return {y, rows, outputs}; }
  index length(index b) const noexcept { return lengths.empty() ? steps : lengths[b]; }

 private:
  void check(const char* where) {
    if (steps < 1) detail::raise<invalid_argument>(where, ": steps must be >= 1, got ", steps);
    if (ids.size() % steps != 0)
      detail::raise<shape_error>(where, ": ids has size ", ids.size(), ", not a multiple of steps = ", steps);
    rows = ids.size() / steps;
    if (!lengths.empty()) {
      detail::check_size(where, "lengths", lengths.size(), rows);
      for (index b = 0; b < rows; ++b)
        if (lengths[b] < 1 || lengths[b] > steps)
          detail::raise<invalid_argument>(where, ": lengths[", b, "] = ", lengths[b], " must be in [1, ", steps, "]");
    }
  }
};

}  // namespace uvp

namespace uvp::detail {

/// What a model reads for each kind of data.
template <class Data>
struct data_input;
template <class T>
struct data_input<RowData<T>> {
  using type = ConstMatrixView<T>;
};
template <class T>
struct data_input<SequenceData<T>> {
  using type = nn::TokenBatch;
};
template <class Data>
using data_input_t = typename data_input<Data>::type;

template <class Input, class T>
struct DataBatch {
  Input input;
  ConstMatrixView<T> y;  ///< m x outputs (0 columns without targets)
  const T* w;            ///< m weights or nullptr
};

/// Cuts data into minibatches: rows s .. s + m of `order` (or of the data itself when order is
/// null), gathered into buffers it owns; they only grow, so a training run allocates during its
/// first epoch only. Contiguous unshuffled rows are views of the caller's data (no copy).
template <class Data>
class BatchSource;

template <class T>
class BatchSource<RowData<T>> {
 public:
  using Batch = DataBatch<ConstMatrixView<T>, T>;

  void reserve(const RowData<T>& d, index m, bool shuffled) {
    if (shuffled) grow(d, m);
  }

  Batch gather(const RowData<T>& d, const index* order, index s, index m) {
    const index f = d.features, k = d.outputs;
    const T* sw = d.sample_weight.empty() ? nullptr : d.sample_weight.data();
    if (!order)
      return {ConstMatrixView<T>(d.x + s * f, m, f), ConstMatrixView<T>(d.y ? d.y + s * k : nullptr, m, k),
              sw ? sw + s : nullptr};
    grow(d, m);
    for (index r = 0; r < m; ++r) {
      const index src = order[s + r];
      std::copy_n(d.x + src * f, f, x_.data() + r * f);
      if (d.y) std::copy_n(d.y + src * k, k, y_.data() + r * k);
      if (sw) w_[std::size_t(r)] = sw[src];
    }
    return {ConstMatrixView<T>(x_.data(), m, f), ConstMatrixView<T>(d.y ? y_.data() : nullptr, m, k),
            sw ? w_.data() : nullptr};
  }

  /// Raises uvp::invalid_argument naming the first non-finite value of the batch's rows (after
  /// calling before_throw()); returns if there is none.
  template <class F>
  void check_finite_input(const char* where, const RowData<T>& d, const index* order, index s, index m,
                          F&& before_throw) const {
    for (index r = 0; r < m; ++r) {
      const index src = order ? order[s + r] : s + r;
      for (index c = 0; c < d.features; ++c) {
        const T v = d.x[src * d.features + c];
        if (!std::isfinite(v)) {
          before_throw();
          raise<invalid_argument>(where, ": X has a non-finite value (", v, ") at row ", src, ", column ", c);
        }
      }
    }
  }

 private:
  void grow(const RowData<T>& d, index m) {
    if (index(x_.size()) < m * d.features) x_.resize(std::size_t(m * d.features));
    if (index(y_.size()) < m * d.outputs) y_.resize(std::size_t(m * d.outputs));
    if (index(w_.size()) < m) w_.resize(std::size_t(m));
  }
  // Cache-line aligned, as Eigen's own matrices (a row-major product reads them with wide loads).
  std::vector<T, aligned_allocator<T>> x_, y_, w_;
};

template <class T>
class BatchSource<SequenceData<T>> {
 public:
  using Batch = DataBatch<nn::TokenBatch, T>;

  void reserve(const SequenceData<T>& d, index m, bool) { grow(d, m, d.steps); }

  /// The batch's sequences, trimmed to the longest of them.
  Batch gather(const SequenceData<T>& d, const index* order, index s, index m) {
    const index k = d.outputs;
    const T* sw = d.sample_weight.empty() ? nullptr : d.sample_weight.data();
    if (!order && d.lengths.empty())
      return {nn::TokenBatch(d.ids.subspan(s * d.steps, m * d.steps), m, d.steps),
              ConstMatrixView<T>(d.y ? d.y + s * k : nullptr, m, k), sw ? sw + s : nullptr};
    index len = 0;
    for (index b = 0; b < m; ++b) len = std::max(len, d.length(order ? order[s + b] : s + b));
    grow(d, m, len);
    for (index b = 0; b < m; ++b) {
      const index src = order ? order[s + b] : s + b;
      std::copy_n(d.ids.data() + src * d.steps, len, ids_.data() + b * len);
      lengths_[std::size_t(b)] = d.length(src);
      if (order && d.y) std::copy_n(d.y + src * k, k, y_.data() + b * k);
      if (order && sw) w_[std::size_t(b)] = sw[src];
    }
    const T* y = !d.y ? nullptr : (order ? y_.data() : d.y + s * k);
    const T* w = !sw ? nullptr : (order ? w_.data() : sw + s);
    return {nn::TokenBatch(Span<const index>(ids_.data(), m * len), m, len, Span<const index>(lengths_.data(), m)),
            ConstMatrixView<T>(y, m, k), w};
  }

  template <class F>
  void check_finite_input(const char*, const SequenceData<T>&, const index*, index, index, F&&) const {}

 private:
  void grow(const SequenceData<T>& d, index m, index len) {
    if (index(ids_.size()) < m * len) ids_.resize(std::size_t(m * len));
    if (index(lengths_.size()) < m) lengths_.resize(std::size_t(m));
    if (index(y_.size()) < m * d.outputs) y_.resize(std::size_t(m * d.outputs));
    if (index(w_.size()) < m) w_.resize(std::size_t(m));
  }
  std::vector<index> ids_, lengths_;
  std::vector<T> y_, w_;
};

/// Checks data before training: non-empty, with targets, sample weights valid.
template <class T>
void check_fit_data(const char* where, const char* what, const RowData<T>& d) {
  const bool main = std::string(what) == "data";
  if (d.size() == 0) raise<invalid_argument>(where, ": ", main ? "" : "options.validation.", "X is empty");
  if (!d.has_targets()) raise<invalid_argument>(where, ": ", what, " has no targets y");
  check_sample_weight(where, d.sample_weight.data(), d.sample_weight.size(), d.size());
}
template <class T>
void check_fit_data(const char* where, const char* what, const SequenceData<T>& d) {
  const bool main = std::string(what) == "data";
  if (d.size() == 0) raise<invalid_argument>(where, ": ", main ? "" : "options.validation.", "ids is empty");
  if (!d.has_targets()) raise<invalid_argument>(where, ": ", what, " has no targets y");
  check_sample_weight(where, d.sample_weight.data(), d.sample_weight.size(), d.size());
}

/// Validation data must have the training data's widths.
template <class T>
void check_data_like(const char* where, const RowData<T>& train, const RowData<T>& val) {
  if (val.features != train.features)
    raise<shape_error>(where, ": options.validation.X has ", val.features, " columns, the training X has ",
                       train.features);
  if (val.outputs != train.outputs)
    raise<shape_error>(where, ": options.validation.y has ", val.outputs, " columns, the training y has ",
                       train.outputs);
}
template <class T>
void check_data_like(const char* where, const SequenceData<T>& train, const SequenceData<T>& val) {
  if (val.outputs != train.outputs)
    raise<shape_error>(where, ": options.validation.y has ", val.outputs, " columns, the training y has ",
                       train.outputs);
}

template <class C>
C make_fit_context(std::uint64_t seed) {
  if constexpr (std::is_constructible_v<C, std::uint64_t>)
    return C(seed);
  else
    return C();
}

}  // namespace uvp::detail
