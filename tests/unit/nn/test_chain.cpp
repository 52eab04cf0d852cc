// SPDX-License-Identifier: Apache-2.0
// nn::Chain, nn::Residual, nn::Sum and the model-wide parameter buffer, with blocks a user
// writes outside the library (as docs/nn/custom-block.md shows).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/residual.hpp"
#include "uvp/nn/sum.hpp"
#include "uvp/optim/sgd.hpp"
#include "uvp/testing/gradient_check.hpp"
#include "uvp/testing/layer_check.hpp"

namespace {

using uvp::ConstMatrixRef;
using uvp::ConstMatrixView;
using uvp::Matrix;

// A user's block: y = x * scale + shift, per feature (tensors "scale", "shift").
template <class T>
class FeatureAffine : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "FeatureAffine";

  class Context : public uvp::nn::ContextBase {
   public:
    ConstMatrixView<T> input() const { return {x_.data(), x_.rows(), x_.cols()}; }

   private:
    friend class FeatureAffine;
    Matrix<T> x_, y_, dx_;
  };

  FeatureAffine(uvp::index width, uvp::Rng& rng) : width_(width) {
    scale_ = this->add_tensor("scale", {width});
    shift_ = this->add_tensor("shift", {width});
    this->allocate_parameters();
    for (const auto& t : this->tensors())
      for (T& v : this->values(t)) v = T(rng.uniform(-1.0, 1.0));
  }

  uvp::index input_width() const { return width_; }
  uvp::index output_width(uvp::index in) const {
    if (in >= 0 && in != width_)
      uvp::detail::raise<uvp::shape_error>("FeatureAffine: ", in, " features, expected ", width_);
    return width_;
  }

  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"width", width_}});
    uvp::detail::check_cols("FeatureAffine::forward", "x", x.cols(), width_);
    ctx.x_ = x;
    ctx.y_.resize(x.rows(), width_);
    const auto s = this->values(this->tensors()[scale_]);
    const auto b = this->values(this->tensors()[shift_]);
    for (uvp::index r = 0; r < x.rows(); ++r)
      for (uvp::index j = 0; j < width_; ++j) ctx.y_(r, j) = x(r, j) * s[j] + b[j];
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }

  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("FeatureAffine::backward", ctx, "FeatureAffine");
    uvp::detail::check_shape("FeatureAffine::backward", "dy", dy.rows(), dy.cols(), ctx.x_.rows(), width_);
    auto gs = this->grads(this->tensors()[scale_]);
    auto gb = this->grads(this->tensors()[shift_]);
    const auto s = this->values(this->tensors()[scale_]);
    ctx.dx_.resize(dy.rows(), width_);
    for (uvp::index r = 0; r < dy.rows(); ++r)
      for (uvp::index j = 0; j < width_; ++j) {
        gs[j] += dy(r, j) * ctx.x_(r, j);
        gb[j] += dy(r, j);
        ctx.dx_(r, j) = dy(r, j) * s[j];
      }
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }

  uvp::nn::BlockSpec spec() const { return uvp::nn::BlockSpec(kind).set("width", double(width_)); }

 private:
  uvp::index width_;
  std::size_t scale_ = 0, shift_ = 0;
};

// A user's parameterless block: softsign, y = x / (1 + |x|).
template <class T>
class Softsign : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Softsign";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class Softsign;
    Matrix<T> x_, y_, dx_;
  };
  uvp::index input_width() const { return -1; }
  uvp::index output_width(uvp::index in) const { return in; }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {});
    ctx.x_ = x;
    ctx.y_ = x.array() / (1 + x.array().abs());
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("Softsign::backward", ctx, "Softsign");
    ctx.dx_ = dy.array() / (1 + ctx.x_.array().abs()).square();
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }
};

static_assert(uvp::nn::check_layer<FeatureAffine<double>>());
static_assert(uvp::nn::check_layer<Softsign<float>>());
static_assert(!uvp::nn::is_layer_v<int>);

Matrix<double> random_matrix(uvp::index r, uvp::index c, uvp::Rng& rng) {
  Matrix<double> m(r, c);
  for (uvp::index i = 0; i < m.size(); ++i) m.data()[i] = rng.uniform(-1.5, 1.5);
  return m;
}

// sum(model(x) .* weights): a scalar whose gradient with respect to the output is `weights`.
template <class Model>
double weighted_output(const Model& model, const Matrix<double>& x, const Matrix<double>& weights) {
  typename Model::Context ctx;
  const auto y = model.forward(x, ctx);
  return (y.array() * weights.array()).sum();
}

}  // namespace

TEST_CASE("nn::Chain composes a user's blocks, with one parameter buffer and PyTorch names") {
  uvp::Rng rng(7);
  uvp::nn::Chain model(FeatureAffine<double>(3, rng), Softsign<double>(), FeatureAffine<double>(3, rng));
  using Model = decltype(model);
  static_assert(std::is_same_v<Model::output_type, ConstMatrixView<double>>);

  auto& p = model.parameters();
  REQUIRE(p.tensors().size() == 4);
  CHECK(p.tensors()[0].name == "0.scale");
  CHECK(p.tensors()[1].name == "0.shift");
  CHECK(p.tensors()[2].name == "2.scale");
  CHECK(p.tensors()[3].name == "2.shift");
  CHECK(model.parameter_count() == 12);
  CHECK(p.dense_size() == p.size());
  // The blocks read and write the model's buffer: a value set there is the block's value.
  const auto& first = model.get<0>();
  CHECK(first.values(first.tensors()[0]).data() == p.values(p.tensor("0.scale")).data());
  CHECK(first.parameters().is_bound());

  // Forward = the blocks by hand.
  const Matrix<double> x = random_matrix(5, 3, rng);
  Model::Context ctx;
  const Matrix<double> y = model.forward(x, ctx);
  {
    FeatureAffine<double>::Context c0, c2;
    Softsign<double>::Context c1;
    const Matrix<double> h0 = model.get<0>().forward(x, c0);
    const Matrix<double> h1 = model.get<1>().forward(h0, c1);
    const Matrix<double> h2 = model.get<2>().forward(h1, c2);
    CHECK(y == h2);
  }

  // Backward: every parameter gradient (the whole buffer at once) and dX against central
  // differences of sum(y .* W).
  const Matrix<double> w = random_matrix(5, 3, rng);
  model.zero_grad();
  model.forward(x, ctx);
  const Matrix<double> dx = model.backward(ctx, w);
  std::vector<double> analytic(p.grads().begin(), p.grads().end());
  const auto params = uvp::testing::check_gradient([&] { return weighted_output(model, x, w); }, p.values(),
                                                   uvp::Span<const double>(analytic.data(), uvp::index(analytic.size())));
  CHECK(params.relative_error < 1e-8);
  Matrix<double> xv = x;
  const auto inputs = uvp::testing::check_gradient([&] { return weighted_output(model, xv, w); },
                                                   uvp::Span<double>(xv.data(), xv.size()),
                                                   uvp::Span<const double>(dx.data(), dx.size()));
  CHECK(inputs.relative_error < 1e-8);

  // One optimizer call steps every block: SGD moves the buffer by -lr * grad.
  const std::vector<double> before(p.values().begin(), p.values().end());
  uvp::SgdOptions so;
  so.lr = 0.1;
  uvp::Sgd<double> sgd(so);
  uvp::nn::step(sgd, model);
  for (uvp::index i = 0; i < p.size(); ++i) CHECK(p.values()[i] == doctest::Approx(before[std::size_t(i)] - 0.1 * p.grads()[i]));

  // A moved chain keeps its buffer and its blocks' bindings.
  uvp::nn::Chain moved = std::move(model);
  Model::Context ctx2;
  const Matrix<double> y2 = moved.forward(x, ctx2);
  CHECK(moved.get<0>().values(moved.get<0>().tensors()[0]).data() ==
        moved.parameters().values(moved.parameters().tensor("0.scale")).data());
  CHECK(y2.allFinite());
}

TEST_CASE("nn::Chain names, widths and misuse") {
  uvp::Rng rng(3);
  SUBCASE("set_names renames the tensors and keeps the values") {
    uvp::nn::Chain model(FeatureAffine<float>(2, rng), Softsign<float>());
    const std::vector<float> before(model.parameters().values().begin(), model.parameters().values().end());
    model.set_names({"affine", "act"});
    CHECK(model.parameters().tensors()[0].name == "affine.scale");
    CHECK(model.blocks().entries()[1].name == "act");
    const std::vector<float> after(model.parameters().values().begin(), model.parameters().values().end());
    CHECK(before == after);
    CHECK_THROWS_AS(model.set_names({"a", "a"}), uvp::invalid_argument);
    CHECK_THROWS_AS(model.set_names({"a.b", "c"}), uvp::invalid_argument);
    CHECK_THROWS_AS(model.set_names({"a"}), uvp::shape_error);
  }
  SUBCASE("a block that does not fit its predecessor is named with both sizes") {
    try {
      uvp::nn::Chain bad(FeatureAffine<float>(3, rng), Softsign<float>(), FeatureAffine<float>(4, rng));
      FAIL("no exception");
    } catch (const uvp::shape_error& e) {
      CHECK(std::string(e.what()) ==
            "uvp::nn::Chain: block 2 '2' (FeatureAffine) takes 4 features per row, but block 1 '1' (Softsign) gives 3");
    }
  }
  SUBCASE("backward needs a completed forward") {
    uvp::nn::Chain model(FeatureAffine<double>(2, rng));
    decltype(model)::Context ctx;
    const Matrix<double> d = Matrix<double>::Ones(1, 2);
    CHECK_THROWS_AS(model.backward(ctx, d), uvp::invalid_argument);
    const Matrix<double> wrong = Matrix<double>::Ones(1, 3);
    CHECK_THROWS_AS(model.forward(wrong, ctx), uvp::shape_error);
    CHECK_THROWS_AS(model.backward(ctx, d), uvp::invalid_argument);  // the failed forward left none
  }
  SUBCASE("architecture lists each block's spec under its name") {
    uvp::nn::Chain model(FeatureAffine<double>(2, rng), FeatureAffine<double>(2, rng));
    model.set_names({"a", "b"});
    const auto arch = model.architecture();
    REQUIRE(arch.size() == 2);
    CHECK(arch[1].first == "b");
    CHECK(arch[1].second.kind == "FeatureAffine");
    CHECK(arch[1].second.get_index("width") == 2);
  }
}

TEST_CASE("nn::Residual and nn::Sum: values and gradients") {
  uvp::Rng rng(11);
  uvp::nn::Chain model(uvp::nn::Residual(FeatureAffine<double>(4, rng)),
                       uvp::nn::Sum(FeatureAffine<double>(4, rng), Softsign<double>()), FeatureAffine<double>(4, rng));
  auto& p = model.parameters();
  REQUIRE(p.tensors().size() == 6);
  CHECK(p.tensors()[0].name == "0.scale");    // a residual is transparent in the names
  CHECK(p.tensors()[2].name == "1.0.scale");  // a sum names its two blocks 0 and 1
  CHECK(p.tensors()[4].name == "2.scale");

  const Matrix<double> x = random_matrix(3, 4, rng);
  decltype(model)::Context ctx;
  const Matrix<double> y = model.forward(x, ctx);
  {
    FeatureAffine<double>::Context a, b, c;
    Softsign<double>::Context s;
    const Matrix<double> r = x + Matrix<double>(model.get<0>().block().forward(x, a));
    const Matrix<double> t = Matrix<double>(model.get<1>().first().forward(r, b)) + Matrix<double>(model.get<1>().second().forward(r, s));
    const Matrix<double> z = model.get<2>().forward(t, c);
    CHECK((y - z).cwiseAbs().maxCoeff() < 1e-15);
  }
  const Matrix<double> w = random_matrix(3, 4, rng);
  model.zero_grad();
  model.forward(x, ctx);
  const Matrix<double> dx = model.backward(ctx, w);
  std::vector<double> analytic(p.grads().begin(), p.grads().end());
  CHECK(uvp::testing::check_gradient([&] { return weighted_output(model, x, w); }, p.values(),
                                     uvp::Span<const double>(analytic.data(), uvp::index(analytic.size())))
            .relative_error < 1e-8);
  Matrix<double> xv = x;
  CHECK(uvp::testing::check_gradient([&] { return weighted_output(model, xv, w); },
                                     uvp::Span<double>(xv.data(), xv.size()),
                                     uvp::Span<const double>(dx.data(), dx.size()))
            .relative_error < 1e-8);

  CHECK_THROWS_AS(uvp::nn::Sum(FeatureAffine<double>(4, rng), FeatureAffine<double>(3, rng)), uvp::shape_error);
}

TEST_CASE("uvp::testing::check_layer_gradients checks a user's block and a whole model") {
  uvp::Rng rng(5);
  FeatureAffine<double> block(3, rng);
  Matrix<double> x = random_matrix(4, 3, rng);
  const Matrix<double> x0 = x;
  const auto r = uvp::testing::check_layer_gradients(block, x);
  CHECK(r.input.relative_error < 1e-8);
  CHECK(r.parameters.relative_error < 1e-8);
  CHECK(r.parameters.worst_index >= 0);  // the parameters were checked
  CHECK(x == x0);                        // restored

  uvp::nn::Chain model(FeatureAffine<double>(3, rng), Softsign<double>(), FeatureAffine<double>(3, rng));
  const auto m = uvp::testing::check_layer_gradients(model, x);
  CHECK(m.input.relative_error < 1e-8);
  CHECK(m.parameters.relative_error < 1e-8);

  // A wrong backward is caught: a block whose shift gradient is doubled.
  struct Broken : FeatureAffine<double> {
    using FeatureAffine<double>::FeatureAffine;
    ConstMatrixView<double> backward(Context& ctx, ConstMatrixRef<double> dy) {
      const auto dx = FeatureAffine<double>::backward(ctx, dy);
      for (double& g : this->grads(this->tensors()[1])) g *= 2;
      return dx;
    }
  };
  Broken broken(3, rng);
  CHECK(uvp::testing::check_layer_gradients(broken, x).parameters.relative_error > 0.1);
}

TEST_CASE("composed library models: every gradient end to end against finite differences") {
  namespace nn = uvp::nn;
  uvp::Rng rng(17);
  const uvp::index vocab = 7, steps = 4, batch = 3, E = 4;
  const std::vector<uvp::index> ids = {1, 2, 3, 0, 4, 5, 0, 0, 6, 1, 2, 3};
  const std::vector<uvp::index> lengths = {3, 2, 4};
  const nn::TokenBatch tokens(uvp::Span<const uvp::index>(ids.data(), 12), batch, steps,
                              uvp::Span<const uvp::index>(lengths.data(), batch));
  const auto check = [](auto& model, const nn::TokenBatch& x) {
    const auto r = uvp::testing::check_layer_gradients(model, x);
    CHECK(r.parameters.worst_index >= 0);
    CHECK(r.parameters.relative_error < 1e-6);
  };
  SUBCASE("Embedding -> 2-layer Lstm -> last step -> Dense") {
    nn::Chain model(nn::Embedding<double>(vocab, E, rng, 0), nn::Lstm<double>(E, 5, rng, 2),
                    nn::GlobalLastPool1d<double>(), nn::Dense<double>(5, 1, rng));
    check(model, tokens);
  }
  SUBCASE("Embedding -> Gru -> max pool -> Dense -> Tanh -> Dense") {
    nn::Chain model(nn::Embedding<double>(vocab, E, rng, 0), nn::Gru<double>(E, 5, rng),
                    nn::GlobalMaxPool1d<double>(), nn::Dense<double>(5, 3, rng), nn::Tanh<double>(),
                    nn::Dense<double>(3, 1, rng));
    check(model, tokens);
  }
  SUBCASE("token + position embeddings -> residual attention -> LayerNorm -> Dense per step -> mean pool") {
    nn::Chain model(nn::Sum(nn::Embedding<double>(vocab, E, rng, 0), nn::PositionEmbedding<double>(steps, E, rng)),
                    nn::Residual(nn::MultiHeadSelfAttention<double>(E, 2, rng)), nn::LayerNorm<double>(E),
                    nn::Dense<double>(E, 2, rng), nn::GlobalMeanPool1d<double>());
    check(model, tokens);
  }
  SUBCASE("Embedding -> Conv1d -> Relu -> max pool -> Dense") {
    nn::Chain model(nn::Embedding<double>(vocab, E, rng, 0), nn::Conv1d<double>(E, 3, 2, rng), nn::Relu<double>(),
                    nn::GlobalMaxPool1d<double>(), nn::Dense<double>(3, 1, rng));
    check(model, tokens);
  }
  SUBCASE("a mismatched library chain names both blocks and both sizes") {
    try {
      nn::Chain bad(nn::Embedding<double>(vocab, E, rng, 0), nn::Lstm<double>(E + 1, 5, rng));
      FAIL("no exception");
    } catch (const uvp::shape_error& e) {
      CHECK(std::string(e.what()) ==
            "uvp::nn::Chain: block 1 '1' (Lstm) takes 5 features per row, but block 0 '0' (Embedding) gives 4");
    }
  }
}
