// SPDX-License-Identifier: Apache-2.0
// Prints how much better a model ranks the test customers than a baseline (BG/NBD, the RFM
// logistic regression): the ROC-AUC difference and its paired-bootstrap 95 % interval.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "uvp/core/tensor.hpp"
#include "uvp/metrics/bootstrap.hpp"

namespace uvp_examples {

/// Prints, for the same customers' labels y and two score vectors,
///
///   <prefix>roc_auc_diff: 0.0123
///   <prefix>roc_auc_diff_ci95: [0.0040, 0.0201]
///
/// roc_auc(y, p_model) - roc_auc(y, p_other) and its 95 % percentile interval over 1000
/// stratified paired bootstrap resamples of the customers (uvp::paired_bootstrap_roc_auc_
/// difference, deterministic given `seed`). An interval that excludes 0 says the difference is
/// not resampling noise. Returns the full result for callers that want more.
inline uvp::BootstrapInterval print_auc_difference(const std::string& prefix, const uvp::Vector<double>& y,
                                                   const uvp::Vector<double>& p_model,
                                                   const uvp::Vector<double>& p_other, std::uint64_t seed) {
  uvp::BootstrapOptions o;
  o.seed = seed;
  const uvp::BootstrapInterval r =
      uvp::paired_bootstrap_roc_auc_difference(uvp::as_span(y), uvp::as_span(p_model), uvp::as_span(p_other), o);
  std::printf("%sroc_auc_diff: %.4f\n", prefix.c_str(), r.estimate);
  std::printf("%sroc_auc_diff_ci95: [%.4f, %.4f]\n", prefix.c_str(), r.lower, r.upper);
  return r;
}

}  // namespace uvp_examples
