// SPDX-License-Identifier: Apache-2.0
// Customer lifetime value from a transaction log: BG/NBD + Gamma-Gamma fit, holdout check, CLV ranking.
//
//   customer_lifetime_value [--transactions PATH | --csv PATH --id-col C --date-col C --amount-col C]
//                           [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD]
//                           [--time-unit day|week] [--months N] [--discount-rate D] [--out DIR] [--threads N]
//
// Prints one `name: value` per line; writes DIR/clv.csv (every customer) and DIR/holdout_purchases.svg.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/svg.hpp"

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
};

// message == nullptr: --help, printed to stdout with exit code 0.
[[noreturn]] void usage(const char* message) {
  if (message) std::fprintf(stderr, "error: %s\n", message);
  std::fprintf(
      message ? stderr : stdout,
      "usage: customer_lifetime_value [--transactions PATH | --csv PATH --id-col C --date-col C --amount-col C]\n"
      "         [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD] [--time-unit day|week]\n"
      "         [--months N] [--discount-rate D] [--out DIR] [--threads N]\n"
      "Without --transactions/--csv it reads the bundled CDNOW sample (calibration to 1997-09-30,\n"
      "holdout to 1998-06-30). For another log --calibration-end is required; --holdout-end defaults\n"
      "to its last date.\n");
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

  // Holdout: predicted vs actual purchases of the calibration customers.
  const uvp::Vector<double> predicted =
      bg.conditional_expected_purchases(split.holdout_duration, s.frequency, s.recency, s.T);
  const uvp::Vector<double>& actual = split.holdout_frequency;
  std::printf("holdout_duration: %.4f\n", split.holdout_duration);
  std::printf("holdout_actual_total: %.0f\n", actual.sum());
  std::printf("holdout_predicted_total: %.2f\n", predicted.sum());
  std::printf("holdout_mae: %.4f\n", (predicted - actual).cwiseAbs().mean());
  // By calibration frequency (FHL 2005, Figure 4): mean actual vs mean predicted, 0 .. 7+.
  constexpr int buckets = 8;
  std::vector<double> n_b(buckets, 0), act_b(buckets, 0), pred_b(buckets, 0), xs(buckets);
  for (uvp::index i = 0; i < s.size(); ++i) {
    const int b = std::min(static_cast<int>(s.frequency[i]), buckets - 1);
    n_b[b] += 1, act_b[b] += actual[i], pred_b[b] += predicted[i];
  }
  std::vector<double> bx, ba, bp;
  for (int b = 0; b < buckets; ++b) {
    if (n_b[b] == 0) continue;
    bx.push_back(b), ba.push_back(act_b[b] / n_b[b]), bp.push_back(pred_b[b] / n_b[b]);
    std::printf("holdout_by_frequency_%d%s: customers=%.0f actual=%.3f predicted=%.3f\n", b,
                b == buckets - 1 ? "+" : "", n_b[b], ba.back(), bp.back());
  }

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

  // Files: every customer's scores (CSV) and the holdout plot (SVG), each written atomically.
  std::filesystem::create_directories(a.out);
  std::string csv =
      "customer_id,frequency,recency,T,monetary_value,p_alive,holdout_actual,holdout_predicted,"
      "expected_purchases_horizon,expected_spend,clv\n";
  char line[512];
  for (uvp::index i = 0; i < s.size(); ++i) {
    std::snprintf(line, sizeof line, ",%.0f,%.6g,%.6g,%.6g,%.6g,%.0f,%.6g,%.6g,%.6g,%.6g\n", s.frequency[i],
                  s.recency[i], s.T[i], s.monetary_value[i], scores.probability_alive[i], actual[i], predicted[i],
                  scores.expected_purchases[i], scores.expected_average_value[i], scores.clv[i]);
    csv += s.id[static_cast<std::size_t>(i)];
    csv += line;
  }
  const std::string csv_path = a.out + "/clv.csv", svg_path = a.out + "/holdout_purchases.svg";
  uvp::write_file_atomic(csv_path, csv, "customer_lifetime_value");
  uvp::SvgPlot plot("Holdout purchases by calibration frequency", "purchases in the calibration period (7 = 7+)",
                    "mean purchases in the holdout period");
  plot.add_line(bx, ba, "actual").add_line(bx, bp, "BG/NBD expected");
  plot.save(svg_path);
  std::printf("clv_csv: %s\nholdout_svg: %s\n", csv_path.c_str(), svg_path.c_str());
  std::printf("seconds_read_summarize: %.4f\nseconds_fit_bgnbd: %.4f\nseconds_fit_gg: %.4f\nseconds_score: %.4f\n",
              t_read, t_bg, t_gg, t_score);
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
