// SPDX-License-Identifier: Apache-2.0
// Tests of the standard errors of CLV fits: CDNOW against mpmath, closed-form information, simulation, failures.
#include <doctest/doctest.h>

#include <Eigen/LU>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/core/random.hpp"

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// Estimate, standard errors and covariance of a fit against a make_se_reference.py fixture
// (line 1: estimate + loglik, line 2: standard errors, then the k x k covariance).
void check_against_reference(const uvp::ClvFitResult& res, const std::string& fixture, std::size_t k) {
  const auto rows = clv_test::fixture_rows(fixture, 1);
  std::vector<double> v;
  for (const auto& r : rows) v.push_back(r[0]);
  REQUIRE(v.size() == (k + 1) + k + k * k);
  REQUIRE(res.parameters.size() == k);
  REQUIRE(res.standard_errors.size() == k);
  REQUIRE(res.covariance.size() == k * k);
  for (std::size_t i = 0; i < k; ++i) {
    INFO("parameter " << res.parameter_names[i]);
    CHECK(rel(res.parameters[i], v[i]) < 1e-6);  // both are the MLE
    // mpmath's Hessian in natural parameters vs uvp's differenced analytic gradient in log-parameters
    CHECK(rel(res.standard_errors[i], v[k + 1 + i]) < 1e-5);
  }
  CHECK(res.log_likelihood == doctest::Approx(v[k]).epsilon(1e-10));
  const double* cov = v.data() + 2 * k + 1;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      const double scale = std::sqrt(cov[i * k + i] * cov[j * k + j]);  // correlations to 1e-5
      CHECK(std::abs(res.covariance[i * k + j] - cov[i * k + j]) < 1e-5 * scale);
      CHECK(res.covariance[i * k + j] == res.covariance[j * k + i]);
    }
}

}  // namespace

TEST_CASE("BG/NBD standard errors on CDNOW match an independent mpmath Hessian") {
  const auto d = clv_test::read_cdnow_summary();
  uvp::BgNbd model;
  const auto res = model.fit(d.x, d.tx, d.T);
  REQUIRE(res.converged);
  CHECK(res.warnings.empty());
  CHECK(res.parameter_names == std::vector<std::string>{"r", "alpha", "a", "b"});
  CHECK(res.parameters[0] == model.params().r);
  CHECK(res.parameters[3] == model.params().b);
  check_against_reference(res, "clv/se_bgnbd.txt", 4);
  // lifetimes' BetaGeoFitter summary prints the same to 3 decimals: 0.013, 0.378, 0.186, 0.705.
  CHECK(std::abs(res.standard_errors[1] - 0.378) < 5e-4);
}

TEST_CASE("BG/NBD standard errors of a weighted fit equal those of the expanded data") {
  const auto d = clv_test::read_cdnow_summary();
  std::map<std::tuple<double, double, double>, double> counts;
  for (Eigen::Index i = 0; i < d.x.size(); ++i) counts[{d.x[i], d.tx[i], d.T[i]}] += 1;
  uvp::Vector<double> x(static_cast<Eigen::Index>(counts.size())), tx(x.size()), T(x.size()), w(x.size());
  Eigen::Index k = 0;
  for (const auto& [key, c] : counts) {
    std::tie(x[k], tx[k], T[k]) = key;
    w[k++] = c;
  }
  REQUIRE(x.size() < d.x.size());
  uvp::BgNbd full, weighted;
  const auto a = full.fit(d.x, d.tx, d.T);
  const auto b = weighted.fit(x, tx, T, w);
  REQUIRE(b.standard_errors.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(rel(b.standard_errors[i], a.standard_errors[i]) < 1e-5);
}

TEST_CASE("Gamma-Gamma standard errors on CDNOW match an independent mpmath Hessian") {
  const auto d = clv_test::read_cdnow_summary();
  uvp::GammaGamma model;
  const auto res = model.fit(d.x, d.zbar);
  REQUIRE(res.converged);
  CHECK(res.parameter_names == std::vector<std::string>{"p", "q", "gamma"});
  check_against_reference(res, "clv/se_gg.txt", 3);
}

TEST_CASE("fill_standard_errors recovers closed-form information") {
  SUBCASE("Poisson rate: var = lambda / n") {
    const double n = 250, S = 740, lambda = S / n;  // the MLE
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(res, {"lambda"}, {lambda}, [&](const double* th, double* g) {
      g[0] = n - S / th[0];  // d/dlambda of n lambda - S log lambda
    });
    REQUIRE(res.standard_errors.size() == 1);
    CHECK(res.standard_errors[0] == doctest::Approx(std::sqrt(lambda / n)).epsilon(1e-8));
    CHECK(res.warnings.empty());
  }
  SUBCASE("a correlated quadratic: covariance = A^-1, in any units") {
    // NLL = (theta - mu)' A (theta - mu) / 2 with mu at very different scales
    const double mu[3] = {2e-3, 1.5, 4e3};
    Eigen::Matrix3d A;
    A << 4e6, 300, 0.5, 300, 9, 0.002, 0.5, 0.002, 1e-6;
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(res, {"u", "v", "w"}, {mu[0], mu[1], mu[2]}, [&](const double* th, double* g) {
      const Eigen::Vector3d d(th[0] - mu[0], th[1] - mu[1], th[2] - mu[2]);
      Eigen::Map<Eigen::Vector3d> out(g);
      out = A * d;
    });
    REQUIRE(res.covariance.size() == 9);
    const Eigen::Matrix3d inv = A.inverse();
    for (int i = 0; i < 3; ++i) {
      CHECK(res.standard_errors[static_cast<std::size_t>(i)] == doctest::Approx(std::sqrt(inv(i, i))).epsilon(1e-7));
      for (int j = 0; j < 3; ++j)
        CHECK(std::abs(res.covariance[static_cast<std::size_t>(3 * i + j)] - inv(i, j)) <
              1e-7 * std::sqrt(inv(i, i) * inv(j, j)));
    }
  }
}

TEST_CASE("fill_standard_errors reports, never fabricates, when the information is unusable") {
  auto expect_warning = [](const uvp::ClvFitResult& res, const char* what) {
    CHECK(res.standard_errors.empty());
    CHECK(res.covariance.empty());
    REQUIRE(res.warnings.size() == 1);
    CHECK(res.warnings[0].find("uvp::Demo::fit: standard errors not available") != std::string::npos);
    CHECK(res.warnings[0].find(what) != std::string::npos);
  };
  SUBCASE("a saddle") {
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(
        res, {"a", "b"}, {1.0, 1.0},
        [](const double* th, double* g) {
          g[0] = th[0] - 1;
          g[1] = -(th[1] - 1);
        },
        "uvp::Demo::fit");
    expect_warning(res, "not positive definite");
    CHECK(res.parameters == std::vector<double>{1.0, 1.0});  // the estimate is still reported
  }
  SUBCASE("a parameter the likelihood does not depend on") {
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(
        res, {"a", "b"}, {1.0, 3.0},
        [](const double* th, double* g) {
          g[0] = th[0] - 1;
          g[1] = 0;
        },
        "uvp::Demo::fit");
    CHECK(res.standard_errors.empty());
    REQUIRE(res.warnings.size() == 1);
    CHECK(res.warnings[0].find("uvp::Demo::fit: standard errors not available") != std::string::npos);
  }
  SUBCASE("a non-finite gradient") {
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(
        res, {"a"}, {1.0}, [](const double*, double* g) { g[0] = std::nan(""); }, "uvp::Demo::fit");
    expect_warning(res, "not finite");
  }
  SUBCASE("a parameter at zero") {
    uvp::ClvFitResult res;
    uvp::detail::fill_standard_errors(
        res, {"a"}, {0.0}, [](const double*, double* g) { g[0] = 1; }, "uvp::Demo::fit");
    expect_warning(res, "parameter a is not finite and > 0");
  }
  SUBCASE("names and parameters of different lengths") {
    uvp::ClvFitResult res;
    CHECK_THROWS_AS(uvp::detail::fill_standard_errors(
                        res, {"a", "b"}, {1.0}, [](const double*, double* g) { g[0] = 1; }, "uvp::Demo::fit"),
                    uvp::invalid_argument);
  }
}

TEST_CASE("BG/NBD standard errors match the spread of estimates over simulated data sets") {
  const uvp::BgNbdParams truth{0.5, 6.0, 0.7, 2.5};
  constexpr int reps = 20;
  constexpr Eigen::Index n = 1500;
  uvp::Rng rng(20261202);
  uvp::Vector<double> T(n);
  for (Eigen::Index i = 0; i < n; ++i) T[i] = 20 + 20 * rng.uniform();
  std::vector<std::vector<double>> est(4), se(4);
  for (int k = 0; k < reps; ++k) {
    const auto s = uvp::simulate_customers(truth, T, rng);
    uvp::BgNbd model;
    const auto res = model.fit(s.frequency, s.recency, s.T);
    REQUIRE(res.standard_errors.size() == 4);
    for (std::size_t j = 0; j < 4; ++j) {
      est[j].push_back(std::log(res.parameters[j]));
      se[j].push_back(res.standard_errors[j] / res.parameters[j]);  // SE of the log-parameter
    }
  }
  for (std::size_t j = 0; j < 4; ++j) {
    double m = 0, mse = 0, v = 0;
    for (int k = 0; k < reps; ++k) m += est[j][static_cast<std::size_t>(k)] / reps;
    for (int k = 0; k < reps; ++k) {
      v += std::pow(est[j][static_cast<std::size_t>(k)] - m, 2) / (reps - 1);
      mse += se[j][static_cast<std::size_t>(k)] / reps;
    }
    INFO("parameter " << j << ": spread " << std::sqrt(v) << ", mean SE " << mse);
    // 20 replications estimate a standard deviation to ~16%: a generous band around 1
    CHECK(std::sqrt(v) / mse > 0.6);
    CHECK(std::sqrt(v) / mse < 1.6);
  }
}
