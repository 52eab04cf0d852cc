// SPDX-License-Identifier: Apache-2.0
// Tests of the BG/NBD model with static covariates: reduction to BgNbd, gradient, recovery of known
// coefficients on simulated customers, per-customer predictions, bad input.
#include <doctest/doctest.h>

#include <cmath>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd_covariates.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/core/parallel.hpp"

using uvp::BgNbdCovariates;
using uvp::BgNbdCovariatesParams;
using uvp::Matrix;
using uvp::Vector;

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// Purchase covariates: a standard normal and a 0/1 indicator (share 0.4); dropout covariate: its
// own 0/1 indicator (share 0.5). Seeded.
struct Design {
  Matrix<double> Zt, Zl;
  Vector<double> T;
};

Design make_design(int n, std::uint64_t seed) {
  uvp::Rng rng(seed);
  Design d{Matrix<double>(n, 2), Matrix<double>(n, 1), Vector<double>(n)};
  for (int i = 0; i < n; ++i) {
    d.Zt(i, 0) = rng.normal();
    d.Zt(i, 1) = rng.uniform() < 0.4 ? 1.0 : 0.0;
    d.Zl(i, 0) = rng.uniform() < 0.5 ? 1.0 : 0.0;
    d.T[i] = 20 + 32 * rng.uniform();  // ages 20-52 weeks
  }
  return d;
}

BgNbdCovariatesParams truth() {
  BgNbdCovariatesParams p{0.8, 5.0, 0.8, 2.5, Eigen::VectorXd(2), Eigen::VectorXd(1)};
  p.gamma_trans << 0.5, -0.4;
  p.gamma_life << 0.7;
  return p;
}

}  // namespace

TEST_CASE("BgNbdCovariates with all-zero covariates is BgNbd (CDNOW): same likelihood and estimate") {
  const auto d = clv_test::read_cdnow_summary();
  const auto n = d.x.size();
  uvp::BgNbd plain;
  const auto ref = plain.fit(d.x, d.tx, d.T);
  REQUIRE(ref.converged);
  const Matrix<double> Zt = Matrix<double>::Zero(n, 2), Zl = Matrix<double>::Zero(n, 1);

  // The likelihood itself, at a point away from the optimum.
  BgNbdCovariatesParams at{0.5, 3.0, 1.2, 2.0, Eigen::VectorXd::Constant(2, 0.3), Eigen::VectorXd::Constant(1, -0.2)};
  const BgNbdCovariates fixed(at);
  CHECK(rel(fixed.log_likelihood(d.x, d.tx, d.T, Zt, Zl),
            uvp::bgnbd_log_likelihood({0.5, 3.0, 1.2, 2.0}, d.x, d.tx, d.T)) < 1e-12);

  // The fit, from a start far from the optimum (the default start would be the plain fit itself).
  uvp::BgNbdCovariatesFitOptions opt;
  opt.initial = BgNbdCovariatesParams{1, 1, 1, 1, Eigen::VectorXd::Constant(2, 0.5), Eigen::VectorXd::Constant(1, 0.5)};
  BgNbdCovariates model;
  const auto res = model.fit(d.x, d.tx, d.T, Zt, Zl, opt);
  CHECK(res.converged);
  CHECK(res.log_likelihood == doctest::Approx(ref.log_likelihood).epsilon(1e-8));
  const auto& p = model.params();
  CHECK(rel(p.r, plain.params().r) < 1e-6);
  CHECK(rel(p.alpha, plain.params().alpha) < 1e-6);
  CHECK(rel(p.a, plain.params().a) < 1e-6);
  CHECK(rel(p.b, plain.params().b) < 1e-6);
  // Zero covariates do not move the likelihood: their coefficients stay at the start.
  CHECK(p.gamma_trans[0] == 0.5);
  CHECK(p.gamma_life[0] == 0.5);

  // No covariate columns at all: the default start is the plain fit, which is already optimal.
  const Matrix<double> none(0, 0);
  BgNbdCovariates bare;
  const auto res0 = bare.fit(d.x, d.tx, d.T, none, none);
  CHECK(res0.converged);
  CHECK(res0.log_likelihood == doctest::Approx(ref.log_likelihood).epsilon(1e-12));
  CHECK(rel(bare.params().r, plain.params().r) < 1e-8);
  CHECK(rel(bare.params().alpha, plain.params().alpha) < 1e-8);
  CHECK(rel(bare.params().a, plain.params().a) < 1e-8);
  CHECK(rel(bare.params().b, plain.params().b) < 1e-8);
  // The standard errors are the plain model's.
  REQUIRE(res0.standard_errors.size() == 4);
  REQUIRE(ref.standard_errors.size() == 4);
  for (int j = 0; j < 4; ++j) CHECK(rel(res0.standard_errors[j], ref.standard_errors[j]) < 1e-4);

  // Predictions equal the plain model's.
  const auto pa = bare.probability_alive(d.x, d.tx, d.T, none, none);
  const auto ce = bare.conditional_expected_purchases(39, d.x, d.tx, d.T, none, none);
  const auto pa0 = plain.probability_alive(d.x, d.tx, d.T);
  const auto ce0 = plain.conditional_expected_purchases(39, d.x, d.tx, d.T);
  CHECK(((pa - pa0).array().abs() / pa0.array().max(1.0)).maxCoeff() < 1e-8);
  CHECK(((ce - ce0).array().abs() / ce0.array().max(1.0)).maxCoeff() < 1e-8);
}

TEST_CASE("BgNbdCovariates' analytic gradient matches central differences") {
  const int n = 600;
  const Design d = make_design(n, 11);
  uvp::Rng rng(5);
  const auto s = uvp::simulate_customers(truth(), d.Zt, d.Zl, d.T, rng);
  Vector<double> w(n);
  for (int i = 0; i < n; ++i) w[i] = 1 + (i % 3);
  BgNbdCovariatesParams p{0.6, 4.0, 1.1, 3.0, Eigen::VectorXd(2), Eigen::VectorXd(1)};
  p.gamma_trans << 0.3, -0.2;
  p.gamma_life << 0.4;
  const int k = 7;
  double g[k];
  uvp::detail::bgnbd_cov_log_likelihood(p, s.frequency, s.recency, s.T, d.Zt, d.Zl, w.data(), g);
  auto ll_at = [&](int j, double h) {
    double th[k] = {std::log(p.r), std::log(p.alpha), std::log(p.a), std::log(p.b),
                    p.gamma_trans[0], p.gamma_trans[1], p.gamma_life[0]};
    th[j] += h;
    BgNbdCovariatesParams q{std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3]), Eigen::VectorXd(2),
                            Eigen::VectorXd(1)};
    q.gamma_trans << th[4], th[5];
    q.gamma_life << th[6];
    return uvp::detail::bgnbd_cov_log_likelihood(q, s.frequency, s.recency, s.T, d.Zt, d.Zl, w.data(), nullptr);
  };
  for (int j = 0; j < k; ++j) {
    CAPTURE(j);
    const double h = 1e-4;
    // five-point stencil
    const double fd = (-ll_at(j, 2 * h) + 8 * ll_at(j, h) - 8 * ll_at(j, -h) + ll_at(j, -2 * h)) / (12 * h);
    CHECK(std::abs(g[j] - fd) < 1e-6 * std::max(1.0, std::abs(fd)));
  }
}

TEST_CASE("BgNbdCovariates recovers known coefficients from 4,000 simulated customers") {
  const int n = 4000;
  const Design d = make_design(n, 2026);
  uvp::Rng rng(77);
  const BgNbdCovariatesParams tr = truth();
  const auto s = uvp::simulate_customers(tr, d.Zt, d.Zl, d.T, rng);
  BgNbdCovariates model;
  const auto res = model.fit(s.frequency, s.recency, s.T, d.Zt, d.Zl);
  CHECK(res.converged);
  for (const auto& wmsg : res.warnings) MESSAGE(wmsg);
  CHECK(res.warnings.empty());
  REQUIRE(res.parameter_names.size() == 7);
  CHECK(res.parameter_names[4] == "trans[0]");
  CHECK(res.parameter_names[6] == "life[0]");
  REQUIRE(res.standard_errors.size() == 7);
  const auto& p = model.params();
  const double want[7] = {tr.r, tr.alpha, tr.a, tr.b, tr.gamma_trans[0], tr.gamma_trans[1], tr.gamma_life[0]};
  const double got[7] = {p.r, p.alpha, p.a, p.b, p.gamma_trans[0], p.gamma_trans[1], p.gamma_life[0]};
  for (int j = 0; j < 7; ++j) {
    CAPTURE(j);
    CAPTURE(got[j]);
    CAPTURE(res.standard_errors[j]);
    CHECK(res.parameters[j] == got[j]);
    CHECK(std::abs(got[j] - want[j]) < 4 * res.standard_errors[j]);  // a 4-sigma band
  }
  // The purchase coefficients are sharply determined (the test is not vacuous).
  CHECK(res.standard_errors[4] < 0.08);
  CHECK(res.standard_errors[5] < 0.15);
  // The covariance is symmetric with the squared standard errors on its diagonal.
  REQUIRE(res.covariance.size() == 49);
  for (int i = 0; i < 7; ++i) {
    CHECK(res.covariance[i * 7 + i] == doctest::Approx(res.standard_errors[i] * res.standard_errors[i]));
    for (int j = 0; j < 7; ++j) CHECK(res.covariance[i * 7 + j] == res.covariance[j * 7 + i]);
  }
  // The covariates matter: the fit is far better than the plain model's.
  uvp::BgNbd plain;
  const auto r0 = plain.fit(s.frequency, s.recency, s.T);
  CHECK(res.log_likelihood > r0.log_likelihood + 50);

  // Per-customer predictions are the plain formulas at the customer's own parameters.
  const auto pa = model.probability_alive(s.frequency, s.recency, s.T, d.Zt, d.Zl);
  const auto ce = model.conditional_expected_purchases(26, s.frequency, s.recency, s.T, d.Zt, d.Zl);
  for (int i : {0, 1, 17, 999, 3999}) {
    CAPTURE(i);
    const uvp::BgNbd own(model.customer_params(d.Zt.row(i).transpose(), d.Zl.row(i).transpose()));
    CHECK(own.params().alpha == doctest::Approx(p.alpha * std::exp(-d.Zt.row(i).dot(p.gamma_trans))));
    CHECK(own.params().a == doctest::Approx(p.a * std::exp(d.Zl(i, 0) * p.gamma_life[0])));
    CHECK(own.params().b == doctest::Approx(p.b * std::exp(d.Zl(i, 0) * p.gamma_life[0])));
    CHECK(pa[i] == own.probability_alive(s.frequency[i], s.recency[i], s.T[i]));
    CHECK(ce[i] == own.conditional_expected_purchases(26, s.frequency[i], s.recency[i], s.T[i]));
    CHECK(std::isfinite(ce[i]));
  }
}

TEST_CASE("BgNbdCovariates' likelihood does not depend on the thread count") {
  const int n = 20000;
  const Design d = make_design(n, 3);
  uvp::Rng rng(4);
  const auto s = uvp::simulate_customers(truth(), d.Zt, d.Zl, d.T, rng);
  double g1[7], g2[7], l1, l2;
  {
    const uvp::ThreadCountGuard one(1);
    l1 = uvp::detail::bgnbd_cov_log_likelihood(truth(), s.frequency, s.recency, s.T, d.Zt, d.Zl, nullptr, g1);
  }
  {
    const uvp::ThreadCountGuard two(2);
    l2 = uvp::detail::bgnbd_cov_log_likelihood(truth(), s.frequency, s.recency, s.T, d.Zt, d.Zl, nullptr, g2);
  }
  CHECK(l1 == l2);
  for (int j = 0; j < 7; ++j) CHECK(g1[j] == g2[j]);
}

TEST_CASE("BgNbdCovariates rejects bad covariates naming the argument, row and column") {
  const int n = 50;
  const Design d = make_design(n, 9);
  uvp::Rng rng(1);
  const auto s = uvp::simulate_customers(truth(), d.Zt, d.Zl, d.T, rng);
  BgNbdCovariates model;
  const Matrix<double> short_rows = d.Zt.topRows(n - 1);
  UVP_CHECK_THROWS_WITH_SUBSTR(model.fit(s.frequency, s.recency, s.T, short_rows, d.Zl), uvp::invalid_argument,
                               "uvp::BgNbdCovariates::fit: Z_trans has 49 rows but there are 50 customers");
  Matrix<double> bad = d.Zt;
  bad(3, 1) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(model.fit(s.frequency, s.recency, s.T, bad, d.Zl), uvp::invalid_argument,
                               "Z_trans(3, 1) = nan must be finite");
  Matrix<double> bad_life = d.Zl;
  bad_life(7, 0) = std::numeric_limits<double>::infinity();
  UVP_CHECK_THROWS_WITH_SUBSTR(model.fit(s.frequency, s.recency, s.T, d.Zt, bad_life), uvp::invalid_argument,
                               "Z_life(7, 0) = inf must be finite");
  uvp::BgNbdCovariatesFitOptions opt;
  opt.initial = truth();
  opt.initial->gamma_life = Eigen::VectorXd::Zero(3);
  UVP_CHECK_THROWS_WITH_SUBSTR(model.fit(s.frequency, s.recency, s.T, d.Zt, d.Zl, opt), uvp::invalid_argument,
                               "gamma_life has 3 entries but Z_life has 1 columns");
  UVP_CHECK_THROWS_WITH_SUBSTR(model.probability_alive(s.frequency, s.recency, s.T, d.Zt, d.Zl),
                               uvp::not_fitted_error, "uvp::BgNbdCovariates::probability_alive");
  const BgNbdCovariates fitted(truth());
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.probability_alive(s.frequency, s.recency, s.T, d.Zl, d.Zl),
                               uvp::invalid_argument, "Z_trans has 1 columns but the model has 2");
  UVP_CHECK_THROWS_WITH_SUBSTR(fitted.conditional_expected_purchases(-1, s.frequency, s.recency, s.T, d.Zt, d.Zl),
                               uvp::invalid_argument, "t must be finite and >= 0");
  // Degenerate data are refused as by BgNbd::fit.
  const Vector<double> zeros = Vector<double>::Zero(n);
  UVP_CHECK_THROWS_WITH_SUBSTR(model.fit(zeros, zeros, s.T, d.Zt, d.Zl), uvp::invalid_argument,
                               "no customer has a repeat purchase");
  // A simulation with covariates checks them too.
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::simulate_customers(truth(), bad, d.Zl, d.T, rng), uvp::invalid_argument,
                               "uvp::simulate_customers: Z_trans(3, 1) = nan");
}
