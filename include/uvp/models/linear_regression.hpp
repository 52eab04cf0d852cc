// SPDX-License-Identifier: Apache-2.0
// Linear (and ridge) regression: exact least squares, or minibatch training with any optimizer.
#pragma once

#include <Eigen/Dense>
#include <cmath>

#include "uvp/losses/mse.hpp"
#include "uvp/models/detail/linear_core.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/loss_functions.hpp"

namespace uvp {

struct LinearRegressionOptions {
  /// L2 penalty on the weights (not the bias): the objective is
  ///   (1/N) sum_i s_i (x_i . w + b - y_i)^2 + (l2 / 2) |w|^2,
  /// with s_i the sample weights (1 by default). With all s_i = 1 the exact solution equals
  /// scikit-learn's Ridge(alpha = l2 N / 2); l2 = 0 is ordinary least squares (LinearRegression).
  double l2 = 0.0;
  bool fit_intercept = true;
};

/// y = x . w + b. X is (N, d), row-major, one sample per row.
/// `fit_exact` solves the least-squares problem directly (a complete orthogonal decomposition,
/// which also handles rank-deficient X with the minimum-norm solution, like numpy's lstsq);
/// `fit` trains by minibatches with any optimizer, for data too large to factorise.
template <class T, class Backend = cpu>
class LinearRegression : public detail::LinearModelBase<T> {
  static_assert(is_scalar_v<T>, "uvp::LinearRegression<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::LinearRegression: only the uvp::cpu backend is implemented so far");

 public:
  using Options = LinearRegressionOptions;

  explicit LinearRegression(index n_features, Options options = {})
      : detail::LinearModelBase<T>("uvp::LinearRegression", n_features, options.fit_intercept, options.l2,
                                   "uvp::LinearRegression::forward", "uvp::LinearRegression::backward"),
        options_(options) {
    detail::check_option_non_negative("uvp::LinearRegression", "options.l2", options.l2);
  }

  const Options& options() const noexcept { return options_; }

  /// Predictions into caller memory (size N); no allocation.
  void predict(ConstMatrixRef<T> X, VectorRef<T> out) const {
    this->checked_forward("uvp::LinearRegression::predict", X, out);
  }
  Vector<T> predict(ConstMatrixRef<T> X) const {
    Vector<T> out(X.rows());
    predict(X, out);
    return out;
  }

  /// Exact minimiser of the objective above (computed in double). sample_weight: empty or N
  /// non-negative weights.
  void fit_exact(ConstMatrixRef<T> X, ConstVectorRef<T> y, Span<const T> sample_weight = {}) {
    constexpr const char* where = "uvp::LinearRegression::fit_exact";
    check_xy(where, X, y, sample_weight);
    const index n = X.rows(), d = X.cols();
    Eigen::MatrixXd Xd = X.template cast<double>();
    Eigen::VectorXd yd = y.template cast<double>();
    Eigen::VectorXd s = Eigen::VectorXd::Ones(n);
    if (!sample_weight.empty()) s = sample_weight.as_vector().template cast<double>();
    const double S = s.sum();
    if (!(S > 0)) detail::raise<invalid_argument>(where, ": sample_weight sums to ", S, ", must be > 0");

    // Centre on the weighted means so the intercept drops out of the penalised problem.
    Eigen::RowVectorXd x_mean = Eigen::RowVectorXd::Zero(d);
    double y_mean = 0;
    if (options_.fit_intercept) {
      x_mean = (s.transpose() * Xd) / S;
      y_mean = s.dot(yd) / S;
      Xd.rowwise() -= x_mean;
      yd.array() -= y_mean;
    }
    // min |sqrt(s) (X w - y)|^2 + (l2 S / 2) |w|^2, as an augmented least-squares problem.
    const Eigen::VectorXd r = s.cwiseSqrt();
    Eigen::MatrixXd A(n + (options_.l2 > 0 ? d : 0), d);
    Eigen::VectorXd rhs = Eigen::VectorXd::Zero(A.rows());
    A.topRows(n) = r.asDiagonal() * Xd;
    rhs.head(n) = r.cwiseProduct(yd);
    if (options_.l2 > 0) A.bottomRows(d) = std::sqrt(options_.l2 * S / 2.0) * Eigen::MatrixXd::Identity(d, d);
    const Eigen::VectorXd w = A.completeOrthogonalDecomposition().solve(rhs);
    if (!w.allFinite())
      detail::raise<numeric_error>(where, ": the least-squares solution is not finite");
    core_.weights() = w.cast<T>();
    core_.set_bias(options_.fit_intercept ? T(y_mean - x_mean.dot(w)) : T(0));
  }

  /// Minibatch training of the same objective with the given optimizer: uvp::fit's loop with
  /// MseLoss and the l2 penalty; callbacks as in LogisticRegression::fit.
  template <class Optimizer, class FitOpts, class... Callbacks, detail::enable_if_optimizer<Optimizer, T> = 0,
            detail::enable_if_fit_options<FitOpts> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, Optimizer& optimizer,
                const FitOpts& fit_options, Span<const T> sample_weight, Callbacks&&... callbacks) {
    constexpr const char* where = "uvp::LinearRegression::fit";
    check_xy(where, X, y, sample_weight, false);
    return this->fit_minibatch(where, X, y, sample_weight, MseLoss<T>(), optimizer, fit_options, callbacks...);
  }

  template <class Optimizer, class FitOpts = FitOptions, class... Callbacks,
            detail::enable_if_optimizer<Optimizer, T> = 0, detail::enable_if_fit_options<FitOpts> = 0,
            detail::enable_if_callbacks<Callbacks...> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, Optimizer& optimizer,
                const FitOpts& fit_options = {}, Callbacks&&... callbacks) {
    return fit(X, y, optimizer, fit_options, Span<const T>{}, callbacks...);
  }

  /// Trains with Adam at fit_options.lr.
  template <class FitOpts = FitOptions, detail::enable_if_fit_options<FitOpts> = 0>
  FitResult fit(ConstMatrixRef<T> X, ConstVectorRef<T> y, const FitOpts& fit_options = {}) {
    detail::check_fit_options("uvp::LinearRegression::fit", fit_options);  // before Adam sees lr: the message names fit
    AdamOptions ao;
    ao.lr = fit_options.lr;
    Adam<T> adam(ao);
    return fit(X, y, adam, fit_options, Span<const T>{});
  }

 private:
  // check_x = false: X's values are checked during minibatch training (uvp::fit's loop).
  void check_xy(const char* where, ConstMatrixRef<T> X, ConstVectorRef<T> y, Span<const T> sw,
                bool check_x = true) const {
    if (check_x) core_.check_input(where, X);
    else core_.check_shape(where, X);
    detail::check_size(where, "y", y.size(), X.rows());
    detail::check_finite(where, "y", y.data(), y.size());
    detail::check_sample_weight(where, sw.data(), sw.size(), X.rows());
  }

  using detail::LinearModelBase<T>::core_;
  Options options_;
};

}  // namespace uvp
