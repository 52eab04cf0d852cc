// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Dense: PyTorch reference (tests/fixtures/make_nn_dense_fixtures.py), gradients against
// finite differences, initialisation, strided inputs and bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/nn/dense.hpp"
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

// A scalar function of the layer's output: sum(R .* Y), whose gradient with respect to Y is R.
Matrix<double> random_matrix(uvp::index rows, uvp::index cols, uvp::Rng& rng) {
  Matrix<double> m(rows, cols);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = rng.normal();
  return m;
}

}  // namespace

TEST_CASE_TEMPLATE("Dense matches torch.nn.Linear forward and backward", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_dense/dense.txt"));
  const auto n = uvp::index(f["n"][0]), in = uvp::index(f["in"][0]), out = uvp::index(f["out"][0]);
  uvp::Rng rng(1);
  uvp::nn::Dense<T> layer(in, out, rng);
  copy_into(layer.values(layer.tensor("weight")), f["weight"]);
  copy_into(layer.values(layer.tensor("bias")), f["bias"]);
  const Matrix<T> X = to_matrix<T>(f["x"], n, in), dY = to_matrix<T>(f["dy"], n, out);

  Matrix<T> Y(n, out);
  layer.forward(X, Y);
  const double tol = uvp_test::tolerance<T>::rel;
  CHECK(uvp_test::rel_error(flat(Y), f["y"]) < tol);
  CHECK(uvp_test::rel_error(flat(layer.forward(X)), f["y"]) < tol);

  Matrix<T> dX(n, in);
  layer.backward(X, dY, dX);
  CHECK(uvp_test::rel_error(flat(dX), f["dx"]) < tol);
  CHECK(uvp_test::rel_error(layer.grads(layer.tensor("weight")), f["weight_grad"]) < tol);
  CHECK(uvp_test::rel_error(layer.bias_grad(), f["bias_grad"]) < tol);

  // Gradients accumulate (the parameter-only form adds the same again); zero_grad clears them.
  layer.backward(X, dY);
  std::vector<double> twice = f["weight_grad"];
  for (auto& v : twice) v *= 2;
  CHECK(uvp_test::rel_error(flat(layer.weight_grad()), twice) < tol);
  layer.zero_grad();
  CHECK(layer.weight_grad().cwiseAbs().maxCoeff() == T(0));
}

TEST_CASE("Dense gradients match finite differences (weights, bias, input; with and without bias)") {
  for (bool bias : {true, false}) {
    CAPTURE(bias);
    uvp::Rng rng(7);
    const uvp::index n = 6, in = 5, out = 4;
    uvp::nn::Dense<double> layer(in, out, rng, bias);
    CHECK(layer.tensors().size() == (bias ? 2u : 1u));
    Matrix<double> X = random_matrix(n, in, rng);
    const Matrix<double> R = random_matrix(n, out, rng);
    auto loss = [&] { return (layer.forward(X).array() * R.array()).sum(); };

    Matrix<double> dX(n, in);
    layer.backward(X, R, dX);
    auto w = layer.values(layer.tensor("weight"));
    CHECK(uvp::testing::check_gradient(loss, w, layer.grads(layer.tensor("weight"))).relative_error < 1e-6);
    if (bias) {
      auto b = layer.values(layer.tensor("bias"));
      CHECK(uvp::testing::check_gradient(loss, b, layer.bias_grad()).relative_error < 1e-6);
    }
    CHECK(uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error < 1e-6);
  }
}

TEST_CASE("Dense registers PyTorch's tensors and draws U(-1/sqrt(in), 1/sqrt(in)) from the seed") {
  uvp::Rng rng(42);
  uvp::nn::Linear<float> layer(400, 300, rng);  // Linear is Dense
  static_assert(std::is_same_v<uvp::nn::Linear<float>, uvp::nn::Dense<float, uvp::cpu>>);
  CHECK(layer.in_features() == 400);
  CHECK(layer.out_features() == 300);
  CHECK(layer.tensor("weight").shape == std::vector<uvp::index>{300, 400});
  CHECK(layer.tensor("bias").shape == std::vector<uvp::index>{300});
  CHECK(layer.parameter_count() == 300 * 400 + 300);

  const double bound = 1.0 / std::sqrt(400.0);
  const auto w = layer.weight();
  CHECK(w.maxCoeff() <= bound);
  CHECK(w.minCoeff() >= -bound);
  const double mean = w.template cast<double>().mean();
  const double var = (w.template cast<double>().array() - mean).square().mean();
  CHECK(std::abs(mean) < 0.01 * bound);
  CHECK(var == doctest::Approx(bound * bound / 3).epsilon(0.01));  // variance of U(-a, a) = a^2 / 3
  for (float b : layer.bias()) CHECK(std::abs(b) <= bound);

  uvp::Rng again(42);
  uvp::nn::Dense<float> same(400, 300, again);
  CHECK(same.weight() == layer.weight());
}

TEST_CASE_TEMPLATE("Dense reads strided blocks and writes into blocks of larger matrices", T, float, double) {
  uvp::Rng rng(3);
  uvp::nn::Dense<T> layer(3, 2, rng);
  Matrix<T> big = Matrix<T>::Random(5, 7);
  const Matrix<T> X = big.block(1, 2, 4, 3);
  Matrix<T> out = Matrix<T>::Zero(4, 6);
  layer.forward(big.block(1, 2, 4, 3), out.block(0, 1, 4, 2));
  const Matrix<T> expected = layer.forward(X);
  CHECK((out.block(0, 1, 4, 2) - expected).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK(out.col(0).cwiseAbs().maxCoeff() == T(0));

  // An empty batch is fine and leaves the gradients untouched.
  Matrix<T> none(0, 3), none_out(0, 2), none_dx(0, 3);
  layer.forward(none, none_out);
  layer.backward(none, none_out, none_dx);
  CHECK(layer.weight_grad().cwiseAbs().maxCoeff() == T(0));
}

TEST_CASE("Dense rejects bad shapes, non-finite inputs and bad sizes with clear errors") {
  uvp::Rng rng(1);
  uvp::nn::Dense<float> layer(4, 3, rng);
  Matrix<float> X = Matrix<float>::Ones(2, 5), Y(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.forward(X, Y), uvp::shape_error,
                               "uvp::nn::Dense::forward: X has 5 columns, expected 4");
  Matrix<float> X4 = Matrix<float>::Ones(2, 4), Ybad(3, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.forward(X4, Ybad), uvp::shape_error,
                               "uvp::nn::Dense::forward: Y has shape (3, 3), expected (2, 3)");
  X4(1, 2) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.forward(X4, Y), uvp::numeric_error,
                               "uvp::nn::Dense::forward: X has a non-finite value (nan) at row 1, column 2");
  X4(1, 2) = std::numeric_limits<float>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.forward(X4), uvp::numeric_error, "X has a non-finite value (inf)");
  X4.setOnes();

  Matrix<float> dYbad(2, 2), dX(2, 4), dXbad(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.backward(X4, dYbad), uvp::shape_error,
                               "uvp::nn::Dense::backward: dY has shape (2, 2), expected (2, 3)");
  Matrix<float> dY = Matrix<float>::Ones(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.backward(X4, dY, dXbad), uvp::shape_error,
                               "uvp::nn::Dense::backward: dX has shape (2, 3), expected (2, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(layer.backward(X, dY, dX), uvp::shape_error,
                               "uvp::nn::Dense::backward: X has 5 columns, expected 4");

  // The output must not alias the input.
  uvp::nn::Dense<float> square(3, 3, rng);
  Matrix<float> S = Matrix<float>::Ones(2, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(square.forward(S, S), uvp::invalid_argument, "Y overlaps X");

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Dense<float>(0, 3, rng), uvp::invalid_argument,
                               "uvp::nn::Dense: in_features must be > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Dense<float>(3, -1, rng), uvp::invalid_argument,
                               "uvp::nn::Dense: out_features must be > 0, got -1");
}
