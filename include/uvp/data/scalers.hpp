// SPDX-License-Identifier: Apache-2.0
// Feature scalers with scikit-learn's semantics: StandardScaler and MinMaxScaler.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

namespace detail {

template <class T>
void check_scaler_input(const char* where, const ConstMatrixRef<T>& X) {
  check_not_empty(where, "X (rows)", X.rows());
  check_not_empty(where, "X (columns)", X.cols());
  check_finite(where, "X", X);
}

/// A member of an unfitted scaler was used: not_fitted_error naming it.
inline void check_scaler_fitted(bool fitted, const char* where) {
  if (!fitted) raise<not_fitted_error>(where, ": the scaler is not fitted; call fit() first");
}

/// Input of transform / inverse_transform: a fitted scaler, d columns, finite values.
template <class M>
void check_scaler_use(bool fitted, const char* where, const M& X, index d) {
  check_scaler_fitted(fitted, where);
  check_cols(where, "X", X.cols(), d);
  check_finite(where, "X", X);
}

}  // namespace detail

struct StandardScalerOptions {
  bool with_mean = true;  ///< subtract mean_ (sklearn's with_mean)
  bool with_std = true;   ///< divide by scale_ (sklearn's with_std)
};

/// z = (x - mean_) / scale_ per column, as sklearn.preprocessing.StandardScaler.
///
/// fit: mean_ and var_ are the column mean and the population variance (ddof = 0), accumulated in
/// double with the corrected two-pass formula; scale_ = sqrt(var_), except that columns whose
/// variance is indistinguishable from 0 (var <= n eps var + (n |mean| eps)^2, eps of double:
/// sklearn's _is_constant_feature) get scale_ 1, so they map to 0 instead of dividing by ~0.
/// X is n x d with n >= 1, d >= 1; NaN or infinity anywhere throws uvp::invalid_argument naming
/// the row and column (sklearn would skip NaN; uvp refuses it). transform / inverse_transform take
/// any number of rows with d columns (else uvp::shape_error) and throw uvp::not_fitted_error
/// before fit.
template <class T>
class StandardScaler {
  static_assert(std::is_floating_point_v<T>, "uvp::StandardScaler<T>: T must be float or double");

 public:
  explicit StandardScaler(StandardScalerOptions options = {}) : options_(options) {}

  StandardScaler& fit(const ConstMatrixRef<T>& X) {
    detail::check_scaler_input("uvp::StandardScaler::fit", X);
    const index n = X.rows(), d = X.cols();
    Vector<double> mean = Vector<double>::Zero(d);
    for (index r = 0; r < n; ++r)
      for (index j = 0; j < d; ++j) mean[j] += double(X(r, j));
    mean /= double(n);
    // Two passes with the rounding correction of Chan, Golub & LeVeque (1983), as sklearn.
    Vector<double> sq = Vector<double>::Zero(d), lin = Vector<double>::Zero(d);
    for (index r = 0; r < n; ++r)
      for (index j = 0; j < d; ++j) {
        const double dev = double(X(r, j)) - mean[j];
        sq[j] += dev * dev;
        lin[j] += dev;
      }
    mean_ = mean;
    var_.resize(d);
    scale_.resize(d);
    constexpr double eps = std::numeric_limits<double>::epsilon();
    for (index j = 0; j < d; ++j) {
      const double var = (sq[j] - lin[j] * lin[j] / double(n)) / double(n);
      var_[j] = var;
      const double bound = double(n) * eps * var + std::pow(double(n) * mean[j] * eps, 2);
      scale_[j] = var <= bound ? 1.0 : std::sqrt(var);
    }
    n_samples_seen_ = n;
    return *this;
  }

  Matrix<T> transform(const ConstMatrixRef<T>& X) const {
    Matrix<T> out = X;
    transform_inplace(out);
    return out;
  }

  /// Overwrites X (n x d) with its scaled values; no allocation.
  void transform_inplace(MatrixRef<T> X) const {
    check_use("uvp::StandardScaler::transform", X);
    const index d = X.cols();
    for (index r = 0; r < X.rows(); ++r)
      for (index j = 0; j < d; ++j) {
        double v = double(X(r, j));
        if (options_.with_mean) v -= mean_[j];
        if (options_.with_std) v /= scale_[j];
        X(r, j) = static_cast<T>(v);
      }
  }

  Matrix<T> fit_transform(const ConstMatrixRef<T>& X) {
    fit(X);
    return transform(X);
  }

  /// x = z * scale_ + mean_.
  Matrix<T> inverse_transform(const ConstMatrixRef<T>& Z) const {
    Matrix<T> out = Z;
    inverse_transform_inplace(out);
    return out;
  }

  void inverse_transform_inplace(MatrixRef<T> Z) const {
    check_use("uvp::StandardScaler::inverse_transform", Z);
    const index d = Z.cols();
    for (index r = 0; r < Z.rows(); ++r)
      for (index j = 0; j < d; ++j) {
        double v = double(Z(r, j));
        if (options_.with_std) v *= scale_[j];
        if (options_.with_mean) v += mean_[j];
        Z(r, j) = static_cast<T>(v);
      }
  }

  bool fitted() const noexcept { return n_samples_seen_ > 0; }
  index n_features() const noexcept { return mean_.size(); }
  index n_samples_seen() const noexcept { return n_samples_seen_; }
  /// Column means (d), in double whatever T (as sklearn keeps mean_ in float64).
  const Vector<double>& mean() const {
    fitted_or_throw("uvp::StandardScaler::mean");
    return mean_;
  }
  /// Population variances (d), before the zero-variance fix; double.
  const Vector<double>& var() const {
    fitted_or_throw("uvp::StandardScaler::var");
    return var_;
  }
  /// Divisors (d): sqrt(var), or 1 for constant columns; double.
  const Vector<double>& scale() const {
    fitted_or_throw("uvp::StandardScaler::scale");
    return scale_;
  }
  const StandardScalerOptions& options() const noexcept { return options_; }

 private:
  void fitted_or_throw(const char* where) const { detail::check_scaler_fitted(fitted(), where); }
  template <class M>
  void check_use(const char* where, const M& X) const {
    detail::check_scaler_use(fitted(), where, X, n_features());
  }

  StandardScalerOptions options_;
  Vector<double> mean_, var_, scale_;
  index n_samples_seen_ = 0;
};

struct MinMaxScalerOptions {
  double feature_min = 0;  ///< sklearn's feature_range[0]
  double feature_max = 1;  ///< sklearn's feature_range[1]; must be > feature_min
  bool clip = false;       ///< clip transform's output to the range (sklearn's clip)
};

/// x' = x * scale_ + min_ per column, mapping [data_min_, data_max_] onto
/// [feature_min, feature_max], as sklearn.preprocessing.MinMaxScaler:
/// scale_ = (feature_max - feature_min) / data_range_, min_ = feature_min - data_min_ * scale_,
/// computed in T; a column whose range is below 10 eps(T) is treated as range 1 (sklearn's
/// _handle_zeros_in_scale), so a constant column maps to feature_min.
/// Same input rules and errors as StandardScaler.
template <class T>
class MinMaxScaler {
  static_assert(std::is_floating_point_v<T>, "uvp::MinMaxScaler<T>: T must be float or double");

 public:
  explicit MinMaxScaler(MinMaxScalerOptions options = {}) : options_(options) {
    if (!(options.feature_min < options.feature_max))
      detail::raise<invalid_argument>(
          "uvp::MinMaxScaler: feature_min must be < feature_max, got feature range (",
          options.feature_min, ", ", options.feature_max, ")");
  }

  MinMaxScaler& fit(const ConstMatrixRef<T>& X) {
    detail::check_scaler_input("uvp::MinMaxScaler::fit", X);
    data_min_ = X.colwise().minCoeff().transpose();
    data_max_ = X.colwise().maxCoeff().transpose();
    data_range_ = data_max_ - data_min_;
    const index d = X.cols();
    scale_.resize(d);
    min_.resize(d);
    const T width = static_cast<T>(options_.feature_max - options_.feature_min);
    const T lo = static_cast<T>(options_.feature_min);
    for (index j = 0; j < d; ++j) {
      const T range = data_range_[j] < T(10) * std::numeric_limits<T>::epsilon() ? T(1) : data_range_[j];
      scale_[j] = width / range;
      min_[j] = lo - data_min_[j] * scale_[j];
    }
    n_samples_seen_ = X.rows();
    return *this;
  }

  Matrix<T> transform(const ConstMatrixRef<T>& X) const {
    Matrix<T> out = X;
    transform_inplace(out);
    return out;
  }

  void transform_inplace(MatrixRef<T> X) const {
    check_use("uvp::MinMaxScaler::transform", X);
    const T lo = static_cast<T>(options_.feature_min), hi = static_cast<T>(options_.feature_max);
    for (index r = 0; r < X.rows(); ++r) {
      auto row = X.row(r).array();
      row *= scale_.transpose().array();
      row += min_.transpose().array();
      if (options_.clip) row = row.max(lo).min(hi);
    }
  }

  Matrix<T> fit_transform(const ConstMatrixRef<T>& X) {
    fit(X);
    return transform(X);
  }

  /// x = (x' - min_) / scale_.
  Matrix<T> inverse_transform(const ConstMatrixRef<T>& Z) const {
    Matrix<T> out = Z;
    inverse_transform_inplace(out);
    return out;
  }

  void inverse_transform_inplace(MatrixRef<T> Z) const {
    check_use("uvp::MinMaxScaler::inverse_transform", Z);
    for (index r = 0; r < Z.rows(); ++r) {
      auto row = Z.row(r).array();
      row -= min_.transpose().array();
      row /= scale_.transpose().array();
    }
  }

  bool fitted() const noexcept { return n_samples_seen_ > 0; }
  index n_features() const noexcept { return scale_.size(); }
  index n_samples_seen() const noexcept { return n_samples_seen_; }
  const Vector<T>& data_min() const {
    fitted_or_throw("uvp::MinMaxScaler::data_min");
    return data_min_;
  }
  const Vector<T>& data_max() const {
    fitted_or_throw("uvp::MinMaxScaler::data_max");
    return data_max_;
  }
  const Vector<T>& data_range() const {
    fitted_or_throw("uvp::MinMaxScaler::data_range");
    return data_range_;
  }
  const Vector<T>& scale() const {
    fitted_or_throw("uvp::MinMaxScaler::scale");
    return scale_;
  }
  /// The additive term (sklearn's min_), not the data minimum.
  const Vector<T>& offset() const {
    fitted_or_throw("uvp::MinMaxScaler::offset");
    return min_;
  }
  const MinMaxScalerOptions& options() const noexcept { return options_; }

 private:
  void fitted_or_throw(const char* where) const { detail::check_scaler_fitted(fitted(), where); }
  template <class M>
  void check_use(const char* where, const M& X) const {
    detail::check_scaler_use(fitted(), where, X, n_features());
  }

  MinMaxScalerOptions options_;
  Vector<T> data_min_, data_max_, data_range_, scale_, min_;
  index n_samples_seen_ = 0;
};

}  // namespace uvp
