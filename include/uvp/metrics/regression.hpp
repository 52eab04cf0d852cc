// SPDX-License-Identifier: Apache-2.0
// Regression metrics: mean absolute error, mean squared error, its root, and R^2.
#pragma once

#include <cmath>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/metrics/common.hpp"

namespace uvp {

// Conventions (they follow scikit-learn 1.2's sklearn.metrics, single output):
//   y_true, y_pred  n finite values (float or double);
//   sample_weight   empty (unweighted) or n finite weights >= 0 that do not sum to 0;
//                   a weighted mean is sum w_i e_i / sum w_i (numpy.average).
// Differences and sums are formed in double with compensated summation, so float inputs give
// the double-precision answer. Errors: uvp::invalid_argument (a bad value) or its subtype
// uvp::shape_error (sizes that differ); empty inputs are rejected.

namespace detail {

template <class T>
const T* check_regression_inputs(const char* where, Span<const T> y_true, Span<const T> y_pred,
                                 Span<const T> sample_weight) {
  require_floating_metric<T>();
  check_pair(where, "y_true", y_true, "y_pred", y_pred);
  check_finite(where, "y_true", y_true.data(), y_true.size());
  check_finite(where, "y_pred", y_pred.data(), y_pred.size());
  return sample_weight_or_null(where, sample_weight, y_true.size());
}

/// sum w_i f(y_true_i - y_pred_i) / sum w_i.
template <class T, class F>
double weighted_error_mean(const char* where, Span<const T> y_true, Span<const T> y_pred,
                           Span<const T> sample_weight, F f) {
  const T* w = check_regression_inputs(where, y_true, y_pred, sample_weight);
  CompensatedSum sum, total;
  for (index i = 0; i < y_true.size(); ++i) {
    const double wi = w ? double(w[i]) : 1.0;
    sum.add(wi * f(double(y_true[i]) - double(y_pred[i])));
    total.add(wi);
  }
  check_weight_total(where, total.value());
  return sum.value() / total.value();
}

}  // namespace detail

/// Mean absolute error mean_i |y_true_i - y_pred_i| (sklearn.metrics.mean_absolute_error).
template <class T>
double mae(Span<const T> y_true, Span<const T> y_pred, Span<const T> sample_weight = {}) {
  return detail::weighted_error_mean("uvp::mae", y_true, y_pred, sample_weight,
                                     [](double e) { return std::abs(e); });
}

/// Mean squared error mean_i (y_true_i - y_pred_i)^2 (sklearn.metrics.mean_squared_error).
template <class T>
double mse(Span<const T> y_true, Span<const T> y_pred, Span<const T> sample_weight = {}) {
  return detail::weighted_error_mean("uvp::mse", y_true, y_pred, sample_weight,
                                     [](double e) { return e * e; });
}

/// Root mean squared error sqrt(mse) (sklearn 1.2: mean_squared_error(..., squared=False)).
template <class T>
double rmse(Span<const T> y_true, Span<const T> y_pred, Span<const T> sample_weight = {}) {
  return std::sqrt(detail::weighted_error_mean("uvp::rmse", y_true, y_pred, sample_weight,
                                               [](double e) { return e * e; }));
}

/// Coefficient of determination R^2 = 1 - SS_res / SS_tot with SS_res = sum w_i (y_i - p_i)^2
/// and SS_tot = sum w_i (y_i - ybar_w)^2 (sklearn.metrics.r2_score, force_finite=True).
/// When y_true is constant (over the samples of non-zero weight) SS_tot = 0 and, as in sklearn
/// 1.2, R^2 is 1.0 for perfect predictions (SS_res = 0) and 0.0 otherwise. uvp detects a
/// constant y_true exactly; sklearn subtracts a rounded mean, so for a constant such as 0.1
/// repeated 3 times sklearn may see SS_tot ~ 1e-33 and return a huge negative number instead.
/// Needs n >= 2 (sklearn warns and returns nan).
template <class T>
double r2_score(Span<const T> y_true, Span<const T> y_pred, Span<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::r2_score";
  const T* w = detail::check_regression_inputs(where, y_true, y_pred, sample_weight);
  const index n = y_true.size();
  if (n < 2)
    detail::raise<invalid_argument>(where, ": y_true has ", n,
                                    " sample; R^2 is not defined for fewer than 2 samples");
  detail::CompensatedSum wy, total, ss_res;
  bool constant = true;
  index first = -1;
  for (index i = 0; i < n; ++i) {
    const double wi = w ? double(w[i]) : 1.0;
    const double e = double(y_true[i]) - double(y_pred[i]);
    ss_res.add(wi * e * e);
    wy.add(wi * double(y_true[i]));
    total.add(wi);
    if (wi != 0) {
      if (first < 0)
        first = i;
      else if (y_true[i] != y_true[first])
        constant = false;
    }
  }
  detail::check_weight_total(where, total.value());
  double ss_tot = 0;
  if (!constant) {
    const double mean = wy.value() / total.value();
    detail::CompensatedSum acc;
    for (index i = 0; i < n; ++i) {
      const double d = double(y_true[i]) - mean;
      acc.add((w ? double(w[i]) : 1.0) * d * d);
    }
    ss_tot = acc.value();
  }
  const double res = ss_res.value();
  if (res == 0) return 1.0;
  if (ss_tot == 0) return 0.0;
  return 1.0 - res / ss_tot;
}

/// Pointer overloads: y_true, y_pred (and sample_weight unless null) hold n values each.
template <class T>
double mae(const T* y_true, const T* y_pred, index n, const T* sample_weight = nullptr) {
  return mae(Span<const T>(y_true, n), Span<const T>(y_pred, n),
             sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}
template <class T>
double mse(const T* y_true, const T* y_pred, index n, const T* sample_weight = nullptr) {
  return mse(Span<const T>(y_true, n), Span<const T>(y_pred, n),
             sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}
template <class T>
double rmse(const T* y_true, const T* y_pred, index n, const T* sample_weight = nullptr) {
  return rmse(Span<const T>(y_true, n), Span<const T>(y_pred, n),
              sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}
template <class T>
double r2_score(const T* y_true, const T* y_pred, index n, const T* sample_weight = nullptr) {
  return r2_score(Span<const T>(y_true, n), Span<const T>(y_pred, n),
                  sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

}  // namespace uvp
