// SPDX-License-Identifier: Apache-2.0
// uvp::nn::MultiHeadSelfAttention against PyTorch (tests/fixtures/make_nn_attention_fixtures.py),
// against central differences, and on bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/testing/gradient_check.hpp"

namespace {

using Index = uvp::index;
using Arrays = std::map<std::string, std::vector<double>>;
const char* const kTensors[] = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};

template <class T>
uvp::Matrix<T> to_matrix(const std::vector<double>& v, Index rows, Index cols) {
  REQUIRE(Index(v.size()) == rows * cols);
  uvp::Matrix<T> m(rows, cols);
  for (Index i = 0; i < rows * cols; ++i) m.data()[i] = static_cast<T>(v[std::size_t(i)]);
  return m;
}

template <class A>
std::vector<double> to_vector(const A& a, Index n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) v[std::size_t(i)] = double(a[i]);
  return v;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

}  // namespace

TEST_CASE_TEMPLATE("MultiHeadSelfAttention matches torch.nn.MultiheadAttention: output, weights, gradients", T,
                   float, double) {
  for (const std::string name : {"padding", "causal", "full", "single_head"}) {
    CAPTURE(name);
    const Arrays a = uvp_test::read_arrays(uvp_test::fixture_path("nn_attention/" + name + ".txt"));
    const Index E = Index(a.at("E")[0]), H = Index(a.at("H")[0]), B = Index(a.at("batch")[0]),
                L = Index(a.at("seq_len")[0]);
    const bool causal = a.at("causal")[0] != 0;
    std::vector<Index> lengths;
    for (double x : a.at("lengths")) lengths.push_back(Index(x));

    uvp::Rng rng(7);
    uvp::nn::MultiHeadSelfAttention<T> mha(E, H, rng, causal);
    for (const char* t : kTensors) {
      auto v = mha.values(mha.tensor(t));
      REQUIRE(Index(a.at(t).size()) == v.size());
      for (Index i = 0; i < v.size(); ++i) v[i] = static_cast<T>(a.at(t)[std::size_t(i)]);
    }
    const uvp::Matrix<T> X = to_matrix<T>(a.at("X"), B * L, E);
    uvp::Matrix<T> dY = to_matrix<T>(a.at("R"), B * L, E);
    // Gradients arriving at padded rows are ignored, even NaN.
    for (Index b = 0; b < B; ++b)
      for (Index t = lengths[std::size_t(b)]; t < L; ++t) dY.row(b * L + t).setConstant(std::numeric_limits<T>::quiet_NaN());

    uvp::Matrix<T> Y(B * L, E), W(B * L, L), dX(B * L, E);
    Y.setConstant(T(3));
    typename uvp::nn::MultiHeadSelfAttention<T>::Context ctx;
    // The "full" case also runs with empty lengths (= all full length).
    const bool no_lengths = name == "full";
    mha.forward(X, B, L, no_lengths ? uvp::Span<const Index>() : uvp::as_span(lengths), Y, ctx);
    CHECK(uvp_test::rel_error(to_vector(Y.data(), Y.size()), a.at("Y")) <= tol<T>());
    mha.attention_weights(ctx, W);
    CHECK(uvp_test::rel_error(to_vector(W.data(), W.size()), a.at("attn")) <= tol<T>());

    // Accumulation: two backward passes double every parameter gradient; dX is overwritten.
    mha.backward(X, dY, dX, ctx);
    mha.backward(X, dY, dX, ctx);
    CHECK(uvp_test::rel_error(to_vector(dX.data(), dX.size()), a.at("dX")) <= tol<T>());
    for (const std::string t : kTensors) {
      CAPTURE(t);
      auto g = mha.grads(mha.tensor(t));
      std::vector<double> expected = a.at("grad." + t);
      for (double& x : expected) x *= 2;
      CHECK(uvp_test::rel_error(to_vector(g.data(), g.size()), expected) <= tol<T>());
    }
  }
}

TEST_CASE("MultiHeadSelfAttention gradients agree with central differences (double)") {
  struct Case {
    Index E, H, B, L;
    std::vector<Index> lengths;
    bool causal;
  };
  const Case cases[] = {{8, 2, 3, 5, {5, 2, 1}, false},
                        {8, 2, 3, 5, {3, 5, 4}, true},
                        {6, 3, 2, 4, {}, false},
                        {4, 1, 2, 3, {}, true}};
  for (const Case& c : cases) {
    CAPTURE(c.E);
    CAPTURE(c.causal);
    uvp::Rng rng(11);
    uvp::nn::MultiHeadSelfAttention<double> mha(c.E, c.H, rng, c.causal);
    // Non-zero biases, so their paths are exercised.
    for (const char* t : kTensors)
      for (double& v : mha.values(mha.tensor(t))) v = rng.uniform(-0.8, 0.8);
    const Index rows = c.B * c.L;
    uvp::Matrix<double> X(rows, c.E), R(rows, c.E), Y(rows, c.E), dX(rows, c.E);
    for (Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    for (Index i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();
    const uvp::Span<const Index> lengths = uvp::as_span(c.lengths);
    uvp::nn::MultiHeadSelfAttention<double>::Context ctx;
    // Y's padded rows are 0, so sum(R o Y) only sees valid rows, as backward's dY does.
    auto f = [&] {
      mha.forward(X, c.B, c.L, lengths, Y, ctx);
      return (R.array() * Y.array()).sum();
    };
    f();
    mha.zero_grad();
    mha.backward(X, R, dX, ctx);
    const auto rx = uvp::testing::check_gradient(f, uvp::Span<double>(X.data(), X.size()),
                                                 uvp::Span<const double>(dX.data(), dX.size()));
    CHECK(rx.relative_error <= 1e-6);
    for (const std::string t : kTensors) {
      CAPTURE(t);
      const auto& info = mha.tensor(t);
      const std::vector<double> analytic(mha.grads(info).begin(), mha.grads(info).end());
      const auto r = uvp::testing::check_gradient(f, mha.values(info), uvp::as_span(analytic));
      CHECK(r.relative_error <= 1e-6);
    }
    // Padded rows: zero output and zero input gradient.
    for (Index b = 0; b < Index(c.lengths.size()); ++b)
      for (Index t = c.lengths[std::size_t(b)]; t < c.L; ++t) {
        CHECK(Y.row(b * c.L + t).isZero(0));
        CHECK(dX.row(b * c.L + t).isZero(0));
      }
  }
}

TEST_CASE("MultiHeadSelfAttention registers PyTorch's tensors and initialises them like PyTorch") {
  uvp::Rng rng(3);
  const Index E = 64, H = 4;
  uvp::nn::MultiHeadSelfAttention<float> mha(E, H, rng);
  REQUIRE(mha.tensors().size() == 4);
  CHECK(mha.tensors()[0].name == "in_proj_weight");
  CHECK(mha.tensors()[1].name == "in_proj_bias");
  CHECK(mha.tensors()[2].name == "out_proj.weight");
  CHECK(mha.tensors()[3].name == "out_proj.bias");
  CHECK(mha.tensor("in_proj_weight").shape == std::vector<Index>{3 * E, E});
  CHECK(mha.tensor("in_proj_bias").shape == std::vector<Index>{3 * E});
  CHECK(mha.tensor("out_proj.weight").shape == std::vector<Index>{E, E});
  CHECK(mha.tensor("out_proj.bias").shape == std::vector<Index>{E});
  CHECK(mha.parameter_count() == 4 * E * E + 4 * E);
  CHECK(mha.head_dim() == 16);
  CHECK(mha.num_heads() == H);
  CHECK(mha.embed_dim() == E);
  CHECK_FALSE(mha.causal());

  // U(-a, a): every value inside, standard deviation close to a / sqrt(3).
  auto check_uniform = [](uvp::Span<const float> w, double a) {
    double sum = 0, sq = 0, mx = 0;
    for (float v : w) {
      sum += v;
      sq += double(v) * v;
      mx = std::max(mx, std::abs(double(v)));
    }
    const double n = double(w.size()), sd = std::sqrt(sq / n - (sum / n) * (sum / n));
    CHECK(mx <= a);
    CHECK(mx >= 0.95 * a);
    CHECK(sd == doctest::Approx(a / std::sqrt(3.0)).epsilon(0.05));
  };
  check_uniform(mha.values(mha.tensor("in_proj_weight")), std::sqrt(6.0 / double(E + 3 * E)));
  check_uniform(mha.values(mha.tensor("out_proj.weight")), 1.0 / std::sqrt(double(E)));
  for (float v : mha.values(mha.tensor("in_proj_bias"))) CHECK(v == 0.0f);
  for (float v : mha.values(mha.tensor("out_proj.bias"))) CHECK(v == 0.0f);
}

TEST_CASE("MultiHeadSelfAttention contexts: reusable across shapes, independent, allocation-free once grown") {
  uvp::Rng rng(5);
  const Index E = 16, H = 4;
  uvp::nn::MultiHeadSelfAttention<float> mha(E, H, rng);
  auto random = [&](Index r, Index c) {
    uvp::Matrix<float> m(r, c);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = float(rng.normal());
    return m;
  };
  const uvp::Matrix<float> big = random(4 * 9, E), small = random(2 * 5, E), dsmall = random(2 * 5, E);
  const std::vector<Index> big_len = {9, 3, 7, 1}, small_len = {5, 2};
  uvp::Matrix<float> Yb(4 * 9, E), Ys(2 * 5, E), Yf(2 * 5, E), dX(2 * 5, E), dXf(2 * 5, E);
  uvp::nn::MultiHeadSelfAttention<float>::Context ctx, fresh;
  mha.forward(big, 4, 9, uvp::as_span(big_len), Yb, ctx);
  mha.backward(big, Yb, ctx);

  const long before = uvp_test::allocations.load();
  mha.forward(small, 2, 5, uvp::as_span(small_len), Ys, ctx);
  mha.backward(small, dsmall, dX, ctx);
  CHECK(uvp_test::allocations.load() == before);
  CHECK(ctx.batch() == 2);
  CHECK(ctx.seq_len() == 5);
  CHECK(ctx.lengths()[1] == 2);
  CHECK(ctx.probabilities(1, 3).rows() == 2);

  mha.forward(small, 2, 5, uvp::as_span(small_len), Yf, fresh);
  mha.backward(small, dsmall, dXf, fresh);
  CHECK(Ys == Yf);
  CHECK(dX == dXf);
  // Each probability row sums to 1 over the valid keys.
  for (Index h = 0; h < H; ++h)
    for (Index i = 0; i < 2; ++i) CHECK(ctx.probabilities(1, h).row(i).sum() == doctest::Approx(1.0f));
}

TEST_CASE("MultiHeadSelfAttention rejects bad input with messages naming the argument") {
  using M = uvp::nn::MultiHeadSelfAttention<float>;
  uvp::Rng rng(1);
  UVP_CHECK_THROWS_WITH_SUBSTR(M(10, 4, rng), uvp::invalid_argument, "embed_dim = 10 is not divisible by num_heads = 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(M(0, 1, rng), uvp::invalid_argument, "embed_dim must be >= 1, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(M(8, 0, rng), uvp::invalid_argument, "num_heads must be >= 1, got 0");

  M mha(8, 2, rng);
  M::Context ctx;
  uvp::Matrix<float> X = uvp::Matrix<float>::Ones(6, 8), Y(6, 8), dX(6, 8), W(6, 3);
  const std::vector<Index> ok = {3, 2}, zero = {3, 0}, over = {4, 2}, neg = {-1, 2}, short_len = {3};
  const uvp::Span<const Index> none;

  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, Y, dX, ctx), uvp::invalid_argument, "ctx holds no forward pass");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.attention_weights(ctx, W), uvp::invalid_argument, "ctx holds no forward pass");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(uvp::Matrix<float>::Ones(6, 7), 2, 3, none, Y, ctx), uvp::shape_error,
                               "uvp::nn::MultiHeadSelfAttention::forward: X has 7 columns, expected 8");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 4, none, Y, ctx), uvp::shape_error,
                               "X has 6 rows, expected batch * seq_len = 8");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, -1, 3, none, Y, ctx), uvp::invalid_argument, "batch must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 6, 0, none, Y, ctx), uvp::invalid_argument, "seq_len must be >= 1, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 3, uvp::as_span(short_len), Y, ctx), uvp::shape_error,
                               "lengths has size 1, expected 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 3, uvp::as_span(zero), Y, ctx), uvp::invalid_argument,
                               "lengths[1] = 0 must be >= 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 3, uvp::as_span(neg), Y, ctx), uvp::invalid_argument,
                               "lengths[0] = -1 must be >= 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 3, uvp::as_span(over), Y, ctx), uvp::out_of_range_error,
                               "lengths[0] = 4 exceeds seq_len = 3");
  uvp::Matrix<float> Ybad(6, 7);
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(X, 2, 3, none, Ybad, ctx), uvp::shape_error, "Y has shape (6, 7), expected (6, 8)");
  uvp::Matrix<float> Xnan = X;
  Xnan(4, 5) = std::numeric_limits<float>::quiet_NaN();
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(Xnan, 2, 3, none, Y, ctx), uvp::numeric_error,
                               "X has a non-finite value (nan) at row 4, column 5");
  Xnan(4, 5) = std::numeric_limits<float>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.forward(Xnan, 2, 3, none, Y, ctx), uvp::numeric_error, "X has a non-finite value (inf)");

  mha.forward(X, 2, 3, uvp::as_span(ok), Y, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, uvp::Matrix<float>::Ones(6, 7), dX, ctx), uvp::shape_error,
                               "dY has shape (6, 7), expected (6, 8)");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(uvp::Matrix<float>::Ones(4, 8), Y, dX, ctx), uvp::shape_error,
                               "X has shape (4, 8), expected (6, 8)");
  uvp::Matrix<float> dXbad(6, 9);
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, Y, dXbad, ctx), uvp::shape_error, "dX has shape (6, 9), expected (6, 8)");
  uvp::Matrix<float> dY = Y;
  dY(5, 0) = std::numeric_limits<float>::quiet_NaN();  // row 5 = sequence 1, t = 2: padding
  CHECK_NOTHROW(mha.backward(X, dY, dX, ctx));
  dY(4, 0) = std::numeric_limits<float>::quiet_NaN();  // sequence 1, t = 1: valid
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, dY, dX, ctx), uvp::numeric_error,
                               "uvp::nn::MultiHeadSelfAttention::backward: dY has a non-finite value (nan) at row 4, column 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.attention_weights(ctx, Y), uvp::shape_error, "out has shape (6, 8), expected (6, 3)");
  M other(8, 4, rng);
  UVP_CHECK_THROWS_WITH_SUBSTR(other.backward(X, Y, dX, ctx), uvp::invalid_argument,
                               "ctx comes from a block with embed_dim = 8, num_heads = 2");
}

TEST_CASE("MultiHeadSelfAttention gives the same results on 1 and 2 threads (parallel path)") {
  uvp::Rng rng(9);
  const Index B = 8, L = 20, E = 64, H = 4;  // valid rows * E above the fork threshold
  uvp::nn::MultiHeadSelfAttention<float> one(E, H, rng, true);
  uvp::nn::MultiHeadSelfAttention<float> two = one;
  std::vector<Index> lengths;
  for (Index b = 0; b < B; ++b) lengths.push_back(5 + Index(rng.uniform_int(16)));
  uvp::Matrix<float> X(B * L, E), dY(B * L, E);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = float(rng.normal());
  for (Index i = 0; i < dY.size(); ++i) dY.data()[i] = float(rng.normal());
  uvp::Matrix<float> Y1(B * L, E), Y2(B * L, E), dX1(B * L, E), dX2(B * L, E);
  uvp::nn::MultiHeadSelfAttention<float>::Context c1, c2;
  {
    uvp::ThreadCountGuard guard(1);
    one.forward(X, B, L, uvp::as_span(lengths), Y1, c1);
    one.backward(X, dY, dX1, c1);
  }
  {
    uvp::ThreadCountGuard guard(2);
    two.forward(X, B, L, uvp::as_span(lengths), Y2, c2);
    two.backward(X, dY, dX2, c2);
  }
  CHECK(Y1 == Y2);
  CHECK(dX1 == dX2);
  for (const std::string t : kTensors) {
    CAPTURE(t);
    const auto g1 = one.grads(one.tensor(t)), g2 = two.grads(two.tensor(t));
    CHECK(std::equal(g1.begin(), g1.end(), g2.begin()));
  }
}
