// SPDX-License-Identifier: Apache-2.0
// The small harness of the CUDA tests (.cu files, no Eigen, no doctest): checks that count
// failures, exception checks, and a main() that runs the host-only checks everywhere and the
// device checks only when a device exists (else "skipped: no CUDA device", exit 77).
#pragma once

#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "uvp/core/error.hpp"

namespace uvp_cuda_test {

inline int g_failures = 0;
inline int g_checks = 0;

inline void expect(bool ok, const std::string& what, const char* file, int line) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  }
}

/// Runs f, expects an exception of type E whose what() contains every one of `parts`.
template <class E>
void expect_throws(const std::function<void()>& f, const std::vector<std::string>& parts,
                   const char* file, int line) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      expect(msg.find(p) != std::string::npos, "'" + msg + "' contains '" + p + "'", file, line);
    return;
  } catch (const std::exception& e) {
    expect(false, std::string("wrong exception type: ") + e.what(), file, line);
    return;
  } catch (...) {
    expect(false, "a non-std exception", file, line);
    return;
  }
  expect(false, "no exception thrown", file, line);
}

/// Largest |got - want| / (rel |want| + abs) over the elements; <= 1 passes (NaN fails).
template <class T>
double worst_error(const std::vector<T>& got, const std::vector<T>& want, double rel, double abs) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double r =
        std::abs(double(got[i]) - double(want[i])) / (rel * std::abs(double(want[i])) + abs);
    if (!(r <= worst)) worst = r;
  }
  return worst;
}

/// The test's main: host checks, then (with a device) device checks; 77 = skipped.
inline int run(const char* name, const std::function<void()>& host_checks,
               const std::function<void()>& device_checks, bool device_available) {
  try {
    host_checks();
    if (g_failures == 0 && !device_available) {
      std::printf("%s: host-only checks: %d passed\nskipped: no CUDA device\n", name, g_checks);
      return 77;  // ctest: SKIP_RETURN_CODE
    }
    if (g_failures == 0) device_checks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: unexpected exception: %s\n", name, e.what());
    return 1;
  }
  std::printf("%s: %d checks, %d failed\n", name, g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace uvp_cuda_test

#define UVP_EXPECT(cond) ::uvp_cuda_test::expect((cond), #cond, __FILE__, __LINE__)
#define UVP_EXPECT_MSG(cond, msg) ::uvp_cuda_test::expect((cond), (msg), __FILE__, __LINE__)
#define UVP_EXPECT_THROWS(E, expr, ...) \
  ::uvp_cuda_test::expect_throws<E>([&] { expr; }, {__VA_ARGS__}, __FILE__, __LINE__)
