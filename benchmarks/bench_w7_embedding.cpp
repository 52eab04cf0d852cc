// SPDX-License-Identifier: Apache-2.0
// W7: embedding gather + gradient scatter (1,000,000 x 64 float table, 100,000 Zipf ids) in GB/s, against the triad bandwidth measured in the same run.
//
//   bench_w7_embedding --benchmark_filter=W7                 (console)
//   bench_w7_embedding --benchmark_filter=W7 --benchmark_format=json
// Names (each /threads:1 and /threads:2, uvp::ThreadCountGuard):
//   W7_triad          STREAM-style triad (benchmarks/support/triad.hpp); counter GBs
//   W7_embedding_uvp  the table as a model (an nn::Chain of one Embedding, its one parameter
//                     buffer): zero_grad + forward(TokenBatch, ctx) (gather into the context's
//                     100,000 x 64 rows) + backward(ctx, d_out) (sparse row gradient); counter
//                     GBs = w7_bytes / time (benchmarks/support/w7_data.hpp defines the bytes, the
//                     same for the LibTorch peer), cpu_ms (process CPU time per step, all
//                     threads), distinct_rows, ids_hash
//   W7_embedding_uvp_blocks  the same with the Embedding's low-level forms (forward(ids, out)
//                     into a caller's matrix, backward(ids, d_out)): what the contract costs
// 5 repetitions each; compare the *_median rows: frac = W7_embedding_uvp GBs / W7_triad GBs at
// the same thread count. benchmarks/compare runs them with random interleaving.
// Also, on 1 thread, the lazy optimizer step that follows (not part of W7's figure), to show
// what uvp::nn::step's one opt.update call per touched row costs:
//   W7_step_{sgd,adam}_rows     nn::step over the backward's distinct rows (scattered in the table)
//   W7_step_{sgd,adam}_packed   nn::step over as many rows, but rows 0 .. k-1 (contiguous)
//   W7_step_{sgd,adam}_flat     one opt.update over the same k x 64 contiguous values
// counter ns_per_row. packed - flat is the per-call overhead; rows - packed the cost of locality.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized inside Eigen (GCC PR 105593, fixed in
// GCC 13); the warning is about _mm512_undefined_ps, not about this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include <cstdint>
#include <ctime>
#include <vector>

#include "support/triad.hpp"
#include "support/w7_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"

namespace {

using Table = uvp::nn::Embedding<float>;

// CPU time of the whole process (all threads), in seconds: on a shared machine the wall time
// also counts the time other programs held the cores.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct W7Data {
  std::vector<uvp::index> ids;
  uvp::Matrix<float> d_out;
  std::uint32_t hash;
  std::int64_t distinct;
  W7Data() : d_out(uvp_bench::w7_lookups, uvp_bench::w7_dim) {
    const std::vector<std::int64_t> raw = uvp_bench::w7_ids();
    ids.assign(raw.begin(), raw.end());
    hash = uvp_bench::w7_hash(raw);
    distinct = uvp_bench::w7_distinct(raw);
    const std::vector<float> g = uvp_bench::w7_d_out();
    std::copy(g.begin(), g.end(), d_out.data());
  }
};

const W7Data& w7_data() {
  static const W7Data data;
  return data;
}

Table& w7_table() {
  static uvp::Rng rng(70);
  static Table table(uvp_bench::w7_rows, uvp_bench::w7_dim, rng);
  return table;
}

using TableModel = uvp::nn::Chain<Table>;

// The same table (same seed) as a one-block model. Its own copy: the step benchmarks below use
// w7_table()'s gradient.
TableModel& w7_model() {
  static TableModel model = [] {
    uvp::Rng rng(70);
    return TableModel(Table(uvp_bench::w7_rows, uvp_bench::w7_dim, rng));
  }();
  return model;
}

bool set_threads(benchmark::State& state) {
  if (state.range(0) > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return false;
  }
  return true;
}

void W7_triad(benchmark::State& state) {
  if (!set_threads(state)) return;
  double gbs = 0;
  for (auto _ : state) gbs = uvp_bench::triad_gbytes_per_s(int(state.range(0)));
  state.counters["GBs"] = gbs;
}

// The timed loop of both forms: once() runs one zero_grad + gather + scatter.
template <class Once>
void run_w7(benchmark::State& state, Once once, const Table& table) {
  const W7Data& d = w7_data();
  once();  // warm-up: page-in, the gradient's buffers reach their size
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    once();
    benchmark::ClobberMemory();
  }
  state.counters["cpu_ms"] = 1e3 * (process_cpu_seconds() - c0) / double(state.iterations());
  state.counters["GBs"] = benchmark::Counter(double(state.iterations()) * uvp_bench::w7_bytes * 1e-9,
                                             benchmark::Counter::kIsRate);
  state.counters["distinct_rows"] = double(table.sparse_grad().size());
  state.counters["ids_hash"] = double(d.hash);
}

void W7_embedding_uvp(benchmark::State& state) {
  if (!set_threads(state)) return;
  uvp::ThreadCountGuard guard(int(state.range(0)));
  const W7Data& d = w7_data();
  TableModel& model = w7_model();
  TableModel::Context ctx;
  const uvp::nn::TokenBatch ids(d.ids, 1, uvp_bench::w7_lookups);
  const uvp::nn::SequenceBatch<float> d_out(d.d_out, 1, uvp_bench::w7_lookups);
  run_w7(
      state,
      [&] {
        model.zero_grad();
        benchmark::DoNotOptimize(model.forward(ids, ctx).data);
        model.backward(ctx, d_out);
      },
      model.get<0>());
}

void W7_embedding_uvp_blocks(benchmark::State& state) {
  if (!set_threads(state)) return;
  uvp::ThreadCountGuard guard(int(state.range(0)));
  const W7Data& d = w7_data();
  Table& table = w7_table();
  uvp::Matrix<float> out(uvp_bench::w7_lookups, uvp_bench::w7_dim);
  run_w7(
      state,
      [&] {
        table.zero_grad();
        table.forward(d.ids, out);
        table.backward(d.ids, d.d_out);
      },
      table);
  benchmark::DoNotOptimize(out.data());
}

// The optimizer step after W7's backward. Kind: 0 = the backward's rows, 1 = as many rows
// packed at the start of the table (per-row calls), 2 = one update over those packed values.
template <class Opt>
void step_bench(benchmark::State& state, Opt& opt, int kind) {
  const W7Data& d = w7_data();
  Table& table = w7_table();
  auto model = uvp::nn::blocks<float>("emb", table);
  table.zero_grad();
  const uvp::index rows = d.distinct;
  if (kind == 0) {
    table.backward(d.ids, d.d_out);
  } else {
    std::vector<uvp::index> packed(static_cast<std::size_t>(rows));
    for (uvp::index r = 0; r < rows; ++r) packed[std::size_t(r)] = r;
    table.backward(packed, d.d_out.topRows(rows));
  }
  uvp::Span<float> values = table.parameters().values();
  const uvp::Span<const float> grads(table.sparse_grad().values);
  auto run = [&] {
    if (kind == 2) {
      opt.begin_step();
      opt.update(values.subspan(0, grads.size()), grads, 0);
    } else {
      uvp::nn::step(opt, model);
    }
  };
  uvp::nn::step(opt, model);  // sizes the optimizer's state (and pages it in)
  run();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  state.counters["ns_per_row"] = benchmark::Counter(double(state.iterations()) * double(rows) * 1e-9,
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  table.zero_grad();
}

void W7_step_sgd(benchmark::State& state) {
  uvp::ThreadCountGuard guard(int(state.range(0)));
  uvp::Sgd<float> opt(uvp::SgdOptions{1e-3});
  step_bench(state, opt, int(state.range(1)));
}

void W7_step_adam(benchmark::State& state) {
  uvp::ThreadCountGuard guard(int(state.range(0)));
  uvp::Adam<float> opt;
  step_bench(state, opt, int(state.range(1)));
}

#define UVP_W7_BENCH(fn, threads)     \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(threads)                  \
      ->Unit(benchmark::kMillisecond) \
      ->UseRealTime()                 \
      ->MinTime(0.3)                  \
      ->Repetitions(5)                \
      ->ReportAggregatesOnly(true)

BENCHMARK(W7_triad)->ArgName("threads")->Arg(1)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond);
UVP_W7_BENCH(W7_embedding_uvp, 1);
UVP_W7_BENCH(W7_embedding_uvp_blocks, 1);
BENCHMARK(W7_triad)->ArgName("threads")->Arg(2)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond);
UVP_W7_BENCH(W7_embedding_uvp, 2);
UVP_W7_BENCH(W7_embedding_uvp_blocks, 2);

#define UVP_W7_STEP(fn, kind, label) \
  BENCHMARK(fn)                      \
      ->Name(#fn "_" label)          \
      ->ArgNames({"threads", "kind"}) \
      ->Args({1, kind})              \
      ->Unit(benchmark::kMillisecond) \
      ->UseRealTime()                \
      ->MinTime(0.2)                 \
      ->Repetitions(3)               \
      ->ReportAggregatesOnly(true)

UVP_W7_STEP(W7_step_sgd, 0, "rows");
UVP_W7_STEP(W7_step_sgd, 1, "packed");
UVP_W7_STEP(W7_step_sgd, 2, "flat");
UVP_W7_STEP(W7_step_adam, 0, "rows");
UVP_W7_STEP(W7_step_adam, 1, "packed");
UVP_W7_STEP(W7_step_adam, 2, "flat");

}  // namespace

BENCHMARK_MAIN();
