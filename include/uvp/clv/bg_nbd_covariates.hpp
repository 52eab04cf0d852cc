// SPDX-License-Identifier: Apache-2.0
// The BG/NBD model with static (time-invariant) customer covariates: fit and per-customer predictions.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"

namespace uvp {

/// BG/NBD parameters with static covariates, in CLVTools' parameterisation (Bachmann, Meierer &
/// Naef, CLVTools `bgnbd(..., data = clv.data.static.covariates)`, src/bgnbd_LL.cpp; the covariate
/// form of Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and
/// BG/NBD models", note 019). Customer i with purchase covariates z_trans,i and dropout covariates
/// z_life,i has the BG/NBD parameters
///
///     r,   alpha_i = alpha * exp(-gamma_trans' z_trans,i),
///          a_i = a * exp(gamma_life' z_life,i),   b_i = b * exp(gamma_life' z_life,i).
///
/// A positive gamma_trans raises the expected purchase rate r / alpha_i by the factor
/// exp(gamma_trans' z). The dropout coefficients scale a and b together, so they leave the mean
/// dropout probability a / (a + b) unchanged and change its spread across customers: a positive
/// gamma_life concentrates p_i around that mean. r, alpha, a, b are the parameters of a customer
/// with z = 0 and are > 0; the coefficients are any finite numbers.
struct BgNbdCovariatesParams {
  double r = 0;
  double alpha = 0;
  double a = 0;
  double b = 0;
  Eigen::VectorXd gamma_trans;  ///< one per column of Z_trans
  Eigen::VectorXd gamma_life;   ///< one per column of Z_life
};

/// Options of BgNbdCovariates::fit.
struct BgNbdCovariatesFitOptions {
  /// Starting point; default: the plain BG/NBD fit of the same data (BgNbd::fit) with all
  /// coefficients 0. Its coefficient vectors must match the covariate matrices' columns.
  std::optional<BgNbdCovariatesParams> initial = std::nullopt;
  int max_iterations = 1000;
  /// BFGS stops when the gradient with respect to (log r, log alpha, log a, log b, gamma_trans,
  /// gamma_life) is below gradient_tolerance * max(1, |objective|) in every component.
  double gradient_tolerance = 1e-10;
};

namespace detail {

/// Z (customers x covariates) for n customers: no columns (no covariates, any number of rows), or
/// n rows of finite entries. Names the argument, the row and the column of a bad entry.
inline void check_covariates(const char* where, const char* name, const ConstMatrixRef<double>& Z, index n) {
  if (Z.cols() == 0) return;
  if (Z.rows() != n)
    raise<shape_error>(where, ": ", name, " has ", Z.rows(), " rows but there are ", n,
                       " customers (one row per customer)");
  for (index i = 0; i < Z.rows(); ++i)
    for (index j = 0; j < Z.cols(); ++j)
      if (!std::isfinite(Z(i, j)))
        raise<invalid_argument>(where, ": ", name, "(", i, ", ", j, ") = ", Z(i, j),
                                " must be finite (row ", i, " = customer, column ", j, " = covariate)");
}

inline void check_bgnbd_cov_params(const char* where, const BgNbdCovariatesParams& p, index k_trans, index k_life) {
  check_bgnbd_params(where, BgNbdParams{p.r, p.alpha, p.a, p.b});
  if (p.gamma_trans.size() != k_trans)
    raise<shape_error>(where, ": gamma_trans has ", p.gamma_trans.size(), " entries but Z_trans has ", k_trans,
                       " columns");
  if (p.gamma_life.size() != k_life)
    raise<shape_error>(where, ": gamma_life has ", p.gamma_life.size(), " entries but Z_life has ", k_life,
                       " columns");
  for (index j = 0; j < k_trans; ++j)
    if (!std::isfinite(p.gamma_trans[j]))
      raise<invalid_argument>(where, ": gamma_trans[", j, "] = ", p.gamma_trans[j], " must be finite");
  for (index j = 0; j < k_life; ++j)
    if (!std::isfinite(p.gamma_life[j]))
      raise<invalid_argument>(where, ": gamma_life[", j, "] = ", p.gamma_life[j], " must be finite");
}

/// Customer i's BG/NBD parameters under p (see BgNbdCovariatesParams).
inline BgNbdParams bgnbd_individual_params(const BgNbdCovariatesParams& p, const ConstMatrixRef<double>& Zt,
                                           const ConstMatrixRef<double>& Zl, index i) noexcept {
  const double et = Zt.cols() > 0 ? Zt.row(i).dot(p.gamma_trans) : 0.0;
  const double el = Zl.cols() > 0 ? Zl.row(i).dot(p.gamma_life) : 0.0;
  const double sl = std::exp(el);
  return {p.r, p.alpha * std::exp(-et), p.a * sl, p.b * sl};
}

/// One customer's BG/NBD log-likelihood (the log-space form of BgNbdLikelihood, with the
/// customer's own alpha_i, a_i, b_i) and, when d is not null, its derivatives with respect to
/// log r, log alpha_i, log a_i, log b_i.
inline double bgnbd_customer_log_likelihood(const BgNbdParams& p, double x, double tx, double T, double* d) noexcept {
  const double r = p.r, al = p.alpha, a = p.a, b = p.b, rx = r + x;
  const double LT = std::log(al + T);
  double ll = log_gamma(rx) - log_gamma(r) + r * std::log(al);
  double s = -rx * LT, w4 = 0, Lt = 0;
  if (x > 0) {
    ll += log_gamma(a + b) + log_gamma(b + x) - log_gamma(b) - log_gamma(a + b + x);
    Lt = std::log(al + tx);
    // A_4 - A_3 with log((alpha+T)/(alpha+t_x)) as log1p (exact also for a large alpha).
    const double c3 = s, dd = std::log(a) - std::log(b + x - 1) + rx * std::log1p((T - tx) / (al + tx));
    const double e = std::exp(-std::abs(dd));
    w4 = dd >= 0 ? 1 / (1 + e) : e / (1 + e);
    s = c3 + std::max(dd, 0.0) + std::log1p(e);
  }
  if (d) {
    const double w3 = 1 - w4;
    d[0] = r * (digamma(rx) - digamma(r) + std::log(al) - (w3 * LT + w4 * Lt));
    d[1] = r - rx * al * (w3 / (al + T) + (x > 0 ? w4 / (al + tx) : 0.0));
    if (x > 0) {
      const double ps_ab = digamma(a + b), ps_abx = digamma(a + b + x);
      d[2] = a * (ps_ab - ps_abx) + w4;
      d[3] = b * (ps_ab + digamma(b + x) - digamma(b) - ps_abx) - w4 * b / (b + x - 1);
    } else {
      d[2] = d[3] = 0;  // a and b enter only through repeat purchases
    }
  }
  return ll + s;
}

/// Sum over customers of w_i LL_i for the covariate model, and (grad not null) its gradient with
/// respect to (log r, log alpha, log a, log b, gamma_trans, gamma_life). Customers are summed in
/// fixed chunks, in parallel over chunks and then in chunk order: the result does not depend on the
/// thread count.
inline double bgnbd_cov_log_likelihood(const BgNbdCovariatesParams& p, const ConstVectorRef<double>& f,
                                       const ConstVectorRef<double>& r, const ConstVectorRef<double>& T,
                                       const ConstMatrixRef<double>& Zt, const ConstMatrixRef<double>& Zl,
                                       const double* w, double* grad) {
  const index n = f.size(), kt = Zt.cols(), kl = Zl.cols(), k = 4 + kt + kl;
  constexpr index chunk = 1024;
  const index nc = (n + chunk - 1) / chunk;
  const index stride = k + 1;  // [ll, gradient...] per chunk
  std::vector<double> part(static_cast<std::size_t>(nc * stride), 0.0);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (n > 8192)
#endif
  for (index c = 0; c < nc; ++c) {
    double* acc = part.data() + c * stride;
    const index e = std::min(n, (c + 1) * chunk);
    double d[4];
    for (index i = c * chunk; i < e; ++i) {
      const double wi = w ? w[i] : 1.0;
      if (wi == 0) continue;
      const BgNbdParams q = bgnbd_individual_params(p, Zt, Zl, i);
      acc[0] += wi * bgnbd_customer_log_likelihood(q, f[i], r[i], T[i], grad ? d : nullptr);
      if (!grad) continue;
      for (int j = 0; j < 4; ++j) acc[1 + j] += wi * d[j];
      for (index j = 0; j < kt; ++j) acc[5 + j] -= wi * d[1] * Zt(i, j);  // d log alpha_i / d gamma_trans = -z
      for (index j = 0; j < kl; ++j) acc[5 + kt + j] += wi * (d[2] + d[3]) * Zl(i, j);
    }
  }
  double ll = 0;
  if (grad) std::fill(grad, grad + k, 0.0);
  for (index c = 0; c < nc; ++c) {
    const double* acc = part.data() + c * stride;
    ll += acc[0];
    if (grad)
      for (index j = 0; j < k; ++j) grad[j] += acc[1 + j];
  }
  return ll;
}

}  // namespace detail

/// The BG/NBD model with static covariates (see BgNbdCovariatesParams for the parameterisation,
/// after CLVTools). Data: frequency, recency, T as for BgNbd (one entry per customer, same time
/// unit), and two covariate matrices, customers x covariates, Z_trans for the purchase process and
/// Z_life for the dropout process (either may have no columns; the same matrix may be passed for
/// both). Covariates enter through exp(gamma' z), so centre and scale them (e.g. standardise
/// continuous ones, 0/1 for categories with one level left out): a column that is constant is
/// confounded with alpha (or with a and b) and is not identified.
///
/// Fit: maximum likelihood over (log r, log alpha, log a, log b, gamma_trans, gamma_life) by BFGS
/// with the analytic gradient, started from the plain BG/NBD fit; standard errors from the observed
/// information (detail::fill_standard_errors), reported for r, alpha, a, b and the coefficients,
/// named "trans[j]" and "life[j]". With all coefficients 0 it is exactly BgNbd. Data that cannot
/// identify even the plain model throw uvp::invalid_argument as BgNbd::fit does.
class BgNbdCovariates {
 public:
  BgNbdCovariates() = default;
  explicit BgNbdCovariates(BgNbdCovariatesParams params) : params_(std::move(params)), fitted_(true) {
    detail::check_bgnbd_cov_params("uvp::BgNbdCovariates::BgNbdCovariates", params_, params_.gamma_trans.size(),
                                   params_.gamma_life.size());
  }

  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Z_trans,
                   const ConstMatrixRef<double>& Z_life, const BgNbdCovariatesFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, Z_trans, Z_life, nullptr, 0, options);
  }
  /// Weighted fit: customer i counts weights[i] times (weights finite and >= 0).
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Z_trans,
                   const ConstMatrixRef<double>& Z_life, const ConstVectorRef<double>& weights,
                   const BgNbdCovariatesFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, Z_trans, Z_life, weights.data(), weights.size(), options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const BgNbdCovariatesParams& params() const {
    require_fitted("params");
    return params_;
  }

  /// The BG/NBD parameters of a customer with covariate rows z_trans, z_life (sizes: the numbers
  /// of coefficients).
  BgNbdParams customer_params(const ConstVectorRef<double>& z_trans, const ConstVectorRef<double>& z_life) const {
    require_fitted("customer_params");
    constexpr const char* where = "uvp::BgNbdCovariates::customer_params";
    if (z_trans.size() != params_.gamma_trans.size())
      detail::raise<shape_error>(where, ": z_trans has ", z_trans.size(), " entries, expected ",
                                 params_.gamma_trans.size());
    if (z_life.size() != params_.gamma_life.size())
      detail::raise<shape_error>(where, ": z_life has ", z_life.size(), " entries, expected ",
                                 params_.gamma_life.size());
    const Matrix<double> zt = z_trans.transpose(), zl = z_life.transpose();
    detail::check_covariates(where, "z_trans", zt, 1);
    detail::check_covariates(where, "z_life", zl, 1);
    return detail::bgnbd_individual_params(params_, zt, zl, 0);
  }

  /// Sum over customers of the log-likelihood at the model's parameters.
  double log_likelihood(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                        const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Z_trans,
                        const ConstMatrixRef<double>& Z_life) const {
    require_fitted("log_likelihood");
    check_data("uvp::BgNbdCovariates::log_likelihood", frequency, recency, T, Z_trans, Z_life);
    return detail::bgnbd_cov_log_likelihood(params_, frequency, recency, T, Z_trans, Z_life, nullptr, nullptr);
  }

  /// P(alive | x, t_x, T) of every customer, each at their own parameters (parallel).
  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Z_trans,
                                   const ConstMatrixRef<double>& Z_life) const {
    require_fitted("probability_alive");
    check_data("uvp::BgNbdCovariates::probability_alive", frequency, recency, T, Z_trans, Z_life);
    const index n = frequency.size();
    Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 16384)
#endif
    for (index i = 0; i < n; ++i)
      out[i] = detail::bgnbd_probability_alive(detail::bgnbd_individual_params(params_, Z_trans, Z_life, i),
                                               frequency[i], recency[i], T[i]);
    return out;
  }

  /// E[Y(t) | x, t_x, T] of every customer in the next t time units, each at their own parameters
  /// (FHL eq. 10, as BgNbd::conditional_expected_purchases; parallel). t finite and >= 0;
  /// uvp::numeric_error where the series does not converge (t beyond ~5e4 alpha_i + T).
  Vector<double> conditional_expected_purchases(double t, const ConstVectorRef<double>& frequency,
                                                const ConstVectorRef<double>& recency,
                                                const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Z_trans,
                                                const ConstMatrixRef<double>& Z_life) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::BgNbdCovariates::conditional_expected_purchases";
    if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": t must be finite and >= 0, got ", t);
    check_data(where, frequency, recency, T, Z_trans, Z_life);
    const index n = frequency.size();
    Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1024) if (n > 4096)
#endif
    for (index i = 0; i < n; ++i)
      detail::bgnbd_conditional_expected(detail::bgnbd_individual_params(params_, Z_trans, Z_life, i), &t, 1,
                                         frequency[i], recency[i], T[i], &out[i]);
    for (index i = 0; i < n; ++i)
      if (std::isnan(out[i]))
        detail::raise<numeric_error>(where, ": the hypergeometric series of eq. 10 did not converge for customer ", i,
                                     " (t = ", t, "): the horizon is more than about 5e4 times alpha_i + T");
    return out;
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_)
      detail::raise<not_fitted_error>("uvp::BgNbdCovariates::", what, ": the model is not fitted (call fit() first)");
  }
  void check_data(const char* where, const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                  const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Zt,
                  const ConstMatrixRef<double>& Zl) const {
    detail::check_rft(where, f, r, T);
    detail::check_covariates(where, "Z_trans", Zt, f.size());
    detail::check_covariates(where, "Z_life", Zl, f.size());
    if (Zt.cols() != params_.gamma_trans.size())
      detail::raise<shape_error>(where, ": Z_trans has ", Zt.cols(), " columns but the model has ",
                                 params_.gamma_trans.size(), " purchase coefficients");
    if (Zl.cols() != params_.gamma_life.size())
      detail::raise<shape_error>(where, ": Z_life has ", Zl.cols(), " columns but the model has ",
                                 params_.gamma_life.size(), " dropout coefficients");
  }

  ClvFitResult fit_impl(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                        const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Zt,
                        const ConstMatrixRef<double>& Zl, const double* w, index w_size,
                        const BgNbdCovariatesFitOptions& opt) {
    constexpr const char* where = "uvp::BgNbdCovariates::fit";
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    detail::check_rft(where, f, r, T, w, w_size);
    detail::check_covariates(where, "Z_trans", Zt, f.size());
    detail::check_covariates(where, "Z_life", Zl, f.size());
    const index kt = Zt.cols(), kl = Zl.cols(), k = 4 + kt + kl;
    double W = 0;
    for (index i = 0; i < f.size(); ++i) W += w ? w[i] : 1.0;
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": weights sum to 0");
    // Covariates cannot rescue data that identify no plain BG/NBD, and there is no penalty here.
    const detail::ClvDataShape shape = detail::clv_data_shape(f, r, T, w);
    detail::check_identifiable(where, shape, f, r, T, 0.0,
                               "a and b do not enter the likelihood and the purchase rate's estimate is 0");

    BgNbdCovariatesParams start;
    if (opt.initial) {
      detail::check_bgnbd_cov_params(where, *opt.initial, kt, kl);
      start = *opt.initial;
    } else {
      BgNbd plain;
      if (w) {
        plain.fit(f, r, T, Eigen::Map<const Vector<double>>(w, f.size()));
      } else {
        plain.fit(f, r, T);
      }
      const BgNbdParams& q = plain.params();
      start = {q.r, q.alpha, q.a, q.b, Eigen::VectorXd::Zero(kt), Eigen::VectorXd::Zero(kl)};
    }
    std::vector<double> grad(static_cast<std::size_t>(k));
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const BgNbdCovariatesParams p = unpack_log(th.data(), kt, kl);
      const double pv[4] = {p.r, p.alpha, p.a, p.b};
      for (double v : pv)
        if (!(v > 0) || !std::isfinite(v)) return std::numeric_limits<double>::infinity();
      const double ll = detail::bgnbd_cov_log_likelihood(p, f, r, T, Zt, Zl, w, grad.data());
      for (index j = 0; j < k; ++j) g[j] = -grad[static_cast<std::size_t>(j)] / W;
      const double v = -ll / W;
      return std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
    };
    Eigen::VectorXd th0(k);
    th0 << std::log(start.r), std::log(start.alpha), std::log(start.a), std::log(start.b), start.gamma_trans,
        start.gamma_life;
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    const detail::BfgsResult res = detail::bfgs_minimize(objective, th0, bo);
    ClvFitResult out;
    out.converged = res.converged;
    out.iterations = res.iterations;
    out.evaluations = res.evaluations;
    out.customers = f.size();
    out.message = res.message;
    if (!std::isfinite(res.f)) {
      out.message = "the log-likelihood is not finite at the starting point";
      out.warnings.push_back(std::string(where) + ": " + out.message + "; the model was not changed");
      return out;
    }
    params_ = unpack_log(res.x.data(), kt, kl);
    fitted_ = true;
    out.objective = res.f;
    out.log_likelihood = detail::bgnbd_cov_log_likelihood(params_, f, r, T, Zt, Zl, w, nullptr);
    add_standard_errors(out, f, r, T, Zt, Zl, w);
    if (!res.converged)
      out.warnings.push_back(std::string(where) + ": the optimizer did not converge (" + res.message + ")");
    const std::string boundary = detail::bgnbd_boundary_parameters({params_.r, params_.alpha, params_.a, params_.b},
                                                                   shape.max_T);
    if (!boundary.empty()) {
      out.converged = false;
      out.warnings.push_back(std::string(where) + ": boundary estimate: " + boundary +
                             "; the likelihood has no maximum inside the parameter space");
    }
    return out;
  }

  // fill_standard_errors takes parameters > 0 and differentiates in their logs. The coefficients
  // are passed as exp(gamma) (log exp(gamma) = gamma: the same curvature in gamma) and mapped back.
  void add_standard_errors(ClvFitResult& out, const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                            const ConstVectorRef<double>& T, const ConstMatrixRef<double>& Zt,
                            const ConstMatrixRef<double>& Zl, const double* w) const {
    const index kt = Zt.cols(), kl = Zl.cols(), k = 4 + kt + kl;
    std::vector<std::string> names{"r", "alpha", "a", "b"};
    std::vector<double> theta{params_.r, params_.alpha, params_.a, params_.b};
    for (index j = 0; j < kt; ++j) {
      names.push_back("trans[" + std::to_string(j) + "]");
      theta.push_back(std::exp(params_.gamma_trans[j]));
    }
    for (index j = 0; j < kl; ++j) {
      names.push_back("life[" + std::to_string(j) + "]");
      theta.push_back(std::exp(params_.gamma_life[j]));
    }
    std::vector<double> th(static_cast<std::size_t>(k)), g(static_cast<std::size_t>(k));
    detail::fill_standard_errors(
        out, std::move(names), theta,
        [&](const double* nat, double* grad) {
          for (index j = 0; j < k; ++j) th[static_cast<std::size_t>(j)] = std::log(nat[j]);
          detail::bgnbd_cov_log_likelihood(unpack_log(th.data(), kt, kl), f, r, T, Zt, Zl, w, g.data());
          // g is d LL / d(log theta); the hook wants d(-LL) / d theta.
          for (index j = 0; j < k; ++j) grad[j] = -g[static_cast<std::size_t>(j)] / nat[j];
        },
        "uvp::BgNbdCovariates::fit");
    const auto ku = static_cast<std::size_t>(k);
    for (index j = 0; j < kt; ++j) out.parameters[4 + static_cast<std::size_t>(j)] = params_.gamma_trans[j];
    for (index j = 0; j < kl; ++j) out.parameters[4 + static_cast<std::size_t>(kt + j)] = params_.gamma_life[j];
    if (out.standard_errors.empty()) return;
    // cov(exp g_i, exp g_j) = e^g_i e^g_j cov(g_i, g_j): divide the coefficients' rows and columns back.
    std::vector<double> inv(ku, 1.0);
    for (std::size_t i = 4; i < ku; ++i) inv[i] = 1 / theta[i];
    for (std::size_t i = 0; i < ku; ++i)
      for (std::size_t j = 0; j < ku; ++j) out.covariance[i * ku + j] *= inv[i] * inv[j];
    for (std::size_t i = 4; i < ku; ++i) out.standard_errors[i] = std::sqrt(out.covariance[i * ku + i]);
  }

  static BgNbdCovariatesParams unpack_log(const double* th, index kt, index kl) {
    return {std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3]),
            Eigen::Map<const Eigen::VectorXd>(th + 4, kt), Eigen::Map<const Eigen::VectorXd>(th + 4 + kt, kl)};
  }

  BgNbdCovariatesParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
