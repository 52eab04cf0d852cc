// SPDX-License-Identifier: Apache-2.0
// W1 peer: one epoch of LibTorch logistic regression (Linear(32, 1), Adam lr 1e-3, BCE-with-logits) on uvp's W1 data.
//
//   w1_logreg_torch [--threads N] [--reps R]
// Trains a fresh torch::nn::Linear(32, 1) with zero weights and bias (as uvp's
// LogisticRegression starts) for one epoch over the rows in order, batch 256 (the last batch
// has 64 rows), with torch::optim::Adam(lr = 1e-3) and binary_cross_entropy_with_logits (mean
// over the batch), and times the epoch; then the held-out log loss under torch::NoGradGuard.
// Prints one line per repetition, then
//   blas=<library> openblas_core=<name> torch=<version> torch_threads=N data_hash=H
//   peer_ms=<median wall time> peer_cpu_ms=<median process CPU time> peer_logloss=<x>
// (the last line is what benchmarks/compare reads). The data come from
// benchmarks/support/w1_data.hpp, read from $UVP_W1_DATA when that file exists.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "../../support/loaded_blas.hpp"
#include "../../support/w1_data.hpp"

namespace {
// CPU time of the whole process (all threads), in seconds.
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

  const uvp_bench::W1Data d = uvp_bench::load_or_make_w1_data();
  const std::int64_t batch = 256;
  // from_blob: no copy; the tensors alias W1Data's vectors (never written).
  auto X = torch::from_blob(const_cast<float*>(d.X_train.data()), {d.n_train, d.d}, torch::kFloat);
  auto y = torch::from_blob(const_cast<float*>(d.y_train.data()), {d.n_train, 1}, torch::kFloat);
  auto X_test = torch::from_blob(const_cast<float*>(d.X_test.data()), {d.n_test, d.d}, torch::kFloat);

  std::vector<double> ms, cpu_ms;
  double logloss = 0;
  for (int r = 0; r < reps; ++r) {
    torch::nn::Linear model(d.d, 1);
    {
      torch::NoGradGuard no_grad;
      model->weight.zero_();
      model->bias.zero_();
    }
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t s = 0; s < d.n_train; s += batch) {
      const std::int64_t b = std::min(batch, d.n_train - s);
      const auto xb = X.narrow(0, s, b);
      const auto yb = y.narrow(0, s, b);
      opt.zero_grad();
      const auto loss = torch::binary_cross_entropy_with_logits(model->forward(xb), yb);
      loss.backward();
      opt.step();
    }
    const auto t1 = std::chrono::steady_clock::now();
    cpu_ms.push_back(1e3 * (process_cpu_seconds() - c0));
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    {
      torch::NoGradGuard no_grad;
      const auto z = model->forward(X_test).to(torch::kDouble).reshape({-1});
      const auto* zp = z.data_ptr<double>();
      // Mean of softplus(z) - y z = -[y log p + (1 - y) log(1 - p)], in double.
      double sum = 0;
      for (std::int64_t i = 0; i < d.n_test; ++i) {
        const double zi = zp[i];
        const double softplus = zi > 0 ? zi + std::log1p(std::exp(-zi)) : std::log1p(std::exp(zi));
        sum += softplus - double(d.y_test[std::size_t(i)]) * zi;
      }
      logloss = sum / double(d.n_test);
    }
    std::printf("rep %d: %.3f ms (cpu %.3f ms) logloss=%.6f\n", r, ms.back(), cpu_ms.back(), logloss);
    std::fflush(stdout);
  }
  const std::string core = uvp_bench::openblas_core();
  std::printf("blas=%s openblas_core=%s torch=%s torch_threads=%d data_hash=%u peer_ms=%.3f "
              "peer_cpu_ms=%.3f peer_logloss=%.6f\n",
              uvp_bench::loaded_blas().c_str(), core.empty() ? "none" : core.c_str(), TORCH_VERSION,
              torch::get_num_threads(), d.hash(), median(ms), median(cpu_ms), logloss);
  return 0;
}
