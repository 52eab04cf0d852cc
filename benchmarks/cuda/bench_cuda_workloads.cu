// SPDX-License-Identifier: Apache-2.0
// GPU timings of WORKLOADS.md's W2, W3, W4b and W6 on the uvp::cuda backend (float):
//
//   W2   training step: Embedding(10000, 32) -> Lstm(32, 64) -> last hidden -> Dense(64, 1)
//        -> BCE with logits -> Adam on every block; batch 64, seq len 50, random lengths in [1, 50]
//   W3   attention training step: Embedding(10000, 64, padding_idx 0) -> MultiHeadSelfAttention(64, 4)
//        with the key-padding mask of each length -> mean over the valid steps -> Dense(64, 1)
//        -> BCE with logits -> Adam on every block; batch 32, seq len 50, lengths in [5, 50]
//        (the CPU W3's shapes; the batch is drawn here, not benchmarks/support/w3_data.hpp,
//        which needs Eigen)
//   W4b  batch scoring: the W2 model, forward_last + sigmoid + copy of the scores to the host;
//        batch 1024, seq len 50; sequences per second
//   W6   1024 x 1024 x 1024 GEMM through cuBLAS (uvp::cuda_backend::gemm), float and double
//
// Each time is the median of --reps runs (default 50) after 5 warm-up runs, with the stream
// synchronised at the end of each run (the loss of W2 and the scores of W4b come back to the
// host anyway). Without a device every workload prints "W<n> skipped: no CUDA device".
//
//   bench_cuda_workloads [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "uvp/backend/cuda/adam.cuh"
#include "uvp/backend/cuda/attention.cuh"
#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/dense.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/elementwise.cuh"
#include "uvp/backend/cuda/embedding.cuh"
#include "uvp/backend/cuda/losses.cuh"
#include "uvp/backend/cuda/lstm.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
namespace cb = uvp::cuda_backend;

struct Rng {  // uniform(lo, hi) for the blocks' initialisation
  std::mt19937_64 g{42};
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
};

template <class F>
double median_seconds(int reps, const cb::Stream& stream, F&& f) {
  for (int i = 0; i < 5; ++i) f();
  stream.synchronize();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    stream.synchronize();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

constexpr index kVocab = 10000, kEmbed = 32, kHidden = 64, kSeq = 50;

/// The W2 / W4b model on the device.
struct Model {
  uvp::nn::Embedding<float, uvp::cuda> embedding;
  uvp::nn::Lstm<float, uvp::cuda> lstm;
  uvp::nn::Dense<float, uvp::cuda> head;
  explicit Model(Rng& rng, cudaStream_t s)
      : embedding(kVocab, kEmbed, 0, s), lstm(kEmbed, kHidden, rng, s), head(kHidden, 1, rng, true, s) {
    std::vector<float> table(static_cast<std::size_t>(kVocab * kEmbed));
    for (auto& v : table) v = static_cast<float>(rng.uniform(-1, 1));
    embedding.set_values("weight", table.data(), kVocab * kEmbed);
    lstm.check_finite(false);  // the inputs come from the embedding: no read-back per step
    head.check_finite(false);
  }
};

struct Batch {
  std::vector<index> ids, lengths;
  std::vector<float> labels;
};
Batch make_batch(index batch, std::mt19937_64& g) {
  Batch b;
  std::uniform_int_distribution<index> len(1, kSeq), id(1, kVocab - 1);
  for (index i = 0; i < batch; ++i) {
    const index n = len(g);
    b.lengths.push_back(n);
    for (index t = 0; t < kSeq; ++t) b.ids.push_back(t < n ? id(g) : 0);
    b.labels.push_back(static_cast<float>(g() % 2));
  }
  return b;
}

void w2(int reps) {
  cb::Stream stream;
  Rng rng;
  Model m(rng, stream.get());
  const index B = 64, N = B * kSeq;
  std::mt19937_64 g(7);
  const Batch batch = make_batch(B, g);
  const cb::DeviceBuffer<index> ids(batch.ids, stream.get());
  const cb::DeviceBuffer<float> labels(batch.labels, stream.get());
  cb::DeviceMatrix<float> E(N, kEmbed, stream.get()), dE(N, kEmbed, stream.get());
  cb::DeviceMatrix<float> logits(B, 1, stream.get()), dlogits(B, 1, stream.get()), dlast(B, kHidden, stream.get());
  const cb::DeviceMatrix<float> none;
  uvp::nn::Lstm<float, uvp::cuda>::Context ctx;
  cb::Reducer reducer(stream.get());
  uvp::AdamOptions o;
  o.lr = 1e-3;
  uvp::Adam<float, uvp::cuda> a_emb(o, stream.get()), a_lstm(o, stream.get()), a_head(o, stream.get());
  double loss = 0;
  const double s = median_seconds(reps, stream, [&] {
    m.embedding.zero_grad(), m.lstm.zero_grad(), m.head.zero_grad();
    m.embedding.forward(ids, E);
    m.lstm.forward(E, B, kSeq, batch.lengths, ctx);
    m.head.forward(ctx.last_hidden(), logits);
    loss = cb::bce_with_logits<float>(reducer, logits, labels, dlogits);
    m.head.backward(ctx.last_hidden(), dlogits, dlast);
    m.lstm.backward(E, none, dlast, dE, ctx);
    m.embedding.backward(ids, dE);
    m.embedding.sparse_step(a_emb);
    a_lstm.step(m.lstm.parameters(), m.lstm.grads());
    a_head.step(m.head.parameters(), m.head.grads());
  });
  std::printf("W2 lstm training step (batch 64, seq 50, float): %.3f ms/step (median of %d), loss %.4f\n",
              s * 1e3, reps, loss);
}

/// Mean over the valid steps of each sequence: P[b] = sum_{t < n_b} A[b L + t] / n_b (forward),
/// dA[b L + t] = dP[b] / n_b for t < n_b, else 0 (backward). One thread per (b, column).
__global__ void mean_pool_kernel(const float* A, float* P, const index* len, index B, index L, index E) {
  const index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= B * E) return;
  const index b = k / E, c = k % E;
  float acc = 0;
  for (index t = 0; t < len[b]; ++t) acc += A[(b * L + t) * E + c];
  P[k] = acc / static_cast<float>(len[b]);
}
__global__ void mean_pool_backward_kernel(const float* dP, float* dA, const index* len, index B, index L, index E) {
  const index k = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= B * L * E) return;
  const index r = k / E, b = r / L, t = r % L;
  dA[k] = t < len[b] ? dP[b * E + k % E] / static_cast<float>(len[b]) : 0.0f;
}

void w3(int reps) {
  constexpr index B = 32, L = 50, D = 64, H = 4, N = B * L, kMinLen = 5;
  cb::Stream stream;
  Rng rng;
  uvp::nn::Embedding<float, uvp::cuda> emb(kVocab, D, 0, stream.get());
  {
    std::vector<float> table(static_cast<std::size_t>(kVocab * D));
    for (auto& v : table) v = static_cast<float>(rng.uniform(-1, 1));
    for (index c = 0; c < D; ++c) table[static_cast<std::size_t>(c)] = 0;  // padding_idx 0
    emb.set_values("weight", table.data(), kVocab * D);
  }
  uvp::nn::MultiHeadSelfAttention<float, uvp::cuda> mha(D, H, rng, false, stream.get());
  uvp::nn::Dense<float, uvp::cuda> head(D, 1, rng, true, stream.get());
  mha.check_finite(false);  // the inputs come from the embedding: no read-back
  head.check_finite(false);
  std::mt19937_64 g(11);
  std::uniform_int_distribution<index> len_d(kMinLen, L), id_d(1, kVocab - 1);
  std::vector<index> ids_h, lengths;
  std::vector<float> labels_h;
  for (index b = 0; b < B; ++b) {
    const index n = len_d(g);
    lengths.push_back(n);
    for (index t = 0; t < L; ++t) ids_h.push_back(t < n ? id_d(g) : 0);
    labels_h.push_back(static_cast<float>(g() % 2));
  }
  const cb::DeviceBuffer<index> ids(ids_h, stream.get());
  const cb::DeviceBuffer<float> labels(labels_h, stream.get());
  const cb::DeviceBuffer<index> len(lengths, stream.get());
  cb::DeviceMatrix<float> E(N, D, stream.get()), A(N, D, stream.get()), dA(N, D, stream.get()), dE(N, D, stream.get());
  cb::DeviceMatrix<float> P(B, D, stream.get()), dP(B, D, stream.get());
  cb::DeviceMatrix<float> logits(B, 1, stream.get()), dlogits(B, 1, stream.get());
  uvp::nn::MultiHeadSelfAttention<float, uvp::cuda>::Context ctx;
  cb::Reducer reducer(stream.get());
  uvp::AdamOptions o;
  o.lr = 1e-3;
  uvp::Adam<float, uvp::cuda> a_emb(o, stream.get()), a_mha(o, stream.get()), a_head(o, stream.get());
  double loss = 0;
  const double s = median_seconds(reps, stream, [&] {
    emb.zero_grad(), mha.zero_grad(), head.zero_grad();
    emb.forward(ids, E);
    mha.forward(E, B, L, lengths, A, ctx);
    mean_pool_kernel<<<static_cast<unsigned>((B * D + 255) / 256), 256, 0, stream.get()>>>(A.data(), P.data(),
                                                                                          len.data(), B, L, D);
    UVP_CUDA_CHECK(cudaGetLastError());
    head.forward(P, logits);
    loss = cb::bce_with_logits<float>(reducer, logits, labels, dlogits);
    head.backward(P, dlogits, dP);
    mean_pool_backward_kernel<<<static_cast<unsigned>((N * D + 255) / 256), 256, 0, stream.get()>>>(
        dP.data(), dA.data(), len.data(), B, L, D);
    UVP_CUDA_CHECK(cudaGetLastError());
    mha.backward(E, dA, dE, ctx);
    emb.backward(ids, dE);
    emb.sparse_step(a_emb);
    a_mha.step(mha.parameters(), mha.grads());
    a_head.step(head.parameters(), head.grads());
  });
  std::printf("W3 attention training step (batch 32, seq 50, d_model 64, 4 heads, float): %.3f ms/step (median of %d), "
              "loss %.4f\n",
              s * 1e3, reps, loss);
}

void w4b(int reps) {
  cb::Stream stream;
  Rng rng;
  Model m(rng, stream.get());
  const index B = 1024, N = B * kSeq;
  std::mt19937_64 g(8);
  const Batch batch = make_batch(B, g);
  const cb::DeviceBuffer<index> ids(batch.ids, stream.get());
  cb::DeviceMatrix<float> E(N, kEmbed, stream.get()), h(B, kHidden, stream.get()), logits(B, 1, stream.get());
  uvp::nn::Lstm<float, uvp::cuda>::Context ctx;
  std::vector<float> scores(static_cast<std::size_t>(B));
  const double s = median_seconds(reps, stream, [&] {
    m.embedding.forward(ids, E);
    m.lstm.forward_last(E, B, kSeq, batch.lengths, h, ctx);
    m.head.forward(h, logits);
    cb::sigmoid(logits.data(), logits.data(), B, stream.get());
    logits.to_host(scores.data(), B, 1);
  });
  std::printf("W4b batch scoring (batch 1024, seq 50, float): %.3f ms/batch, %.0f sequences/s (median of %d)\n",
              s * 1e3, double(B) / s, reps);
}

template <class T>
void w6_one(int reps, const char* name) {
  cb::Stream stream;
  cb::BlasHandle blas(stream.get());
  const index n = 1024;
  std::vector<T> host(static_cast<std::size_t>(n * n));
  std::mt19937_64 g(9);
  for (auto& v : host) v = static_cast<T>(std::uniform_real_distribution<double>(-1, 1)(g));
  const cb::DeviceMatrix<T> A(host.data(), n, n, stream.get()), B(host.data(), n, n, stream.get());
  cb::DeviceMatrix<T> C(n, n, stream.get());
  const double s = median_seconds(reps, stream, [&] {
    cb::gemm<T>(blas, cb::Trans::none, cb::Trans::none, n, n, n, T(1), A.data(), B.data(), T(0), C.data());
  });
  std::printf("W6 gemm 1024^3 %s (cuBLAS): %.1f GFLOP/s (%.3f ms, median of %d)\n", name,
              2.0 * double(n) * n * n / s * 1e-9, s * 1e3, reps);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_cuda_workloads [--reps N]\n");
      return 2;
    }
  }
  if (!cb::device_available()) {
    for (const char* w : {"W2", "W3", "W4b", "W6"}) std::printf("%s skipped: no CUDA device\n", w);
    return 0;
  }
  try {
    w2(reps);
    w3(reps);
    w4b(reps);
    w6_one<float>(reps, "float");
    w6_one<double>(reps, "double");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_workloads: %s\n", e.what());
    return 1;
  }
  return 0;
}
