// SPDX-License-Identifier: Apache-2.0
// W7's inputs, drawn the same way by uvp's benchmark and its LibTorch peer: Zipf-distributed ids
// into a 1,000,000 x 64 float table, an upstream gradient, and the bytes a step moves.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "uvp/core/random.hpp"

namespace uvp_bench {

inline constexpr std::int64_t w7_rows = 1000000;
inline constexpr std::int64_t w7_dim = 64;
inline constexpr std::int64_t w7_lookups = 100000;
inline constexpr double w7_zipf_exponent = 1.0;

/// Bytes one gather + gradient scatter moves, counted the same for every implementation: per
/// lookup, one table row read and one output row written (the gather), one upstream-gradient
/// row read and one gradient row written (the scatter): 4 x 100,000 x 64 x 4 B = 102.4 MB.
/// What an implementation really moves differs (duplicate ids hit the cache, LibTorch's sparse
/// backward stores d_out as the gradient's values without copying it); the figure is a work
/// count, so GB/s compare like with like.
inline constexpr double w7_bytes = 4.0 * double(w7_lookups) * double(w7_dim) * sizeof(float);

/// 100,000 ids: ranks drawn from Zipf(1.0) over 10^6 rows (P(rank k) proportional to
/// 1 / (k + 1)) by inverse CDF, mapped through a fixed random permutation so that the popular
/// rows lie spread over the table as in a real catalogue.
inline std::vector<std::int64_t> w7_ids() {
  uvp::Rng rng(7);
  std::vector<double> cdf(static_cast<std::size_t>(w7_rows));
  double total = 0;
  for (std::int64_t k = 0; k < w7_rows; ++k) {
    total += std::pow(double(k + 1), -w7_zipf_exponent);
    cdf[static_cast<std::size_t>(k)] = total;
  }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(w7_rows));
  for (std::int64_t k = 0; k < w7_rows; ++k) perm[static_cast<std::size_t>(k)] = k;
  rng.shuffle(perm.begin(), perm.end());
  std::vector<std::int64_t> ids(static_cast<std::size_t>(w7_lookups));
  for (auto& id : ids) {
    const double u = rng.uniform() * total;
    auto rank = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
    rank = std::min<std::ptrdiff_t>(rank, w7_rows - 1);
    id = perm[static_cast<std::size_t>(rank)];
  }
  return ids;
}

/// The upstream gradient d_out (lookups x dim, row-major), uniform in [-1, 1).
inline std::vector<float> w7_d_out() {
  uvp::Rng rng(77);
  std::vector<float> g(static_cast<std::size_t>(w7_lookups * w7_dim));
  for (auto& x : g) x = float(rng.uniform(-1, 1));
  return g;
}

/// FNV-1a over the ids: both sides print it, so a reader sees that they used the same ids.
inline std::uint32_t w7_hash(const std::vector<std::int64_t>& ids) {
  std::uint32_t h = 2166136261u;
  for (std::int64_t id : ids)
    for (int b = 0; b < 8; ++b) {
      h ^= std::uint32_t((std::uint64_t(id) >> (8 * b)) & 0xff);
      h *= 16777619u;
    }
  return h;
}

/// Number of distinct ids (the rows a lazy optimizer step touches).
inline std::int64_t w7_distinct(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return std::int64_t(std::unique(ids.begin(), ids.end()) - ids.begin());
}

}  // namespace uvp_bench
