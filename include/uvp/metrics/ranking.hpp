// SPDX-License-Identifier: Apache-2.0
// Ranking metrics of binary scores: ROC AUC, ROC curve, average precision (PR AUC), PR curve.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/metrics/common.hpp"
#include "uvp/metrics/score_sort.hpp"

namespace uvp {

// Conventions of every function here (they follow scikit-learn 1.2's sklearn.metrics):
//   y_true         n labels, each exactly 0 or 1 (1 = positive class);
//   y_score        n finite scores, larger = more likely positive (probabilities or logits);
//   sample_weight  empty (unweighted) or n finite weights >= 0; zero-weight samples are
//                  dropped as sklearn does (they add no threshold to a curve).
// Scores are ranked exactly: equal scores form one threshold (-0 and +0 are equal).
// Errors (uvp::invalid_argument or its subtype uvp::shape_error): empty input, sizes that differ,
// a label other than 0/1, a NaN or infinite score or weight, a negative weight, and a class
// needed by the metric that is absent (or has total weight 0).

/// Points of the ROC curve (sklearn.metrics.roc_curve): for each distinct threshold, in
/// decreasing order, fpr[i] / tpr[i] are the false / true positive rates of "score >=
/// thresholds[i]". Element 0 is the (0, 0) corner with thresholds[0] = thresholds[1] + 1, as in
/// sklearn 1.2 (sklearn >= 1.3 puts +inf there).
template <class T>
struct RocCurve {
  Vector<double> fpr;
  Vector<double> tpr;
  Vector<T> thresholds;
};

/// Points of the precision-recall curve (sklearn.metrics.precision_recall_curve): thresholds
/// are the distinct scores in increasing order (size m); precision[i] / recall[i] (size m + 1)
/// belong to "score >= thresholds[i]", and the last point is (precision 1, recall 0).
template <class T>
struct PrecisionRecallCurve {
  Vector<double> precision;
  Vector<double> recall;
  Vector<T> thresholds;
};

namespace detail {

/// First position in [lo, hi) whose key is >= key (strict = false) or > key (strict = true),
/// found by exponential then binary search from lo: O(log distance), so a merge that skips
/// long runs costs little.
template <bool strict, class K>
index gallop(const K* a, index lo, index hi, K key) noexcept {
  const auto before = [key](K v) { return strict ? !(key < v) : v < key; };
  if (lo >= hi || !before(a[lo])) return lo;
  index prev = lo, step = 1;
  while (prev + step < hi && before(a[prev + step])) {
    prev += step;
    step *= 2;
  }
  const index end = std::min(prev + step, hi);
  const K* p = strict ? std::upper_bound(a + prev + 1, a + end, key)
                      : std::lower_bound(a + prev + 1, a + end, key);
  return index(p - a);
}

/// Unweighted ROC AUC from the sorted keys of each class: the Mann-Whitney count
/// 2U = sum over positives of (2 * #negatives below + #negatives tied), exact in integers.
template <class K>
double roc_auc_from_sorted(const K* neg, index n_neg, const K* pos, index n_pos) noexcept {
  // 2U <= 2 * n_neg * n_pos fits 64 bits while n < 2^32; beyond that, count in double.
  const bool exact = double(n_neg) * double(n_pos) < 4.0e18;
  std::uint64_t twice_u = 0;
  double twice_u_fp = 0;
  index j = 0;
  for (index i = 0; i < n_pos;) {
    const K k = pos[i];
    index i_end = i + 1;
    while (i_end < n_pos && pos[i_end] == k) ++i_end;
    const index below = gallop<false>(neg, j, n_neg, k);
    const index upto = gallop<true>(neg, below, n_neg, k);
    const index ties = upto - below;
    if (exact)
      twice_u += std::uint64_t(i_end - i) * std::uint64_t(2 * below + ties);
    else
      twice_u_fp += double(i_end - i) * (2.0 * double(below) + double(ties));
    j = upto;
    i = i_end;
  }
  const double num = exact ? double(twice_u) : twice_u_fp;
  return num / (2.0 * double(n_neg) * double(n_pos));
}

/// Unweighted ROC AUC from the distinct-score counts: the same exact integer count of 2U.
template <class K>
double roc_auc_from_groups(const GroupedScores<K>& g) noexcept {
  const bool exact = double(g.n_neg) * double(g.n_pos) < 4.0e18;
  std::uint64_t twice_u = 0;
  double twice_u_fp = 0;
  index below = 0;
  for (const auto& grp : g.groups) {
    if (grp.pos != 0) {
      if (exact)
        twice_u += std::uint64_t(grp.pos) * std::uint64_t(2 * below + grp.neg);
      else
        twice_u_fp += double(grp.pos) * (2.0 * double(below) + double(grp.neg));
    }
    below += grp.neg;
  }
  const double num = exact ? double(twice_u) : twice_u_fp;
  return num / (2.0 * double(g.n_neg) * double(g.n_pos));
}

/// Visits the distinct scores in decreasing order as f(key, fps, tps): the cumulative weight of
/// negatives / positives scoring >= key. The sums run sample by sample in the order of sklearn's
/// _binary_clf_curve (descending score, ties in reverse input order: the radix sort is stable),
/// so weighted sums round exactly as sklearn's stable_cumsum. Thresholds held only by
/// zero-weight samples are skipped, as sklearn drops those samples.
template <class Rec, class F>
void for_each_threshold_desc(const ClassSortedScores<Rec>& s, F&& f) {
  index i = s.n_neg - 1, j = s.n_pos - 1;
  double fps = 0, tps = 0;
  while (i >= 0 || j >= 0) {
    const auto kn = i >= 0 ? record_key(s.neg[i]) : decltype(record_key(s.neg[0]))(0);
    const auto kp = j >= 0 ? record_key(s.pos[j]) : decltype(record_key(s.pos[0]))(0);
    const auto k = i < 0 ? kp : (j < 0 ? kn : std::max(kn, kp));
    bool any = false;
    for (; i >= 0 && record_key(s.neg[i]) == k; --i) {
      const double w = record_weight(s.neg[i]);
      any |= w != 0;
      fps += w;
    }
    for (; j >= 0 && record_key(s.pos[j]) == k; --j) {
      const double w = record_weight(s.pos[j]);
      any |= w != 0;
      tps += w;
    }
    if (any) f(k, fps, tps);
  }
}

/// for_each_threshold_desc over distinct-score counts (unweighted: every group is non-empty).
template <class K, class F>
void for_each_threshold_desc(const GroupedScores<K>& g, F&& f) {
  double fps = 0, tps = 0;
  for (auto it = g.groups.rbegin(); it != g.groups.rend(); ++it) {
    fps += double(it->neg);
    tps += double(it->pos);
    f(it->key, fps, tps);
  }
}

/// Total weight of one class's records, summed in sklearn's order.
template <class Rec>
double class_weight_total(const Rec* r, index m) noexcept {
  double total = 0;
  for (index i = m - 1; i >= 0; --i) total += record_weight(r[i]);  // sklearn's cumsum order
  return total;
}

template <class Rec>
double positive_weight_total(const ClassSortedScores<Rec>& s) noexcept {
  return class_weight_total(s.pos, s.n_pos);
}
template <class K>
double positive_weight_total(const GroupedScores<K>& g) noexcept {
  return double(g.n_pos);
}

/// Validates, orders the scores once and hands them to `body` as one of: GroupedScores
/// (unweighted, few distinct scores), ClassSortedScores of keys (unweighted) or of key + weight
/// records (weighted). Every consumer gives the same result on each of them.
template <class T, class Body>
decltype(auto) with_sorted_scores(const char* where, Span<const T> y_true, Span<const T> y_score,
                                  Span<const T> sample_weight, Body&& body) {
  require_floating_metric<T>();
  check_pair(where, "y_true", y_true, "y_score", y_score);
  const index n = y_true.size();
  if (!sample_weight.empty()) check_size(where, "sample_weight", sample_weight.size(), n);
  using K = score_key_t<T>;
  if (sample_weight.empty()) {
    if (n >= distinct_count_min) {
      GroupedScores<K> grouped;
      if (group_distinct_scores(where, y_true.data(), y_score.data(), n, grouped)) return body(grouped);
    }
    ScoreSortBuffers<K> buffers;
    const auto s = sort_scores_by_class<K>(where, y_true.data(), y_score.data(),
                                           static_cast<const T*>(nullptr), n, buffers);
    return body(s);
  }
  ScoreSortBuffers<WeightedKey<K, T>> buffers;
  const auto s = sort_scores_by_class<WeightedKey<K, T>>(where, y_true.data(), y_score.data(),
                                                         sample_weight.data(), n, buffers);
  return body(s);
}

/// S: ClassSortedScores or GroupedScores (both carry n_neg and n_pos).
template <class S>
void require_both_classes(const char* where, const S& s, const char* metric) {
  if (s.n_neg == 0 || s.n_pos == 0)
    raise<invalid_argument>(where, ": only one class present in y_true (all ", s.n_neg + s.n_pos,
                            " labels are ", s.n_pos == 0 ? 0 : 1, "); ", metric,
                            " is not defined in that case");
}

inline void require_class_weight(const char* where, double total, const char* cls,
                                 const char* metric) {
  if (!(total > 0))
    raise<invalid_argument>(where, ": the ", cls, " samples' sample_weight sums to ", total, "; ",
                            metric, " is not defined in that case");
}

}  // namespace detail

/// Area under the ROC curve, equal to sklearn.metrics.roc_auc_score(y_true, y_score,
/// sample_weight=...) for binary y_true: the probability that a random positive scores above a
/// random negative, ties counting 1/2 (Mann-Whitney U / (P N); with weights, each pair counts
/// w_pos * w_neg). O(n): unweighted inputs of >= 32768 samples with at most 65536 distinct
/// scores are counted per distinct score in one pass (a table that stays in cache); otherwise
/// the scores of each class are LSD radix-sorted (11-bit digits) and merged once. Both paths are
/// OpenMP-parallel above 131072 samples and count pairs in exact integers when unweighted.
/// Memory: the radix path takes two buffers of n keys (n key+weight records when weighted).
/// Throws uvp::invalid_argument when y_true holds one class only (sklearn: "Only one class
/// present in y_true. ROC AUC score is not defined in that case.") or when the weights of a
/// class sum to 0 (sklearn returns nan).
template <class T>
double roc_auc(Span<const T> y_true, Span<const T> y_score, Span<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::roc_auc";
  return detail::with_sorted_scores<T>(
      where, y_true, y_score, sample_weight, [&](const auto& s) -> double {
        detail::require_both_classes(where, s, "ROC AUC");
        using S = std::remove_cv_t<std::remove_reference_t<decltype(s)>>;
        using K = detail::score_key_t<T>;
        if constexpr (std::is_same_v<S, detail::GroupedScores<K>>) {
          return detail::roc_auc_from_groups(s);
        } else if constexpr (std::is_same_v<S, detail::ClassSortedScores<K>>) {
          return detail::roc_auc_from_sorted(s.neg, s.n_neg, s.pos, s.n_pos);
        } else {
          const double wn = detail::class_weight_total(s.neg, s.n_neg);
          const double wp = detail::class_weight_total(s.pos, s.n_pos);
          detail::require_class_weight(where, wn, "negative", "ROC AUC");
          detail::require_class_weight(where, wp, "positive", "ROC AUC");
          // Pairs (pos above neg) + 1/2 (tied): per threshold, the negatives' new weight times
          // the positives' weight above it plus half of the positives' new weight.
          detail::CompensatedSum area;
          double prev_fps = 0, prev_tps = 0;
          detail::for_each_threshold_desc(s, [&](auto, double fps, double tps) {
            area.add((fps - prev_fps) * (prev_tps + 0.5 * (tps - prev_tps)));
            prev_fps = fps;
            prev_tps = tps;
          });
          return area.value() / (prev_fps * prev_tps);
        }
      });
}

/// Pointer overload: y_true, y_score (and sample_weight unless null) hold n values each.
template <class T>
double roc_auc(const T* y_true, const T* y_score, index n, const T* sample_weight = nullptr) {
  return roc_auc(Span<const T>(y_true, n), Span<const T>(y_score, n),
                 sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

/// ROC curve as sklearn.metrics.roc_curve(y_true, y_score, sample_weight=...,
/// drop_intermediate=...): with drop_intermediate (sklearn's default) a point is dropped when
/// both the fps and the tps sequences have a zero second difference there (collinear points;
/// the area does not change). Both classes must be present (sklearn returns nan rates and warns).
template <class T>
RocCurve<T> roc_curve(Span<const T> y_true, Span<const T> y_score, Span<const T> sample_weight = {},
                      bool drop_intermediate = true) {
  constexpr const char* where = "uvp::roc_curve";
  return detail::with_sorted_scores<T>(
      where, y_true, y_score, sample_weight, [&](const auto& s) -> RocCurve<T> {
        detail::require_both_classes(where, s, "the ROC curve");
        std::vector<double> fps, tps;
        std::vector<T> thr;
        detail::for_each_threshold_desc(s, [&](auto key, double f, double t) {
          fps.push_back(f);
          tps.push_back(t);
          thr.push_back(detail::key_to_score<T>(key));
        });
        detail::require_class_weight(where, fps.empty() ? 0.0 : fps.back(), "negative",
                                     "the ROC curve");
        detail::require_class_weight(where, tps.back(), "positive", "the ROC curve");
        const std::size_t m = fps.size();
        std::vector<std::size_t> keep;
        keep.reserve(m);
        for (std::size_t i = 0; i < m; ++i) {
          // np.diff(x, 2)[i - 1] = (x[i+1] - x[i]) - (x[i] - x[i-1]), evaluated the same way.
          const bool corner = !drop_intermediate || m <= 2 || i == 0 || i + 1 == m ||
                              (fps[i + 1] - fps[i]) - (fps[i] - fps[i - 1]) != 0 ||
                              (tps[i + 1] - tps[i]) - (tps[i] - tps[i - 1]) != 0;
          if (corner) keep.push_back(i);
        }
        RocCurve<T> out;
        const index k = index(keep.size()) + 1;
        out.fpr.resize(k);
        out.tpr.resize(k);
        out.thresholds.resize(k);
        out.fpr[0] = 0;
        out.tpr[0] = 0;
        out.thresholds[0] = thr[keep[0]] + T(1);
        const double fn = fps.back(), tn = tps.back();
        for (index i = 1; i < k; ++i) {
          const std::size_t src = keep[std::size_t(i - 1)];
          out.fpr[i] = fps[src] / fn;
          out.tpr[i] = tps[src] / tn;
          out.thresholds[i] = thr[src];
        }
        return out;
      });
}

/// Pointer overload of roc_curve.
template <class T>
RocCurve<T> roc_curve(const T* y_true, const T* y_score, index n, const T* sample_weight = nullptr,
                      bool drop_intermediate = true) {
  return roc_curve(Span<const T>(y_true, n), Span<const T>(y_score, n),
                   sample_weight ? Span<const T>(sample_weight, n) : Span<const T>(),
                   drop_intermediate);
}

/// Precision-recall curve as sklearn.metrics.precision_recall_curve(y_true, y_score,
/// sample_weight=...) in sklearn 1.2 (every distinct score is a threshold; no truncation at full
/// recall). precision = tp / (tp + fp), recall = tp / P. Needs at least one positive (sklearn
/// warns and sets recall to 1); negatives may be absent.
template <class T>
PrecisionRecallCurve<T> precision_recall_curve(Span<const T> y_true, Span<const T> y_score,
                                               Span<const T> sample_weight = {}) {
  constexpr const char* where = "uvp::precision_recall_curve";
  return detail::with_sorted_scores<T>(
      where, y_true, y_score, sample_weight, [&](const auto& s) -> PrecisionRecallCurve<T> {
        if (s.n_pos == 0)
          detail::raise<invalid_argument>(where, ": y_true has no positive sample (all ", s.n_neg,
                                          " labels are 0); recall is not defined");
        std::vector<double> fps, tps;
        std::vector<T> thr;
        detail::for_each_threshold_desc(s, [&](auto key, double f, double t) {
          fps.push_back(f);
          tps.push_back(t);
          thr.push_back(detail::key_to_score<T>(key));
        });
        detail::require_class_weight(where, tps.empty() ? 0.0 : tps.back(), "positive",
                                     "recall");
        const index m = index(fps.size());
        PrecisionRecallCurve<T> out;
        out.precision.resize(m + 1);
        out.recall.resize(m + 1);
        out.thresholds.resize(m);
        const double total = tps.back();
        for (index i = 0; i < m; ++i) {
          const std::size_t src = std::size_t(m - 1 - i);
          const double ps = tps[src] + fps[src];
          out.precision[i] = ps != 0 ? tps[src] / ps : 0.0;
          out.recall[i] = tps[src] / total;
          out.thresholds[i] = thr[src];
        }
        out.precision[m] = 1;
        out.recall[m] = 0;
        return out;
      });
}

/// Pointer overload of precision_recall_curve.
template <class T>
PrecisionRecallCurve<T> precision_recall_curve(const T* y_true, const T* y_score, index n,
                                               const T* sample_weight = nullptr) {
  return precision_recall_curve(Span<const T>(y_true, n), Span<const T>(y_score, n),
                                sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

namespace detail {
template <class T>
double average_precision_impl(const char* where, Span<const T> y_true, Span<const T> y_score,
                              Span<const T> sample_weight) {
  return with_sorted_scores<T>(where, y_true, y_score, sample_weight, [&](const auto& s) -> double {
    if (s.n_pos == 0)
      raise<invalid_argument>(where, ": y_true has no positive sample (all ", s.n_neg,
                              " labels are 0); average precision is not defined");
    const double total = positive_weight_total(s);
    require_class_weight(where, total, "positive", "average precision");
    CompensatedSum ap;
    double prev_recall = 0;
    for_each_threshold_desc(s, [&](auto, double fps, double tps) {
      const double recall = tps / total;
      const double ps = tps + fps;
      // (R_i - R_{i-1}) P_i with each factor rounded as sklearn rounds it.
      ap.add(-((prev_recall - recall) * (ps != 0 ? tps / ps : 0.0)));
      prev_recall = recall;
    });
    return ap.value();
  });
}
}  // namespace detail

/// Average precision, equal to sklearn.metrics.average_precision_score(y_true, y_score,
/// sample_weight=...): the step-wise area under the PR curve, AP = sum_i (R_i - R_{i-1}) P_i over
/// the distinct thresholds in decreasing order (R_{-1} = 0). Tied scores form one threshold, so
/// they enter with their pooled precision (no interpolation, no trapezoid). O(n) like roc_auc.
/// Needs at least one positive with weight > 0 (sklearn warns and returns 0); with no negatives
/// the result is 1.
template <class T>
double average_precision(Span<const T> y_true, Span<const T> y_score,
                         Span<const T> sample_weight = {}) {
  return detail::average_precision_impl("uvp::average_precision", y_true, y_score, sample_weight);
}

/// Pointer overload of average_precision.
template <class T>
double average_precision(const T* y_true, const T* y_score, index n,
                         const T* sample_weight = nullptr) {
  return average_precision(Span<const T>(y_true, n), Span<const T>(y_score, n),
                           sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

/// PR AUC: the same number as average_precision (sklearn's average_precision_score), the
/// recommended summary of the PR curve; it is not the trapezoidal sklearn.metrics.auc(recall,
/// precision), which over-estimates with a linear interpolation between points.
template <class T>
double pr_auc(Span<const T> y_true, Span<const T> y_score, Span<const T> sample_weight = {}) {
  return detail::average_precision_impl("uvp::pr_auc", y_true, y_score, sample_weight);
}

/// Pointer overload of pr_auc.
template <class T>
double pr_auc(const T* y_true, const T* y_score, index n, const T* sample_weight = nullptr) {
  return pr_auc(Span<const T>(y_true, n), Span<const T>(y_score, n),
                sample_weight ? Span<const T>(sample_weight, n) : Span<const T>());
}

}  // namespace uvp
