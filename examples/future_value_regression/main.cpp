// SPDX-License-Identifier: Apache-2.0
// Future customer value as regression: how much will each CDNOW customer spend in the 39-week
// holdout period, from five calibration-period numbers? Exact least squares and a 64-32-1 MLP,
// next to the BG/NBD x Gamma-Gamma expected spend on the same test customers.
//
//   future_value_regression [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N]
//
// Prints one `name: value` per line; writes DIR/predictions.csv (test customers) and
// DIR/predicted_vs_actual.svg.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "../common/example_cli.hpp"
#include "../common/nn_training.hpp"
#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/random.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/metrics/regression.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/optim/adam.hpp"

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;

// Features 5 -> 64 -> ReLU -> 32 -> ReLU -> 1, trained on the standardised features and a
// target divided by its training standard deviation (so the MSE starts near 1).
struct Mlp {
  uvp::nn::Dense<double> l1, l2, l3;
  Matrix<double> z1, h1, z2, h2, out, d_h2, d_h1;  // activations of the last forward

  Mlp(index in, uvp::Rng& rng) : l1(in, 64, rng), l2(64, 32, rng), l3(32, 1, rng) {}
  uvp::nn::BlockList<double> blocks() { return uvp::nn::blocks<double>("l1", l1, "l2", l2, "l3", l3); }

  const Matrix<double>& forward(const Matrix<double>& X) {
    z1.resize(X.rows(), 64), h1.resize(X.rows(), 64), z2.resize(X.rows(), 32), h2.resize(X.rows(), 32);
    out.resize(X.rows(), 1);
    l1.forward(X, z1);
    uvp::kernels::relu(z1.data(), h1.data(), z1.size());
    l2.forward(h1, z2);
    uvp::kernels::relu(z2.data(), h2.data(), z2.size());
    l3.forward(h2, out);
    return out;
  }
  // d_out: dloss/d(out), (n, 1). Accumulates the parameter gradients.
  void backward(const Matrix<double>& X, const Matrix<double>& d_out) {
    d_h2.resize(X.rows(), 32), d_h1.resize(X.rows(), 64);
    l3.backward(h2, d_out, d_h2);
    uvp::kernels::relu_backward(z2.data(), d_h2.data(), d_h2.data(), d_h2.size());
    l2.backward(h1, d_h2, d_h1);
    uvp::kernels::relu_backward(z1.data(), d_h1.data(), d_h1.data(), d_h1.size());
    l1.backward(X, d_h1);
  }
};

struct Scores {
  double mae, rmse, r2;
};
Scores score(const Vector<double>& y, const Vector<double>& p) {
  const auto ys = uvp::as_span(y), ps = uvp::as_span(p);
  return {uvp::mae<double>(ys, ps), uvp::rmse<double>(ys, ps), uvp::r2_score<double>(ys, ps)};
}
void print_scores(const char* name, const Scores& s) {
  std::printf("%s_mae: %.4f\n%s_rmse: %.4f\n%s_r2: %.4f\n", name, s.mae, name, s.rmse, name, s.r2);
}

int run(const ex::CommonArgs& args) {
  const ex::CdnowDataset ds = ex::load_dataset(args);
  ex::print_dataset(ds);
  const auto rows = [&](const std::vector<index>& idx) { return uvp::take_rows(ds.features, uvp::as_span(idx)); };
  const auto spend = [&](const std::vector<index>& idx) { return uvp::take(ds.holdout_spend, uvp::as_span(idx)); };
  const Matrix<double> X_train = rows(ds.train), X_val = rows(ds.validation), X_test = rows(ds.test);
  const Vector<double> y_train = spend(ds.train), y_val = spend(ds.validation), y_test = spend(ds.test);

  // Baseline: BG/NBD x Gamma-Gamma fitted on the calibration summaries of the train and
  // validation customers (no holdout data is used), evaluated on the test customers.
  const ex::BgNbdBaseline base = ex::fit_bgnbd_baseline(ds);
  const Vector<double> p_bgnbd = uvp::take(base.expected_spend, uvp::as_span(ds.test));

  // 1. Exact least squares on the raw features (train + validation: nothing to stop early).
  Matrix<double> X_fit(X_train.rows() + X_val.rows(), X_train.cols());
  X_fit << X_train, X_val;
  Vector<double> y_fit(y_train.size() + y_val.size());
  y_fit << y_train, y_val;
  uvp::LinearRegression<double> ols(X_fit.cols());
  ols.fit_exact(X_fit, y_fit);
  const Vector<double> p_ols = ols.predict(X_test);

  // 2. MLP: standardised features, MSE on spend / sd, Adam, early stopping on validation MSE.
  uvp::StandardScaler<double> scaler;
  scaler.fit(X_train);
  const Matrix<double> Z_train = scaler.transform(X_train), Z_val = scaler.transform(X_val),
                       Z_test = scaler.transform(X_test);
  const double y_scale = std::sqrt((y_train.array() - y_train.mean()).square().mean());
  uvp::Rng rng(args.seed);
  Mlp mlp(Z_train.cols(), rng);
  auto model = mlp.blocks();
  uvp::AdamOptions ao;
  ao.lr = args.lr > 0 ? args.lr : 1e-3;
  uvp::Adam<double> adam(ao);
  ex::BestWeights<double> best(model, /*higher_is_better=*/false, /*patience=*/30);
  const index epochs = args.epochs > 0 ? args.epochs : 400, batch = 64;
  std::vector<index> order(std::size_t(Z_train.rows()));
  std::iota(order.begin(), order.end(), index(0));
  Matrix<double> Xb, grad;
  Vector<double> yb;
  const auto predict = [&](const Matrix<double>& Z) -> Vector<double> { return mlp.forward(Z).col(0) * y_scale; };
  for (index epoch = 1; epoch <= epochs; ++epoch) {
    rng.shuffle(order.begin(), order.end());
    double loss = 0;
    for (index s = 0; s < index(order.size()); s += batch) {
      const index m = std::min(batch, index(order.size()) - s);
      Xb.resize(m, Z_train.cols()), yb.resize(m), grad.resize(m, 1);
      for (index b = 0; b < m; ++b)
        Xb.row(b) = Z_train.row(order[std::size_t(s + b)]), yb[b] = y_train[order[std::size_t(s + b)]] / y_scale;
      const Matrix<double>& out = mlp.forward(Xb);
      model.zero_grad();
      loss += double(m) * uvp::mse_loss<double>(uvp::Span<const double>(out.data(), m), uvp::as_span(yb),
                                                uvp::Span<double>(grad.data(), m));
      mlp.backward(Xb, grad);
      uvp::nn::step(adam, model);
    }
    const double val_mse = uvp::mse<double>(uvp::as_span(y_val), uvp::as_span(predict(Z_val)));
    if (epoch % 20 == 0 || epoch == 1)
      std::fprintf(stderr, "epoch %4ld  train_mse %.5f  val_rmse %.4f\n", long(epoch), loss / double(order.size()),
                   std::sqrt(val_mse));
    if (!best.update(val_mse)) break;
  }
  best.restore();
  const Vector<double> p_mlp = predict(Z_test);

  const Scores s_ols = score(y_test, p_ols), s_mlp = score(y_test, p_mlp), s_bg = score(y_test, p_bgnbd);
  std::printf("features: %ld\n", long(X_train.cols()));
  std::printf("test_mean_holdout_spend: %.4f\n", y_test.mean());
  print_scores("linear", s_ols);
  std::printf("mlp_epochs_run: %ld\nmlp_best_epoch: %ld\n", long(best.epochs_run()), long(best.best_epoch()));
  print_scores("mlp", s_mlp);
  std::printf("bgnbd_r: %.4f\nbgnbd_alpha: %.4f\nbgnbd_a: %.4f\nbgnbd_b: %.4f\n", base.bgnbd.r, base.bgnbd.alpha,
              base.bgnbd.a, base.bgnbd.b);
  std::printf("gg_p: %.4f\ngg_q: %.4f\ngg_gamma: %.4f\n", base.gamma_gamma.p, base.gamma_gamma.q,
              base.gamma_gamma.gamma);
  print_scores("bgnbd_gg", s_bg);
  std::printf("test_actual_total: %.2f\nlinear_predicted_total: %.2f\nmlp_predicted_total: %.2f\n"
              "bgnbd_gg_predicted_total: %.2f\n",
              y_test.sum(), p_ols.sum(), p_mlp.sum(), p_bgnbd.sum());

  // Files: predictions of the test customers, predicted vs actual.
  std::filesystem::create_directories(args.out);
  std::vector<std::string> lines;
  char buf[160];
  for (std::size_t k = 0; k < ds.test.size(); ++k) {
    const index c = ds.test[k], i = index(k);
    std::snprintf(buf, sizeof buf, ",%.2f,%.4f,%.4f,%.4f", y_test[i], p_ols[i], p_mlp[i], p_bgnbd[i]);
    lines.push_back(ds.id[std::size_t(c)] + buf);
  }
  ex::write_csv(args.out + "/predictions.csv", "customer_id,holdout_spend,linear,mlp,bgnbd_gg", lines);
  const double hi = std::max({y_test.maxCoeff(), p_ols.maxCoeff(), p_mlp.maxCoeff(), p_bgnbd.maxCoeff()});
  uvp::SvgPlot("Holdout spend of the test customers: predicted vs actual", "actual holdout spend ($)",
               "predicted holdout spend ($)")
      .x_range(0, hi)
      .y_range(0, hi)
      .add_scatter(uvp::as_span(y_test), uvp::as_span(p_bgnbd), "BG/NBD x Gamma-Gamma")
      .add_scatter(uvp::as_span(y_test), uvp::as_span(p_ols), "least squares")
      .add_scatter(uvp::as_span(y_test), uvp::as_span(p_mlp), "MLP 64-32-1")
      .add_diagonal("perfect")
      .save(args.out + "/predicted_vs_actual.svg");
  std::fprintf(stderr, "wrote %s/predictions.csv, predicted_vs_actual.svg\n", args.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = ex::parse_common(argc, argv, "out/future_value_regression",
                                       "usage: future_value_regression [options]\n"
                                       "Predicts each customer's holdout spend from calibration features.\n");
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "future_value_regression: %s\n", e.what());
    return 2;
  }
}
