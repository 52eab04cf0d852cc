// SPDX-License-Identifier: Apache-2.0
// Standard errors of a CLV model's parameters from the observed information at the estimate.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/fit_result.hpp"
#include "uvp/core/error.hpp"

namespace uvp::detail {

/// Fills result.parameter_names / parameters / standard_errors / covariance for the estimate theta
/// (k natural parameters, all finite and > 0, as every BTYD parameter is).
///
/// neg_ll_gradient(const double* theta, double* grad) writes the gradient of the total (weighted,
/// unpenalised) negative log-likelihood with respect to the k natural parameters. The observed
/// information H_log (Hessian of that negative log-likelihood with respect to u = log theta) is
/// formed by central differences of the analytic gradient in u with step h = 1e-4 in every
/// component (a relative step in theta: truncation error ~h^2 / 6 ~ 2e-9 relative, rounding
/// ~eps / h ~ 2e-12), then symmetrised. The covariance of the natural parameters is the delta method
/// J H_log^-1 J with J = diag(theta): at a stationary point this is exactly the inverse observed
/// information in natural parameters, and H_log^-1 itself is the covariance of the log-parameters
/// that the intervals in uvp/clv/intervals.hpp draw from. Because the fit minimises over u and the
/// curvature is taken in u, the numerics are scale-free (alpha ~ 10 and a ~ 1e-3 get the same
/// relative step).
///
/// When H_log is not finite, not positive definite (Cholesky fails) or numerically singular
/// (reciprocal condition number < 1e-13: a parameter the data do not identify), standard_errors
/// and covariance are left empty and a warning saying so is pushed, prefixed with `where`.
/// Costs 2 k gradient evaluations (8 for BG/NBD: a few percent of a fit's).
template <class Gradient>
void fill_standard_errors(ClvFitResult& result, std::vector<std::string> names, const std::vector<double>& theta,
                          Gradient&& neg_ll_gradient, const char* where = "uvp::fill_standard_errors") {
  const std::size_t k = theta.size();
  if (names.size() != k)
    raise<invalid_argument>(where, ": ", names.size(), " parameter names for ", k, " parameters");
  result.parameter_names = std::move(names);
  result.parameters = theta;
  result.standard_errors.clear();
  result.covariance.clear();
  if (k == 0) return;
  auto fail = [&](const std::string& why) {
    result.warnings.push_back(std::string(where) + ": standard errors not available: " + why);
  };
  for (std::size_t i = 0; i < k; ++i)
    if (!(theta[i] > 0) || !std::isfinite(theta[i])) {
      fail("parameter " + result.parameter_names[i] + " is not finite and > 0");
      return;
    }
  const Eigen::Index n = static_cast<Eigen::Index>(k);
  std::vector<double> point(theta), grad(k);
  // The u-gradient (theta_j dNLL/dtheta_j) at u + step e_i; row i of H_log is its central difference.
  Eigen::VectorXd plus(n), minus(n);
  auto u_gradient = [&](std::size_t i, double step, Eigen::VectorXd& out) {
    point = theta;
    point[i] = theta[i] * std::exp(step);
    neg_ll_gradient(static_cast<const double*>(point.data()), grad.data());
    for (Eigen::Index j = 0; j < n; ++j)
      out[j] = point[static_cast<std::size_t>(j)] * grad[static_cast<std::size_t>(j)];
  };
  constexpr double h = 1e-4;
  Eigen::MatrixXd H(n, n);
  for (std::size_t i = 0; i < k; ++i) {
    u_gradient(i, h, plus);
    u_gradient(i, -h, minus);
    H.row(static_cast<Eigen::Index>(i)) = ((plus - minus) / (2 * h)).transpose();
  }
  H = (0.5 * (H + H.transpose())).eval();
  if (!H.allFinite()) {
    fail("the observed information (Hessian of the negative log-likelihood) is not finite at the estimate");
    return;
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(H);
  if (llt.info() != Eigen::Success) {
    fail("the observed information (Hessian of the negative log-likelihood in log-parameters) is not positive "
         "definite at the estimate (not a strict local maximum, or a parameter is not identified)");
    return;
  }
  if (!(llt.rcond() >= 1e-13)) {
    fail("the observed information is numerically singular at the estimate (reciprocal condition number below "
         "1e-13): the data do not identify every parameter");
    return;
  }
  const Eigen::MatrixXd cov_log = llt.solve(Eigen::MatrixXd::Identity(n, n));
  result.covariance.resize(k * k);
  result.standard_errors.resize(k);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      result.covariance[i * k + j] =
          theta[i] * theta[j] * 0.5 *
          (cov_log(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) +
           cov_log(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i)));
  for (std::size_t i = 0; i < k; ++i) {
    const double v = result.covariance[i * k + i];
    if (!(v > 0) || !std::isfinite(v)) {
      result.standard_errors.clear();
      result.covariance.clear();
      fail("the inverse observed information has a non-positive or non-finite variance for parameter " +
           result.parameter_names[i]);
      return;
    }
    result.standard_errors[i] = std::sqrt(v);
  }
}

}  // namespace uvp::detail
