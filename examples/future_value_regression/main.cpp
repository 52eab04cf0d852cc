// SPDX-License-Identifier: Apache-2.0
// Future customer value as regression: how much will each CDNOW customer spend in the 39-week
// holdout period, from five calibration-period numbers? Exact least squares and a 64-32-1 MLP
// (an nn::Chain trained by uvp::fit: MSE, Adam, early stopping on the validation RMSE), next to
// the BG/NBD x Gamma-Gamma expected spend on the same test customers.
//
//   future_value_regression [--data PATH ...] [--out DIR] [--seed S] [--threads N] [--epochs N]
//
// Prints one `name: value` per line; writes DIR/predictions.csv (test customers) and
// DIR/predicted_vs_actual.svg.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/cdnow_sequences.hpp"
#include "../common/example_cli.hpp"
#include "uvp/core/random.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/metrics/regression.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/fit.hpp"

namespace {

using uvp::index;
using uvp::Matrix;
using uvp::Vector;
namespace ex = uvp_examples;
namespace nn = uvp::nn;

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

  // 2. MLP 5-64-32-1 (ReLU) on standardised features, MSE on spend / sd(spend) (so the loss
  // starts near 1), Adam; early stopping on the validation RMSE in dollars keeps the best epoch.
  uvp::StandardScaler<double> scaler;
  scaler.fit(X_train);
  const Matrix<double> Z_train = scaler.transform(X_train), Z_val = scaler.transform(X_val),
                       Z_test = scaler.transform(X_test);
  const double y_scale = std::sqrt((y_train.array() - y_train.mean()).square().mean());
  const Vector<double> t_train = y_train / y_scale, t_val = y_val / y_scale;
  uvp::Rng rng(args.seed);
  // Braces: the layers are built (and draw their weights from rng) left to right.
  nn::Chain mlp{nn::Dense<double>(Z_train.cols(), 64, rng), nn::Relu<double>(), nn::Dense<double>(64, 32, rng),
                nn::Relu<double>(), nn::Dense<double>(32, 1, rng)};
  uvp::AdamOptions ao;
  ao.lr = args.lr > 0 ? args.lr : 1e-3;
  ao.weight_decay = std::max(args.weight_decay, 0.0), ao.decoupled_weight_decay = true;  // AdamW; none by default
  uvp::Adam<double> adam(ao);
  uvp::TrainOptions<uvp::RowData<double>> to;
  to.epochs = args.epochs > 0 ? args.epochs : 400, to.batch_size = args.batch > 0 ? args.batch : 64;
  to.seed = args.seed, to.patience = args.patience > 0 ? args.patience : 30;
  to.validation = uvp::RowData<double>(Z_val, t_val);
  to.metric = [&](auto y, auto p) { return y_scale * uvp::rmse<double>({y.data(), y.size()}, {p.data(), p.size()}); };
  to.metric_name = "rmse", to.higher_is_better = false, to.progress = stderr;
  const uvp::FitResult result = uvp::fit(mlp, uvp::RowData<double>(Z_train, t_train), uvp::MseLoss<double>(), adam, to);
  if (result.diverged) throw uvp::numeric_error(result.message);
  const Vector<double> p_mlp = uvp::predict(mlp, uvp::RowData<double>(Z_test)).col(0) * y_scale;

  const Scores s_ols = score(y_test, p_ols), s_mlp = score(y_test, p_mlp), s_bg = score(y_test, p_bgnbd);
  std::printf("features: %ld\n", long(X_train.cols()));
  std::printf("test_mean_holdout_spend: %.4f\n", y_test.mean());
  print_scores("linear", s_ols);
  std::printf("mlp_epochs_run: %ld\nmlp_best_epoch: %ld\n", long(result.epochs_run), long(result.best_epoch));
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
