// SPDX-License-Identifier: Apache-2.0
// A .cu that includes both the CPU blocks (Eigen) and their CUDA specialisations, as a user's
// program may: the copies between them (constructor from the CPU block, to_host, grads_to_host)
// and the free to_device / to_host on a uvp::Matrix compile against the real uvp::nn::Block API.
// Eigen under nvcc needs -diag-suppress=20012,20013,20015 and -Xcompiler=-Wno-unknown-pragmas
// (tests/cuda/CMakeLists.txt; docs/cuda.md). With a device, the copies round-trip exactly.
#include <cstdio>
#include <exception>

#include "uvp/backend/cuda/cuda.cuh"
#include "uvp/core/random.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "test_cuda_host_interop: FAILED: %s\n", what);
  }
}

template <class Block>
bool same_values(const Block& a, const Block& b) {
  for (const auto& t : a.tensors()) {
    const auto x = a.values(t), y = b.values(b.tensor(t.name));
    if (x.size() != y.size()) return false;
    for (uvp::index i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) return false;
  }
  return true;
}

void device_checks() {
  uvp::Rng rng(7), other(8);
  uvp::nn::Dense<float> dense(6, 4, rng), dense_back(6, 4, other);
  const uvp::nn::Dense<float, uvp::cuda> dense_gpu(dense);
  dense_gpu.to_host(dense_back);
  expect(same_values(dense, dense_back), "Dense: cpu -> cuda -> cpu");
  dense_gpu.grads_to_host(dense_back);
  expect(dense_back.weight_grad().isZero(0), "Dense: zero gradients copied back");

  uvp::nn::Embedding<double> emb(10, 3, rng, 2), emb_back(10, 3, other, 2);
  const uvp::nn::Embedding<double, uvp::cuda> emb_gpu(emb);
  emb_gpu.to_host(emb_back);
  expect(same_values(emb, emb_back), "Embedding: cpu -> cuda -> cpu");

  uvp::nn::LstmCell<float> cell(5, 3, rng), cell_back(5, 3, other);
  const uvp::nn::LstmCell<float, uvp::cuda> cell_gpu(cell);
  cell_gpu.to_host(cell_back);
  expect(same_values(cell, cell_back), "LstmCell: cpu -> cuda -> cpu");

  uvp::Matrix<double> m = uvp::Matrix<double>::Random(7, 5), back;
  const auto dm = uvp::cuda_backend::to_device(m);
  uvp::cuda_backend::to_host(dm, back);
  expect(back == m, "uvp::Matrix: to_device -> to_host");
}

}  // namespace

int main() {
  if (!uvp::cuda_backend::device_available()) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  try {
    device_checks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_cuda_host_interop: unexpected exception: %s\n", e.what());
    return 1;
  }
  std::printf("test_cuda_host_interop: %d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
