// SPDX-License-Identifier: Apache-2.0
// Reader of tests/fixtures/metrics/*.txt (written by tests/fixtures/make_metrics_fixtures.py).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace uvp_test {

/// One `case <name>` block: named arrays of doubles (inputs and sklearn's outputs).
struct MetricCase {
  std::string name;
  std::map<std::string, std::vector<double>> arrays;

  bool has(const std::string& key) const { return arrays.count(key) != 0; }
  const std::vector<double>& at(const std::string& key) const {
    const auto it = arrays.find(key);
    REQUIRE_MESSAGE(it != arrays.end(), "case " << name << " has no key " << key);
    return it->second;
  }
  double scalar(const std::string& key) const {
    const auto& v = at(key);
    REQUIRE_MESSAGE(v.size() == 1, "case " << name << ": key " << key << " is not a scalar");
    return v[0];
  }
  bool is_float32() const { return has("dtype") && scalar("dtype") == 32; }
};

/// strtod, not operator>>: libstdc++'s stream extraction rejects subnormals such as 5e-324.
inline std::vector<MetricCase> read_metric_cases(const std::string& file) {
  const std::string path = fixture_path("metrics/" + file);
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  std::vector<MetricCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("case ", 0) == 0) {
      cases.push_back(MetricCase{line.substr(5), {}});
      continue;
    }
    REQUIRE_MESSAGE(!cases.empty(), "value line before the first case in " << path);
    const auto colon = line.find(':');
    REQUIRE_MESSAGE(colon != std::string::npos, "bad line in " << path << ": " << line);
    std::vector<double> values;
    std::istringstream words(line.substr(colon + 1));
    std::string word;
    while (words >> word) values.push_back(std::strtod(word.c_str(), nullptr));
    cases.back().arrays[line.substr(0, colon)] = std::move(values);
  }
  REQUIRE_MESSAGE(!cases.empty(), "no case in " << path);
  return cases;
}

/// A double with all 17 significant digits, for failure messages.
inline std::string num(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

template <class T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// |actual - expected| <= rel |expected| (plus 1e-300 so that an expected 0 must be met exactly
/// up to denormals).
inline bool close(double actual, double expected, double rel) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return actual == expected;
  return std::abs(actual - expected) <= rel * std::abs(expected) + 1e-300;
}

#define UVP_CHECK_CLOSE(actual, expected, rel)                                                 \
  CHECK_MESSAGE(uvp_test::close(double(actual), double(expected), rel),                        \
                #actual " = " << uvp_test::num(double(actual)) << ", expected "                \
                              << uvp_test::num(double(expected)) << " (rel " << rel << ")")

/// Element-wise close() of two sequences of the same length.
template <class A, class B>
void check_all_close(const A& actual, const B& expected, double rel, const std::string& what) {
  REQUIRE_MESSAGE(std::size_t(actual.size()) == std::size_t(expected.size()),
                  what << ": size " << actual.size() << ", expected " << expected.size());
  for (std::size_t i = 0; i < std::size_t(expected.size()); ++i) {
    const double a = double(actual[i]), e = double(expected[i]);
    if (!close(a, e, rel)) {
      FAIL_CHECK(what << "[" << i << "] = " << num(a) << ", expected " << num(e) << " (rel " << rel
                      << ")");
      return;
    }
  }
}

}  // namespace uvp_test
