// SPDX-License-Identifier: Apache-2.0
// The empty-batch rule (docs/nn.md, "Empty batches"): a batch of 0 rows / 0 sequences is valid
// for every nn block and every loss; forward gives an empty output, backward an empty input
// gradient and leaves every parameter gradient as it was (PyTorch's behaviour), losses are 0.
// Metrics of an empty set are undefined and all raise uvp::invalid_argument.
#include <doctest/doctest.h>

#include <vector>

#include "support/test_support.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/losses/cross_entropy.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/metrics/regression.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/dropout.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/sequential.hpp"

namespace {

using Index = uvp::index;
using uvp::Matrix;

// Sets every parameter gradient of b to a marker, so that "untouched" is visible.
template <class B>
void mark_grads(B& b) {
  for (auto& g : b.parameters().grads()) g = 7.0;
}
template <class B>
bool grads_untouched(const B& b) {
  for (const auto g : b.parameters().grads())
    if (g != 7.0) return false;
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE("matrix blocks: 0 rows in, 0 rows out, parameter gradients untouched", T, float, double) {
  uvp::Rng rng(1);
  const Matrix<T> X(0, 3);
  Matrix<T> Y(0, 3), dX(0, 3);

  uvp::nn::Dense<T> dense(3, 3, rng);
  mark_grads(dense);
  CHECK(dense.forward(X).rows() == 0);
  dense.backward(X, Y, dX);
  CHECK(grads_untouched(dense));

  uvp::nn::Relu<T>().forward(X, Y);
  uvp::nn::Relu<T>().backward(Y, Y, dX);
  uvp::nn::Sigmoid<T>().forward(X, Y);
  uvp::nn::Tanh<T>().forward(X, Y);
  uvp::nn::Gelu<T>().forward(X, Y);
  uvp::nn::Gelu<T>().backward(X, Y, dX);
  uvp::nn::Softmax<T>().forward(X, Y);
  uvp::nn::Softmax<T>().backward(Y, Y, dX);

  uvp::nn::Dropout<T> drop(0.5);
  typename uvp::nn::Dropout<T>::Context dctx;
  drop.forward(X, Y, dctx, rng);
  CHECK(dctx.holds_forward());
  drop.backward(dctx, Y, dX);

  uvp::nn::LayerNorm<T> ln(3);
  typename uvp::nn::LayerNorm<T>::Context lctx;
  mark_grads(ln);
  ln.forward(X, Y, lctx);
  CHECK(lctx.holds_forward());
  CHECK(lctx.mean().size() == 0);
  ln.backward(X, lctx, Y, dX);
  CHECK(grads_untouched(ln));

  auto mlp = uvp::nn::make_mlp<T>({3, 4, 2}, uvp::nn::Activation::relu, rng, {uvp::nn::Activation::none, 0.2, true});
  typename uvp::nn::Sequential<T>::Context sctx;
  const auto out = mlp.forward(X, sctx);
  CHECK(out.rows() == 0);
  CHECK(out.cols() == 2);
  for (Index i = 0; i < mlp.size(); ++i) std::visit([](auto& b) { mark_grads(b); }, mlp.layer(i));
  Matrix<T> dY(0, 2);
  mlp.backward(X, sctx, dY, dX);
  for (Index i = 0; i < mlp.size(); ++i)
    CHECK(std::visit([](const auto& b) { return grads_untouched(b); }, mlp.layer(i)));
}

TEST_CASE_TEMPLATE("Embedding: no ids and no bags", T, float, double) {
  uvp::Rng rng(2);
  uvp::nn::Embedding<T> emb(10, 4, rng);
  const std::vector<Index> none;
  CHECK(emb.forward(uvp::as_span(none)).rows() == 0);
  emb.backward(uvp::as_span(none), Matrix<T>(0, 4));
  CHECK(emb.sparse_grad().size() == 0);
  CHECK(emb.forward_bag(uvp::as_span(none), uvp::as_span(none)).rows() == 0);
  emb.backward_bag(uvp::as_span(none), uvp::as_span(none), uvp::nn::BagMode::mean, Matrix<T>(0, 4));
  CHECK(emb.sparse_grad().size() == 0);
}

TEST_CASE_TEMPLATE("sequence blocks: batch = 0 sequences", T, float, double) {
  uvp::Rng rng(3);
  const Index L = 4;
  const Matrix<T> X(0, 3);
  const std::vector<Index> no_lengths;

  uvp::nn::Lstm<T> lstm(3, 5, rng);
  typename uvp::nn::Lstm<T>::Context ctx;
  mark_grads(lstm);
  lstm.forward(X, 0, L, {}, ctx);
  CHECK(ctx.holds_forward());
  CHECK(ctx.output().rows() == 0);
  CHECK(ctx.last_hidden().rows() == 0);
  Matrix<T> dX(0, 3), h_last(0, 5);
  lstm.backward(X, Matrix<T>(0, 5), Matrix<T>(0, 5), dX, ctx);
  CHECK(grads_untouched(lstm));
  lstm.forward_last(X, 0, L, uvp::as_span(no_lengths), h_last, ctx);
  CHECK(ctx.holds_forward());

  uvp::nn::LstmCell<T> cell(3, 5, rng);
  typename uvp::nn::LstmCell<T>::Context cctx;
  mark_grads(cell);
  Matrix<T> h(0, 5), c(0, 5), h1(0, 5), c1(0, 5), dh(0, 5), dc(0, 5);
  cell.forward(X, h, c, h1, c1, cctx);
  cell.backward(X, h, c, h1, c1, dX, dh, dc, cctx);
  CHECK(grads_untouched(cell));

  uvp::nn::MultiHeadSelfAttention<T> mha(4, 2, rng);
  typename uvp::nn::MultiHeadSelfAttention<T>::Context actx;
  mark_grads(mha);
  const Matrix<T> Xa(0, 4);
  Matrix<T> Ya(0, 4), dXa(0, 4), W(0, L);
  mha.forward(Xa, 0, L, {}, Ya, actx);
  mha.attention_weights(actx, W);
  mha.backward(Xa, Ya, dXa, actx);
  CHECK(grads_untouched(mha));

  uvp::nn::Conv1d<T> conv(3, 2, 3, rng);
  typename uvp::nn::Conv1d<T>::Context vctx;
  mark_grads(conv);
  Matrix<T> Yc(0, 2);
  conv.forward(X, 0, L, {}, Yc, vctx);
  CHECK(conv.forward(X, 0, L, {}, vctx).rows() == 0);
  conv.backward(X, Yc, dX, vctx);
  CHECK(grads_untouched(conv));

  uvp::nn::GlobalMaxPool1d<T> maxpool;
  uvp::nn::GlobalMeanPool1d<T> meanpool;
  std::vector<Index> argmax;
  CHECK(maxpool.forward(X, 0, L, {}, argmax).rows() == 0);
  CHECK(argmax.empty());
  CHECK(meanpool.forward(X, 0, L).rows() == 0);
  maxpool.backward(Matrix<T>(0, 3), uvp::as_span(argmax), dX);
  meanpool.backward(Matrix<T>(0, 3), {}, dX);
  // An empty dY with a non-empty dX is still a shape error.
  Matrix<T> dX6(6, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.backward(Matrix<T>(0, 3), {}, dX6), uvp::shape_error,
                               "uvp::nn::GlobalMeanPool1d::backward: dX has 6 rows, expected 0");
}

TEST_CASE_TEMPLATE("losses of an empty batch are 0 for both reductions, with nothing written", T, float, double) {
  const std::vector<T> none;
  for (const auto red : {uvp::Reduction::mean, uvp::Reduction::sum}) {
    CHECK(uvp::bce_with_logits<T>(uvp::as_span(none), uvp::as_span(none), {}, {}, red) == 0.0);
    CHECK(uvp::mse_loss<T>(uvp::as_span(none), uvp::as_span(none), {}, {}, red) == 0.0);
    const Matrix<T> logits(0, 3);
    Matrix<T> grad(0, 3);
    const std::vector<Index> targets;
    CHECK(uvp::softmax_cross_entropy<T>(logits, uvp::as_span(targets), grad, {}, red) == 0.0);
  }
  // Sizes are still checked, and a class dimension of 0 is not a batch of 0.
  const std::vector<T> one{T(1)};
  CHECK_THROWS_AS(uvp::mse_loss<T>(uvp::as_span(none), uvp::as_span(one)), uvp::shape_error);
  const std::vector<Index> t1{0};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::softmax_cross_entropy<T>(Matrix<T>(1, 0), uvp::as_span(t1)), uvp::shape_error,
                               "uvp::softmax_cross_entropy: logits has 0 columns");
  std::vector<T> g(0);
  CHECK(uvp::detail::bce_logits_batch<T>(nullptr, nullptr, nullptr, g.data(), 0) == 0.0);
}

TEST_CASE_TEMPLATE("metrics of an empty set all raise uvp::invalid_argument naming the argument", T, float, double) {
  const std::vector<T> none;
  const auto e = uvp::as_span(none);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::accuracy<T>(e, e), uvp::invalid_argument, "uvp::accuracy: y_true is empty");
  CHECK_THROWS_AS(uvp::precision<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::recall<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::f1_score<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::confusion_matrix<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::log_loss<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::roc_auc<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::roc_curve<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::precision_recall_curve<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::average_precision<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::pr_auc<T>(e, e), uvp::invalid_argument);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mae<T>(e, e), uvp::invalid_argument, "uvp::mae: y_true is empty");
  CHECK_THROWS_AS(uvp::mse<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::rmse<T>(e, e), uvp::invalid_argument);
  CHECK_THROWS_AS(uvp::r2_score<T>(e, e), uvp::invalid_argument);
}
