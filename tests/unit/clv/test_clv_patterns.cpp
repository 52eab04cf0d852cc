// SPDX-License-Identifier: Apache-2.0
// Tests of the grouping of customers by distinct (x, t_x, T): numbering, weights, the grouped BG/NBD
// likelihood and scores against the per-customer ones, independence from the thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <tuple>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/detail/clv_patterns.hpp"
#include "uvp/detail/clv_scoring.hpp"

namespace {

const uvp::BgNbdParams kTruth{0.243, 4.414, 0.793, 2.426};

// BG/NBD customers with recency in whole days and T in whole weeks (in weeks), like a summary of a log.
uvp::SimulatedCustomers day_customers(uvp::index n) {
  uvp::Vector<double> T(n);
  for (uvp::index i = 0; i < n; ++i)
    T[i] = static_cast<double>(189 + 7 * uvp::detail::customer_rng(3, i).uniform_int(12)) / 7;
  auto s = uvp::simulate_customers(kTruth, T, std::uint64_t{11});
  for (uvp::index i = 0; i < n; ++i) s.recency[i] = std::floor(s.recency[i] * 7) / 7;
  return s;
}

}  // namespace

TEST_CASE("group_customer_patterns numbers the distinct (x, t_x, T) by first appearance, for any thread count") {
  const uvp::index n = 70000;
  const auto s = day_customers(n);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (uvp::index i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = 0.5 + static_cast<double>(i % 3);
  // Reference: a map from the triple to (first index, summed weight).
  std::map<std::tuple<double, double, double>, std::size_t> number;
  std::vector<std::tuple<double, double, double>> first;
  std::vector<double> weight;
  std::vector<std::uint32_t> of;
  for (uvp::index i = 0; i < n; ++i) {
    const auto key = std::make_tuple(s.frequency[i], s.recency[i], s.T[i]);
    auto [it, inserted] = number.emplace(key, first.size());
    if (inserted) {
      first.push_back(key);
      weight.push_back(0.0);
    }
    weight[it->second] += w[static_cast<std::size_t>(i)];
    of.push_back(static_cast<std::uint32_t>(it->second));
  }
  REQUIRE(first.size() < static_cast<std::size_t>(n) / 4);  // day data: grouping applies
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    uvp::ThreadCountGuard guard(threads);
    uvp::detail::CustomerPatterns pat;
    REQUIRE(uvp::detail::group_customer_patterns(s.frequency, s.recency, s.T, w.data(), pat, true));
    REQUIRE(pat.size() == static_cast<uvp::index>(first.size()));
    CHECK(pat.of_customer == of);
    int bad = 0;
    for (std::size_t k = 0; k < first.size(); ++k) {
      if (std::make_tuple(pat.frequency[k], pat.recency[k], pat.T[k]) != first[k]) ++bad;
      if (std::abs(pat.weight[k] - weight[k]) > 1e-9 * weight[k]) ++bad;
    }
    CHECK(bad == 0);
  }
  // Not worth it: small data, or continuous values (every customer its own pattern).
  uvp::detail::CustomerPatterns pat;
  const uvp::index small = uvp::detail::kMinCustomersToGroup - 1;
  CHECK_FALSE(uvp::detail::group_customer_patterns(s.frequency.head(small), s.recency.head(small), s.T.head(small),
                                                   nullptr, pat, false));
  const auto c = uvp::simulate_customers(kTruth, uvp::Vector<double>::Constant(n, 39.0), std::uint64_t{5});
  uvp::Vector<double> T = c.T;
  for (uvp::index i = 0; i < n; ++i) T[i] += 1e-3 * static_cast<double>(i) / static_cast<double>(n);
  CHECK_FALSE(uvp::detail::group_customer_patterns(c.frequency, c.recency, T, nullptr, pat, false));
}

TEST_CASE("the grouped BG/NBD likelihood and scores equal the per-customer ones") {
  const uvp::index n = 70000;
  const auto s = day_customers(n);
  const uvp::detail::BgNbdLikelihood each(s.frequency, s.recency, s.T, nullptr);
  const auto grouped = uvp::detail::grouped_likelihood<uvp::detail::BgNbdLikelihood>(s.frequency, s.recency, s.T,
                                                                                      nullptr);
  REQUIRE(grouped.size() < n / 4);
  CHECK(grouped.total_weight() == n);
  for (const uvp::BgNbdParams& p : {kTruth, uvp::BgNbdParams{1.0, 2.0, 0.5, 3.0}}) {
    double g1[4], g2[4];
    const double l1 = each.evaluate(p, g1), l2 = grouped.evaluate(p, g2);
    CHECK(l2 == doctest::Approx(l1).epsilon(1e-12));
    for (int k = 0; k < 4; ++k) CHECK(std::abs(g2[k] - g1[k]) <= 1e-10 * static_cast<double>(n));  // sums of n terms
  }
  // A fit through BgNbd::fit (grouped) lands where the per-customer objective is stationary.
  uvp::BgNbd bg;
  REQUIRE(bg.fit(s.frequency, s.recency, s.T).converged);
  double g[4];
  each.evaluate(bg.params(), g);
  const double pv[4] = {bg.params().r, bg.params().alpha, bg.params().a, bg.params().b};
  for (int k = 0; k < 4; ++k) CHECK(std::abs(g[k] * pv[k] / static_cast<double>(n)) < 1e-7);

  // Scores: each customer's value is exactly the per-customer computation, whatever the threads.
  const std::vector<double> t{4.345, 8.69, 13.035}, discount{0.99, 0.98, 0.97};
  std::vector<double> want_alive(static_cast<std::size_t>(n)), want_exp(want_alive.size()),
      want_disc(want_alive.size());
  for (uvp::index i = 0; i < n; ++i) {
    double cum[3], alive = 0;
    uvp::detail::bgnbd_conditional_expected(kTruth, t.data(), 3, s.frequency[i], s.recency[i], s.T[i], cum, &alive);
    const auto u = static_cast<std::size_t>(i);
    want_alive[u] = alive;
    want_exp[u] = cum[2];
    want_disc[u] = 0;
    double prev = 0;
    for (int k = 0; k < 3; ++k) {
      want_disc[u] += (cum[k] - prev) * discount[static_cast<std::size_t>(k)];
      prev = cum[k];
    }
  }
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    uvp::ThreadCountGuard guard(threads);
    std::vector<double> alive(want_alive.size()), e(want_alive.size()), d(want_alive.size());
    uvp::detail::bgnbd_discounted_purchases(kTruth, t, discount, s.frequency, s.recency, s.T, alive.data(), e.data(),
                                            d.data());
    CHECK(alive == want_alive);
    CHECK(e == want_exp);
    CHECK(d == want_disc);
  }

  // Any per-history function, mapped over the patterns: the per-customer values.
  const auto fn = [](double x, double tx, double TT) { return x * 1000 + tx * 7 + TT; };
  const uvp::Vector<double> mapped = uvp::detail::map_customer_patterns(s.frequency, s.recency, s.T, fn);
  int bad = 0;
  for (uvp::index i = 0; i < n; ++i) bad += mapped[i] != fn(s.frequency[i], s.recency[i], s.T[i]);
  CHECK(bad == 0);
}
