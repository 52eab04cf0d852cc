// SPDX-License-Identifier: Apache-2.0
// The machine's two limits, measured once per benchmarks/compare run: the denominators of every workload's limit_frac=.
//
//   bench_limits --benchmark_filter=limit_ --benchmark_format=json
// Names (each /threads:1 and /threads:2):
//   limit_fma_peak  single-precision FMA peak (benchmarks/support/fma_peak.hpp, best of 5 runs of
//                   about 0.1 s, all threads at once); counter GFLOPS
//   limit_triad     STREAM triad bandwidth (benchmarks/support/triad.hpp, best of 5 runs over
//                   3 x 128 MiB); counter GBs
// A workload's limit_frac = (its flops / GFLOPS or its bytes / GBs) / its measured time: the
// fraction of the machine's limit it reaches. The models (which flops, which bytes) are in
// docs/performance.md ("Limits") and next to each workload in benchmarks/workloads/.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized inside xsimd (GCC PR 105593, fixed in
// GCC 13); the warning is about _mm512_undefined_ps, not about this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include "support/fma_peak.hpp"
#include "support/triad.hpp"
#include "uvp/core/parallel.hpp"

namespace {

bool set_threads(benchmark::State& state) {
  if (state.range(0) > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return false;
  }
  return true;
}

void limit_fma_peak(benchmark::State& state) {
  if (!set_threads(state)) return;
  double g = 0;
  for (auto _ : state) g = uvp_bench::fma_peak_gflops(int(state.range(0)), 0.1, 5);
  state.counters["GFLOPS"] = g;
}

void limit_triad(benchmark::State& state) {
  if (!set_threads(state)) return;
  double g = 0;
  for (auto _ : state) g = uvp_bench::triad_gbytes_per_s(int(state.range(0)));
  state.counters["GBs"] = g;
}

BENCHMARK(limit_fma_peak)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(limit_triad)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
