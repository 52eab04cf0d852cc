// SPDX-License-Identifier: Apache-2.0
// Every BTYD purchase model on a second real log: the UCI Online Retail data (541,909 invoice
// lines of a UK online gift retailer, 2010-12-01 .. 2011-12-09), read with uvp::read_csv, cleaned
// with every dropped line counted, summarised per customer, fitted with BG/NBD, Pareto/NBD,
// MBG/NBD and Gamma-Gamma, compared on a holdout period, and drawn as the diagnostic plots.
//
//   clv_online_retail [--csv PATH] [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD]
//                     [--time-unit day|week] [--out DIR] [--threads N]
//
// Prints one `name: value` per line, each prefixed `retail_`; writes DIR/customers.csv and the
// diagnostic SVGs (see examples/customer_lifetime_value/clv_models.hpp).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../customer_lifetime_value/clv_models.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/diagnostics.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/data/csv.hpp"
#include "uvp/io/file.hpp"

#ifndef UVP_ONLINE_RETAIL_CSV
#define UVP_ONLINE_RETAIL_CSV "online_retail.csv"
#endif

namespace {

struct Args {
  std::string csv = UVP_ONLINE_RETAIL_CSV;
  std::string calibration_end = "2011-09-09", holdout_end = "2011-12-09";
  uvp::TimeUnit unit = uvp::TimeUnit::week;
  std::string out = "out/clv_online_retail";
  int threads = 0;
  bool pnbd = true, mbgnbd = true;  // BG/NBD always runs
};

[[noreturn]] void usage(const char* message) {
  if (message) std::fprintf(stderr, "error: %s\n", message);
  std::fprintf(message ? stderr : stdout,
               "usage: clv_online_retail [--csv PATH] [--calibration-end YYYY-MM-DD] [--holdout-end YYYY-MM-DD]\n"
               "         [--time-unit day|week] [--out DIR] [--threads N] [--models LIST]\n"
               "Reads the UCI Online Retail log (default: the copy extracted into the build tree from\n"
               "examples/data/online_retail/online_retail.tar.xz), calibration to 2011-09-09, holdout to\n"
               "2011-12-09 (13 weeks), time unit week. --models: a comma-separated subset of\n"
               "bgnbd,pnbd,mbgnbd (default all; BG/NBD always runs).\n");
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
    if (k == "--csv") a.csv = value();
    else if (k == "--calibration-end") a.calibration_end = value();
    else if (k == "--holdout-end") a.holdout_end = value();
    else if (k == "--time-unit") {
      const std::string u = value();
      if (u != "day" && u != "week") usage("--time-unit must be day or week");
      a.unit = u == "day" ? uvp::TimeUnit::day : uvp::TimeUnit::week;
    } else if (k == "--out") a.out = value();
    else if (k == "--threads") a.threads = std::atoi(value().c_str());
    else if (k == "--models") {
      const std::string m = "," + value() + ",";
      a.pnbd = m.find(",pnbd,") != std::string::npos;
      a.mbgnbd = m.find(",mbgnbd,") != std::string::npos;
    }
    else if (k == "--help" || k == "-h") usage(nullptr);
    else usage(("unknown option " + k).c_str());
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// What the cleaning did with each invoice line; every line lands in exactly one bucket, checked
// in this order (a cancellation without a customer id counts as "no customer id").
struct LineCounts {
  long long lines = 0, no_customer = 0, cancellation = 0, non_positive_quantity = 0, non_positive_price = 0, kept = 0;
  double cancelled_amount = 0;  // sum of Quantity x UnitPrice over the cancellation lines (negative)
};

// The invoice lines -> one TransactionLog row per kept invoice (customer, day, sum of
// Quantity x UnitPrice over its kept lines). The summaries then merge a customer's invoices of one
// day into one purchase.
uvp::TransactionLog read_online_retail(const std::string& path, LineCounts& c, long long& invoices) {
  const uvp::CsvTable t = uvp::read_csv(path);
  const uvp::index inv_col = t.column_index("InvoiceNo"), date_col = t.column_index("InvoiceDate"),
                   cust_col = t.column_index("CustomerID");
  const auto quantity = t.numeric_column<double>("Quantity");
  const auto price = t.numeric_column<double>("UnitPrice");
  struct Invoice {
    std::string customer;
    uvp::Date day;
    double amount;
  };
  std::vector<Invoice> kept;
  std::unordered_map<std::string, std::size_t> position;
  c.lines = t.rows();
  for (uvp::index r = 0; r < t.rows(); ++r) {
    const std::string_view inv = t.field(r, inv_col);
    if (t.is_missing(r, cust_col) || t.field(r, cust_col).empty()) {
      ++c.no_customer;
      continue;
    }
    if (!inv.empty() && (inv.front() == 'C' || inv.front() == 'c')) {
      ++c.cancellation;
      c.cancelled_amount += quantity[r] * price[r];
      continue;
    }
    if (!(quantity[r] > 0)) {
      ++c.non_positive_quantity;
      continue;
    }
    if (!(price[r] > 0)) {
      ++c.non_positive_price;
      continue;
    }
    ++c.kept;
    uvp::Date day;
    try {
      day = uvp::parse_date(t.field(r, date_col));
    } catch (const uvp::parse_error& e) {
      uvp::detail::raise<uvp::parse_error>(t.location(r, date_col), ": ", e.what());
    }
    const auto [it, inserted] = position.emplace(std::string(inv), kept.size());
    if (inserted) kept.push_back({std::string(t.field(r, cust_col)), day, 0.0});
    kept[it->second].amount += quantity[r] * price[r];
  }
  uvp::TransactionLog log;
  for (auto& i : kept) log.add(std::move(i.customer), i.day, i.amount);
  invoices = static_cast<long long>(kept.size());
  return log;
}

int run(const Args& a) {
  if (a.threads > 0) uvp::set_num_threads(a.threads);
  const std::string P = "retail_";
  const char* p = P.c_str();
  auto t0 = std::chrono::steady_clock::now();
  LineCounts c;
  long long invoices = 0;
  const uvp::TransactionLog log = read_online_retail(a.csv, c, invoices);
  const double t_read = seconds_since(t0);
  std::printf("%sinvoice_lines: %lld\n", p, c.lines);
  std::printf("%slines_without_customer_id: %lld\n", p, c.no_customer);
  std::printf("%slines_cancellation: %lld\n", p, c.cancellation);
  std::printf("%scancelled_amount: %.2f\n", p, c.cancelled_amount);
  std::printf("%slines_non_positive_quantity: %lld\n", p, c.non_positive_quantity);
  std::printf("%slines_non_positive_price: %lld\n", p, c.non_positive_price);
  std::printf("%slines_kept: %lld\n", p, c.kept);
  std::printf("%sinvoices_kept: %lld\n", p, invoices);

  t0 = std::chrono::steady_clock::now();
  const uvp::Date cal_end = uvp::parse_date(a.calibration_end), hold_end = uvp::parse_date(a.holdout_end);
  const auto all = uvp::summary_from_transactions(log, hold_end, a.unit);
  const auto split = uvp::calibration_holdout_split(log, cal_end, hold_end, a.unit);
  const uvp::CustomerSummary& s = split.calibration;
  const double t_summary = seconds_since(t0);
  std::printf("%scustomers_total: %lld\n", p, static_cast<long long>(all.size()));
  std::printf("%scustomers: %lld\n", p, static_cast<long long>(s.size()));
  std::printf("%scustomers_first_purchase_in_holdout: %lld\n", p, static_cast<long long>(all.size() - s.size()));
  std::printf("%scalibration_end: %s\n%sholdout_end: %s\n%stime_unit: %s\n", p, cal_end.to_string().c_str(), p,
              hold_end.to_string().c_str(), p, a.unit == uvp::TimeUnit::week ? "week" : "day");
  std::printf("%scalibration_repeat_purchases: %.0f\n", p, s.frequency.sum());
  std::printf("%scustomers_without_repeat: %lld\n", p, static_cast<long long>((s.frequency.array() == 0).count()));
  std::printf("%sfrequency_max: %.0f\n", p, s.frequency.maxCoeff());
  std::printf("%sT_max: %.4f\n", p, s.T.maxCoeff());

  // The purchase models.
  t0 = std::chrono::steady_clock::now();
  uvp::BgNbd bg;
  const auto fit_bg = bg.fit(s);
  const double t_bg = seconds_since(t0);
  clv_example::print_fit(P, "bgnbd", fit_bg);
  t0 = std::chrono::steady_clock::now();
  uvp::ParetoNbd pnbd;
  if (a.pnbd) clv_example::print_fit(P, "pnbd", pnbd.fit(s));
  const double t_pnbd = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  uvp::MbgNbd mbg;
  if (a.mbgnbd) clv_example::print_fit(P, "mbgnbd", mbg.fit(s));
  const double t_mbg = seconds_since(t0);

  // Spend: Gamma-Gamma on the repeat buyers (all have spend > 0 here: non-positive prices and
  // quantities were dropped above).
  std::vector<double> gf, gm;
  for (uvp::index i = 0; i < s.size(); ++i)
    if (s.frequency[i] > 0) gf.push_back(s.frequency[i]), gm.push_back(s.monetary_value[i]);
  uvp::GammaGamma gg;
  const auto fit_gg = gg.fit(uvp::Span<const double>(gf).as_vector(), uvp::Span<const double>(gm).as_vector());
  std::printf("%sgg_customers: %lld\n", p, static_cast<long long>(fit_gg.customers));
  clv_example::print_fit(P, "gg", fit_gg);
  std::printf("%sgg_frequency_spend_correlation: %.4f\n", p,
              uvp::frequency_monetary_correlation(s.frequency, s.monetary_value));

  // Holdout: purchases per customer, actual vs each model's conditional expectation.
  const uvp::Vector<double>& actual = split.holdout_frequency;
  std::printf("%sholdout_duration: %.4f\n%sholdout_actual_total: %.0f\n", p, split.holdout_duration, p, actual.sum());
  const double h = split.holdout_duration;
  const uvp::Vector<double> pred_bg = bg.conditional_expected_purchases(h, s.frequency, s.recency, s.T);
  clv_example::print_holdout(P, "bgnbd", actual, pred_bg);
  uvp::Vector<double> pred_pnbd = uvp::Vector<double>::Constant(s.size(), std::nan(""));
  uvp::Vector<double> pred_mbg = pred_pnbd;
  if (pnbd.is_fitted()) {
    pred_pnbd = pnbd.conditional_expected_purchases(h, s.frequency, s.recency, s.T);
    clv_example::print_holdout(P, "pnbd", actual, pred_pnbd);
  }
  if (mbg.is_fitted()) {
    pred_mbg = mbg.conditional_expected_purchases(h, s.frequency, s.recency, s.T);
    clv_example::print_holdout(P, "mbgnbd", actual, pred_mbg);
  }

  // Diagnostics.
  t0 = std::chrono::steady_clock::now();
  const auto tracking = uvp::track_repeat_transactions(log, cal_end, hold_end, a.unit);
  clv_example::DiagnosticPlots diagnostics(split, tracking, a.unit == uvp::TimeUnit::week ? "week" : "day");
  diagnostics.add("bgnbd", "BG/NBD", bg);
  if (pnbd.is_fitted()) diagnostics.add("pnbd", "Pareto/NBD", pnbd);
  if (mbg.is_fitted()) diagnostics.add("mbgnbd", "MBG/NBD", mbg);
  diagnostics.print(P);
  const auto by_f = uvp::holdout_by_frequency(bg, s.frequency, s.recency, s.T, actual, h);
  for (std::size_t k = 0; k < by_f.frequency.size(); ++k)
    std::printf("%sholdout_by_frequency_%.0f%s: customers=%.0f actual=%.3f bgnbd=%.3f\n", p, by_f.frequency[k],
                by_f.frequency[k] == 7 ? "+" : "", by_f.customers[k], by_f.actual[k], by_f.expected[k]);
  const double t_diag = seconds_since(t0);

  // Files.
  std::filesystem::create_directories(a.out);
  std::string csv = "customer_id,frequency,recency,T,monetary_value,holdout_actual,bgnbd_holdout,pnbd_holdout,"
                    "mbgnbd_holdout,bgnbd_p_alive\n";
  char line[256];
  for (uvp::index i = 0; i < s.size(); ++i) {
    std::snprintf(line, sizeof line, ",%.0f,%.6g,%.6g,%.6g,%.0f,%.6g,%.6g,%.6g,%.6g\n", s.frequency[i], s.recency[i],
                  s.T[i], s.monetary_value[i], actual[i], pred_bg[i], pred_pnbd[i], pred_mbg[i],
                  bg.probability_alive(s.frequency[i], s.recency[i], s.T[i]));
    csv += s.id[static_cast<std::size_t>(i)];
    csv += line;
  }
  const std::string csv_path = a.out + "/customers.csv";
  uvp::write_file_atomic(csv_path, csv, "clv_online_retail");
  std::printf("%scustomers_csv: %s\n", p, csv_path.c_str());
  for (const auto& [name, path] : diagnostics.save(a.out)) std::printf("%s%s_svg: %s\n", p, name.c_str(), path.c_str());
  std::printf("%sseconds_read: %.4f\n%sseconds_summary: %.4f\n", p, t_read, p, t_summary);
  std::printf("%sseconds_fit_bgnbd: %.4f\n%sseconds_fit_pnbd: %.4f\n%sseconds_fit_mbgnbd: %.4f\n", p, t_bg, p, t_pnbd,
              p, t_mbg);
  std::printf("%sseconds_diagnostics: %.4f\n", p, t_diag);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
