// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_losses: uvp's losses and metrics (with Eigen), compiled by the host
// compiler. Empty weights = unweighted; an empty grad is not written.
#pragma once

#include <vector>

namespace uvp_cuda_test {

template <class T>
double cpu_bce_with_logits(const std::vector<T>& z, const std::vector<T>& y,
                           const std::vector<T>& w, std::vector<T>& grad);
template <class T>
double cpu_mse_loss(const std::vector<T>& p, const std::vector<T>& y, const std::vector<T>& w,
                    std::vector<T>& grad);
template <class T>
double cpu_log_loss(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w);
template <class T>
double cpu_mae(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w);
template <class T>
double cpu_mse(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w);
template <class T>
double cpu_roc_auc(const std::vector<T>& y, const std::vector<T>& s, const std::vector<T>& w);

}  // namespace uvp_cuda_test
