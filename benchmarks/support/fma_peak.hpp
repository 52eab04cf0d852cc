// SPDX-License-Identifier: Apache-2.0
// Measures the machine's single-precision FMA peak (GFLOP/s) in the running process: W6's denominator.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/detail/simd_compat.hpp"

namespace uvp_bench {

namespace detail {

/// Independent accumulator chains per thread. A core with 2 FMA ports of latency 4 needs 8 chains
/// in flight to saturate them; 12 leaves headroom (Zen 3, Golden Cove) and still fits in 16 ymm /
/// 32 zmm registers together with the two operands.
inline constexpr int fma_chains = 12;

/// `rounds` rounds of `fma_chains` independent FMAs on full-width batches; returns a value that
/// depends on every chain so that the compiler keeps all of them.
inline float fma_chain_loop(std::int64_t rounds, float seed) noexcept {
  using batch = uvp::detail::simd::batch<float>;
  // a < 1 and small b keep every chain bounded and far from subnormals: x -> a x + b -> b / (1 - a).
  const batch a(0.999999f - 1e-9f * seed);
  const batch b(1e-6f);
  batch acc[fma_chains];
  for (int i = 0; i < fma_chains; ++i) acc[i] = batch(seed + float(i));
  for (std::int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < fma_chains; ++i) acc[i] = xsimd::fma(acc[i], a, b);
  }
  batch s = acc[0];
  for (int i = 1; i < fma_chains; ++i) s += acc[i];
  return uvp::detail::simd::reduce_add(s);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace detail

/// Floating-point operations of one FMA round across all chains (an FMA counts 2 flops).
inline double fma_flops_per_round() noexcept {
  return 2.0 * detail::fma_chains * double(uvp::detail::simd::width<float>);
}

/// One timed run of `rounds` FMA rounds on each of `threads` threads at once, in GFLOP/s (no
/// calibration, no warm-up: for short measurements interleaved with other work).
inline double fma_gflops_once(int threads, std::int64_t rounds) {
  threads = std::max(threads, 1);
  std::vector<float> out(std::size_t(threads), 0.0f);
  const auto t0 = std::chrono::steady_clock::now();
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  out[std::size_t(omp_get_thread_num())] =
      detail::fma_chain_loop(rounds, 1.0f + float(omp_get_thread_num()));
#else
  threads = 1;
  out[0] = detail::fma_chain_loop(rounds, 1.0f);
#endif
  const double dt = detail::seconds_since(t0);
  volatile float sink = 0;
  for (float v : out) sink = sink + v;
  return double(threads) * double(rounds) * fma_flops_per_round() / dt * 1e-9;
}

/// Single-precision FMA peak of `threads` threads running at once, in GFLOP/s: the best of
/// `trials` timed runs of about `seconds` each (the first run also warms the clock up).
/// Uses the widest SIMD architecture the translation unit is compiled for (-march=native).
/// Without OpenMP only threads == 1 is measured.
inline double fma_peak_gflops(int threads, double seconds = 0.2, int trials = 5) {
  threads = std::max(threads, 1);
  // Calibrate the rounds so that one run lasts about `seconds` on one thread.
  std::int64_t rounds = 1 << 16;
  volatile float sink = 0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + detail::fma_chain_loop(rounds, 1.0f);
    const double dt = detail::seconds_since(t0);
    if (dt > seconds / 4 || rounds > (std::int64_t(1) << 40)) {
      rounds = std::max<std::int64_t>(rounds, std::int64_t(double(rounds) * seconds / std::max(dt, 1e-9)));
      break;
    }
    rounds *= 4;
  }
  double best = 0;
  for (int t = 0; t < trials; ++t) best = std::max(best, fma_gflops_once(threads, rounds));
  return best;
}

}  // namespace uvp_bench
