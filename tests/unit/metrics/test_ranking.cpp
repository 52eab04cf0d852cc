// SPDX-License-Identifier: Apache-2.0
// Tests of uvp/metrics/ranking.hpp against scikit-learn fixtures and an independent reference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "metrics_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/metrics/ranking.hpp"

namespace {

using uvp_test::check_all_close;
using uvp_test::MetricCase;

constexpr double rel = uvp_test::tolerance<double>::rel;  // 1e-12

/// Runs every ranking function on one fixture case with inputs of type T and compares them to
/// sklearn. Ranking is exact in float as in double, so both are held to 1e-12.
template <class T>
void check_ranking_case(const MetricCase& c) {
  const std::string type_name = sizeof(T) == 4 ? "float" : "double";
  INFO("case " << c.name << " as " << type_name);
  const auto y = uvp_test::as<T>(c.at("y_true"));
  const auto s = uvp_test::as<T>(c.at("y_score"));
  const auto w = c.has("w") ? uvp_test::as<T>(c.at("w")) : std::vector<T>();
  const uvp::Span<const T> ys(y), ss(s), ws(w);

  if (c.has("roc_auc")) {
    UVP_CHECK_CLOSE(uvp::roc_auc(ys, ss, ws), c.scalar("roc_auc"), rel);
    UVP_CHECK_CLOSE(uvp::roc_auc(y.data(), s.data(), uvp::index(y.size()), w.empty() ? nullptr : w.data()),
                    c.scalar("roc_auc"), rel);
    const auto roc = uvp::roc_curve(ys, ss, ws);
    check_all_close(roc.fpr, c.at("roc_fpr"), rel, "fpr");
    check_all_close(roc.tpr, c.at("roc_tpr"), rel, "tpr");
    check_all_close(roc.thresholds, uvp_test::as<T>(c.at("roc_thr")), 0.0, "thresholds");
    const auto all = uvp::roc_curve(ys, ss, ws, false);
    check_all_close(all.fpr, c.at("roc_all_fpr"), rel, "fpr (all)");
    check_all_close(all.tpr, c.at("roc_all_tpr"), rel, "tpr (all)");
    check_all_close(all.thresholds, uvp_test::as<T>(c.at("roc_all_thr")), 0.0, "thresholds (all)");
  }
  UVP_CHECK_CLOSE(uvp::average_precision(ys, ss, ws), c.scalar("average_precision"), rel);
  UVP_CHECK_CLOSE(uvp::pr_auc(ys, ss, ws), c.scalar("average_precision"), rel);
  const auto pr = uvp::precision_recall_curve(ys, ss, ws);
  check_all_close(pr.precision, c.at("pr_precision"), rel, "precision");
  check_all_close(pr.recall, c.at("pr_recall"), rel, "recall");
  check_all_close(pr.thresholds, uvp_test::as<T>(c.at("pr_thr")), 0.0, "pr thresholds");
}

/// Independent reference: sort (score, label, weight) with std::sort, then count pairs per
/// group of equal scores (ties 1/2) in long double.
template <class T>
double reference_auc(const std::vector<T>& y, const std::vector<T>& s, const std::vector<T>& w) {
  std::vector<std::size_t> order(y.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] < s[b]; });
  long double neg_below = 0, area = 0, wpos = 0, wneg = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    long double gp = 0, gn = 0;
    for (; j < order.size() && s[order[j]] == s[order[i]]; ++j) {
      const long double wi = w.empty() ? 1.0L : (long double)w[order[j]];
      (y[order[j]] == T(1) ? gp : gn) += wi;
    }
    area += gp * (neg_below + gn / 2);
    neg_below += gn;
    wpos += gp;
    wneg += gn;
    i = j;
  }
  return double(area / (wpos * wneg));
}

template <class T>
void make_large(std::size_t n, double quantum, bool weighted, std::vector<T>& y, std::vector<T>& s,
                std::vector<T>& w) {
  uvp::Rng rng(77);
  y.resize(n);
  s.resize(n);
  w.assign(weighted ? n : 0, T(0));
  for (std::size_t i = 0; i < n; ++i) {
    const bool pos = rng.uniform() < 0.05;
    const double z = rng.normal(pos ? 0.8 : 0.0, 1.0);
    y[i] = pos ? T(1) : T(0);
    s[i] = T(quantum > 0 ? std::round(z / quantum) * quantum : z);
    if (weighted) w[i] = rng.uniform() < 0.1 ? T(0) : T(rng.uniform(0.0, 3.0));
  }
}

}  // namespace

TEST_CASE("roc_auc, roc_curve, average_precision and precision_recall_curve match sklearn") {
  const auto cases = uvp_test::read_metric_cases("ranking.txt");
  CHECK(cases.size() >= 14);
  for (const auto& c : cases) {
    if (c.is_float32()) {
      check_ranking_case<float>(c);
      check_ranking_case<double>(c);  // the same values ranked in double: same result
    } else {
      check_ranking_case<double>(c);
    }
  }
}

TEST_CASE_TEMPLATE("roc_auc on 200,000 samples (parallel radix path) equals an independent reference",
                   T, float, double) {
  for (const bool weighted : {false, true}) {
    for (const double quantum : {1e-3, 0.0}) {
      INFO("weighted " << weighted << ", quantum " << quantum);
      std::vector<T> y, s, w;
      make_large<T>(200000, quantum, weighted, y, s, w);
      const double expected = reference_auc(y, s, w);
      const double one = [&] {
        uvp::ThreadCountGuard g(1);
        return uvp::roc_auc<T>(y, s, w);
      }();
      UVP_CHECK_CLOSE(one, expected, 1e-12);
      if (uvp::has_openmp) {
        uvp::ThreadCountGuard g(2);
        CHECK(uvp::roc_auc<T>(y, s, w) == one);
        // The sorted curve is the same whatever the thread count.
        const auto pr2 = uvp::precision_recall_curve<T>(y, s, w);
        uvp::ThreadCountGuard g1(1);
        const auto pr1 = uvp::precision_recall_curve<T>(y, s, w);
        CHECK(pr1.precision == pr2.precision);
        CHECK(pr1.thresholds == pr2.thresholds);
      }
    }
  }
}

TEST_CASE_TEMPLATE("distinct-score counting and the radix sort give the same thresholds and counts", T,
                   float, double) {
  using K = uvp::detail::score_key_t<T>;
  std::vector<T> y, s, w;
  make_large<T>(50000, 1e-2, false, y, s, w);
  const auto n = uvp::index(y.size());
  uvp::detail::GroupedScores<K> grouped;
  REQUIRE(uvp::detail::group_distinct_scores("t", y.data(), s.data(), n, grouped));
  CHECK(grouped.groups.size() < 2000);
  uvp::detail::ScoreSortBuffers<K> buffers;
  const auto sorted = uvp::detail::sort_scores_by_class<K>("t", y.data(), s.data(), static_cast<const T*>(nullptr), n, buffers);
  CHECK(grouped.n_neg == sorted.n_neg);
  CHECK(grouped.n_pos == sorted.n_pos);
  struct Point {
    K key;
    double fps, tps;
  };
  std::vector<Point> a, b;
  uvp::detail::for_each_threshold_desc(grouped, [&](K k, double f, double t) { a.push_back({k, f, t}); });
  uvp::detail::for_each_threshold_desc(sorted, [&](K k, double f, double t) { b.push_back({k, f, t}); });
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() == grouped.groups.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].key == b[i].key);
    CHECK(a[i].fps == b[i].fps);
    CHECK(a[i].tps == b[i].tps);
  }
  CHECK(uvp::detail::roc_auc_from_groups(grouped) ==
        uvp::detail::roc_auc_from_sorted(sorted.neg, sorted.n_neg, sorted.pos, sorted.n_pos));
  CHECK(uvp::roc_auc<T>(y, s) == doctest::Approx(reference_auc(y, s, w)).epsilon(1e-13));

  // Past 65536 distinct scores the counting gives up (here only in the last samples), and the
  // public functions fall back to the radix sort with the same result as the reference.
  std::vector<T> y2(70000 + 70000), s2(y2.size());
  for (std::size_t i = 0; i < y2.size(); ++i) {
    y2[i] = T(i % 3 == 0);
    s2[i] = i < 70000 ? T(int(i % 7)) : T(double(i) * 1e-3);
  }
  CHECK_FALSE(uvp::detail::group_distinct_scores("t", y2.data(), s2.data(), uvp::index(y2.size()), grouped));
  CHECK(uvp::roc_auc<T>(y2, s2) == doctest::Approx(reference_auc(y2, s2, w)).epsilon(1e-13));
  const auto pr = uvp::precision_recall_curve<T>(y2, s2);
  CHECK(pr.thresholds.size() == 70000 + 7);
}

TEST_CASE("roc_auc: ties count one half; exact small cases") {
  const std::vector<double> y{0, 1, 0, 1};
  CHECK(uvp::roc_auc<double>(y, std::vector<double>{0.5, 0.5, 0.5, 0.5}) == 0.5);
  CHECK(uvp::roc_auc<double>(y, std::vector<double>{0.1, 0.9, 0.2, 0.8}) == 1.0);
  CHECK(uvp::roc_auc<double>(y, std::vector<double>{0.9, 0.1, 0.8, 0.2}) == 0.0);
  // positive 1 ties negative 0 (1/2), beats negative 2; positive 3 beats both: (1.5 + 2) / 4.
  CHECK(uvp::roc_auc<double>(y, std::vector<double>{0.3, 0.3, 0.1, 0.7}) == 0.875);
  // A weight of 2 on a sample is the sample counted twice.
  const std::vector<double> s{0.3, 0.3, 0.1, 0.7};
  CHECK(uvp::roc_auc<double>(y, s, std::vector<double>{2, 1, 1, 1}) ==
        doctest::Approx(uvp::roc_auc<double>(std::vector<double>{0, 0, 1, 0, 1}, std::vector<double>{0.3, 0.3, 0.3, 0.1, 0.7})));
}

TEST_CASE("score keys: order-preserving, -0 equals +0, round trip") {
  using uvp::detail::key_to_score;
  using uvp::detail::score_to_key;
  const float fv[] = {-std::numeric_limits<float>::max(), -1e10f, -1.0f, -1e-30f,
                      -std::numeric_limits<float>::denorm_min(), 0.0f,
                      std::numeric_limits<float>::denorm_min(), 1e-30f, 0.5f, 1.0f, 3e38f};
  for (std::size_t i = 0; i + 1 < std::size(fv); ++i) CHECK(score_to_key(fv[i]) < score_to_key(fv[i + 1]));
  for (float v : fv) CHECK(key_to_score<float>(score_to_key(v)) == v);
  CHECK(score_to_key(-0.0f) == score_to_key(0.0f));
  CHECK(score_to_key(-0.0) == score_to_key(0.0));
  const double dv[] = {-1e300, -2.5, -1e-310, 0.0, 4.9e-324, 1e-300, 7.25, 1e308};
  for (std::size_t i = 0; i + 1 < std::size(dv); ++i) CHECK(score_to_key(dv[i]) < score_to_key(dv[i + 1]));
  for (double v : dv) CHECK(key_to_score<double>(score_to_key(v)) == v);
}

TEST_CASE("ranking metrics reject bad input with messages naming function, argument and value") {
  const std::vector<double> y{0, 1, 0, 1, 1, 0, 0, 1, 0, 1};
  const std::vector<double> s{0.1, 0.4, 0.35, 0.8, 0.5, 0.2, 0.3, 0.9, 0.05, 0.6};
  const std::vector<double> s9(s.begin(), s.end() - 1);
  using uvp::invalid_argument;
  using uvp::shape_error;
  const std::vector<double> none;

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(none, none), invalid_argument,
                               "uvp::roc_auc: y_true is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, s9), shape_error,
                               "uvp::roc_auc: y_score has size 9, expected 10");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, s, s9), shape_error,
                               "uvp::roc_auc: sample_weight has size 9, expected 10");
  auto bad = y;
  bad[3] = 2;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(bad, s), invalid_argument,
                               "uvp::roc_auc: y_true[3] = 2 is not a binary label (expected 0 or 1)");
  bad[3] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::average_precision<double>(bad, s), invalid_argument,
                               "uvp::average_precision: y_true[3] = -1 is not a binary label");
  auto nan_s = s;
  nan_s[2] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, nan_s), invalid_argument,
                               "uvp::roc_auc: y_score has a non-finite value (nan) at flat index 2");
  auto inf_s = s;
  inf_s[7] = -std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_curve<double>(y, inf_s), invalid_argument,
                               "uvp::roc_curve: y_score has a non-finite value (-inf) at flat index 7");
  std::vector<float> nan_f(s.begin(), s.end()), yf(y.begin(), y.end());
  nan_f[5] = std::nanf("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::pr_auc<float>(yf, nan_f), invalid_argument,
                               "uvp::pr_auc: y_score has a non-finite value (nan) at flat index 5");

  std::vector<double> w(10, 1.0);
  w[1] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, s, w), invalid_argument,
                               "uvp::roc_auc: sample_weight[1] = -1 must be finite and >= 0");
  w[1] = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::precision_recall_curve<double>(y, s, w), invalid_argument,
                               "uvp::precision_recall_curve: sample_weight[1] = inf must be finite and >= 0");

  const std::vector<double> ones(10, 1.0), zeros(10, 0.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(ones, s), invalid_argument,
                               "uvp::roc_auc: only one class present in y_true (all 10 labels are 1); ROC AUC is not defined");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(zeros, s), invalid_argument,
                               "(all 10 labels are 0)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_curve<double>(zeros, s), invalid_argument,
                               "uvp::roc_curve: only one class present in y_true");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::average_precision<double>(zeros, s), invalid_argument,
                               "uvp::average_precision: y_true has no positive sample (all 10 labels are 0)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::precision_recall_curve<double>(zeros, s), invalid_argument,
                               "uvp::precision_recall_curve: y_true has no positive sample");

  // Both classes present, but one has total weight 0.
  std::vector<double> wz(10, 1.0);
  for (std::size_t i = 0; i < 10; ++i)
    if (y[i] == 1) wz[i] = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, s, wz), invalid_argument,
                               "uvp::roc_auc: the positive samples' sample_weight sums to 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_curve<double>(y, s, wz), invalid_argument,
                               "uvp::roc_curve: the positive samples' sample_weight sums to 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::average_precision<double>(y, s, wz), invalid_argument,
                               "uvp::average_precision: the positive samples' sample_weight sums to 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::precision_recall_curve<double>(y, s, wz), invalid_argument,
                               "the positive samples' sample_weight sums to 0");
  for (std::size_t i = 0; i < 10; ++i) wz[i] = y[i] == 1 ? 1.0 : 0.0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_auc<double>(y, s, wz), invalid_argument,
                               "uvp::roc_auc: the negative samples' sample_weight sums to 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::roc_curve<double>(y, s, zeros), invalid_argument,
                               "uvp::roc_curve: the negative samples' sample_weight sums to 0");
  // ... which average precision does not need: every threshold has precision 1.
  CHECK(uvp::average_precision<double>(y, s, wz) == 1.0);
}
