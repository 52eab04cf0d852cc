// SPDX-License-Identifier: Apache-2.0
// Customer lifetime value from a transaction log: BG/NBD + Gamma-Gamma fit, Pareto/NBD and MBG/NBD
// on the same data (all with standard errors), holdout check and diagnostic plots of every purchase
// model, CLV ranking, and a 128-64-1 MLP trained on the calibration features to predict the holdout
// spend, compared with the BG/NBD x Gamma-Gamma expected holdout spend on held-out customers.
//
//   customer_lifetime_value [--transactions PATH | --csv PATH --id-col C --date-col C --amount-col C]
//                           [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD]
//                           [--time-unit day|week] [--months N] [--discount-rate D] [--out DIR] [--threads N]
//                           [--seed S] [--epochs N]
//
// Prints one `name: value` per line; writes DIR/clv.csv (every customer), DIR/holdout_purchases.svg,
// DIR/holdout_spend_test.svg (predicted vs actual holdout spend), DIR/mlp_training.svg and the
// diagnostics of clv_models.hpp (period transactions, tracking, frequency x recency matrices).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "clv_models.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/diagnostics.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/data/scalers.hpp"
#include "uvp/data/split.hpp"
#include "uvp/io/svg.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/metrics/regression.hpp"
#include "uvp/nn/sequential.hpp"
#include "uvp/optim/adam.hpp"

#ifndef UVP_EXAMPLE_DATA_DIR
#define UVP_EXAMPLE_DATA_DIR "examples/data"
#endif

namespace {

struct Args {
  std::string transactions = std::string(UVP_EXAMPLE_DATA_DIR) + "/cdnow/CDNOW_sample.txt";
  bool custom_input = false;  // --transactions or --csv PATH given
  bool csv = false;
  std::string id_col = "customer_id", date_col = "date", amount_col = "amount";
  std::string calibration_end, holdout_end;
  uvp::TimeUnit unit = uvp::TimeUnit::week;
  int months = 12;
  double discount_rate = 0.01;
  std::string out = "out/customer_lifetime_value";
  int threads = 0;
  std::uint64_t seed = 42;  // customer split, MLP initialisation and shuffling
  int epochs = 300;         // MLP: most epochs (early stopping usually ends sooner)
};

// message == nullptr: --help, printed to stdout with exit code 0.
[[noreturn]] void usage(const char* message) {
  if (message) std::fprintf(stderr, "error: %s\n", message);
  std::fprintf(
      message ? stderr : stdout,
      "usage: customer_lifetime_value [--transactions PATH | --csv PATH --id-col C --date-col C --amount-col C]\n"
      "         [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD] [--time-unit day|week]\n"
      "         [--months N] [--discount-rate D] [--out DIR] [--threads N] [--seed S] [--epochs N]\n"
      "Without --transactions/--csv it reads the bundled CDNOW sample (calibration to 1997-09-30,\n"
      "holdout to 1998-06-30). For another log --calibration-end is required; --holdout-end defaults\n"
      "to its last date. --seed (42) fixes the train/validation/test split of the customers and the\n"
      "MLP; --epochs (300) caps its training (early stopping on the validation customers).\n");
  std::exit(message ? 2 : 0);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((k + " needs a value").c_str());
      return argv[++i];
    };
    if (k == "--transactions") {
      a.transactions = value(), a.custom_input = true;
    } else if (k == "--csv") {  // the log is a CSV: --csv PATH, or --csv with --transactions PATH
      a.csv = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') a.transactions = argv[++i], a.custom_input = true;
    } else if (k == "--id-col") {
      a.id_col = value();
    } else if (k == "--date-col") {
      a.date_col = value();
    } else if (k == "--amount-col") {
      a.amount_col = value();
    } else if (k == "--calibration-end") {
      a.calibration_end = value();
    } else if (k == "--holdout-end") {
      a.holdout_end = value();
    } else if (k == "--time-unit") {
      const std::string u = value();
      if (u != "day" && u != "week") usage("--time-unit must be day or week");
      a.unit = u == "day" ? uvp::TimeUnit::day : uvp::TimeUnit::week;
    } else if (k == "--months") {
      a.months = std::atoi(value().c_str());
      if (a.months < 1) usage("--months must be >= 1");
    } else if (k == "--discount-rate") {
      a.discount_rate = std::atof(value().c_str());
    } else if (k == "--out") {
      a.out = value();
    } else if (k == "--threads") {
      a.threads = std::atoi(value().c_str());
    } else if (k == "--seed") {
      std::istringstream in(value());
      if (!(in >> a.seed) || !in.eof()) usage("--seed must be a non-negative integer");
    } else if (k == "--epochs") {
      a.epochs = std::atoi(value().c_str());
      if (a.epochs < 1) usage("--epochs must be >= 1");
    } else if (k == "--help" || k == "-h") {
      usage(nullptr);
    } else {
      usage(("unknown option " + k).c_str());
    }
  }
  if (a.csv && !a.custom_input) usage("--csv needs a path (--csv PATH, or --transactions PATH --csv)");
  if (!a.custom_input) {
    if (a.calibration_end.empty()) a.calibration_end = "1997-09-30";
    if (a.holdout_end.empty()) a.holdout_end = "1998-06-30";
  } else if (a.calibration_end.empty()) {
    usage("--calibration-end is required for a transaction log of your own");
  }
  return a;
}

// A CSV log through uvp::read_csv: one row per transaction, the three named columns.
uvp::TransactionLog read_csv_log(const Args& a) {
  const uvp::CsvTable table = uvp::read_csv(a.transactions);
  const auto ids = table.column(a.id_col);
  const auto dates = table.column(a.date_col);
  const auto amounts = table.numeric_column<double>(a.amount_col);
  const uvp::index date_col = table.column_index(a.date_col);
  uvp::TransactionLog log;
  for (uvp::index r = 0; r < table.rows(); ++r) {
    uvp::Date d;
    try {
      d = uvp::parse_date(dates[static_cast<std::size_t>(r)]);
    } catch (const uvp::parse_error& e) {
      uvp::detail::raise<uvp::parse_error>(table.location(r, date_col), ": ", e.what());
    }
    log.add(ids[static_cast<std::size_t>(r)], d, amounts[r]);
  }
  return log;
}


// ---------------------------------------------------------------------------------------------
// Future value with an MLP: features of the calibration period -> spend in the holdout period.

using uvp::index;

// Each customer's total spend in the calibration period (up to calibration_end) and in the
// holdout period (calibration_end, holdout_end], in the order of the summary's ids.
struct SpendTotals {
  uvp::Vector<double> calibration, holdout;
};
SpendTotals spend_totals(const uvp::TransactionLog& log, const uvp::CustomerSummary& s, uvp::Date cal_end,
                         uvp::Date hold_end) {
  std::unordered_map<std::string, index> pos;
  for (index i = 0; i < s.size(); ++i) pos.emplace(s.id[static_cast<std::size_t>(i)], i);
  SpendTotals t{uvp::Vector<double>::Zero(s.size()), uvp::Vector<double>::Zero(s.size())};
  for (index r = 0; r < log.size(); ++r) {
    const auto it = pos.find(log.customer_id[static_cast<std::size_t>(r)]);
    if (it == pos.end()) continue;  // first purchase after calibration_end: not a calibration customer
    const uvp::Date d = log.date[static_cast<std::size_t>(r)];
    const double amount = log.amount[static_cast<std::size_t>(r)];
    if (d.days() <= cal_end.days()) t.calibration[it->second] += amount;
    else if (d.days() <= hold_end.days()) t.holdout[it->second] += amount;
  }
  return t;
}

// The MLP's inputs, one row per customer. The counts and amounts are heavy-tailed (a few
// customers buy 10-50 times more than the median one), so they enter as log1p before the
// standardisation; recency and T are bounded by the calibration length and enter as they are.
const char* const value_feature_names = "log1p(frequency) recency T log1p(mean_spend) log1p(total_spend)";
uvp::Matrix<double> value_features(const uvp::CustomerSummary& s, const uvp::Vector<double>& calibration_spend) {
  uvp::Matrix<double> X(s.size(), 5);
  for (index i = 0; i < s.size(); ++i) {
    const double days = s.frequency[i] + 1;  // purchase days: the first one and the repeats
    X(i, 0) = std::log1p(s.frequency[i]);
    X(i, 1) = s.recency[i];
    X(i, 2) = s.T[i];
    X(i, 3) = std::log1p(calibration_spend[i] / days);
    X(i, 4) = std::log1p(calibration_spend[i]);
  }
  return X;
}

// Customers split as in the other CDNOW examples (same procedure, same seed, same customers):
// 20 % test, then 20 % of the rest for validation, each stratified on "bought in the holdout".
struct CustomerSplit {
  std::vector<index> train, validation, test;
};
CustomerSplit split_customers(const uvp::Vector<double>& holdout_frequency, std::uint64_t seed) {
  uvp::Vector<double> bought(holdout_frequency.size());
  for (index i = 0; i < bought.size(); ++i) bought[i] = holdout_frequency[i] > 0 ? 1.0 : 0.0;
  const auto outer = uvp::stratified_train_test_split(bought, 0.2, seed);
  const uvp::Vector<double> rest = uvp::take(bought, uvp::as_span(outer.train));
  const auto inner = uvp::stratified_train_test_split(rest, 0.2, seed + 1);
  CustomerSplit out;
  for (index i : inner.train) out.train.push_back(outer.train[static_cast<std::size_t>(i)]);
  for (index i : inner.test) out.validation.push_back(outer.train[static_cast<std::size_t>(i)]);
  out.test = outer.test;
  return out;
}

struct ValueMlp {
  uvp::Vector<double> prediction;  // predicted holdout spend of every customer
  index parameters = 0, epochs_run = 0, best_epoch = 0;
  double best_validation_rmse = 0;
  std::vector<double> train_rmse, validation_rmse;  // per epoch, in dollars
};

// make_mlp({5, 128, 64, 1}, ReLU), MSE on the holdout spend divided by its training standard
// deviation (so the loss starts near 1), Adam (lr 1e-3, batches of 64), early stopping on the
// validation customers' RMSE (patience 20 epochs), the best epoch's weights kept.
ValueMlp train_value_mlp(const uvp::Matrix<double>& X_all, const uvp::Vector<double>& y_all, const CustomerSplit& sp,
                         std::uint64_t seed, int max_epochs) {
  constexpr index batch = 64, patience = 20;
  const auto rows = [&](const std::vector<index>& idx) { return uvp::take_rows(X_all, uvp::as_span(idx)); };
  uvp::StandardScaler<double> scaler;
  scaler.fit(rows(sp.train));
  const uvp::Matrix<double> Z = scaler.transform(X_all);
  const uvp::Matrix<double> Z_train = uvp::take_rows(Z, uvp::as_span(sp.train));
  const uvp::Matrix<double> Z_val = uvp::take_rows(Z, uvp::as_span(sp.validation));
  const uvp::Vector<double> y_train = uvp::take(y_all, uvp::as_span(sp.train));
  const uvp::Vector<double> y_val = uvp::take(y_all, uvp::as_span(sp.validation));
  const double y_scale = std::sqrt((y_train.array() - y_train.mean()).square().mean());

  uvp::Rng rng(seed);
  uvp::nn::Sequential<double> mlp = uvp::nn::make_mlp<double>({X_all.cols(), 128, 64, 1}, uvp::nn::Activation::relu, rng);
  uvp::nn::BlockList<double> blocks;
  blocks.add("mlp", mlp);
  uvp::Adam<double> adam;  // lr 1e-3, betas (0.9, 0.999): PyTorch's defaults
  uvp::nn::Sequential<double>::Context ctx;
  const auto predict = [&](const uvp::Matrix<double>& Zs) -> uvp::Vector<double> {
    return uvp::Vector<double>(mlp.forward(Zs, ctx).col(0)) * y_scale;
  };
  const auto rmse = [](const uvp::Vector<double>& y, const uvp::Vector<double>& p) {
    return uvp::rmse<double>(uvp::as_span(y), uvp::as_span(p));
  };

  ValueMlp out;
  out.parameters = blocks.parameter_count();
  std::vector<std::vector<double>> best;  // the best epoch's parameters, block by block
  std::vector<index> order(static_cast<std::size_t>(Z_train.rows()));
  std::iota(order.begin(), order.end(), index(0));
  uvp::Matrix<double> Xb(batch, Z.cols()), grad(batch, 1);
  uvp::Vector<double> yb(batch);
  uvp::Rng shuffle(seed + 7);
  for (int epoch = 1; epoch <= max_epochs; ++epoch) {
    mlp.train();
    shuffle.shuffle(order.begin(), order.end());
    for (index s = 0; s < index(order.size()); s += batch) {
      const index m = std::min(batch, index(order.size()) - s);
      Xb.resize(m, Z.cols()), yb.resize(m), grad.resize(m, 1);
      for (index b = 0; b < m; ++b) {
        const index r = order[static_cast<std::size_t>(s + b)];
        Xb.row(b) = Z_train.row(r), yb[b] = y_train[r] / y_scale;
      }
      const auto pred = mlp.forward(Xb, ctx);
      blocks.zero_grad();
      uvp::mse_loss<double>(uvp::Span<const double>(pred.data(), m), uvp::as_span(yb), uvp::Span<double>(grad.data(), m));
      mlp.backward(Xb, ctx, grad);
      uvp::nn::step(adam, blocks);
    }
    mlp.eval();
    out.train_rmse.push_back(rmse(y_train, predict(Z_train)));
    out.validation_rmse.push_back(rmse(y_val, predict(Z_val)));
    out.epochs_run = epoch;
    if (out.best_epoch == 0 || out.validation_rmse.back() < out.best_validation_rmse) {
      out.best_epoch = epoch, out.best_validation_rmse = out.validation_rmse.back();
      best.clear();
      for (const auto& e : blocks.entries()) {
        const auto v = e.block->parameters().values();
        best.emplace_back(v.begin(), v.end());
      }
    }
    if (epoch - out.best_epoch >= patience) break;
  }
  std::size_t k = 0;
  for (const auto& e : blocks.entries()) {
    auto v = e.block->parameters().values();
    std::copy(best[k].begin(), best[k].end(), v.begin());
    ++k;
  }
  out.prediction = predict(Z);
  return out;
}

// Spearman's rank correlation (ties get their average rank).
uvp::Vector<double> average_ranks(const uvp::Vector<double>& v) {
  std::vector<index> o(static_cast<std::size_t>(v.size()));
  std::iota(o.begin(), o.end(), index(0));
  std::sort(o.begin(), o.end(), [&](index a, index b) { return v[a] < v[b]; });
  uvp::Vector<double> r(v.size());
  for (std::size_t i = 0; i < o.size();) {
    std::size_t j = i;
    while (j + 1 < o.size() && v[o[j + 1]] == v[o[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) r[o[k]] = 0.5 * double(i + j) + 1;
    i = j + 1;
  }
  return r;
}
double spearman(const uvp::Vector<double>& a, const uvp::Vector<double>& b) {
  const uvp::Vector<double> ra = average_ranks(a), rb = average_ranks(b);
  const uvp::Vector<double> ca = ra.array() - ra.mean(), cb = rb.array() - rb.mean();
  return ca.dot(cb) / std::sqrt(ca.squaredNorm() * cb.squaredNorm());
}

// Share of the actual total captured by the top 10 % of customers by score (ties: stable order).
double top_decile_capture(const uvp::Vector<double>& actual, const uvp::Vector<double>& score) {
  std::vector<index> o(static_cast<std::size_t>(score.size()));
  std::iota(o.begin(), o.end(), index(0));
  std::stable_sort(o.begin(), o.end(), [&](index a, index b) { return score[a] > score[b]; });
  const std::size_t top = std::max<std::size_t>(1, (o.size() + 9) / 10);
  double captured = 0;
  for (std::size_t k = 0; k < top; ++k) captured += actual[o[k]];
  return actual.sum() > 0 ? captured / actual.sum() : 0.0;
}

void print_value_scores(const char* name, const uvp::Vector<double>& actual, const uvp::Vector<double>& predicted) {
  const auto ya = uvp::as_span(actual), yp = uvp::as_span(predicted);
  std::printf("%s_holdout_spend_total: %.2f\n", name, predicted.sum());
  std::printf("%s_holdout_spend_mae: %.4f\n", name, uvp::mae<double>(ya, yp));
  std::printf("%s_holdout_spend_rmse: %.4f\n", name, uvp::rmse<double>(ya, yp));
  std::printf("%s_holdout_spend_r2: %.4f\n", name, uvp::r2_score<double>(ya, yp));
  std::printf("%s_holdout_spend_spearman: %.4f\n", name, spearman(actual, predicted));
  std::printf("%s_holdout_spend_top_decile_capture: %.4f\n", name, top_decile_capture(actual, predicted));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Args& a) {
  if (a.threads > 0) uvp::set_num_threads(a.threads);
  const auto t_start = std::chrono::steady_clock::now();
  const uvp::TransactionLog log = a.csv ? read_csv_log(a) : uvp::read_cdnow_transactions(a.transactions);
  const uvp::Date cal_end = uvp::parse_date(a.calibration_end);
  const uvp::Date hold_end =
      a.holdout_end.empty() ? *std::max_element(log.date.begin(), log.date.end()) : uvp::parse_date(a.holdout_end);
  const auto split = uvp::calibration_holdout_split(log, cal_end, hold_end, a.unit);
  const uvp::CustomerSummary& s = split.calibration;
  const double t_read = seconds_since(t_start);

  std::printf("transactions: %lld\n", static_cast<long long>(log.size()));
  std::printf("customers: %lld\n", static_cast<long long>(s.size()));
  std::printf("calibration_end: %s\n", cal_end.to_string().c_str());
  std::printf("holdout_end: %s\n", hold_end.to_string().c_str());
  std::printf("time_unit: %s\n", a.unit == uvp::TimeUnit::week ? "week" : "day");
  std::printf("threads: %d\n", uvp::num_threads());

  // Purchases: BG/NBD.
  auto t0 = std::chrono::steady_clock::now();
  uvp::BgNbd bg;
  const auto fit_bg = bg.fit(s);
  const double t_bg = seconds_since(t0);
  const auto p = bg.params();
  std::printf("bgnbd_r: %.6f\nbgnbd_alpha: %.6f\nbgnbd_a: %.6f\nbgnbd_b: %.6f\n", p.r, p.alpha, p.a, p.b);
  std::printf("bgnbd_loglik: %.4f\n", fit_bg.log_likelihood);
  std::printf("bgnbd_converged: %s\n", fit_bg.converged ? "true" : "false");
  for (const auto& w : fit_bg.warnings) std::printf("bgnbd_warning: %s\n", w.c_str());
  clv_example::print_fit("", "bgnbd", fit_bg, false);  // the standard errors

  // Purchases: Pareto/NBD and MBG/NBD on the same calibration data.
  t0 = std::chrono::steady_clock::now();
  uvp::ParetoNbd pnbd;
  const auto fit_pnbd = pnbd.fit(s);
  const double t_pnbd = seconds_since(t0);
  clv_example::print_fit("", "pnbd", fit_pnbd);
  t0 = std::chrono::steady_clock::now();
  uvp::MbgNbd mbg;
  const auto fit_mbg = mbg.fit(s);
  const double t_mbg = seconds_since(t0);
  clv_example::print_fit("", "mbgnbd", fit_mbg);

  // Spend: Gamma-Gamma on the repeat buyers. Its likelihood takes log(spend), so repeat buyers
  // whose repeat purchases were all free (spend 0: CDNOW_master.txt has some) are left out of the
  // fit; they are still scored.
  t0 = std::chrono::steady_clock::now();
  std::vector<double> fit_f, fit_m;
  for (uvp::index i = 0; i < s.size(); ++i)
    if (!(s.frequency[i] > 0 && s.monetary_value[i] == 0))
      fit_f.push_back(s.frequency[i]), fit_m.push_back(s.monetary_value[i]);
  uvp::GammaGamma gg;
  const auto fit_gg = gg.fit(uvp::Span<const double>(fit_f).as_vector(), uvp::Span<const double>(fit_m).as_vector());
  const double t_gg = seconds_since(t0);
  const auto g = gg.params();
  std::printf("gg_customers: %lld\n", static_cast<long long>(fit_gg.customers));
  if (fit_f.size() < static_cast<std::size_t>(s.size()))
    std::printf("gg_excluded_zero_spend: %lld\n",
                static_cast<long long>(s.size()) - static_cast<long long>(fit_f.size()));
  std::printf("gg_p: %.6f\ngg_q: %.6f\ngg_gamma: %.6f\n", g.p, g.q, g.gamma);
  std::printf("gg_loglik: %.4f\n", fit_gg.log_likelihood);
  std::printf("gg_converged: %s\n", fit_gg.converged ? "true" : "false");
  std::printf("gg_frequency_spend_correlation: %.4f\n",
              uvp::frequency_monetary_correlation(s.frequency, s.monetary_value));
  for (const auto& w : fit_gg.warnings) std::printf("gg_warning: %s\n", w.c_str());
  clv_example::print_fit("", "gg", fit_gg, false);  // the standard errors

  // Holdout: predicted vs actual purchases of the calibration customers.
  const uvp::Vector<double> predicted =
      bg.conditional_expected_purchases(split.holdout_duration, s.frequency, s.recency, s.T);
  const uvp::Vector<double>& actual = split.holdout_frequency;
  std::printf("holdout_duration: %.4f\n", split.holdout_duration);
  std::printf("holdout_actual_total: %.0f\n", actual.sum());
  std::printf("holdout_predicted_total: %.2f\n", predicted.sum());
  std::printf("holdout_mae: %.4f\n", (predicted - actual).cwiseAbs().mean());
  // Every purchase model on the holdout, per customer.
  clv_example::print_holdout("", "bgnbd", actual, predicted);
  if (pnbd.is_fitted())
    clv_example::print_holdout(
        "", "pnbd", actual, pnbd.conditional_expected_purchases(split.holdout_duration, s.frequency, s.recency, s.T));
  if (mbg.is_fitted())
    clv_example::print_holdout(
        "", "mbgnbd", actual, mbg.conditional_expected_purchases(split.holdout_duration, s.frequency, s.recency, s.T));
  // By calibration frequency (FHL 2005, Figure 4): mean actual vs mean predicted, 0 .. 7+.
  const uvp::HoldoutByFrequency by_f =
      uvp::holdout_by_frequency(bg, s.frequency, s.recency, s.T, actual, split.holdout_duration);
  for (std::size_t k = 0; k < by_f.frequency.size(); ++k)
    std::printf("holdout_by_frequency_%.0f%s: customers=%.0f actual=%.3f predicted=%.3f\n", by_f.frequency[k],
                by_f.frequency[k] == 7 ? "+" : "", by_f.customers[k], by_f.actual[k], by_f.expected[k]);

  // Diagnostics of every purchase model (uvp/clv/diagnostics.hpp): their numbers now, the SVGs below.
  t0 = std::chrono::steady_clock::now();
  const uvp::RepeatTransactionTracking tracking = uvp::track_repeat_transactions(log, cal_end, hold_end, a.unit);
  clv_example::DiagnosticPlots diagnostics(split, tracking, a.unit == uvp::TimeUnit::week ? "week" : "day");
  diagnostics.add("bgnbd", "BG/NBD", bg);
  if (pnbd.is_fitted()) diagnostics.add("pnbd", "Pareto/NBD", pnbd);
  if (mbg.is_fitted()) diagnostics.add("mbgnbd", "MBG/NBD", mbg);
  diagnostics.print("");
  const double t_diag = seconds_since(t0);

  // CLV over the horizon for every customer (parallel).
  t0 = std::chrono::steady_clock::now();
  uvp::ClvOptions opt;
  opt.months = a.months;
  opt.discount_rate = a.discount_rate;
  opt.time_unit = a.unit;
  const uvp::CustomerScores scores = uvp::score_customers(bg, gg, s, opt);
  const double t_score = seconds_since(t0);
  std::printf("clv_months: %d\nclv_monthly_discount_rate: %g\n", a.months, a.discount_rate);
  std::printf("clv_total: %.2f\nclv_mean: %.4f\n", scores.clv.sum(), scores.clv.mean());
  std::vector<uvp::index> order(static_cast<std::size_t>(s.size()));
  std::iota(order.begin(), order.end(), uvp::index(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](uvp::index u, uvp::index v) { return scores.clv[u] > scores.clv[v]; });
  for (std::size_t k = 0; k < std::min<std::size_t>(10, order.size()); ++k) {
    const uvp::index i = order[k];
    std::printf("top_clv_%zu: id=%s clv=%.2f frequency=%.0f recency=%.2f T=%.2f p_alive=%.3f expected_spend=%.2f\n",
                k + 1, s.id[static_cast<std::size_t>(i)].c_str(), scores.clv[i], s.frequency[i], s.recency[i], s.T[i],
                scores.probability_alive[i], scores.expected_average_value[i]);
  }

  // Future value, checked where it can be: the log has no 12 months after calibration_end (the
  // bundled CDNOW sample has 39 weeks), so both models predict each customer's spend in the
  // holdout window, compared with what the customer actually spent there. The MLP learns it from
  // the training customers (early stopping on the validation ones); BG/NBD x Gamma-Gamma predicts
  // it as E[purchases in the window] * E[spend per purchase], from the fit above (which used no
  // holdout data). Both are scored on the test customers only.
  t0 = std::chrono::steady_clock::now();
  const SpendTotals spend = spend_totals(log, s, cal_end, hold_end);
  const uvp::Vector<double> model_spend = predicted.cwiseProduct(scores.expected_average_value);
  const CustomerSplit sp = split_customers(actual, a.seed);
  const ValueMlp mlp = train_value_mlp(value_features(s, spend.calibration), spend.holdout, sp, a.seed, a.epochs);
  const double t_mlp = seconds_since(t0);
  const auto test = uvp::as_span(sp.test);
  const uvp::Vector<double> y_test = uvp::take(spend.holdout, test);
  std::printf("value_features: %s\n", value_feature_names);
  std::printf("value_train_customers: %zu\nvalue_validation_customers: %zu\nvalue_test_customers: %zu\n",
              sp.train.size(), sp.validation.size(), sp.test.size());
  std::printf("mlp_layers: 5-128-64-1 relu\nmlp_parameters: %ld\n", long(mlp.parameters));
  std::printf("mlp_epochs_run: %ld\nmlp_best_epoch: %ld\nmlp_validation_rmse: %.4f\n", long(mlp.epochs_run),
              long(mlp.best_epoch), mlp.best_validation_rmse);
  std::printf("test_holdout_spend_total: %.2f\ntest_holdout_spend_mean: %.4f\n", y_test.sum(), y_test.mean());
  print_value_scores("mlp", y_test, uvp::take(mlp.prediction, test));
  print_value_scores("bgnbd_gg", y_test, uvp::take(model_spend, test));
  // The ranking output is the 12-month CLV; how much of the test customers' holdout spend its top
  // decile holds is the check of that ranking the data allow.
  std::printf("clv_top_decile_capture: %.4f\n", top_decile_capture(y_test, uvp::take(scores.clv, test)));

  // Files: every customer's scores (CSV) and the plots (SVG), each written atomically.
  std::filesystem::create_directories(a.out);
  std::vector<const char*> part(static_cast<std::size_t>(s.size()), "train");
  for (uvp::index i : sp.validation) part[static_cast<std::size_t>(i)] = "validation";
  for (uvp::index i : sp.test) part[static_cast<std::size_t>(i)] = "test";
  std::string csv =
      "customer_id,frequency,recency,T,monetary_value,p_alive,holdout_actual,holdout_predicted,"
      "expected_purchases_horizon,expected_spend,clv,split,holdout_spend_actual,holdout_spend_bgnbd_gg,"
      "holdout_spend_mlp\n";
  char line[512];
  for (uvp::index i = 0; i < s.size(); ++i) {
    std::snprintf(line, sizeof line, ",%.0f,%.6g,%.6g,%.6g,%.6g,%.0f,%.6g,%.6g,%.6g,%.6g,%s,%.2f,%.6g,%.6g\n",
                  s.frequency[i], s.recency[i], s.T[i], s.monetary_value[i], scores.probability_alive[i], actual[i],
                  predicted[i], scores.expected_purchases[i], scores.expected_average_value[i], scores.clv[i],
                  part[static_cast<std::size_t>(i)], spend.holdout[i], model_spend[i], mlp.prediction[i]);
    csv += s.id[static_cast<std::size_t>(i)];
    csv += line;
  }
  const std::string csv_path = a.out + "/clv.csv";
  uvp::write_file_atomic(csv_path, csv, "customer_lifetime_value");
  const auto diagnostic_files = diagnostics.save(a.out);  // holdout_purchases.svg and the other diagnostics
  // Predicted vs actual holdout spend of the test customers, both models.
  const std::string spend_svg = a.out + "/holdout_spend_test.svg", curve_svg = a.out + "/mlp_training.svg";
  const uvp::Vector<double> p_mlp = uvp::take(mlp.prediction, test), p_bg = uvp::take(model_spend, test);
  uvp::SvgPlot spend_plot("Holdout spend of the test customers", "actual spend in the holdout window ($)",
                          "predicted spend ($)");
  spend_plot.add_scatter(uvp::as_span(y_test), uvp::as_span(p_bg), "BG/NBD x Gamma-Gamma")
      .add_scatter(uvp::as_span(y_test), uvp::as_span(p_mlp), "MLP 128-64-1")
      .add_diagonal("predicted = actual")
      .save(spend_svg);
  std::vector<double> epochs(mlp.train_rmse.size());
  std::iota(epochs.begin(), epochs.end(), 1.0);
  uvp::SvgPlot curve("MLP training: RMSE of the holdout spend", "epoch", "RMSE ($)");
  curve.add_line(uvp::as_span(epochs), uvp::as_span(mlp.train_rmse), "training customers")
      .add_line(uvp::as_span(epochs), uvp::as_span(mlp.validation_rmse), "validation customers")
      .save(curve_svg);
  std::printf("clv_csv: %s\nholdout_svg: %s/holdout_purchases.svg\nholdout_spend_svg: %s\nmlp_training_svg: %s\n",
              csv_path.c_str(), a.out.c_str(), spend_svg.c_str(), curve_svg.c_str());
  for (const auto& [name, path] : diagnostic_files) std::printf("%s_svg: %s\n", name.c_str(), path.c_str());
  std::printf("seconds_read_summarize: %.4f\nseconds_fit_bgnbd: %.4f\nseconds_fit_gg: %.4f\nseconds_score: %.4f\n",
              t_read, t_bg, t_gg, t_score);
  std::printf("seconds_fit_pnbd: %.4f\nseconds_fit_mbgnbd: %.4f\nseconds_diagnostics: %.4f\n", t_pnbd, t_mbg, t_diag);
  std::printf("seconds_mlp: %.4f\n", t_mlp);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    return run(args);
  } catch (const uvp::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
