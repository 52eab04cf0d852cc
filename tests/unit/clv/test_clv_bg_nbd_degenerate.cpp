// SPDX-License-Identifier: Apache-2.0
// Tests of BgNbd::fit on data that cannot identify the parameters: refused or reported, never a
// silent "converged"; boundary estimates warned about; the multi-start fallback.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"

using uvp::BgNbd;
using uvp::BgNbdFitOptions;
using uvp::BgNbdParams;
using uvp::Vector;

namespace {

Vector<double> vec(std::vector<double> v) {
  return Eigen::Map<const Vector<double>>(v.data(), static_cast<Eigen::Index>(v.size()));
}

bool has_warning(const uvp::ClvFitResult& res, const std::string& part) {
  for (const auto& w : res.warnings)
    if (w.find(part) != std::string::npos) return true;
  return false;
}

// Every prediction of the model for the given customers is finite, P(alive) in [0, 1].
void check_predictions_finite(const BgNbd& m, const Vector<double>& x, const Vector<double>& tx,
                              const Vector<double>& T) {
  const auto pa = m.probability_alive(x, tx, T);
  const auto ce = m.conditional_expected_purchases(52, x, tx, T);
  CHECK(pa.allFinite());
  CHECK(ce.allFinite());
  CHECK(pa.minCoeff() >= 0);
  CHECK(pa.maxCoeff() <= 1);
  CHECK(ce.minCoeff() >= 0);
  CHECK(std::isfinite(m.expected_purchases(52)));
}

}  // namespace

TEST_CASE("BgNbd::fit refuses data without a repeat purchase (no estimate exists)") {
  // Before: "converged" with r -> 1e-7 and a, b left at the start.
  const Vector<double> x = vec({0, 0, 0, 0}), tx = vec({0, 0, 0, 0}), T = vec({10, 20, 30, 40});
  BgNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T), uvp::invalid_argument,
                               "uvp::BgNbd::fit: no customer has a repeat purchase (every frequency is 0)");
  CHECK_FALSE(m.is_fitted());
  // Also with a penalty (the estimate of the purchase rate is still 0) and with weights.
  BgNbdFitOptions pen;
  pen.penalizer = 0.1;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x, tx, T, pen), uvp::invalid_argument, "no customer has a repeat purchase");
  // A repeat buyer whose weight is 0 does not count.
  const Vector<double> x2 = vec({0, 3, 0}), tx2 = vec({0, 5, 0}), T2 = vec({10, 20, 30}), w2 = vec({1, 0, 2});
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(x2, tx2, T2, w2), uvp::invalid_argument, "no customer has a repeat purchase");
}

TEST_CASE("BgNbd::fit refuses data in which every T is 0") {
  // Before: "converged" at the starting point after 0 iterations.
  const Vector<double> z = vec({0, 0, 0});
  BgNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(z, z, z), uvp::invalid_argument, "uvp::BgNbd::fit: every customer has T = 0");
}

TEST_CASE("BgNbd::fit refuses one customer, or customers who all have the same history") {
  // The likelihood of identical customers is n times one customer's, which is linear in the
  // mixing distributions and so largest for point masses: r, alpha, a, b -> infinity. Before,
  // BFGS stopped somewhere on the way (r = 1.4e10) with a finite-looking estimate.
  BgNbd m;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({3}), vec({5}), vec({10})), uvp::invalid_argument,
                               "uvp::BgNbd::fit: there is only one customer (x = 3, t_x = 5, T = 10)");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({3, 3, 3, 3}), vec({5, 5, 5, 5}), vec({10, 10, 10, 10})),
                               uvp::invalid_argument, "all 4 customers have the same history");
  // Two different histories, but one of them has weight 0.
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(vec({3, 1}), vec({5, 2}), vec({10, 10}), vec({2, 0})), uvp::invalid_argument,
                               "there is only one customer");
  CHECK_FALSE(m.is_fitted());
  // With a penalty the penalised objective has a minimum: it fits and says what decided it.
  BgNbdFitOptions pen;
  pen.penalizer = 0.01;
  const Vector<double> x = vec({3, 3, 3, 3}), tx = vec({5, 5, 5, 5}), T = vec({10, 10, 10, 10});
  const auto res = m.fit(x, tx, T, pen);
  CHECK(res.converged);
  CHECK(has_warning(res, "the estimate is set by the penalizer"));
  check_predictions_finite(m, x, tx, T);
}

TEST_CASE("BgNbd::fit reports boundary estimates and keeps the predictions finite") {
  SUBCASE("two customers: the purchase rates look homogeneous (r, alpha -> infinity)") {
    const Vector<double> x = vec({3, 1}), tx = vec({5, 2}), T = vec({10, 10});
    BgNbd m;
    const auto res = m.fit(x, tx, T);
    CHECK_FALSE(res.converged);
    CHECK(res.message.find("boundary estimate") != std::string::npos);
    CHECK(has_warning(res, "boundary estimate: r = "));
    CHECK(has_warning(res, "(-> infinity)"));
    // Before: r = 3.4e12 from the fallback start, where eq. 10's series lost every digit (NaN).
    CHECK(m.params().r <= 1e8);
    check_predictions_finite(m, x, tx, T);
  }
  SUBCASE("nobody seems to drop out (t_x = T for everyone): a -> 0") {
    const Vector<double> x = vec({10, 20, 30, 5}), tx = vec({10, 20, 30, 5}), T = tx;
    BgNbd m;
    const auto res = m.fit(x, tx, T);
    CHECK_FALSE(res.converged);  // before: converged = true with a = 4.8e-16
    CHECK(has_warning(res, "a = "));
    CHECK(has_warning(res, "(-> 0)"));
    check_predictions_finite(m, x, tx, T);
    // With no dropout at all, P(alive) = 1 for every customer.
    CHECK(m.probability_alive(x, tx, T).minCoeff() > 0.999);
  }
  SUBCASE("five customers: the dropout probabilities look homogeneous (a, b -> infinity)") {
    const Vector<double> x = vec({3, 1, 0, 5, 2}), tx = vec({5, 2, 0, 9, 3}), T = vec({10, 10, 10, 12, 8});
    BgNbd m;
    const auto res = m.fit(x, tx, T);
    CHECK_FALSE(res.converged);
    CHECK(has_warning(res, "b = "));
    check_predictions_finite(m, x, tx, T);
  }
}

TEST_CASE("BgNbd::fit falls back to other starts when BFGS stalls (CDNOW)") {
  const auto d = clv_test::read_cdnow_summary();
  BgNbd m;
  BgNbdFitOptions opt;
  // From here BFGS stalls on a flat plateau with b = 2.3e6 and LL = -9603.6 and reports
  // "converged" (before: accepted as the estimate).
  opt.initial = BgNbdParams{1e-6, 1e6, 1e6, 1e6};
  const auto res = m.fit(d.x, d.tx, d.T, opt);
  CHECK(res.converged);
  CHECK(res.message.find("fallback start") != std::string::npos);
  CHECK(has_warning(res, "fallback start"));
  CHECK(std::abs(res.log_likelihood - (-9582.4256)) < 1e-3);
  CHECK(std::abs(m.params().r - 0.243) < 5e-4);
  CHECK(std::abs(m.params().b - 2.426) < 5e-4);
  // The default start needs no fallback and reports nothing.
  BgNbd plain;
  const auto r0 = plain.fit(d.x, d.tx, d.T);
  CHECK(r0.converged);
  CHECK(r0.message.find("fallback") == std::string::npos);
  CHECK(r0.warnings.empty());
}
