// SPDX-License-Identifier: Apache-2.0
// uvp::fit and uvp::predict: one minibatch loop for composed models (user blocks here, on rows
// and on token sequences with an embedding table) and for the linear models; PyTorch reference
// training run, early stopping, divergence, weights, clipping, schedules, chunked prediction,
// the progress line and argument errors.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define UVP_TEST_HAS_DUP 1
#endif

#include "support/test_support.hpp"
#include "unit/optim/alloc_counter.hpp"
#include "uvp/core/random.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/schedule.hpp"
#include "uvp/optim/sgd.hpp"
#include "uvp/testing/gradient_check.hpp"
#include "uvp/training/fit.hpp"
#include "uvp/training/predict.hpp"

// Counts heap allocations: the trainer must not allocate per step once warmed up.
namespace {

using uvp::ConstMatrixRef;
using uvp::ConstMatrixView;
using uvp::Matrix;
using uvp::Vector;

// A user's dense block, y = x W^T + b (PyTorch's Linear layout: weight out x in).
template <class T>
class TinyDense : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "TinyDense";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class TinyDense;
    uvp::detail::SavedRows<T> x_;
    Matrix<T> y_, dx_;
  };
  TinyDense(uvp::index in, uvp::index out, uvp::Rng& rng) : in_(in), out_(out) {
    w_ = this->add_tensor("weight", {out, in});
    b_ = this->add_tensor("bias", {out});
    this->allocate_parameters();
    for (const auto& t : this->tensors())
      for (T& v : this->values(t)) v = T(rng.uniform(-1.0, 1.0) / std::sqrt(double(in)));
  }
  uvp::index input_width() const { return in_; }
  uvp::index output_width(uvp::index) const { return out_; }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"in", in_}});
    uvp::detail::check_cols("TinyDense::forward", "x", x.cols(), in_);
    ctx.x_.set(x);
    if (ctx.y_.rows() != x.rows()) ctx.y_.resize(x.rows(), out_);
    // Row by row, so that a row's output does not depend on how many rows come with it.
    const auto w = W();
    const auto b = B();
    for (uvp::index r = 0; r < x.rows(); ++r)
      for (uvp::index o = 0; o < out_; ++o) {
        T acc = b[o];
        for (uvp::index i = 0; i < in_; ++i) acc += x(r, i) * w(o, i);
        ctx.y_(r, o) = acc;
      }
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("TinyDense::backward", ctx, "TinyDense");
    const auto x = ctx.x_.view();
    Eigen::Map<Matrix<T>> gw(this->grads(this->tensors()[w_]).data(), out_, in_);
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> gb(this->grads(this->tensors()[b_]).data(), out_);
    gw.noalias() += dy.transpose() * x;
    gb += dy.colwise().sum();
    if (ctx.dx_.rows() != dy.rows()) ctx.dx_.resize(dy.rows(), in_);
    ctx.dx_.noalias() = dy * W();
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }

 private:
  Eigen::Map<const Matrix<T>> W() const { return {this->values(this->tensors()[w_]).data(), out_, in_}; }
  Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> B() const {
    return {this->values(this->tensors()[b_]).data(), out_};
  }
  uvp::index in_, out_;
  std::size_t w_ = 0, b_ = 0;
};

// tanh, parameterless.
template <class T>
class TinyTanh : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "TinyTanh";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class TinyTanh;
    Matrix<T> y_, dx_;
  };
  uvp::index input_width() const { return -1; }
  uvp::index output_width(uvp::index in) const { return in; }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {});
    if (ctx.y_.rows() != x.rows() || ctx.y_.cols() != x.cols()) ctx.y_.resize(x.rows(), x.cols());
    ctx.y_ = x.array().tanh();
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("TinyTanh::backward", ctx, "TinyTanh");
    if (ctx.dx_.rows() != dy.rows() || ctx.dx_.cols() != dy.cols()) ctx.dx_.resize(dy.rows(), dy.cols());
    ctx.dx_ = dy.array() * (1 - ctx.y_.array().square());
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }
};

// A user's embedding table with a sparse gradient: TokenBatch -> SequenceBatch (padding rows 0).
// Records the steps of every batch it sees.
template <class T>
class TinyEmbedding : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = uvp::nn::TokenBatch;
  using output_type = uvp::nn::SequenceBatch<T>;
  static constexpr const char* kind = "TinyEmbedding";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class TinyEmbedding;
    uvp::nn::TokenBatch x_;
    Matrix<T> y_;
  };
  TinyEmbedding(uvp::index vocab, uvp::index dim, uvp::Rng& rng, std::vector<uvp::index>* seen = nullptr)
      : vocab_(vocab), dim_(dim), seen_(seen) {
    this->add_tensor("weight", {vocab, dim}, /*sparse=*/true);
    this->allocate_parameters();
    for (T& v : this->values(this->tensors()[0])) v = T(rng.normal(0.0, 0.5));
  }
  uvp::index input_width() const { return -1; }
  uvp::index output_width(uvp::index) const { return dim_; }
  uvp::nn::SequenceBatch<T> forward(const uvp::nn::TokenBatch& x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"dim", dim_}});
    if (seen_) seen_->push_back(x.steps);
    ctx.x_ = x;
    if (ctx.y_.rows() != x.batch * x.steps) ctx.y_.resize(x.batch * x.steps, dim_);
    ctx.y_.setZero();
    const auto table = this->values(this->tensors()[0]);
    for (uvp::index b = 0; b < x.batch; ++b)
      for (uvp::index t = 0; t < x.length(b); ++t) {
        const uvp::index id = x.ids[b * x.steps + t];
        if (id < 0 || id >= vocab_) uvp::detail::raise<uvp::out_of_range_error>("TinyEmbedding: id ", id);
        for (uvp::index j = 0; j < dim_; ++j) ctx.y_(b * x.steps + t, j) = table[id * dim_ + j];
      }
    uvp::detail::nn_end_forward(ctx);
    return uvp::nn::SequenceBatch<T>(ConstMatrixView<T>(ctx.y_.data(), ctx.y_.rows(), dim_), x.batch, x.steps,
                                     x.lengths);
  }
  uvp::nn::NoGradient backward(Context& ctx, const uvp::nn::SequenceBatch<T>& d) {
    uvp::detail::nn_require_forward("TinyEmbedding::backward", ctx, "TinyEmbedding");
    const auto& x = ctx.x_;
    for (uvp::index b = 0; b < x.batch; ++b)
      for (uvp::index t = 0; t < x.length(b); ++t) this->accumulate_sparse_row(x.ids[b * x.steps + t], d.data + (b * x.steps + t) * dim_);
    return {};
  }

 private:
  uvp::index vocab_, dim_;
  std::vector<uvp::index>* seen_;
};

// Mean over each sequence's valid steps: SequenceBatch -> matrix.
template <class T>
class TinyMeanPool : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = uvp::nn::SequenceBatch<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "TinyMeanPool";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class TinyMeanPool;
    uvp::nn::SequenceBatch<T> x_;
    Matrix<T> y_, dx_;
  };
  uvp::index input_width() const { return -1; }
  uvp::index output_width(uvp::index in) const { return in; }
  ConstMatrixView<T> forward(const uvp::nn::SequenceBatch<T>& x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {});
    ctx.x_ = x;
    if (ctx.y_.rows() != x.batch || ctx.y_.cols() != x.features) ctx.y_.resize(x.batch, x.features);
    ctx.y_.setZero();
    const auto v = x.values();
    for (uvp::index b = 0; b < x.batch; ++b) {
      for (uvp::index t = 0; t < x.length(b); ++t) ctx.y_.row(b) += v.row(b * x.steps + t);
      ctx.y_.row(b) /= T(x.length(b));
    }
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  uvp::nn::SequenceBatch<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("TinyMeanPool::backward", ctx, "TinyMeanPool");
    const auto& x = ctx.x_;
    if (ctx.dx_.rows() != x.batch * x.steps || ctx.dx_.cols() != x.features)
      ctx.dx_.resize(x.batch * x.steps, x.features);
    ctx.dx_.setZero();
    for (uvp::index b = 0; b < x.batch; ++b)
      for (uvp::index t = 0; t < x.length(b); ++t) ctx.dx_.row(b * x.steps + t) = dy.row(b) / T(x.length(b));
    return uvp::nn::SequenceBatch<T>(ConstMatrixView<T>(ctx.dx_.data(), ctx.dx_.rows(), x.features), x.batch,
                                     x.steps, x.lengths);
  }
};

static_assert(uvp::nn::check_layer<TinyDense<double>>());
static_assert(uvp::nn::check_layer<TinyEmbedding<float>>());
static_assert(uvp::nn::check_layer<TinyMeanPool<float>>());

template <class T>
auto make_mlp(std::uint64_t seed, uvp::index in = 4, uvp::index hidden = 8, uvp::index out = 1) {
  uvp::Rng rng(seed);
  return uvp::nn::Chain(TinyDense<T>(in, hidden, rng), TinyTanh<T>(), TinyDense<T>(hidden, out, rng));
}

// Two Gaussian blobs, separable along (1, -1, 1, -1).
template <class T>
void blobs(uvp::index n, std::uint64_t seed, Matrix<T>& X, Vector<T>& y) {
  uvp::Rng rng(seed);
  X.resize(n, 4);
  y.resize(n);
  for (uvp::index i = 0; i < n; ++i) {
    y[i] = T(i % 2);
    const double s = i % 2 ? 1.0 : -1.0;
    for (uvp::index j = 0; j < 4; ++j) X(i, j) = T(rng.normal() * 0.7 + s * (j % 2 ? -1.0 : 1.0) * 0.8);
  }
}

template <class T>
std::vector<T> values_of(const uvp::nn::ModelParameters<T>& p) {
  return {p.values().begin(), p.values().end()};
}

double auc(const Vector<double>& y, const Matrix<double>& score) {
  return uvp::roc_auc<double>(uvp::Span<const double>(y.data(), y.size()),
                              uvp::Span<const double>(score.data(), score.size()));
}

// Token sequences over a vocabulary of 10: positive iff token 1 appears.
struct Sequences {
  std::vector<uvp::index> ids, lengths;
  Vector<float> y;
  uvp::index n = 0, steps = 0;
};
Sequences make_sequences(uvp::index n, uvp::index steps, std::uint64_t seed) {
  uvp::Rng rng(seed);
  Sequences s;
  s.n = n, s.steps = steps;
  s.ids.assign(std::size_t(n * steps), 0);
  s.lengths.resize(std::size_t(n));
  s.y.resize(n);
  for (uvp::index b = 0; b < n; ++b) {
    const uvp::index len = 1 + uvp::index(rng.uniform_int(std::uint64_t(steps)));
    s.lengths[std::size_t(b)] = len;
    bool has = false;
    for (uvp::index t = 0; t < len; ++t) {
      const uvp::index id = 2 + uvp::index(rng.uniform_int(8));
      s.ids[std::size_t(b * steps + t)] = id;
    }
    if (b % 2) {
      s.ids[std::size_t(b * steps + uvp::index(rng.uniform_int(std::uint64_t(len))))] = 1;
      has = true;
    }
    s.y[b] = has ? 1.f : 0.f;
  }
  return s;
}

}  // namespace

TEST_CASE("uvp::fit trains a composed model; the same seed gives the same parameters bit for bit") {
  Matrix<double> X, Xv;
  Vector<double> y, yv;
  blobs(400, 1, X, y);
  blobs(200, 2, Xv, yv);
  auto model = make_mlp<double>(3);
  uvp::AdamOptions ao;
  ao.lr = 0.02;
  uvp::Adam<double> adam(ao);
  uvp::TrainOptions<uvp::RowData<double>> o;
  o.epochs = 15;
  o.batch_size = 32;
  o.validation = uvp::RowData<double>(Xv, yv);
  o.metric = [](ConstMatrixView<double> yt, ConstMatrixView<double> p) {
    return uvp::roc_auc<double>({yt.data(), yt.size()}, {p.data(), p.size()});
  };
  o.metric_name = "roc_auc";
  std::vector<double> losses, vals;
  const auto r = uvp::fit(model, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam, o,
                          [&](const uvp::EpochReport& e) {
                            losses.push_back(e.train_loss);
                            vals.push_back(e.validation);
                            CHECK(e.lr == doctest::Approx(0.02));
                            CHECK(e.elapsed_seconds >= 0);
                            return true;
                          });
  CHECK_FALSE(r.diverged);
  CHECK(r.epochs_run == 15);
  REQUIRE(losses.size() == 15);
  CHECK(losses.back() < 0.5 * losses.front());
  CHECK(r.final_validation == vals.back());
  CHECK(vals.back() > 0.95);
  CHECK_FALSE(model.is_training());  // fit leaves the model in eval mode
  const Matrix<double> p = uvp::predict_proba(model, uvp::RowData<double>(Xv));
  CHECK(auc(yv, p) > 0.95);
  CHECK(auc(yv, p) == doctest::Approx(vals.back()).epsilon(1e-12));  // the metric saw the logits
  CHECK((p.array() > 0).all());
  CHECK((p.array() < 1).all());

  auto again = make_mlp<double>(3);
  uvp::Adam<double> adam2(ao);
  uvp::fit(again, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam2, o);
  CHECK(values_of(again.parameters()) == values_of(model.parameters()));

  auto other = make_mlp<double>(3);
  uvp::Adam<double> adam3(ao);
  o.seed = 43;
  uvp::fit(other, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam3, o);
  CHECK(values_of(other.parameters()) != values_of(model.parameters()));
}

TEST_CASE("uvp::fit matches a PyTorch training run (weights, pos_weight, clipping, StepLR)") {
  // tests/fixtures/make_fit_fixtures.py: the same MLP, data and initial weights trained by torch
  // with SGD(momentum), BCEWithLogitsLoss-style weighted mean, clip_grad_norm_ and StepLR, no shuffle.
  const auto f = uvp_test::read_arrays(uvp_test::fixture_path("training/fit_torch.txt"));
  const uvp::index n = uvp::index(f.at("y").size());
  const Matrix<double> X = uvp::view(f.at("X").data(), n, 4);
  const Vector<double> y = uvp::ConstVectorView<double>(f.at("y").data(), n);
  const std::vector<double>& sw = f.at("sw");
  auto model = make_mlp<double>(1, 4, 5, 1);
  auto& p = model.parameters();
  const std::vector<std::string> names{"0.weight", "0.bias", "2.weight", "2.bias"};
  for (const auto& name : names) {
    const auto& t = p.tensor(name);
    const auto& init = f.at("init." + name);
    REQUIRE(uvp::index(init.size()) == t.count);
    std::copy(init.begin(), init.end(), p.values(t).begin());
  }
  uvp::SgdOptions so;
  so.lr = f.at("lr")[0];
  so.momentum = f.at("momentum")[0];
  uvp::Sgd<double> sgd(so);
  uvp::FitOptions o;
  o.epochs = uvp::index(f.at("epochs")[0]);
  o.batch_size = uvp::index(f.at("batch_size")[0]);
  o.shuffle = false;
  o.clip_grad_norm = f.at("max_norm")[0];
  o.schedule = uvp::StepLr{so.lr, 2, 0.5};
  std::vector<double> losses;
  uvp::fit(model, uvp::RowData<double>(X, y, uvp::as_span(sw)),
           uvp::BceWithLogitsLoss<double>::pos_weight(f.at("pos_weight")[0]), sgd, o, [&](const uvp::EpochReport& e) {
             losses.push_back(e.train_loss);
             return true;
           });
  CHECK(uvp_test::rel_error(Vector<double>(Eigen::Map<const Vector<double>>(losses.data(), uvp::index(losses.size()))),
                            f.at("epoch_loss")) < 1e-12);
  for (const auto& name : names) {
    CAPTURE(name);
    const auto v = p.values(p.tensor(name));
    CHECK(uvp_test::rel_error(Vector<double>(v.as_vector()), f.at("final." + name)) < 1e-12);
  }
}

TEST_CASE("early stopping stops, keeps and restores the best epoch's parameters") {
  Matrix<double> X;
  Vector<double> y;
  blobs(64, 5, X, y);
  auto model = make_mlp<double>(9);
  uvp::Adam<double> adam;
  uvp::TrainOptions<uvp::RowData<double>> o;
  o.epochs = 20;
  o.batch_size = 16;
  o.patience = 2;
  o.validation = uvp::RowData<double>(X, y);
  // A scripted metric: best at epoch 2, then two epochs without improvement.
  const std::vector<double> script{0.5, 0.7, 0.6, 0.69};
  uvp::index calls = 0;
  o.metric = [&](ConstMatrixView<double>, ConstMatrixView<double>) { return script[std::size_t(calls++)]; };
  std::vector<double> at_best;
  const auto r = uvp::fit(model, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam, o,
                          [&](const uvp::EpochReport& e) {
                            if (e.epoch == 2) at_best = values_of(model.parameters());
                            return true;
                          });
  CHECK(r.stopped_early);
  CHECK(r.epochs_run == 4);
  CHECK(r.best_epoch == 2);
  CHECK(r.best_score == 0.7);
  CHECK(r.restored_best);
  CHECK(r.message.find("early stopping") != std::string::npos);
  CHECK(values_of(model.parameters()) == at_best);

  // Without validation data the training loss is monitored (lower is better).
  auto m2 = make_mlp<double>(9);
  uvp::Adam<double> adam2;
  uvp::FitOptions fo;
  fo.epochs = 5;
  fo.patience = 3;
  const auto r2 = uvp::fit(m2, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam2, fo);
  CHECK(r2.epochs_run == 5);
  CHECK(r2.best_epoch == 5);  // the training loss keeps falling
  CHECK(r2.best_score == doctest::Approx(r2.final_train_loss));
}

TEST_CASE("a diverging fit is reported in FitResult with the parameters restored, not thrown") {
  Matrix<double> X;
  Vector<double> y;
  blobs(64, 6, X, y);
  auto model = make_mlp<double>(4);
  std::vector<double> last = values_of(model.parameters());
  uvp::SgdOptions so;
  so.lr = 1e6;
  uvp::Sgd<double> sgd(so);
  uvp::FitOptions o;
  o.epochs = 50;
  o.batch_size = 8;
  o.shuffle = false;
  uvp::FitResult r;
  CHECK_NOTHROW(r = uvp::fit(model, uvp::RowData<double>(X, y), uvp::MseLoss<double>(), sgd, o,
                             [&](const uvp::EpochReport&) {
                               last = values_of(model.parameters());
                               return true;
                             }));
  CHECK(r.diverged);
  CHECK(r.message.find("diverged") != std::string::npos);
  CHECK(r.epochs_run >= 1);
  const auto now = values_of(model.parameters());
  CHECK(now == last);
  for (double v : now) CHECK(std::isfinite(v));

  // A NaN in X is bad input, not divergence: uvp::invalid_argument naming the row, parameters kept.
  Matrix<double> Xn = X;
  Xn(37, 2) = std::nan("");
  auto m2 = make_mlp<double>(4);
  const auto before = values_of(m2.parameters());
  uvp::Sgd<double> sgd2;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(m2, uvp::RowData<double>(Xn, y), uvp::MseLoss<double>(), sgd2, o),
                               uvp::invalid_argument, "uvp::fit: X has a non-finite value (nan) at row 37, column 2");
  CHECK(values_of(m2.parameters()) == before);
}

TEST_CASE("sample weights equal duplicated rows; class weights equal per-class sample weights") {
  Matrix<double> X;
  Vector<double> y;
  blobs(20, 8, X, y);
  const uvp::index n = X.rows();
  // Duplicate row 3: n + 1 rows. Weights n / (n + 1) * (1, .., 2 at row 3, .., 1) over n rows give
  // the same mean objective, so the same gradient.
  Matrix<double> Xd(n + 1, 4);
  Vector<double> yd(n + 1);
  Xd.topRows(n) = X, Xd.row(n) = X.row(3);
  yd.head(n) = y, yd[n] = y[3];
  std::vector<double> w(static_cast<std::size_t>(n), double(n) / double(n + 1));
  w[3] *= 2;
  uvp::FitOptions o;
  o.epochs = 1;
  o.shuffle = false;
  o.batch_size = 1000;  // one full batch: the gradient stays in grads() after fit
  auto grads_after = [&](const uvp::RowData<double>& data, auto loss) {
    auto m = make_mlp<double>(11);
    uvp::SgdOptions so;
    so.lr = 1e-3;
    uvp::Sgd<double> sgd(so);
    uvp::fit(m, data, loss, sgd, o);
    const auto g = m.parameters().grads();
    return std::vector<double>(g.begin(), g.end());
  };
  const auto g_dup = grads_after(uvp::RowData<double>(Xd, yd), uvp::BceWithLogitsLoss<double>());
  const auto g_w = grads_after(uvp::RowData<double>(X, y, uvp::as_span(w)), uvp::BceWithLogitsLoss<double>());
  CHECK(uvp_test::rel_error(Vector<double>(uvp::as_span(g_w).as_vector()), g_dup) < 1e-12);
  const auto m_dup = grads_after(uvp::RowData<double>(Xd, yd), uvp::MseLoss<double>());
  const auto m_w = grads_after(uvp::RowData<double>(X, y, uvp::as_span(w)), uvp::MseLoss<double>());
  CHECK(uvp_test::rel_error(Vector<double>(uvp::as_span(m_w).as_vector()), m_dup) < 1e-12);

  // Binary class weights (3 on positives) are sample weights 3 on the positive rows.
  std::vector<double> cw_as_sw(static_cast<std::size_t>(n));
  for (uvp::index i = 0; i < n; ++i) cw_as_sw[std::size_t(i)] = y[i] == 1 ? 3.0 : 1.0;
  const auto g_cw = grads_after(uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(1.0, 3.0));
  const auto g_sw = grads_after(uvp::RowData<double>(X, y, uvp::as_span(cw_as_sw)), uvp::BceWithLogitsLoss<double>());
  CHECK(g_cw == g_sw);

  // Balanced: n / (2 n_c), scikit-learn's compute_class_weight("balanced").
  Vector<double> y3(8);
  y3 << 1, 0, 0, 0, 0, 0, 1, 0;
  uvp::BceWithLogitsLoss<double> bal(1.0, 1.0, true);
  bal.prepare("test", ConstMatrixView<double>(y3.data(), 8, 1), 1);
  CHECK(bal.class_weight_negative_used() == doctest::Approx(8.0 / 12.0));
  CHECK(bal.class_weight_positive_used() == doctest::Approx(2.0));
  Vector<double> ym(6);
  ym << 0, 0, 0, 1, 2, 2;
  const auto bw = uvp::balanced_class_weight<double>(uvp::as_span(ym), 3);
  REQUIRE(bw.size() == 3);
  CHECK(bw[0] == doctest::Approx(6.0 / 9.0));
  CHECK(bw[1] == doctest::Approx(2.0));
  CHECK(bw[2] == doctest::Approx(1.0));

  // Multi-class: class weights equal per-class sample weights; the model learns 3 blobs.
  Matrix<double> Xc(60, 4);
  Vector<double> yc(60);
  uvp::Rng rng(12);
  for (uvp::index i = 0; i < 60; ++i) {
    yc[i] = double(i % 3);
    for (uvp::index j = 0; j < 4; ++j) Xc(i, j) = rng.normal() * 0.3 + (j == i % 3 ? 2.0 : 0.0);
  }
  const std::vector<double> cwc{1.0, 2.5, 0.5};
  std::vector<double> swc(std::size_t{60});
  for (uvp::index i = 0; i < 60; ++i) swc[std::size_t(i)] = cwc[std::size_t(i % 3)];
  auto ce_grads = [&](const uvp::RowData<double>& data, uvp::CrossEntropyLoss<double> loss) {
    auto m = make_mlp<double>(13, 4, 6, 3);
    uvp::Sgd<double> sgd;
    uvp::fit(m, data, loss, sgd, o);
    const auto g = m.parameters().grads();
    return std::vector<double>(g.begin(), g.end());
  };
  CHECK(ce_grads(uvp::RowData<double>(Xc, yc), uvp::CrossEntropyLoss<double>(cwc)) ==
        ce_grads(uvp::RowData<double>(Xc, yc, uvp::as_span(swc)), uvp::CrossEntropyLoss<double>()));
  auto mc = make_mlp<double>(13, 4, 6, 3);
  uvp::AdamOptions ao;
  ao.lr = 0.05;
  uvp::Adam<double> adam(ao);
  uvp::FitOptions co;
  co.epochs = 30;
  co.batch_size = 10;
  const auto rc = uvp::fit(mc, uvp::RowData<double>(Xc, yc), uvp::CrossEntropyLoss<double>({}, true), adam, co);
  CHECK(rc.final_train_loss < 0.1);
  const Matrix<double> logits = uvp::predict(mc, uvp::RowData<double>(Xc));
  REQUIRE(logits.cols() == 3);
  uvp::index correct = 0;
  for (uvp::index i = 0; i < 60; ++i) {
    uvp::index arg = 0;
    logits.row(i).maxCoeff(&arg);
    correct += arg == uvp::index(yc[i]);
  }
  CHECK(correct == 60);
}

TEST_CASE("gradient clipping caps the global norm; the schedule sets lr per epoch or per step") {
  Matrix<double> X;
  Vector<double> y;
  blobs(32, 14, X, y);
  {
    auto m = make_mlp<double>(15);
    const auto before = values_of(m.parameters());
    uvp::SgdOptions so;
    so.lr = 1.0;
    uvp::Sgd<double> sgd(so);
    uvp::FitOptions o;
    o.epochs = 1;
    o.batch_size = 32;
    o.clip_grad_norm = 1e-3;
    uvp::fit(m, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), sgd, o);
    const auto g = m.parameters().grads();
    CHECK(g.as_vector().norm() == doctest::Approx(1e-3).epsilon(1e-5));  // clipped in place
    const auto after = values_of(m.parameters());
    double step = 0;
    for (std::size_t i = 0; i < after.size(); ++i) step += (after[i] - before[i]) * (after[i] - before[i]);
    CHECK(std::sqrt(step) <= 1e-3 * (1 + 1e-9));
  }
  {
    auto m = make_mlp<double>(15);
    uvp::Sgd<double> sgd;
    uvp::FitOptions o;
    o.epochs = 5;
    o.batch_size = 8;
    o.schedule = uvp::StepLr{0.1, 2, 0.5};
    std::vector<double> lrs;
    uvp::fit(m, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), sgd, o, [&](const uvp::EpochReport& e) {
      lrs.push_back(e.lr);
      return true;
    });
    CHECK(lrs == std::vector<double>{0.1, 0.1, 0.05, 0.05, 0.025});
    o.schedule = [](uvp::index k) { return 0.1 / double(k + 1); };
    o.schedule_per_step = true;  // 4 steps per epoch: the last step of epoch e is step 4e - 1
    lrs.clear();
    uvp::fit(m, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), sgd, o, [&](const uvp::EpochReport& e) {
      lrs.push_back(e.lr);
      return true;
    });
    REQUIRE(lrs.size() == 5);
    for (std::size_t e = 0; e < 5; ++e) CHECK(lrs[e] == doctest::Approx(0.1 / double(4 * (e + 1))));
  }
}

TEST_CASE("sequence data: variable lengths, trimmed batches, a sparse table, clipping over dense and sparse") {
  std::vector<uvp::index> seen;
  uvp::Rng rng(21);
  uvp::nn::Chain model(TinyEmbedding<float>(10, 6, rng, &seen), TinyMeanPool<float>(), TinyDense<float>(6, 1, rng));
  const auto s = make_sequences(300, 12, 22);
  const uvp::SequenceData<float> data(uvp::as_span(s.ids), s.steps, uvp::as_span(s.lengths), s.y);
  uvp::AdamOptions ao;
  ao.lr = 0.05;
  uvp::Adam<float> adam(ao);
  uvp::FitOptions o;
  o.epochs = 25;
  o.batch_size = 4;
  std::vector<double> losses;
  const auto r = uvp::fit(model, data, uvp::BceWithLogitsLoss<float>(), adam, o, [&](const uvp::EpochReport& e) {
    losses.push_back(e.train_loss);
    return true;
  });
  CHECK_FALSE(r.diverged);
  CHECK(losses.back() < 0.6 * losses.front());
  bool trimmed = false;
  for (uvp::index st : seen) {
    CHECK(st <= 12);
    trimmed = trimmed || st < 12;
  }
  CHECK(trimmed);  // some batch of 4 had no sequence of the full 12 steps
  const Matrix<float> p = uvp::predict(model, uvp::SequenceData<float>(uvp::as_span(s.ids), s.steps, uvp::as_span(s.lengths)));
  Vector<double> yd = s.y.cast<double>();
  CHECK(auc(yd, p.cast<double>()) > 0.9);

  // Chunk size 1: every forward sees exactly its sequence's length.
  seen.clear();
  const Matrix<float> p1 = uvp::predict(model, data, uvp::PredictOptions{1});
  REQUIRE(uvp::index(seen.size()) == s.n);
  for (uvp::index b = 0; b < s.n; ++b) CHECK(seen[std::size_t(b)] == s.lengths[std::size_t(b)]);
  CHECK(p1 == p);
  CHECK(uvp::predict(model, data, uvp::PredictOptions{7}) == p);

  // clip_grad_norm over the model: dense grads and touched embedding rows together.
  model.train();
  decltype(model)::Context ctx;
  const auto out = model.forward(uvp::nn::TokenBatch(uvp::Span<const uvp::index>(s.ids.data(), 5 * s.steps), 5, s.steps,
                                                     uvp::Span<const uvp::index>(s.lengths.data(), 5)),
                                 ctx);
  model.zero_grad();
  Matrix<float> d = Matrix<float>::Constant(out.rows(), 1, 3.f);
  model.backward(ctx, d);
  const auto& sg = model.get<0>().sparse_grad();
  REQUIRE(sg.size() > 0);
  double sq = double(model.parameters().grads().as_vector().squaredNorm());
  for (float v : sg.values) sq += double(v) * double(v);
  const double total = uvp::clip_grad_norm(model, 0.5);
  CHECK(total == doctest::Approx(std::sqrt(sq)).epsilon(1e-5));
  double sq_after = double(model.parameters().grads().as_vector().squaredNorm());
  for (float v : model.get<0>().sparse_grad().values) sq_after += double(v) * double(v);
  CHECK(std::sqrt(sq_after) == doctest::Approx(0.5).epsilon(1e-4));
}

TEST_CASE("the library's Embedding, Lstm, GlobalLastPool1d and Dense train through uvp::fit") {
  uvp::Rng rng(31);
  uvp::nn::Chain model(uvp::nn::Embedding<float>(10, 8, rng, 0), uvp::nn::Lstm<float>(8, 8, rng),
                       uvp::nn::GlobalLastPool1d<float>(), uvp::nn::Dense<float>(8, 1, rng));
  const auto s = make_sequences(128, 10, 32);
  const auto v = make_sequences(60, 10, 33);
  const uvp::SequenceData<float> data(uvp::as_span(s.ids), s.steps, uvp::as_span(s.lengths), s.y);
  uvp::AdamOptions ao;
  ao.lr = 0.03;
  uvp::Adam<float> adam(ao);
  uvp::TrainOptions<uvp::SequenceData<float>> o;
  o.epochs = 6;
  o.batch_size = 16;
  o.clip_grad_norm = 5;
  o.validation = uvp::SequenceData<float>(uvp::as_span(v.ids), v.steps, uvp::as_span(v.lengths), v.y);
  std::vector<double> losses, vals;
  const auto r = uvp::fit(model, data, uvp::BceWithLogitsLoss<float>(), adam, o, [&](const uvp::EpochReport& e) {
    losses.push_back(e.train_loss);
    vals.push_back(e.validation);  // the validation BCE, scored through the eval-mode inference path
    return true;
  });
  CHECK_FALSE(r.diverged);
  REQUIRE(losses.size() == 6);
  CHECK(losses.back() < losses.front());
  CHECK(vals.back() < vals.front());
  const uvp::SequenceData<float> vx(uvp::as_span(v.ids), v.steps, uvp::as_span(v.lengths));
  const Matrix<float> p = uvp::predict(model, vx);
  const Matrix<float> p1 = uvp::predict(model, vx, uvp::PredictOptions{1});
  CHECK((p - p1).cwiseAbs().maxCoeff() < 1e-5f);  // trimmed per chunk; the blocks' rounding only
}

TEST_CASE("uvp::predict gives identical results for chunk sizes 1, 7 and n, and needs eval mode") {
  Matrix<double> X;
  Vector<double> y;
  blobs(50, 16, X, y);
  auto model = make_mlp<double>(17);
  model.eval();
  const uvp::RowData<double> data(X);
  const Matrix<double> all = uvp::predict(model, data, uvp::PredictOptions{50});
  REQUIRE(all.rows() == 50);
  REQUIRE(all.cols() == 1);
  CHECK(uvp::predict(model, data, uvp::PredictOptions{1}) == all);
  CHECK(uvp::predict(model, data, uvp::PredictOptions{7}) == all);
  CHECK(uvp::predict(model, data) == all);
  model.train();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::predict(model, data), uvp::invalid_argument,
                               "uvp::predict: the model is in training mode; call model.eval() first");
  model.eval();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::predict(model, data, uvp::PredictOptions{0}), uvp::invalid_argument,
                               "uvp::predict: options.chunk_size must be >= 1, got 0");
}

TEST_CASE("the linear models train through uvp::fit: the same loop as their own fit") {
  Matrix<float> X;
  Vector<float> y;
  blobs(300, 18, X, y);
  uvp::LogisticRegressionOptions lo;
  lo.l2 = 0.01;
  lo.class_weight_positive = 2.0;
  uvp::LogisticRegression<float> a(4, lo), b(4, lo);
  uvp::FitOptions o;
  o.epochs = 4;
  o.batch_size = 32;
  uvp::Adam<float> adam_a, adam_b;
  const auto ra = a.fit(X, y, adam_a, o);
  const auto rb = uvp::fit(b, uvp::RowData<float>(X, y), uvp::BceWithLogitsLoss<float>(1.0, 2.0), adam_b, o);
  CHECK(a.coef() == b.coef());
  CHECK(a.intercept() == b.intercept());
  CHECK(ra.final_train_loss == rb.final_train_loss);
  const Matrix<float> z = uvp::predict(b, uvp::RowData<float>(X));
  CHECK((z.col(0) - b.decision_function(X)).cwiseAbs().maxCoeff() == 0.f);

  // The options' extras apply to the linear models too: early stopping on a validation loss.
  uvp::LinearRegression<double> lin(4);
  Matrix<double> Xd = X.cast<double>();
  Vector<double> yd = Xd * Vector<double>::LinSpaced(4, -1, 1);
  uvp::TrainOptions<uvp::RowData<double>> to;
  to.epochs = 200;
  to.batch_size = 50;
  to.patience = 3;
  to.min_delta = 1e-4;
  to.validation = uvp::RowData<double>(Xd, yd);
  uvp::AdamOptions ao_l;
  ao_l.lr = 0.05;
  uvp::Adam<double> adam_l(ao_l);
  const auto rl = uvp::fit(lin, uvp::RowData<double>(Xd, yd), uvp::MseLoss<double>(), adam_l, to);
  CHECK(rl.stopped_early);
  CHECK(rl.epochs_run < 200);
  CHECK(rl.best_score < 1e-2);
  CHECK(rl.restored_best);

  // The model's own fit keeps TrainOptions' validation data and metric (no slicing to
  // FitOptions): the same run as uvp::fit, bit for bit.
  uvp::LinearRegression<double> lin2(4);
  uvp::Adam<double> adam_l2(ao_l);
  const auto rl2 = lin2.fit(Xd, yd, adam_l2, to);
  CHECK(rl2.epochs_run == rl.epochs_run);
  CHECK(rl2.best_score == rl.best_score);
  CHECK(lin2.coef() == lin.coef());
}

TEST_CASE("the linear models' contract forms: forward(X, ctx), backward(ctx, d) against finite differences") {
  uvp::LogisticRegression<double> m(3);
  m.coef() << 0.4, -0.7, 0.2;
  m.set_intercept(0.1);
  Matrix<double> X(5, 3), wt(5, 1);
  uvp::Rng rng(41);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  for (uvp::index i = 0; i < wt.size(); ++i) wt.data()[i] = rng.normal();
  decltype(m)::Context ctx;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.backward(ctx, wt), uvp::invalid_argument, "uvp::LogisticRegression::backward");
  const Matrix<double> z = m.forward(X, ctx);
  CHECK((z.col(0) - m.decision_function(X)).cwiseAbs().maxCoeff() == 0.0);
  m.zero_grad();
  const Matrix<double> dx = m.backward(ctx, wt);
  auto objective = [&] {
    decltype(m)::Context c;
    return (m.forward(X, c).array() * wt.array()).sum();
  };
  const auto rx = uvp::testing::check_gradient(objective, uvp::Span<double>(X.data(), X.size()),
                                               uvp::Span<const double>(dx.data(), dx.size()));
  CHECK(rx.relative_error < 1e-8);
  std::vector<double> g(m.parameters().grads().begin(), m.parameters().grads().end());
  const auto rp = uvp::testing::check_gradient(objective, m.parameters().values(), uvp::as_span(g));
  CHECK(rp.relative_error < 1e-8);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.forward(Matrix<double>::Ones(2, 4), ctx), uvp::shape_error,
                               "uvp::LogisticRegression::forward: X has 4 columns, expected 3");
}

TEST_CASE("the progress line is printed only when asked; no allocation per step once warmed up") {
  Matrix<double> X;
  Vector<double> y;
  blobs(64, 19, X, y);
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  auto model = make_mlp<double>(20);
  uvp::Adam<double> adam;
  uvp::TrainOptions<uvp::RowData<double>> o;
  o.epochs = 3;
  o.batch_size = 16;
  o.validation = uvp::RowData<double>(X, y);
  o.progress = sink;
  uvp::fit(model, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam, o);
  std::rewind(sink);
  std::string text;
  for (int c; (c = std::fgetc(sink)) != EOF;) text += char(c);
  std::fclose(sink);
  CHECK(text.rfind("epoch 1/3  loss ", 0) == 0);
  CHECK(text.find("val_bce ") != std::string::npos);
  CHECK(text.find("eta ") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);

#if defined(UVP_TEST_HAS_DUP)
  // Without a sink nothing reaches stderr.
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture != nullptr);
  std::fflush(stderr);
  const int saved = dup(2);
  dup2(fileno(capture), 2);
  o.progress = nullptr;
  uvp::Adam<double> adam2;
  uvp::fit(model, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam2, o);
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::fseek(capture, 0, SEEK_END);
  CHECK(std::ftell(capture) == 0);
  std::fclose(capture);
#endif

  // Allocations: epochs after the first allocate nothing (equal batches, no validation).
  uvp::FitOptions fo;
  fo.epochs = 4;
  fo.batch_size = 16;
  uvp::Adam<double> adam3;
  std::vector<long> at_epoch_end;
  at_epoch_end.reserve(8);
  uvp::fit(model, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam3, fo,
           [&](const uvp::EpochReport&) {
             at_epoch_end.push_back(uvp_test::allocations.load());
             return true;
           });
  REQUIRE(at_epoch_end.size() == 4);
  CHECK(at_epoch_end[3] == at_epoch_end[1]);
}

TEST_CASE("bad options and data raise uvp errors naming the argument") {
  Matrix<double> X;
  Vector<double> y;
  blobs(16, 23, X, y);
  auto model = make_mlp<double>(24);
  const uvp::RowData<double> data(X, y);
  uvp::Sgd<double> sgd;
  const uvp::BceWithLogitsLoss<double> bce;
  uvp::FitOptions o;
  o.epochs = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, o), uvp::invalid_argument,
                               "uvp::fit: options.epochs must be >= 1, got 0");
  o = {};
  o.batch_size = -2;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, o), uvp::invalid_argument,
                               "uvp::fit: options.batch_size must be >= 1, got -2");
  o = {};
  o.clip_grad_norm = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, o), uvp::invalid_argument,
                               "options.clip_grad_norm must be finite and >= 0, got -1");
  o = {};
  o.patience = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, o), uvp::invalid_argument,
                               "options.patience must be >= 0, got -1");
  o = {};
  o.schedule = [](uvp::index) { return -1.0; };
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, o), uvp::invalid_argument,
                               "uvp::Sgd::set_lr: lr must be finite and >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::RowData<double>(X, Vector<double>(y.head(5))), uvp::shape_error,
                               "uvp::RowData: y has 5 rows, expected 16");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::RowData<double>(X.leftCols(2), y), uvp::invalid_argument,
                               "uvp::RowData: X must be stored as contiguous rows");
  std::vector<double> bad_w(16, 1.0);
  bad_w[4] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X, y, uvp::as_span(bad_w)), bce, sgd),
                               uvp::invalid_argument, "uvp::fit: sample_weight[4] = -1 must be finite and >= 0");
  std::vector<double> short_w(3, 1.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X, y, uvp::as_span(short_w)), bce, sgd),
                               uvp::shape_error, "sample_weight has size 3, expected 16");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X), bce, sgd), uvp::invalid_argument,
                               "uvp::fit: data has no targets y");
  Vector<double> y2 = y;
  y2[3] = 2;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X, y2), bce, sgd), uvp::invalid_argument,
                               "uvp::fit: y[3] = 2 is not a label in [0, 1]");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X, y2), uvp::CrossEntropyLoss<double>(), sgd),
                               uvp::shape_error, "CrossEntropyLoss needs >= 2 outputs");
  Matrix<double> y_two(16, 2);
  y_two.setZero();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X, y_two), bce, sgd), uvp::shape_error,
                               "uvp::fit: y has 2 columns, but the model gives 1 outputs per row");
  uvp::TrainOptions<uvp::RowData<double>> to;
  Matrix<double> Xv3 = X.leftCols(3);
  to.validation = uvp::RowData<double>(Xv3, y);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, data, bce, sgd, to), uvp::shape_error,
                               "uvp::fit: options.validation.X has 3 columns, the training X has 4");
  const auto before = values_of(model.parameters());
  Matrix<double> X5(16, 5);
  X5.setOnes();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(model, uvp::RowData<double>(X5, y), bce, sgd), uvp::shape_error,
                               "TinyDense::forward: x has 5 columns, expected 4");
  CHECK(values_of(model.parameters()) == before);  // nothing trained

  std::vector<uvp::index> ids(12, 2), lengths{3, 0, 2, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::SequenceData<float>(uvp::as_span(ids), 3, uvp::as_span(lengths)),
                               uvp::invalid_argument, "uvp::SequenceData: lengths[1] = 0 must be in [1, 3]");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::SequenceData<float>(uvp::as_span(ids), 5), uvp::shape_error,
                               "uvp::SequenceData: ids has size 12, not a multiple of steps = 5");
  struct NoSetLr {
    void step(uvp::Span<double>, uvp::Span<const double>) {}
  } plain;
  uvp::LinearRegression<double> lin(4);
  o = {};
  o.schedule = uvp::StepLr{};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::fit(lin, data, uvp::MseLoss<double>(), plain, o), uvp::invalid_argument,
                               "uvp::fit: options.schedule needs an optimizer with set_lr(double)");
}
