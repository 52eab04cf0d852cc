// SPDX-License-Identifier: Apache-2.0
// W4a / W4b: inference with the W2 model (Embedding(10000, 32) -> Lstm(32, 64) -> last hidden
// state -> Dense(64, 1)) on a const model: the latency of one sequence and the throughput of
// batches of 1,024 (seq_len 50). The model is the nn::Chain W2 trains (Embedding -> Lstm ->
// GlobalLastPool1d -> Dense) in eval mode, run by its const forward(TokenBatch, ctx): the Lstm
// before the last-step pooling takes its inference path (forward_last, no history kept).
//
//   bench_w4_lstm_inference --benchmark_filter=W4
// W4a_lstm_uvp/threads:{1,2}: one iteration is one forward of one sequence (the next of 256
//   pre-drawn ones), timed alone; counters p50_us, p99_us (over the 20,000 timed calls, after
//   1,000 warm-up calls) and allocs_per_call (heap allocations inside the timed calls, counted by
//   the global operator new this program replaces; 0 is the requirement).
// W4b_lstm_uvp/threads:{1,2}: one iteration scores one batch of 1,024 sequences (the next of 4);
//   5 repetitions of 10 batches; counters seq_per_s and cpu_ms (process CPU time per batch, all
//   threads: on a shared machine the wall time also counts other programs); compare the *_median
//   rows.
// W4a_lstm_uvp_blocks, W4b_lstm_uvp_blocks: the same, timed the same way, with the blocks wired
//   by hand (their low-level forms into caller-owned buffers): what the composed model costs.
// The sequences come from support/lstm_data.hpp, as in the LibTorch peer w4_lstm_inference_torch.
//
//   bench_w4_lstm_inference --w4_export=DIR
// writes the composed model's weights and its logits for the W4a and W4b sequences into DIR and
// exits: what the ONNX Runtime peer (peers/onnxruntime) is exported from and checked against.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC PR 105593: false -W(maybe-)uninitialized inside the AVX-512 intrinsics Eigen and xsimd use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // free() pairs with the malloc() below
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <ctime>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "support/lstm_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/safetensors_model.hpp"

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

constexpr uvp::index S = uvp_bench::lstm_seq_len, E = uvp_bench::lstm_embed, H = uvp_bench::lstm_hidden;

using W4Net = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Lstm<float>, uvp::nn::GlobalLastPool1d<float>,
                             uvp::nn::Dense<float>>;

/// The composed model in eval mode, immutable once built; each caller brings its own context.
/// The blocks are drawn one after the other from one Rng, as the hand-wired model draws them.
const W4Net& net() {
  static const W4Net n = [] {
    uvp::Rng rng{2};
    uvp::nn::Embedding<float> emb(uvp_bench::lstm_vocab, E, rng);
    uvp::nn::Lstm<float> lstm(E, H, rng);
    uvp::nn::Dense<float> head(H, 1, rng);
    W4Net m(std::move(emb), std::move(lstm), uvp::nn::GlobalLastPool1d<float>(), std::move(head));
    m.set_names({"embedding", "lstm", "pool", "head"});  // the tensor names --w4_export writes
    m.eval();
    return m;
  }();
  return n;
}

/// Logits (batch x 1, owned by ctx) of `batch` sequences of ids: the composed const forward.
uvp::ConstMatrixView<float> score(const W4Net& m, const std::int64_t* ids, uvp::index batch, W4Net::Context& ctx) {
  return m.forward(uvp::nn::TokenBatch(uvp::Span<const uvp::index>(ids, batch * S), batch, S), ctx);
}

/// The hand-wired model: immutable once built; each caller brings its own workspace.
struct W4Blocks {
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb{uvp_bench::lstm_vocab, E, rng};
  uvp::nn::Lstm<float> lstm{E, H, rng};
  uvp::nn::Dense<float> head{H, 1, rng};
};

/// Per-caller buffers of the hand-wired model for batches of up to `batch` sequences.
struct W4Workspace {
  explicit W4Workspace(uvp::index batch) : X(batch * S, E), h(batch, H), z(batch, 1) {}
  uvp::nn::LstmContext<float> ctx;
  uvp::Matrix<float> X, h, z;
};

/// Logits of `batch` sequences of ids into ws.z: the blocks' low-level const forward path.
uvp::ConstMatrixView<float> score(const W4Blocks& m, const std::int64_t* ids, uvp::index batch, W4Workspace& ws) {
  auto X = ws.X.topRows(batch * S);
  auto h = ws.h.topRows(batch);
  m.emb.forward(uvp::Span<const uvp::index>(ids, batch * S), X);
  m.lstm.forward_last(X, batch, S, {}, h, ws.ctx);
  m.head.forward(h, ws.z.topRows(batch));
  return {ws.z.data(), batch, 1};
}

const W4Blocks& blocks_model() {
  static const W4Blocks m;
  return m;
}

// What each form's callers hold: the model and a per-caller context for batches up to `batch`.
struct Composed {
  const W4Net& m = net();
  W4Net::Context ctx;
  explicit Composed(uvp::index) {}
  uvp::ConstMatrixView<float> operator()(const std::int64_t* ids, uvp::index batch) { return score(m, ids, batch, ctx); }
};
struct HandWired {
  const W4Blocks& m = blocks_model();
  W4Workspace ws;
  explicit HandWired(uvp::index batch) : ws(batch) {}
  uvp::ConstMatrixView<float> operator()(const std::int64_t* ids, uvp::index batch) { return score(m, ids, batch, ws); }
};

// CPU time of the whole process (all threads), in seconds.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double percentile(std::vector<double>& v, double p) {
  const std::size_t k = std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

template <class Form>
void run_w4a(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  static const uvp_bench::LstmData data = uvp_bench::make_lstm_data(1, 256, 4004);
  uvp::ThreadCountGuard guard(threads);
  Form f(1);
  std::int64_t k = 0;
  for (; k < 1000; ++k) f(data.batch_ids(k), 1);
  std::vector<double> us;
  us.reserve(std::size_t(state.max_iterations));
  long allocs = 0;
  float sink = 0;
  for (auto _ : state) {
    const long a0 = g_allocations.load(std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    const uvp::ConstMatrixView<float> z = f(data.batch_ids(k), 1);
    const auto t1 = std::chrono::steady_clock::now();
    allocs += g_allocations.load(std::memory_order_relaxed) - a0;
    sink += z(0, 0);
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

void W4a_lstm_uvp(benchmark::State& state) { run_w4a<Composed>(state); }
void W4a_lstm_uvp_blocks(benchmark::State& state) { run_w4a<HandWired>(state); }

#define UVP_W4A_BENCH(fn)             \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(1)                        \
      ->Arg(2)                        \
      ->Unit(benchmark::kMicrosecond) \
      ->UseManualTime()               \
      ->Iterations(20000)

UVP_W4A_BENCH(W4a_lstm_uvp);
UVP_W4A_BENCH(W4a_lstm_uvp_blocks);

template <class Form>
void run_w4b(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  constexpr uvp::index batch = 1024;
  static const uvp_bench::LstmData data = uvp_bench::make_lstm_data(batch, 4, 4005);
  uvp::ThreadCountGuard guard(threads);
  Form f(batch);
  std::int64_t k = 0;
  for (; k < 2; ++k) f(data.batch_ids(k), batch);
  float sink = 0;
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const uvp::ConstMatrixView<float> z = f(data.batch_ids(k), batch);
    const auto t1 = std::chrono::steady_clock::now();
    sink += z(0, 0);
    ++k;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  benchmark::DoNotOptimize(sink);
  state.counters["cpu_ms"] = 1e3 * (process_cpu_seconds() - c0) / double(state.iterations());
  state.counters["seq_per_s"] =
      benchmark::Counter(double(batch) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void W4b_lstm_uvp(benchmark::State& state) { run_w4b<Composed>(state); }
void W4b_lstm_uvp_blocks(benchmark::State& state) { run_w4b<HandWired>(state); }

#define UVP_W4B_BENCH(fn)             \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(1)                        \
      ->Arg(2)                        \
      ->Unit(benchmark::kMillisecond) \
      ->UseManualTime()               \
      ->Iterations(10)                \
      ->Repetitions(5)                \
      ->ReportAggregatesOnly(true)

UVP_W4B_BENCH(W4b_lstm_uvp);
UVP_W4B_BENCH(W4b_lstm_uvp_blocks);

// --w4_export: the files the ONNX Runtime peer reads (peers/onnxruntime/export_w4.py, w4_ort.mjs).
//   w4_weights.safetensors  every tensor of net() under its PyTorch state_dict name, F32
//                           (nn::save_safetensors; "embedding.weight", "lstm.weight_ih_l0", ...)
// and little-endian raw arrays:
//   w4a_ids.i64, w4a_uvp.f32  W4a's 256 sequences (256 x 50 int64) and uvp's logits for them
//   w4b_ids.i64, w4b_uvp.f32  W4b's 4 batches (4096 x 50 int64) and uvp's logits for them
std::string bytes_of(const void* p, std::size_t n) { return std::string(static_cast<const char*>(p), n); }

void export_w4(const std::string& dir) {
  const W4Net& m = net();
  uvp::nn::save_safetensors(dir + "/w4_weights.safetensors", m, {{"source", "bench_w4_lstm_inference"}});
  uvp::ThreadCountGuard guard(1);
  Composed f(1);
  const auto save = [&](const char* name, const uvp_bench::LstmData& d) {
    std::vector<float> z;
    for (std::int64_t k = 0; k < d.batches; ++k) {
      const uvp::ConstMatrixView<float> out = f(d.batch_ids(k), d.batch);
      for (uvp::index b = 0; b < d.batch; ++b) z.push_back(out(b, 0));
    }
    const std::string stem = dir + "/" + name;
    uvp::write_file_atomic(stem + "_ids.i64", bytes_of(d.ids.data(), d.ids.size() * sizeof(std::int64_t)),
                           "bench_w4_lstm_inference --w4_export");
    uvp::write_file_atomic(stem + "_uvp.f32", bytes_of(z.data(), z.size() * sizeof(float)),
                           "bench_w4_lstm_inference --w4_export");
  };
  save("w4a", uvp_bench::make_lstm_data(1, 256, 4004));
  save("w4b", uvp_bench::make_lstm_data(1024, 4, 4005));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--w4_export=", 12) != 0) continue;
    try {
      export_w4(argv[i] + 12);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    std::printf("wrote the W4 model and logits to %s\n", argv[i] + 12);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
