// SPDX-License-Identifier: Apache-2.0
// LinearRegression: exact least squares equals scikit-learn (OLS, weighted, ridge, no intercept);
// minibatch training reaches the same solution; bad input is rejected.
#include <doctest/doctest.h>

#include <vector>

#include "support/test_support.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/optim/sgd.hpp"

namespace {
struct Data {
  std::map<std::string, std::vector<double>> f;
  uvp::Matrix<double> X;
  uvp::Vector<double> y, sw;
};
Data load() {
  Data d;
  d.f = uvp_test::read_arrays(uvp_test::fixture_path("models/linreg.txt"));
  const auto n = uvp::index(d.f["y"].size());
  d.X = uvp::view(d.f["X"].data(), n, 4);
  d.y = uvp::ConstVectorView<double>(d.f["y"].data(), n);
  d.sw = uvp::ConstVectorView<double>(d.f["sw"].data(), n);
  return d;
}
}  // namespace

TEST_CASE("LinearRegression::fit_exact equals scikit-learn") {
  const auto d = load();
  SUBCASE("ordinary least squares") {
    uvp::LinearRegression<double> m(4);
    m.fit_exact(d.X, d.y);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef")) < 1e-12);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept")[0]).epsilon(1e-12));
  }
  SUBCASE("weighted") {
    uvp::LinearRegression<double> m(4);
    m.fit_exact(d.X, d.y, uvp::Span<const double>(d.sw.data(), d.sw.size()));
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef_w")) < 1e-12);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept_w")[0]).epsilon(1e-12));
  }
  SUBCASE("ridge: l2 = 2 alpha / N") {
    uvp::LinearRegressionOptions o;
    o.l2 = 2.0 * d.f.at("alpha")[0] / double(d.X.rows());
    uvp::LinearRegression<double> m(4, o);
    m.fit_exact(d.X, d.y);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef_ridge")) < 1e-12);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept_ridge")[0]).epsilon(1e-12));
  }
  SUBCASE("no intercept") {
    uvp::LinearRegressionOptions o;
    o.fit_intercept = false;
    uvp::LinearRegression<double> m(4, o);
    m.fit_exact(d.X, d.y);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef_noint")) < 1e-12);
    CHECK(m.intercept() == 0.0);
  }
  SUBCASE("float") {
    uvp::LinearRegression<float> m(4);
    m.fit_exact(d.X.cast<float>(), d.y.cast<float>());
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef")) < 1e-5);
  }
}

TEST_CASE("LinearRegression: rank-deficient X gives the minimum-norm solution") {
  uvp::Matrix<double> X(4, 2);
  X << 1, 2, 2, 4, 3, 6, 4, 8;  // second column = 2 x first
  uvp::Vector<double> y(4);
  y << 5, 10, 15, 20;           // y = 5 x1 = x1 + 2 x2 = ...; min-norm: w = (1, 2)
  uvp::LinearRegressionOptions o;
  o.fit_intercept = false;
  uvp::LinearRegression<double> m(2, o);
  m.fit_exact(X, y);
  CHECK(m.coef()[0] == doctest::Approx(1.0));
  CHECK(m.coef()[1] == doctest::Approx(2.0));
}

TEST_CASE("LinearRegression::fit by minibatches reaches the exact solution") {
  const auto d = load();
  uvp::LinearRegression<double> exact(4);
  exact.fit_exact(d.X, d.y);
  uvp::LinearRegression<double> m(4);
  uvp::SgdOptions so;
  so.lr = 0.1;
  so.momentum = 0.9;
  uvp::Sgd<double> sgd(so);
  uvp::FitOptions fo;
  fo.epochs = 1500;
  fo.batch_size = d.X.rows();
  fo.shuffle = false;
  const auto r = m.fit(d.X, d.y, sgd, fo);
  CHECK_FALSE(r.diverged);
  CHECK(uvp_test::rel_error(m.coef(), exact.coef()) < 1e-9);
  CHECK(m.intercept() == doctest::Approx(exact.intercept()).epsilon(1e-9));
  const auto p = m.predict(d.X);
  CHECK((p - d.y).norm() / std::sqrt(double(d.y.size())) < 0.2);
}

TEST_CASE("LinearRegression rejects bad input") {
  uvp::LinearRegression<double> m(2);
  uvp::Matrix<double> X = uvp::Matrix<double>::Ones(3, 2);
  uvp::Vector<double> y(3);
  y << 1, std::numeric_limits<double>::infinity(), 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit_exact(X, y), uvp::invalid_argument,
                               "uvp::LinearRegression::fit_exact: y has a non-finite value (inf) at flat index 1");
  uvp::Vector<double> y2(2);
  y2 << 1, 2;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit_exact(X, y2), uvp::shape_error, "y has size 2, expected 3");
  std::vector<double> zero_w{0, 0, 0};
  uvp::Vector<double> y3 = uvp::Vector<double>::Ones(3);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit_exact(X, y3, uvp::as_span(zero_w)), uvp::invalid_argument,
                               "sample_weight sums to 0");
  uvp::Matrix<double> Xn = uvp::Matrix<double>::Ones(50, 2);
  uvp::Vector<double> yn = uvp::Vector<double>::Ones(50);
  Xn(17, 1) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(Xn, yn), uvp::invalid_argument,
                               "uvp::LinearRegression::fit: X has a non-finite value (nan) at row 17, column 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit_exact(Xn, yn), uvp::invalid_argument,
                               "uvp::LinearRegression::fit_exact: X has a non-finite value (nan) at row 17, column 1");
  CHECK(m.coef().isZero());
  uvp::Matrix<double> X3 = uvp::Matrix<double>::Ones(3, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.predict(X3), uvp::shape_error, "X has 3 columns, expected 2");
}
