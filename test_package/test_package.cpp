// SPDX-License-Identifier: Apache-2.0
// Conan test_package: the packaged headers compile, link and give the expected results.
#include <cstdio>
#include <uvp/uvp.hpp>

int main() {
  uvp::Rng rng(42);
  uvp::Matrix<double> a(2, 2);
  a << 1, 2, 3, 4;
  const uvp::Matrix<double> b = a * a;  // [[7, 10], [15, 22]]
  const bool ok = rng() == 0x15780b2e0c2ec716ULL && b(0, 0) == 7 && b(1, 1) == 22;
  std::printf("uvp %s: %s\n", uvp::version_string, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
