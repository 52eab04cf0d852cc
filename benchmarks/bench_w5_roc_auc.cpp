// SPDX-License-Identifier: Apache-2.0
// W5: ROC AUC of 10,000,000 float scores rounded to 1e-4 (heavy ties), ~3% positives.
//
// Data (same distribution as benchmarks/peers/w5_sklearn.py, which times sklearn's
// roc_auc_score): label ~ Bernoulli(0.03); score = sigmoid(z) rounded to 1e-4 with
// z ~ Normal(-3 + 1.5 * label, 1), drawn by uvp::Rng(2024).
//
//   bench_w5_roc_auc --benchmark_filter=W5            (console)
//   bench_w5_roc_auc --benchmark_filter=W5 --benchmark_format=json
// Names: W5_roc_auc_uvp/threads:1 and /threads:2 (uvp::ThreadCountGuard); each runs 5
// repetitions and reports mean/median/stddev/cv in ms of wall time: compare the row
// W5_roc_auc_uvp/threads:N/repeats:5/real_time_median with the peer's peer_ms.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/metrics/ranking.hpp"

namespace {

constexpr uvp::index w5_n = 10'000'000;

struct W5Data {
  std::vector<float> y_true, y_score;
  explicit W5Data(bool rounded) : y_true(std::size_t(w5_n)), y_score(std::size_t(w5_n)) {
    uvp::Rng rng(2024);
    for (std::size_t i = 0; i < y_true.size(); ++i) {
      const bool pos = rng.uniform() < 0.03;
      const double z = rng.normal(pos ? -1.5 : -3.0, 1.0);
      const double p = 1.0 / (1.0 + std::exp(-z));
      y_true[i] = pos ? 1.0f : 0.0f;
      y_score[i] = rounded ? float(std::round(p * 1e4) / 1e4) : float(p);
    }
  }
};

void run_roc_auc(benchmark::State& state, const W5Data& d) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  uvp::ThreadCountGuard guard(threads);
  double auc = 0;
  for (auto _ : state) {
    auc = uvp::roc_auc(uvp::as_span(d.y_true), uvp::as_span(d.y_score));
    benchmark::DoNotOptimize(auc);
  }
  state.counters["auc"] = auc;
  state.SetItemsProcessed(state.iterations() * w5_n);
}

/// W5 proper: scores rounded to 1e-4 (~8,000 distinct values), the distinct-score counting path.
void W5_roc_auc_uvp(benchmark::State& state) {
  static const W5Data data(true);
  run_roc_auc(state, data);
}

/// The same scores unrounded (millions of distinct values): the radix-sort path. Not part of W5
/// (its name does not start with W5); the peer's --untied flag times sklearn on such data.
void roc_auc_untied_uvp(benchmark::State& state) {
  static const W5Data data(false);
  run_roc_auc(state, data);
}

BENCHMARK(W5_roc_auc_uvp)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

BENCHMARK(roc_auc_untied_uvp)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
