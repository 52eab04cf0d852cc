// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Dropout: mask statistics, eval identity, reproducibility, gradients and bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Matrix;
using uvp::Span;

TEST_CASE_TEMPLATE("Dropout zeroes a fraction p and scales the rest by 1 / (1 - p)", T, float, double) {
  for (double p : {0.1, 0.5, 0.8}) {
    CAPTURE(p);
    uvp::nn::Dropout<T> drop(p);
    CHECK(drop.is_training());
    const uvp::index n = 400, d = 251;  // odd total: the last element takes its own draw
    const Matrix<T> X = Matrix<T>::Constant(n, d, T(2));
    Matrix<T> Y(n, d);
    typename uvp::nn::Dropout<T>::Context ctx;
    uvp::Rng rng(99);
    drop.forward(X, Y, ctx, rng);
    const T kept = T(2) / T(1 - p);
    double zeros = 0;
    uvp::index other = 0;
    for (uvp::index i = 0; i < Y.size(); ++i) {
      const T y = Y.data()[i];
      other += !(y == T(0) || y == kept);
      zeros += y == T(0);
    }
    CHECK(other == 0);
    const double N = double(n * d), frac = zeros / N;
    const double sigma = std::sqrt(p * (1 - p) / N);
    CHECK(std::abs(frac - p) < 5 * sigma);
    // E[Y] = X: the mean survives dropout.
    CHECK(Y.template cast<double>().mean() == doctest::Approx(2.0).epsilon(10 * sigma / (1 - p)));

    // Independence: the drop rate of adjacent pairs (the two halves of one draw) is p^2.
    double both = 0;
    for (uvp::index i = 0; i + 1 < Y.size(); i += 2) both += Y.data()[i] == T(0) && Y.data()[i + 1] == T(0);
    const double pairs = N / 2, sigma2 = std::sqrt(p * p * (1 - p * p) / pairs);
    CHECK(std::abs(both / pairs - p * p) < 5 * sigma2);

    // backward applies the same mask.
    Matrix<T> dX(n, d);
    drop.backward(ctx, Matrix<T>::Ones(n, d), dX);
    CHECK(((dX.array() == T(0)) == (Y.array() == T(0))).all());
    CHECK(((dX.array() == T(0)) || (dX.array() == T(1 / (1 - p)))).all());
  }
}

TEST_CASE_TEMPLATE("Dropout in eval (or with p = 0) is the identity, forward and backward", T, float, double) {
  const Matrix<T> X = Matrix<T>::Random(7, 5);
  uvp::Rng rng(1);
  for (double p : {0.0, 0.5}) {
    uvp::nn::Dropout<T> drop(p);
    if (p > 0) drop.eval();
    typename uvp::nn::Dropout<T>::Context ctx;
    Matrix<T> Y(7, 5), dX(7, 5);
    drop.forward(X, Y, ctx, rng);
    CHECK(Y == X);
    const Matrix<T> dY = Matrix<T>::Random(7, 5);
    drop.backward(ctx, dY, dX);
    CHECK(dX == dY);
    Matrix<T> inplace = X;
    drop.forward(inplace, inplace, ctx, rng);
    CHECK(inplace == X);
  }
  // Eval draws nothing: the generator is where it was.
  uvp::nn::Dropout<T> drop(0.3);
  drop.eval();
  uvp::Rng a(5), b(5);
  drop.forward(X, b);
  CHECK(a() == b());
  drop.train();
  drop.forward(X, b);
  CHECK_FALSE(a() == b());
}

TEST_CASE("Dropout masks are reproducible from the seed and differ between seeds") {
  uvp::nn::Dropout<float> drop(0.5);
  const Matrix<float> X = Matrix<float>::Ones(32, 33);
  uvp::Rng a(123), b(123), c(124);
  const Matrix<float> ya = drop.forward(X, a), yb = drop.forward(X, b), yc = drop.forward(X, c);
  CHECK(ya == yb);
  CHECK_FALSE(ya == yc);
  CHECK_FALSE(drop.forward(X, a) == ya);  // the next mask is a new one

  // Float and double layers draw the same positions from the same seed.
  uvp::nn::Dropout<double> dd(0.5);
  uvp::Rng d(123);
  const Matrix<double> yd = dd.forward(X.cast<double>(), d);
  CHECK(((yd.array() == 0.0) == (ya.array() == 0.f)).all());
}

TEST_CASE("Dropout's input gradient matches finite differences with the mask held fixed") {
  uvp::nn::Dropout<double> drop(0.4);
  Matrix<double> X = Matrix<double>::Random(5, 6), R = Matrix<double>::Random(5, 6);
  typename uvp::nn::Dropout<double>::Context ctx;
  auto loss = [&] {
    uvp::Rng rng(77);  // the same mask on every probe
    Matrix<double> Y(5, 6);
    drop.forward(X, Y, ctx, rng);
    return (Y.array() * R.array()).sum();
  };
  loss();
  Matrix<double> dX(5, 6);
  drop.backward(ctx, R, dX);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()), Span<const double>(dX.data(), dX.size()))
            .relative_error < 1e-6);
}

TEST_CASE("Dropout rejects p outside [0, 1), bad shapes, empty contexts and non-finite inputs") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Dropout<float>(1.0), uvp::invalid_argument,
                               "uvp::nn::Dropout: p must be in [0, 1), got 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Dropout<float>(-0.1), uvp::invalid_argument, "got -0.1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Dropout<float>(std::numeric_limits<double>::quiet_NaN()),
                               uvp::invalid_argument, "p must be in [0, 1), got nan");
  uvp::nn::Dropout<float> drop(0.5);
  typename uvp::nn::Dropout<float>::Context ctx;
  uvp::Rng rng(1);
  Matrix<float> X = Matrix<float>::Ones(2, 3), Ybad(2, 2), dX(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.backward(ctx, X, dX), uvp::invalid_argument,
                               "uvp::nn::Dropout::backward: ctx holds no forward pass of this Dropout");
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.forward(X, Ybad, ctx, rng), uvp::shape_error,
                               "uvp::nn::Dropout::forward: Y has shape (2, 2), expected (2, 3)");
  Matrix<float> Y(2, 3);
  drop.forward(X, Y, ctx, rng);
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.backward(ctx, Ybad, dX), uvp::shape_error,
                               "uvp::nn::Dropout::backward: dY has shape (2, 2), expected (2, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.backward(ctx, X, Ybad), uvp::shape_error,
                               "uvp::nn::Dropout::backward: dX has shape (2, 2), expected (2, 3)");
  X(1, 1) = std::numeric_limits<float>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.forward(X, Y, ctx, rng), uvp::numeric_error,
                               "uvp::nn::Dropout::forward: X has a non-finite value (inf) at row 1, column 1");
}
