// SPDX-License-Identifier: Apache-2.0
// W1: one epoch of minibatch logistic regression (1,000,000 x 32, batch 256, Adam lr 1e-3) and its held-out log loss.
//
//   bench_w1_logreg --benchmark_filter=W1                 (console)
//   bench_w1_logreg --benchmark_filter=W1 --benchmark_format=json
// Name: W1_logreg_uvp/threads:1 and /threads:2 (uvp::ThreadCountGuard). Each repetition trains
// a fresh uvp::LogisticRegression<float> (zero weights) for one epoch over the rows in order
// (no shuffle: the LibTorch peer, benchmarks/peers/libtorch, takes the same minibatches in the
// same order) and times fit() alone; 5 repetitions, the *_median row is the figure to compare.
// Counters: logloss (held-out, 100,000 rows, uvp::log_loss), us_per_step, cpu_ms (process CPU
// time of fit(), all threads), data_hash (the same FNV-1a hash the peer prints). The data come from benchmarks/support/w1_data.hpp: read
// from $UVP_W1_DATA when that file exists, drawn (and written there) otherwise.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized inside Eigen (GCC PR 105593, fixed in
// GCC 13); the warning is about _mm512_undefined_ps, not about this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>

#include "support/w1_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/metrics/classification.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/optim/adam.hpp"

namespace {

// CPU time of the whole process (all threads), in seconds: on a shared machine the wall time
// also counts the time other programs held the cores.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

const uvp_bench::W1Data& w1_data() {
  static const uvp_bench::W1Data data = uvp_bench::load_or_make_w1_data();
  return data;
}

void W1_logreg_uvp(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  const uvp_bench::W1Data& d = w1_data();
  uvp::ThreadCountGuard guard(threads);
  const uvp::ConstMatrixView<float> X(d.X_train.data(), d.n_train, d.d);
  const uvp::ConstVectorView<float> y(d.y_train.data(), d.n_train);
  const uvp::ConstMatrixView<float> X_test(d.X_test.data(), d.n_test, d.d);

  uvp::FitOptions fit;
  fit.epochs = 1;
  fit.batch_size = 256;
  fit.shuffle = false;
  uvp::AdamOptions adam;
  adam.lr = 1e-3;

  double logloss = 0, train_loss = 0, cpu_seconds = 0;
  for (auto _ : state) {
    uvp::LogisticRegression<float> model(d.d);
    uvp::Adam<float> opt(adam);
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const uvp::FitResult r = model.fit(X, y, opt, fit);
    const auto t1 = std::chrono::steady_clock::now();
    cpu_seconds += process_cpu_seconds() - c0;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    train_loss = r.final_train_loss;
    const uvp::Vector<float> p = model.predict_proba(X_test);
    logloss = uvp::log_loss(uvp::as_span(d.y_test), uvp::as_span(p));
  }
  const double steps = double((d.n_train + fit.batch_size - 1) / fit.batch_size);
  state.counters["logloss"] = logloss;
  state.counters["train_loss"] = train_loss;
  state.counters["data_hash"] = double(d.hash());
  state.counters["cpu_ms"] = 1e3 * cpu_seconds / double(state.iterations());
  state.counters["us_per_step"] =
      benchmark::Counter(steps * 1e-6 * double(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(W1_logreg_uvp)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(1)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
