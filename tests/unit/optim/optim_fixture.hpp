// SPDX-License-Identifier: Apache-2.0
// Test helpers for the optimizer tests: the fixture reader and the trajectory replay against PyTorch.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/optim/schedule.hpp"

namespace uvp_test {

/// One `case <name>` block of a tests/fixtures/optim/*.txt file: key -> values.
struct FixtureCase {
  std::string name;
  std::map<std::string, std::vector<double>> values;

  const std::vector<double>& at(const std::string& key) const {
    auto it = values.find(key);
    REQUIRE_MESSAGE(it != values.end(), "fixture case " << name << " lacks key " << key);
    return it->second;
  }
  double scalar(const std::string& key) const {
    const auto& v = at(key);
    REQUIRE(v.size() == 1);
    return v[0];
  }
  template <class T>
  std::vector<T> as(const std::string& key) const {
    const auto& v = at(key);
    return std::vector<T>(v.begin(), v.end());
  }
};

inline std::vector<FixtureCase> read_cases(const std::string& file) {
  std::ifstream in(fixture_path("optim/" + file));
  REQUIRE_MESSAGE(in.good(), "cannot open fixture optim/" << file);
  std::vector<FixtureCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("case ", 0) == 0) {
      cases.push_back({line.substr(5), {}});
      continue;
    }
    const auto colon = line.find(':');
    REQUIRE_MESSAGE((colon != std::string::npos && !cases.empty()), "bad fixture line: " << line);
    std::istringstream ls(line.substr(colon + 1));
    std::vector<double> v;
    double x;
    while (ls >> x) v.push_back(x);
    cases.back().values[line.substr(0, colon)] = v;
  }
  REQUIRE(!cases.empty());
  return cases;
}

/// The cases of `file` whose name ends in _f32 (T = float) or _f64 (T = double).
template <class T>
std::vector<FixtureCase> cases_for(const std::string& file) {
  const std::string suffix = sizeof(T) == 4 ? "_f32" : "_f64";
  std::vector<FixtureCase> out;
  for (auto& c : read_cases(file))
    if (c.name.size() > 4 && c.name.compare(c.name.size() - 4, 4, suffix) == 0) out.push_back(c);
  return out;
}

/// Largest |a_i - b_i| / max(|b_i|, 1).
template <class A, class B>
double max_rel_diff(const A& a, const B& b) {
  double m = 0;
  for (std::size_t i = 0; i < std::size_t(a.size()); ++i)
    m = std::max(m, std::abs(double(a[i]) - double(b[i])) / std::max(std::abs(double(b[i])), 1.0));
  return m;
}

/// Replays a recorded optimizer case: same start, same gradients, the case's schedule applied
/// before each step; checks lr and parameters after every step against PyTorch's. Returns the
/// largest per-element difference seen.
template <class T, class Optimizer>
double replay_trajectory(const FixtureCase& c, Optimizer& opt) {
  const auto n = uvp::index(c.scalar("n"));
  const auto steps = uvp::index(c.scalar("steps"));
  std::vector<T> params = c.as<T>("params0");
  const std::vector<T> grads = c.as<T>("grads");
  const std::vector<double>& traj = c.at("trajectory");
  const std::vector<double>& lrs = c.at("lrs");
  REQUIRE(params.size() == std::size_t(n));
  REQUIRE(grads.size() == std::size_t(n * steps));
  REQUIRE(traj.size() == std::size_t(n * steps));
  const int schedule = int(c.scalar("schedule"));
  const uvp::CosineLr cosine{c.scalar("lr"), uvp::index(c.scalar("t_max")), c.scalar("eta_min")};
  const uvp::LinearWarmup warm{cosine, uvp::index(c.scalar("warmup")), c.scalar("start_factor")};
  double worst = 0;
  for (uvp::index t = 0; t < steps; ++t) {
    if (schedule == 1) uvp::apply(cosine, opt, t);
    if (schedule == 2) uvp::apply(warm, opt, t);
    CHECK(opt.lr() == doctest::Approx(lrs[std::size_t(t)]).epsilon(1e-13));
    opt.step(uvp::Span<T>(params), uvp::Span<const T>(grads.data() + t * n, n));
    const std::vector<double> expected(traj.begin() + t * n, traj.begin() + (t + 1) * n);
    const double d = max_rel_diff(params, expected);
    worst = std::max(worst, d);
    CHECK_MESSAGE(d <= tolerance<T>::rel, c.name << " step " << t + 1 << ": max rel diff " << d);
    CHECK_MESSAGE(rel_error(params, expected) <= tolerance<T>::rel, c.name << " step " << t + 1);
  }
  CHECK(opt.steps() == steps);
  return worst;
}

}  // namespace uvp_test
