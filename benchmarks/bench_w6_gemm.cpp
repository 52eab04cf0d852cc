// SPDX-License-Identifier: Apache-2.0
// W6: 1024 x 1024 x 1024 float GEMM (uvp::gemm and Eigen's own product) against the FMA peak measured in the same run.
//
//   bench_w6_gemm --benchmark_filter=W6                 (console)
//   bench_w6_gemm --benchmark_filter=W6 --benchmark_format=json
// Names: W6_fma_peak, W6_gemm_uvp, W6_gemm_eigen, each /threads:1 and /threads:2
// (uvp::ThreadCountGuard, which Eigen's and OpenMP-OpenBLAS's threading follow). Each runs 5
// repetitions; compare the *_median rows of the GFLOPS counter: frac = W6_gemm_uvp / W6_fma_peak
// at the same thread count. They run in the order peak, uvp, Eigen for 1 thread, then for 2;
// on a shared machine add --benchmark_enable_random_interleaving=true (benchmarks/compare does)
// so that the repetitions of all of them are spread over the same stretch of time. The label
// names uvp::gemm's backend: uvp's own kernel for the -march=native target ("uvp-avx512",
// "uvp-avx2", ...), "eigen" where there is none, or "blas:<library>:<OpenBLAS core>" in a
// -DUVP_USE_BLAS=ON build, where Eigen's product is handed to the same BLAS). W6_gemm_eigen is
// Eigen's own product of the same matrices, the reference uvp's kernel has to beat.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized inside Eigen's GEMM (GCC PR 105593,
// fixed in GCC 13); the warning is about _mm512_undefined_ps, not about this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "support/fma_peak.hpp"
#include "support/loaded_blas.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"

namespace {

constexpr uvp::index w6_n = 1024;
constexpr double w6_flops = 2.0 * double(w6_n) * double(w6_n) * double(w6_n);

struct W6Data {
  uvp::Matrix<float> A, B;
  W6Data() : A(w6_n, w6_n), B(w6_n, w6_n) {
    uvp::Rng rng(6);
    for (uvp::index i = 0; i < A.size(); ++i) A.data()[i] = float(rng.uniform(-1, 1));
    for (uvp::index i = 0; i < B.size(); ++i) B.data()[i] = float(rng.uniform(-1, 1));
  }
};

const W6Data& w6_data() {
  static const W6Data data;
  return data;
}

bool set_threads(benchmark::State& state) {
  if (state.range(0) > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return false;
  }
  return true;
}

std::string backend_label() {
  std::string label = uvp::gemm_backend_name();
#if defined(UVP_USE_BLAS)
  label += ":" + uvp_bench::loaded_blas();
  const std::string core = uvp_bench::openblas_core();
  if (!core.empty()) label += ":" + core;
#endif
  return label;
}

// Times the product in the benchmark loop; the counter GFLOPS is its rate.
template <class Product>
void time_product(benchmark::State& state, Product&& product) {
  for (auto _ : state) {
    product();
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(double(state.iterations()) * w6_flops * 1e-9, benchmark::Counter::kIsRate);
}

void W6_fma_peak(benchmark::State& state) {
  if (!set_threads(state)) return;
  const int threads = int(state.range(0));
  constexpr std::int64_t rounds = std::int64_t(1) << 20;
  float sink = 0;
  for (auto _ : state) {
#if defined(_OPENMP)
    float part[64] = {};
#pragma omp parallel num_threads(threads)
    part[omp_get_thread_num() % 64] = uvp_bench::detail::fma_chain_loop(rounds, 1.0f + float(omp_get_thread_num()));
    for (float p : part) sink += p;
#else
    sink += uvp_bench::detail::fma_chain_loop(rounds, 1.0f);
#endif
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GFLOPS"] = benchmark::Counter(
      double(state.iterations()) * threads * double(rounds) * uvp_bench::fma_flops_per_round() * 1e-9,
      benchmark::Counter::kIsRate);
  state.SetLabel(std::string("chains=") + std::to_string(uvp_bench::detail::fma_chains) +
                 " arch=" + xsimd::default_arch::name());
}

void W6_gemm_uvp(benchmark::State& state) {
  if (!set_threads(state)) return;
  uvp::ThreadCountGuard guard(int(state.range(0)));
  const W6Data& d = w6_data();
  uvp::Matrix<float> C(w6_n, w6_n);
  uvp::gemm<float>(d.A, d.B, C);  // warm-up: page-in, packing buffers
  time_product(state, [&] { uvp::gemm<float>(d.A, d.B, C); });
  benchmark::DoNotOptimize(C.data());
  state.SetLabel(backend_label());
}

void W6_gemm_eigen(benchmark::State& state) {
  if (!set_threads(state)) return;
  uvp::ThreadCountGuard guard(int(state.range(0)));
  const W6Data& d = w6_data();
  uvp::Matrix<float> C(w6_n, w6_n);
  C.noalias() = d.A * d.B;
  time_product(state, [&] { C.noalias() = d.A * d.B; });
  benchmark::DoNotOptimize(C.data());
#if defined(EIGEN_USE_BLAS)
  state.SetLabel("eigen->blas");
#else
  state.SetLabel("eigen");
#endif
}

// The products of the neural blocks (an LSTM step: a batch of M rows, K = 64 or 32 inputs, 4 x 64
// gates) on 1 thread, uvp::gemm against Eigen's product: gemm_small_uvp/M/K/N/trans_b and
// gemm_small_eigen/M/K/N/trans_b; trans_b = 1 multiplies by Wᵀ for W stored (N, K) as a PyTorch
// weight. Not part of W6 (compare runs only W6_*):
//   bench_w6_gemm --benchmark_filter=gemm_small
struct SmallData {
  uvp::Matrix<float> A, B, W, C;
  SmallData(uvp::index m, uvp::index k, uvp::index n) : A(m, k), B(k, n), W(n, k), C(m, n) {
    uvp::Rng rng(7);
    for (uvp::index i = 0; i < A.size(); ++i) A.data()[i] = float(rng.uniform(-1, 1));
    for (uvp::index i = 0; i < B.size(); ++i) B.data()[i] = float(rng.uniform(-1, 1));
    W = B.transpose();
  }
};

template <bool Uvp>
void gemm_small(benchmark::State& state) {
  uvp::ThreadCountGuard guard(1);
  SmallData d(state.range(0), state.range(1), state.range(2));
  const bool trans_b = state.range(3) != 0;
  auto product = [&] {
    if constexpr (Uvp) {
      if (trans_b)
        uvp::gemm<float>(uvp::Trans::none, uvp::Trans::transpose, d.A, d.W, d.C);
      else
        uvp::gemm<float>(d.A, d.B, d.C);
    } else {
      if (trans_b)
        d.C.noalias() = d.A * d.W.transpose();
      else
        d.C.noalias() = d.A * d.B;
    }
  };
  product();
  for (auto _ : state) {
    product();
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(d.C.data());
  state.counters["GFLOPS"] = benchmark::Counter(
      double(state.iterations()) * 2.0 * double(d.A.rows()) * double(d.A.cols()) * double(d.B.cols()) * 1e-9,
      benchmark::Counter::kIsRate);
  state.SetLabel(Uvp ? backend_label() : std::string("eigen"));
}

void small_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "trans_b"});
  for (int t : {0, 1})
    for (const auto& s : {std::array<int, 3>{1, 64, 256}, {64, 64, 256}, {64, 32, 256}, {1024, 64, 256},
                          {3200, 32, 256}})
      b->Args({s[0], s[1], s[2], t});
}

BENCHMARK_TEMPLATE(gemm_small, true)->Apply(small_shapes)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK_TEMPLATE(gemm_small, false)->Apply(small_shapes)->Repetitions(3)->ReportAggregatesOnly(true);

#define UVP_W6_BENCH(fn, threads)     \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(threads)                  \
      ->Unit(benchmark::kMillisecond) \
      ->UseRealTime()                 \
      ->MinTime(0.3)                  \
      ->Repetitions(5)                \
      ->ReportAggregatesOnly(true)

UVP_W6_BENCH(W6_fma_peak, 1);
UVP_W6_BENCH(W6_gemm_uvp, 1);
UVP_W6_BENCH(W6_gemm_eigen, 1);
UVP_W6_BENCH(W6_fma_peak, 2);
UVP_W6_BENCH(W6_gemm_uvp, 2);
UVP_W6_BENCH(W6_gemm_eigen, 2);

}  // namespace

BENCHMARK_MAIN();
