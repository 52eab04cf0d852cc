// SPDX-License-Identifier: Apache-2.0
// The device losses (BCE with logits, MSE) and metrics (log loss, MAE, MSE, ROC AUC) against
// uvp's CPU versions (losses_reference.cpp). Host-only part (runs everywhere): the shared
// per-element formulas (uvp/detail/loss_math.hpp) replayed on the host give the CPU losses'
// bits, and the size errors are raised before any CUDA call.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "losses_reference.hpp"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/losses.cuh"
#include "uvp/backend/cuda/metrics.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
using namespace uvp_cuda_test;
namespace cb = uvp::cuda_backend;

template <class T>
std::string type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

/// Logits in [-30, 30] with the edge cases 0, +-0, large |z|; soft targets in [0, 1].
template <class T>
void loss_data(index n, std::vector<T>& z, std::vector<T>& y, std::vector<T>& w) {
  z = uniform<T>(n, 41, -30, 30);
  y = uniform<T>(n, 42, 0, 1);
  w = uniform<T>(n, 43, 0, 2);
  z[0] = T(0);
  z[1] = -T(0);
  z[2] = T(80);
  z[3] = T(-80);
  y[4] = T(0);
  y[5] = T(1);
}

/// Labels 0 / 1, scores rounded to 0.01 (many ties, both classes in a tie), -0 and +0.
template <class T>
void metric_data(index n, std::vector<T>& y, std::vector<T>& s, std::vector<T>& w) {
  const auto u = uniform<T>(n, 51, 0, 1);
  s = uniform<T>(n, 52, -2, 2);
  w = uniform<T>(n, 53, 0, 3);
  y.resize(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) {
    s[i] = T(std::round(double(s[i]) * 100) / 100);
    // Positives score higher on average, so the AUC is far from 1/2.
    y[i] = u[i] < 0.5 + 0.2 * std::tanh(double(s[i])) ? T(1) : T(0);
  }
  s[0] = -T(0);
  s[1] = T(0);
  y[0] = T(1);
  y[1] = T(0);
  w[2] = T(0);  // a zero weight
}

// -------------------------------------------------------------------------------------------
template <class T>
void shared_math_matches_cpu() {
  const index n = 10000;
  std::vector<T> z, y, w;
  loss_data<T>(n, z, y, w);
  for (int weighted = 0; weighted < 2; ++weighted) {
    const std::vector<T> wv = weighted ? w : std::vector<T>();
    std::vector<T> cpu_grad(z.size()), host_grad(z.size());
    const double cpu = cpu_bce_with_logits<T>(z, y, wv, cpu_grad);
    const double scale = 1.0 / double(n);
    double total = 0;
    for (index i = 0; i < n; ++i) {
      const double wi = weighted ? double(w[i]) : 1.0;
      total += wi * double(uvp::detail::bce_logits_value(z[i], y[i]));
      host_grad[i] = static_cast<T>(wi * double(uvp::detail::bce_logits_delta(z[i], y[i])) * scale);
    }
    UVP_EXPECT_MSG(total * scale == cpu && host_grad == cpu_grad,
                   "bce_logits_value / _delta == uvp::bce_with_logits<" + type_name<T>() +
                       ">, weighted = " + std::to_string(weighted));
  }
  // log_loss_term against the CPU log loss of single samples (clipping included).
  const T probs[] = {T(0), T(1e-30), T(0.25), T(0.5), T(1) - std::numeric_limits<T>::epsilon(), T(1)};
  const T eps = std::numeric_limits<T>::epsilon();
  for (const T p : probs) {
    for (const T label : {T(0), T(1)}) {
      const double cpu = cpu_log_loss<T>({label}, {p}, {});
      const double host = uvp::detail::log_loss_term(label, p, eps, T(1.0 - double(eps)));
      UVP_EXPECT_MSG(cpu == host, "log_loss_term(" + std::to_string(double(label)) + ", " +
                                      std::to_string(double(p)) + ") == uvp::log_loss");
    }
  }
}

void argument_errors() {
  cb::Reducer r;  // allocates nothing until a reduction runs
  float* fake = reinterpret_cast<float*>(std::uintptr_t(256));
  const cb::DeviceSpan<const float> c4(fake, 4), c3(fake, 3), c0(fake, 0);
  const cb::DeviceSpan<float> g3(fake, 3);
  // An empty batch is valid, as on the CPU: 0, nothing launched.
  UVP_EXPECT(cb::bce_with_logits<float>(r, c0, c0) == 0.0);
  UVP_EXPECT(cb::mse_loss<float>(r, c0, c0) == 0.0);
  UVP_EXPECT_THROWS(uvp::shape_error, cb::bce_with_logits<float>(r, c4, c3),
                    "uvp::cuda_backend::bce_with_logits: targets has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::shape_error, cb::bce_with_logits<float>(r, c4, c4, g3),
                    "uvp::cuda_backend::bce_with_logits: grad has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::shape_error, cb::mse_loss<float>(r, c4, c4, {}, c3),
                    "uvp::cuda_backend::mse_loss: weights has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::mae<float>(r, c0, c0),
                    "uvp::cuda_backend::mae: y_true is empty");
  UVP_EXPECT_THROWS(uvp::shape_error, cb::mse<float>(r, c4, c3),
                    "uvp::cuda_backend::mse: y_pred has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::shape_error, cb::log_loss<float>(r, c4, c3),
                    "uvp::cuda_backend::log_loss: y_prob has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::shape_error, cb::roc_auc<float>(r, c4, c4, c3),
                    "uvp::cuda_backend::roc_auc: sample_weight has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::roc_auc<float>(r, c0, c4),
                    "uvp::cuda_backend::roc_auc: y_true is empty");
}

void host_checks() {
  shared_math_matches_cpu<float>();
  shared_math_matches_cpu<double>();
  argument_errors();
}

// -------------------------------------------------------------------------------------------
template <class T>
double rel_diff(double a, double b) {
  return std::abs(a - b) / std::max(std::abs(b), 1e-300);
}

template <class T>
void losses_on_device(cb::Reducer& r) {
  // Float terms use the device's expf / log1pf (<= 2 ulp); the sums are in double either way.
  const double loss_tol = sizeof(T) == 4 ? 1e-6 : 1e-12;
  const double grad_rel = sizeof(T) == 4 ? 1e-5 : 1e-13;
  const index n = 300001;  // more than 1024 blocks of 256: the grid-stride loop wraps
  std::vector<T> z, y, w;
  loss_data<T>(n, z, y, w);
  const cb::DeviceBuffer<T> dz(z, r.stream()), dy(y, r.stream()), dw(w, r.stream());
  cb::DeviceBuffer<T> dg(n, r.stream());
  for (int weighted = 0; weighted < 2; ++weighted) {
    const std::vector<T> wv = weighted ? w : std::vector<T>();
    const cb::DeviceSpan<const T> weights =
        weighted ? cb::DeviceSpan<const T>(dw) : cb::DeviceSpan<const T>();
    std::vector<T> cpu_grad(z.size()), gpu_grad(z.size());
    const std::string what = type_name<T>() + ", weighted = " + std::to_string(weighted);

    const double cpu_bce = cpu_bce_with_logits<T>(z, y, wv, cpu_grad);
    const double gpu_bce = cb::bce_with_logits<T>(r, dz, dy, dg, weights);
    dg.to_host(gpu_grad);
    UVP_EXPECT_MSG(rel_diff<T>(gpu_bce, cpu_bce) <= loss_tol,
                   "bce_with_logits " + what + ": " + std::to_string(gpu_bce) + " vs " +
                       std::to_string(cpu_bce));
    UVP_EXPECT_MSG(worst_error(gpu_grad, cpu_grad, grad_rel, 1e-30) <= 1.0,
                   "bce_with_logits gradient " + what);

    const double cpu_mse = cpu_mse_loss<T>(z, y, wv, cpu_grad);
    const double gpu_mse = cb::mse_loss<T>(r, dz, dy, dg, weights);
    dg.to_host(gpu_grad);
    UVP_EXPECT_MSG(rel_diff<T>(gpu_mse, cpu_mse) <= 1e-12, "mse_loss " + what);
    UVP_EXPECT_MSG(gpu_grad == cpu_grad, "mse_loss gradient (formed in double) " + what);
  }
  // Without grad: the same loss, nothing written.
  const double no_grad = cb::bce_with_logits<T>(r, dz, dy);
  std::vector<T> unused(z.size());
  UVP_EXPECT(rel_diff<T>(no_grad, cpu_bce_with_logits<T>(z, y, {}, unused)) <= loss_tol);
}

template <class T>
void metrics_on_device(cb::Reducer& r) {
  const index n = 200003;
  std::vector<T> y, s, w;
  metric_data<T>(n, y, s, w);
  std::vector<T> p(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) p[i] = uvp::detail::sigmoid_scalar(T(3) * s[i]);
  p[3] = T(0);
  p[4] = T(1);  // clipped
  const cb::DeviceBuffer<T> dy(y, r.stream()), ds(s, r.stream()), dw(w, r.stream()),
      dp(p, r.stream());
  for (int weighted = 0; weighted < 2; ++weighted) {
    const std::vector<T> wv = weighted ? w : std::vector<T>();
    const cb::DeviceSpan<const T> weights =
        weighted ? cb::DeviceSpan<const T>(dw) : cb::DeviceSpan<const T>();
    const std::string what = type_name<T>() + ", weighted = " + std::to_string(weighted);
    const double auc_cpu = cpu_roc_auc<T>(y, s, wv), auc_gpu = cb::roc_auc<T>(r, dy, ds, weights);
    // Unweighted, both count pairs exactly; weighted, the sums differ in order only.
    UVP_EXPECT_MSG(rel_diff<T>(auc_gpu, auc_cpu) <= (weighted ? 1e-12 : 1e-15),
                   "roc_auc " + what + ": " + std::to_string(auc_gpu) + " vs " +
                       std::to_string(auc_cpu));
    UVP_EXPECT_MSG(rel_diff<T>(cb::log_loss<T>(r, dy, dp, weights), cpu_log_loss<T>(y, p, wv)) <=
                       (sizeof(T) == 4 ? 1e-12 : 1e-12),
                   "log_loss " + what);
    UVP_EXPECT_MSG(rel_diff<T>(cb::mae<T>(r, dy, dp, weights), cpu_mae<T>(y, p, wv)) <= 1e-12,
                   "mae " + what);
    UVP_EXPECT_MSG(rel_diff<T>(cb::mse<T>(r, dy, dp, weights), cpu_mse<T>(y, p, wv)) <= 1e-12,
                   "mse " + what);
  }
  // All scores tied: AUC 1/2 exactly.
  const cb::DeviceBuffer<T> same(std::vector<T>(static_cast<std::size_t>(n), T(0.3)), r.stream());
  UVP_EXPECT(cb::roc_auc<T>(r, dy, same) == 0.5);

  // Device-side argument errors name the offending element, as on the CPU.
  auto bad = y;
  bad[5] = T(2);
  const cb::DeviceBuffer<T> dbad(bad, r.stream());
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::roc_auc<T>(r, dbad, ds),
                    "uvp::cuda_backend::roc_auc: y_true[5] = 2 is not a binary label (expected 0 or 1)");
  auto nan_scores = s;
  nan_scores[9] = std::numeric_limits<T>::quiet_NaN();
  const cb::DeviceBuffer<T> dnan(nan_scores, r.stream());
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::roc_auc<T>(r, dy, dnan),
                    "uvp::cuda_backend::roc_auc: y_score has a non-finite value (", ") at flat index 9");
  const cb::DeviceBuffer<T> ones(std::vector<T>(static_cast<std::size_t>(n), T(1)), r.stream());
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::roc_auc<T>(r, ones, ds),
                    "uvp::cuda_backend::roc_auc: only one class present in y_true (all 200003 "
                    "labels are 1); ROC AUC is not defined in that case");
  auto neg_w = w;
  neg_w[11] = T(-1);
  const cb::DeviceBuffer<T> dneg(neg_w, r.stream());
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::mae<T>(r, dy, dp, dneg),
                    "uvp::cuda_backend::mae: sample_weight[11] = -1 must be finite and >= 0");
  auto bad_p = p;
  bad_p[13] = T(1.5);
  const cb::DeviceBuffer<T> dbad_p(bad_p, r.stream());
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::log_loss<T>(r, dy, dbad_p),
                    "uvp::cuda_backend::log_loss: y_prob[13] = 1.5 is not a probability");
  UVP_EXPECT(cudaGetLastError() == cudaSuccess);
}

void device_checks() {
  cb::Stream stream(true);  // non-blocking: nothing may rely on the legacy default stream
  cb::Reducer r(stream.get());
  losses_on_device<float>(r);
  losses_on_device<double>(r);
  metrics_on_device<float>(r);
  metrics_on_device<double>(r);
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_losses", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
