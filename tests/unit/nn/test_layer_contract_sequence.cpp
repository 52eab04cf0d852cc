// SPDX-License-Identifier: Apache-2.0
// The layer contract (uvp/nn/layer.hpp) of the sequence blocks: Embedding, EmbeddingBag,
// PositionEmbedding, the global poolings, MultiHeadSelfAttention and Conv1d. The contract forms
// against the low-level forms (bit for bit), against central differences, on bad input, and their
// specs; allocation-free once their contexts have grown.
#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/embedding_bag.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/testing/gradient_check.hpp"

namespace nn = uvp::nn;
using Index = uvp::index;
using uvp::Span;

static_assert(nn::check_layer<nn::Embedding<float>>() && nn::check_layer<nn::Embedding<double>>());
static_assert(nn::check_layer<nn::EmbeddingBag<float>>() && nn::check_layer<nn::EmbeddingBag<double>>());
static_assert(nn::check_layer<nn::PositionEmbedding<float>>() && nn::check_layer<nn::PositionEmbedding<double>>());
static_assert(nn::check_layer<nn::GlobalMaxPool1d<float>>() && nn::check_layer<nn::GlobalMaxPool1d<double>>());
static_assert(nn::check_layer<nn::GlobalMeanPool1d<float>>() && nn::check_layer<nn::GlobalMeanPool1d<double>>());
static_assert(nn::check_layer<nn::GlobalLastPool1d<float>>() && nn::check_layer<nn::GlobalLastPool1d<double>>());
static_assert(nn::check_layer<nn::MultiHeadSelfAttention<float>>() &&
              nn::check_layer<nn::MultiHeadSelfAttention<double>>());
static_assert(nn::check_layer<nn::Conv1d<float>>() && nn::check_layer<nn::Conv1d<double>>());
static_assert(std::is_same_v<nn::gradient_t<nn::Embedding<float>::input_type>, nn::NoGradient>);
static_assert(std::is_same_v<nn::gradient_t<nn::GlobalLastPool1d<double>::input_type>, nn::SequenceBatch<double>>);

namespace {

template <class T>
uvp::Matrix<T> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  uvp::Rng rng(seed);
  uvp::Matrix<T> m(rows, cols);
  uvp::init::normal(Span<T>(m.data(), m.size()), 0.0, 1.0, rng);
  return m;
}

// A named matrix as a batch of sequences (rows b * steps + t).
template <class T>
nn::SequenceBatch<T> seq(const uvp::Matrix<T>& m, Index batch, Index steps, Span<const Index> lengths = {}) {
  return {uvp::ConstMatrixView<T>(m.data(), m.rows(), m.cols()), batch, steps, lengths};
}

template <class A, class B>
bool same(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

template <class T>
bool same_sparse(const nn::SparseRowGrad<T>& a, const nn::SparseRowGrad<T>& b) {
  return a.rows == b.rows && a.values == b.values;
}

// sum over every row of <G, y>: the scalar whose gradient with respect to y is G.
template <class A>
double dot(const A& y, const uvp::Matrix<double>& G) {
  return (y.array() * G.array()).sum();
}

// Central differences of f() with respect to every element of m against `analytic`.
template <class F>
double fd_error(F&& f, uvp::Matrix<double>& m, const uvp::Matrix<double>& analytic) {
  return uvp::testing::check_gradient(f, Span<double>(m.data(), m.size()),
                                      Span<const double>(analytic.data(), analytic.size()))
      .relative_error;
}

template <class Batch>
void check_batch(const Batch& y, Index batch, Index steps, Index features, Span<const Index> lengths) {
  CHECK(y.batch == batch);
  CHECK(y.steps == steps);
  CHECK(y.features == features);
  CHECK(y.lengths.size() == lengths.size());
  for (Index b = 0; b < lengths.size() && b < y.lengths.size(); ++b) CHECK(y.lengths[b] == lengths[b]);
}

const std::vector<Index> kLengths = {4, 1, 3};  // batch 3, steps 4: full, one step, in between

}  // namespace

// ---- Embedding -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("Embedding: contract forward / backward equal the low-level forms", T, float, double) {
  uvp::Rng r1(7), r2(7);
  nn::Embedding<T> a(10, 3, r1, 0), b(10, 3, r2, 0);
  const std::vector<Index> ids = {3, 5, 3, 0, 7, 0, 0, 0, 9, 9, 2, 0};  // batch 3 x steps 4, 0 = padding
  const nn::TokenBatch x(uvp::as_span(ids), 3, 4, uvp::as_span(kLengths));
  typename nn::Embedding<T>::Context ctx;
  const nn::SequenceBatch<T> y = a.forward(x, ctx);
  check_batch(y, 3, 4, 3, uvp::as_span(kLengths));
  CHECK(same(y.values(), b.forward(uvp::as_span(ids))));

  const uvp::Matrix<T> G = random_matrix<T>(12, 3, 1);
  const nn::NoGradient none = a.backward(ctx, seq<T>(G, 3, 4, uvp::as_span(kLengths)));
  (void)none;
  b.backward(uvp::as_span(ids), G);
  CHECK(a.sparse_grad().size() == 5);  // 3, 5, 7, 9, 2 (0 is padding)
  CHECK(same_sparse(a.sparse_grad(), b.sparse_grad()));

  // A second backward accumulates, as the low-level one does.
  a.backward(ctx, seq<T>(G, 3, 4));
  b.backward(uvp::as_span(ids), G);
  CHECK(same_sparse(a.sparse_grad(), b.sparse_grad()));
  CHECK(a.input_width() == -1);
  CHECK(a.output_width(-1) == 3);
}

TEST_CASE("Embedding: contract errors, and the spec round trip") {
  uvp::Rng rng(1);
  nn::Embedding<double> emb(6, 2, rng, 5);
  nn::Embedding<double>::Context ctx;
  const uvp::Matrix<double> G = uvp::Matrix<double>::Ones(4, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward(ctx, seq<double>(G, 2, 2)), uvp::invalid_argument,
                               "uvp::nn::Embedding::backward: ctx holds no forward pass of this Embedding");
  const std::vector<Index> ids = {1, 2, 3, 4}, bad = {1, 2, 6, 4};
  emb.forward(nn::TokenBatch(uvp::as_span(ids), 2, 2), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward(ctx, seq<double>(G, 1, 4)), uvp::shape_error,
                               "uvp::nn::Embedding::backward: d_output has batch 1, steps 4 and 2 features, "
                               "expected batch 2, steps 2 and 2 features");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward(nn::TokenBatch(uvp::as_span(bad), 2, 2), ctx), uvp::out_of_range_error,
                               "uvp::nn::Embedding::forward: ids[2] = 6 is out of range [0, 6)");
  // The forward that threw leaves no forward pass behind.
  CHECK_FALSE(ctx.holds_forward());
  CHECK_THROWS_AS(emb.backward(ctx, seq<double>(G, 2, 2)), uvp::invalid_argument);
  const std::vector<Index> zero_length = {2, 0};
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward(nn::TokenBatch(uvp::as_span(ids), 2, 2, uvp::as_span(zero_length)), ctx),
                               uvp::out_of_range_error, "x.lengths[1] = 0 is outside [1, x.steps = 2]");

  const nn::BlockSpec s = emb.spec();
  CHECK(s.kind == "Embedding");
  CHECK(s.get("num_embeddings") == 6);
  CHECK(s.get("embedding_dim") == 2);
  CHECK(s.get("padding_idx") == 5);
  CHECK(nn::Embedding<double>::from_spec(s).spec() == s);
  UVP_CHECK_THROWS_WITH_SUBSTR(nn::Embedding<double>::from_spec(nn::BlockSpec("Dense")), uvp::format_error,
                               "uvp::nn::Embedding::from_spec");
}

// ---- EmbeddingBag --------------------------------------------------------------------------

TEST_CASE_TEMPLATE("EmbeddingBag: equals Embedding::forward_bag / backward_bag, sum and mean", T, float, double) {
  const std::vector<Index> ids = {1, 4, 4, 0, 2, 3, 0}, offsets = {0, 3, 3, 5};  // bag 1 empty, 0 = padding
  for (const nn::BagMode mode : {nn::BagMode::sum, nn::BagMode::mean}) {
    uvp::Rng r1(3), r2(3);
    nn::EmbeddingBag<T> bag(5, 4, r1, mode, 0);
    nn::Embedding<T> emb(5, 4, r2, 0);
    typename nn::EmbeddingBag<T>::Context ctx;
    const uvp::ConstMatrixView<T> y = bag.forward(nn::TokenBags{uvp::as_span(ids), uvp::as_span(offsets)}, ctx);
    CHECK(same(y, emb.forward_bag(uvp::as_span(ids), uvp::as_span(offsets), mode)));
    CHECK(bag.tensors()[0].name == "weight");
    CHECK(bag.tensors()[0].sparse);
    const uvp::Matrix<T> G = random_matrix<T>(4, 4, 2);
    bag.backward(ctx, G);
    emb.backward_bag(uvp::as_span(ids), uvp::as_span(offsets), mode, G);
    CHECK(same_sparse(bag.sparse_grad(), emb.sparse_grad()));
    CHECK(bag.output_width(-1) == 4);

    UVP_CHECK_THROWS_WITH_SUBSTR(bag.backward(ctx, uvp::Matrix<T>::Zero(3, 4)), uvp::shape_error,
                                 "uvp::nn::EmbeddingBag::backward: d_output has shape (3, 4), expected (4, 4)");
    const nn::BlockSpec s = bag.spec();
    CHECK(s.kind == "EmbeddingBag");
    CHECK(s.get("mode") == (mode == nn::BagMode::sum ? 0 : 1));
    CHECK(s.get("padding_idx") == 0);
    const nn::EmbeddingBag<T> back = nn::EmbeddingBag<T>::from_spec(s);
    CHECK(back.mode() == mode);
    CHECK(back.spec() == s);
  }
  uvp::Rng rng(1);
  nn::EmbeddingBag<T> bag(5, 4, rng);
  typename nn::EmbeddingBag<T>::Context ctx;
  UVP_CHECK_THROWS_WITH_SUBSTR(bag.backward(ctx, uvp::Matrix<T>::Zero(1, 4)), uvp::invalid_argument,
                               "uvp::nn::EmbeddingBag::backward: ctx holds no forward pass");
  const std::vector<Index> two = {1, 2}, good_offsets = {0, 1}, bad_offsets = {1, 0};
  bag.forward(nn::TokenBags{uvp::as_span(two), uvp::as_span(good_offsets)}, ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(bag.forward(nn::TokenBags{uvp::as_span(two), uvp::as_span(bad_offsets)}, ctx),
                               uvp::invalid_argument, "uvp::nn::Embedding::forward_bag: offsets[0] = 1, expected 0");
  CHECK_THROWS_AS(bag.backward(ctx, uvp::Matrix<T>::Zero(2, 4)), uvp::invalid_argument);
}

// ---- PositionEmbedding ---------------------------------------------------------------------

TEST_CASE("PositionEmbedding: rows are weight[t], the gradient matches finite differences") {
  uvp::Rng rng(5);
  nn::PositionEmbedding<double> pos(6, 3, rng);
  CHECK(pos.tensors().size() == 1);
  CHECK(pos.tensors()[0].name == "weight");
  CHECK(pos.tensors()[0].shape == std::vector<Index>{6, 3});
  CHECK_FALSE(pos.tensors()[0].sparse);
  const std::vector<Index> ids(12, 99);  // never read
  const nn::TokenBatch x(uvp::as_span(ids), 3, 4, uvp::as_span(kLengths));
  nn::PositionEmbedding<double>::Context ctx;
  const nn::SequenceBatch<double> y = pos.forward(x, ctx);
  check_batch(y, 3, 4, 3, uvp::as_span(kLengths));
  for (Index b = 0; b < 3; ++b)
    for (Index t = 0; t < 4; ++t) CHECK(same(y.values().row(b * 4 + t), pos.weight().row(t)));

  const uvp::Matrix<double> G = random_matrix<double>(12, 3, 9);
  pos.zero_grad();
  pos.backward(ctx, seq<double>(G, 3, 4));
  const uvp::Matrix<double> analytic = pos.weight_grad();
  CHECK(analytic.bottomRows(2).isZero(0));  // steps 4, 5 unused
  uvp::Matrix<double> w = pos.weight();
  const double err = fd_error(
      [&] {
        pos.weight() = w;
        nn::PositionEmbedding<double>::Context c;
        return dot(pos.forward(x, c).values(), G);
      },
      w, analytic);
  CHECK(err < 1e-8);
}

TEST_CASE("PositionEmbedding: contract errors, and the spec round trip") {
  uvp::Rng rng(5);
  nn::PositionEmbedding<float> pos(3, 2, rng);
  nn::PositionEmbedding<float>::Context ctx;
  const std::vector<Index> ids(8, 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(pos.backward(ctx, seq<float>(uvp::Matrix<float>::Zero(8, 2), 2, 4)),
                               uvp::invalid_argument, "ctx holds no forward pass of this PositionEmbedding");
  UVP_CHECK_THROWS_WITH_SUBSTR(pos.forward(nn::TokenBatch(uvp::as_span(ids), 2, 4), ctx), uvp::out_of_range_error,
                               "uvp::nn::PositionEmbedding::forward: x.steps = 4 exceeds max_steps = 3");
  pos.forward(nn::TokenBatch(Span<const Index>(ids.data(), 6), 2, 3), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(pos.backward(ctx, seq<float>(uvp::Matrix<float>::Zero(6, 3), 2, 3)),
                               uvp::shape_error, "uvp::nn::PositionEmbedding::backward: d_output has");
  CHECK_THROWS_AS(pos.forward(nn::TokenBatch(uvp::as_span(ids), 2, 4), ctx), uvp::out_of_range_error);
  CHECK_THROWS_AS(pos.backward(ctx, seq<float>(uvp::Matrix<float>::Zero(6, 2), 2, 3)), uvp::invalid_argument);
  const nn::BlockSpec s = pos.spec();
  CHECK(s.kind == "PositionEmbedding");
  CHECK(s.get("max_steps") == 3);
  CHECK(s.get("embedding_dim") == 2);
  CHECK(nn::PositionEmbedding<float>::from_spec(s).spec() == s);
}

// ---- Poolings ------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("Max and mean pooling: contract forms equal the low-level forms", T, float, double) {
  const uvp::Matrix<T> X = random_matrix<T>(12, 5, 11);
  const uvp::Matrix<T> G = random_matrix<T>(3, 5, 12);
  const nn::SequenceBatch<T> x = seq<T>(X, 3, 4, uvp::as_span(kLengths));
  {
    nn::GlobalMaxPool1d<T> pool;
    typename nn::GlobalMaxPool1d<T>::Context ctx;
    std::vector<Index> argmax;
    const uvp::Matrix<T> Y = pool.forward(X, 3, 4, uvp::as_span(kLengths), argmax);
    CHECK(same(pool.forward(x, ctx), Y));
    CHECK(std::vector<Index>(ctx.argmax().begin(), ctx.argmax().end()) == argmax);
    uvp::Matrix<T> dX(12, 5);
    pool.backward(G, uvp::as_span(argmax), dX);
    const nn::SequenceBatch<T> dx = pool.backward(ctx, G);
    check_batch(dx, 3, 4, 5, uvp::as_span(kLengths));
    CHECK(same(dx.values(), dX));
    CHECK(pool.parameter_count() == 0);
  }
  {
    nn::GlobalMeanPool1d<T> pool;
    typename nn::GlobalMeanPool1d<T>::Context ctx;
    CHECK(same(pool.forward(x, ctx), pool.forward(X, 3, 4, uvp::as_span(kLengths))));
    uvp::Matrix<T> dX(12, 5);
    pool.backward(G, uvp::as_span(kLengths), dX);
    const nn::SequenceBatch<T> dx = pool.backward(ctx, G);
    check_batch(dx, 3, 4, 5, uvp::as_span(kLengths));
    CHECK(same(dx.values(), dX));
  }
}

TEST_CASE("GlobalLastPool1d: the last valid step, lengths 1 and == steps; finite differences") {
  const std::vector<Index> lengths = {4, 1, 3, 2};
  uvp::Matrix<double> X = random_matrix<double>(16, 3, 21);
  X.row(5) = uvp::Matrix<double>::Constant(1, 3, std::numeric_limits<double>::quiet_NaN());  // padding: never read
  nn::GlobalLastPool1d<double> pool;
  nn::GlobalLastPool1d<double>::Context ctx;
  const uvp::ConstMatrixView<double> y = pool.forward(seq<double>(X, 4, 4, uvp::as_span(lengths)), ctx);
  REQUIRE(y.rows() == 4);
  CHECK(same(y.row(0), X.row(3)));   // length == steps
  CHECK(same(y.row(1), X.row(4)));   // length 1
  CHECK(same(y.row(2), X.row(10)));
  CHECK(same(y.row(3), X.row(13)));
  // Without lengths: the last step of each sequence.
  CHECK(same(pool.forward(X.topRows(4), 1, 4), X.row(3)));

  const uvp::Matrix<double> G = random_matrix<double>(4, 3, 22);
  const nn::SequenceBatch<double> dx = pool.backward(ctx, G);
  for (Index r = 0; r < 16; ++r) {
    const Index b = r / 4, t = r % 4;
    if (t == lengths[std::size_t(b)] - 1)
      CHECK(same(dx.values().row(r), G.row(b)));
    else
      CHECK(dx.values().row(r).isZero(0));  // padding rows and earlier steps
  }
  uvp::Matrix<double> Xf = random_matrix<double>(16, 3, 23);
  nn::GlobalLastPool1d<double>::Context c2;
  const uvp::Matrix<double> analytic = [&] {
    pool.forward(seq<double>(Xf, 4, 4, uvp::as_span(lengths)), c2);
    return uvp::Matrix<double>(pool.backward(c2, G).values());
  }();
  const double err = fd_error(
      [&] {
        nn::GlobalLastPool1d<double>::Context c;
        return dot(pool.forward(seq<double>(Xf, 4, 4, uvp::as_span(lengths)), c), G);
      },
      Xf, analytic);
  CHECK(err < 1e-9);
}

TEST_CASE("Poolings: contract errors, and the spec round trips") {
  const uvp::Matrix<float> X = random_matrix<float>(12, 2, 1);
  const nn::SequenceBatch<float> x = seq<float>(X, 3, 4, uvp::as_span(kLengths));
  nn::GlobalMaxPool1d<float> maxpool;
  nn::GlobalMeanPool1d<float> meanpool;
  nn::GlobalLastPool1d<float> lastpool;
  nn::GlobalMaxPool1d<float>::Context cmax;
  nn::GlobalMeanPool1d<float>::Context cmean;
  nn::GlobalLastPool1d<float>::Context clast;
  const uvp::Matrix<float> G = uvp::Matrix<float>::Ones(3, 2), bad = uvp::Matrix<float>::Ones(3, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.backward(cmax, G), uvp::invalid_argument,
                               "uvp::nn::GlobalMaxPool1d::backward: ctx holds no forward pass");
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.backward(cmean, G), uvp::invalid_argument,
                               "uvp::nn::GlobalMeanPool1d::backward: ctx holds no forward pass");
  UVP_CHECK_THROWS_WITH_SUBSTR(lastpool.backward(clast, G), uvp::invalid_argument,
                               "uvp::nn::GlobalLastPool1d::backward: ctx holds no forward pass");
  maxpool.forward(x, cmax);
  meanpool.forward(x, cmean);
  lastpool.forward(x, clast);
  UVP_CHECK_THROWS_WITH_SUBSTR(maxpool.backward(cmax, bad), uvp::shape_error,
                               "uvp::nn::GlobalMaxPool1d::backward: d_output has shape (3, 3), expected (3, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.backward(cmean, bad), uvp::shape_error,
                               "uvp::nn::GlobalMeanPool1d::backward: d_output has shape (3, 3), expected (3, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(lastpool.backward(clast, bad), uvp::shape_error,
                               "uvp::nn::GlobalLastPool1d::backward: d_output has shape (3, 3), expected (3, 2)");
  // A forward that throws (a length past steps) leaves no forward pass behind.
  const std::vector<Index> too_long = {4, 5, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(lastpool.forward(seq<float>(X, 3, 4, uvp::as_span(too_long)), clast),
                               uvp::out_of_range_error, "uvp::nn::GlobalLastPool1d::forward: lengths[1] = 5 exceeds");
  CHECK_THROWS_AS(lastpool.backward(clast, G), uvp::invalid_argument);
  // The context's own output fed back in: refused, not read while overwritten.
  const uvp::ConstMatrixView<float> y = meanpool.forward(x, cmean);
  UVP_CHECK_THROWS_WITH_SUBSTR(meanpool.forward(nn::SequenceBatch<float>(y, 3, 1), cmean), uvp::invalid_argument,
                               "x lies in the context's own buffers");

  CHECK(maxpool.spec() == nn::BlockSpec("GlobalMaxPool1d"));
  CHECK(meanpool.spec() == nn::BlockSpec("GlobalMeanPool1d"));
  CHECK(lastpool.spec() == nn::BlockSpec("GlobalLastPool1d"));
  CHECK(nn::GlobalLastPool1d<float>::from_spec(lastpool.spec()).spec() == lastpool.spec());
  CHECK(nn::GlobalMaxPool1d<float>::from_spec(maxpool.spec()).spec() == maxpool.spec());
  CHECK_THROWS_AS(nn::GlobalMeanPool1d<float>::from_spec(maxpool.spec()), uvp::format_error);
  CHECK(lastpool.output_width(7) == 7);
}

// ---- MultiHeadSelfAttention and Conv1d -----------------------------------------------------

TEST_CASE_TEMPLATE("MultiHeadSelfAttention: contract forms equal the low-level forms", T, float, double) {
  for (const bool causal : {false, true}) {
    uvp::Rng r1(4), r2(4);
    nn::MultiHeadSelfAttention<T> a(4, 2, r1, causal), b(4, 2, r2, causal);
    const uvp::Matrix<T> X = random_matrix<T>(12, 4, 31), G = random_matrix<T>(12, 4, 32);
    typename nn::MultiHeadSelfAttention<T>::Context ca, cb;
    const nn::SequenceBatch<T> y = a.forward(seq<T>(X, 3, 4, uvp::as_span(kLengths)), ca);
    check_batch(y, 3, 4, 4, uvp::as_span(kLengths));
    uvp::Matrix<T> Y(12, 4), dX(12, 4);
    b.forward(X, 3, 4, uvp::as_span(kLengths), Y, cb);
    CHECK(same(y.values(), Y));
    const nn::SequenceBatch<T> dx = a.backward(ca, seq<T>(G, 3, 4, uvp::as_span(kLengths)));
    b.backward(X, G, dX, cb);
    check_batch(dx, 3, 4, 4, uvp::as_span(kLengths));
    CHECK(same(dx.values(), dX));
    CHECK(a.parameters().grads().as_vector() == b.parameters().grads().as_vector());
  }
}

TEST_CASE("MultiHeadSelfAttention: dX through the contract matches finite differences; errors; spec") {
  uvp::Rng rng(8);
  nn::MultiHeadSelfAttention<double> attn(4, 2, rng, true);
  uvp::Matrix<double> X = random_matrix<double>(12, 4, 41);
  const uvp::Matrix<double> G = random_matrix<double>(12, 4, 42);
  nn::MultiHeadSelfAttention<double>::Context ctx;
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.backward(ctx, seq<double>(G, 3, 4)), uvp::invalid_argument,
                               "uvp::nn::MultiHeadSelfAttention::backward: ctx holds no forward pass");
  attn.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), ctx);
  const uvp::Matrix<double> analytic = attn.backward(ctx, seq<double>(G, 3, 4)).values();
  const double err = fd_error(
      [&] {
        nn::MultiHeadSelfAttention<double>::Context c;
        return dot(attn.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), c).values(), G);
      },
      X, analytic);
  CHECK(err < 1e-7);

  attn.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), ctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.backward(ctx, seq<double>(G, 4, 3)), uvp::shape_error,
                               "uvp::nn::MultiHeadSelfAttention::backward: d_output has batch 4, steps 3 and 4 "
                               "features, expected batch 3, steps 4 and 4 features");
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.forward(seq<double>(X.leftCols(3), 3, 4), ctx), uvp::shape_error,
                               "uvp::nn::MultiHeadSelfAttention::forward: X has 3 columns, expected 4");
  CHECK_THROWS_AS(attn.backward(ctx, seq<double>(G, 3, 4)), uvp::invalid_argument);
  // A batch set up by hand with no data, or negative sizes, is refused before anything is read.
  attn.forward(seq<double>(X, 3, 4), ctx);
  nn::SequenceBatch<double> hollow;
  hollow.batch = 3, hollow.steps = 4, hollow.features = 4;
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.backward(ctx, hollow), uvp::invalid_argument,
                               "uvp::nn::MultiHeadSelfAttention::backward: d_output has no data for its 12 rows");
  hollow.batch = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.forward(hollow, ctx), uvp::invalid_argument,
                               "uvp::nn::MultiHeadSelfAttention::forward: x has batch -1, steps 4 and 4 features");
  UVP_CHECK_THROWS_WITH_SUBSTR(attn.output_width(3), uvp::shape_error, "takes 4 input features, got 3");

  const nn::BlockSpec s = attn.spec();
  CHECK(s.kind == "MultiHeadSelfAttention");
  CHECK(s.get("embed_dim") == 4);
  CHECK(s.get("num_heads") == 2);
  CHECK(s.get("causal") == 1);
  const auto back = nn::MultiHeadSelfAttention<double>::from_spec(s);
  CHECK(back.causal());
  CHECK(back.spec() == s);
}

TEST_CASE_TEMPLATE("Conv1d: contract forms equal the low-level forms; output lengths", T, float, double) {
  for (const Index stride : {1, 2}) {
    nn::Conv1dOptions o;
    o.stride = stride;
    o.padding = 1;
    uvp::Rng r1(6), r2(6);
    nn::Conv1d<T> a(3, 2, 3, r1, o), b(3, 2, 3, r2, o);
    const uvp::Matrix<T> X = random_matrix<T>(12, 3, 51);
    typename nn::Conv1d<T>::Context ca, cb;
    const nn::SequenceBatch<T> y = a.forward(seq<T>(X, 3, 4, uvp::as_span(kLengths)), ca);
    const uvp::Matrix<T> Y = b.forward(X, 3, 4, uvp::as_span(kLengths), cb);
    const Index lout = a.output_length(4);
    check_batch(y, 3, lout, 2, cb.output_lengths());
    CHECK(same(y.values(), Y));
    if (stride == 1) check_batch(y, 3, 4, 2, uvp::as_span(kLengths));  // "same" padding keeps the lengths

    const uvp::Matrix<T> G = random_matrix<T>(3 * lout, 2, 52);
    uvp::Matrix<T> dX(12, 3);
    const nn::SequenceBatch<T> dx = a.backward(ca, seq<T>(G, 3, lout));
    b.backward(X, G, dX, cb);
    check_batch(dx, 3, 4, 3, uvp::as_span(kLengths));
    CHECK(same(dx.values(), dX));
    CHECK(a.parameters().grads().as_vector() == b.parameters().grads().as_vector());
  }
}

TEST_CASE("Conv1d: dX through the contract matches finite differences; errors; spec; bound buffers") {
  nn::Conv1dOptions o;
  o.padding = 2;
  o.bias = false;
  uvp::Rng rng(9);
  nn::Conv1d<double> conv(2, 3, 3, rng, o);
  uvp::Matrix<double> X = random_matrix<double>(12, 2, 61);
  const Index lout = conv.output_length(4);  // 6
  const uvp::Matrix<double> G = random_matrix<double>(3 * lout, 3, 62);
  nn::Conv1d<double>::Context ctx;
  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(ctx, seq<double>(G, 3, lout)), uvp::invalid_argument,
                               "uvp::nn::Conv1d::backward: ctx holds no forward pass");
  conv.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), ctx);
  const uvp::Matrix<double> analytic = conv.backward(ctx, seq<double>(G, 3, lout)).values();
  const double err = fd_error(
      [&] {
        nn::Conv1d<double>::Context c;
        return dot(conv.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), c).values(), G);
      },
      X, analytic);
  CHECK(err < 1e-8);

  UVP_CHECK_THROWS_WITH_SUBSTR(conv.backward(ctx, seq<double>(G.topRows(12), 3, 4)), uvp::shape_error,
                               "uvp::nn::Conv1d::backward: d_output has batch 3, steps 4 and 3 features, expected "
                               "batch 3, steps 6 and 3 features");
  // A sequence shorter than one window: the forward throws and leaves no pass behind.
  nn::Conv1d<double> wide(2, 1, 3, rng);
  nn::Conv1d<double>::Context wctx;
  wide.forward(seq<double>(X, 3, 4), wctx);
  UVP_CHECK_THROWS_WITH_SUBSTR(wide.forward(seq<double>(X, 3, 4, uvp::as_span(kLengths)), wctx),
                               uvp::invalid_argument, "lengths[1] = 1 + 2 * padding 0 is shorter than kernel_size 3");
  CHECK_THROWS_AS(wide.backward(wctx, seq<double>(G.topRows(6).leftCols(1), 3, 2)),
                  uvp::invalid_argument);

  const nn::BlockSpec s = conv.spec();
  CHECK(s.kind == "Conv1d");
  CHECK(s.get("in_channels") == 2);
  CHECK(s.get("out_channels") == 3);
  CHECK(s.get("kernel_size") == 3);
  CHECK(s.get("stride") == 1);
  CHECK(s.get("padding") == 2);
  CHECK(s.get("bias") == 0);
  CHECK(nn::Conv1d<double>::from_spec(s).spec() == s);

  // Bound to a model's buffer, the block reads its weights there (nothing cached).
  nn::Conv1d<double> bound = conv;
  uvp::detail::AlignedBuffer<double> values(std::size_t(conv.buffer_size())), grads(values.size());
  bound.bind(Span<double>(values.data(), conv.buffer_size()), Span<double>(grads.data(), conv.buffer_size()));
  nn::Conv1d<double>::Context c1, c2;
  const nn::SequenceBatch<double> x = seq<double>(X, 3, 4, uvp::as_span(kLengths));
  CHECK(same(bound.forward(x, c1).values(), conv.forward(x, c2).values()));
  values[0] += 1;
  CHECK_FALSE(same(bound.forward(x, c1).values(), conv.forward(x, c2).values()));
}

TEST_CASE("Sequence blocks: contract forms allocate nothing once their contexts have grown") {
  uvp::Rng rng(2);
  nn::MultiHeadSelfAttention<float> attn(8, 2, rng);
  nn::Conv1d<float> conv(8, 8, 3, rng, nn::Conv1dOptions{1, 1, true});
  nn::GlobalMaxPool1d<float> pool;
  nn::PositionEmbedding<float> pos(16, 8, rng);
  nn::PositionEmbedding<float>::Context cp;
  nn::MultiHeadSelfAttention<float>::Context ca;
  nn::Conv1d<float>::Context cc;
  nn::GlobalMaxPool1d<float>::Context cm;
  const std::vector<Index> ids(64, 0), big = {16, 3, 9, 16}, small = {2, 5};
  uvp::Matrix<float> G = random_matrix<float>(4, 8, 3);
  const auto pass = [&](Index batch, const std::vector<Index>& lengths) {
    const nn::TokenBatch tokens(Span<const Index>(ids.data(), batch * 16), batch, 16, uvp::as_span(lengths));
    const nn::SequenceBatch<float> p = pos.forward(tokens, cp);
    const nn::SequenceBatch<float> h = attn.forward(p, ca);
    const nn::SequenceBatch<float> c = conv.forward(h, cc);
    pool.forward(c, cm);
    const nn::SequenceBatch<float> dc = pool.backward(cm, G.topRows(batch));
    const nn::SequenceBatch<float> dh = conv.backward(cc, dc);
    pos.backward(cp, attn.backward(ca, dh));
  };
  pass(4, big);
  const long before = uvp_test::allocations.load();
  pass(2, small);
  pass(4, big);
  CHECK(uvp_test::allocations.load() == before);
  CHECK(pos.weight_grad().allFinite());
}
