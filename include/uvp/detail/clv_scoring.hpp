// SPDX-License-Identifier: Apache-2.0
// BG/NBD discounted expected purchases of every customer, computed once per distinct (x, t_x, T).
#pragma once

#include <cstdint>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/clv_patterns.hpp"

namespace uvp::detail {

/// For each customer i of (f, r, T): alive[i] = P(alive), expected[i] = E[Y(t.back()) | .] and
/// discounted[i] = sum_k (E[Y(t_k) | .] - E[Y(t_{k-1}) | .]) discount[k] (t_{-1} = 0), the K
/// cumulative expectations sharing one hypergeometric series. When many customers share a pattern
/// (see group_customer_patterns) each pattern is computed once and copied to its customers; the
/// values are the same either way. OpenMP-parallel; each value depends only on its own inputs.
inline void bgnbd_discounted_purchases(const BgNbdParams& p, const std::vector<double>& t,
                                       const std::vector<double>& discount, const ConstVectorRef<double>& f,
                                       const ConstVectorRef<double>& r, const ConstVectorRef<double>& T, double* alive,
                                       double* expected, double* discounted) {
  const int K = static_cast<int>(t.size());
  auto one = [&](double x, double tx, double age, double* cum, double& a, double& e, double& d) {
    bgnbd_conditional_expected(p, t.data(), K, x, tx, age, cum, &a);
    double value = 0, prev = 0;
    for (int k = 0; k < K; ++k) {
      value += (cum[k] - prev) * discount[static_cast<std::size_t>(k)];
      prev = cum[k];
    }
    e = prev;
    d = value;
  };
  const index n = f.size();
  CustomerPatterns pat;
  const bool grouped = group_customer_patterns(f, r, T, nullptr, pat, true);
  const index m = grouped ? pat.size() : n;
  std::vector<double> pa, pe, pd;  // per pattern
  if (grouped) {
    pa.resize(static_cast<std::size_t>(m));
    pe.resize(static_cast<std::size_t>(m));
    pd.resize(static_cast<std::size_t>(m));
  }
#if defined(_OPENMP)
#pragma omp parallel if (m > 2048)
#endif
  {
    std::vector<double> cum(static_cast<std::size_t>(K));
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 512)
#endif
    for (index i = 0; i < m; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (grouped)
        one(pat.frequency[u], pat.recency[u], pat.T[u], cum.data(), pa[u], pe[u], pd[u]);
      else
        one(f[i], r[i], T[i], cum.data(), alive[i], expected[i], discounted[i]);
    }
  }
  if (!grouped) return;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 16384)
#endif
  for (index i = 0; i < n; ++i) {
    const std::uint32_t k = pat.of_customer[static_cast<std::size_t>(i)];
    alive[i] = pa[k];
    expected[i] = pe[k];
    discounted[i] = pd[k];
  }
}

}  // namespace uvp::detail
