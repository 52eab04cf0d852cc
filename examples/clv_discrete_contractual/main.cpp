// SPDX-License-Identifier: Apache-2.0
// The two BTYD settings besides continuous-time purchasing, on their published data:
// - discrete opportunities (BG/BB, Fader, Hardie & Shang 2010): the 11,104 donors of the bundled
//   donations data, who could give once a year for six years;
// - contracts (shifted-beta-geometric, Fader & Hardie 2007): the "regular" and "high end" cohorts of
//   their Table 1, fitted on years 0-7 and projected to year 12 against what happened.
// Prints `name: value` lines (parameters, standard errors, log-likelihoods, predictions).
//
// Usage: clv_discrete_contractual [--donations PATH] [--discount-rate D] [--out DIR]
// --out DIR also writes DIR/sbg_projections.csv (both cohorts, years 0..12, actual vs model).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "uvp/clv/bg_bb.hpp"
#include "uvp/clv/shifted_beta_geometric.hpp"
#include "uvp/io/file.hpp"

namespace {

struct Args {
  std::string donations = UVP_EXAMPLE_DATA_DIR "/donations/donations.csv";
  double discount_rate = 0.10;  // per period (year), as Fader, Hardie & Shang's DERT example
  std::string out;              // empty: no files
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(message ? stderr : stdout,
               "%s%susage: clv_discrete_contractual [--donations PATH] [--discount-rate D] [--out DIR]\n"
               "BG/BB on the donations data (frequency,recency,periods,weights per row) and the\n"
               "shifted-beta-geometric model on Fader & Hardie's (2007) two cohorts; --out DIR also\n"
               "writes DIR/sbg_projections.csv.\n",
               message ? "clv_discrete_contractual: " : "", message ? (std::string(message) + "\n").c_str() : "");
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
    if (k == "--donations") {
      a.donations = value();
    } else if (k == "--discount-rate") {
      std::istringstream in(value());
      if (!(in >> a.discount_rate) || !in.eof() || !(a.discount_rate > 0) || !std::isfinite(a.discount_rate))
        usage("--discount-rate must be a finite number > 0");
    } else if (k == "--out") {
      a.out = value();
    } else if (k == "--help" || k == "-h") {
      usage(nullptr);
    } else {
      usage(("unknown option " + k).c_str());
    }
  }
  return a;
}

void print_fit(const char* prefix, const uvp::ClvFitResult& fit) {
  for (std::size_t i = 0; i < fit.parameter_names.size(); ++i)
    std::printf("%s_%s: %.6f\n", prefix, fit.parameter_names[i].c_str(), fit.parameters[i]);
  std::printf("%s_loglik: %.4f\n%s_converged: %s\n", prefix, fit.log_likelihood, prefix,
              fit.converged ? "true" : "false");
  for (std::size_t i = 0; i < fit.standard_errors.size(); ++i)
    std::printf("%s_%s_se: %.6f\n", prefix, fit.parameter_names[i].c_str(), fit.standard_errors[i]);
  for (const auto& w : fit.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

// donations.csv: frequency,recency,periods,weights; one row per distinct history.
void run_bgbb(const Args& a) {
  std::ifstream in(a.donations);
  if (!in) throw uvp::io_error("cannot open '" + a.donations + "'");
  std::string line;
  std::getline(in, line);
  std::vector<double> x, tx, n, w;
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    double v[4];
    char comma;
    if (!(ls >> v[0] >> comma >> v[1] >> comma >> v[2] >> comma >> v[3]))
      throw uvp::parse_error(a.donations + ":" + std::to_string(row) + ": expected 4 numbers");
    x.push_back(v[0]), tx.push_back(v[1]), n.push_back(v[2]), w.push_back(v[3]);
  }
  using Map = Eigen::Map<const uvp::Vector<double>>;
  const auto rows = static_cast<Eigen::Index>(x.size());
  const Map X(x.data(), rows), TX(tx.data(), rows), N(n.data(), rows), W(w.data(), rows);
  double donors = 0;
  for (double v : w) donors += v;
  std::printf("bgbb_patterns: %ld\nbgbb_donors: %.0f\n", long(rows), donors);
  uvp::BgBb model;
  print_fit("bgbb", model.fit(X, TX, N, W));
  // Two donors at the end of year 6: one who gave every year, one who gave only in year 1.
  std::printf("bgbb_p_alive_6_6_6: %.4f\nbgbb_p_alive_1_1_6: %.4f\n", model.probability_alive(6, 6, 6),
              model.probability_alive(1, 1, 6));
  std::printf("bgbb_expected_next_5_6_6_6: %.4f\nbgbb_expected_next_5_1_1_6: %.4f\n",
              model.conditional_expected_transactions(5, 6, 6, 6), model.conditional_expected_transactions(5, 1, 1, 6));
  std::printf("bgbb_dert_6_6_6: %.4f\n", model.discounted_expected_residual_transactions(a.discount_rate, 6, 6, 6));
  // The whole group over the next 5 years, and a new donor's first 6 years.
  const uvp::Vector<double> next = model.conditional_expected_transactions(5, X, TX, N);
  std::printf("bgbb_expected_next_5_all_donors: %.1f\nbgbb_expected_transactions_new_donor_6: %.4f\n",
              next.dot(W), model.expected_transactions(6));
}

// Fader & Hardie (2007), Table 1: customers still active at the start of years 0..12 of two
// cohorts of 1,000; the paper fits years 0..7 and projects the rest.
void run_sbg(const Args& a, const char* name, const std::vector<double>& survivors, std::string& csv) {
  const std::string prefix = std::string("sbg_") + name;
  const uvp::Vector<double> fit_on = Eigen::Map<const uvp::Vector<double>>(survivors.data(), 8);
  uvp::ShiftedBetaGeometric model;
  print_fit(prefix.c_str(), model.fit(fit_on));
  double worst = 0;
  for (int t = 8; t <= 12; ++t) {
    const double projected = survivors[0] * model.survival(t);
    const double error = projected / survivors[std::size_t(t)] - 1;
    worst = std::max(worst, std::abs(error));
    std::printf("%s_year_%d: actual=%.0f projected=%.1f error=%+.1f%%\n", prefix.c_str(), t, survivors[std::size_t(t)],
                projected, 100 * error);
  }
  for (int t = 0; t <= 12; ++t)
    csv += std::string(name) + "," + std::to_string(t) + "," + std::to_string(survivors[std::size_t(t)]) + "," +
           std::to_string(survivors[0] * model.survival(t)) + "," + (t <= 7 ? "fit" : "projected") + "\n";
  std::printf("%s_max_abs_projection_error_pct: %.2f\n", prefix.c_str(), 100 * worst);
  // (The undiscounted expected lifetime is infinite when gamma <= 1, as for both cohorts.)
  std::printf("%s_retention_year_12: %.4f\n%s_discounted_expected_lifetime: %.4f\n%s_derl_new_customer: %.4f\n",
              prefix.c_str(), model.retention_rate(12), prefix.c_str(), model.discounted_expected_lifetime(a.discount_rate),
              prefix.c_str(), model.discounted_expected_residual_lifetime(a.discount_rate, 0));
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  try {
    std::printf("discount_rate: %.4f\n", a.discount_rate);
    run_bgbb(a);
    std::string csv = "cohort,year,actual,model,period\n";
    run_sbg(a, "regular", {1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173}, csv);
    run_sbg(a, "high_end", {1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394}, csv);
    if (!a.out.empty()) {
      std::filesystem::create_directories(a.out);
      uvp::write_file_atomic(a.out + "/sbg_projections.csv", csv);
      std::printf("sbg_projections_csv: %s/sbg_projections.csv\n", a.out.c_str());
    }
  } catch (const uvp::error& e) {
    std::fprintf(stderr, "clv_discrete_contractual: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // e.g. --out naming a path that cannot be a directory
    std::fprintf(stderr, "clv_discrete_contractual: %s\n", e.what());
    return 1;
  }
  return 0;
}
