// SPDX-License-Identifier: Apache-2.0
// The layer contract (uvp/nn/layer.hpp) of the matrix blocks (Dense, Relu, Sigmoid, Tanh, Gelu,
// Softmax, Dropout, LayerNorm) and of Sequential: the contract forms against the low-level forms
// (bit for bit), finite differences through the contract forms, PyTorch's values through
// Sequential (tests/fixtures/make_nn_dense_fixtures.py), the context's checks and messages,
// widths, spec round trips and allocation-free reuse of a context.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../optim/alloc_counter.hpp"
#include "support/test_support.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/sequential.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Matrix;
using uvp::Span;
namespace nn = uvp::nn;

namespace {

constexpr uvp::index kIn = 4;  // input features of every block under test

// The low-level forms of each block, and how to make one with non-trivial weights.
template <class B>
struct LowLevel {  // the activations
  using T = typename B::value_type;
  struct Ctx {
    explicit Ctx(std::uint64_t) {}
  };
  static B make() { return B(); }
  static void forward(const B& b, uvp::ConstMatrixRef<T> X, Matrix<T>& Y, Ctx&) { b.forward(X, Y); }
  static void backward(B& b, uvp::ConstMatrixRef<T> X, const Matrix<T>& Y, const Matrix<T>& dY, Matrix<T>& dX, Ctx&) {
    if constexpr (B::backward_from_output)
      b.backward(Y, dY, dX);
    else
      b.backward(X, dY, dX);
  }
};

template <class T>
struct LowLevel<nn::Dense<T>> {
  using B = nn::Dense<T>;
  struct Ctx {
    explicit Ctx(std::uint64_t) {}
  };
  static B make() {
    uvp::Rng rng(3);
    return B(kIn, 3, rng);
  }
  static void forward(const B& b, uvp::ConstMatrixRef<T> X, Matrix<T>& Y, Ctx&) { b.forward(X, Y); }
  static void backward(B& b, uvp::ConstMatrixRef<T> X, const Matrix<T>&, const Matrix<T>& dY, Matrix<T>& dX, Ctx&) {
    b.backward(X, dY, dX);
  }
};

template <class T>
struct LowLevel<nn::Dropout<T>> {
  using B = nn::Dropout<T>;
  struct Ctx {
    explicit Ctx(std::uint64_t seed) : rng(seed) {}
    typename B::Context ctx;
    uvp::Rng rng;
  };
  static B make() { return B(0.3); }
  static void forward(const B& b, uvp::ConstMatrixRef<T> X, Matrix<T>& Y, Ctx& c) { b.forward(X, Y, c.ctx, c.rng); }
  static void backward(B& b, uvp::ConstMatrixRef<T>, const Matrix<T>&, const Matrix<T>& dY, Matrix<T>& dX, Ctx& c) {
    b.backward(c.ctx, dY, dX);
  }
};

template <class T>
struct LowLevel<nn::LayerNorm<T>> {
  using B = nn::LayerNorm<T>;
  struct Ctx {
    explicit Ctx(std::uint64_t) {}
    typename B::Context ctx;
  };
  static B make() {
    B b(kIn);
    uvp::Rng rng(5);
    for (T& w : b.weight()) w = T(0.5 + rng.uniform());
    for (T& v : b.bias()) v = T(rng.uniform() - 0.5);
    return b;
  }
  static void forward(const B& b, uvp::ConstMatrixRef<T> X, Matrix<T>& Y, Ctx& c) { b.forward(X, Y, c.ctx); }
  static void backward(B& b, uvp::ConstMatrixRef<T> X, const Matrix<T>&, const Matrix<T>& dY, Matrix<T>& dX, Ctx& c) {
    b.backward(X, c.ctx, dY, dX);
  }
};

template <class T>
Matrix<T> random_matrix(uvp::index rows, uvp::index cols, std::uint64_t seed, double scale = 1.5) {
  uvp::Rng rng(seed);
  Matrix<T> m(rows, cols);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = T(scale * (2 * rng.uniform() - 1));
  return m;
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

template <class T>
std::vector<T> copy_of(Span<const T> s) {
  return std::vector<T>(s.begin(), s.end());
}

// A block's Context, seeded when it takes a seed (Dropout's Rng).
template <class Ctx>
Ctx make_context(std::uint64_t seed) {
  if constexpr (std::is_constructible_v<Ctx, std::uint64_t>) {
    return Ctx(seed);
  } else {
    (void)seed;
    return Ctx();
  }
}

std::string where(const char* kind, const char* fn) { return std::string("uvp::nn::") + kind + "::" + fn; }

using MatrixBlocks = std::tuple<nn::Dense<float>, nn::Dense<double>, nn::Relu<float>, nn::Relu<double>,
                                nn::Sigmoid<float>, nn::Sigmoid<double>, nn::Tanh<float>, nn::Tanh<double>,
                                nn::Gelu<float>, nn::Gelu<double>, nn::Softmax<float>, nn::Softmax<double>,
                                nn::Dropout<float>, nn::Dropout<double>, nn::LayerNorm<float>, nn::LayerNorm<double>>;

static_assert(nn::check_layer<nn::Dense<float>>() && nn::check_layer<nn::Dense<double>>());
static_assert(nn::check_layer<nn::Relu<float>>() && nn::check_layer<nn::Relu<double>>());
static_assert(nn::check_layer<nn::Sigmoid<float>>() && nn::check_layer<nn::Sigmoid<double>>());
static_assert(nn::check_layer<nn::Tanh<float>>() && nn::check_layer<nn::Tanh<double>>());
static_assert(nn::check_layer<nn::Gelu<float>>() && nn::check_layer<nn::Gelu<double>>());
static_assert(nn::check_layer<nn::Softmax<float>>() && nn::check_layer<nn::Softmax<double>>());
static_assert(nn::check_layer<nn::Dropout<float>>() && nn::check_layer<nn::Dropout<double>>());
static_assert(nn::check_layer<nn::LayerNorm<float>>() && nn::check_layer<nn::LayerNorm<double>>());
static_assert(nn::check_layer<nn::Sequential<float>>() && nn::check_layer<nn::Sequential<double>>());
static_assert(!uvp::detail::layer_is_composite<nn::Dense<float>>::value &&
              uvp::detail::layer_is_composite<nn::Sequential<float>>::value);

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("Contract forward and backward equal the low-level forms bit for bit", B, bitwise) {
  using T = typename B::value_type;
  using L = LowLevel<B>;
  B b = L::make();
  const uvp::index n = 7;
  // A strided input (columns 1..kIn of a wider matrix): the context keeps the view with its stride.
  const Matrix<T> wide = random_matrix<T>(n, kIn + 2, 11);
  const auto X = wide.middleCols(1, kIn);
  auto ctx = make_context<typename B::Context>(42);
  typename L::Ctx low(42);

  const auto Yc = b.forward(X, ctx);
  CHECK(ctx.holds_forward());
  Matrix<T> Y(n, b.output_width(kIn));
  L::forward(b, X, Y, low);
  CHECK(same_bits(Yc, Y));
  CHECK(Yc.cols() == b.output_width(kIn));

  const Matrix<T> dY = random_matrix<T>(n, Y.cols(), 12);
  b.zero_grad();
  const Matrix<T> dXc = b.backward(ctx, dY);
  const auto grads_contract = copy_of<T>(b.parameters().grads());
  b.zero_grad();
  Matrix<T> dX(n, kIn);
  L::backward(b, X, Y, dY, dX, low);
  CHECK(same_bits(dXc, dX));
  CHECK(copy_of<T>(b.parameters().grads()) == grads_contract);

  // Parameter gradients accumulate: a second contract backward adds the same again.
  b.backward(ctx, dY);
  const auto twice = copy_of<T>(b.parameters().grads());
  std::vector<T> doubled = grads_contract;
  for (T& g : doubled) g += g;
  CHECK(uvp_test::rel_error(twice, doubled) < uvp_test::tolerance<T>::rel);
  CHECK(twice.size() == std::size_t(b.parameters().size()));

  // Eval mode (Dropout: the identity) goes through the same path.
  b.eval();
  auto ectx = make_context<typename B::Context>(42);
  typename L::Ctx elow(42);
  L::forward(b, X, Y, elow);
  CHECK(same_bits(b.forward(X, ectx), Y));
  if constexpr (std::is_same_v<B, nn::Dropout<T>>) CHECK(same_bits(Y, X));
}
TEST_CASE_TEMPLATE_APPLY(bitwise, MatrixBlocks);

TEST_CASE_TEMPLATE_DEFINE("Contract backward matches finite differences (input and parameters)", B, fd) {
  using T = typename B::value_type;
  if constexpr (std::is_same_v<T, double>) {
    B b = LowLevel<B>::make();
    const uvp::index n = 5;
    Matrix<double> X = random_matrix<double>(n, kIn, 21);
    const Matrix<double> W = random_matrix<double>(n, b.output_width(kIn), 22);  // L = sum(Y .* W)
    auto loss = [&] {
      auto c = make_context<typename B::Context>(7);  // the same Dropout mask at every probe
      return (b.forward(X, c).array() * W.array()).sum();
    };
    auto ctx = make_context<typename B::Context>(7);
    b.forward(X, ctx);
    b.zero_grad();
    const Matrix<double> dX = b.backward(ctx, W);
    const auto rx = uvp::testing::check_gradient(loss, Span<double>(X.data(), X.size()),
                                                 Span<const double>(dX.data(), dX.size()));
    CHECK(rx.relative_error < 1e-7);
    const auto analytic = copy_of<double>(b.parameters().grads());
    if (!analytic.empty()) {
      const auto rp = uvp::testing::check_gradient(loss, b.parameters().values(), Span<const double>(analytic));
      CHECK(rp.relative_error < 1e-7);
    } else {
      CHECK(b.parameter_count() == 0);
    }
  } else {
    CHECK(std::is_same_v<T, float>);  // finite differences in double only
  }
}
TEST_CASE_TEMPLATE_APPLY(fd, MatrixBlocks);

TEST_CASE_TEMPLATE_DEFINE("Contract misuse raises uvp errors naming the block", B, misuse) {
  using T = typename B::value_type;
  B b = LowLevel<B>::make();
  const Matrix<T> X = random_matrix<T>(3, kIn, 31);
  const uvp::index out = b.output_width(kIn);
  const Matrix<T> dY = random_matrix<T>(3, out, 32);

  // backward before any forward, and after a forward that threw.
  typename B::Context ctx;
  CHECK_FALSE(ctx.holds_forward());
  UVP_CHECK_THROWS_WITH_SUBSTR(b.backward(ctx, dY), uvp::invalid_argument,
                               where(B::kind, "backward") + ": ctx holds no forward pass of this " + B::kind);
  b.forward(X, ctx);
  Matrix<T> bad_x = X;
  bad_x(1, 2) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_AS(b.forward(bad_x, ctx), uvp::numeric_error);
  CHECK_FALSE(ctx.holds_forward());
  CHECK_THROWS_AS(b.backward(ctx, dY), uvp::invalid_argument);

  // d_output of the wrong shape.
  b.forward(X, ctx);
  const Matrix<T> wrong(4, out);
  UVP_CHECK_THROWS_WITH_SUBSTR(b.backward(ctx, wrong), uvp::shape_error,
                               where(B::kind, "backward") + ": d_output has shape (4, " + std::to_string(out) +
                                   "), expected (3, " + std::to_string(out) + ")");

  // The context's own output as the next input of the same context (it would be overwritten).
  const auto Y = b.forward(X, ctx);
  if (Y.cols() == kIn) {
    UVP_CHECK_THROWS_WITH_SUBSTR(b.forward(Y, ctx), uvp::invalid_argument, "x lies in the context's own buffers");
    b.forward(X, ctx);
    const auto dX = b.backward(ctx, dY);
    UVP_CHECK_THROWS_WITH_SUBSTR(b.backward(ctx, dX), uvp::invalid_argument, "d_output lies in the context's own");
  }

  // Widths.
  if (b.input_width() >= 0) {
    CHECK(b.input_width() == kIn);
    UVP_CHECK_THROWS_WITH_SUBSTR(b.output_width(kIn + 1), uvp::shape_error,
                                 where(B::kind, "output_width") + ": " + B::kind + " takes 4 input features, got 5");
    CHECK_THROWS_AS(b.forward(random_matrix<T>(3, kIn + 1, 33), ctx), uvp::shape_error);
    CHECK(b.output_width(-1) == out);
  } else {
    CHECK(b.input_width() == -1);
    CHECK(b.output_width(9) == 9);
    CHECK(b.output_width(-1) == -1);
    UVP_CHECK_THROWS_WITH_SUBSTR(b.output_width(-2), uvp::shape_error,
                                 where(B::kind, "output_width") + ": in = -2 is not a width");
  }
}
TEST_CASE_TEMPLATE_APPLY(misuse, MatrixBlocks);

TEST_CASE_TEMPLATE_DEFINE("spec -> from_spec rebuilds the block; after copying the weights, the same output", B, spec) {
  using T = typename B::value_type;
  const B b = LowLevel<B>::make();
  const nn::BlockSpec s = b.spec();
  CHECK(s.kind == B::kind);
  CHECK(s.children.empty());
  B c = B::from_spec(s);
  CHECK(c.spec() == s);
  CHECK(c.parameter_count() == b.parameter_count());
  std::copy(b.parameters().values().begin(), b.parameters().values().end(), c.parameters().values().begin());
  const Matrix<T> X = random_matrix<T>(6, kIn, 41);
  auto cb = make_context<typename B::Context>(3);
  auto cc = make_context<typename B::Context>(3);
  CHECK(same_bits(b.forward(X, cb), c.forward(X, cc)));

  nn::BlockSpec other = s;
  other.kind = "Conv1d";
  UVP_CHECK_THROWS_WITH_SUBSTR(B::from_spec(other), uvp::format_error,
                               where(B::kind, "from_spec") + ": the spec is of kind 'Conv1d', expected '" + B::kind +
                                   "'");
}
TEST_CASE_TEMPLATE_APPLY(spec, MatrixBlocks);

TEST_CASE("The specs hold the constructor arguments; a bad spec raises the constructor's error") {
  uvp::Rng rng(1);
  const nn::Dense<float> d(5, 2, rng, false);
  const nn::BlockSpec ds = d.spec();
  CHECK(ds.args == std::vector<std::pair<std::string, double>>{{"in_features", 5}, {"out_features", 2}, {"bias", 0}});
  CHECK_FALSE(nn::Dense<float>::from_spec(ds).has_bias());
  const nn::LayerNorm<double> ln(7, 1e-3, false);
  CHECK(ln.spec().args ==
        std::vector<std::pair<std::string, double>>{{"normalized_shape", 7}, {"eps", 1e-3}, {"elementwise_affine", 0}});
  const auto ln2 = nn::LayerNorm<double>::from_spec(ln.spec());
  CHECK(ln2.eps() == 1e-3);
  CHECK_FALSE(ln2.elementwise_affine());
  CHECK(nn::Dropout<float>(0.125).spec().args == std::vector<std::pair<std::string, double>>{{"p", 0.125}});
  CHECK(nn::Gelu<float>().spec().args.empty());

  nn::BlockSpec bad = ds;
  bad.set("in_features", 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Dense<float>::from_spec(bad), uvp::invalid_argument,
                               "uvp::nn::Dense: in_features must be > 0, got 0");
  bad.set("in_features", 2.5);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Dense<float>::from_spec(bad), uvp::format_error,
                               "Dense argument 'in_features' = 2.5 is not a whole number");
  bad.set("in_features", 1e15);  // in * out would overflow an index
  CHECK_THROWS_AS(nn::Dense<float>::from_spec(bad), uvp::format_error);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Dense<float>::from_spec(nn::BlockSpec("Dense")), uvp::format_error,
                               "uvp::nn::BlockSpec: Dense has no argument 'in_features'");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Dropout<float>::from_spec(nn::BlockSpec("Dropout").set("p", 1.0)),
                               uvp::invalid_argument, "uvp::nn::Dropout: p must be in [0, 1), got 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::LayerNorm<float>::from_spec(ln.spec().set("eps", -1.0)), uvp::invalid_argument,
                               "uvp::nn::LayerNorm: eps must be > 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Softmax<float>().output_width(0), uvp::shape_error,
                               "uvp::nn::Softmax::output_width: Softmax takes at least 1 input feature, got 0");
}

TEST_CASE_TEMPLATE_DEFINE("A contract context reused for a smaller batch allocates nothing", B, alloc) {
  using T = typename B::value_type;
  B b = LowLevel<B>::make();
  const Matrix<T> X = random_matrix<T>(64, kIn, 51);
  const Matrix<T> dY = random_matrix<T>(64, b.output_width(kIn), 52);
  typename B::Context ctx;
  b.forward(X, ctx);
  b.backward(ctx, dY);  // the largest batch
  const long before = uvp_test::allocations.load();
  for (uvp::index rows : {64, 10, 1, 0, 64}) {
    b.forward(X.topRows(rows), ctx);
    b.backward(ctx, dY.topRows(rows));
  }
  CHECK(uvp_test::allocations.load() - before == 0);
}
TEST_CASE_TEMPLATE_APPLY(alloc, MatrixBlocks);

namespace {

// One of each layer kind.
template <class T>
nn::Sequential<T> every_kind() {
  uvp::Rng rng(9);
  nn::Sequential<T> s;
  s.add(nn::Dense<T>(kIn, 6, rng));
  auto& ln = s.add(nn::LayerNorm<T>(6));
  for (T& w : ln.weight()) w = T(0.5 + rng.uniform());
  for (T& v : ln.bias()) v = T(rng.uniform() - 0.5);
  s.add(nn::Relu<T>());
  s.add(nn::Dropout<T>(0.25));
  s.add(nn::Dense<T>(6, 5, rng));
  s.add(nn::Gelu<T>());
  s.add(nn::Dense<T>(5, 4, rng));
  s.add(nn::Tanh<T>());
  s.add(nn::Dense<T>(4, 3, rng));
  s.add(nn::Sigmoid<T>());
  s.add(nn::Dense<T>(3, 3, rng));
  s.add(nn::Softmax<T>());
  return s;
}

template <class T>
std::vector<T> all_grads(nn::Sequential<T>& s) {
  std::vector<T> g;
  const auto list = nn::blocks<T>("s", s);
  for (const auto& e : list.entries())
    g.insert(g.end(), e.block->parameters().grads().begin(), e.block->parameters().grads().end());
  return g;
}

}  // namespace

TEST_CASE_TEMPLATE("Sequential: the contract backward equals the low-level one; finite differences", T, float, double) {
  auto s = every_kind<T>();
  CHECK(s.input_width() == kIn);
  CHECK(s.output_width(kIn) == 3);
  const uvp::index n = 6;
  const Matrix<T> wide = random_matrix<T>(n, kIn + 3, 61);
  const auto X = wide.rightCols(kIn);
  const Matrix<T> dY = random_matrix<T>(n, 3, 62);

  typename nn::Sequential<T>::Context a(17), b(17);
  const Matrix<T> Ya = s.forward(X, a);
  s.zero_grad();
  const Matrix<T> dXa = s.backward(a, dY);
  const auto ga = all_grads(s);
  const Matrix<T> Yb = s.forward(X, b);
  s.zero_grad();
  Matrix<T> dXb(n, kIn);
  s.backward(X, b, dY, dXb);
  CHECK(same_bits(Ya, Yb));
  CHECK(same_bits(dXa, dXb));
  CHECK(all_grads(s) == ga);

  if constexpr (std::is_same_v<T, double>) {
    Matrix<double> Xc = X;
    auto loss = [&] {
      typename nn::Sequential<double>::Context c(17);
      return (s.forward(Xc, c).array() * dY.array()).sum();
    };
    typename nn::Sequential<double>::Context c(17);
    s.forward(Xc, c);
    const Matrix<double> dX = s.backward(c, dY);
    const auto r = uvp::testing::check_gradient(loss, Span<double>(Xc.data(), Xc.size()),
                                                Span<const double>(dX.data(), dX.size()));
    CHECK(r.relative_error < 1e-7);
  }

  // Misuse.
  typename nn::Sequential<T>::Context fresh;
  UVP_CHECK_THROWS_WITH_SUBSTR(s.backward(fresh, dY), uvp::invalid_argument,
                               "uvp::nn::Sequential::backward: ctx holds no forward pass of this Sequential");
  s.forward(X, a);
  UVP_CHECK_THROWS_WITH_SUBSTR(s.backward(a, Matrix<T>(n, 2)), uvp::shape_error,
                               "uvp::nn::Sequential::backward: d_output has shape (6, 2), expected (6, 3)");
  const auto dX = s.backward(a, dY);
  UVP_CHECK_THROWS_WITH_SUBSTR(s.backward(a, dX.leftCols(3)), uvp::invalid_argument,
                               "uvp::nn::Sequential::backward: d_output lies in the context's own");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.forward(s.forward(X, a), a), uvp::invalid_argument,
                               "uvp::nn::Sequential::forward: X lies in the context's own buffers");
  UVP_CHECK_THROWS_WITH_SUBSTR(s.output_width(kIn + 1), uvp::shape_error,
                               "uvp::nn::Sequential::output_width: layer 0 (Dense): uvp::nn::Dense::output_width: "
                               "Dense takes 4 input features, got 5");
  nn::Sequential<T> t;
  t.add(nn::Relu<T>());
  t.add(nn::LayerNorm<T>(3));
  CHECK(t.input_width() == -1);
  UVP_CHECK_THROWS_WITH_SUBSTR(t.output_width(4), uvp::shape_error, "layer 1 (LayerNorm)");
  CHECK(nn::Sequential<T>().input_width() == -1);

  // Allocation-free once the context has seen the largest batch.
  const Matrix<T> Xbig = random_matrix<T>(64, kIn, 63), dYbig = random_matrix<T>(64, 3, 64);
  s.forward(Xbig, a);
  s.backward(a, dYbig);
  const long before = uvp_test::allocations.load();
  for (uvp::index rows : {64, 9, 1, 64}) {
    s.forward(Xbig.topRows(rows), a);
    s.backward(a, dYbig.topRows(rows));
  }
  CHECK(uvp_test::allocations.load() - before == 0);
}

TEST_CASE_TEMPLATE("Sequential: spec lists the layers as children; from_spec rebuilds the chain", T, float, double) {
  auto s = every_kind<T>();
  const nn::BlockSpec spec = s.spec();
  CHECK(spec.kind == "Sequential");
  CHECK(spec.args.empty());
  REQUIRE(spec.children.size() == 12);
  CHECK(spec.children[0] == s.template get<nn::Dense<T>>(0).spec());
  CHECK(spec.children[1].kind == "LayerNorm");
  CHECK(spec.children[3] == nn::BlockSpec("Dropout").set("p", 0.25));
  CHECK(spec.children[11].kind == "Softmax");

  auto r = nn::Sequential<T>::from_spec(spec);
  CHECK(r.spec() == spec);
  REQUIRE(r.parameter_count() == s.parameter_count());
  const auto from = nn::blocks<T>("s", s), to = nn::blocks<T>("s", r);
  REQUIRE(from.size() == to.size());
  for (uvp::index i = 0; i < from.size(); ++i) {
    const auto src = from.entries()[std::size_t(i)].block->parameters().values();
    std::copy(src.begin(), src.end(), to.entries()[std::size_t(i)].block->parameters().values().begin());
  }
  const Matrix<T> X = random_matrix<T>(5, kIn, 71);
  typename nn::Sequential<T>::Context a(4), b(4);
  CHECK(same_bits(s.forward(X, a), r.forward(X, b)));
  s.eval();
  r.eval();
  CHECK(same_bits(s.forward(X, a), r.forward(X, b)));

  nn::BlockSpec unknown = spec;
  unknown.children[1] = nn::BlockSpec("Conv1d");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Sequential<T>::from_spec(unknown), uvp::format_error,
                               "uvp::nn::Sequential::from_spec: child 1 is of kind 'Conv1d', which a Sequential "
                               "cannot hold");
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Sequential<T>::from_spec(spec.children[0]), uvp::format_error,
                               "uvp::nn::Sequential::from_spec: the spec is of kind 'Dense', expected 'Sequential'");
  nn::BlockSpec bad_child = spec;
  bad_child.children[4].set("out_features", -3);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Sequential<T>::from_spec(bad_child), uvp::invalid_argument,
                               "uvp::nn::Dense: out_features must be > 0, got -3");
}

TEST_CASE_TEMPLATE("Sequential's contract forms match torch.nn.Sequential", T, float, double) {
  // Linear(5, 8), Tanh, LayerNorm(8), Linear(8, 3), GELU, from tests/fixtures/make_nn_dense_fixtures.py.
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("nn_dense/sequential.txt"));
  const auto n = uvp::index(f["n"][0]);
  uvp::Rng rng(1);
  nn::Sequential<T> s;
  s.add(nn::Dense<T>(5, 8, rng));
  s.add(nn::Tanh<T>());
  s.add(nn::LayerNorm<T>(8));
  s.add(nn::Dense<T>(8, 3, rng));
  s.add(nn::Gelu<T>());
  auto model = nn::blocks<T>("", s);
  for (const auto& e : model.entries())
    for (const auto& t : e.block->tensors()) {
      const auto& v = f.at(e.name + "." + t.name);
      auto dst = e.block->values(t);
      REQUIRE(dst.size() == uvp::index(v.size()));
      for (uvp::index i = 0; i < dst.size(); ++i) dst[i] = T(v[std::size_t(i)]);
    }
  const Matrix<T> X = uvp::view(f["x"].data(), n, 5).template cast<T>();
  const Matrix<T> dY = uvp::view(f["dy"].data(), n, 3).template cast<T>();
  typename nn::Sequential<T>::Context ctx;
  const auto Y = s.forward(X, ctx);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  CHECK(uvp_test::rel_error(Span<const T>(Y.data(), Y.size()), f["y"]) < tol);
  s.zero_grad();
  const auto dX = s.backward(ctx, dY);
  CHECK(uvp_test::rel_error(Span<const T>(dX.data(), dX.size()), f["dx"]) < tol);
  for (const auto& e : model.entries())
    for (const auto& t : e.block->tensors()) {
      CAPTURE(e.name + "." + t.name);
      CHECK(uvp_test::rel_error(e.block->grads(t), f.at(e.name + "." + t.name + ".grad")) < tol);
    }
}
