// SPDX-License-Identifier: Apache-2.0
// Tests of uvp/metrics/classification.hpp against scikit-learn fixtures.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "metrics_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/metrics/classification.hpp"

namespace {

using uvp_test::MetricCase;

constexpr double rel = uvp_test::tolerance<double>::rel;  // 1e-12

/// Label metrics of one fixture case with labels (and weights) stored in T: float, double or an
/// integer type. Counting is exact in every T, so all are held to 1e-12, except fractional
/// weights rounded to float (sklearn had them in float64).
template <class T>
void check_label_case(const MetricCase& c) {
  const std::string type_name = sizeof(T) == 4 ? (std::is_integral_v<T> ? "int" : "float") : "double";
  INFO("case " << c.name << " as " << type_name);
  const auto y = uvp_test::as<T>(c.at("y_true"));
  const auto p = uvp_test::as<T>(c.at("y_pred"));
  const auto w = c.has("w") ? uvp_test::as<T>(c.at("w")) : std::vector<T>();
  const uvp::Span<const T> ys(y), ps(p), ws(w);
  const double tol = std::is_same_v<T, float> && !w.empty() ? uvp_test::tolerance<float>::rel : rel;

  UVP_CHECK_CLOSE(uvp::accuracy(ys, ps, ws), c.scalar("accuracy"), tol);
  UVP_CHECK_CLOSE(uvp::accuracy(y.data(), p.data(), uvp::index(y.size()), w.empty() ? nullptr : w.data()),
                  c.scalar("accuracy"), tol);
  if (c.has("precision_pos1")) {
    for (const int pos : {1, 0}) {
      const uvp::PrfOptions o{uvp::Average::binary, double(pos)};
      const std::string sfx = "_pos" + std::to_string(pos);
      UVP_CHECK_CLOSE(uvp::precision(ys, ps, o, ws), c.scalar("precision" + sfx), tol);
      UVP_CHECK_CLOSE(uvp::recall(ys, ps, o, ws), c.scalar("recall" + sfx), tol);
      UVP_CHECK_CLOSE(uvp::f1_score(ys, ps, o, ws), c.scalar("f1" + sfx), tol);
    }
    // The default is binary with pos_label 1.
    CHECK(uvp::f1_score(ys, ps, {}, ws) == uvp::f1_score(ys, ps, {uvp::Average::binary, 1}, ws));
    CHECK(uvp::precision(y.data(), p.data(), uvp::index(y.size()), {}, w.empty() ? nullptr : w.data()) ==
          uvp::precision(ys, ps, {}, ws));
  }
  const uvp::PrfOptions macro{uvp::Average::macro};
  UVP_CHECK_CLOSE(uvp::precision(ys, ps, macro, ws), c.scalar("precision_macro"), tol);
  UVP_CHECK_CLOSE(uvp::recall(ys, ps, macro, ws), c.scalar("recall_macro"), tol);
  UVP_CHECK_CLOSE(uvp::f1_score(ys, ps, macro, ws), c.scalar("f1_macro"), tol);
  UVP_CHECK_CLOSE(uvp::recall(y.data(), p.data(), uvp::index(y.size()), macro, w.empty() ? nullptr : w.data()),
                  c.scalar("recall_macro"), tol);
  UVP_CHECK_CLOSE(uvp::f1_score(y.data(), p.data(), uvp::index(y.size()), macro, w.empty() ? nullptr : w.data()),
                  c.scalar("f1_macro"), tol);

  const auto& labels = c.at("labels");
  const auto& expected = c.at("confusion");
  const std::size_t k = labels.size();
  REQUIRE(expected.size() == k * k);
  if (w.empty()) {
    const auto cm = uvp::confusion_matrix(ys, ps);
    uvp_test::check_all_close(cm.labels, labels, 0.0, "labels");
    REQUIRE(std::size_t(cm.counts.rows()) == k);
    for (std::size_t i = 0; i < k * k; ++i) CHECK(cm.counts(uvp::index(i / k), uvp::index(i % k)) == uvp::index(expected[i]));
  } else {
    const auto cm = uvp::confusion_matrix(ys, ps, ws);
    uvp_test::check_all_close(cm.labels, labels, 0.0, "labels");
    REQUIRE(std::size_t(cm.counts.rows()) == k);
    for (std::size_t i = 0; i < k * k; ++i)
      UVP_CHECK_CLOSE(cm.counts(uvp::index(i / k), uvp::index(i % k)), expected[i], tol);
  }
}

}  // namespace

TEST_CASE("accuracy, precision, recall, f1_score and confusion_matrix match sklearn") {
  const auto cases = uvp_test::read_metric_cases("classification.txt");
  int label_cases = 0;
  for (const auto& c : cases) {
    if (!c.has("y_pred")) continue;
    ++label_cases;
    check_label_case<double>(c);
    check_label_case<float>(c);
    if (!c.has("w")) check_label_case<std::int32_t>(c);
  }
  CHECK(label_cases == 8);
}

TEST_CASE("zero division gives 0, as sklearn 1.2's zero_division='warn'") {
  const std::vector<double> y{1, 0, 1, 0, 0}, none_predicted{0, 0, 0, 0, 0};
  CHECK(uvp::precision<double>(y, none_predicted) == 0.0);
  CHECK(uvp::recall<double>(y, none_predicted) == 0.0);
  CHECK(uvp::f1_score<double>(y, none_predicted) == 0.0);
  CHECK(uvp::recall<double>(none_predicted, y) == 0.0);  // no true positive exists
  CHECK(uvp::precision<double>(none_predicted, none_predicted) == 0.0);
  // pos_label 0 on the same data is well defined.
  CHECK(uvp::precision<double>(y, none_predicted, {uvp::Average::binary, 0}) == 0.6);
  CHECK(uvp::recall<double>(y, none_predicted, {uvp::Average::binary, 0}) == 1.0);
}

TEST_CASE("log_loss matches sklearn (eps = machine epsilon of the input type, as sklearn 1.2)") {
  const auto cases = uvp_test::read_metric_cases("classification.txt");
  int n = 0;
  for (const auto& c : cases) {
    if (!c.has("y_prob")) continue;
    ++n;
    INFO("case " << c.name);
    const double expected = c.scalar("log_loss");
    if (c.is_float32()) {
      const auto y = uvp_test::as<float>(c.at("y_true"));
      const auto p = uvp_test::as<float>(c.at("y_prob"));
      const auto w = c.has("w") ? uvp_test::as<float>(c.at("w")) : std::vector<float>();
      const double got = uvp::log_loss<float>(y, p, w);
      // sklearn computes in float32; uvp clips in float and sums in double, which is what
      // sklearn gives on the same values in float64 with eps = float's epsilon.
      UVP_CHECK_CLOSE(got, expected, uvp_test::tolerance<float>::rel);
      UVP_CHECK_CLOSE(got, c.scalar("log_loss_f64"), rel);
    } else {
      const auto y = c.at("y_true");
      const auto p = c.at("y_prob");
      const auto w = c.has("w") ? c.at("w") : std::vector<double>();
      const double got = c.has("eps") ? uvp::log_loss<double>(y, p, w, c.scalar("eps"))
                                      : uvp::log_loss<double>(y, p, w);
      UVP_CHECK_CLOSE(got, expected, rel);
      if (!c.has("eps"))
        UVP_CHECK_CLOSE(uvp::log_loss(y.data(), p.data(), uvp::index(y.size()), w.empty() ? nullptr : w.data()),
                        expected, rel);
    }
  }
  CHECK(n == 8);
  // eps = 0 lets a confident wrong prediction cost +inf, as in sklearn.
  CHECK(std::isinf(uvp::log_loss<double>(std::vector<double>{1, 0}, std::vector<double>{0.0, 0.5}, {}, 0.0)));
}

TEST_CASE("classification metrics reject bad input with messages naming function, argument and value") {
  using uvp::invalid_argument;
  using uvp::shape_error;
  const std::vector<double> y{0, 1, 1, 0, 1}, p{0, 1, 0, 0, 1}, p4{0, 1, 0, 0}, none;
  const uvp::PrfOptions macro{uvp::Average::macro};

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<double>(none, none), invalid_argument, "uvp::accuracy: y_true is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<double>(y, p4), shape_error, "uvp::accuracy: y_pred has size 4, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::f1_score<double>(y, p4), shape_error, "uvp::f1_score: y_pred has size 4, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::confusion_matrix<double>(y, p4), shape_error, "uvp::confusion_matrix: y_pred has size 4, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::precision<double>(y, p, {}, p4), shape_error, "uvp::precision: sample_weight has size 4, expected 5");

  auto frac = p;
  frac[2] = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<double>(y, frac), invalid_argument, "uvp::accuracy: y_pred[2] = 1.5 is not an integer class label");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::recall<double>(y, frac, macro), invalid_argument, "uvp::recall: y_pred[2] = 1.5 is not an integer class label");
  auto nan_y = y;
  nan_y[4] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::confusion_matrix<double>(nan_y, p), invalid_argument, "uvp::confusion_matrix: y_true[4] = nan is not an integer class label");
  auto three = y;
  three[1] = 3;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::precision<double>(three, p), invalid_argument, "uvp::precision: y_true[1] = 3 is not a binary label (expected 0 or 1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::f1_score<double>(y, three), invalid_argument, "uvp::f1_score: y_pred[1] = 3 is not a binary label");
  CHECK_NOTHROW(uvp::f1_score<double>(three, p, macro));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::recall<double>(y, p, {uvp::Average::binary, 2}), invalid_argument, "uvp::recall: pos_label = 2 is not a binary label (expected 0 or 1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::recall<double>(y, p, {static_cast<uvp::Average>(7)}), invalid_argument, "uvp::recall: average = 7 is not a known Average");

  std::vector<double> w{1, 1, -0.5, 1, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<double>(y, p, w), invalid_argument, "uvp::accuracy: sample_weight[2] = -0.5 must be finite and >= 0");
  w[2] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::confusion_matrix<double>(y, p, w), invalid_argument, "uvp::confusion_matrix: sample_weight[2] = nan must be finite and >= 0");
  const std::vector<double> zero_w(5, 0.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<double>(y, p, zero_w), invalid_argument, "uvp::accuracy: sample_weight sums to 0; at least one weight must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::f1_score<double>(y, p, macro, zero_w), invalid_argument, "uvp::f1_score: sample_weight sums to 0");

  // log_loss
  const std::vector<double> prob{0.1, 0.8, 0.6, 0.3, 0.9};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(none, none), invalid_argument, "uvp::log_loss: y_true is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, p4), shape_error, "uvp::log_loss: y_prob has size 4, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(three, prob), invalid_argument, "uvp::log_loss: y_true[1] = 3 is not a binary label");
  auto bad_prob = prob;
  bad_prob[3] = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, bad_prob), invalid_argument, "uvp::log_loss: y_prob[3] = 1.5 is not a probability (expected a value in [0, 1])");
  bad_prob[3] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, bad_prob), invalid_argument, "uvp::log_loss: y_prob[3] = nan is not a probability");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, prob, {}, 0.75), invalid_argument, "uvp::log_loss: eps must be in [0, 0.5], got 0.75");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, prob, {}, -0.25), invalid_argument, "uvp::log_loss: eps must be in [0, 0.5], got -0.25");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, prob, p4), shape_error, "uvp::log_loss: sample_weight has size 4, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, prob, std::vector<double>{1, 1, 1, -1, 1}), invalid_argument, "uvp::log_loss: sample_weight[3] = -1 must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::log_loss<double>(y, prob, zero_w), invalid_argument, "uvp::log_loss: sample_weight sums to 0");
}
