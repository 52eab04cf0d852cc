// SPDX-License-Identifier: Apache-2.0
// W4a / W4b peer: LibTorch inference with the W2 model (Embedding(10000, 32) -> LSTM(32, 64,
// batch_first) -> h_n -> Linear(64, 1)) under torch::InferenceMode, model in eval().
//
//   w4_lstm_inference_torch --mode latency|throughput [--threads N] [--reps R]
// latency (W4a): batch 1, seq_len 50; 1,000 warm-up calls, then 20,000 timed calls on the same
//   256 sequences as uvp's W4a_lstm_uvp; prints
//   blas=... openblas_core=... torch=... torch_threads=N peer_p50_us=<x> peer_p99_us=<y>
// throughput (W4b): batches of 1,024 sequences (the same 4 as W4b_lstm_uvp), 2 warm-up batches,
//   then R repetitions (default 5) of 10 batches; prints
//   blas=... torch_threads=N peer_seq_per_s=<median over the repetitions> peer_ms=<per batch>
// The last line is what benchmarks/compare reads.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../support/loaded_blas.hpp"
#include "../../support/lstm_data.hpp"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5))];
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
    const torch::Tensor& h_n = std::get<0>(std::get<1>(out));
    return head->forward(h_n[0]);
  }

  torch::nn::Embedding emb;
  torch::nn::LSTM lstm;
  torch::nn::Linear head;
};
}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  std::string mode = "latency";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s --mode latency|throughput [--threads N] [--reps R]\n", argv[0]);
      return 2;
    }
  }
  if (mode != "latency" && mode != "throughput") {
    std::fprintf(stderr, "%s: unknown mode '%s'\n", argv[0], mode.c_str());
    return 2;
  }
  threads = std::max(threads, 1);
  reps = std::max(reps, 1);
  torch::set_num_threads(threads);
  torch::manual_seed(2);
  W2Net net;
  net.eval();
  torch::InferenceMode guard;
  const std::int64_t S = uvp_bench::lstm_seq_len;
  const std::string core = uvp_bench::openblas_core();
  std::printf("blas=%s openblas_core=%s torch=%s torch_threads=%d ", uvp_bench::loaded_blas().c_str(),
              core.empty() ? "none" : core.c_str(), TORCH_VERSION, torch::get_num_threads());
  float sink = 0;
  if (mode == "latency") {
    uvp_bench::LstmData d = uvp_bench::make_lstm_data(1, 256, 4004);
    auto call = [&](std::int64_t k) {
      auto ids = torch::from_blob(const_cast<std::int64_t*>(d.batch_ids(k)), {1, S}, torch::kLong);
      sink += net.forward(ids).item<float>();
    };
    std::int64_t k = 0;
    for (; k < 1000; ++k) call(k);
    std::vector<double> us;
    us.reserve(20000);
    for (int i = 0; i < 20000; ++i, ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      call(k);
      const auto t1 = std::chrono::steady_clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    std::printf("peer_p50_us=%.3f peer_p99_us=%.3f sink=%g\n", percentile(us, 0.5), percentile(us, 0.99),
                double(sink));
  } else {
    const std::int64_t B = 1024;
    uvp_bench::LstmData d = uvp_bench::make_lstm_data(B, 4, 4005);
    auto call = [&](std::int64_t k) {
      auto ids = torch::from_blob(const_cast<std::int64_t*>(d.batch_ids(k)), {B, S}, torch::kLong);
      sink += net.forward(ids)[0].item<float>();
    };
    std::int64_t k = 0;
    for (; k < 2; ++k) call(k);
    std::vector<double> rates, ms;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i, ++k) call(k);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rates.push_back(10.0 * double(B) / s);
      ms.push_back(1e3 * s / 10);
    }
    std::printf("peer_seq_per_s=%.1f peer_ms=%.3f sink=%g\n", median(rates), median(ms), double(sink));
  }
  return 0;
}
