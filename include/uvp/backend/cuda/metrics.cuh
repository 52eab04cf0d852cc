// SPDX-License-Identifier: Apache-2.0
// Evaluation metrics on device memory, for predictions that are already on the GPU: log loss,
// MAE, MSE and ROC AUC, with the CPU versions' conventions, checks and messages
// (metrics/classification.hpp, regression.hpp, ranking.hpp; scikit-learn 1.2).
//
//   log_loss  = sum_i w_i (-log q_i) / sum_i w_i, q_i = clip(p_i) if y_i = 1 else 1 - clip(p_i),
//               clip to [eps, 1 - eps] in T, eps = machine epsilon of T
//   mae / mse = sum_i w_i |y_i - p_i| (or (y_i - p_i)^2) / sum_i w_i, differences in double
//   roc_auc   = P(score of a random positive > score of a random negative), ties counting 1/2
//             = sum over distinct scores s (descending) of neg(s) (pos(> s) + pos(s) / 2) / (P N)
//
// roc_auc sorts (score, label, weight) by score with thrust (CUB radix sort underneath), merges
// equal scores with reduce_by_key (so ties count 1/2, as on the CPU; -0 and +0 are one score),
// and sums the groups. Unweighted, every term is an integer in double: exact while P N < 2^53.
// It allocates O(n) device scratch per call (the sorted copy, the groups, thrust's temporaries).
// Every function validates its inputs on the device first (one pass per check) and waits for
// the reducer's stream, since it returns a host value.
#pragma once

#if !defined(__CUDACC__)
#error "uvp: metrics.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sort.h>

#include <cmath>
#include <limits>

#include "uvp/backend/cuda/checks.cuh"
#include "uvp/backend/cuda/device_buffer.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/reduce.cuh"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/detail/loss_math.hpp"

namespace uvp::detail {

template <class T>
struct CudaLogLossTerm {
  const T *y, *p, *w;
  T lo, hi;
  __device__ double operator()(index i) const {
    return (w ? double(w[i]) : 1.0) * log_loss_term(y[i], p[i], lo, hi);
  }
};

template <class T>
struct CudaWeightTerm {
  const T* w;
  __device__ double operator()(index i) const { return w ? double(w[i]) : 1.0; }
};

template <class T, bool Squared>
struct CudaErrorTerm {
  const T *y, *p, *w;
  __device__ double operator()(index i) const {
    const double e = double(y[i]) - double(p[i]);
    return (w ? double(w[i]) : 1.0) * (Squared ? e * e : fabs(e));
  }
};

/// Counts samples of class `label` whose weight is not 0 (zero-weight samples are dropped).
template <class T>
struct CudaClassCount {
  const T *y, *w;
  T label;
  __device__ double operator()(index i) const {
    return y[i] == label && (!w || w[i] != T(0)) ? 1.0 : 0.0;
  }
};

/// Total weight of the samples of class `label`.
template <class T>
struct CudaClassWeight {
  const T *y, *w;
  T label;
  __device__ double operator()(index i) const { return y[i] == label ? double(w[i]) : 0.0; }
};

/// Weight of one sample in each class: (positive weight, negative weight).
struct CudaPosNeg {
  double pos, neg;
};
struct CudaPosNegPlus {
  __host__ __device__ CudaPosNeg operator()(const CudaPosNeg& a, const CudaPosNeg& b) const {
    return {a.pos + b.pos, a.neg + b.neg};
  }
};
struct CudaPosOf {
  __host__ __device__ double operator()(const CudaPosNeg& a) const { return a.pos; }
};

/// key[i] = score + 0 (so -0 sorts as +0), val[i] = (w if positive, w if negative).
template <class T>
__global__ void cuda_auc_prepare_kernel(const T* y, const T* s, const T* w, T* key,
                                        CudaPosNeg* val, index n) {
  const index stride = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double wi = w ? double(w[i]) : 1.0;
    key[i] = s[i] + T(0);
    val[i] = y[i] == T(1) ? CudaPosNeg{wi, 0.0} : CudaPosNeg{0.0, wi};
  }
}

/// Twice the area contributed by distinct-score group g: neg_g (2 pos_above_g + pos_g).
struct CudaAucGroupTerm {
  const CudaPosNeg* group;
  const double* pos_above;
  __device__ double operator()(index g) const {
    return group[g].neg * (2.0 * pos_above[g] + group[g].pos);
  }
};

/// The checks every metric shares: y_true / the second array not empty and of the same size,
/// the weights' size and values. Returns the weights' pointer, or nullptr when unweighted.
template <class T>
const T* cuda_check_metric_pair(cuda_backend::Reducer& r, const char* where, const char* second,
                                cuda_backend::DeviceSpan<const T> y_true,
                                cuda_backend::DeviceSpan<const T> other,
                                cuda_backend::DeviceSpan<const T> sample_weight) {
  cuda_check_not_empty(where, "y_true", y_true.size());
  cuda_check_size(where, second, other.size(), y_true.size());
  if (sample_weight.empty()) return nullptr;
  cuda_check_size(where, "sample_weight", sample_weight.size(), y_true.size());
  cuda_check_sample_weight(r, where, sample_weight.data(), sample_weight.size());
  return sample_weight.data();
}

inline void cuda_check_weight_total(const char* where, double total) {
  if (!(total > 0))
    raise<invalid_argument>(where, ": sample_weight sums to ", total,
                            "; at least one weight must be > 0");
}

template <class T, bool Squared>
double cuda_error_mean(cuda_backend::Reducer& r, const char* where,
                       cuda_backend::DeviceSpan<const T> y_true,
                       cuda_backend::DeviceSpan<const T> y_pred,
                       cuda_backend::DeviceSpan<const T> sample_weight) {
  const index n = y_true.size();
  cuda_check_not_empty(where, "y_true", n);
  cuda_check_size(where, "y_pred", y_pred.size(), n);
  cuda_check_finite(r, where, "y_true", y_true.data(), n);
  cuda_check_finite(r, where, "y_pred", y_pred.data(), n);
  const T* w = nullptr;
  if (!sample_weight.empty()) {
    cuda_check_size(where, "sample_weight", sample_weight.size(), n);
    cuda_check_sample_weight(r, where, sample_weight.data(), n);
    w = sample_weight.data();
  }
  const double total = w ? r.sum(CudaWeightTerm<T>{w}, n) : double(n);
  cuda_check_weight_total(where, total);
  return r.sum(CudaErrorTerm<T, Squared>{y_true.data(), y_pred.data(), w}, n) / total;
}

}  // namespace uvp::detail

namespace uvp::cuda_backend {

/// Mean absolute error of y_pred against y_true (n finite values each, device memory), weighted
/// by sample_weight (empty, or n finite values >= 0 with a positive sum). As uvp::mae.
template <class T>
double mae(Reducer& reducer, DeviceSpan<const T> y_true, DeviceSpan<const T> y_pred,
           DeviceSpan<const T> sample_weight = {}) {
  return detail::cuda_error_mean<T, false>(reducer, "uvp::cuda_backend::mae", y_true, y_pred,
                                           sample_weight);
}

/// Mean squared error; as mae. As uvp::mse.
template <class T>
double mse(Reducer& reducer, DeviceSpan<const T> y_true, DeviceSpan<const T> y_pred,
           DeviceSpan<const T> sample_weight = {}) {
  return detail::cuda_error_mean<T, true>(reducer, "uvp::cuda_backend::mse", y_true, y_pred,
                                          sample_weight);
}

/// Mean log loss of probabilities y_prob (in [0, 1]) for labels y_true (0 or 1), clipped to
/// [eps, 1 - eps] with eps = std::numeric_limits<T>::epsilon(). As uvp::log_loss.
template <class T>
double log_loss(Reducer& reducer, DeviceSpan<const T> y_true, DeviceSpan<const T> y_prob,
                DeviceSpan<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::cuda_backend::log_loss";
  const T* w = detail::cuda_check_metric_pair(reducer, where, "y_prob", y_true, y_prob,
                                              sample_weight);
  const index n = y_true.size();
  detail::cuda_check_binary_labels(reducer, where, "y_true", y_true.data(), n);
  detail::cuda_check_probabilities(reducer, where, y_prob.data(), n);
  const double total = w ? reducer.sum(detail::CudaWeightTerm<T>{w}, n) : double(n);
  detail::cuda_check_weight_total(where, total);
  const double eps = double(std::numeric_limits<T>::epsilon());
  const T lo = T(eps), hi = T(1.0 - eps);
  return reducer.sum(detail::CudaLogLossTerm<T>{y_true.data(), y_prob.data(), w, lo, hi}, n) /
         total;
}

/// Area under the ROC curve of y_score (n finite scores) for labels y_true (0 or 1), weighted
/// by sample_weight (empty, or n finite values >= 0). As uvp::roc_auc (sklearn's
/// roc_auc_score): throws uvp::invalid_argument when a class is absent or weighs 0.
template <class T>
double roc_auc(Reducer& reducer, DeviceSpan<const T> y_true, DeviceSpan<const T> y_score,
               DeviceSpan<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::cuda_backend::roc_auc";
  const T* w = detail::cuda_check_metric_pair(reducer, where, "y_score", y_true, y_score,
                                              sample_weight);
  const index n = y_true.size();
  detail::cuda_check_binary_labels(reducer, where, "y_true", y_true.data(), n);
  detail::cuda_check_finite(reducer, where, "y_score", y_score.data(), n);

  const double n_pos = reducer.sum(detail::CudaClassCount<T>{y_true.data(), w, T(1)}, n);
  const double n_neg = reducer.sum(detail::CudaClassCount<T>{y_true.data(), w, T(0)}, n);
  if (n_pos == 0 || n_neg == 0)
    detail::raise<invalid_argument>(where, ": only one class present in y_true (all ",
                                    static_cast<index>(n_pos + n_neg), " labels are ",
                                    n_pos == 0 ? 0 : 1, "); ROC AUC is not defined in that case");

  double total_pos = n_pos, total_neg = n_neg;
  if (w) {
    total_neg = reducer.sum(detail::CudaClassWeight<T>{y_true.data(), w, T(0)}, n);
    total_pos = reducer.sum(detail::CudaClassWeight<T>{y_true.data(), w, T(1)}, n);
    if (!(total_neg > 0))
      detail::raise<invalid_argument>(where, ": the negative samples' sample_weight sums to ",
                                      total_neg, "; ROC AUC is not defined in that case");
    if (!(total_pos > 0))
      detail::raise<invalid_argument>(where, ": the positive samples' sample_weight sums to ",
                                      total_pos, "; ROC AUC is not defined in that case");
  }

  // Scratch from cudaMalloc, not thrust::device_vector: its value-initialisation would run on
  // the legacy default stream, unordered with a non-blocking `stream`.
  const cudaStream_t stream = reducer.stream();
  const auto policy = thrust::cuda::par.on(stream);
  DeviceBuffer<T> key(n, stream), group_key(n, stream);
  DeviceBuffer<detail::CudaPosNeg> val(n, stream), group(n, stream);
  detail::cuda_auc_prepare_kernel<<<detail::cuda_grid_for(n), 256, 0, stream>>>(
      y_true.data(), y_score.data(), w, key.data(), val.data(), n);
  UVP_CUDA_CHECK(cudaGetLastError());
  const auto k = thrust::device_pointer_cast(key.data());
  const auto v = thrust::device_pointer_cast(val.data());
  thrust::sort_by_key(policy, k, k + n, v, thrust::greater<T>());

  // One group per distinct score, in decreasing order: (positive weight, negative weight).
  const auto g_begin = thrust::device_pointer_cast(group.data());
  const auto ends =
      thrust::reduce_by_key(policy, k, k + n, v, thrust::device_pointer_cast(group_key.data()),
                            g_begin, thrust::equal_to<T>(), detail::CudaPosNegPlus());
  const index groups = static_cast<index>(ends.second - g_begin);
  // Positive weight above each group: an exclusive scan of the groups' positive weights.
  DeviceBuffer<double> pos_above(groups, stream);
  const auto pos = thrust::make_transform_iterator(g_begin, detail::CudaPosOf());
  thrust::exclusive_scan(policy, pos, pos + groups, thrust::device_pointer_cast(pos_above.data()),
                         0.0);
  const detail::CudaPosNeg* g = group.data();
  const double twice_area = reducer.sum(
      detail::CudaAucGroupTerm{g, pos_above.data()}, groups);
  return twice_area / (2.0 * total_pos * total_neg);
}

}  // namespace uvp::cuda_backend
