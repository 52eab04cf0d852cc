// SPDX-License-Identifier: Apache-2.0
// Global max / mean pooling over time with lengths: against PyTorch
// (tests/fixtures/make_nn_conv_fixtures.py), finite differences, padding ignored, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Span;

namespace {
template <class T>
uvp::Matrix<T> matrix(const std::vector<double>& v, uvp::index rows, uvp::index cols) {
  REQUIRE(uvp::index(v.size()) == rows * cols);
  return uvp::view(v.data(), rows, cols).template cast<T>();
}
template <class M>
Span<const typename M::Scalar> flat(const M& m) {
  return {m.data(), m.size()};
}
}  // namespace

TEST_CASE_TEMPLATE("Global max and mean pooling match PyTorch with lengths", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_conv/pool.txt"));
  const uvp::index B = uvp::index(f["shape"][0]), L = uvp::index(f["shape"][1]), C = uvp::index(f["shape"][2]);
  const std::vector<uvp::index> lengths(f["lengths"].begin(), f["lengths"].end());
  const uvp::Matrix<T> X = matrix<T>(f["X"], B * L, C);
  const uvp::Matrix<T> dY = matrix<T>(f["dY"], B, C);
  const double tol = uvp_test::tolerance<T>::rel;

  uvp::nn::GlobalMaxPool1d<T> maxpool;
  std::vector<uvp::index> argmax;
  const uvp::Matrix<T> Ymax = maxpool.forward(X, B, L, uvp::as_span(lengths), argmax);
  CHECK(uvp_test::rel_error(flat(Ymax), f["max"]) < tol);
  CHECK(std::vector<double>(argmax.begin(), argmax.end()) == f["argmax"]);
  uvp::Matrix<T> dX(B * L, C);
  dX.setConstant(T(7));  // written, not accumulated
  maxpool.backward(dY, uvp::as_span(argmax), dX);
  CHECK(uvp_test::rel_error(flat(dX), f["dX_max"]) < tol);

  uvp::nn::GlobalMeanPool1d<T> meanpool;
  const uvp::Matrix<T> Ymean = meanpool.forward(X, B, L, uvp::as_span(lengths));
  CHECK(uvp_test::rel_error(flat(Ymean), f["mean"]) < tol);
  dX.setConstant(T(7));
  meanpool.backward(dY, uvp::as_span(lengths), dX);
  CHECK(uvp_test::rel_error(flat(dX), f["dX_mean"]) < tol);

  // Without lengths every step counts.
  const uvp::Matrix<T> full = meanpool.forward(X, B, L);
  for (uvp::index c = 0; c < C; ++c) CHECK(double(full(0, c)) == doctest::Approx(double(Ymean(0, c))));
  CHECK(double(full(2, 0)) == doctest::Approx(double(X.middleRows(2 * L, L).col(0).mean())));
}

TEST_CASE("Pooling gradients match finite differences with lengths; padding is never read") {
  uvp::Rng rng(4);
  const uvp::index B = 3, L = 5, C = 4;
  const std::vector<uvp::index> lengths{5, 2, 1};
  uvp::Matrix<double> X(B * L, C), R(B, C);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  for (uvp::index i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();
  uvp::nn::GlobalMaxPool1d<double> maxpool;
  uvp::nn::GlobalMeanPool1d<double> meanpool;
  std::vector<uvp::index> argmax(B * C);
  uvp::Matrix<double> Y(B, C), dX(B * L, C);

  auto max_loss = [&] {
    std::vector<uvp::index> a(B * C);
    maxpool.forward(X, B, L, uvp::as_span(lengths), Y, uvp::as_span(a));
    return (Y.array() * R.array()).sum();
  };
  maxpool.forward(X, B, L, uvp::as_span(lengths), Y, uvp::as_span(argmax));
  maxpool.backward(R, uvp::as_span(argmax), dX);
  CHECK(uvp::testing::check_gradient(max_loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error <= 1e-6);
  CHECK(dX.middleRows(L + 2, 3).isZero(0));

  auto mean_loss = [&] {
    meanpool.forward(X, B, L, uvp::as_span(lengths), Y);
    return (Y.array() * R.array()).sum();
  };
  meanpool.backward(R, uvp::as_span(lengths), dX);
  CHECK(uvp::testing::check_gradient(mean_loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error <= 1e-6);
  CHECK(dX.middleRows(2 * L + 1, 4).isZero(0));

  // NaN at padding steps changes nothing.
  uvp::Matrix<double> Xn = X;
  Xn.middleRows(L + 2, 3).setConstant(std::numeric_limits<double>::quiet_NaN());
  uvp::Matrix<double> Y1(B, C), Y2(B, C);
  maxpool.forward(X, B, L, uvp::as_span(lengths), Y1, uvp::as_span(argmax));
  maxpool.forward(Xn, B, L, uvp::as_span(lengths), Y2, uvp::as_span(argmax));
  CHECK(Y1 == Y2);
  meanpool.forward(X, B, L, uvp::as_span(lengths), Y1);
  meanpool.forward(Xn, B, L, uvp::as_span(lengths), Y2);
  CHECK(Y1 == Y2);
}

TEST_CASE("Max pooling takes the first of equal maxima") {
  const uvp::Matrix<double> X = uvp::Matrix<double>::Constant(2 * 3, 2, 1.5);
  std::vector<uvp::index> argmax;
  const uvp::Matrix<double> Y = uvp::nn::GlobalMaxPool1d<double>().forward(X, 2, 3, {}, argmax);
  CHECK(Y.isConstant(1.5, 0));
  CHECK(argmax == std::vector<uvp::index>{0, 0, 3, 3});
}

TEST_CASE("Pooling rejects bad arguments with clear errors") {
  uvp::nn::GlobalMaxPool1d<float> maxpool;
  uvp::nn::GlobalMeanPool1d<float> meanpool;
  uvp::Matrix<float> X = uvp::Matrix<float>::Random(6, 2), Y(2, 2), dX(6, 2), dY(2, 2);
  std::vector<uvp::index> argmax(4);
  const std::vector<uvp::index> zero{3, 0}, too_long{3, 4}, one{3};
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, -1, 3, {}, Y, uvp::as_span(argmax)), uvp::invalid_argument,
                               "uvp::nn::GlobalMaxPool1d::forward: batch must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 4, {}, Y, uvp::as_span(argmax)), uvp::shape_error,
                               "X has 6 rows, expected batch * seq_len = 8");
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 3, uvp::as_span(zero), Y, uvp::as_span(argmax)),
                               uvp::invalid_argument, "lengths[1] = 0 must be >= 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 3, uvp::as_span(too_long), Y, uvp::as_span(argmax)),
                               uvp::out_of_range_error, "lengths[1] = 4 exceeds seq_len = 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 3, uvp::as_span(one), Y, uvp::as_span(argmax)), uvp::shape_error,
                               "lengths has size 1, expected 2");
  std::vector<uvp::index> small(3);
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 3, {}, Y, uvp::as_span(small)), uvp::shape_error,
                               "argmax has size 3, expected 4");
  uvp::Matrix<float> Ybad(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(X, 2, 3, {}, Ybad, uvp::as_span(argmax)), uvp::shape_error,
                               "Y has shape (2, 3), expected (2, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.forward(X, 2, 3, {}, Ybad), uvp::shape_error, "Y has shape (2, 3)");
  uvp::Matrix<float> Xnan = X;
  Xnan(4, 1) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.forward(Xnan, 2, 3, {}, Y, uvp::as_span(argmax)), uvp::numeric_error,
                               "X has a non-finite value (nan) at row 4, column 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.forward(Xnan, 2, 3, {}, Y), uvp::numeric_error, "at row 4, column 1");

  maxpool.forward(X, 2, 3, {}, Y, uvp::as_span(argmax));
  std::vector<uvp::index> bad = argmax;
  bad[3] = 1;  // a row of sequence 0 for sequence 1
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.backward(dY, uvp::as_span(bad), dX), uvp::out_of_range_error,
                               "argmax[3] = 1 is not a row of sequence 1 [3, 6)");
  uvp::Matrix<float> dX5(5, 2), dX3c(6, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.backward(dY, uvp::as_span(argmax), dX5), uvp::shape_error,
                               "dX has 5 rows, not batch * seq_len");
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.backward(dY, uvp::as_span(argmax), dX3c), uvp::shape_error,
                               "dX has 3 columns, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.backward(dY, uvp::as_span(too_long), dX), uvp::out_of_range_error,
                               "lengths[1] = 4 exceeds seq_len = 3");
}
