// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Sequential and make_mlp: PyTorch reference (tests/fixtures/make_nn_dense_fixtures.py),
// gradients against finite differences, state_dict names, train/eval, allocation-free training
// steps, an MLP trained with Adam, and bad inputs.

// Eigen reports heap allocations made while uvp_test::forbid_eigen_malloc is on (counted here
// rather than asserted, so the Release build checks them too). Must precede every Eigen include.
#define EIGEN_RUNTIME_NO_MALLOC
namespace uvp_test {
inline long eigen_mallocs = 0;
}
#define eigen_assert(x) ((x) ? (void)0 : (void)++uvp_test::eigen_mallocs)

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "../optim/alloc_counter.hpp"
#include "support/test_support.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/nn/sequential.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Matrix;
using uvp::Span;
namespace nn = uvp::nn;

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

Matrix<double> normal_matrix(uvp::index rows, uvp::index cols, uvp::Rng& rng) {
  Matrix<double> m(rows, cols);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = rng.normal();
  return m;
}

// The docs/nn/dense.md example, verbatim (its main() body).
double docs_example() {
  uvp::Rng rng(42);
  // 3 features -> 64 -> 32 -> 1, ReLU between: the 64-32-1 value regressor.
  auto mlp = uvp::nn::make_mlp<float>({3, 64, 32, 1}, uvp::nn::Activation::relu, rng);
  auto model = uvp::nn::blocks<float>("mlp", mlp);  // names "mlp.0.weight", "mlp.0.bias", ...

  uvp::Matrix<float> X(256, 3), y(256, 1);
  for (uvp::index i = 0; i < X.rows(); ++i) {
    for (uvp::index j = 0; j < 3; ++j) X(i, j) = float(rng.uniform(-1, 1));
    y(i, 0) = X(i, 0) * X(i, 1) + 0.5f * X(i, 2);
  }

  uvp::Adam<float> adam(uvp::AdamOptions{1e-2});
  uvp::nn::Sequential<float>::Context ctx;  // outputs, masks, gradients: reused every step
  uvp::Matrix<float> grad(256, 1);
  double loss = 0;
  for (int epoch = 0; epoch < 200; ++epoch) {
    const auto pred = mlp.forward(X, ctx);
    loss = uvp::mse_loss<float>({pred.data(), pred.size()}, {y.data(), y.size()}, {grad.data(), grad.size()});
    model.zero_grad();
    mlp.backward(X, ctx, grad);
    uvp::nn::step(adam, model);
  }
  return loss;  // below 1e-3
}

}  // namespace

TEST_CASE_TEMPLATE("Sequential matches torch.nn.Sequential(Linear, Tanh, LayerNorm, Linear, GELU)", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_dense/sequential.txt"));
  const auto n = uvp::index(f["n"][0]);
  uvp::Rng rng(1);
  nn::Sequential<T> seq;
  seq.add(nn::Dense<T>(5, 8, rng));
  seq.add(nn::Tanh<T>());
  seq.add(nn::LayerNorm<T>(8));
  seq.add(nn::Dense<T>(8, 3, rng));
  seq.add(nn::Gelu<T>());
  CHECK(seq.size() == 5);
  CHECK(seq.output_cols(5) == 3);

  // Load torch's state_dict by name, through the BlockList that optimizers and files use.
  nn::BlockList<T> list;
  seq.collect_blocks("", list);
  REQUIRE(list.size() == 5);
  std::vector<std::string> names;
  for (const auto& e : list.entries())
    for (const auto& t : e.block->tensors()) {
      const std::string name = e.name + "." + t.name;
      names.push_back(name);
      REQUIRE_MESSAGE(f.count(name), name);
      auto v = e.block->values(t);
      REQUIRE(v.size() == uvp::index(f[name].size()));
      for (uvp::index i = 0; i < v.size(); ++i) v[i] = T(f[name][std::size_t(i)]);
    }
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"});
  CHECK(seq.parameter_count() == 5 * 8 + 8 + 8 + 8 + 8 * 3 + 3);
  CHECK(list.parameter_count() == seq.parameter_count());

  const Matrix<T> X = to_matrix<T>(f["x"], n, 5), dY = to_matrix<T>(f["dy"], n, 3);
  typename nn::Sequential<T>::Context ctx;
  const auto Y = seq.forward(X, ctx);
  const double tol = uvp_test::tolerance<T>::rel;
  CHECK(uvp_test::rel_error(flat(Matrix<T>(Y)), f["y"]) < tol);
  CHECK(uvp_test::rel_error(flat(seq.forward(X)), f["y"]) < tol);
  Matrix<T> dX(n, 5);
  seq.backward(X, ctx, dY, dX);
  CHECK(uvp_test::rel_error(flat(dX), f["dx"]) < tol);
  for (const auto& e : list.entries())
    for (const auto& t : e.block->tensors()) {
      const std::string name = e.name + "." + t.name;
      CAPTURE(name);
      CHECK(uvp_test::rel_error(e.block->grads(t), f[name + ".grad"]) < tol);
    }

  // The parameter-only backward gives the same parameter gradients.
  std::vector<T> before(seq.template get<nn::Dense<T>>(0).weight_grad().data(),
                        seq.template get<nn::Dense<T>>(0).weight_grad().data() + 40);
  seq.zero_grad();
  seq.backward(X, ctx, dY);
  const auto w0 = seq.template get<nn::Dense<T>>(0).weight_grad();
  CHECK(std::vector<T>(w0.data(), w0.data() + 40) == before);
}

// Every parameter's and the input's gradient of sum(R .* model(X)) against central differences;
// Dropout (training) draws the same mask on every probe from a freshly seeded context.
void check_sequential_gradients(nn::Sequential<double>& seq, uvp::index in, uvp::Rng& rng) {
  const uvp::index n = 5;
  Matrix<double> X = normal_matrix(n, in, rng);
  const Matrix<double> R = normal_matrix(n, seq.output_cols(in), rng);
  auto loss = [&] {
    nn::Sequential<double>::Context ctx(2024);
    const auto Y = seq.forward(X, ctx);
    return (Y.array() * R.array()).sum();
  };
  nn::Sequential<double>::Context ctx(2024);
  seq.forward(X, ctx);
  seq.zero_grad();
  Matrix<double> dX(n, in);
  seq.backward(X, ctx, R, dX);
  CHECK(uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()), flat(dX)).relative_error < 1e-6);
  nn::BlockList<double> list;
  seq.collect_blocks("m", list);
  for (const auto& e : list.entries())
    for (const auto& t : e.block->tensors()) {
      CAPTURE(e.name + "." + t.name);
      CHECK(uvp::testing::check_gradient(loss, e.block->values(t), e.block->grads(t)).relative_error < 1e-6);
    }
}

TEST_CASE("Sequential gradients match finite differences through every kind of layer") {
  uvp::Rng rng(3);
  nn::MlpOptions o;
  o.layer_norm = true;
  o.dropout = 0.3;
  o.output = nn::Activation::tanh;
  auto a = nn::make_mlp<double>({4, 6, 5, 3}, nn::Activation::gelu, rng, o);
  a.add(nn::Softmax<double>());
  // Dense, LayerNorm, Gelu, Dropout, Dense, LayerNorm, Gelu, Dropout, Dense, Tanh, Softmax
  CHECK(a.size() == 11);
  CHECK(std::holds_alternative<nn::Dropout<double>>(a.layer(3)));
  check_sequential_gradients(a, 4, rng);

  auto b = nn::make_mlp<double>({3, 7, 2}, nn::Activation::relu, rng, {nn::Activation::sigmoid});
  check_sequential_gradients(b, 3, rng);

  // A chain that starts with parameterless layers: the parameter-only backward skips them.
  nn::Sequential<double> c;
  c.add(nn::Sigmoid<double>());
  c.add(nn::Dense<double>(3, 2, rng, false));
  check_sequential_gradients(c, 3, rng);
  Matrix<double> X = normal_matrix(4, 3, rng);
  nn::Sequential<double>::Context ctx;
  c.forward(X, ctx);
  c.backward(X, ctx, Matrix<double>::Ones(4, 2));
}

TEST_CASE("make_mlp builds the value regressors; train / eval reach every Dropout") {
  uvp::Rng rng(8);
  auto small = nn::make_mlp<float>({10, 64, 32, 1}, nn::Activation::relu, rng);
  CHECK(small.size() == 5);
  CHECK(small.parameter_count() == 10 * 64 + 64 + 64 * 32 + 32 + 32 + 1);
  CHECK(small.get<nn::Dense<float>>(2).in_features() == 64);
  CHECK(std::holds_alternative<nn::Relu<float>>(small.layer(3)));
  auto big = nn::make_mlp<float>({10, 128, 64, 1}, nn::Activation::relu, rng);
  CHECK(big.output_cols(10) == 1);

  nn::MlpOptions o;
  o.dropout = 0.5;
  o.bias = false;
  auto m = nn::make_mlp<float>({6, 16, 1}, nn::Activation::tanh, rng, o);
  CHECK(m.size() == 4);  // Dense, Tanh, Dropout, Dense
  CHECK_FALSE(m.get<nn::Dense<float>>(0).has_bias());
  auto model = nn::blocks<float>("net", m);
  CHECK(model.entries()[2].name == "net.2");
  const Matrix<float> X = Matrix<float>::Random(8, 6);
  nn::Sequential<float>::Context c1(1), c2(2);
  CHECK(m.forward(X, c1) != m.forward(X, c2));  // training: different masks
  model.eval();
  CHECK_FALSE(m.get<nn::Dropout<float>>(2).is_training());
  CHECK(m.forward(X, c1) == m.forward(X, c2));
  m.train();
  CHECK(m.get<nn::Dropout<float>>(2).is_training());
  m.eval();
  m.add(nn::Dropout<float>(0.1));  // a layer added later follows the Sequential's mode
  CHECK_FALSE(m.get<nn::Dropout<float>>(4).is_training());
  CHECK_FALSE(m.is_training());
}

TEST_CASE("An MLP trained with Adam through nn::step fits a small regression problem") {
  CHECK(docs_example() < 1e-3);

  // Minibatches of 48 out of 200 rows (the last one short), 64-32-1 ReLU regressor in float.
  uvp::Rng rng(5);
  const uvp::index n = 200, batch = 48;
  Matrix<float> X(n, 4), y(n, 1);
  for (uvp::index i = 0; i < n; ++i) {
    for (uvp::index j = 0; j < 4; ++j) X(i, j) = float(rng.uniform(-1, 1));
    y(i, 0) = std::sin(2 * X(i, 0)) + X(i, 1) * X(i, 2) - 0.5f * X(i, 3) * X(i, 3);
  }
  auto mlp = nn::make_mlp<float>({4, 64, 32, 1}, nn::Activation::relu, rng);
  auto model = nn::blocks<float>("", mlp);
  uvp::Adam<float> adam(uvp::AdamOptions{5e-3});
  nn::Sequential<float>::Context ctx;
  Matrix<float> grad(batch, 1);
  auto full_mse = [&] {
    const Matrix<float> p = mlp.forward(X);
    return double((p - y).squaredNorm()) / double(n);
  };
  const double start = full_mse();
  for (int epoch = 0; epoch < 150; ++epoch)
    for (uvp::index b0 = 0; b0 < n; b0 += batch) {
      const uvp::index rows = std::min(batch, n - b0);
      const auto Xb = X.middleRows(b0, rows);
      const auto pred = mlp.forward(Xb, ctx);
      uvp::mse_loss<float>({pred.data(), rows}, {y.data() + b0, rows}, {grad.data(), rows});
      model.zero_grad();
      mlp.backward(Xb, ctx, grad.topRows(rows));
      nn::step(adam, model);
    }
  const double end = full_mse();
  CHECK(end < 0.01 * start);
  CHECK(end < 5e-3);
}

TEST_CASE("A training step allocates nothing once the context has seen the largest batch") {
  uvp::Rng rng(2);
  nn::MlpOptions o;
  o.layer_norm = true;
  o.dropout = 0.2;
  auto mlp = nn::make_mlp<float>({16, 64, 32, 1}, nn::Activation::relu, rng, o);
  auto model = nn::blocks<float>("mlp", mlp);
  uvp::Adam<float> adam;
  nn::Sequential<float>::Context ctx(7);
  const Matrix<float> X = Matrix<float>::Random(256, 16), dY = Matrix<float>::Random(256, 1);
  Matrix<float> dX(256, 16);
  auto step = [&](uvp::index rows) {
    mlp.forward(X.topRows(rows), ctx);
    model.zero_grad();
    mlp.backward(X.topRows(rows), ctx, dY.topRows(rows), dX.topRows(rows));
    nn::step(adam, model);
  };
  step(256);  // warm-up: sizes the context and Adam's state
  const long before = uvp_test::allocations.load();
  Eigen::internal::set_is_malloc_allowed(false);
  uvp_test::eigen_mallocs = 0;
  for (uvp::index rows : {256, 100, 1, 256}) step(rows);
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(uvp_test::allocations.load() - before == 0);
  CHECK(uvp_test::eigen_mallocs == 0);
}

TEST_CASE("Sequential and make_mlp reject bad arguments with clear errors") {
  uvp::Rng rng(1);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::make_mlp<float>({4}, nn::Activation::relu, rng), uvp::invalid_argument,
                               "uvp::nn::make_mlp: sizes needs at least 2 entries (in, out), got 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::make_mlp<float>({4, 0, 1}, nn::Activation::relu, rng), uvp::invalid_argument,
                               "uvp::nn::make_mlp: sizes[1] must be > 0, got 0");
  nn::MlpOptions o;
  o.dropout = 1.0;
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::make_mlp<float>({4, 2, 1}, nn::Activation::relu, rng, o), uvp::invalid_argument,
                               "uvp::nn::make_mlp: options.dropout must be in [0, 1), got 1");

  nn::Sequential<float> empty;
  nn::Sequential<float>::Context ctx;
  const Matrix<float> X = Matrix<float>::Ones(3, 4);
  UVP_CHECK_THROWS_WITH_SUBSTR(empty.forward(X, ctx), uvp::invalid_argument,
                               "uvp::nn::Sequential::forward: the Sequential has no layers");

  auto mlp = nn::make_mlp<float>({4, 8, 2}, nn::Activation::relu, rng);
  const Matrix<float> dY = Matrix<float>::Ones(3, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.backward(X, ctx, dY), uvp::invalid_argument,
                               "uvp::nn::Sequential::backward: ctx holds no forward pass of this Sequential");
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.forward(Matrix<float>::Ones(3, 5), ctx), uvp::shape_error,
                               "uvp::nn::Dense::forward: X has 5 columns, expected 4");
  Matrix<float> Xn = X;
  Xn(2, 3) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.forward(Xn, ctx), uvp::numeric_error, "X has a non-finite value (nan) at row 2, column 3");
  mlp.forward(X, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.backward(X, ctx, Matrix<float>::Ones(3, 3)), uvp::shape_error,
                               "uvp::nn::Sequential::backward: dY has shape (3, 3), expected (3, 2)");
  Matrix<float> dX(3, 5);
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.backward(X, ctx, dY, dX), uvp::shape_error,
                               "uvp::nn::Sequential::backward: dX has shape (3, 5), expected (3, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.backward(Matrix<float>::Ones(2, 4), ctx, dY), uvp::shape_error,
                               "X has 2 rows and the Sequential 3 layers");
  Matrix<float> Y(3, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.forward(X, Y, ctx), uvp::shape_error,
                               "uvp::nn::Sequential::forward: Y has shape (3, 3), expected (3, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.get<nn::Relu<float>>(0), uvp::invalid_argument,
                               "uvp::nn::Sequential::get: layer 0 is of another kind");
  UVP_CHECK_THROWS_WITH_SUBSTR(mlp.get<nn::Relu<float>>(3), uvp::out_of_range_error,
                               "uvp::nn::Sequential::get: layer 3 out of range [0, 3)");
}
