// SPDX-License-Identifier: Apache-2.0
// W3: one training step of a self-attention sequence model (batch 32, seq len 50, vocab 10,000, d_model 64, 4 heads).
//
//   bench_w3_attention --benchmark_filter=W3
// Name: W3_attention_step_uvp/threads:1 and /threads:2 (uvp::ThreadCountGuard). The model, one
// nn::Chain with one parameter buffer:
// Embedding(10000, 64, padding_idx 0) -> MultiHeadSelfAttention(64, 4) with the key-padding
// mask of each sequence's length -> mean over the valid steps (GlobalMeanPool1d) -> Dense(64, 1)
// -> BCE-with-logits (mean), Adam lr 1e-3 (the embedding's rows lazily, as nn::step does for
// sparse tensors). One iteration = one step (zero_grad, forward, backward, update) on the next
// of 16 fixed minibatches (benchmarks/support/w3_data.hpp, the same the LibTorch peer,
// benchmarks/peers/libtorch/w3_attention.cpp, trains on). 20 warm-up steps, then each
// repetition times 200 steps; 5 repetitions, the *_median row is the figure to compare.
// Counters: loss (mean training BCE over the timed steps), cpu_ms (process CPU time per step),
// flops (per step, mean over the timed steps: the products of the attention's forward and
// backward over the valid steps, w3_step_flops; what limit_frac= divides by the FMA peak).
// W3_attention_step_uvp_blocks/threads:{1,2}: the same model wired by hand from the same blocks
// (their low-level forms and caller-owned buffers, a BlockList for the optimizer): what the
// composed model costs over it. Same weights and data, so both report the same loss.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC PR 105593: false -W(maybe-)uninitialized inside the AVX-512 intrinsics Eigen and xsimd use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <utility>

#include "support/w3_data.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/optim/adam.hpp"

namespace {

using D = uvp_bench::W3Data;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

const uvp_bench::W3Data& w3_data() {
  static const uvp_bench::W3Data data;
  return data;
}

using W3Net = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::MultiHeadSelfAttention<float>,
                             uvp::nn::GlobalMeanPool1d<float>, uvp::nn::Dense<float>>;

// The blocks are drawn one after the other from one Rng (function arguments have no order), as
// the hand-wired model below draws them.
W3Net make_w3_net() {
  uvp::Rng rng{42};
  uvp::nn::Embedding<float> emb(D::vocab, D::d_model, rng, 0);
  uvp::nn::MultiHeadSelfAttention<float> mha(D::d_model, D::heads, rng);
  uvp::nn::Dense<float> head(D::d_model, 1, rng);
  W3Net net(std::move(emb), std::move(mha), uvp::nn::GlobalMeanPool1d<float>(), std::move(head));
  net.set_names({"embedding", "attention", "pool", "head"});
  return net;
}

/// The composed model: the network, its context (every activation, allocated once) and Adam.
struct W3Model {
  W3Net net = make_w3_net();
  W3Net::Context ctx;
  uvp::Adam<float> adam{uvp::AdamOptions{}};
  uvp::Matrix<float> dZ{D::batch, 1};

  double step(const uvp_bench::W3Data& d, std::size_t k) {
    net.zero_grad();
    const uvp::nn::TokenBatch x(uvp::as_span(d.ids[k]), D::batch, D::seq_len, uvp::as_span(d.lengths[k]));
    const uvp::ConstMatrixView<float> Z = net.forward(x, ctx);
    const double loss = uvp::bce_with_logits(uvp::Span<const float>(Z.data(), D::batch), uvp::as_span(d.labels[k]),
                                             uvp::Span<float>(dZ.data(), D::batch));
    net.backward(ctx, dZ);
    uvp::nn::step(adam, net);
    return loss;
  }
};

/// The same model wired by hand: its activations and gradients, everything a step touches, allocated once.
struct W3Blocks {
  uvp::Rng rng{42};
  uvp::nn::Embedding<float> emb{D::vocab, D::d_model, rng, 0};
  uvp::nn::MultiHeadSelfAttention<float> mha{D::d_model, D::heads, rng};
  uvp::nn::GlobalMeanPool1d<float> pool;
  uvp::nn::Dense<float> head{D::d_model, 1, rng};
  uvp::nn::BlockList<float> blocks = uvp::nn::blocks<float>("embedding", emb, "attention", mha, "head", head);
  uvp::Adam<float> adam{uvp::AdamOptions{}};
  uvp::nn::MultiHeadSelfAttention<float>::Context ctx;
  uvp::Matrix<float> E{D::batch * D::seq_len, D::d_model}, A{D::batch * D::seq_len, D::d_model};
  uvp::Matrix<float> dA{D::batch * D::seq_len, D::d_model}, dE{D::batch * D::seq_len, D::d_model};
  uvp::Matrix<float> P{D::batch, D::d_model}, dP{D::batch, D::d_model};
  uvp::Matrix<float> Z{D::batch, 1}, dZ{D::batch, 1};

  double step(const uvp_bench::W3Data& d, std::size_t k) {
    const uvp::Span<const uvp::index> ids = uvp::as_span(d.ids[k]);
    const uvp::Span<const uvp::index> lengths = uvp::as_span(d.lengths[k]);
    blocks.zero_grad();
    emb.forward(ids, E);
    mha.forward(E, D::batch, D::seq_len, lengths, A, ctx);
    pool.forward(A, D::batch, D::seq_len, lengths, P);
    head.forward(P, Z);
    const double loss = uvp::bce_with_logits(uvp::Span<const float>(Z.data(), D::batch), uvp::as_span(d.labels[k]),
                                             uvp::Span<float>(dZ.data(), D::batch));
    head.backward(P, dZ, dP);
    pool.backward(dP, lengths, dA);
    mha.backward(E, dA, dE, ctx);
    emb.backward(ids, dE);
    uvp::nn::step(adam, blocks);
    return loss;
  }
};

/// Floating-point operations of one training step on batch k, counted as 2 per multiply-add of
/// the attention's matrix products over each sequence's n valid steps (E = d_model): forward
/// 2 n E 3E (in-projection) + 2 n^2 E (Q K^T, all heads) + 2 n^2 E (P V) + 2 n E^2 (out-projection)
/// = 8 n E^2 + 4 n^2 E; backward twice that (each product's two input gradients). The
/// embedding, pooling, head and optimizer are memory-bound and left out: a lower bound.
double w3_step_flops(const uvp_bench::W3Data& d, std::size_t k) {
  const double E = double(D::d_model);
  double f = 0;
  for (const std::int64_t len : d.lengths[k]) {
    const double n = double(len);
    f += 3.0 * (8.0 * n * E * E + 4.0 * n * n * E);
  }
  return f;
}

template <class Model>
void run_w3(benchmark::State& state) {
  const int threads = int(state.range(0));
  if (threads > 1 && !uvp::has_openmp) {
    state.SkipWithError("uvp was built without OpenMP");
    return;
  }
  uvp::ThreadCountGuard guard(threads);
  const uvp_bench::W3Data& d = w3_data();
  Model model;
  std::size_t k = 0;
  for (int i = 0; i < 20; ++i) model.step(d, k++ % d.ids.size());  // warm-up: buffers, Adam state
  double cpu = 0, loss_sum = 0, flops = 0;
  int loss_n = 0;
  for (auto _ : state) {
    flops += w3_step_flops(d, k % d.ids.size());
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = model.step(d, k++ % d.ids.size());
    const auto t1 = std::chrono::steady_clock::now();
    cpu += process_cpu_seconds() - c0;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    loss_sum += loss;
    ++loss_n;
  }
  state.counters["loss"] = loss_n ? loss_sum / loss_n : 0.0;
  state.counters["cpu_ms"] = 1e3 * cpu / double(state.iterations());
  state.counters["flops"] = flops / double(state.iterations());
}

void W3_attention_step_uvp(benchmark::State& state) { run_w3<W3Model>(state); }
void W3_attention_step_uvp_blocks(benchmark::State& state) { run_w3<W3Blocks>(state); }

#define UVP_W3_BENCH(fn)              \
  BENCHMARK(fn)                       \
      ->ArgName("threads")            \
      ->Arg(1)                        \
      ->Arg(2)                        \
      ->Unit(benchmark::kMillisecond) \
      ->UseManualTime()               \
      ->Iterations(200)               \
      ->Repetitions(5)                \
      ->ReportAggregatesOnly(true)

UVP_W3_BENCH(W3_attention_step_uvp);
UVP_W3_BENCH(W3_attention_step_uvp_blocks);

}  // namespace

BENCHMARK_MAIN();
