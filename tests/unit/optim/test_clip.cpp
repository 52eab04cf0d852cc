// SPDX-License-Identifier: Apache-2.0
// Tests of uvp::clip_grad_norm / clip_grad_value against torch.nn.utils, and their errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/optim/clip.hpp"

TEST_CASE_TEMPLATE("clip_grad_norm and clip_grad_value match torch.nn.utils", T, float, double) {
  int seen = 0;
  for (const auto& c : uvp_test::cases_for<T>("clip.txt")) {
    CAPTURE(c.name);
    std::vector<T> g = c.template as<T>("grads");
    const std::vector<double>& expected = c.at("clipped");
    if (c.values.count("max_norm")) {
      const double total = uvp::clip_grad_norm(uvp::Span<T>(g), c.scalar("max_norm"));
      CHECK(total == doctest::Approx(c.scalar("total_norm")).epsilon(uvp_test::tolerance<T>::rel));
    } else {
      uvp::clip_grad_value(uvp::Span<T>(g), c.scalar("clip_value"));
    }
    CHECK(uvp_test::max_rel_diff(g, expected) <= uvp_test::tolerance<T>::rel);
    ++seen;
  }
  CHECK(seen == 4);
}

TEST_CASE_TEMPLATE("clip_grad_norm by hand: the norm, the factor, no-op below max_norm", T, float, double) {
  std::vector<T> g = {3, 4};
  CHECK(uvp::clip_grad_norm(uvp::Span<T>(g), 10.0) == doctest::Approx(5));
  CHECK(g == std::vector<T>{3, 4});
  const double total = uvp::clip_grad_norm(uvp::Span<T>(g), 1.0);
  CHECK(total == doctest::Approx(5));
  CHECK(g[0] == doctest::Approx(3 / (5 + 1e-6)));
  CHECK(g[1] == doctest::Approx(4 / (5 + 1e-6)));
  // Many elements (several blocks of the blocked sum): ||(1, ..., 1)|| = sqrt(n).
  std::vector<T> ones(5000, T(1));
  CHECK(uvp::clip_grad_norm(uvp::Span<T>(ones), 1e6) == doctest::Approx(std::sqrt(5000.0)));
  std::vector<T> none;
  CHECK(uvp::clip_grad_norm(uvp::Span<T>(none), 1.0) == 0);
}

TEST_CASE_TEMPLATE("clip_grad_norm with non-finite gradients: torch's default, or numeric_error", T, float,
                   double) {
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> g = {1, inf, 2};
  CHECK(std::isinf(uvp::clip_grad_norm(uvp::Span<T>(g), 1.0)));
  // factor max_norm / inf = 0: finite entries become 0, inf * 0 = NaN (as PyTorch).
  CHECK(g[0] == 0);
  CHECK(std::isnan(g[1]));
  CHECK(g[2] == 0);
  std::vector<T> h = {1, std::numeric_limits<T>::quiet_NaN(), 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::clip_grad_norm(uvp::Span<T>(h), 1.0, true), uvp::numeric_error,
                               "uvp::clip_grad_norm: the total norm of grads is non-finite (nan)");
  CHECK(h[0] == 1);  // untouched
  CHECK(h[2] == 2);
}

TEST_CASE_TEMPLATE("clip_grad_value clamps, keeps NaN, covers the SIMD tail", T, float, double) {
  std::vector<T> g(21);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = T(double(i) - 10.0);
  g[20] = std::numeric_limits<T>::quiet_NaN();
  g[0] = -std::numeric_limits<T>::infinity();
  uvp::clip_grad_value(uvp::Span<T>(g), 2.5);
  CHECK(g[0] == T(-2.5));
  CHECK(g[1] == T(-2.5));
  CHECK(g[8] == T(-2));
  CHECK(g[10] == T(0));
  CHECK(g[12] == T(2));
  CHECK(g[13] == T(2.5));
  CHECK(g[19] == T(2.5));
  CHECK(std::isnan(g[20]));
}

TEST_CASE("clipping rejects bad thresholds, naming them") {
  std::vector<double> g = {1, 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::clip_grad_norm(uvp::Span<double>(g), 0.0), uvp::invalid_argument,
                               "uvp::clip_grad_norm: max_norm must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::clip_grad_norm(uvp::Span<double>(g), -1.0), uvp::invalid_argument,
                               "max_norm must be finite and > 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::clip_grad_norm(uvp::Span<double>(g), std::nan("")), uvp::invalid_argument,
                               "max_norm must be finite and > 0, got nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::clip_grad_value(uvp::Span<double>(g), 0.0), uvp::invalid_argument,
                               "uvp::clip_grad_value: clip_value must be finite and > 0, got 0");
  CHECK(g == std::vector<double>{1, 2});
}
