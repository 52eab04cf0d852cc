// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_losses: thin calls of uvp's CPU losses and metrics.
#include "losses_reference.hpp"

#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/metrics/regression.hpp"

namespace uvp_cuda_test {

namespace {
template <class T>
uvp::Span<const T> cspan(const std::vector<T>& v) {
  return uvp::Span<const T>(v.data(), static_cast<uvp::index>(v.size()));
}
template <class T>
uvp::Span<T> span(std::vector<T>& v) {
  return uvp::Span<T>(v.data(), static_cast<uvp::index>(v.size()));
}
}  // namespace

template <class T>
double cpu_bce_with_logits(const std::vector<T>& z, const std::vector<T>& y,
                           const std::vector<T>& w, std::vector<T>& grad) {
  return uvp::bce_with_logits<T>(cspan(z), cspan(y), span(grad), cspan(w));
}
template <class T>
double cpu_mse_loss(const std::vector<T>& p, const std::vector<T>& y, const std::vector<T>& w,
                    std::vector<T>& grad) {
  return uvp::mse_loss<T>(cspan(p), cspan(y), span(grad), cspan(w));
}
template <class T>
double cpu_log_loss(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w) {
  return uvp::log_loss<T>(cspan(y), cspan(p), cspan(w));
}
template <class T>
double cpu_mae(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w) {
  return uvp::mae<T>(cspan(y), cspan(p), cspan(w));
}
template <class T>
double cpu_mse(const std::vector<T>& y, const std::vector<T>& p, const std::vector<T>& w) {
  return uvp::mse<T>(cspan(y), cspan(p), cspan(w));
}
template <class T>
double cpu_roc_auc(const std::vector<T>& y, const std::vector<T>& s, const std::vector<T>& w) {
  return uvp::roc_auc<T>(cspan(y), cspan(s), cspan(w));
}

#define UVP_LOSSES_REFERENCE(T)                                                                  \
  template double cpu_bce_with_logits<T>(const std::vector<T>&, const std::vector<T>&,          \
                                         const std::vector<T>&, std::vector<T>&);               \
  template double cpu_mse_loss<T>(const std::vector<T>&, const std::vector<T>&,                 \
                                  const std::vector<T>&, std::vector<T>&);                      \
  template double cpu_log_loss<T>(const std::vector<T>&, const std::vector<T>&,                 \
                                  const std::vector<T>&);                                       \
  template double cpu_mae<T>(const std::vector<T>&, const std::vector<T>&, const std::vector<T>&); \
  template double cpu_mse<T>(const std::vector<T>&, const std::vector<T>&, const std::vector<T>&); \
  template double cpu_roc_auc<T>(const std::vector<T>&, const std::vector<T>&,                  \
                                 const std::vector<T>&);
UVP_LOSSES_REFERENCE(float)
UVP_LOSSES_REFERENCE(double)

}  // namespace uvp_cuda_test
