// SPDX-License-Identifier: Apache-2.0
// What a CLV model fit reports: convergence, likelihood, and warnings for the caller to read.
#pragma once

#include <string>
#include <vector>

#include "uvp/core/config.hpp"

namespace uvp {

/// Returned by BgNbd::fit and GammaGamma::fit. The library never prints: a fit that did not
/// converge, or data that break a model assumption, are reported here.
struct ClvFitResult {
  bool converged = false;             ///< the optimizer met its gradient tolerance
  int iterations = 0;                 ///< quasi-Newton iterations
  int evaluations = 0;                ///< likelihood + gradient evaluations
  index customers = 0;                ///< customers (rows) the fit used
  double log_likelihood = 0;          ///< sum over customers of weight x log-likelihood at the estimate (no penalty)
  double objective = 0;               ///< what was minimised: -log_likelihood / sum(weights) + penalty
  std::string message;                ///< why the optimizer stopped
  std::vector<std::string> warnings;  ///< human-readable notes about the data or the estimate

  // Uncertainty of the estimate (filled by every model's fit; see uvp/clv/standard_errors.hpp).
  std::vector<std::string> parameter_names;  ///< in the model's order, e.g. {"r", "alpha", "a", "b"}
  std::vector<double> parameters;            ///< the estimate (natural scale), in that order
  /// sqrt of the diagonal of `covariance`; empty when the observed information at the estimate is
  /// not positive definite or not finite (a warning then says why).
  std::vector<double> standard_errors;
  /// k x k row-major covariance of the natural parameters: the inverse observed information of the
  /// unpenalised log-likelihood, via the log-parameters (J H_log^-1 J, J = diag(parameters)); empty
  /// exactly when standard_errors is.
  std::vector<double> covariance;
};

}  // namespace uvp
