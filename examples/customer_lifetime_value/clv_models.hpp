// SPDX-License-Identifier: Apache-2.0
// Shared by the CLV examples (customer_lifetime_value, clv_online_retail): the `name: value`
// lines of a fit (parameters, standard errors, log-likelihood), the holdout comparison of the
// purchase models, and the diagnostic plots (uvp/clv/diagnostics.hpp) written as SVG.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/clv/diagnostics.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/svg.hpp"

namespace clv_example {

/// `<prefix><key>_<name>: value` for every fitted parameter, then `..._<name>_se:` for each (nan
/// when the observed information gave none: a `<key>_warning:` line then says why), the
/// log-likelihood and convergence, and the fit's warnings.
inline void print_fit(const std::string& prefix, const char* key, const uvp::ClvFitResult& fit,
                      bool print_parameters = true) {
  const char* p = prefix.c_str();
  // Six decimals, or six significant digits for what would print as 0.000000 (a boundary estimate).
  auto num = [](double v) {
    char b[48];
    std::snprintf(b, sizeof b, std::abs(v) >= 1e-3 || v == 0 || !std::isfinite(v) ? "%.6f" : "%.6g", v);
    return std::string(b);
  };
  if (print_parameters) {
    for (std::size_t k = 0; k < fit.parameter_names.size(); ++k)
      std::printf("%s%s_%s: %s\n", p, key, fit.parameter_names[k].c_str(), num(fit.parameters[k]).c_str());
    std::printf("%s%s_loglik: %.4f\n", p, key, fit.log_likelihood);
    std::printf("%s%s_converged: %s\n", p, key, fit.converged ? "true" : "false");
  }
  for (std::size_t k = 0; k < fit.parameter_names.size(); ++k)
    std::printf("%s%s_%s_se: %s\n", p, key, fit.parameter_names[k].c_str(),
                num(k < fit.standard_errors.size() ? fit.standard_errors[k] : std::nan("")).c_str());
  if (print_parameters)
    for (const auto& w : fit.warnings) std::printf("%s%s_warning: %s\n", p, key, w.c_str());
}

/// Per-customer holdout comparison of one purchase model: predicted total, MAE and RMSE.
inline void print_holdout(const std::string& prefix, const char* key, const uvp::Vector<double>& actual,
                          const uvp::Vector<double>& predicted) {
  const uvp::Vector<double> e = predicted - actual;
  std::printf("%s%s_holdout_predicted_total: %.2f\n", prefix.c_str(), key, predicted.sum());
  std::printf("%s%s_holdout_mae: %.4f\n", prefix.c_str(), key, e.cwiseAbs().mean());
  std::printf("%s%s_holdout_rmse: %.4f\n", prefix.c_str(), key, std::sqrt(e.squaredNorm() / double(e.size())));
}

template <class M, class = void>
struct has_count_pmf : std::false_type {};
template <class M>
struct has_count_pmf<M, std::void_t<decltype(uvp::purchase_count_probability(std::declval<const M&>(), 1.0, 0))>>
    : std::true_type {};

/// Collects the diagnostics of several fitted purchase models on one calibration / holdout split
/// and writes them as SVG files (each atomically) into `out`:
///   holdout_purchases.svg          mean holdout purchases by calibration frequency, actual and models
///   period_transactions.svg        customers with 0..7+ repeat purchases in calibration, actual and models
///   tracking_cumulative.svg        cumulative repeat purchases of the cohort by week, actual and models
///   tracking_incremental.svg       the same per week (a last, partial week left out)
///   <key>_expected_matrix.svg      E[purchases in the next time unit] over frequency x recency
///   <key>_p_alive_matrix.svg       P(alive) over frequency x recency
class DiagnosticPlots {
 public:
  DiagnosticPlots(const uvp::CalibrationHoldout& split, const uvp::RepeatTransactionTracking& tracking,
                  std::string unit_name)
      : split_(split), tracking_(tracking), unit_(std::move(unit_name)) {
    const auto& s = split.calibration;
    // Matrices up to the 99th percentile of the frequency (at least 10), for the oldest customer.
    std::vector<double> f(s.frequency.data(), s.frequency.data() + s.size());
    std::sort(f.begin(), f.end());
    max_frequency_ = std::max(10, static_cast<int>(f[static_cast<std::size_t>(0.99 * double(f.size() - 1))]));
    max_T_ = s.T.maxCoeff();
  }

  /// Adds a fitted model (key: file and line prefix, label: legend).
  template <class Model>
  void add(const std::string& key, const std::string& label, const Model& model) {
    const auto& s = split_.calibration;
    Entry e;
    e.key = key;
    e.label = label;
    e.by_frequency = uvp::holdout_by_frequency(model, s.frequency, s.recency, s.T, split_.holdout_frequency,
                                               split_.holdout_duration);
    if constexpr (has_count_pmf<Model>::value) {
      e.period = uvp::period_transactions(model, s.frequency, s.recency, s.T);
      e.has_period = true;
    }
    e.expected_matrix = uvp::expected_purchases_matrix(model, 1.0, max_T_, max_frequency_, 41);
    e.alive_matrix = uvp::probability_alive_matrix(model, max_T_, max_frequency_, 41);
    e.tracking = uvp::expected_tracking(model, tracking_);
    entries_.push_back(std::move(e));
  }

  /// Prints the plots' numbers as `name: value` lines (with `prefix`).
  void print(const std::string& prefix) const {
    const char* p = prefix.c_str();
    const auto& t = tracking_;
    std::printf("%stracking_start: %s\n%stracking_periods: %zu\n", p, t.start.to_string().c_str(), p,
                t.period_end.size());
    std::printf("%stracking_actual_cumulative_end: %.0f\n", p, t.actual_cumulative.back());
    for (const Entry& e : entries_)
      std::printf("%s%s_tracking_expected_cumulative_end: %.2f\n", p, e.key.c_str(), e.tracking.cumulative.back());
    if (!entries_.empty() && entries_.front().has_period) {
      const auto& first = entries_.front().period;
      for (std::size_t x = 0; x < first.frequency.size(); ++x) {
        std::printf("%speriod_transactions_%zu%s: actual=%.0f", p, x, x + 1 == first.frequency.size() ? "+" : "",
                    first.actual[x]);
        for (const Entry& e : entries_)
          if (e.has_period) std::printf(" %s=%.1f", e.key.c_str(), e.period.expected[x]);
        std::printf("\n");
      }
    }
  }

  /// Writes the SVG files into `dir`; returns (name, path) of each.
  std::vector<std::pair<std::string, std::string>> save(const std::string& dir) const {
    std::vector<std::pair<std::string, std::string>> files;
    using Span = uvp::Span<const double>;
    // Holdout purchases by calibration frequency.
    if (!entries_.empty()) {
      const auto& b0 = entries_.front().by_frequency;
      uvp::SvgPlot plot("Holdout purchases by calibration frequency", "purchases in the calibration period (7 = 7+)",
                        "mean purchases in the holdout period");
      plot.add_line(Span(b0.frequency), Span(b0.actual), "actual");
      for (const Entry& e : entries_)
        plot.add_line(Span(e.by_frequency.frequency), Span(e.by_frequency.expected), e.label + " expected");
      files.emplace_back("holdout_purchases", dir + "/holdout_purchases.svg");
      plot.save(files.back().second);
    }
    // Period transactions.
    bool any_period = false;
    for (const Entry& e : entries_) any_period = any_period || e.has_period;
    if (any_period) {
      uvp::SvgPlot plot("Repeat purchases in the calibration period", "repeat purchases (7 = 7+)", "customers");
      plot.x_range(-1, 8);
      bool actual_added = false;
      double top = 0;
      for (const Entry& e : entries_) {
        if (!e.has_period) continue;
        if (!actual_added) plot.add_bars(Span(e.period.frequency), Span(e.period.actual), "actual"), actual_added = true;
        plot.add_bars(Span(e.period.frequency), Span(e.period.expected), e.label);
        top = std::max({top, *std::max_element(e.period.actual.begin(), e.period.actual.end()),
                        *std::max_element(e.period.expected.begin(), e.period.expected.end())});
      }
      plot.y_range(0, legend_headroom(top));
      files.emplace_back("period_transactions", dir + "/period_transactions.svg");
      plot.save(files.back().second);
    }
    // Tracking, cumulative and per period, with the calibration end marked.
    const auto& t = tracking_;
    for (int cumulative = 1; cumulative >= 0; --cumulative) {
      const std::string what = cumulative ? "cumulative" : "incremental";
      uvp::SvgPlot plot(cumulative ? "Cumulative repeat purchases of the calibration customers"
                                   : "Repeat purchases per " + unit_ + " of the calibration customers",
                        unit_ + "s since the cohort's first purchase",
                        cumulative ? "repeat purchases (cumulative)" : "repeat purchases per " + unit_);
      // The per-period plot leaves out a last period shorter than one unit (it would show as a drop).
      std::size_t n = t.period_end.size();
      const double last = t.period_end[n - 1] - (n > 1 ? t.period_end[n - 2] : 0.0);
      if (!cumulative && n > 1 && last < 1 - 1e-9) --n;
      const auto& actual = cumulative ? t.actual_cumulative : t.actual_incremental;
      double top = *std::max_element(actual.begin(), actual.begin() + long(n));
      plot.add_line(Span(t.period_end.data(), uvp::index(n)), Span(actual.data(), uvp::index(n)), "actual");
      for (const Entry& e : entries_) {
        const auto& m = cumulative ? e.tracking.cumulative : e.tracking.incremental;
        top = std::max(top, *std::max_element(m.begin(), m.begin() + long(n)));
        plot.add_line(Span(t.period_end.data(), uvp::index(n)), Span(m.data(), uvp::index(n)), e.label);
      }
      const std::vector<double> mx{t.calibration_end, t.calibration_end}, my{0.0, top};
      plot.add_line(Span(mx), Span(my), "end of calibration");
      plot.y_range(0, legend_headroom(top));
      files.emplace_back("tracking_" + what, dir + "/tracking_" + what + ".svg");
      plot.save(files.back().second);
    }
    // Frequency x recency matrices.
    for (const Entry& e : entries_) {
      const auto& m = e.expected_matrix;
      uvp::SvgHeatmap ex(e.label + ": expected purchases in the next " + unit_ + " (T = " + fmt(m.T) + ")",
                         "recency (" + unit_ + "s)", "frequency (repeat purchases)");
      ex.values(Span(m.recency), Span(m.frequency), m.values);
      files.emplace_back(e.key + "_expected_matrix", dir + "/" + e.key + "_expected_matrix.svg");
      ex.save(files.back().second);
      const auto& a = e.alive_matrix;
      uvp::SvgHeatmap al(e.label + ": P(alive) (T = " + fmt(a.T) + ")", "recency (" + unit_ + "s)",
                         "frequency (repeat purchases)");
      al.values(Span(a.recency), Span(a.frequency), a.values);
      files.emplace_back(e.key + "_p_alive_matrix", dir + "/" + e.key + "_p_alive_matrix.svg");
      al.save(files.back().second);
    }
    return files;
  }

 private:
  struct Entry {
    std::string key, label;
    uvp::HoldoutByFrequency by_frequency;
    uvp::PeriodTransactions period;
    bool has_period = false;
    uvp::FrequencyRecencyMatrix expected_matrix, alive_matrix;
    uvp::TrackingExpectation tracking;
  };
  // The top of a y axis from 0 that leaves the upper third free for the legend (top left).
  static double legend_headroom(double top) {
    if (!(top > 0)) return 1.0;
    const double step = uvp::detail::nice_step(1.5 * top, 5);
    return std::ceil(1.5 * top / step) * step;  // on a tick
  }
  static std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
  }

  const uvp::CalibrationHoldout& split_;
  const uvp::RepeatTransactionTracking& tracking_;
  std::string unit_;
  int max_frequency_ = 10;
  double max_T_ = 1;
  std::vector<Entry> entries_;
};

}  // namespace clv_example
