// SPDX-License-Identifier: Apache-2.0
// Train/test splits (plain and stratified, with scikit-learn's sizes) and row gathering.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/data/batching.hpp"  // detail::check_indices

namespace uvp {

/// Row indices of the two parts of a split; together they hold each of 0..n-1 exactly once.
struct TrainTestIndices {
  std::vector<index> train;
  std::vector<index> test;
};

namespace detail {

inline index test_size_for(const char* where, index n, double test_fraction) {
  check_not_empty(where, "the data (n)", n);
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    raise<invalid_argument>(where, ": test_fraction must be in (0, 1), got ", test_fraction);
  const auto n_test = static_cast<index>(std::ceil(test_fraction * double(n)));
  if (n - n_test <= 0)
    raise<invalid_argument>(where, ": with n = ", n, ", ceil(test_fraction * n) = ", n_test,
                            " leaves the train part empty; use a smaller test_fraction or more data");
  return n_test;
}

}  // namespace detail

/// Rows in the test part for n rows: ceil(test_fraction * n), as sklearn's train_test_split with a
/// float test_size (the product is rounded as a double first, exactly as NumPy does).
/// test_fraction must lie in the open interval (0, 1), n >= 1, and both parts must be non-empty,
/// else uvp::invalid_argument.
inline index test_size(index n, double test_fraction) {
  return detail::test_size_for("uvp::test_size", n, test_fraction);
}

/// Splits rows 0..n-1 into train and test parts, as sklearn.model_selection.train_test_split
/// (ShuffleSplit): test = the first ceil(test_fraction * n) entries of a random permutation, train
/// = the rest, both in permuted order. shuffle = false: train = 0..n_train-1, test = the last
/// n_test rows, in order. The permutation comes from uvp::Rng(seed): the same seed gives the same
/// split on every platform (but not the split NumPy would draw).
inline TrainTestIndices train_test_split(index n, double test_fraction, std::uint64_t seed = 0x5eed,
                                         bool shuffle = true) {
  const index n_test = detail::test_size_for("uvp::train_test_split", n, test_fraction);
  std::vector<index> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), index(0));
  TrainTestIndices out;
  if (shuffle) {
    Rng rng(seed);
    rng.shuffle(perm.begin(), perm.end());
    out.test.assign(perm.begin(), perm.begin() + n_test);
    out.train.assign(perm.begin() + n_test, perm.end());
  } else {
    out.train.assign(perm.begin(), perm.end() - n_test);
    out.test.assign(perm.end() - n_test, perm.end());
  }
  return out;
}

namespace detail {

/// sklearn.utils._approximate_mode: per-class draws when `n_draws` of `total` items are taken in
/// proportion to `counts`: floor(c / total * n_draws), then one more for the classes with the
/// largest remainders, ties broken at random, until the draws sum to n_draws.
inline std::vector<index> approximate_mode(const std::vector<index>& counts, index n_draws, Rng& rng) {
  index total = 0;
  for (index c : counts) total += c;
  const std::size_t k = counts.size();
  std::vector<index> drawn(k);
  std::vector<double> remainder(k);
  index need = n_draws;
  for (std::size_t i = 0; i < k; ++i) {
    const double continuous = double(counts[i]) / double(total) * double(n_draws);
    const double floored = std::floor(continuous);
    drawn[i] = static_cast<index>(floored);
    remainder[i] = continuous - floored;
    need -= drawn[i];
  }
  std::vector<double> values(remainder);
  std::sort(values.begin(), values.end(), [](double a, double b) { return a > b; });
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<std::size_t> tied;
  for (double v : values) {
    if (need <= 0) break;
    tied.clear();
    for (std::size_t i = 0; i < k; ++i)
      if (remainder[i] == v) tied.push_back(i);
    const auto add = std::min<index>(need, static_cast<index>(tied.size()));
    // Partial Fisher-Yates: the first `add` entries are a uniform random subset.
    for (index a = 0; a < add; ++a) {
      const auto j = std::size_t(a) + std::size_t(rng.uniform_int(tied.size() - std::size_t(a)));
      std::swap(tied[std::size_t(a)], tied[j]);
      ++drawn[tied[std::size_t(a)]];
    }
    need -= add;
  }
  return drawn;
}

template <class V>
void check_label(const char* where, const V& v, std::size_t i) {
  if constexpr (std::is_floating_point_v<V>) {
    if (std::isnan(v)) raise<invalid_argument>(where, ": labels[", i, "] is NaN");
  } else {
    (void)where, (void)v, (void)i;
  }
}

}  // namespace detail

/// Splits rows so that each class keeps its share of the data in both parts, as
/// sklearn.model_selection.StratifiedShuffleSplit (and train_test_split(..., stratify=y)).
///
/// `labels`: n class labels, any container with size() and operator[] whose values are ordered by
/// `<` (ints, strings, 0/1 floats, an Eigen vector; NaN is an error).
/// Allocation, exactly sklearn's rule: n_test = ceil(test_fraction * n), n_train = n - n_test;
/// per-class train counts n_i = floor(c_i / n * n_train), and the n_train - sum n_i rows still
/// missing go one each to the classes with the largest remainders (ties broken by the Rng);
/// per-class test counts t_i = c_i - n_i. The rows of each class are then drawn at random, and
/// both parts are shuffled. Deterministic for a seed (via uvp::Rng; not NumPy's stream).
/// Errors (uvp::invalid_argument), as sklearn: empty labels, test_fraction outside (0, 1), an
/// empty train part, a class with fewer than 2 members, fewer train or test rows than classes.
template <class Labels>
TrainTestIndices stratified_train_test_split(const Labels& labels, double test_fraction,
                                             std::uint64_t seed = 0x5eed) {
  constexpr const char* where = "uvp::stratified_train_test_split";
  const auto n = static_cast<index>(labels.size());
  const index n_test = detail::test_size_for(where, n, test_fraction);
  const index n_train = n - n_test;
  for (index i = 0; i < n; ++i) detail::check_label(where, labels[i], std::size_t(i));

  // Rows grouped by class, classes in sorted order, rows in their original order (a stable sort,
  // as sklearn's argsort(kind="mergesort")).
  std::vector<index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](index a, index b) { return labels[a] < labels[b]; });
  std::vector<index> starts{0};
  for (index i = 1; i < n; ++i)
    if (labels[order[std::size_t(i - 1)]] < labels[order[std::size_t(i)]]) starts.push_back(i);
  starts.push_back(n);
  const std::size_t k = starts.size() - 1;
  std::vector<index> counts(k);
  for (std::size_t c = 0; c < k; ++c) {
    counts[c] = starts[c + 1] - starts[c];
    if (counts[c] < 2)
      detail::raise<invalid_argument>(where, ": class '", labels[order[std::size_t(starts[c])]],
                                      "' has only ", counts[c],
                                      " member; every class needs at least 2 to appear in both parts");
  }
  if (n_train < index(k))
    detail::raise<invalid_argument>(where, ": the train part would have ", n_train,
                                    " rows, fewer than the ", k, " classes");
  if (n_test < index(k))
    detail::raise<invalid_argument>(where, ": the test part would have ", n_test,
                                    " rows, fewer than the ", k, " classes");

  Rng rng(seed);
  const std::vector<index> train_counts = detail::approximate_mode(counts, n_train, rng);
  TrainTestIndices out;
  out.train.reserve(std::size_t(n_train));
  out.test.reserve(std::size_t(n_test));
  for (std::size_t c = 0; c < k; ++c) {
    auto first = order.begin() + starts[c], last = order.begin() + starts[c + 1];
    rng.shuffle(first, last);
    out.train.insert(out.train.end(), first, first + train_counts[c]);
    out.test.insert(out.test.end(), first + train_counts[c], last);
  }
  rng.shuffle(out.train.begin(), out.train.end());
  rng.shuffle(out.test.begin(), out.test.end());
  return out;
}

/// X's rows idx[0], idx[1], ... as a new idx.size() x X.cols() matrix (X.row(idx[i]) -> row i).
/// An index outside [0, X.rows()) throws uvp::out_of_range_error.
template <class Derived>
Matrix<typename Derived::Scalar> take_rows(const Eigen::MatrixBase<Derived>& X, Span<const index> idx) {
  detail::check_indices("uvp::take_rows", idx, X.rows());
  Matrix<typename Derived::Scalar> out(idx.size(), X.cols());
  for (index i = 0; i < idx.size(); ++i) out.row(i) = X.row(idx[i]);
  return out;
}

/// y[idx[0]], y[idx[1]], ... of an Eigen vector.
template <class Derived>
Vector<typename Derived::Scalar> take(const Eigen::MatrixBase<Derived>& y, Span<const index> idx) {
  static_assert(Derived::IsVectorAtCompileTime, "uvp::take: y must be a vector; use take_rows for a matrix");
  detail::check_indices("uvp::take", idx, y.size());
  Vector<typename Derived::Scalar> out(idx.size());
  for (index i = 0; i < idx.size(); ++i) out[i] = y[idx[i]];
  return out;
}

/// y[idx[0]], y[idx[1]], ... of a std::vector (labels, strings, ...).
template <class U, class A>
std::vector<U, A> take(const std::vector<U, A>& y, Span<const index> idx) {
  detail::check_indices("uvp::take", idx, static_cast<index>(y.size()));
  std::vector<U, A> out;
  out.reserve(std::size_t(idx.size()));
  for (index i = 0; i < idx.size(); ++i) out.push_back(y[std::size_t(idx[i])]);
  return out;
}

}  // namespace uvp
