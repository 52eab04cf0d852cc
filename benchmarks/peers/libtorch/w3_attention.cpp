// SPDX-License-Identifier: Apache-2.0
// W3 peer: LibTorch training steps of the self-attention sequence model (Embedding -> MultiheadAttention -> mean pool -> Linear(1) -> BCE, Adam).
//
//   w3_attention_torch [--threads N] [--reps R] [--steps S]
// The model of benchmarks/bench_w3_attention.cpp: torch::nn::Embedding(10000, 64, padding_idx
// 0) -> torch::nn::MultiheadAttention(64, 4) (self-attention, key_padding_mask = positions
// t >= length, need_weights = false) -> mean over the valid steps -> torch::nn::Linear(64, 1) ->
// binary_cross_entropy_with_logits (mean), torch::optim::Adam(lr 1e-3), on the same 16
// minibatches (benchmarks/support/w3_data.hpp), cycled. A step = zero_grad, forward, backward,
// step. 20 warm-up steps, then R repetitions of S timed steps (defaults 5 x 200); prints one
// line per repetition (its mean step time), then
//   blas=<library> openblas_core=<name> torch=<version> torch_threads=N peer_ms=<median of the
//   repetitions' mean step times> peer_cpu_ms=<the same for process CPU time> peer_loss=<x>
// (the last line is what benchmarks/compare reads).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "../../support/loaded_blas.hpp"
#include "../../support/w3_data.hpp"

namespace {
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Batch {
  torch::Tensor ids, pad_mask, valid, lengths, labels;
};
}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5, steps = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps R] [--steps S]\n", argv[0]);
      return 2;
    }
  }
  threads = std::max(threads, 1);
  reps = std::max(reps, 1);
  steps = std::max(steps, 1);
  torch::set_num_threads(threads);
  torch::manual_seed(42);

  using D = uvp_bench::W3Data;
  const D data;
  std::vector<Batch> batches;
  for (std::size_t k = 0; k < data.ids.size(); ++k) {
    Batch b;
    b.ids = torch::from_blob(const_cast<std::int64_t*>(data.ids[k].data()), {D::batch, D::seq_len}, torch::kLong).clone();
    b.lengths = torch::from_blob(const_cast<std::int64_t*>(data.lengths[k].data()), {D::batch}, torch::kLong).clone();
    b.pad_mask = torch::arange(D::seq_len).unsqueeze(0).ge(b.lengths.unsqueeze(1));  // true = padding
    b.valid = b.pad_mask.logical_not().to(torch::kFloat).unsqueeze(2);               // (B, L, 1)
    b.labels = torch::from_blob(const_cast<float*>(data.labels[k].data()), {D::batch, 1}, torch::kFloat).clone();
    batches.push_back(b);
  }

  torch::nn::Embedding emb(torch::nn::EmbeddingOptions(D::vocab, D::d_model).padding_idx(0));
  torch::nn::MultiheadAttention mha(torch::nn::MultiheadAttentionOptions(D::d_model, D::heads));
  torch::nn::Linear head(D::d_model, 1);
  std::vector<torch::Tensor> params = emb->parameters();
  for (const auto& p : mha->parameters()) params.push_back(p);
  for (const auto& p : head->parameters()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));

  std::size_t k = 0;
  double last_loss = 0;
  auto step = [&] {
    const Batch& b = batches[k++ % batches.size()];
    opt.zero_grad();
    // LibTorch's MultiheadAttention takes (L, B, E) (its C++ options have no batch_first).
    const auto x = emb->forward(b.ids).transpose(0, 1);
    const auto a = std::get<0>(mha->forward(x, x, x, b.pad_mask, /*need_weights=*/false)).transpose(0, 1);
    const auto pooled = (a * b.valid).sum(1) / b.lengths.unsqueeze(1).to(torch::kFloat);
    const auto loss = torch::binary_cross_entropy_with_logits(head->forward(pooled), b.labels);
    loss.backward();
    opt.step();
    last_loss = loss.item<double>();
  };
  for (int i = 0; i < 20; ++i) step();

  std::vector<double> ms, cpu_ms;
  for (int r = 0; r < reps; ++r) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) step();
    const auto t1 = std::chrono::steady_clock::now();
    cpu_ms.push_back(1e3 * (process_cpu_seconds() - c0) / steps);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / steps);
    std::printf("rep %d: %.4f ms/step (cpu %.4f ms) loss=%.5f\n", r, ms.back(), cpu_ms.back(), last_loss);
    std::fflush(stdout);
  }
  const std::string core = uvp_bench::openblas_core();
  std::printf("blas=%s openblas_core=%s torch=%s torch_threads=%d peer_ms=%.4f peer_cpu_ms=%.4f peer_loss=%.5f\n",
              uvp_bench::loaded_blas().c_str(), core.empty() ? "none" : core.c_str(), TORCH_VERSION,
              torch::get_num_threads(), median(ms), median(cpu_ms), last_loss);
  return 0;
}
