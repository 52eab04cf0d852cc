// SPDX-License-Identifier: Apache-2.0
// The contract every nn Context shares (detail::NnContextBase): a context holds a forward pass
// only once that forward has completed; a forward that throws, at any point, leaves none, and
// backward then throws instead of reading stale buffers; a context from a block of another shape
// is refused; Index accessors name the Index and its bound.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/sequential.hpp"

namespace {

using Index = uvp::index;
using uvp::Matrix;
constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

Matrix<double> filled(Index rows, Index cols, double phase = 0.3) {
  Matrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = std::sin(phase * double(i + 1));
  return m;
}

}  // namespace

TEST_CASE("MultiHeadSelfAttention: a forward that threw leaves no context; accessors check b and h") {
  uvp::Rng rng(1);
  uvp::nn::MultiHeadSelfAttention<double> mha(4, 2, rng);
  uvp::nn::MultiHeadSelfAttention<double>::Context ctx;
  const Matrix<double> X = filled(6, 4);
  Matrix<double> Y(6, 4), dX(6, 4);
  CHECK_FALSE(ctx.holds_forward());
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.probabilities(0, 0), uvp::invalid_argument,
                               "uvp::nn::MultiHeadSelfAttention::Context::probabilities: ctx holds no forward pass");
  mha.forward(X, 2, 3, {}, Y, ctx);
  CHECK(ctx.holds_forward());
  CHECK(ctx.probabilities(1, 1).rows() == 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.probabilities(2, 0), uvp::out_of_range_error,
                               "uvp::nn::MultiHeadSelfAttention::Context::probabilities: b = 2 is outside [0, batch = 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.probabilities(-1, 0), uvp::out_of_range_error, "b = -1 is outside [0, batch = 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.probabilities(0, 2), uvp::out_of_range_error, "h = 2 is outside [0, num_heads = 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.probabilities(0, -3), uvp::out_of_range_error, "h = -3 is outside [0, num_heads = 2)");

  // The same context, a forward that fails on its finite check (after the context was resized).
  Matrix<double> Xbad = filled(8, 4);
  Xbad(5, 2) = nan_v;
  Matrix<double> Ybad(8, 4);
  CHECK_THROWS_AS(mha.forward(Xbad, 2, 4, {}, Ybad, ctx), uvp::numeric_error);
  CHECK_FALSE(ctx.holds_forward());
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, Y, dX, ctx), uvp::invalid_argument,
                               "uvp::nn::MultiHeadSelfAttention::backward: ctx holds no forward pass of this "
                               "MultiHeadSelfAttention (call forward first; a forward that threw leaves none)");
  CHECK_THROWS_AS(ctx.probabilities(0, 0), uvp::invalid_argument);
  // A shape check that fails before anything is touched invalidates it too.
  mha.forward(X, 2, 3, {}, Y, ctx);
  CHECK_THROWS_AS(mha.forward(X, 2, 4, {}, Y, ctx), uvp::shape_error);
  CHECK_THROWS_AS(mha.backward(X, Y, dX, ctx), uvp::invalid_argument);
  // A context filled by a block of another shape.
  uvp::nn::MultiHeadSelfAttention<double> other(4, 1, rng);
  other.forward(X, 2, 3, {}, Y, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(mha.backward(X, Y, dX, ctx), uvp::invalid_argument,
                               "ctx comes from a block with embed_dim = 4, num_heads = 1, this one has embed_dim = 4, "
                               "num_heads = 2");
}

TEST_CASE("Lstm: a forward that threw leaves no context; its views are empty; another shape is refused") {
  uvp::Rng rng(2);
  uvp::nn::Lstm<double> lstm(3, 5, rng);
  uvp::nn::Lstm<double>::Context ctx;
  const Matrix<double> X = filled(8, 3);
  const Matrix<double> dH = filled(8, 5, 0.7);
  Matrix<double> dX(8, 3);
  lstm.forward(X, 2, 4, {}, ctx);
  CHECK(ctx.holds_forward());
  CHECK(ctx.output().rows() == 8);
  CHECK_NOTHROW(lstm.backward(X, dH, Matrix<double>(), dX, ctx));

  Matrix<double> Xbad = X;
  Xbad(7, 1) = nan_v;
  CHECK_THROWS_AS(lstm.forward(Xbad, 2, 4, {}, ctx), uvp::numeric_error);
  CHECK_FALSE(ctx.holds_forward());
  CHECK_FALSE(ctx.has_history());
  CHECK(ctx.output().rows() == 0);
  CHECK(ctx.last_hidden().rows() == 0);
  CHECK(ctx.gates().rows() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, Matrix<double>(), dX, ctx), uvp::invalid_argument,
                               "uvp::nn::Lstm::backward: ctx holds no forward pass of this Lstm");
  // forward_last that fails on h_last's shape.
  lstm.forward(X, 2, 4, {}, ctx);
  Matrix<double> h_bad(3, 5);
  CHECK_THROWS_AS(lstm.forward_last(X, 2, 4, {}, h_bad, ctx), uvp::shape_error);
  CHECK_THROWS_AS(lstm.backward(X, dH, Matrix<double>(), dX, ctx), uvp::invalid_argument);

  uvp::nn::Lstm<double> wide(3, 6, rng);
  wide.forward(X, 2, 4, {}, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(lstm.backward(X, dH, Matrix<double>(), dX, ctx), uvp::invalid_argument,
                               "ctx comes from a block with input_size = 3, hidden_size = 6, this one has "
                               "input_size = 3, hidden_size = 5");
}

TEST_CASE("LstmCell: a forward that threw leaves no context") {
  uvp::Rng rng(3);
  uvp::nn::LstmCell<double> cell(3, 4, rng);
  uvp::nn::LstmCell<double>::Context ctx;
  const Matrix<double> x = filled(2, 3), h = filled(2, 4, 0.5), c = filled(2, 4, 0.9);
  Matrix<double> h1(2, 4), c1(2, 4), dx(2, 3), dh(2, 4), dc(2, 4);
  cell.forward(x, h, c, h1, c1, ctx);
  CHECK(ctx.gates().rows() == 2);
  CHECK_NOTHROW(cell.backward(x, h, c, h1, c1, dx, dh, dc, ctx));
  Matrix<double> cbad = c;
  cbad(1, 3) = nan_v;
  CHECK_THROWS_AS(cell.forward(x, h, cbad, h1, c1, ctx), uvp::numeric_error);
  CHECK(ctx.gates().rows() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(cell.backward(x, h, c, h1, c1, dx, dh, dc, ctx), uvp::invalid_argument,
                               "uvp::nn::LstmCell::backward: ctx holds no forward pass of this LstmCell");
}

TEST_CASE("Conv1d: a forward that threw (bad lengths, after resizing ctx) leaves no context") {
  uvp::Rng rng(4);
  uvp::nn::Conv1d<double> conv(2, 3, 3, rng);
  uvp::nn::Conv1d<double>::Context ctx;
  const Matrix<double> X = filled(10, 2);
  Matrix<double> Y(6, 3), dX(10, 2);
  const Matrix<double> dY = filled(6, 3, 0.2);
  conv.forward(X, 2, 5, {}, Y, ctx);
  CHECK_NOTHROW(conv.backward(X, dY, dX, ctx));
  const std::vector<Index> too_short{5, 2};
  CHECK_THROWS_AS(conv.forward(X, 2, 5, uvp::as_span(too_short), Y, ctx), uvp::invalid_argument);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dY, dX, ctx), uvp::invalid_argument,
                               "uvp::nn::Conv1d::backward: ctx holds no forward pass of this Conv1d");
  uvp::nn::Conv1d<double> strided(2, 3, 3, rng, {2, 1, true});
  Matrix<double> Y2(6, 3);
  strided.forward(X, 2, 5, {}, Y2, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(X, dY, dX, ctx), uvp::invalid_argument,
                               "ctx comes from a block with in_channels = 2, out_channels = 3, kernel_size = 3, "
                               "stride = 2, padding = 1");
}

TEST_CASE("LayerNorm and Dropout: a forward that threw leaves no context") {
  uvp::nn::LayerNorm<double> ln(3);
  uvp::nn::LayerNorm<double>::Context lctx;
  const Matrix<double> X = filled(4, 3);
  Matrix<double> Y(4, 3), dX(4, 3);
  ln.forward(X, Y, lctx);
  CHECK(lctx.mean().size() == 4);
  CHECK_NOTHROW(ln.backward(X, lctx, Y, dX));
  Matrix<double> Xbad = X;
  Xbad(0, 0) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(ln.forward(Xbad, Y, lctx), uvp::numeric_error);
  CHECK(lctx.mean().size() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.backward(X, lctx, Y, dX), uvp::invalid_argument,
                               "uvp::nn::LayerNorm::backward: ctx holds no forward pass of this LayerNorm");
  uvp::nn::LayerNorm<double> ln4(4);
  Matrix<double> X4 = filled(4, 4), Y4(4, 4);
  ln4.forward(X4, Y4, lctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(ln.backward(X, lctx, Y, dX), uvp::invalid_argument,
                               "ctx comes from a block with normalized_shape = 4, this one has normalized_shape = 3");

  uvp::nn::Dropout<double> drop(0.5);
  uvp::nn::Dropout<double>::Context dctx;
  uvp::Rng rng(5);
  drop.forward(X, Y, dctx, rng);
  CHECK(dctx.mask_matrix().rows() == 4);
  CHECK_NOTHROW(drop.backward(dctx, Y, dX));
  CHECK_THROWS_AS(drop.forward(Xbad, Y, dctx, rng), uvp::numeric_error);
  CHECK(dctx.mask_matrix().rows() == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(drop.backward(dctx, Y, dX), uvp::invalid_argument,
                               "uvp::nn::Dropout::backward: ctx holds no forward pass of this Dropout");
}

TEST_CASE("Sequential: output(i) checks i; a forward that threw in a middle layer leaves no context") {
  uvp::Rng rng(6);
  auto mlp = uvp::nn::make_mlp<double>({3, 4, 2}, uvp::nn::Activation::relu, rng);
  uvp::nn::Sequential<double>::Context ctx;
  const Matrix<double> X = filled(5, 3);
  const Matrix<double> dY = filled(5, 2, 0.4);
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.output(0), uvp::invalid_argument,
                               "uvp::nn::Sequential::Context::output: ctx holds no forward pass");
  mlp.forward(X, ctx);
  CHECK(ctx.output(2).cols() == 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.output(3), uvp::out_of_range_error,
                               "uvp::nn::Sequential::Context::output: i = 3 is outside [0, layers = 3)");
  UVP_CHECK_THROWS_WITH_SUBSTR(ctx.output(-1), uvp::out_of_range_error, "i = -1 is outside [0, layers = 3)");
  CHECK_NOTHROW(mlp.backward(X, ctx, dY));
  // Huge weights make the first Dense overflow to inf: the Relu after it is fed a non-finite X.
  auto huge = uvp::nn::make_mlp<double>({3, 4, 2}, uvp::nn::Activation::relu, rng);
  huge.get<uvp::nn::Dense<double>>(0).weight().setConstant(1e308);
  Matrix<double> Xbig = Matrix<double>::Constant(5, 3, 1e308);
  CHECK_THROWS_AS(huge.forward(Xbig, ctx), uvp::numeric_error);
  CHECK_FALSE(ctx.holds_forward());
  UVP_CHECK_THROWS_WITH_SUBSTR(huge.backward(Xbig, ctx, dY), uvp::invalid_argument,
                               "uvp::nn::Sequential::backward: ctx holds no forward pass of this Sequential");
  CHECK_THROWS_AS(ctx.output(0), uvp::invalid_argument);
}
