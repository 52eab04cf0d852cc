// SPDX-License-Identifier: Apache-2.0
// Tests of the BFGS minimizer used by the CLV fits (include/uvp/detail/bfgs.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/test_support.hpp"
#include "uvp/detail/bfgs.hpp"

using Eigen::VectorXd;

TEST_CASE("BFGS finds the minimum of the Rosenbrock function from the classic start") {
  auto rosen = [](const VectorXd& x, VectorXd& g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  VectorXd x0(2);
  x0 << -1.2, 1.0;
  const auto res = uvp::detail::bfgs_minimize(rosen, x0);
  CHECK(res.converged);
  CHECK(res.x[0] == doctest::Approx(1).epsilon(1e-8));
  CHECK(res.x[1] == doctest::Approx(1).epsilon(1e-8));
  CHECK(res.iterations < 100);
  CHECK(res.evaluations >= res.iterations);
}

TEST_CASE("BFGS solves an ill-conditioned quadratic exactly") {
  const int n = 8;
  VectorXd d(n), c(n);
  for (int i = 0; i < n; ++i) d[i] = std::pow(10.0, i - 3), c[i] = i - 2.5;  // condition number 1e7
  auto quad = [&](const VectorXd& x, VectorXd& g) {
    g = d.cwiseProduct(x - c);
    return 0.5 * (x - c).dot(g);
  };
  const auto res = uvp::detail::bfgs_minimize(quad, VectorXd::Zero(n));
  CHECK(res.converged);
  CHECK(uvp_test::rel_error(res.x, c) < 1e-7);
}

TEST_CASE("BFGS backs off from points where the objective is not finite") {
  // f(x) = sum x_i - log(x_i), minimum at 1, undefined for x_i <= 0; long steps from 30 overshoot.
  auto f = [](const VectorXd& x, VectorXd& g) {
    if (!(x.minCoeff() > 0)) return std::numeric_limits<double>::quiet_NaN();
    g = VectorXd::Ones(x.size()) - x.cwiseInverse();
    return (x.array() - x.array().log()).sum();
  };
  VectorXd x0(2);
  x0 << 30, 0.05;
  uvp::detail::BfgsOptions o;
  o.max_step = 100;
  const auto res = uvp::detail::bfgs_minimize(f, x0, o);
  CHECK(res.converged);
  CHECK(res.x[0] == doctest::Approx(1).epsilon(1e-9));
  CHECK(res.x[1] == doctest::Approx(1).epsilon(1e-9));
}

TEST_CASE("BFGS reports, without throwing, a start where the objective is not finite or the iteration cap") {
  auto bad = [](const VectorXd&, VectorXd& g) {
    g.setZero();
    return std::numeric_limits<double>::infinity();
  };
  const auto res = uvp::detail::bfgs_minimize(bad, VectorXd::Zero(2));
  CHECK_FALSE(res.converged);
  CHECK(res.message.find("not finite at the starting point") != std::string::npos);

  auto rosen = [](const VectorXd& x, VectorXd& g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  uvp::detail::BfgsOptions o;
  o.max_iterations = 3;
  VectorXd x0(2);
  x0 << -1.2, 1.0;
  const auto capped = uvp::detail::bfgs_minimize(rosen, x0, o);
  CHECK_FALSE(capped.converged);
  CHECK(capped.iterations == 3);
  CHECK(capped.message == "reached max_iterations");
}
