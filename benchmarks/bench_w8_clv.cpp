// SPDX-License-Identifier: Apache-2.0
// W8: BG/NBD + Gamma-Gamma fit and 12-month CLV scoring, on CDNOW (2,357 customers) and on
// 1,000,000 customers simulated from the BG/NBD / Gamma-Gamma processes (the fit must recover them);
// and the whole pipeline at 10,000,000 customers: a simulated transaction log streamed through
// SummaryAccumulator, then fit and score (BG/NBD + Gamma-Gamma, and Pareto/NBD), with the time of each
// step, the peak resident memory and the parameter recovery error.
//
// Arguments of each benchmark: the thread count. Counters: the estimates and, for the synthetic
// data, their relative error against the generating parameters (the run fails if any exceeds 5%).
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized / -Wuninitialized inside Eigen's and xsimd's
// reductions under -march=native (GCC PR 105593, fixed in GCC 13); not about this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/summary_accumulator.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/parallel.hpp"

namespace {

const uvp::BgNbdParams kTruth{0.243, 4.414, 0.793, 2.426};  // FHL 2005's CDNOW estimates
const uvp::GammaGammaParams kSpend{6.25, 3.74, 15.44};      // Fader & Hardie's note 025

// examples/data of this source tree (benchmarks/CMakeLists.txt passes no data path); the
// environment variable UVP_DATA_DIR overrides it.
std::string data_dir() {
  if (const char* env = std::getenv("UVP_DATA_DIR")) return env;
  const std::string here = __FILE__;
  return here.substr(0, here.rfind("/benchmarks/")) + "/examples/data";
}

const uvp::CustomerSummary& cdnow() {
  static const uvp::CustomerSummary s =
      uvp::summary_from_transactions(uvp::read_cdnow_transactions(data_dir() + "/cdnow/CDNOW_sample.txt"),
                                     uvp::Date::from_ymd(1997, 9, 30), uvp::TimeUnit::week);
  return s;
}

const uvp::SimulatedCustomers& synthetic() {
  static const uvp::SimulatedCustomers s = [] {
    const uvp::index n = 1000000;
    uvp::Rng rng(20050401);
    uvp::Vector<double> T(n);
    for (uvp::index i = 0; i < n; ++i) T[i] = rng.uniform(27.0, 39.0);  // CDNOW-like ages (weeks)
    return uvp::simulate_customers(kTruth, T, rng, kSpend);
  }();
  return s;
}

struct Outcome {
  uvp::BgNbdParams bg;
  uvp::GammaGammaParams gg;
  double clv_total = 0;
  int bg_iterations = 0, gg_iterations = 0;
  bool converged = false;
};

Outcome fit_and_score(const uvp::Vector<double>& x, const uvp::Vector<double>& tx, const uvp::Vector<double>& T,
                      const uvp::Vector<double>& m) {
  uvp::BgNbd bg;
  const auto rb = bg.fit(x, tx, T);
  uvp::GammaGamma gg;
  const auto rg = gg.fit(x, m);
  const uvp::CustomerScores scores = uvp::score_customers(bg, gg, x, tx, T, m);  // 12 months, 1%/month
  benchmark::DoNotOptimize(scores.clv.data());
  return {bg.params(), gg.params(), scores.clv.sum(), rb.iterations, rg.iterations, rb.converged && rg.converged};
}

void report(benchmark::State& state, const Outcome& o) {
  state.counters["r"] = o.bg.r;
  state.counters["alpha"] = o.bg.alpha;
  state.counters["a"] = o.bg.a;
  state.counters["b"] = o.bg.b;
  state.counters["p"] = o.gg.p;
  state.counters["q"] = o.gg.q;
  state.counters["gamma"] = o.gg.gamma;
  state.counters["bg_iters"] = o.bg_iterations;
  state.counters["gg_iters"] = o.gg_iterations;
  state.counters["clv_total"] = o.clv_total;
  if (!o.converged) state.SkipWithError("a fit did not converge");
}

// Fit both models and score every customer: the whole W8 pipeline after the summary.
void W8_Cdnow_FitScore(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const auto& s = cdnow();
  Outcome o;
  for (auto _ : state) o = fit_and_score(s.frequency, s.recency, s.T, s.monetary_value);
  report(state, o);
  state.counters["customers"] = static_cast<double>(s.size());
}

void W8_Synthetic1M_FitScore(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const auto& s = synthetic();
  Outcome o;
  for (auto _ : state) o = fit_and_score(s.frequency, s.recency, s.T, s.monetary_value);
  report(state, o);
  state.counters["customers"] = static_cast<double>(s.frequency.size());
  const double errs[] = {o.bg.r / kTruth.r - 1,        o.bg.alpha / kTruth.alpha - 1, o.bg.a / kTruth.a - 1,
                         o.bg.b / kTruth.b - 1,        o.gg.p / kSpend.p - 1,         o.gg.q / kSpend.q - 1,
                         o.gg.gamma / kSpend.gamma - 1};
  double worst = 0;
  for (double e : errs) worst = std::max(worst, std::abs(e));
  state.counters["max_rel_err"] = worst;
  if (worst > 0.05) state.SkipWithError("the fit did not recover the generating parameters within 5%");
}

// The parts of the 1M pipeline on their own.
void W8_Synthetic1M_FitBgNbd(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const auto& s = synthetic();
  for (auto _ : state) {
    uvp::BgNbd bg;
    benchmark::DoNotOptimize(bg.fit(s.frequency, s.recency, s.T).log_likelihood);
  }
}

void W8_Synthetic1M_FitGammaGamma(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const auto& s = synthetic();
  for (auto _ : state) {
    uvp::GammaGamma gg;
    benchmark::DoNotOptimize(gg.fit(s.frequency, s.monetary_value).log_likelihood);
  }
}

void W8_Synthetic1M_Score(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const auto& s = synthetic();
  const uvp::BgNbd bg(kTruth);
  const uvp::GammaGamma gg(kSpend);
  for (auto _ : state) {
    const auto scores = uvp::score_customers(bg, gg, s.frequency, s.recency, s.T, s.monetary_value);
    benchmark::DoNotOptimize(scores.clv.data());
  }
}

// ---- 10,000,000 customers, from a transaction log to scores ----------------------------------

constexpr uvp::index k10M = 10000000;
constexpr std::uint64_t kSeed = 20050401;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Peak resident memory of this process (VmHWM), in MiB; reset_peak_rss() restarts it from the
// current resident size (Linux's clear_refs "5"), so each 10M benchmark reports its own peak.
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      in >> kib;
      return kib / 1024;
    }
    in.ignore(1 << 12, '\n');
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);  // not Linux: the peak of the whole process
  return static_cast<double>(u.ru_maxrss) / 1024;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// CPU time of the whole process (all threads): on a shared machine, wall time minus this is waiting.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// CDNOW-like ages: first purchases spread over 12 weeks, 27 to 39 weeks before the end, in whole days.
uvp::Vector<double> ages_in_weeks(uvp::index n) {
  uvp::Vector<double> T(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (uvp::index i = 0; i < n; ++i)
    T[i] = static_cast<double>(189 + uvp::detail::customer_rng(kSeed + 1, i).uniform_int(85)) / 7;
  return T;
}

double max_rel_err(std::initializer_list<std::pair<double, double>> fitted_truth) {
  double worst = 0;
  for (const auto& [f, t] : fitted_truth) worst = std::max(worst, std::abs(f / t - 1));
  return worst;
}

// Simulate the log of 10M customers in chunks of 2^20 customers (uvp::simulate_transactions,
// parallel), streaming each chunk into a SummaryAccumulator by customer number; the log is never
// whole in memory. Then fit BG/NBD and Gamma-Gamma on the summary and score every customer.
void W8_Synthetic10M_BgNbdGG(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  const uvp::Date end = uvp::Date::from_ymd(1997, 9, 30);
  double t_sim = 0, t_sum = 0, t_fit = 0, t_score = 0, rss = 0, transactions = 0, repeat_days = 0, clv = 0, cpu = 0;
  Outcome o;
  for (auto _ : state) {
    reset_peak_rss();
    t_sim = t_sum = 0;
    double t0 = wall_seconds();
    const uvp::Vector<double> T = ages_in_weeks(k10M);
    t_sim += wall_seconds() - t0;
    uvp::CustomerSummary s;
    {
      uvp::SummaryAccumulator acc(end, uvp::TimeUnit::week, uvp::TransactionOrder::per_customer_ascending);
      acc.reserve(k10M);
      std::vector<uvp::SimulatedTransaction> chunk;
      for (uvp::index b = 0; b < k10M; b += uvp::index(1) << 20) {
        chunk.clear();
        t0 = wall_seconds();
        uvp::simulate_transactions(kTruth, kSpend, T, end, uvp::TimeUnit::week, kSeed, b,
                                   std::min(k10M, b + (uvp::index(1) << 20)), chunk);
        const double t1 = wall_seconds();
        for (const auto& tr : chunk) acc.add(tr.customer, tr.date, tr.amount);
        t_sim += t1 - t0;
        t_sum += wall_seconds() - t1;
      }
      t0 = wall_seconds();
      s = acc.summary();
      t_sum += wall_seconds() - t0;
      transactions = static_cast<double>(acc.transactions());
    }
    t0 = wall_seconds();
    const double c0 = cpu_seconds();
    uvp::BgNbd bg;
    const auto rb = bg.fit(s.frequency, s.recency, s.T);
    uvp::GammaGamma gg;
    const auto rg = gg.fit(s.frequency, s.monetary_value);
    const double t1 = wall_seconds();
    const uvp::CustomerScores scores = uvp::score_customers(bg, gg, s);
    t_fit = t1 - t0;
    t_score = wall_seconds() - t1;
    cpu = cpu_seconds() - c0;
    clv = scores.clv.sum();
    repeat_days = s.frequency.sum();
    o = {bg.params(), gg.params(), clv, rb.iterations, rg.iterations, rb.converged && rg.converged};
    rss = peak_rss_mib();
  }
  report(state, o);
  state.counters["customers"] = static_cast<double>(k10M);
  state.counters["transactions"] = transactions;
  state.counters["repeat_days"] = repeat_days;
  state.counters["simulate_s"] = t_sim;
  state.counters["summarise_s"] = t_sum;
  state.counters["fit_s"] = t_fit;
  state.counters["score_s"] = t_score;
  state.counters["peak_rss_mib"] = rss;
  state.counters["fit_score_cpu_s"] = cpu;
  const double err = max_rel_err({{o.bg.r, kTruth.r},
                                  {o.bg.alpha, kTruth.alpha},
                                  {o.bg.a, kTruth.a},
                                  {o.bg.b, kTruth.b},
                                  {o.gg.p, kSpend.p},
                                  {o.gg.q, kSpend.q},
                                  {o.gg.gamma, kSpend.gamma}});
  state.counters["max_rel_err"] = err;
  // Looser than the 1M benchmark's 5%: a summary in whole days merges same-day purchases (about
  // 1.6% of the repeat transactions here, all from the heaviest buyers), which the continuous-time
  // model does not know about; see docs/performance.md (W8).
  if (err > 0.10) state.SkipWithError("the fit did not recover the generating parameters within 10%");
}

// Fader & Hardie's Pareto/NBD estimates for CDNOW (weeks; "A Note on Deriving the Pareto/NBD Model").
const uvp::ParetoNbdParams kPnbd{0.553, 10.578, 0.606, 11.669};

// Pareto/NBD summaries drawn customer by customer (each from its own stream, in parallel):
// lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), a lifetime tau ~ Exp(mu), purchases at
// rate lambda over (0, min(tau, T)]; t_x rounded to whole days, as in a summary of a log in days.
void simulate_pnbd(const uvp::Vector<double>& T, uvp::Vector<double>& x, uvp::Vector<double>& tx) {
  const uvp::index n = T.size();
  x.resize(n);
  tx.resize(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4096)
#endif
  for (uvp::index i = 0; i < n; ++i) {
    uvp::Rng rng = uvp::detail::customer_rng(kSeed + 2, i);
    const double lambda = uvp::detail::draw_gamma(rng, kPnbd.r) / kPnbd.alpha;
    const double mu = uvp::detail::draw_gamma(rng, kPnbd.s) / kPnbd.beta;
    const double end = std::min(T[i], -std::log1p(-rng.uniform()) / mu);
    double t = 0, count = 0, last = 0;
    for (;;) {
      t += -std::log1p(-rng.uniform()) / lambda;
      if (!(t <= end)) break;
      count += 1;
      last = t;
    }
    x[i] = count;
    tx[i] = std::min(T[i], std::round(last * 7) / 7);
  }
}

// Pareto/NBD at 10M customers: simulate the summaries, fit, and score P(alive) and the expected
// purchases of the next 52 weeks for every customer.
void W8_Synthetic10M_ParetoNbd(benchmark::State& state) {
  uvp::ThreadCountGuard threads(static_cast<int>(state.range(0)));
  double t_sim = 0, t_fit = 0, t_score = 0, rss = 0, expected = 0, cpu = 0;
  uvp::ParetoNbdParams fitted{};
  bool converged = false;
  int iterations = 0;
  for (auto _ : state) {
    reset_peak_rss();
    double t0 = wall_seconds();
    const uvp::Vector<double> T = ages_in_weeks(k10M);
    uvp::Vector<double> x, tx;
    simulate_pnbd(T, x, tx);
    const double t1 = wall_seconds(), c1 = cpu_seconds();
    uvp::ParetoNbd model;
    const auto res = model.fit(x, tx, T);
    const double t2 = wall_seconds();
    const uvp::Vector<double> alive = model.probability_alive(x, tx, T);
    const uvp::Vector<double> next_year = model.conditional_expected_purchases(52.0, x, tx, T);
    t_sim = t1 - t0;
    t_fit = t2 - t1;
    t_score = wall_seconds() - t2;
    cpu = cpu_seconds() - c1;
    benchmark::DoNotOptimize(alive.data());
    expected = next_year.sum();
    fitted = model.params();
    converged = res.converged;
    iterations = res.iterations;
    rss = peak_rss_mib();
  }
  state.counters["r"] = fitted.r;
  state.counters["alpha"] = fitted.alpha;
  state.counters["s"] = fitted.s;
  state.counters["beta"] = fitted.beta;
  state.counters["iters"] = iterations;
  state.counters["expected_52w_total"] = expected;
  state.counters["customers"] = static_cast<double>(k10M);
  state.counters["simulate_s"] = t_sim;
  state.counters["fit_s"] = t_fit;
  state.counters["score_s"] = t_score;
  state.counters["peak_rss_mib"] = rss;
  state.counters["fit_score_cpu_s"] = cpu;
  const double err = max_rel_err(
      {{fitted.r, kPnbd.r}, {fitted.alpha, kPnbd.alpha}, {fitted.s, kPnbd.s}, {fitted.beta, kPnbd.beta}});
  state.counters["max_rel_err"] = err;
  if (!converged) state.SkipWithError("the Pareto/NBD fit did not converge");
  if (err > 0.10) state.SkipWithError("the Pareto/NBD fit did not recover the generating parameters within 10%");
}

void thread_args(benchmark::internal::Benchmark* b) {
  b->Arg(1);
  if (uvp::has_openmp) b->Arg(2);
  b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(W8_Cdnow_FitScore)->Apply(thread_args);
BENCHMARK(W8_Synthetic1M_FitScore)->Apply(thread_args)->Iterations(3);
BENCHMARK(W8_Synthetic1M_FitBgNbd)->Apply(thread_args)->Iterations(3);
BENCHMARK(W8_Synthetic1M_FitGammaGamma)->Apply(thread_args)->Iterations(3);
BENCHMARK(W8_Synthetic1M_Score)->Apply(thread_args)->Iterations(3);
BENCHMARK(W8_Synthetic10M_BgNbdGG)->Apply(thread_args)->Iterations(1);
BENCHMARK(W8_Synthetic10M_ParetoNbd)->Apply(thread_args)->Iterations(1);

BENCHMARK_MAIN();
