// SPDX-License-Identifier: Apache-2.0
// One const fitted model serves many threads: 8 threads scoring at once get exactly the serial
// results (run under ThreadSanitizer by the tsan preset).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/models/logistic_regression.hpp"

TEST_CASE("const LogisticRegression and LinearRegression score concurrently, bit-identical to serial") {
  uvp::Rng rng(11);
  const uvp::index n = 2000, d = 16;
  uvp::Matrix<float> X(n, d);
  for (uvp::index i = 0; i < n; ++i)
    for (uvp::index j = 0; j < d; ++j) X(i, j) = float(rng.normal());
  uvp::LogisticRegression<float> logreg(d);
  uvp::LinearRegression<float> linreg(d);
  for (uvp::index j = 0; j < d; ++j) {
    logreg.coef()[j] = float(rng.normal());
    linreg.coef()[j] = float(rng.normal());
  }
  logreg.set_intercept(0.25f);
  linreg.set_intercept(-1.f);
  const auto& clog = logreg;
  const auto& clin = linreg;
  const uvp::Vector<float> p_serial = clog.predict_proba(X);
  const uvp::Vector<float> y_serial = clin.predict(X);

  constexpr int threads = 8;
  std::vector<uvp::Vector<float>> p(threads, uvp::Vector<float>(n)), y(threads, uvp::Vector<float>(n));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        // Rows in chunks, the way a service scores requests, into preallocated outputs.
        for (uvp::index s = 0; s < n; s += 100) {
          clog.predict_proba(X.middleRows(s, 100), p[std::size_t(t)].segment(s, 100));
          clin.predict(X.middleRows(s, 100), y[std::size_t(t)].segment(s, 100));
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) {
    CHECK(p[std::size_t(t)] == p_serial);
    CHECK(y[std::size_t(t)] == y_serial);
  }
}
