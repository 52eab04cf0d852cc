// SPDX-License-Identifier: Apache-2.0
// W2: one training step of the purchase-intent sequence model: batch 64, seq_len 50, item ids
// (vocab 10,000) -> Embedding(10000, 32) -> Lstm(32, 64) -> last hidden state -> Dense(64, 1) ->
// BCE-with-logits -> Adam (lr 1e-3).
//
//   bench_w2_lstm --benchmark_filter=W2
// Name: W2_lstm_uvp/threads:1 and /threads:2 (uvp::ThreadCountGuard). The model is one nn::Chain
// (Embedding -> Lstm -> GlobalLastPool1d -> Dense, one parameter buffer) trained through the layer
// contract: forward(TokenBatch, ctx), backward(ctx, d_logits). One iteration is one step
// (forward, backward, nn::step, zero_grad) on the next of 8 pre-drawn batches
// (support/lstm_data.hpp, the same ids and labels the LibTorch peer w2_lstm_torch trains on);
// 30 warm-up steps, then 5 repetitions of 50 timed steps; the *_median row (median over the
// repetitions of the mean step time) is the figure to compare. Counters: loss (the mean BCE of
// the last steps, a sanity check), cpu_ms (process CPU time per step, all threads).
// The embedding's gradient is sparse and Adam updates only the rows a batch touched
// (torch.optim.SparseAdam's rule); the peer uses torch::nn::Embedding's dense gradient with
// torch::optim::Adam over the whole table, what a LibTorch model is written with by default.
// W2_lstm_uvp_blocks/threads:{1,2}: the same model wired by hand from the same blocks (their
// low-level forms, caller-owned buffers, a BlockList for the optimizer), timed the same way:
// what the composed model costs over it. Same weights and data, so both report the same loss.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC PR 105593: false -W(maybe-)uninitialized inside the AVX-512 intrinsics Eigen and xsimd use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <utility>

#include "support/lstm_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/optim/adam.hpp"

namespace {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

constexpr uvp::index B = 64, S = uvp_bench::lstm_seq_len, E = uvp_bench::lstm_embed, H = uvp_bench::lstm_hidden;

using W2Net = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Lstm<float>, uvp::nn::GlobalLastPool1d<float>,
                             uvp::nn::Dense<float>>;

// The blocks are drawn one after the other from one Rng (function arguments have no order), as
// the hand-wired model below draws them.
W2Net make_w2_net() {
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb(uvp_bench::lstm_vocab, E, rng);
  uvp::nn::Lstm<float> lstm(E, H, rng);
  uvp::nn::Dense<float> head(H, 1, rng);
  W2Net net(std::move(emb), std::move(lstm), uvp::nn::GlobalLastPool1d<float>(), std::move(head));
  net.set_names({"emb", "lstm", "pool", "head"});
  return net;
}

/// The composed W2 model and everything one training step needs, allocated once (the context's
/// buffers reach their size in the first step).
struct W2Model {
  W2Net net = make_w2_net();
  W2Net::Context ctx;
  uvp::Adam<float> adam{uvp::AdamOptions{1e-3}};
  uvp::Matrix<float> dz{B, 1};

  double step(const std::int64_t* ids_ptr, const float* labels) {
    const uvp::nn::TokenBatch x(uvp::Span<const uvp::index>(ids_ptr, B * S), B, S);
    const uvp::ConstMatrixView<float> z = net.forward(x, ctx);
    const double loss = uvp::bce_with_logits<float>(uvp::Span<const float>(z.data(), B),
                                                    uvp::Span<const float>(labels, B), uvp::Span<float>(dz.data(), B));
    net.backward(ctx, dz);
    uvp::nn::step(adam, net);
    net.zero_grad();
    return loss;
  }
};

/// The same model wired by hand from the blocks' low-level forms.
struct W2Blocks {
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb{uvp_bench::lstm_vocab, E, rng};
  uvp::nn::Lstm<float> lstm{E, H, rng};
  uvp::nn::Dense<float> head{H, 1, rng};
  uvp::nn::BlockList<float> blocks = uvp::nn::blocks<float>("emb", emb, "lstm", lstm, "head", head);
  uvp::Adam<float> adam{uvp::AdamOptions{1e-3}};
  uvp::nn::LstmContext<float> ctx;
  uvp::Matrix<float> X{B * S, E}, dX{B * S, E}, z{B, 1}, dz{B, 1}, dh{B, H};
  const uvp::Matrix<float> none;

  double step(const std::int64_t* ids_ptr, const float* labels) {
    const uvp::Span<const uvp::index> ids(ids_ptr, B * S);
    emb.forward(ids, X);
    lstm.forward(X, B, S, {}, ctx);
    head.forward(ctx.last_hidden(), z);
    const double loss = uvp::bce_with_logits<float>(uvp::Span<const float>(z.data(), B),
                                                    uvp::Span<const float>(labels, B), uvp::Span<float>(dz.data(), B));
    head.backward(ctx.last_hidden(), dz, dh);
    lstm.backward(X, none, dh, dX, ctx);
    emb.backward(ids, dX);
    uvp::nn::step(adam, blocks);
    blocks.zero_grad();
    return loss;
  }
};

template <class Model>
void run_w2(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  static const uvp_bench::LstmData data = uvp_bench::make_lstm_data(64, 8, 2024);
  uvp::ThreadCountGuard guard(threads);
  Model m;
  std::int64_t k = 0;
  for (; k < 30; ++k) m.step(data.batch_ids(k), data.batch_labels(k));
  double loss = 0, cpu = 0;
  for (auto _ : state) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    loss = m.step(data.batch_ids(k), data.batch_labels(k));
    const auto t1 = std::chrono::steady_clock::now();
    cpu += process_cpu_seconds() - c0;
    ++k;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.counters["loss"] = loss;
  state.counters["cpu_ms"] = 1e3 * cpu / double(state.iterations());
}

void W2_lstm_uvp(benchmark::State& state) { run_w2<W2Model>(state); }
void W2_lstm_uvp_blocks(benchmark::State& state) { run_w2<W2Blocks>(state); }

#define UVP_W2_BENCH(fn)              \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(1)                        \
      ->Arg(2)                        \
      ->Unit(benchmark::kMillisecond) \
      ->UseManualTime()               \
      ->Iterations(50)                \
      ->Repetitions(5)                \
      ->ReportAggregatesOnly(true)

UVP_W2_BENCH(W2_lstm_uvp);
UVP_W2_BENCH(W2_lstm_uvp_blocks);

}  // namespace

BENCHMARK_MAIN();
