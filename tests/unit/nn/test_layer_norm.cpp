// SPDX-License-Identifier: Apache-2.0
// uvp::nn::LayerNorm: PyTorch reference (tests/fixtures/make_nn_dense_fixtures.py), gradients
// against finite differences, constant rows and bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Matrix;
using uvp::Span;

namespace {

template <class T>
Matrix<T> to_matrix(const std::vector<double>& v, uvp::index rows, uvp::index cols) {
  REQUIRE(uvp::index(v.size()) == rows * cols);
  return uvp::view(v.data(), rows, cols).template cast<T>();
}

template <class T>
void copy_into(Span<T> dst, const std::vector<double>& src) {
  REQUIRE(dst.size() == uvp::index(src.size()));
  for (uvp::index i = 0; i < dst.size(); ++i) dst[i] = T(src[std::size_t(i)]);
}

template <class M>
Span<const typename M::Scalar> flat(const M& m) {
  return {m.data(), m.size()};
}

}  // namespace

TEST_CASE_TEMPLATE("LayerNorm matches torch.nn.LayerNorm, with and without elementwise_affine", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_dense/layer_norm.txt"));
  const auto n = uvp::index(f["n"][0]), d = uvp::index(f["d"][0]);
  const double tol = uvp_test::tolerance<T>::rel;
  uvp::nn::LayerNorm<T> ln(d, f["eps"][0]);
  CHECK(ln.tensor("weight").shape == std::vector<uvp::index>{d});
  CHECK(ln.tensor("bias").shape == std::vector<uvp::index>{d});
  for (T w : ln.weight()) CHECK(w == T(1));  // PyTorch's init: gamma = 1, beta = 0
  for (T b : ln.bias()) CHECK(b == T(0));
  copy_into(ln.weight(), f["weight"]);
  copy_into(ln.bias(), f["bias"]);
  const Matrix<T> X = to_matrix<T>(f["x"], n, d), dY = to_matrix<T>(f["dy"], n, d);

  typename uvp::nn::LayerNorm<T>::Context ctx;
  Matrix<T> Y(n, d), dX(n, d);
  ln.forward(X, Y, ctx);
  CHECK(uvp_test::rel_error(flat(Y), f["y"]) < tol);
  CHECK(ctx.mean().size() == n);
  CHECK(ctx.rstd().size() == n);
  ln.backward(X, ctx, dY, dX);
  CHECK(uvp_test::rel_error(flat(dX), f["dx"]) < tol);
  CHECK(uvp_test::rel_error(ln.grads(ln.tensor("weight")), f["weight_grad"]) < tol);
  CHECK(uvp_test::rel_error(ln.grads(ln.tensor("bias")), f["bias_grad"]) < tol);

  // Parameter-only backward accumulates the same amount again; dX may be written over dY.
  ln.backward(X, ctx, dY);
  std::vector<double> twice = f["bias_grad"];
  for (auto& v : twice) v *= 2;
  CHECK(uvp_test::rel_error(ln.grads(ln.tensor("bias")), twice) < tol);
  Matrix<T> g = dY;
  ln.backward(X, ctx, g, g);
  CHECK((g - dX).cwiseAbs().maxCoeff() <= T(0));
  CHECK(ln.forward(X) == Y);
  Matrix<T> inplace = X;
  ln.forward(inplace, inplace, ctx);
  CHECK(inplace == Y);

  uvp::nn::LayerNorm<T> plain(d, 1e-5, false);
  CHECK(plain.tensors().empty());
  CHECK(plain.weight().empty());
  plain.forward(X, Y, ctx);
  plain.backward(X, ctx, dY, dX);
  CHECK(uvp_test::rel_error(flat(Y), f["plain_y"]) < tol);
  CHECK(uvp_test::rel_error(flat(dX), f["plain_dx"]) < tol);
}

TEST_CASE("LayerNorm gradients match finite differences (gamma, beta, input; plain)") {
  uvp::Rng rng(5);
  const uvp::index n = 4, d = 6;
  for (bool affine : {true, false}) {
    CAPTURE(affine);
    uvp::nn::LayerNorm<double> ln(d, 1e-5, affine);
    if (affine) {
      for (auto& w : ln.weight()) w = rng.normal(1.0, 0.5);
      for (auto& b : ln.bias()) b = rng.normal();
    }
    Matrix<double> X(n, d), R(n, d);
    for (uvp::index i = 0; i < X.size(); ++i) {
      X.data()[i] = rng.normal(1.0, 2.0);
      R.data()[i] = rng.normal();
    }
    typename uvp::nn::LayerNorm<double>::Context ctx;
    Matrix<double> Y(n, d), dX(n, d);
    ln.forward(X, Y, ctx);
    ln.backward(X, ctx, R, dX);
    auto loss = [&] { return (ln.forward(X).array() * R.array()).sum(); };
    CHECK(uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error < 1e-6);
    if (affine) {
      CHECK(uvp::testing::check_gradient(loss, ln.weight(), ln.grads(ln.tensor("weight"))).relative_error < 1e-6);
      CHECK(uvp::testing::check_gradient(loss, ln.bias(), ln.grads(ln.tensor("bias"))).relative_error < 1e-6);
    }
  }
}

TEST_CASE_TEMPLATE("LayerNorm maps a constant row to beta and stays finite; big batches split rows", T, float, double) {
  uvp::nn::LayerNorm<T> ln(5);
  for (auto& b : ln.bias()) b = T(0.25);
  Matrix<T> X = Matrix<T>::Constant(2, 5, T(3));
  typename uvp::nn::LayerNorm<T>::Context ctx;
  Matrix<T> Y(2, 5), dX(2, 5);
  ln.forward(X, Y, ctx);
  CHECK((Y.array() == T(0.25)).all());
  ln.backward(X, ctx, Matrix<T>::Ones(2, 5), dX);
  CHECK(dX.allFinite());

  // Many rows (the OpenMP path) give each row the value it has alone.
  uvp::nn::LayerNorm<T> wide(300);
  const Matrix<T> B = Matrix<T>::Random(600, 300);
  const Matrix<T> BY = wide.forward(B);
  CHECK(BY.row(599) == wide.forward(Matrix<T>(B.row(599))));
}

TEST_CASE("LayerNorm rejects bad sizes, shapes, contexts and non-finite inputs") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::LayerNorm<float>(0), uvp::invalid_argument,
                               "uvp::nn::LayerNorm: normalized_shape must be > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::LayerNorm<float>(3, 0.0), uvp::invalid_argument,
                               "uvp::nn::LayerNorm: eps must be > 0, got 0");
  uvp::nn::LayerNorm<float> ln(3);
  typename uvp::nn::LayerNorm<float>::Context ctx;
  Matrix<float> X = Matrix<float>::Ones(2, 4), Y(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.forward(X, Y, ctx), uvp::shape_error,
                               "uvp::nn::LayerNorm::forward: X has 4 columns, expected 3");
  Matrix<float> X3 = Matrix<float>::Ones(2, 3), Ybad(1, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.forward(X3, Ybad, ctx), uvp::shape_error,
                               "uvp::nn::LayerNorm::forward: Y has shape (1, 3), expected (2, 3)");
  Matrix<float> dY = Matrix<float>::Ones(2, 3), dX(2, 3);
  // The forwards above threw: ctx holds no forward pass.
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.backward(X3, ctx, dY, dX), uvp::invalid_argument,
                               "uvp::nn::LayerNorm::backward: ctx holds no forward pass of this LayerNorm");
  ln.forward(X3, Y, ctx);
  Matrix<float> dYbad(2, 2), dXbad(3, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.backward(X3, ctx, dYbad), uvp::shape_error,
                               "uvp::nn::LayerNorm::backward: dY has shape (2, 2), expected (2, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.backward(X3, ctx, dY, dXbad), uvp::shape_error,
                               "uvp::nn::LayerNorm::backward: dX has shape (3, 3), expected (2, 3)");
  X3(0, 1) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.forward(X3, Y, ctx), uvp::numeric_error,
                               "uvp::nn::LayerNorm::forward: X has a non-finite value (nan) at row 0, column 1");
}
