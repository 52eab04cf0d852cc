// SPDX-License-Identifier: Apache-2.0
// W7 peer: LibTorch embedding gather + sparse gradient (1,000,000 x 64 float table, uvp's 100,000 Zipf ids).
//
//   w7_embedding_torch [--threads N] [--reps R]
// Times, per step, what uvp's W7_embedding_uvp times: the gradient reset (weight.grad = None,
// torch's zero_grad(set_to_none=True)), out = torch::embedding(weight, ids, padding_idx = -1,
// scale_grad_by_freq = false, sparse = true) and out.backward(d_out), with the ids and d_out of
// benchmarks/support/w7_data.hpp. LibTorch's sparse backward only wraps ids and d_out as an
// uncoalesced COO gradient (duplicates are summed later, by the optimizer's coalesce()); the same
// step followed by weight.grad().coalesce() is timed as well, as the work that matches uvp's
// backward (one summed row per distinct id). Each repetition runs steps for at least 0.3 s and
// takes the mean; the figures are medians over the repetitions. GB/s = w7_bytes / time (the byte
// count both sides use). Prints one line per repetition, then
//   torch=<version> torch_threads=N ids_hash=H distinct_rows=D peer_ms=<x> peer_gbs=<x>
//   peer_cpu_ms=<x> peer_coalesced_ms=<x> peer_coalesced_gbs=<x> peer_coalesced_cpu_ms=<x>
// (*_cpu_ms: process CPU time per step, all threads)
// (the last line is what benchmarks/compare reads).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "../../support/w7_data.hpp"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU time of the whole process (all threads), in seconds.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Timing {
  double ms, cpu_ms;
};

// Mean wall and process CPU milliseconds per call of step() over at least min_seconds.
template <class Step>
Timing time_ms(Step&& step, double min_seconds = 0.3) {
  step();  // warm-up
  std::int64_t calls = 0;
  const double c0 = process_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    step();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < min_seconds);
  return {1e3 * elapsed / double(calls), 1e3 * (process_cpu_seconds() - c0) / double(calls)};
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps R]\n", argv[0]);
      return 2;
    }
  }
  threads = std::max(threads, 1);
  reps = std::max(reps, 1);
  torch::set_num_threads(threads);

  std::vector<std::int64_t> ids = uvp_bench::w7_ids();
  std::vector<float> g = uvp_bench::w7_d_out();
  const auto ids_t = torch::from_blob(ids.data(), {uvp_bench::w7_lookups}, torch::kLong);
  const auto d_out = torch::from_blob(g.data(), {uvp_bench::w7_lookups, uvp_bench::w7_dim}, torch::kFloat);
  auto weight = torch::randn({uvp_bench::w7_rows, uvp_bench::w7_dim}, torch::kFloat).requires_grad_(true);

  auto step = [&] {
    weight.mutable_grad().reset();
    const auto out = torch::embedding(weight, ids_t, -1, false, true);
    out.backward(d_out);
  };
  std::int64_t distinct = 0;
  auto step_coalesced = [&] {
    step();
    distinct = weight.grad().coalesce()._nnz();
  };

  std::vector<double> ms, cpu_ms, ms_coalesced, cpu_ms_coalesced;
  for (int r = 0; r < reps; ++r) {
    const Timing t = time_ms(step), tc = time_ms(step_coalesced);
    ms.push_back(t.ms);
    cpu_ms.push_back(t.cpu_ms);
    ms_coalesced.push_back(tc.ms);
    cpu_ms_coalesced.push_back(tc.cpu_ms);
    std::printf("rep %d: %.3f ms (cpu %.3f ms), with coalesce %.3f ms (cpu %.3f ms)\n", r, t.ms, t.cpu_ms, tc.ms,
                tc.cpu_ms);
    std::fflush(stdout);
  }
  const double m = median(ms), mc = median(ms_coalesced);
  std::printf("torch=%s torch_threads=%d ids_hash=%u distinct_rows=%lld peer_ms=%.4f peer_gbs=%.4f "
              "peer_cpu_ms=%.4f peer_coalesced_ms=%.4f peer_coalesced_gbs=%.4f peer_coalesced_cpu_ms=%.4f\n",
              TORCH_VERSION, torch::get_num_threads(), uvp_bench::w7_hash(ids), static_cast<long long>(distinct), m,
              uvp_bench::w7_bytes / (m * 1e-3) * 1e-9, median(cpu_ms), mc, uvp_bench::w7_bytes / (mc * 1e-3) * 1e-9,
              median(cpu_ms_coalesced));
  return 0;
}
