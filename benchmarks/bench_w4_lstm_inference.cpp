// SPDX-License-Identifier: Apache-2.0
// W4a / W4b: inference with the W2 model (Embedding(10000, 32) -> Lstm(32, 64) -> last hidden
// state -> Dense(64, 1)) on a const model: the latency of one sequence and the throughput of
// batches of 1,024 (seq_len 50).
//
//   bench_w4_lstm_inference --benchmark_filter=W4
// W4a_lstm_uvp/threads:{1,2}: one iteration is one forward of one sequence (the next of 256
//   pre-drawn ones), timed alone; counters p50_us, p99_us (over the 20,000 timed calls, after
//   1,000 warm-up calls) and allocs_per_call (heap allocations inside the timed calls, counted by
//   the global operator new this program replaces; 0 is the requirement).
// W4b_lstm_uvp/threads:{1,2}: one iteration scores one batch of 1,024 sequences (the next of 4);
//   5 repetitions of 10 batches; counter seq_per_s; compare the *_median rows.
// The sequences come from support/lstm_data.hpp, as in the LibTorch peer w4_lstm_inference_torch.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC PR 105593 inside Eigen's AVX-512 code
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // free() pairs with the malloc() below
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <vector>

#include "support/lstm_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

// Every heap allocation of the process goes through here (and is counted).
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al + (n == 0 ? al : 0))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

/// The trained-model side of W2: immutable once built; each caller brings its own workspace.
struct W4Model {
  static constexpr uvp::index S = uvp_bench::lstm_seq_len, E = uvp_bench::lstm_embed, H = uvp_bench::lstm_hidden;
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb{uvp_bench::lstm_vocab, E, rng};
  uvp::nn::Lstm<float> lstm{E, H, rng};
  uvp::nn::Dense<float> head{H, 1, rng};
};

/// Per-caller buffers for batches of up to `batch` sequences.
struct W4Workspace {
  explicit W4Workspace(uvp::index batch) : X(batch * W4Model::S, W4Model::E), h(batch, W4Model::H), z(batch, 1) {}
  uvp::nn::LstmContext<float> ctx;
  uvp::Matrix<float> X, h, z;
};

/// Logits of `batch` sequences of ids into ws.z: the const forward path.
void score(const W4Model& m, const std::int64_t* ids, uvp::index batch, W4Workspace& ws) {
  const uvp::index S = W4Model::S;
  auto X = ws.X.topRows(batch * S);
  auto h = ws.h.topRows(batch);
  m.emb.forward(uvp::Span<const uvp::index>(ids, batch * S), X);
  m.lstm.forward_last(X, batch, S, {}, h, ws.ctx);
  m.head.forward(h, ws.z.topRows(batch));
}

double percentile(std::vector<double>& v, double p) {
  const std::size_t k = std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

const W4Model& model() {
  static const W4Model m;
  return m;
}

void W4a_lstm_uvp(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  static const uvp_bench::LstmData data = uvp_bench::make_lstm_data(1, 256, 4004);
  uvp::ThreadCountGuard guard(threads);
  const W4Model& m = model();
  W4Workspace ws(1);
  std::int64_t k = 0;
  for (; k < 1000; ++k) score(m, data.batch_ids(k), 1, ws);
  std::vector<double> us;
  us.reserve(std::size_t(state.max_iterations));
  long allocs = 0;
  float sink = 0;
  for (auto _ : state) {
    const long a0 = g_allocations.load(std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    score(m, data.batch_ids(k), 1, ws);
    const auto t1 = std::chrono::steady_clock::now();
    allocs += g_allocations.load(std::memory_order_relaxed) - a0;
    sink += ws.z(0, 0);
    ++k;
    const double s = std::chrono::duration<double>(t1 - t0).count();
    us.push_back(1e6 * s);
    state.SetIterationTime(s);
  }
  benchmark::DoNotOptimize(sink);
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
  state.counters["allocs_per_call"] = double(allocs) / double(state.iterations());
}

BENCHMARK(W4a_lstm_uvp)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime()
    ->Iterations(20000);

void W4b_lstm_uvp(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  constexpr uvp::index batch = 1024;
  static const uvp_bench::LstmData data = uvp_bench::make_lstm_data(batch, 4, 4005);
  uvp::ThreadCountGuard guard(threads);
  const W4Model& m = model();
  W4Workspace ws(batch);
  std::int64_t k = 0;
  for (; k < 2; ++k) score(m, data.batch_ids(k), batch, ws);
  float sink = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    score(m, data.batch_ids(k), batch, ws);
    const auto t1 = std::chrono::steady_clock::now();
    sink += ws.z(0, 0);
    ++k;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  benchmark::DoNotOptimize(sink);
  state.counters["seq_per_s"] =
      benchmark::Counter(double(batch) * double(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(W4b_lstm_uvp)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(10)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
