// SPDX-License-Identifier: Apache-2.0
// W1's data set (logistic model with known weights), shared bit for bit by uvp's benchmark and the LibTorch peer.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "uvp/core/random.hpp"

namespace uvp_bench {

/// W1 of WORKLOADS.md: rows x_i ~ N(0, I_d) (float), labels y_i ~ Bernoulli(sigmoid(x_i . w + b))
/// with known weights w_j ~ N(0, 1) * 2 / sqrt(d) and b = -1, all drawn by uvp::Rng(seed).
/// Row-major, float32; the first n_train rows train, the next n_test rows are held out.
struct W1Data {
  static constexpr std::int64_t default_train = 1'000'000;
  static constexpr std::int64_t default_test = 100'000;
  static constexpr std::int64_t default_d = 32;
  static constexpr std::uint64_t default_seed = 20240601;

  std::int64_t n_train = 0, n_test = 0, d = 0;
  std::vector<float> X_train, y_train, X_test, y_test;
  std::vector<double> w_true;
  double b_true = -1.0;

  /// FNV-1a over the bit patterns of every value (one 32-bit word at a time): both sides
  /// print it to show that they saw the same rows.
  std::uint32_t hash() const noexcept {
    std::uint32_t h = 2166136261u;
    auto mix = [&h](const std::vector<float>& v) {
      for (float x : v) {
        std::uint32_t u;
        std::memcpy(&u, &x, sizeof u);
        h = (h ^ u) * 16777619u;
      }
    };
    mix(X_train);
    mix(y_train);
    mix(X_test);
    mix(y_test);
    return h;
  }
};

namespace detail {

inline void fill_rows(uvp::Rng& rng, const W1Data& m, std::int64_t n, std::vector<float>& X,
                      std::vector<float>& y) {
  X.resize(std::size_t(n * m.d));
  y.resize(std::size_t(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double z = m.b_true;
    for (std::int64_t j = 0; j < m.d; ++j) {
      const float x = float(rng.normal());
      X[std::size_t(i * m.d + j)] = x;
      z += double(x) * m.w_true[std::size_t(j)];
    }
    y[std::size_t(i)] = rng.uniform() < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f;
  }
}

constexpr char w1_magic[8] = {'U', 'V', 'P', 'W', '1', 'D', 'A', '1'};

}  // namespace detail

/// Draws the data set from the seed.
inline W1Data make_w1_data(std::int64_t n_train = W1Data::default_train,
                           std::int64_t n_test = W1Data::default_test,
                           std::int64_t d = W1Data::default_d,
                           std::uint64_t seed = W1Data::default_seed) {
  W1Data m;
  m.n_train = n_train;
  m.n_test = n_test;
  m.d = d;
  uvp::Rng rng(seed);
  m.w_true.resize(std::size_t(d));
  for (auto& w : m.w_true) w = rng.normal() * 2.0 / std::sqrt(double(d));
  detail::fill_rows(rng, m, n_train, m.X_train, m.y_train);
  detail::fill_rows(rng, m, n_test, m.X_test, m.y_test);
  return m;
}

/// Reads the data set from `path` when it holds one of the requested size; otherwise draws it
/// and writes it there (when `path` is not empty), so that a second program reads exactly the
/// same floats whatever its compiler flags (FMA contraction could otherwise change a label).
/// The path comes from the environment variable UVP_W1_DATA when set.
inline W1Data load_or_make_w1_data(std::string path = "") {
  if (path.empty()) {
    if (const char* env = std::getenv("UVP_W1_DATA")) path = env;
  }
  const std::int64_t n_train = W1Data::default_train, n_test = W1Data::default_test,
                     d = W1Data::default_d;
  auto read_all = [](std::FILE* f, std::vector<float>& v, std::size_t n) {
    v.resize(n);
    return std::fread(v.data(), sizeof(float), n, f) == n;
  };
  if (!path.empty()) {
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
      char magic[8];
      std::int64_t dims[3];
      W1Data m;
      bool ok = std::fread(magic, 1, 8, f) == 8 &&
                std::string(magic, 8) == std::string(detail::w1_magic, 8) &&
                std::fread(dims, sizeof dims, 1, f) == 1 && dims[0] == n_train &&
                dims[1] == n_test && dims[2] == d;
      if (ok) {
        m.n_train = n_train;
        m.n_test = n_test;
        m.d = d;
        ok = read_all(f, m.X_train, std::size_t(n_train * d)) &&
             read_all(f, m.y_train, std::size_t(n_train)) &&
             read_all(f, m.X_test, std::size_t(n_test * d)) &&
             read_all(f, m.y_test, std::size_t(n_test));
      }
      std::fclose(f);
      if (ok) return m;
    }
  }
  W1Data m = make_w1_data(n_train, n_test, d);
  if (!path.empty()) {
    const std::string tmp = path + ".tmp";
    if (std::FILE* f = std::fopen(tmp.c_str(), "wb")) {
      const std::int64_t dims[3] = {n_train, n_test, d};
      bool ok = std::fwrite(detail::w1_magic, 1, 8, f) == 8 && std::fwrite(dims, sizeof dims, 1, f) == 1;
      for (const auto* v : {&m.X_train, &m.y_train, &m.X_test, &m.y_test})
        ok = ok && std::fwrite(v->data(), sizeof(float), v->size(), f) == v->size();
      ok = std::fclose(f) == 0 && ok;
      if (ok) std::rename(tmp.c_str(), path.c_str());  // atomic: a reader never sees half a file
      else std::remove(tmp.c_str());
    }
  }
  return m;
}

}  // namespace uvp_bench
