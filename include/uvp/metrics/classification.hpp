// SPDX-License-Identifier: Apache-2.0
// Classification metrics of predicted labels (accuracy, precision, recall, F1, confusion matrix)
// and of predicted probabilities (log loss).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/metrics/common.hpp"

namespace uvp {

// Conventions (they follow scikit-learn 1.2's sklearn.metrics):
//   y_true, y_pred  n class labels stored in T (float, double or an integer type); a label is an
//                   integral value (1.5 or NaN is rejected, as sklearn rejects "continuous"
//                   targets). Binary metrics need labels 0 and 1.
//   sample_weight   empty (unweighted) or n finite weights >= 0, not all 0; every count below
//                   becomes a sum of weights.
// Results are computed in double whatever T is. Errors: uvp::invalid_argument (a bad value) or
// its subtype uvp::shape_error (sizes that differ); empty inputs are rejected.

/// How precision / recall / F1 reduce over classes (sklearn's `average`).
enum class Average {
  binary,  ///< the score of the class pos_label only; labels must be 0/1
  macro,   ///< the unweighted mean of the per-class scores over the sorted union of the labels
           ///< found in y_true and y_pred (any integral labels)
};

/// Options of precision, recall and f1_score.
struct PrfOptions {
  Average average = Average::binary;
  double pos_label = 1;  ///< Average::binary only: 0 or 1
};

/// Counts of (true label, predicted label) pairs: counts(i, j) is the number (or total weight)
/// of samples whose true label is labels[i] and predicted label is labels[j]; labels is the
/// sorted union of the labels in y_true and y_pred (sklearn.metrics.confusion_matrix).
template <class T, class Count>
struct ConfusionMatrix {
  std::vector<T> labels;
  Matrix<Count> counts;
};

namespace detail {

template <class T>
const T* check_label_inputs(const char* where, Span<const T> y_true, Span<const T> y_pred,
                            Span<const T> sample_weight) {
  static_assert(std::is_arithmetic_v<T>, "uvp classification metrics take labels stored in an arithmetic type");
  check_pair(where, "y_true", y_true, "y_pred", y_pred);
  check_class_labels(where, "y_true", y_true.data(), y_true.size());
  check_class_labels(where, "y_pred", y_pred.data(), y_pred.size());
  const T* w = sample_weight_or_null(where, sample_weight, y_true.size());
  if (w) {
    CompensatedSum total;
    for (index i = 0; i < y_true.size(); ++i) total.add(double(w[i]));
    check_weight_total(where, total.value());
  }
  return w;
}

/// Sorted distinct labels of y_true and y_pred together.
template <class T>
std::vector<T> label_union(Span<const T> y_true, Span<const T> y_pred) {
  std::vector<T> labels(y_true.begin(), y_true.end());
  labels.insert(labels.end(), y_pred.begin(), y_pred.end());
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return labels;
}

template <class T>
index label_position(const std::vector<T>& labels, T v) noexcept {
  return index(std::lower_bound(labels.begin(), labels.end(), v) - labels.begin());
}

/// Per-class sums: true positives, predicted positives (tp + fp), actual positives (tp + fn).
struct ClassCounts {
  std::vector<double> tp, predicted, actual;
};

template <class T>
ClassCounts count_classes(const std::vector<T>& labels, Span<const T> y_true, Span<const T> y_pred,
                          const T* w) {
  const std::size_t k = labels.size();
  ClassCounts c{std::vector<double>(k, 0), std::vector<double>(k, 0), std::vector<double>(k, 0)};
  for (index i = 0; i < y_true.size(); ++i) {
    const double wi = w ? double(w[i]) : 1.0;
    const auto t = std::size_t(label_position(labels, y_true[i]));
    const auto p = std::size_t(label_position(labels, y_pred[i]));
    c.actual[t] += wi;
    c.predicted[p] += wi;
    if (t == p) c.tp[t] += wi;
  }
  return c;
}

/// sklearn's zero_division="warn" value: an undefined ratio (0 / 0) counts as 0.
inline double ratio_or_zero(double num, double den) noexcept { return den != 0 ? num / den : 0.0; }

/// 2 P R / (P + R), with 0 when P + R = 0 (sklearn's F-beta at beta = 1, same evaluation order).
inline double f1_from(double p, double r) noexcept {
  const double den = p + r;
  return den != 0 ? 2.0 * p * r / den : 0.0;
}

enum class PrfKind { precision, recall, f1 };

template <class T>
double prf_score(const char* where, PrfKind kind, Span<const T> y_true, Span<const T> y_pred,
                 const PrfOptions& options, Span<const T> sample_weight) {
  const T* w = check_label_inputs(where, y_true, y_pred, sample_weight);
  const auto score = [kind](double tp, double predicted, double actual) {
    const double p = ratio_or_zero(tp, predicted);
    const double r = ratio_or_zero(tp, actual);
    return kind == PrfKind::precision ? p : kind == PrfKind::recall ? r : f1_from(p, r);
  };
  if (options.average == Average::binary) {
    if (!(options.pos_label == 0 || options.pos_label == 1))
      raise<invalid_argument>(where, ": pos_label = ", options.pos_label,
                              " is not a binary label (expected 0 or 1)");
    check_binary_labels(where, "y_true", y_true.data(), y_true.size());
    check_binary_labels(where, "y_pred", y_pred.data(), y_pred.size());
    const T pos = T(options.pos_label);
    double tp = 0, predicted = 0, actual = 0;
    for (index i = 0; i < y_true.size(); ++i) {
      const double wi = w ? double(w[i]) : 1.0;
      const bool t = y_true[i] == pos, p = y_pred[i] == pos;
      actual += t ? wi : 0.0;
      predicted += p ? wi : 0.0;
      tp += (t && p) ? wi : 0.0;
    }
    return score(tp, predicted, actual);
  }
  if (options.average != Average::macro)
    raise<invalid_argument>(where, ": average = ", int(options.average), " is not a known Average");
  const auto labels = label_union(y_true, y_pred);
  const ClassCounts c = count_classes(labels, y_true, y_pred, w);
  CompensatedSum sum;
  for (std::size_t k = 0; k < labels.size(); ++k)
    sum.add(score(c.tp[k], c.predicted[k], c.actual[k]));
  return sum.value() / double(labels.size());
}

}  // namespace detail

/// Fraction (or weight share) of samples with y_pred == y_true (sklearn.metrics.accuracy_score).
template <class T>
double accuracy(Span<const T> y_true, Span<const T> y_pred, Span<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::accuracy";
  const T* w = detail::check_label_inputs(where, y_true, y_pred, sample_weight);
  detail::CompensatedSum hit, total;
  for (index i = 0; i < y_true.size(); ++i) {
    const double wi = w ? double(w[i]) : 1.0;
    if (y_true[i] == y_pred[i]) hit.add(wi);
    total.add(wi);
  }
  return hit.value() / total.value();
}

/// Pointer overload: y_true, y_pred (and sample_weight unless null) hold n values each.
template <class T>
double accuracy(const T* y_true, const T* y_pred, index n, const T* sample_weight = nullptr) {
  return accuracy(Span<const T>(y_true, n), Span<const T>(y_pred, n),
                  sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

/// Precision tp / (tp + fp) (sklearn.metrics.precision_score with zero_division="warn"): when
/// nothing is predicted positive the ratio is 0/0 and uvp returns 0, as sklearn 1.2 does
/// (sklearn also warns; uvp never prints). Average::macro averages the per-class precisions.
template <class T>
double precision(Span<const T> y_true, Span<const T> y_pred, const PrfOptions& options = {},
                 Span<const T> sample_weight = {}) {
  return detail::prf_score("uvp::precision", detail::PrfKind::precision, y_true, y_pred, options,
                           sample_weight);
}

/// Recall tp / (tp + fn) (sklearn.metrics.recall_score); 0 when the class has no true sample.
template <class T>
double recall(Span<const T> y_true, Span<const T> y_pred, const PrfOptions& options = {},
              Span<const T> sample_weight = {}) {
  return detail::prf_score("uvp::recall", detail::PrfKind::recall, y_true, y_pred, options,
                           sample_weight);
}

/// F1 = 2 P R / (P + R) (sklearn.metrics.f1_score), computed from the precision and recall
/// above (so after their 0/0 -> 0 replacement), and 0 when P + R = 0. Average::macro is the
/// mean of the per-class F1 values (not the F1 of the mean P and R).
template <class T>
double f1_score(Span<const T> y_true, Span<const T> y_pred, const PrfOptions& options = {},
                Span<const T> sample_weight = {}) {
  return detail::prf_score("uvp::f1_score", detail::PrfKind::f1, y_true, y_pred, options,
                           sample_weight);
}

/// Pointer overloads of precision, recall and f1_score.
template <class T>
double precision(const T* y_true, const T* y_pred, index n, const PrfOptions& options = {},
                 const T* sample_weight = nullptr) {
  return precision(Span<const T>(y_true, n), Span<const T>(y_pred, n), options,
                   sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}
template <class T>
double recall(const T* y_true, const T* y_pred, index n, const PrfOptions& options = {},
              const T* sample_weight = nullptr) {
  return recall(Span<const T>(y_true, n), Span<const T>(y_pred, n), options,
                sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}
template <class T>
double f1_score(const T* y_true, const T* y_pred, index n, const PrfOptions& options = {},
                const T* sample_weight = nullptr) {
  return f1_score(Span<const T>(y_true, n), Span<const T>(y_pred, n), options,
                  sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

/// Confusion matrix of sample counts (sklearn.metrics.confusion_matrix without weights).
template <class T>
ConfusionMatrix<T, index> confusion_matrix(Span<const T> y_true, Span<const T> y_pred) {
  detail::check_label_inputs("uvp::confusion_matrix", y_true, y_pred, Span<const T>());
  ConfusionMatrix<T, index> out{detail::label_union(y_true, y_pred), {}};
  const index k = index(out.labels.size());
  out.counts = Matrix<index>::Zero(k, k);
  for (index i = 0; i < y_true.size(); ++i)
    ++out.counts(detail::label_position(out.labels, y_true[i]),
                 detail::label_position(out.labels, y_pred[i]));
  return out;
}

/// Confusion matrix of summed sample weights (sklearn.metrics.confusion_matrix(...,
/// sample_weight=...)).
template <class T>
ConfusionMatrix<T, double> confusion_matrix(Span<const T> y_true, Span<const T> y_pred,
                                            Span<const T> sample_weight) {
  const T* w = detail::check_label_inputs("uvp::confusion_matrix", y_true, y_pred, sample_weight);
  ConfusionMatrix<T, double> out{detail::label_union(y_true, y_pred), {}};
  const index k = index(out.labels.size());
  out.counts = Matrix<double>::Zero(k, k);
  for (index i = 0; i < y_true.size(); ++i)
    out.counts(detail::label_position(out.labels, y_true[i]),
               detail::label_position(out.labels, y_pred[i])) += w ? double(w[i]) : 1.0;
  return out;
}

namespace detail {
template <class T>
double log_loss_impl(Span<const T> y_true, Span<const T> y_prob, Span<const T> sample_weight,
                     double eps) {
  constexpr const char* where = "uvp::log_loss";
  require_floating_metric<T>();
  check_pair(where, "y_true", y_true, "y_prob", y_prob);
  check_in_closed_range(where, "eps", eps, 0.0, 0.5);
  check_binary_labels(where, "y_true", y_true.data(), y_true.size());
  for (index i = 0; i < y_prob.size(); ++i)
    if (!(y_prob[i] >= T(0) && y_prob[i] <= T(1)))
      raise<invalid_argument>(where, ": y_prob[", i, "] = ", y_prob[i],
                              " is not a probability (expected a value in [0, 1])");
  const T* w = sample_weight_or_null(where, sample_weight, y_true.size());
  // Clip in T as sklearn clips the array in its own dtype; the logs and the sum run in double.
  const T lo = T(eps), hi = T(1.0 - eps);
  CompensatedSum loss, total;
  for (index i = 0; i < y_true.size(); ++i) {
    const double p = double(std::clamp(y_prob[i], lo, hi));
    const double q = y_true[i] == T(1) ? p : 1.0 - p;
    const double wi = w ? double(w[i]) : 1.0;
    loss.add(-wi * std::log(q));
    total.add(wi);
  }
  check_weight_total(where, total.value());
  return loss.value() / total.value();
}
}  // namespace detail

/// Mean binary cross-entropy -[y log p + (1 - y) log(1 - p)] of probabilities p = P(y = 1)
/// (sklearn.metrics.log_loss with its default eps="auto"): p is first clipped to [eps, 1 - eps]
/// with eps = std::numeric_limits<T>::epsilon(), the machine epsilon of the input type as in
/// sklearn 1.2 (2.2e-16 for double, 1.19e-7 for float; sklearn < 1.2 used 1e-15). Weighted:
/// sum w_i loss_i / sum w_i. Unlike sklearn, a y_true with a single class is accepted (uvp's
/// labels are always {0, 1}, as sklearn's labels=[0, 1]), and p outside [0, 1] is an error.
template <class T>
double log_loss(Span<const T> y_true, Span<const T> y_prob, Span<const T> sample_weight = {}) {
  return detail::log_loss_impl(y_true, y_prob, sample_weight,
                               double(std::numeric_limits<T>::epsilon()));
}

/// log_loss with an explicit clipping eps in [0, 0.5] (eps = 1e-15 reproduces sklearn < 1.2).
/// With eps = 0 a confident wrong prediction gives +inf, as in sklearn.
template <class T>
double log_loss(Span<const T> y_true, Span<const T> y_prob, Span<const T> sample_weight,
                double eps) {
  return detail::log_loss_impl(y_true, y_prob, sample_weight, eps);
}

/// Pointer overload of log_loss (default eps).
template <class T>
double log_loss(const T* y_true, const T* y_prob, index n, const T* sample_weight = nullptr) {
  return log_loss(Span<const T>(y_true, n), Span<const T>(y_prob, n),
                  sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

}  // namespace uvp
