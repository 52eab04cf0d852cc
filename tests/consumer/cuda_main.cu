// SPDX-License-Identifier: Apache-2.0
// A CUDA consumer of an installed uvp (component `cuda`): the .cuh headers compile and link.
#include <cstdio>
#include <uvp/backend/cuda/cuda.cuh>
#include <vector>

int main() {
  namespace cb = uvp::cuda_backend;
  if (!cb::device_available()) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  try {
    const std::vector<float> x{-1.0f, 0.0f, 1.0f};
    const cb::DeviceBuffer<float> dx(x);
    cb::DeviceBuffer<float> dy(dx.size());
    cb::sigmoid(dx, dy);
    std::vector<float> y(3);
    dy.to_host(y);
    const bool ok = y[1] == 0.5f && y[0] > 0.26f && y[0] < 0.27f && y[2] > 0.73f && y[2] < 0.74f;
    std::printf("uvp_consumer_cuda: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  } catch (const uvp::error& e) {
    std::fprintf(stderr, "uvp_consumer_cuda: %s\n", e.what());
    return 1;
  }
}
