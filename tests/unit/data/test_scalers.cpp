// SPDX-License-Identifier: Apache-2.0
// Tests of StandardScaler and MinMaxScaler against scikit-learn (tests/fixtures/make_data_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "support/test_support.hpp"
#include "uvp/data/scalers.hpp"

namespace {

/// A fixture written by write_matrix: "rows cols" then the values row-major.
template <class T>
uvp::Matrix<T> load(const std::string& name) {
  const auto v = uvp_test::read_numbers(uvp_test::fixture_path("data/" + name));
  REQUIRE(v.size() >= 2);
  const auto r = static_cast<uvp::index>(v[0]), c = static_cast<uvp::index>(v[1]);
  REQUIRE(v.size() == std::size_t(2 + r * c));
  uvp::Matrix<T> m(r, c);
  for (uvp::index i = 0; i < r * c; ++i) m.data()[i] = static_cast<T>(v[std::size_t(2 + i)]);
  return m;
}

template <class T>
uvp::Vector<T> load_vector(const std::string& name) {
  const uvp::Matrix<T> m = load<T>(name);
  return Eigen::Map<const uvp::Vector<T>>(m.data(), m.size());
}

template <class A, class B>
double rel(const A& a, const B& b) {
  return uvp_test::rel_error(a.reshaped(), b.reshaped());
}

}  // namespace

TEST_CASE("StandardScaler<double> matches sklearn: mean_, var_, scale_, transform") {
  const auto X = load<double>("scaler_X.txt");
  uvp::StandardScaler<double> s;
  const uvp::Matrix<double> Z = s.fit_transform(X);
  CHECK(s.n_samples_seen() == X.rows());
  CHECK(s.n_features() == 5);
  CHECK(rel(s.mean(), load_vector<double>("standard_mean.txt")) < 1e-15);
  // Column 1 has a tiny variance (1e-7): compare column by column.
  const auto var = load_vector<double>("standard_var.txt");
  for (uvp::index j = 0; j < 5; ++j)
    if (j != 2) CHECK(s.var()[j] == doctest::Approx(var[j]).epsilon(1e-12));
  CHECK(s.var()[2] < 1e-28);  // the constant column: rounding noise only
  const auto scale = load_vector<double>("standard_scale.txt");
  CHECK(s.scale()[2] == 1.0);  // constant column -> scale 1, as sklearn
  for (uvp::index j = 0; j < 5; ++j) CHECK(s.scale()[j] == doctest::Approx(scale[j]).epsilon(1e-12));
  const auto ref = load<double>("standard_transform.txt");
  // Column by column: the constant column maps to ~0 (rounding noise of the mean).
  for (uvp::index j = 0; j < 5; ++j) {
    CAPTURE(j);
    if (j == 2) CHECK(Z.col(j).cwiseAbs().maxCoeff() < 1e-14);
    else CHECK(uvp_test::rel_error(Z.col(j), ref.col(j)) < 1e-10);
  }
  // Columns of a standardized matrix have mean 0 and population std 1.
  CHECK(std::abs(Z.col(0).mean()) < 1e-14);
  CHECK(std::sqrt(Z.col(0).squaredNorm() / double(Z.rows())) == doctest::Approx(1.0).epsilon(1e-13));
  // Round trip.
  CHECK(rel(s.inverse_transform(Z), X) < 1e-15);
}

TEST_CASE("StandardScaler<float> matches sklearn on float32 input") {
  const auto X = load<float>("scaler_X.txt");
  uvp::StandardScaler<float> s;
  const uvp::Matrix<float> Z = s.fit_transform(X);
  const auto ref = load<float>("standard_transform_f32.txt");
  for (uvp::index j = 0; j < 5; ++j) {
    CAPTURE(j);
    if (j == 2) CHECK(Z.col(j).cwiseAbs().maxCoeff() == 0.0f);
    // Column 3 is 1e6 + N(0, 1): right only because the mean is kept in double.
    else CHECK(uvp_test::rel_error(Z.col(j), ref.col(j)) < 1e-6);
  }
  CHECK(s.scale()[2] == 1.0f);
  CHECK(rel(s.inverse_transform(Z), X) < 1e-6);
}

TEST_CASE("StandardScaler with_mean = false only divides") {
  const auto X = load<double>("scaler_X.txt");
  uvp::StandardScalerOptions o;
  o.with_mean = false;
  uvp::StandardScaler<double> s(o);
  const uvp::Matrix<double> Z = s.fit_transform(X);
  CHECK(rel(Z, load<double>("standard_nomean_transform.txt")) < 1e-14);
  CHECK(rel(s.inverse_transform(Z), X) < 1e-15);
}

TEST_CASE_TEMPLATE("StandardScaler: exact values on a small matrix", T, float, double) {
  uvp::Matrix<T> X(4, 2);
  X << 1, 5, 2, 5, 3, 5, 6, 5;
  uvp::StandardScaler<T> s;
  s.fit(X);
  CHECK(s.mean()[0] == 3.0);  // statistics are double whatever T
  CHECK(s.var()[0] == 3.5);   // ((-2)^2 + 1 + 0 + 9) / 4
  CHECK(s.scale()[0] == std::sqrt(3.5));
  CHECK(s.var()[1] == 0.0);
  CHECK(s.scale()[1] == 1.0);
  uvp::Matrix<T> Y = X;
  s.transform_inplace(Y);
  CHECK(Y(3, 0) == T(3.0 / std::sqrt(3.5)));
  CHECK(Y(0, 1) == T(0));
}

TEST_CASE("MinMaxScaler<double> matches sklearn with feature_range (-1, 2), with and without clip") {
  const auto X = load<double>("scaler_X.txt");
  uvp::MinMaxScalerOptions o;
  o.feature_min = -1;
  o.feature_max = 2;
  uvp::MinMaxScaler<double> s(o);
  const uvp::Matrix<double> Z = s.fit_transform(X);
  CHECK(rel(s.data_min(), load_vector<double>("minmax_data_min.txt")) == 0.0);
  CHECK(rel(s.data_max(), load_vector<double>("minmax_data_max.txt")) == 0.0);
  CHECK(rel(s.scale(), load_vector<double>("minmax_scale.txt")) < 1e-15);
  CHECK(rel(s.offset(), load_vector<double>("minmax_min.txt")) < 1e-15);
  CHECK(rel(Z, load<double>("minmax_transform.txt")) < 1e-12);
  CHECK(Z.col(2).cwiseEqual(-1.0).all());  // constant column -> feature_min
  CHECK(Z.col(0).minCoeff() == doctest::Approx(-1.0));
  CHECK(Z.col(0).maxCoeff() == doctest::Approx(2.0));
  CHECK(rel(s.inverse_transform(Z), X) < 1e-12);

  const auto Xnew = load<double>("minmax_X_new.txt");
  o.clip = true;
  uvp::MinMaxScaler<double> c(o);
  c.fit(X);
  const uvp::Matrix<double> C = c.transform(Xnew);
  CHECK(rel(C, load<double>("minmax_clip_transform.txt")) < 1e-12);
  CHECK(C.minCoeff() >= -1.0);
  CHECK(C.maxCoeff() <= 2.0);
}

TEST_CASE("MinMaxScaler<float> matches sklearn on float32 input") {
  const auto X = load<float>("scaler_X.txt");
  uvp::MinMaxScalerOptions o;
  o.feature_min = -1;
  o.feature_max = 2;
  uvp::MinMaxScaler<float> s(o);
  const uvp::Matrix<float> Z = s.fit_transform(X);
  const auto ref = load<float>("minmax_transform_f32.txt");
  for (uvp::index j = 0; j < 5; ++j) {
    CAPTURE(j);
    CHECK(uvp_test::rel_error(Z.col(j), ref.col(j)) < (j == 3 ? 1e-4 : 1e-5));
  }
}

TEST_CASE_TEMPLATE("scalers reject NaN, wrong widths, empty input and use before fit", T, float, double) {
  uvp::Matrix<T> X(3, 2);
  X << 1, 2, 3, 4, 5, 6;
  uvp::Matrix<T> bad = X;
  bad(2, 1) = std::numeric_limits<T>::quiet_NaN();
  uvp::Matrix<T> wide(2, 3);
  wide.setZero();
  uvp::Matrix<T> empty(0, 2);

  uvp::StandardScaler<T> s;
  UVP_CHECK_THROWS_WITH_SUBSTR(s.transform(X), uvp::not_fitted_error,
                               "uvp::StandardScaler::transform: the scaler is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.mean(), uvp::not_fitted_error, "uvp::StandardScaler::mean: the scaler is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.inverse_transform(X), uvp::not_fitted_error,
                               "uvp::StandardScaler::inverse_transform");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.fit(bad), uvp::invalid_argument,
                               "uvp::StandardScaler::fit: X has a non-finite value (nan) at row 2, column 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.fit(empty), uvp::invalid_argument, "uvp::StandardScaler::fit: X (rows) is empty");
  s.fit(X);
  UVP_CHECK_THROWS_WITH_SUBSTR(s.transform(wide), uvp::shape_error,
                               "uvp::StandardScaler::transform: X has 3 columns, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.transform(bad), uvp::invalid_argument,
                               "uvp::StandardScaler::transform: X has a non-finite value (nan) at row 2, column 1");

  uvp::MinMaxScaler<T> m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.transform(X), uvp::not_fitted_error, "uvp::MinMaxScaler::transform: the scaler is not fitted");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.data_min(), uvp::not_fitted_error, "uvp::MinMaxScaler::data_min");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(bad), uvp::invalid_argument,
                               "uvp::MinMaxScaler::fit: X has a non-finite value (nan) at row 2, column 1");
  m.fit(X);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.inverse_transform(wide), uvp::shape_error,
                               "uvp::MinMaxScaler::inverse_transform: X has 3 columns, expected 2");
  uvp::MinMaxScalerOptions o;
  o.feature_min = 1;
  o.feature_max = 1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::MinMaxScaler<T>{o}, uvp::invalid_argument,
                               "uvp::MinMaxScaler: feature_min must be < feature_max, got feature range (1, 1)");
}
