// SPDX-License-Identifier: Apache-2.0
// Internals of the ranking metrics: orders binary-labelled scores per class (distinct-score
// counting for heavily tied scores, LSD radix sort otherwise).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "uvp/core/check.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/metrics/common.hpp"

#if defined(_OPENMP)
#define UVP_METRICS_OMP_(x) _Pragma(#x)
#else
#define UVP_METRICS_OMP_(x)
#endif

namespace uvp::detail {

template <class T>
struct score_bits;
template <>
struct score_bits<float> {
  using type = std::uint32_t;
};
template <>
struct score_bits<double> {
  using type = std::uint64_t;
};
/// The unsigned integer whose order is the order of the scores of type T.
template <class T>
using score_key_t = typename score_bits<T>::type;

/// Order-preserving map of a finite float/double onto unsigned integers (flip all bits of
/// negatives, set the sign bit of non-negatives). -0 is folded onto +0 first: they are one
/// score for sklearn (np.diff finds no step between them).
template <class T>
score_key_t<T> score_to_key(T x) noexcept {
  using K = score_key_t<T>;
  constexpr K sign = K(1) << (8 * sizeof(K) - 1);
  x += T(0);
  K u;
  std::memcpy(&u, &x, sizeof u);
  return (u & sign) ? K(~u) : K(u | sign);
}

template <class T>
T key_to_score(score_key_t<T> k) noexcept {
  using K = score_key_t<T>;
  constexpr K sign = K(1) << (8 * sizeof(K) - 1);
  const K u = (k & sign) ? K(k ^ sign) : K(~k);
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// A sort record of the weighted path: the key and the sample's weight travel together.
template <class K, class W>
struct WeightedKey {
  K key;
  W weight;
};

template <class K>
constexpr K record_key(K k) noexcept {
  return k;
}
template <class K, class W>
constexpr K record_key(const WeightedKey<K, W>& r) noexcept {
  return r.key;
}
template <class K>
constexpr double record_weight(K) noexcept {
  return 1.0;
}
template <class K, class W>
constexpr double record_weight(const WeightedKey<K, W>& r) noexcept {
  return double(r.weight);
}

/// LSD radix sort with 11-bit digits: 3 passes for float keys, 6 for double keys; a digit on
/// which all keys of a class agree is skipped (its pass would be the identity).
inline constexpr int radix_bits = 11;
inline constexpr index radix_size = index(1) << radix_bits;
template <class K>
inline constexpr int radix_digits = int((8 * sizeof(K) + radix_bits - 1) / radix_bits);

template <class K>
constexpr index radix_digit(K key, int d) noexcept {
  return index((key >> (d * radix_bits)) & K(radix_size - 1));
}

/// Below this many samples one thread sorts: the fork/join costs more than it saves.
inline constexpr index parallel_sort_min = index(1) << 17;

/// Chunks of at most 2^31 samples, at least one per thread.
inline int sort_chunks(index n, int threads) noexcept {
  return std::max(threads, int((n >> 31) + 1));
}

/// Scores of each class in ascending order (records of `Rec`: a key, or a key and a weight).
template <class Rec>
struct ClassSortedScores {
  const Rec* neg = nullptr;
  index n_neg = 0;
  const Rec* pos = nullptr;
  index n_pos = 0;
};

/// Two buffers of n records, kept between calls by whoever wants to reuse them.
template <class Rec>
class ScoreSortBuffers {
 public:
  void reserve(index n) {
    if (n <= capacity_) return;
    // new Rec[n] leaves trivial records uninitialised: no pass spent writing zeros.
    a_.reset(new Rec[std::size_t(n)]);
    b_.reset(new Rec[std::size_t(n)]);
    capacity_ = n;
  }
  Rec* a() const noexcept { return a_.get(); }
  Rec* b() const noexcept { return b_.get(); }

 private:
  std::unique_ptr<Rec[]> a_, b_;
  index capacity_ = 0;
};

/// Names the first bad label, score or weight (called once a fast pass has flagged one).
template <class T>
void raise_bad_score_input(const char* where, const T* y_true, const T* y_score,
                           const T* sample_weight, index n) {
  check_binary_labels(where, "y_true", y_true, n);
  check_finite(where, "y_score", y_score, n);
  if (sample_weight) check_sample_weight(where, sample_weight, n, n);
  raise<invalid_argument>(where, ": invalid input");  // not reached: a check above throws
}

/// Validates (labels in {0, 1}, finite scores, finite non-negative weights) and sorts the scores
/// of each class ascending, in one read for the checks and histograms plus one scatter per
/// non-trivial digit. `Rec` is score_key_t<T> (unweighted) or WeightedKey<score_key_t<T>, T>.
/// The result points into `buffers`.
template <class Rec, class T>
ClassSortedScores<Rec> sort_scores_by_class(const char* where, const T* y_true, const T* y_score,
                                            const T* sample_weight, index n,
                                            ScoreSortBuffers<Rec>& buffers) {
  using K = score_key_t<T>;
  constexpr bool weighted = !std::is_same_v<Rec, K>;
  constexpr int D = radix_digits<K>;
  constexpr index R = radix_size;
  constexpr index per_thread = 2 * D * R;  // [class][digit][bucket]

  const int nt = n >= parallel_sort_min ? std::max(num_threads(), 1) : 1;
  // 32-bit counters (half the cache footprint of 64-bit ones) need chunks below 2^32 samples.
  const int nc = sort_chunks(n, nt);
  std::vector<std::uint32_t> hist(std::size_t(nc) * per_thread, 0);
  std::vector<unsigned char> bad(std::size_t(nc), 0);
  const auto chunk_lo = [n, nc](int t) { return index(double(n) * t / nc); };
  const auto chunk_hi = [n, nc](int t) { return t + 1 == nc ? n : index(double(n) * (t + 1) / nc); };

  // Pass 1: validate and build every digit's histogram per class, per chunk.
  UVP_METRICS_OMP_(omp parallel for num_threads(nt) schedule(static))
  for (int t = 0; t < nc; ++t) {
    std::uint32_t* h = hist.data() + std::size_t(t) * per_thread;
    bool flag = false;
    for (index i = chunk_lo(t), e = chunk_hi(t); i < e; ++i) {
      const T s = y_score[i];
      const T l = y_true[i];
      flag |= !(l == T(0) || l == T(1)) | !std::isfinite(s);
      if constexpr (weighted) flag |= !(sample_weight[i] >= T(0)) | !std::isfinite(sample_weight[i]);
      const K k = score_to_key(s);
      std::uint32_t* hc = h + (l == T(1) ? D * R : 0);
      for (int d = 0; d < D; ++d) ++hc[d * R + radix_digit(k, d)];
    }
    bad[std::size_t(t)] = flag;
  }
  for (int t = 0; t < nc; ++t)
    if (bad[std::size_t(t)]) raise_bad_score_input(where, y_true, y_score, sample_weight, n);

  // Totals per class; a digit is active for a class unless all its keys share that digit.
  std::vector<index> total(std::size_t(per_thread), 0);
  for (int t = 0; t < nc; ++t)
    for (index j = 0; j < per_thread; ++j) total[std::size_t(j)] += hist[std::size_t(t * per_thread + j)];
  index count[2] = {0, 0};
  bool active[2][D];
  for (int c = 0; c < 2; ++c) {
    for (index b = 0; b < R; ++b) count[c] += total[std::size_t(c * D * R + b)];
    for (int d = 0; d < D; ++d) {
      active[c][d] = false;
      for (index b = 0; b < R; ++b) {
        const index v = total[std::size_t((c * D + d) * R + b)];
        if (v != 0 && v != count[c]) {
          active[c][d] = true;
          break;
        }
      }
    }
  }
  const index base[2] = {0, count[0]};

  buffers.reserve(n);
  Rec* const buf_a = buffers.a();
  Rec* const buf_b = buffers.b();

  // Pass 2: scatter from the inputs by the lowest digit active in either class (digit 0 when
  // no digit is: a plain split by class); each class lands in its own region of buf_a.
  int first = 0;
  while (first < D && !active[0][first] && !active[1][first]) ++first;
  if (first == D) first = 0;
  {
    std::vector<index> offset(std::size_t(nc) * 2 * R);
    for (int c = 0; c < 2; ++c) {
      index running = base[c];
      for (index b = 0; b < R; ++b)
        for (int t = 0; t < nc; ++t) {
          offset[std::size_t((t * 2 + c) * R + b)] = running;
          running += hist[std::size_t(t * per_thread + (c * D + first) * R + b)];
        }
    }
    UVP_METRICS_OMP_(omp parallel for num_threads(nt) schedule(static))
    for (int t = 0; t < nc; ++t) {
      index* o = offset.data() + std::size_t(t) * 2 * R;
      for (index i = chunk_lo(t), e = chunk_hi(t); i < e; ++i) {
        const K k = score_to_key(y_score[i]);
        const index slot = (y_true[i] == T(1) ? R : 0) + radix_digit(k, first);
        if constexpr (weighted)
          buf_a[o[slot]++] = Rec{k, sample_weight[i]};
        else
          buf_a[o[slot]++] = k;
      }
    }
  }

  // Remaining active digits, per class, ping-ponging between the two buffers.
  Rec* result[2] = {buf_a + base[0], buf_a + base[1]};
  for (int c = 0; c < 2; ++c) {
    const index m = count[c];
    Rec* src = buf_a + base[c];
    Rec* dst = buf_b + base[c];
    const int ntc = m >= parallel_sort_min ? nt : 1;
    const int ncc = sort_chunks(m, ntc);
    std::vector<index> local(std::size_t(ncc) * R);
    for (int d = first + 1; d < D; ++d) {
      if (!active[c][d]) continue;
      const auto lo = [m, ncc](int t) { return index(double(m) * t / ncc); };
      const auto hi = [m, ncc](int t) { return t + 1 == ncc ? m : index(double(m) * (t + 1) / ncc); };
      if (ncc == 1) {
        const index* tot = total.data() + (c * D + d) * R;
        index running = 0;
        for (index b = 0; b < R; ++b) {
          local[std::size_t(b)] = running;
          running += tot[b];
        }
      } else {
        std::fill(local.begin(), local.end(), index(0));
        UVP_METRICS_OMP_(omp parallel for num_threads(ntc) schedule(static))
        for (int t = 0; t < ncc; ++t) {
          index* h = local.data() + std::size_t(t) * R;
          for (index i = lo(t), e = hi(t); i < e; ++i) ++h[radix_digit(record_key(src[i]), d)];
        }
        index running = 0;
        for (index b = 0; b < R; ++b)
          for (int t = 0; t < ncc; ++t) {
            const index v = local[std::size_t(t * R + b)];
            local[std::size_t(t * R + b)] = running;
            running += v;
          }
      }
      UVP_METRICS_OMP_(omp parallel for num_threads(ntc) schedule(static))
      for (int t = 0; t < ncc; ++t) {
        index* o = local.data() + std::size_t(t) * R;
        for (index i = lo(t), e = hi(t); i < e; ++i) {
          const Rec r = src[i];
          dst[o[radix_digit(record_key(r), d)]++] = r;
        }
      }
      std::swap(src, dst);
    }
    result[c] = src;
  }
  return {result[0], count[0], result[1], count[1]};
}

/// The samples of one distinct score: how many are negative / positive.
template <class K>
struct ScoreGroup {
  K key;
  index neg;
  index pos;
};

/// Unweighted scores reduced to their distinct values, ascending, with per-class counts.
template <class K>
struct GroupedScores {
  std::vector<ScoreGroup<K>> groups;
  index n_neg = 0;
  index n_pos = 0;
};

/// Heavily tied scores (rounded probabilities, a few thousand distinct values among millions)
/// are counted in a small open-addressing table that stays in L2: one read of the input instead
/// of the radix sort's four passes. The table gives up past this many distinct scores, where the
/// radix sort is the better tool.
inline constexpr index distinct_score_limit = index(1) << 16;
/// Below this many samples the radix sort is used directly.
inline constexpr index distinct_count_min = index(1) << 15;

/// Open-addressing counts per distinct key (key 0 marks an empty slot: score_to_key never
/// returns 0 or ~0 for a finite score, those are NaN bit patterns). Counts are 32-bit: callers
/// feed each table at most 2^31 samples.
template <class K>
class ScoreCountTable {
 public:
  struct Slot {
    K key;
    std::uint32_t count[2];
  };

  ScoreCountTable() { rehash(12); }

  /// Counts one sample of class c (0 or 1); false once more than distinct_score_limit keys.
  bool add(K key, int c) {
    std::size_t h = slot_of(key);
    for (;;) {
      Slot& s = slots_[h];
      if (s.key == key) {
        ++s.count[c];
        return true;
      }
      if (s.key == 0) return insert(h, key, c);
      h = (h + 1) & mask_;
    }
  }

  const std::vector<Slot>& slots() const noexcept { return slots_; }

 private:
  std::size_t slot_of(K key) const noexcept {
    // Fibonacci hashing: rounded scores differ in a few mantissa bits; the product spreads them.
    return std::size_t((std::uint64_t(key) * 0x9e3779b97f4a7c15ULL) >> (64 - bits_));
  }
  /// A new key (rare: once per distinct score): grow at load 1/2, then place it.
  bool insert(std::size_t h, K key, int c) {
    if (size_ + 1 > distinct_score_limit) return false;
    if (2 * (size_ + 1) > index(slots_.size())) {
      rehash(bits_ + 1);
      h = slot_of(key);
      while (slots_[h].key != 0) h = (h + 1) & mask_;
    }
    slots_[h] = Slot{key, {0, 0}};
    ++slots_[h].count[c];
    ++size_;
    return true;
  }
  void rehash(int bits) {
    std::vector<Slot> old(std::size_t(1) << bits, Slot{0, {0, 0}});
    old.swap(slots_);
    bits_ = bits;
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.key == 0) continue;
      std::size_t h = slot_of(s.key);
      while (slots_[h].key != 0) h = (h + 1) & mask_;
      slots_[h] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  index size_ = 0;
  int bits_ = 0;
};

/// Validates like sort_scores_by_class and counts the samples of every distinct score; returns
/// false (and `out` unspecified) when there are more than distinct_score_limit distinct scores.
template <class T>
bool group_distinct_scores(const char* where, const T* y_true, const T* y_score, index n,
                           GroupedScores<score_key_t<T>>& out) {
  using K = score_key_t<T>;
  const int nt = n >= parallel_sort_min ? std::max(num_threads(), 1) : 1;
  const int nc = sort_chunks(n, nt);
  std::vector<ScoreCountTable<K>> tables{std::size_t(nc)};
  std::vector<unsigned char> bad(std::size_t(nc), 0), full(std::size_t(nc), 0);
  UVP_METRICS_OMP_(omp parallel for num_threads(nt) schedule(static))
  for (int t = 0; t < nc; ++t) {
    ScoreCountTable<K>& table = tables[std::size_t(t)];
    const index lo = index(double(n) * t / nc), hi = t + 1 == nc ? n : index(double(n) * (t + 1) / nc);
    bool flag = false;
    for (index i = lo; i < hi; ++i) {
      const T s = y_score[i];
      const T l = y_true[i];
      flag |= !(l == T(0) || l == T(1)) | !std::isfinite(s);
      if (!table.add(score_to_key(s), l == T(1) ? 1 : 0)) {
        full[std::size_t(t)] = 1;
        break;
      }
    }
    bad[std::size_t(t)] = flag;
  }
  for (int t = 0; t < nc; ++t)
    if (bad[std::size_t(t)]) raise_bad_score_input(where, y_true, y_score, static_cast<const T*>(nullptr), n);
  for (int t = 0; t < nc; ++t)
    if (full[std::size_t(t)]) return false;

  std::vector<ScoreGroup<K>> all;
  for (const auto& table : tables)
    for (const auto& s : table.slots())
      if (s.key != 0) all.push_back(ScoreGroup<K>{s.key, index(s.count[0]), index(s.count[1])});
  std::sort(all.begin(), all.end(), [](const ScoreGroup<K>& a, const ScoreGroup<K>& b) { return a.key < b.key; });
  out.groups.clear();
  out.n_neg = out.n_pos = 0;
  for (const auto& g : all) {
    if (!out.groups.empty() && out.groups.back().key == g.key) {
      out.groups.back().neg += g.neg;
      out.groups.back().pos += g.pos;
    } else {
      out.groups.push_back(g);
    }
    out.n_neg += g.neg;
    out.n_pos += g.pos;
  }
  return true;
}

}  // namespace uvp::detail

#undef UVP_METRICS_OMP_
