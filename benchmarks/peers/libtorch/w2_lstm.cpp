// SPDX-License-Identifier: Apache-2.0
// W2 peer: one LibTorch training step of Embedding(10000, 32) -> LSTM(32, 64, batch_first) ->
// h_n -> Linear(64, 1) -> binary_cross_entropy_with_logits -> Adam(lr 1e-3); batch 64, seq_len 50.
//
//   w2_lstm_torch [--threads N] [--reps R] [--steps K]
// Trains on the same 8 batches of ids and labels as uvp's bench_w2_lstm (support/lstm_data.hpp):
// 30 warm-up steps, then R repetitions (default 5) of K timed steps (default 50); prints one line
// per repetition, then
//   blas=<library> openblas_core=<name> torch=<version> torch_threads=N peer_ms=<median over the
//   repetitions of the mean step time> peer_cpu_ms=<the same in process CPU time> loss=<last>
// (the last line is what benchmarks/compare reads). torch::nn::Embedding has its default dense
// gradient, and torch::optim::Adam updates the whole table every step.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "../../support/loaded_blas.hpp"
#include "../../support/lstm_data.hpp"

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

struct W2Net : torch::nn::Module {
  W2Net()
      : emb(register_module("emb", torch::nn::Embedding(uvp_bench::lstm_vocab, uvp_bench::lstm_embed))),
        lstm(register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(uvp_bench::lstm_embed,
                                                                              uvp_bench::lstm_hidden)
                                                         .batch_first(true)))),
        head(register_module("head", torch::nn::Linear(uvp_bench::lstm_hidden, 1))) {}

  torch::Tensor forward(const torch::Tensor& ids) {
    auto out = lstm->forward(emb->forward(ids));
    const torch::Tensor& h_n = std::get<0>(std::get<1>(out));  // (1, B, H)
    return head->forward(h_n[0]).reshape({-1});
  }

  torch::nn::Embedding emb;
  torch::nn::LSTM lstm;
  torch::nn::Linear head;
};
}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5, steps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--reps R] [--steps K]\n", argv[0]);
      return 2;
    }
  }
  threads = std::max(threads, 1);
  reps = std::max(reps, 1);
  steps = std::max(steps, 1);
  torch::set_num_threads(threads);
  torch::manual_seed(2);

  const std::int64_t B = 64, S = uvp_bench::lstm_seq_len;
  uvp_bench::LstmData d = uvp_bench::make_lstm_data(B, 8, 2024);
  W2Net net;
  torch::optim::Adam opt(net.parameters(), torch::optim::AdamOptions(1e-3));
  double loss = 0;
  std::int64_t k = 0;
  auto step = [&] {
    auto ids = torch::from_blob(const_cast<std::int64_t*>(d.batch_ids(k)), {B, S}, torch::kLong);
    auto y = torch::from_blob(const_cast<float*>(d.batch_labels(k)), {B}, torch::kFloat);
    ++k;
    opt.zero_grad();
    auto l = torch::binary_cross_entropy_with_logits(net.forward(ids), y);
    l.backward();
    opt.step();
    loss = l.item<double>();
  };
  for (int i = 0; i < 30; ++i) step();

  std::vector<double> ms, cpu_ms;
  for (int r = 0; r < reps; ++r) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    const auto t1 = std::chrono::steady_clock::now();
    cpu_ms.push_back(1e3 * (process_cpu_seconds() - c0) / steps);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / steps);
    std::printf("rep %d: %.3f ms/step (cpu %.3f ms) loss=%.6f\n", r, ms.back(), cpu_ms.back(), loss);
    std::fflush(stdout);
  }
  const std::string core = uvp_bench::openblas_core();
  std::printf("blas=%s openblas_core=%s torch=%s torch_threads=%d peer_ms=%.4f peer_cpu_ms=%.4f loss=%.6f\n",
              uvp_bench::loaded_blas().c_str(), core.empty() ? "none" : core.c_str(), TORCH_VERSION,
              torch::get_num_threads(), median(ms), median(cpu_ms), loss);
  return 0;
}
