// SPDX-License-Identifier: Apache-2.0
// Conan test_package: the packaged headers compile, link and give the expected results.
#include <cstdio>
#include <uvp/uvp.hpp>

int main() {
  uvp::Rng rng(42);
  uvp::Matrix<double> a(2, 2);
  a << 1, 2, 3, 4;
  const uvp::Matrix<double> b = a * a;  // [[7, 10], [15, 22]]
  bool ok = rng() == 0x15780b2e0c2ec716ULL && b(0, 0) == 7 && b(1, 1) == 22;
#if defined(_OPENMP)
  const bool openmp = true;
#else
  const bool openmp = false;
#endif
#if defined(UVP_TEST_EXPECT_OPENMP)  // uvp's openmp option, passed by test_package/conanfile.py
  ok = ok && openmp == bool(UVP_TEST_EXPECT_OPENMP);
#endif
  std::printf("uvp %s (OpenMP %s): %s\n", uvp::version_string, openmp ? "on" : "off", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
