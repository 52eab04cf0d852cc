// SPDX-License-Identifier: Apache-2.0
// uvp::nn activations: PyTorch reference (tests/fixtures/make_nn_dense_fixtures.py), gradients
// against finite differences, in-place use, stability and bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Matrix;
using uvp::Span;

namespace {

template <class T>
Matrix<T> to_matrix(const std::vector<double>& v, uvp::index rows, uvp::index cols) {
  REQUIRE(uvp::index(v.size()) == rows * cols);
  return uvp::view(v.data(), rows, cols).template cast<T>();
}

template <class M>
Span<const typename M::Scalar> flat(const M& m) {
  return {m.data(), m.size()};
}

// Checks one activation against the fixture: forward, backward (from X or Y as it asks), in
// place, and dX written over dY.
template <class T, class A>
void check_against_torch(const A& act, const std::string& name, std::map<std::string, std::vector<double>>& f) {
  CAPTURE(name);
  const auto n = uvp::index(f["n"][0]), d = uvp::index(f["d"][0]);
  const std::string xkey = f.count(name + "_x") ? name + "_x" : "x";
  const Matrix<T> X = to_matrix<T>(f[xkey], n, d), dY = to_matrix<T>(f["dy"], n, d);
  const double tol = uvp_test::tolerance<T>::rel;

  Matrix<T> Y(n, d);
  act.forward(X, Y);
  CHECK(uvp_test::rel_error(flat(Y), f[name + "_y"]) < tol);
  Matrix<T> dX(n, d);
  const Matrix<T>& saved = A::backward_from_output ? Y : X;
  act.backward(saved, dY, dX);
  CHECK(uvp_test::rel_error(flat(dX), f[name + "_dx"]) < tol);

  Matrix<T> inplace = X;
  act.forward(inplace, inplace);
  CHECK(inplace == Y);
  Matrix<T> g = dY;
  act.backward(saved, g, g);
  CHECK(g == dX);
  CHECK(act.forward(X) == Y);
  CHECK(act.parameter_count() == 0);
}

// Gradient of sum(R .* act(X)) with respect to X, against central differences.
template <class A>
double input_gradient_error(const A& act, Matrix<double> X, uvp::Rng& rng) {
  Matrix<double> R(X.rows(), X.cols());
  for (uvp::index i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();
  const Matrix<double> Y = act.forward(X);
  Matrix<double> dX(X.rows(), X.cols());
  act.backward(A::backward_from_output ? Y : X, R, dX);
  auto loss = [&] { return (act.forward(X).array() * R.array()).sum(); };
  return uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error;
}

}  // namespace

TEST_CASE_TEMPLATE("activations match PyTorch's ReLU, Sigmoid, Tanh, GELU and Softmax(dim=-1)", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_dense/activations.txt"));
  check_against_torch<T>(uvp::nn::Relu<T>(), "relu", f);
  check_against_torch<T>(uvp::nn::Sigmoid<T>(), "sigmoid", f);
  check_against_torch<T>(uvp::nn::Tanh<T>(), "tanh", f);
  check_against_torch<T>(uvp::nn::Gelu<T>(), "gelu", f);
  check_against_torch<T>(uvp::nn::Softmax<T>(), "softmax", f);
}

TEST_CASE("activation input gradients match finite differences") {
  uvp::Rng rng(11);
  Matrix<double> X(5, 7);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal(0.0, 2.0);
  X(0, 0) = 0.3;  // keep ReLU's kink away from the probes
  for (uvp::index i = 0; i < X.size(); ++i)
    if (std::abs(X.data()[i]) < 1e-3) X.data()[i] = 0.5;
  CHECK(input_gradient_error(uvp::nn::Relu<double>(), X, rng) < 1e-6);
  CHECK(input_gradient_error(uvp::nn::Sigmoid<double>(), X, rng) < 1e-6);
  CHECK(input_gradient_error(uvp::nn::Tanh<double>(), X, rng) < 1e-6);
  CHECK(input_gradient_error(uvp::nn::Gelu<double>(), X, rng) < 1e-6);
  CHECK(input_gradient_error(uvp::nn::Softmax<double>(), X, rng) < 1e-6);

  // ReLU's backward gives the same from its input as from its output.
  uvp::nn::Relu<double> relu;
  const Matrix<double> Y = relu.forward(X), dY = Matrix<double>::Random(5, 7);
  Matrix<double> from_x(5, 7), from_y(5, 7);
  relu.backward(X, dY, from_x);
  relu.backward(Y, dY, from_y);
  CHECK(from_x == from_y);
}

TEST_CASE_TEMPLATE("GELU's SIMD kernel agrees with the scalar erf formula over a wide range", T, float, double) {
  std::vector<T> x, y, dx, dy;
  for (int i = -4000; i <= 4000; ++i) x.push_back(T(i) / T(200));  // [-20, 20]
  x.push_back(T(-1e4));
  x.push_back(T(1e4));
  const auto n = uvp::index(x.size());
  y.resize(x.size());
  dx.resize(x.size());
  dy.assign(x.size(), T(1));
  uvp::detail::gelu(x.data(), y.data(), n);
  uvp::detail::gelu_backward(x.data(), dy.data(), dx.data(), n);
  double max_y = 0, max_dx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double xi = x[i];
    const long double ref = xi * 0.5L * (1 + std::erf(xi / std::sqrt(2.0L)));
    const long double dref =
        0.5L * (1 + std::erf(xi / std::sqrt(2.0L))) + xi * std::exp(-0.5L * xi * xi) / std::sqrt(2 * 3.14159265358979323846L);
    // Absolute error relative to max(|ref|, 1): GELU's left tail is x times a tiny cdf.
    max_y = std::max(max_y, double(std::abs(y[i] - ref) / std::max(std::abs(ref), 1.0L)));
    max_dx = std::max(max_dx, double(std::abs(dx[i] - dref) / std::max(std::abs(dref), 1.0L)));
  }
  // xsimd's erf: within a few ulp in float, up to ~35 ulp in double (near |x| = 2.2); measured
  // max_y 52 eps and max_dx 17 eps in double (default x86-64 build).
  const double bound = (std::is_same_v<T, float> ? 8 : 64) * std::numeric_limits<T>::epsilon();
  CHECK(max_y < bound);
  CHECK(max_dx < bound);
}

TEST_CASE_TEMPLATE("Softmax is stable for huge logits, rows sum to 1, and works on strided blocks", T, float, double) {
  Matrix<T> X(3, 4);
  X << T(1000), T(-1000), T(0), T(999), T(-1e30), T(-1e30), T(-1e30), T(-1e30), T(88), T(89), T(90), T(91);
  uvp::nn::Softmax<T> sm;
  const Matrix<T> Y = sm.forward(X);
  CHECK(Y.allFinite());
  for (uvp::index r = 0; r < 3; ++r) CHECK(Y.row(r).sum() == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(Y(0, 0) == doctest::Approx(1 / (1 + std::exp(-1.0))).epsilon(1e-6));
  CHECK(Y(0, 1) == T(0));
  CHECK(Y(1, 2) == doctest::Approx(0.25));

  Matrix<T> big = Matrix<T>::Random(6, 9), out = Matrix<T>::Zero(6, 9);
  sm.forward(big.block(1, 2, 3, 4), out.block(2, 3, 3, 4));
  const Matrix<T> ref = sm.forward(Matrix<T>(big.block(1, 2, 3, 4)));
  CHECK((out.block(2, 3, 3, 4) - ref).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK(out.block(0, 0, 2, 9).cwiseAbs().maxCoeff() == T(0));

  // A large element-wise input (taking the multi-threaded path) equals the same rows one by one.
  Matrix<T> L = Matrix<T>::Random(1024, 130) * T(5);
  uvp::nn::Tanh<T> th;
  const Matrix<T> LY = th.forward(L);
  const Matrix<T> row7 = th.forward(Matrix<T>(L.row(7)));
  CHECK(LY.row(7) == row7);
  const Matrix<T> SY = sm.forward(L);
  CHECK(SY.row(1000) == sm.forward(Matrix<T>(L.row(1000))));
}

TEST_CASE("activations reject mismatched shapes and non-finite inputs") {
  Matrix<float> X = Matrix<float>::Ones(2, 3), Ybad(2, 4), dX(2, 3);
  uvp::nn::Relu<float> relu;
  UVP_CHECK_THROWS_WITH_SUBSTR(relu.forward(X, Ybad), uvp::shape_error,
                               "uvp::nn::Relu::forward: Y has shape (2, 4), expected (2, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(relu.backward(X, Ybad, dX), uvp::shape_error,
                               "uvp::nn::Relu::backward: dY has shape (2, 4), expected (2, 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Sigmoid<float>().backward(X, X, Ybad), uvp::shape_error,
                               "uvp::nn::Sigmoid::backward: dX has shape (2, 4), expected (2, 3)");
  X(1, 0) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Tanh<float>().forward(X), uvp::numeric_error,
                               "uvp::nn::Tanh::forward: X has a non-finite value (nan) at row 1, column 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Gelu<float>().forward(X), uvp::numeric_error, "uvp::nn::Gelu::forward");
  X(1, 0) = -std::numeric_limits<float>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Softmax<float>().forward(X), uvp::numeric_error,
                               "uvp::nn::Softmax::forward: X has a non-finite value (-inf)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::Softmax<float>().forward(Matrix<float>(2, 0)), uvp::shape_error,
                               "uvp::nn::Softmax::forward: X has 0 columns");
  UVP_CHECK_THROWS_WITH_SUBSTR(relu.forward(X), uvp::numeric_error, "uvp::nn::Relu::forward");
}
