// SPDX-License-Identifier: Apache-2.0
// Concurrent use of fitted CLV models from several threads (run under ThreadSanitizer by the tsan preset).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/lifetime_value.hpp"

TEST_CASE("const CLV models can be used from many threads at once; fits in parallel do not interfere") {
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd bg({0.243, 4.414, 0.793, 2.426});
  const uvp::GammaGamma gg({6.25, 3.74, 15.44});
  const auto want_e = bg.conditional_expected_purchases(39, d.x, d.tx, d.T);
  const auto want_clv = uvp::customer_lifetime_value(bg, gg, d.x, d.tx, d.T, d.zbar);
  const double want_ll = uvp::bgnbd_log_likelihood({0.243, 4.414, 0.793, 2.426}, d.x, d.tx, d.T);
  uvp::BgNbd reference;
  reference.fit(d.x, d.tx, d.T);

  constexpr int n_threads = 4;
  std::vector<int> ok(n_threads, 0);
  std::vector<uvp::BgNbdParams> fitted(n_threads);
  std::vector<std::thread> pool;
  for (int k = 0; k < n_threads; ++k)
    pool.emplace_back([&, k] {
      const auto e = bg.conditional_expected_purchases(39, d.x, d.tx, d.T);
      const auto clv = uvp::customer_lifetime_value(bg, gg, d.x, d.tx, d.T, d.zbar);
      const double ll = uvp::bgnbd_log_likelihood({0.243, 4.414, 0.793, 2.426}, d.x, d.tx, d.T);
      uvp::BgNbd own;  // log_gamma / digamma keep no global state (std::lgamma writes signgam)
      own.fit(d.x, d.tx, d.T);
      fitted[static_cast<std::size_t>(k)] = own.params();
      ok[static_cast<std::size_t>(k)] = e == want_e && clv == want_clv && ll == want_ll;
    });
  for (auto& t : pool) t.join();
  for (int k = 0; k < n_threads; ++k) {
    CHECK(ok[static_cast<std::size_t>(k)] == 1);
    CHECK(fitted[static_cast<std::size_t>(k)].r == reference.params().r);
    CHECK(fitted[static_cast<std::size_t>(k)].b == reference.params().b);
  }
}
