// SPDX-License-Identifier: Apache-2.0
// A consumer of uvp (installed or add_subdirectory'd): uses core APIs and checks their results.
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <uvp/uvp.hpp>

// The umbrella header is CPU-only: no CUDA header may reach a consumer that did not ask for one.
#if defined(__CUDACC__) || defined(CUDART_VERSION) || defined(__CUDA_RUNTIME_H__) || \
    defined(CUBLAS_VER_MAJOR)
#error "uvp/uvp.hpp pulled a CUDA header into a CPU-only consumer"
#endif

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "uvp_consumer: FAILED: %s\n", what);
  }
}
}  // namespace

int main() {
  // The version the build system promised is the one in the headers.
  const std::string expected_version = UVP_CONSUMER_EXPECTED_VERSION;
  check(expected_version.empty() || expected_version == uvp::version_string,
        "uvp::version_string matches the version CMake found");

  // uvp::Rng: xoshiro256** seeded through SplitMix64, the same stream everywhere. The constants
  // are the generator's first outputs for seed 42, from the algorithm's definition.
  uvp::Rng rng(42);
  check(rng() == 0x15780b2e0c2ec716ULL, "Rng(42) first output");
  check(rng() == 0x6104d9866d113a7eULL, "Rng(42) second output");
  uvp::Rng again(42);
  check(again.uniform() == 0.08386297105988216, "Rng(42).uniform() first value");
  uvp::Rng other(43);
  check(other() != 0x15780b2e0c2ec716ULL, "another seed gives another stream");

  // uvp::Matrix is row-major; products go through Eigen.
  uvp::Matrix<double> a(2, 3), b(3, 2);
  a << 1, 2, 3, 4, 5, 6;
  b << 7, 8, 9, 10, 11, 12;
  const uvp::Matrix<double> c = a * b;
  check(a.data()[1] == 2.0, "Matrix storage is row-major");
  check(c.rows() == 2 && c.cols() == 2, "product shape (2, 2)");
  check(c(0, 0) == 58 && c(0, 1) == 64 && c(1, 0) == 139 && c(1, 1) == 154, "product values");
  std::vector<float> buffer{1, 2, 3, 4, 5, 6};
  const auto view = uvp::view(buffer.data(), 3, 2);
  check(view(2, 1) == 6.0f && view(1, 0) == 3.0f, "view over caller memory");

  // Errors: every uvp exception is a uvp::error with a stable code, and a standard exception.
  try {
    uvp::set_num_threads(0);
    check(false, "set_num_threads(0) throws");
  } catch (const uvp::error& e) {
    check(e.code() == uvp::errc::invalid_argument, "set_num_threads(0): errc::invalid_argument");
    check(std::strstr(e.what(), "uvp::set_num_threads") != nullptr, "message names the function");
  }
  try {
    uvp::Parameters<float> params(-1);
    check(false, "Parameters(-1) throws");
  } catch (const std::invalid_argument& e) {
    check(std::strstr(e.what(), "-1") != nullptr, "message names the value");
  }
  check(uvp::num_threads() >= 1, "num_threads() >= 1");

  std::printf("uvp_consumer: uvp %s, OpenMP %s, %d thread(s): %s\n", uvp::version_string,
              uvp::has_openmp ? "on" : "off", uvp::num_threads(), failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
