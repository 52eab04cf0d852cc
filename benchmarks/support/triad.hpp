// SPDX-License-Identifier: Apache-2.0
// STREAM-style triad bandwidth (GB/s) measured in the running process: W7's denominator.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "uvp/core/config.hpp"

namespace uvp_bench {

/// Best of `trials` runs of a[i] = b[i] + s c[i] over arrays of `n` doubles each (default 3 x
/// 16 M doubles = 384 MiB, far beyond any cache), on `threads` OpenMP threads (1 without
/// OpenMP). Counts 3 x 8 bytes per element as STREAM does (the write-allocate read of `a` is not
/// counted), in GB/s (1e9 bytes per second). The arrays are first touched by the threads that
/// later use them, so pages land on the right NUMA node.
inline double triad_gbytes_per_s(int threads, uvp::index n = uvp::index(16) << 20, int trials = 5) {
  threads = std::max(threads, 1);
#if !defined(_OPENMP)
  threads = 1;
#endif
  const auto len = static_cast<std::size_t>(n);
  std::vector<double> a(len), b(len), c(len);
  double* pa = a.data();
  double* pb = b.data();
  double* pc = c.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
  for (uvp::index i = 0; i < n; ++i) {
    pa[i] = 0.0;
    pb[i] = 1.0;
    pc[i] = 2.0;
  }
  const double s = 3.0;
  double best = 0;
  for (int t = 0; t < trials; ++t) {
    const auto t0 = std::chrono::steady_clock::now();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (uvp::index i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 3.0 * 8.0 * double(n) / dt * 1e-9);
  }
  volatile double sink = pa[len / 2];
  (void)sink;
  return best;
}

}  // namespace uvp_bench
