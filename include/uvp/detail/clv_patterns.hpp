// SPDX-License-Identifier: Apache-2.0
// Customers grouped by their distinct (frequency, recency, T): the BTYD models' work per pattern, not per customer.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <algorithm>
#include <vector>

#include "uvp/core/config.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::detail {

/// Summaries built from a transaction log are in whole days, so many customers share one
/// (x, t_x, T): 10 million customers observed for a year have a few hundred thousand distinct
/// patterns. The BG/NBD and Pareto/NBD likelihoods and predictions depend on a customer only
/// through that triple, so fits (weighted by the customers per pattern) and scores work per pattern.
struct CustomerPatterns {
  std::vector<double> frequency, recency, T;
  std::vector<double> weight;              ///< summed weights (1 per customer when unweighted) of each pattern
  std::vector<std::uint32_t> of_customer;  ///< pattern of each customer (when asked for)

  index size() const noexcept { return static_cast<index>(frequency.size()); }
};

/// Grouping pays for itself only on large data sets with repeated patterns.
inline constexpr index kMinCustomersToGroup = index(1) << 16;

/// Open-addressing hash table of (x, t_x, T) keys stored in the slots (one cache line per probe),
/// numbering the keys in order of insertion.
class PatternTable {
 public:
  PatternTable() : slots_(std::size_t(1) << 12), mask_(slots_.size() - 1) {}

  static std::uint64_t hash(double x, double tx, double t) noexcept {
    // Whole numbers and day counts differ only in their high bits: mix them all into the low ones.
    std::uint64_t h = bits(x) ^ rotl(bits(tx), 21) ^ rotl(bits(t), 42);
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;  // MurmurHash3's fmix64
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
  }
  void prefetch(std::uint64_t h) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(&slots_[static_cast<std::size_t>(h) & mask_]);
#else
    (void)h;
#endif
  }
  /// The number of the key (x, t_x, T) with hash h, inserted if new.
  std::uint32_t find_or_insert(double x, double tx, double t, std::uint64_t h) {
    std::size_t s = static_cast<std::size_t>(h) & mask_;
    for (;; s = (s + 1) & mask_) {
      const Slot& e = slots_[s];
      if (e.id == 0) break;
      if (e.x == x && e.tx == tx && e.T == t) return e.id - 1;
    }
    const auto id = static_cast<std::uint32_t>(x_.size());
    slots_[s] = {x, tx, t, id + 1};
    x_.push_back(x);
    tx_.push_back(tx);
    T_.push_back(t);
    if (2 * x_.size() > slots_.size()) rehash();  // keep the load under 1/2
    return id;
  }
  std::size_t size() const noexcept { return x_.size(); }
  const std::vector<double>& x() const noexcept { return x_; }
  const std::vector<double>& tx() const noexcept { return tx_; }
  const std::vector<double>& T() const noexcept { return T_; }

 private:
  struct Slot {
    double x = 0, tx = 0, T = 0;
    std::uint32_t id = 0;  // key number + 1; 0 = empty
  };
  static std::uint64_t rotl(std::uint64_t v, int k) noexcept { return (v << k) | (v >> (64 - k)); }
  static std::uint64_t bits(double v) noexcept {
    std::uint64_t u;
    v += 0.0;  // -0 and +0 are one key
    std::memcpy(&u, &v, sizeof u);
    return u;
  }
  void rehash() {
    slots_.assign(2 * slots_.size(), Slot{});
    mask_ = slots_.size() - 1;
    for (std::size_t j = 0; j < x_.size(); ++j) {
      std::size_t s = static_cast<std::size_t>(hash(x_[j], tx_[j], T_[j])) & mask_;
      while (slots_[s].id != 0) s = (s + 1) & mask_;
      slots_[s] = {x_[j], tx_[j], T_[j], static_cast<std::uint32_t>(j + 1)};
    }
  }
  std::vector<Slot> slots_;
  std::size_t mask_;
  std::vector<double> x_, tx_, T_;
};

/// Groups the customers (f, r, T, optional weights w) into distinct patterns, numbered in order
/// of first appearance. Returns false - and the caller works per customer - when there are fewer
/// than kMinCustomersToGroup customers, more than max_fraction * n distinct patterns, or over 90%
/// new patterns among the first 4,096 or more customers of a chunk (continuous data: nothing to
/// gain; the pass stops as soon as that is clear). The data are assumed checked (finite values).
///
/// The customers are cut into a fixed number of chunks, grouped in parallel (OpenMP) each into
/// its own table, and the chunks' patterns merged in chunk order: the numbering is the serial
/// first-appearance one and the weights are summed in a fixed order, whatever the thread count.
inline bool group_customer_patterns(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                                    const ConstVectorRef<double>& T, const double* w, CustomerPatterns& out,
                                    bool map_customers, double max_fraction = 0.25) {
  const index n = f.size();
  if (n < kMinCustomersToGroup || n >= (index(1) << 32)) return false;
  const auto limit = static_cast<std::size_t>(max_fraction * static_cast<double>(n));
  constexpr int chunks = 8;
  std::vector<std::uint32_t> local_id(map_customers ? static_cast<std::size_t>(n) : 0);
  struct Chunk {
    std::vector<double> x, tx, T, weight;
  };
  std::vector<Chunk> parts(chunks);
  bool too_many = false;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1)
#endif
  for (int c = 0; c < chunks; ++c) {
    const index b = n * c / chunks, e = n * (c + 1) / chunks;
    bool stop = false;
#if defined(_OPENMP)
#pragma omp atomic read
#endif
    stop = too_many;
    if (stop) continue;
    PatternTable table;
    std::vector<double> weight;
    constexpr index ahead = 16;  // hash and prefetch the slot this many customers ahead
    std::uint64_t hs[ahead];
    for (index i = b; i < std::min(e, b + ahead); ++i) {
      hs[i - b] = PatternTable::hash(f[i], r[i], T[i]);
      table.prefetch(hs[i - b]);
    }
    for (index i = b; i < e; ++i) {
      const std::uint64_t h = hs[(i - b) % ahead];
      if (i + ahead < e) {
        const std::uint64_t h2 = PatternTable::hash(f[i + ahead], r[i + ahead], T[i + ahead]);
        hs[(i - b) % ahead] = h2;
        table.prefetch(h2);
      }
      const std::uint32_t k = table.find_or_insert(f[i], r[i], T[i], h);
      if (k == weight.size()) {
        // Continuous data show themselves early (nearly every customer new): stop there, not
        // after hashing everyone; the merge below applies the limit to the whole.
        const auto seen = static_cast<std::size_t>(i - b);
        if (weight.size() >= limit || (seen >= 4096 && 10 * weight.size() > 9 * seen)) {
          stop = true;
          break;
        }
        weight.push_back(0.0);
      }
      weight[k] += w ? w[i] : 1.0;
      if (map_customers) local_id[static_cast<std::size_t>(i)] = k;
    }
    Chunk& part = parts[static_cast<std::size_t>(c)];
    if (stop) {
#if defined(_OPENMP)
#pragma omp atomic write
#endif
      too_many = true;
    }
    part.x = table.x();
    part.tx = table.tx();
    part.T = table.T();
    part.weight = std::move(weight);
  }
  if (too_many) return false;
  // Merge in chunk order; remap[c][j] = global number of chunk c's pattern j.
  PatternTable global;
  std::vector<std::vector<std::uint32_t>> remap(chunks);
  out = CustomerPatterns{};
  for (int c = 0; c < chunks; ++c) {
    const Chunk& part = parts[static_cast<std::size_t>(c)];
    auto& map = remap[static_cast<std::size_t>(c)];
    map.resize(part.weight.size());
    for (std::size_t j = 0; j < part.weight.size(); ++j) {
      const std::uint32_t k =
          global.find_or_insert(part.x[j], part.tx[j], part.T[j], PatternTable::hash(part.x[j], part.tx[j], part.T[j]));
      if (k == out.weight.size()) out.weight.push_back(0.0);
      out.weight[k] += part.weight[j];
      map[j] = k;
    }
    if (out.weight.size() > limit) return false;
  }
  out.frequency = global.x();
  out.recency = global.tx();
  out.T = global.T();
  if (map_customers) {
    out.of_customer = std::move(local_id);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (int c = 0; c < chunks; ++c) {
      const auto& map = remap[static_cast<std::size_t>(c)];
      for (index i = n * c / chunks; i < n * (c + 1) / chunks; ++i)
        out.of_customer[static_cast<std::size_t>(i)] = map[out.of_customer[static_cast<std::size_t>(i)]];
    }
  }
  return true;
}

/// A likelihood (BgNbdLikelihood-like: constructed from frequency, recency, T, weights) over the
/// distinct patterns of the customers, or over the customers when grouping does not pay.
template <class Likelihood>
Likelihood grouped_likelihood(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                              const ConstVectorRef<double>& T, const double* w) {
  CustomerPatterns pat;
  if (!group_customer_patterns(f, r, T, w, pat, false)) return Likelihood(f, r, T, w);
  using Map = Eigen::Map<const Vector<double>>;
  const index m = pat.size();
  return Likelihood(Map(pat.frequency.data(), m), Map(pat.recency.data(), m), Map(pat.T.data(), m),
                    pat.weight.data());
}

/// out[i] = fn(f[i], r[i], T[i]) for every customer, fn called once per distinct pattern when
/// grouping pays (see group_customer_patterns), else once per customer; OpenMP-parallel. fn must
/// depend only on its arguments (a model's prediction for one history) and not throw.
template <class F>
Vector<double> map_customer_patterns(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                                     const ConstVectorRef<double>& T, F&& fn) {
  const index n = f.size();
  Vector<double> out(n);
  CustomerPatterns pat;
  if (!group_customer_patterns(f, r, T, nullptr, pat, true)) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1024) if (n > 4096)
#endif
    for (index i = 0; i < n; ++i) out[i] = fn(f[i], r[i], T[i]);
    return out;
  }
  const index m = pat.size();
  std::vector<double> value(static_cast<std::size_t>(m));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 256) if (m > 1024)
#endif
  for (index k = 0; k < m; ++k) {
    const auto u = static_cast<std::size_t>(k);
    value[u] = fn(pat.frequency[u], pat.recency[u], pat.T[u]);
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (index i = 0; i < n; ++i) out[i] = value[pat.of_customer[static_cast<std::size_t>(i)]];
  return out;
}

/// The customers (only those with frequency > 0 when positive_only) in increasing frequency,
/// ties in index order - a stable sort - by counting when the frequencies are whole numbers of
/// moderate size (O(n), what the likelihoods' per-frequency segments need), else std::stable_sort.
inline std::vector<index> order_by_frequency(const ConstVectorRef<double>& f, bool positive_only) {
  const index n = f.size();
  std::vector<index> order;
  double top = 0;
  bool whole = true;
  for (index i = 0; i < n; ++i) {
    top = std::max(top, f[i]);
    whole = whole && f[i] >= 0 && f[i] == std::floor(f[i]);
  }
  if (!whole || top > 2.0 * static_cast<double>(n) + 1024) {
    for (index i = 0; i < n; ++i)
      if (!positive_only || f[i] > 0) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](index u, index v) { return f[u] < f[v]; });
    return order;
  }
  std::vector<index> start(static_cast<std::size_t>(top) + 2, 0);
  for (index i = 0; i < n; ++i) ++start[static_cast<std::size_t>(f[i]) + 1];
  if (positive_only) start[1] = 0;  // drop frequency 0
  for (std::size_t v = 1; v < start.size(); ++v) start[v] += start[v - 1];
  order.resize(static_cast<std::size_t>(start.back()));
  for (index i = 0; i < n; ++i) {
    const auto v = static_cast<std::size_t>(f[i]);
    if (positive_only && v == 0) continue;
    order[static_cast<std::size_t>(start[v]++)] = i;
  }
  return order;
}

}  // namespace uvp::detail
