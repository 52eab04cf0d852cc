// SPDX-License-Identifier: Apache-2.0
// Internals shared by the metrics: argument checks with metric-style messages, compensated sums.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::detail {

/// Neumaier's compensated sum in double: float inputs summed over millions of samples keep
/// full double accuracy (plain double accumulation loses ~log2(n) bits in the worst case).
class CompensatedSum {
 public:
  void add(double x) noexcept {
    const double t = sum_ + x;
    if (std::abs(sum_) >= std::abs(x))
      c_ += (sum_ - t) + x;
    else
      c_ += (x - t) + sum_;
    sum_ = t;
  }
  /// An infinite or NaN term makes the sum that value (the compensation would turn it into NaN).
  double value() const noexcept { return std::isfinite(sum_) ? sum_ + c_ : sum_; }

 private:
  double sum_ = 0;
  double c_ = 0;
};

template <class T>
constexpr void require_floating_metric() noexcept {
  static_assert(std::is_floating_point_v<T>,
                "uvp metrics on scores / predictions take float or double; convert the inputs "
                "(e.g. with .template cast<float>()) before calling");
}

/// The pair of arguments every metric takes: same size, not empty.
template <class T>
void check_pair(const char* where, const char* first, Span<const T> a, const char* second,
                Span<const T> b) {
  check_not_empty(where, first, a.size());
  check_size(where, second, b.size(), a.size());
}

/// sample_weight: an empty span means "unweighted"; otherwise n finite values >= 0 (checked by
/// core's check_sample_weight). Returns the data pointer, or nullptr when unweighted.
template <class T>
const T* sample_weight_or_null(const char* where, Span<const T> w, index n) {
  check_sample_weight(where, w.data(), w.size(), n);
  return w.empty() ? nullptr : w.data();
}

/// The denominator of a weighted mean; a zero total (all weights 0) has no mean.
inline void check_weight_total(const char* where, double total) {
  if (!(total > 0))
    raise<invalid_argument>(where, ": sample_weight sums to ", total,
                            "; at least one weight must be > 0");
}

/// A class label of a classification metric: a finite integral value (sklearn rejects the
/// "continuous" target type the same way).
template <class T>
void check_class_labels(const char* where, const char* what, const T* y, index n) {
  if constexpr (std::is_floating_point_v<T>) {
    for (index i = 0; i < n; ++i)
      if (!std::isfinite(y[i]) || std::trunc(y[i]) != y[i])
        raise<invalid_argument>(where, ": ", what, "[", i, "] = ", y[i],
                                " is not an integer class label");
  } else {
    (void)where;
    (void)what;
    (void)y;
    (void)n;
  }
}

}  // namespace uvp::detail
