// SPDX-License-Identifier: Apache-2.0
// Shared test helpers: per-type tolerances, fixture paths, and an exception-message matcher.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "uvp/core/error.hpp"

namespace uvp_test {

/// Tolerance table: a relative bound per scalar type.
template <class T>
struct tolerance;
template <>
struct tolerance<float> {
  static constexpr double rel = 1e-5;
};
template <>
struct tolerance<double> {
  static constexpr double rel = 1e-12;
};

/// True in a build with AddressSanitizer or ThreadSanitizer, where the kernels run 10 to 300
/// times slower (-O0 plus instrumentation): the slowest tests shrink their largest problems
/// there, and the Release run covers the full sizes.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

inline std::string fixture_path(const std::string& name) { return std::string(UVP_FIXTURE_DIR) + "/" + name; }
inline std::string data_path(const std::string& name) { return std::string(UVP_DATA_DIR) + "/" + name; }

/// Reads a whitespace-separated file of numbers into one flat vector (lines starting with # skipped).
inline std::vector<double> read_numbers(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  std::vector<double> v;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    double x;
    while (ls >> x) v.push_back(x);
  }
  return v;
}

/// Reads a fixture of named arrays: lines "name count" followed by a line of count numbers
/// (the format of tests/fixtures/make_*_fixtures.py).
inline std::map<std::string, std::vector<double>> read_arrays(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  std::map<std::string, std::vector<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream hs(line);
    std::string name;
    std::size_t count = 0;
    hs >> name >> count;
    std::vector<double> v(count);
    for (auto& x : v) in >> x;
    std::getline(in, line);  // rest of the values line
    out[name] = std::move(v);
  }
  return out;
}

/// Relative error ||a - b|| / max(||a + b||, tiny), as in the gradient checks.
template <class A, class B>
double rel_error(const A& a, const B& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < std::size_t(a.size()); ++i) {
    const double x = double(a[i]), y = double(b[i]);
    num += (x - y) * (x - y);
    den += (x + y) * (x + y);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

}  // namespace uvp_test

/// Asserts that `expr` throws exception type E whose message contains `substr`.
#define UVP_CHECK_THROWS_WITH_SUBSTR(expr, E, substr)                                      \
  do {                                                                                     \
    bool uvp_thrown_ = false;                                                              \
    try {                                                                                  \
      (void)(expr);                                                                        \
    } catch (const E& e) {                                                                 \
      uvp_thrown_ = true;                                                                  \
      const std::string uvp_msg_ = e.what();                                               \
      CHECK_MESSAGE(uvp_msg_.find(substr) != std::string::npos,                            \
                    "message '" << uvp_msg_ << "' lacks '" << substr << "'");              \
    }                                                                                      \
    CHECK_MESSAGE(uvp_thrown_, #expr " did not throw " #E);                                \
  } while (0)
