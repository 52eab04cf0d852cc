// SPDX-License-Identifier: Apache-2.0
// Tests of uvp/metrics/regression.hpp against scikit-learn fixtures.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "metrics_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/metrics/regression.hpp"

namespace {

constexpr double rel = uvp_test::tolerance<double>::rel;  // 1e-12

template <class T>
void check_regression(const uvp_test::MetricCase& c, const std::string& suffix, double tol) {
  const auto y = uvp_test::as<T>(c.at("y_true"));
  const auto p = uvp_test::as<T>(c.at("y_pred"));
  const auto w = c.has("w") ? uvp_test::as<T>(c.at("w")) : std::vector<T>();
  const uvp::Span<const T> ys(y), ps(p), ws(w);
  INFO("case " << c.name << ", reference " << (suffix.empty() ? std::string("same dtype") : suffix));
  UVP_CHECK_CLOSE(uvp::mae(ys, ps, ws), c.scalar("mae" + suffix), tol);
  UVP_CHECK_CLOSE(uvp::mse(ys, ps, ws), c.scalar("mse" + suffix), tol);
  UVP_CHECK_CLOSE(uvp::rmse(ys, ps, ws), c.scalar("rmse" + suffix), tol);
  UVP_CHECK_CLOSE(uvp::r2_score(ys, ps, ws), c.scalar("r2" + suffix), tol);
  const T* wp = w.empty() ? nullptr : w.data();
  const auto n = uvp::index(y.size());
  CHECK(uvp::mae(y.data(), p.data(), n, wp) == uvp::mae(ys, ps, ws));
  CHECK(uvp::mse(y.data(), p.data(), n, wp) == uvp::mse(ys, ps, ws));
  CHECK(uvp::rmse(y.data(), p.data(), n, wp) == uvp::rmse(ys, ps, ws));
  CHECK(uvp::r2_score(y.data(), p.data(), n, wp) == uvp::r2_score(ys, ps, ws));
}

}  // namespace

TEST_CASE("mae, mse, rmse and r2_score match sklearn") {
  const auto cases = uvp_test::read_metric_cases("regression.txt");
  CHECK(cases.size() == 9);
  for (const auto& c : cases) {
    if (c.is_float32()) {
      // sklearn in float32 rounds each difference to float; uvp forms them in double.
      check_regression<float>(c, "", uvp_test::tolerance<float>::rel);
      // Against sklearn on the same values in float64, uvp's float path is double-accurate.
      check_regression<float>(c, "_f64", 1e-11);
      check_regression<double>(c, "_f64", rel);
    } else {
      check_regression<double>(c, "", rel);
    }
  }
}

TEST_CASE("r2_score of a constant y_true: 1 if perfect else 0 (sklearn 1.2 force_finite), detected exactly") {
  const std::vector<double> c3(3, 0.1), off{0.1, 0.2, 0.1};
  CHECK(uvp::r2_score<double>(c3, c3) == 1.0);
  // sklearn's rounded mean of {0.1, 0.1, 0.1} is not 0.1 and it returns about -1.7e31 here;
  // uvp sees that y_true is constant.
  CHECK(uvp::r2_score<double>(c3, off) == 0.0);
  CHECK(uvp::r2_score<float>(std::vector<float>(4, 0.3f), std::vector<float>{0.3f, 0.3f, 0.3f, 0.31f}) == 0.0);
}

TEST_CASE("float inputs are accumulated in double") {
  // 2^21 errors of exactly 2^-10: a float running sum would stall long before the end.
  const std::size_t n = std::size_t(1) << 21;
  const std::vector<float> y(n, 1.0f), p(n, 1.0f + 0x1.0p-10f);
  CHECK(uvp::mae<float>(y, p) == 0x1.0p-10);
  CHECK(uvp::mse<float>(y, p) == 0x1.0p-20);
  CHECK(uvp::rmse<float>(y, p) == 0x1.0p-10);
  std::vector<float> ramp(n), shifted(n);
  for (std::size_t i = 0; i < n; ++i) {
    ramp[i] = float(i % 1000) * 0.5f;
    shifted[i] = ramp[i] + 0.25f;
  }
  CHECK(uvp::mae<float>(ramp, shifted) == 0.25);
}

TEST_CASE("regression metrics reject bad input with messages naming function, argument and value") {
  using uvp::invalid_argument;
  using uvp::shape_error;
  const std::vector<double> y{1, 2, 3, 4}, p{1.5, 2, 2.5, 4}, p3{1, 2, 3}, none;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mae<double>(none, none), invalid_argument, "uvp::mae: y_true is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mse<double>(y, p3), shape_error, "uvp::mse: y_pred has size 3, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::rmse<double>(y, p, p3), shape_error, "uvp::rmse: sample_weight has size 3, expected 4");
  auto bad = y;
  bad[2] = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::r2_score<double>(bad, p), invalid_argument, "uvp::r2_score: y_true has a non-finite value (inf) at flat index 2");
  bad[2] = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mae<double>(y, bad), invalid_argument, "uvp::mae: y_pred has a non-finite value (nan) at flat index 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mse<double>(y, p, std::vector<double>{1, -2, 1, 1}), invalid_argument, "uvp::mse: sample_weight[1] = -2 must be finite and >= 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mae<double>(y, p, bad), invalid_argument, "uvp::mae: sample_weight[2] = nan must be finite and >= 0");
  const std::vector<double> zero_w(4, 0.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::r2_score<double>(y, p, zero_w), invalid_argument, "uvp::r2_score: sample_weight sums to 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::rmse<double>(y, p, zero_w), invalid_argument, "uvp::rmse: sample_weight sums to 0");
  const std::vector<double> one{2.0};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::r2_score<double>(one, one), invalid_argument, "uvp::r2_score: y_true has 1 sample; R^2 is not defined for fewer than 2 samples");
  CHECK(uvp::mae<double>(one, std::vector<double>{2.5}) == 0.5);
}
