// SPDX-License-Identifier: Apache-2.0
// The Pareto/NBD model of repeat purchasing (with optional static covariates): fit and predictions.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/hypergeometric.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"
#include "uvp/detail/clv_identifiability.hpp"
#include "uvp/detail/clv_patterns.hpp"

namespace uvp {

/// Pareto/NBD parameters (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as a
/// Poisson process of rate lambda ~ Gamma(shape r, rate alpha) and stays alive for an exponential
/// time of rate mu ~ Gamma(shape s, rate beta), lambda and mu independent. alpha and beta are in
/// the time unit of recency and T. All four are > 0.
struct ParetoNbdParams {
  double r = 0;
  double alpha = 0;
  double s = 0;
  double beta = 0;
};

/// Options of ParetoNbd::fit (and ParetoNbdCovariates::fit).
struct ParetoNbdFitOptions {
  /// L2 penalty as BgNbdFitOptions::penalizer: the fit minimises
  /// -sum(w_i LL_i) / sum(w_i) + penalizer * (r^2 + alpha^2 + s^2 + beta^2).
  double penalizer = 0;
  /// Starting point; default r = s = 1 and alpha = beta = mean(T) (rates of about one purchase and
  /// one dropout per observation period: the scale of the data). When the fit from it does not
  /// converge, a few fixed alternative starts are tried and the best converged optimum is kept.
  std::optional<ParetoNbdParams> initial = std::nullopt;
  int max_iterations = 500;
  /// As BgNbdFitOptions::gradient_tolerance (on the gradient with respect to the log-parameters).
  double gradient_tolerance = 1e-10;
};

namespace detail {

inline void check_pnbd_params(const char* where, const ParetoNbdParams& p) {
  const double v[4] = {p.r, p.alpha, p.s, p.beta};
  const char* names[4] = {"r", "alpha", "s", "beta"};
  for (int i = 0; i < 4; ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      raise<invalid_argument>(where, ": parameter ", names[i], " must be finite and > 0, got ", v[i]);
}

/// The per-customer part of the Pareto/NBD log-likelihood (all but ln Gamma(r+x) - ln Gamma(r)),
/// in log space, with its gradient with respect to (r, alpha, s, beta) when g is not null and
/// P(alive | x, t_x, T) when p_alive is not null.
///
/// Fader & Hardie (2005, "A Note on Deriving the Pareto/NBD Model and Related Expressions", eq. 5
/// and the A_0 of their eq. 6) write the likelihood as
///   L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ A + s B ],
///   A = (alpha+T)^-(r+x) (beta+T)^-s,   B = int_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du,
/// where B is their difference of two 2F1(r+s+x, s+1 or r+x; r+s+x+1; .) terms (the alpha >= beta
/// and alpha < beta branches). Here B = J(t_x) - J(T) with J(t) = int_t^inf, and Euler's
/// transformation gives, with m = min(alpha, beta), M = max(alpha, beta), z = (M - m) / (M + t),
///   J(t) = (alpha+t)^-(r+x) (beta+t)^-(s+1) (m+t) H / (r+s+x),   H = 2F1(1, Q; r+s+x+1; z),
/// Q = r+x when alpha >= beta and s+1 otherwise (detail::log_hyp2f1_1qc: 1 <= H <= 1/(1-z)). Every
/// factor is taken in logs, B = J(t_x) (1 - J(T)/J(t_x)) by log1p, and ln(A + sB) by log-sum-exp,
/// so x = 10^4 or beta = 10^8 neither overflow nor cancel. P(alive) = A / (A + sB) (their eq. 11).
inline double pnbd_log_bracket(double r, double al, double s, double be, double x, double tx, double T, double* g,
                               double* p_alive) noexcept {
  const double q = r + x, a = r + s + x;
  const bool a_ge = al >= be;
  const double M = a_ge ? al : be, diff = std::abs(al - be);
  const double Q = a_ge ? q : s + 1, P = a_ge ? s + 1 : q;
  const double log_a = std::log(a);
  // ln J(t) and, when d is not null, its gradient.
  auto log_j = [&](double t, double* d) {
    const double at = al + t, bt = be + t;
    const double la = std::log(at), lb = std::log(bt);
    const double z = diff / (M + t);
    const LogHyp2f1Result H = log_hyp2f1_1qc(Q, P, z);
    const double v = -q * la - (s + 1) * lb + (a_ge ? lb : la) + H.value - log_a;
    if (d) {
      const double hr = a_ge ? H.dQ : H.dP, hs = a_ge ? H.dP : H.dQ;
      const double dz_dal = a_ge ? bt / (at * at) : -1 / bt;
      const double dz_dbe = a_ge ? -1 / at : at / (bt * bt);
      d[0] = -la + hr - 1 / a;
      d[1] = -q / at + (a_ge ? 0.0 : 1 / at) + H.dz * dz_dal;
      d[2] = -lb + hs - 1 / a;
      d[3] = -(s + 1) / bt + (a_ge ? 1 / bt : 0.0) + H.dz * dz_dbe;
    }
    return v;
  };
  const double laT = std::log(al + T), lbT = std::log(be + T);
  const double lA = -q * laT - s * lbT;
  double ell = lA, wA = 1;
  double dB[4] = {0, 0, 0, 0};
  double wB = 0;
  if (tx < T) {
    double d1[4], d2[4];
    const double l1 = log_j(tx, g ? d1 : nullptr), l2 = log_j(T, g ? d2 : nullptr);
    const double e = std::exp(l2 - l1);
    if (e < 1) {  // else B is below rounding of J(t_x) (t_x within ~1e-16 of T): B = 0
      const double lsB = std::log(s) + l1 + std::log1p(-e);
      const double hi = std::max(lA, lsB);
      ell = hi + std::log1p(std::exp(std::min(lA, lsB) - hi));
      wA = std::exp(lA - ell);
      wB = std::exp(lsB - ell);
      if (g) {
        const double k = e / (1 - e);
        for (int i = 0; i < 4; ++i) dB[i] = d1[i] + k * (d1[i] - d2[i]);
        dB[2] += 1 / s;
      }
    }
  }
  if (p_alive) *p_alive = wA;
  if (g) {
    const double dA[4] = {-laT, -q / (al + T), -lbT, -s / (be + T)};
    for (int i = 0; i < 4; ++i) g[i] = wA * dA[i] + wB * dB[i];
    g[0] += std::log(al);
    g[1] += r / al;
    g[2] += std::log(be);
    g[3] += s / be;
  }
  return r * std::log(al) + s * std::log(be) + ell;
}

/// The Pareto/NBD log-likelihood of a data set, evaluated once per distinct (x, t_x, T) pattern
/// (customers sharing one are merged, their weights added: calendar-time data repeat patterns
/// heavily), patterns in fixed chunks spread over threads and summed in chunk order (results do not
/// depend on the thread count), and the ln Gamma(r+x) terms once per distinct x. evaluate()
/// allocates nothing; it is not reentrant (one chunk buffer per object).
class ParetoNbdLikelihood {
 public:
  ParetoNbdLikelihood(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r, const ConstVectorRef<double>& T,
                      const double* w) {
    // Sort contiguous (x, t_x, T, w) records (cheaper than an index sort at 10^7 customers), then
    // merge equal patterns.
    const index n = f.size();
    std::vector<std::array<double, 4>> rec(static_cast<std::size_t>(n));
    for (index i = 0; i < n; ++i) rec[static_cast<std::size_t>(i)] = {f[i], r[i], T[i], w ? w[i] : 1.0};
    std::sort(rec.begin(), rec.end(), [](const std::array<double, 4>& u, const std::array<double, 4>& v) {
      return u[0] != v[0] ? u[0] < v[0] : u[1] != v[1] ? u[1] < v[1] : u[2] < v[2];
    });
    for (const auto& q : rec) {
      const double wi = q[3];
      total_weight_ += wi;
      if (wi > 0) ++positive_;
      if (!x_.empty() && x_.back() == q[0] && tx_.back() == q[1] && T_.back() == q[2]) {
        w_.back() += wi;
      } else {
        x_.push_back(q[0]);
        tx_.push_back(q[1]);
        T_.push_back(q[2]);
        w_.push_back(wi);
      }
      if (xs_.empty() || xs_.back().first != q[0]) xs_.push_back({q[0], 0.0});
      xs_.back().second += wi;
    }
    const index np = patterns();
    part_.resize(static_cast<std::size_t>((np + chunk - 1) / chunk));
  }

  double total_weight() const noexcept { return total_weight_; }
  index patterns() const noexcept { return static_cast<index>(x_.size()); }
  index customers_with_weight() const noexcept { return positive_; }

  /// Sum of w_i LL_i at p; when grad is not null, writes d/d(r, alpha, s, beta) of that sum.
  double evaluate(const ParetoNbdParams& p, double* grad) const {
    const index np = patterns(), nc = static_cast<index>(part_.size());
    const bool want = grad != nullptr;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (np > 4 * chunk)
#endif
    for (index c = 0; c < nc; ++c) {
      std::array<double, 5> acc{0, 0, 0, 0, 0};
      const index end = std::min(np, (c + 1) * chunk);
      for (index k = c * chunk; k < end; ++k) {
        const std::size_t u = static_cast<std::size_t>(k);
        double g[4];
        const double ll = pnbd_log_bracket(p.r, p.alpha, p.s, p.beta, x_[u], tx_[u], T_[u], want ? g : nullptr, nullptr);
        acc[0] += w_[u] * ll;
        if (want)
          for (int i = 0; i < 4; ++i) acc[static_cast<std::size_t>(i) + 1] += w_[u] * g[i];
      }
      part_[static_cast<std::size_t>(c)] = acc;
    }
    std::array<double, 5> tot{0, 0, 0, 0, 0};
    for (const auto& a : part_)
      for (std::size_t i = 0; i < 5; ++i) tot[i] += a[i];
    const double lg_r = log_gamma(p.r), ps_r = want ? digamma(p.r) : 0.0;
    for (const auto& xw : xs_) {
      tot[0] += xw.second * (log_gamma(p.r + xw.first) - lg_r);
      if (want) tot[1] += xw.second * (digamma(p.r + xw.first) - ps_r);
    }
    if (want)
      for (int i = 0; i < 4; ++i) grad[i] = tot[static_cast<std::size_t>(i) + 1];
    return tot[0];
  }

 private:
  static constexpr index chunk = 512;
  std::vector<double> x_, tx_, T_, w_;
  std::vector<std::pair<double, double>> xs_;  // distinct x, total weight
  mutable std::vector<std::array<double, 5>> part_;
  double total_weight_ = 0;
  index positive_ = 0;
};

/// -expm1(-c L) / c, and its limit L as c -> 0 (stable for c near 0 and either sign).
inline double one_minus_exp_over(double c, double L) noexcept {
  const double cl = c * L;
  if (std::abs(cl) < 1e-8) return L * (1 - cl / 2);
  return -std::expm1(-cl) / c;
}

/// E[Y(t) | x, t_x, T] (Fader & Hardie's note, eq. 22; Schmittlein et al. 1987):
///   (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive),
/// with the s = 1 limit (r+x)(beta+T)/(alpha+T) ln(1 + t/(beta+T)) P(alive) taken smoothly.
inline double pnbd_conditional_expected(const ParetoNbdParams& p, double t, double x, double tx, double T) noexcept {
  double alive;
  pnbd_log_bracket(p.r, p.alpha, p.s, p.beta, x, tx, T, nullptr, &alive);
  return (p.r + x) * (p.beta + T) / (p.alpha + T) * one_minus_exp_over(p.s - 1, std::log1p(t / (p.beta + T))) * alive;
}

/// DERT with continuous discounting at rate delta per time unit (Fader, Hardie & Lee 2005, "RFM and
/// CLV: Using Iso-Value Curves for Customer Base Analysis", eq. 2): the expected discounted number of
/// transactions after T,
///   P(alive) (r+x)/(alpha+T) int_0^inf e^(-delta t) (1 + t/(beta+T))^-s dt
///   = P(alive) (r+x)(beta+T)/(alpha+T) U(1, 2-s, delta (beta+T)),
/// which equals their alpha^r beta^s delta^(s-1) Gamma(r+x+1) U(s, s; delta(beta+T)) /
/// (Gamma(r) (alpha+T)^(r+x+1) L) by Kummer's transformation U(s, s, z) = z^(1-s) U(1, 2-s, z).
inline double pnbd_dert(const ParetoNbdParams& p, double delta, double x, double tx, double T) noexcept {
  double alive;
  pnbd_log_bracket(p.r, p.alpha, p.s, p.beta, x, tx, T, nullptr, &alive);
  const double bt = p.beta + T;
  const double z = delta * bt;  // U(1, 2-s, z) = z^(s-1) U(s, s, z): integrate with the larger first parameter
  const double lu = p.s >= 1 ? (p.s - 1) * std::log(z) + log_hyperu_integral(p.s, p.s, z)
                             : log_hyperu_integral(1, 2 - p.s, z);
  return alive * (p.r + x) * bt / (p.alpha + T) * std::exp(lu);
}

inline void check_pnbd_options(const char* where, const ParetoNbdFitOptions& opt) {
  if (!std::isfinite(opt.penalizer) || opt.penalizer < 0)
    raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", opt.penalizer);
  check_positive(where, "max_iterations", opt.max_iterations);
  check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
  if (opt.initial) check_pnbd_params(where, *opt.initial);
}

}  // namespace detail

/// Sum over customers of the Pareto/NBD log-likelihood at `params` (see
/// detail::pnbd_log_bracket for the formulation); when `gradient` is not null it receives
/// d/d(r, alpha, s, beta) of that sum (analytic). Data as for ParetoNbd::fit.
inline double pnbd_log_likelihood(const ParetoNbdParams& params, const ConstVectorRef<double>& frequency,
                                  const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                  Eigen::Vector4d* gradient = nullptr) {
  constexpr const char* where = "uvp::pnbd_log_likelihood";
  detail::check_pnbd_params(where, params);
  detail::check_rft(where, frequency, recency, T);
  const detail::ParetoNbdLikelihood lik(frequency, recency, T, nullptr);
  double g[4];
  const double ll = lik.evaluate(params, gradient ? g : nullptr);
  if (gradient) *gradient << g[0], g[1], g[2], g[3];
  return ll;
}

/// The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987, "Counting Your Customers: Who Are
/// They and What Will They Do Next?", Management Science 33(1)), in the parameterisation of
/// Fader & Hardie's notes, BTYD's pnbd.* and lifetimes' ParetoNBDFitter.
///
/// Data as for BgNbd: frequency x (whole number of repeat purchases), recency t_x, T, all in one
/// time unit, 0 <= t_x <= T, t_x = 0 when x = 0. Fit: maximum likelihood over log(r, alpha, s, beta)
/// by BFGS with the analytic gradient, a fixed multi-start fallback, and standard errors from the
/// observed information. Data that cannot identify the parameters (no repeat purchases, every T = 0,
/// or one customer / identical histories without a penalizer) throw uvp::invalid_argument, as in
/// BgNbd::fit; estimates running off to a boundary are reported with converged = false and a warning.
/// Predictions are parallel over customers (OpenMP).
class ParetoNbd {
 public:
  ParetoNbd() = default;
  explicit ParetoNbd(const ParetoNbdParams& params) : params_(params), fitted_(true) {
    detail::check_pnbd_params("uvp::ParetoNbd::ParetoNbd", params);
  }

  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ParetoNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, nullptr, 0, options);
  }
  /// Weighted fit: customer i counts weights[i] times. Weights finite and >= 0.
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstVectorRef<double>& weights,
                   const ParetoNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, weights.data(), weights.size(), options);
  }
  ClvFitResult fit(const CustomerSummary& summary, const ParetoNbdFitOptions& options = {}) {
    return fit(summary.frequency, summary.recency, summary.T, options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const ParetoNbdParams& params() const {
    require_fitted("params");
    return params_;
  }

  double log_likelihood(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                        const ConstVectorRef<double>& T) const {
    require_fitted("log_likelihood");
    return pnbd_log_likelihood(params_, frequency, recency, T);
  }

  /// E[X(t)]: expected repeat purchases in (0, t] of a new customer,
  /// r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (Fader & Hardie's note, eq. 17; s = 1: the limit).
  double expected_purchases(double t) const {
    require_fitted("expected_purchases");
    check_nonneg("uvp::ParetoNbd::expected_purchases", "t", t);
    const auto& p = params_;
    return p.r * p.beta / p.alpha * detail::one_minus_exp_over(p.s - 1, std::log1p(t / p.beta));
  }

  /// E[Y(t) | x, t_x, T]: expected purchases in the next t time units (detail::pnbd_conditional_expected).
  double conditional_expected_purchases(double t, double frequency, double recency, double T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::ParetoNbd::conditional_expected_purchases";
    check_nonneg(where, "t", t);
    check_one(where, frequency, recency, T);
    return detail::pnbd_conditional_expected(params_, t, frequency, recency, T);
  }
  Vector<double> conditional_expected_purchases(double t, const ConstVectorRef<double>& frequency,
                                                const ConstVectorRef<double>& recency,
                                                const ConstVectorRef<double>& T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::ParetoNbd::conditional_expected_purchases";
    check_nonneg(where, "t", t);
    detail::check_rft(where, frequency, recency, T);
    return map_customers(frequency, recency, T, [&](double x, double tx, double TT) {
      return detail::pnbd_conditional_expected(params_, t, x, tx, TT);
    });
  }

  /// P(alive | x, t_x, T) = A / (A + s B) (Fader & Hardie's note, eq. 11).
  double probability_alive(double frequency, double recency, double T) const {
    require_fitted("probability_alive");
    check_one("uvp::ParetoNbd::probability_alive", frequency, recency, T);
    return alive(frequency, recency, T);
  }
  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& T) const {
    require_fitted("probability_alive");
    detail::check_rft("uvp::ParetoNbd::probability_alive", frequency, recency, T);
    return map_customers(frequency, recency, T, [&](double x, double tx, double TT) { return alive(x, tx, TT); });
  }

  /// Discounted expected residual transactions with continuous discounting: sum over future
  /// purchases of e^(-delta t), delta the continuous discount rate per time unit of the data
  /// (weeks for CDNOW: an annual rate of 15% compounded is delta = ln(1.15) / 52). Multiply by the
  /// expected margin per transaction for a CLV (Fader, Hardie & Lee 2005; detail::pnbd_dert).
  double discounted_expected_transactions(double delta, double frequency, double recency, double T) const {
    require_fitted("discounted_expected_transactions");
    constexpr const char* where = "uvp::ParetoNbd::discounted_expected_transactions";
    check_delta(where, delta);
    check_one(where, frequency, recency, T);
    return detail::pnbd_dert(params_, delta, frequency, recency, T);
  }
  Vector<double> discounted_expected_transactions(double delta, const ConstVectorRef<double>& frequency,
                                                  const ConstVectorRef<double>& recency,
                                                  const ConstVectorRef<double>& T) const {
    require_fitted("discounted_expected_transactions");
    constexpr const char* where = "uvp::ParetoNbd::discounted_expected_transactions";
    check_delta(where, delta);
    detail::check_rft(where, frequency, recency, T);
    return map_customers(frequency, recency, T, [&](double x, double tx, double TT) {
      return detail::pnbd_dert(params_, delta, x, tx, TT);
    });
  }

 private:
  double alive(double x, double tx, double T) const noexcept {
    double a;
    detail::pnbd_log_bracket(params_.r, params_.alpha, params_.s, params_.beta, x, tx, T, nullptr, &a);
    return a;
  }
  template <class F>
  static Vector<double> map_customers(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                                      const ConstVectorRef<double>& T, F&& fn) {
    return detail::map_customer_patterns(f, r, T, fn);  // once per distinct (x, t_x, T) when that pays
  }
  void require_fitted(const char* what) const {
    if (!fitted_)
      detail::raise<not_fitted_error>("uvp::ParetoNbd::", what, ": the model is not fitted (call fit() first)");
  }
  static void check_nonneg(const char* where, const char* what, double t) {
    if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": ", what, " must be finite and >= 0, got ", t);
  }
  static void check_delta(const char* where, double delta) {
    if (!std::isfinite(delta) || !(delta > 0))
      detail::raise<invalid_argument>(where, ": delta (discount rate per time unit) must be finite and > 0, got ", delta);
  }
  static void check_one(const char* where, double x, double tx, double T) { detail::check_one_rft(where, x, tx, T); }

  ClvFitResult fit_impl(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                        const ConstVectorRef<double>& T, const double* w, index w_size, const ParetoNbdFitOptions& opt) {
    constexpr const char* where = "uvp::ParetoNbd::fit";
    detail::check_pnbd_options(where, opt);
    detail::check_rft(where, f, r, T, w, w_size);
    // Hash-grouped first when that pays (10^7 customers: no sort of every customer).
    const auto lik = detail::grouped_likelihood<detail::ParetoNbdLikelihood>(f, r, T, w);
    const double W = lik.total_weight();
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": weights sum to 0");
    // Data that cannot identify the parameters are refused (the rule of every BTYD fit).
    const detail::ClvDataShape shape = detail::clv_data_shape(f, r, T, w);
    const std::string identical = detail::check_identifiable(
        where, shape, f, r, T, opt.penalizer,
        "the purchase rate's estimate is 0 (r / alpha -> 0) and the dropout rate does not enter the likelihood");
    const double maxT = shape.max_T, wT = shape.sum_wT;
    const double meanT = maxT > 0 ? wT / W : 1.0;

    const double lambda = opt.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const ParetoNbdParams p{std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3])};
      const double pv[4] = {p.r, p.alpha, p.s, p.beta};
      for (double v : pv)
        if (!(v > 0) || !std::isfinite(v)) return std::numeric_limits<double>::infinity();
      double grad[4];
      const double ll = lik.evaluate(p, grad);
      double fv = -ll / W;
      for (int i = 0; i < 4; ++i) {
        fv += lambda * pv[i] * pv[i];
        g[i] = pv[i] * (-grad[i] / W + 2 * lambda * pv[i]);
      }
      return std::isfinite(fv) ? fv : std::numeric_limits<double>::infinity();
    };
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    auto run = [&](const ParetoNbdParams& s) {
      Eigen::VectorXd th0(4);
      th0 << std::log(s.r), std::log(s.alpha), std::log(s.s), std::log(s.beta);
      return detail::bfgs_minimize(objective, th0, bo);
    };
    std::vector<ParetoNbdParams> starts{opt.initial ? *opt.initial : ParetoNbdParams{1, meanT, 1, meanT}};
    // Fallbacks (used only when the previous starts did not converge): slower and faster purchase
    // and dropout rates, small shapes (heterogeneous customers).
    starts.push_back({0.5, meanT / 4, 0.5, meanT * 4});
    starts.push_back({0.5, meanT * 4, 0.5, meanT / 4});
    starts.push_back({0.1, 1, 0.1, 1});
    starts.push_back({2, std::max(maxT, 1e-3), 2, std::max(maxT, 1e-3)});
    detail::BfgsResult best;
    int tried = 0, iterations = 0, evaluations = 0;
    for (const auto& s : starts) {
      const detail::BfgsResult res = run(s);
      ++tried;
      iterations += res.iterations;
      evaluations += res.evaluations;
      const bool better = std::isfinite(res.f) && (!std::isfinite(best.f) || (res.converged && !best.converged) ||
                                                   (res.converged == best.converged && res.f < best.f));
      if (better) best = res;
      if (best.converged) break;
    }
    ClvFitResult out;
    out.iterations = iterations;
    out.evaluations = evaluations;
    out.customers = f.size();
    out.message = best.message;
    if (!std::isfinite(best.f)) {
      out.message = "the log-likelihood is not finite at any starting point";
      out.warnings.push_back(std::string(where) + ": " + out.message + "; the model was not changed");
      return out;
    }
    params_ = {std::exp(best.x[0]), std::exp(best.x[1]), std::exp(best.x[2]), std::exp(best.x[3])};
    fitted_ = true;
    out.converged = best.converged;
    out.objective = best.f;
    out.log_likelihood = lik.evaluate(params_, nullptr);
    if (tried > 1 && best.converged)
      out.warnings.push_back(std::string(where) + ": the default start did not converge; kept the best of " +
                             std::to_string(tried) + " starts");
    if (!best.converged)
      out.warnings.push_back(std::string(where) + ": the optimizer did not converge from " + std::to_string(tried) +
                             " starts (" + best.message + ")");
    if (!identical.empty())
      out.warnings.push_back(std::string(where) + ": " + identical + "; the estimate is set by the penalizer");
    const double pv[4] = {params_.r, params_.alpha, params_.s, params_.beta};
    const char* names[4] = {"r", "alpha", "s", "beta"};
    if (params_.s > 1e4)
      out.warnings.push_back(std::string(where) + ": s = " + std::to_string(params_.s) +
                             " and beta grow together: the data do not identify heterogeneity in the dropout "
                             "rate (all customers drop out at about s/beta = " + std::to_string(params_.s / params_.beta) +
                             " per time unit; converged = false)");
    if (params_.r > 1e4)
      out.warnings.push_back(std::string(where) + ": r = " + std::to_string(params_.r) +
                             " and alpha grow together: the data do not identify heterogeneity in the purchase "
                             "rate (converged = false)");
    if (params_.s > 1e4 || params_.r > 1e4) out.converged = false;
    for (int i = 0; i < 4; ++i)
      if (std::abs(std::log(pv[i])) > 23) {  // beyond 1e10 or below 1e-10: running off to a boundary
        out.converged = false;
        out.warnings.push_back(std::string(where) + ": parameter " + names[i] + " = " + std::to_string(pv[i]) +
                               " is running off to a boundary of the parameter space (converged = false)");
      }
    const std::vector<double> theta(pv, pv + 4);
    detail::fill_standard_errors(
        out, {"r", "alpha", "s", "beta"}, theta,
        [&](const double* th, double* grad) {
          lik.evaluate({th[0], th[1], th[2], th[3]}, grad);
          for (int i = 0; i < 4; ++i) grad[i] = -grad[i];
        },
        where);
    return out;
  }

  ParetoNbdParams params_{};
  bool fitted_ = false;
};

/// Pareto/NBD with static covariates, in CLVTools' parameterisation (pnbd with static covariates;
/// Bachmann, Meierer & Naef): each customer i has the purchase and dropout scale parameters
///   alpha_i = alpha exp(-gamma_trans' z_trans_i),   beta_i = beta exp(-gamma_life' z_life_i),
/// so a positive gamma_trans[k] raises the expected purchase rate r / alpha_i with z_trans_i[k], and a
/// positive gamma_life[k] raises the dropout rate s / beta_i. r and s are shared.
struct ParetoNbdCovariateParams {
  ParetoNbdParams base;      ///< r, alpha, s, beta at z = 0
  Vector<double> gamma_trans;  ///< one per column of z_trans
  Vector<double> gamma_life;   ///< one per column of z_life
};

/// A separate class (not an option of ParetoNbd) because its data carry two covariate matrices and
/// its likelihood has no shared patterns to merge: every customer has their own alpha_i and beta_i.
/// Fit: maximum likelihood over (log r, log alpha, log s, log beta, gamma_trans, gamma_life) by BFGS
/// with the analytic gradient (the chain rule through alpha_i and beta_i), started from the fit
/// without covariates and gamma = 0. Standard errors: the observed information in those
/// coordinates by central differences of the analytic gradient, mapped to the natural parameters
/// (result.parameter_names: r, alpha, s, beta, trans[j].., life[j]..). Predictions: the Pareto/NBD
/// ones at (r, alpha_i, s, beta_i).
class ParetoNbdCovariates {
 public:
  ParetoNbdCovariates() = default;

  /// z_trans (n x k1) and z_life (n x k2): one row per customer (k1 or k2 may be 0); finite.
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstMatrixRef<double>& z_trans,
                   const ConstMatrixRef<double>& z_life, const ParetoNbdFitOptions& options = {}) {
    constexpr const char* where = "uvp::ParetoNbdCovariates::fit";
    detail::check_pnbd_options(where, options);
    detail::check_rft(where, frequency, recency, T);
    check_covariates(where, frequency.size(), z_trans, z_life);
    const index n = frequency.size(), k1 = z_trans.cols(), k2 = z_life.cols(), k = 4 + k1 + k2;
    ParetoNbd base;
    ClvFitResult out = base.fit(frequency, recency, T, options);
    ParetoNbdParams b0 = base.is_fitted() ? base.params() : ParetoNbdParams{1, 1, 1, 1};
    if (!out.converged) b0 = options.initial ? *options.initial : ParetoNbdParams{1, std::max(T.mean(), 1e-3), 1, std::max(T.mean(), 1e-3)};
    const std::vector<std::string> base_warnings = out.warnings;
    std::vector<std::array<double, 5>> part(static_cast<std::size_t>((n + chunk - 1) / chunk));
    std::vector<double> gbuf(static_cast<std::size_t>(k));
    std::vector<std::vector<double>> gcov(part.size(), std::vector<double>(static_cast<std::size_t>(k1 + k2)));
    // Sum of LL_i and its gradient in theta = (log r, log alpha, log s, log beta, gamma_trans, gamma_life).
    auto loglik = [&](const Eigen::VectorXd& th, double* g) {
      const double r = std::exp(th[0]), al = std::exp(th[1]), s = std::exp(th[2]), be = std::exp(th[3]);
      const index nc = static_cast<index>(part.size());
      std::fill(gbuf.begin(), gbuf.end(), 0.0);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (n > 4 * chunk)
#endif
      for (index c = 0; c < nc; ++c) {
        std::array<double, 5> acc{0, 0, 0, 0, 0};
        std::vector<double>& gc = gcov[static_cast<std::size_t>(c)];
        std::fill(gc.begin(), gc.end(), 0.0);
        const index end = std::min(n, (c + 1) * chunk);
        for (index i = c * chunk; i < end; ++i) {
          double et = 0, el = 0;
          for (index j = 0; j < k1; ++j) et += th[4 + j] * z_trans(i, j);
          for (index j = 0; j < k2; ++j) el += th[4 + k1 + j] * z_life(i, j);
          const double ai = al * std::exp(-et), bi = be * std::exp(-el), x = frequency[i];
          double gi[4];
          const double ll = detail::log_gamma(r + x) - detail::log_gamma(r) +
                            detail::pnbd_log_bracket(r, ai, s, bi, x, recency[i], T[i], g ? gi : nullptr, nullptr);
          acc[0] += ll;
          if (g) {
            const double ga = gi[1] * ai, gb = gi[3] * bi;  // d/d log alpha_i, d/d log beta_i
            acc[1] += (gi[0] + detail::digamma(r + x) - detail::digamma(r)) * r;
            acc[2] += ga;
            acc[3] += gi[2] * s;
            acc[4] += gb;
            for (index j = 0; j < k1; ++j) gc[static_cast<std::size_t>(j)] -= ga * z_trans(i, j);
            for (index j = 0; j < k2; ++j) gc[static_cast<std::size_t>(k1 + j)] -= gb * z_life(i, j);
          }
        }
        part[static_cast<std::size_t>(c)] = acc;
      }
      double ll = 0;
      for (index c = 0; c < nc; ++c) {
        const auto& a = part[static_cast<std::size_t>(c)];
        ll += a[0];
        if (g) {
          for (int j = 0; j < 4; ++j) gbuf[static_cast<std::size_t>(j)] += a[static_cast<std::size_t>(j) + 1];
          for (index j = 0; j < k1 + k2; ++j)
            gbuf[static_cast<std::size_t>(4 + j)] += gcov[static_cast<std::size_t>(c)][static_cast<std::size_t>(j)];
        }
      }
      if (g) std::copy(gbuf.begin(), gbuf.end(), g);
      return ll;
    };
    const double N = static_cast<double>(n), lambda = options.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      for (int j = 0; j < 4; ++j)
        if (!std::isfinite(std::exp(th[j])) || !(std::exp(th[j]) > 0)) return std::numeric_limits<double>::infinity();
      const double ll = loglik(th, g.data());
      double fv = -ll / N;
      for (index j = 0; j < k; ++j) g[j] = -g[j] / N;
      for (int j = 0; j < 4; ++j) {
        const double v = std::exp(th[j]);
        fv += lambda * v * v;
        g[j] += 2 * lambda * v * v;
      }
      return std::isfinite(fv) && g.allFinite() ? fv : std::numeric_limits<double>::infinity();
    };
    Eigen::VectorXd th0 = Eigen::VectorXd::Zero(k);
    th0[0] = std::log(b0.r), th0[1] = std::log(b0.alpha), th0[2] = std::log(b0.s), th0[3] = std::log(b0.beta);
    detail::BfgsOptions bo;
    bo.max_iterations = options.max_iterations;
    bo.gradient_tolerance = options.gradient_tolerance;
    const detail::BfgsResult res = detail::bfgs_minimize(objective, th0, bo);
    ClvFitResult fr;
    fr.iterations = res.iterations;
    fr.evaluations = res.evaluations;
    fr.customers = n;
    fr.message = res.message;
    fr.warnings = base_warnings;  // what the fit without covariates found about the data
    if (!std::isfinite(res.f)) {
      fr.message = "the log-likelihood is not finite at the starting point";
      fr.warnings.push_back(std::string(where) + ": " + fr.message + "; the model was not changed");
      return fr;
    }
    params_.base = {std::exp(res.x[0]), std::exp(res.x[1]), std::exp(res.x[2]), std::exp(res.x[3])};
    params_.gamma_trans = res.x.segment(4, k1);
    params_.gamma_life = res.x.segment(4 + k1, k2);
    fitted_ = true;
    fr.converged = res.converged && out.converged;
    fr.objective = res.f;
    fr.log_likelihood = loglik(res.x, nullptr);
    if (!res.converged) fr.warnings.push_back(std::string(where) + ": the optimizer did not converge (" + res.message + ")");
    // Observed information in theta: central differences of the analytic gradient, symmetrised.
    std::vector<std::string> names{"r", "alpha", "s", "beta"};
    for (index j = 0; j < k1; ++j) names.push_back("trans[" + std::to_string(j) + "]");
    for (index j = 0; j < k2; ++j) names.push_back("life[" + std::to_string(j) + "]");
    fr.parameter_names = names;
    fr.parameters.assign(res.x.data(), res.x.data() + k);
    for (int j = 0; j < 4; ++j) fr.parameters[static_cast<std::size_t>(j)] = std::exp(res.x[j]);
    Eigen::MatrixXd H(k, k);
    Eigen::VectorXd gp(k), gm(k), th = res.x;
    constexpr double h = 1e-4;
    for (index j = 0; j < k; ++j) {
      th = res.x;
      th[j] += h;
      loglik(th, gp.data());
      th[j] -= 2 * h;
      loglik(th, gm.data());
      H.row(j) = -(gp - gm).transpose() / (2 * h);
    }
    H = (0.5 * (H + H.transpose())).eval();
    Eigen::LLT<Eigen::MatrixXd> llt(H);
    if (!H.allFinite() || llt.info() != Eigen::Success) {
      fr.warnings.push_back(std::string(where) +
                            ": standard errors not available: the observed information is not positive definite");
    } else {
      Eigen::MatrixXd cov = llt.solve(Eigen::MatrixXd::Identity(k, k));
      Eigen::VectorXd J = Eigen::VectorXd::Ones(k);  // d natural / d theta
      for (int j = 0; j < 4; ++j) J[j] = std::exp(res.x[j]);
      cov = (J.asDiagonal() * cov * J.asDiagonal()).eval();
      fr.covariance.assign(static_cast<std::size_t>(k * k), 0.0);
      for (index a = 0; a < k; ++a)
        for (index b = 0; b < k; ++b) fr.covariance[static_cast<std::size_t>(a * k + b)] = cov(a, b);
      for (index a = 0; a < k; ++a) fr.standard_errors.push_back(std::sqrt(cov(a, a)));
    }
    return fr;
  }

  bool is_fitted() const noexcept { return fitted_; }
  const ParetoNbdCovariateParams& params() const {
    require_fitted("params");
    return params_;
  }

  /// The Pareto/NBD parameters of one customer: (r, alpha_i, s, beta_i).
  ParetoNbdParams customer_params(const ConstVectorRef<double>& z_trans, const ConstVectorRef<double>& z_life) const {
    require_fitted("customer_params");
    constexpr const char* where = "uvp::ParetoNbdCovariates::customer_params";
    check_size(where, "z_trans", z_trans.size(), params_.gamma_trans.size());
    check_size(where, "z_life", z_life.size(), params_.gamma_life.size());
    detail::check_finite(where, "z_trans", z_trans);
    detail::check_finite(where, "z_life", z_life);
    return individual(z_trans.dot(params_.gamma_trans), z_life.dot(params_.gamma_life));
  }

  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& T, const ConstMatrixRef<double>& z_trans,
                                   const ConstMatrixRef<double>& z_life) const {
    return predict("probability_alive", frequency, recency, T, z_trans, z_life,
                   [](const ParetoNbdParams& p, double x, double tx, double TT) {
                     double a;
                     detail::pnbd_log_bracket(p.r, p.alpha, p.s, p.beta, x, tx, TT, nullptr, &a);
                     return a;
                   });
  }
  Vector<double> conditional_expected_purchases(double t, const ConstVectorRef<double>& frequency,
                                                const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                                const ConstMatrixRef<double>& z_trans,
                                                const ConstMatrixRef<double>& z_life) const {
    if (!std::isfinite(t) || t < 0)
      detail::raise<invalid_argument>("uvp::ParetoNbdCovariates::conditional_expected_purchases: t must be finite and >= 0, got ", t);
    return predict("conditional_expected_purchases", frequency, recency, T, z_trans, z_life,
                   [t](const ParetoNbdParams& p, double x, double tx, double TT) {
                     return detail::pnbd_conditional_expected(p, t, x, tx, TT);
                   });
  }

 private:
  static constexpr index chunk = 512;
  ParetoNbdParams individual(double et, double el) const {
    return {params_.base.r, params_.base.alpha * std::exp(-et), params_.base.s, params_.base.beta * std::exp(-el)};
  }
  template <class F>
  Vector<double> predict(const char* what, const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                         const ConstVectorRef<double>& T, const ConstMatrixRef<double>& zt,
                         const ConstMatrixRef<double>& zl, F&& fn) const {
    require_fitted(what);
    const std::string where = std::string("uvp::ParetoNbdCovariates::") + what;
    detail::check_rft(where.c_str(), f, r, T);
    check_covariates(where.c_str(), f.size(), zt, zl);
    detail::check_cols(where.c_str(), "z_trans", zt.cols(), params_.gamma_trans.size());
    detail::check_cols(where.c_str(), "z_life", zl.cols(), params_.gamma_life.size());
    const index n = f.size();
    Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1024) if (n > 4096)
#endif
    for (index i = 0; i < n; ++i)
      out[i] = fn(individual(zt.row(i).dot(params_.gamma_trans.transpose()), zl.row(i).dot(params_.gamma_life.transpose())),
                  f[i], r[i], T[i]);
    return out;
  }
  static void check_covariates(const char* where, index n, const ConstMatrixRef<double>& zt,
                               const ConstMatrixRef<double>& zl) {
    detail::check_rows(where, "z_trans", zt.rows(), n);
    detail::check_rows(where, "z_life", zl.rows(), n);
    for (index i = 0; i < zt.rows(); ++i)
      for (index j = 0; j < zt.cols(); ++j)
        if (!std::isfinite(zt(i, j)))
          detail::raise<invalid_argument>(where, ": z_trans(", i, ", ", j, ") = ", zt(i, j), " must be finite");
    for (index i = 0; i < zl.rows(); ++i)
      for (index j = 0; j < zl.cols(); ++j)
        if (!std::isfinite(zl(i, j)))
          detail::raise<invalid_argument>(where, ": z_life(", i, ", ", j, ") = ", zl(i, j), " must be finite");
  }
  static void check_size(const char* where, const char* what, index got, index want) {
    detail::check_size(where, what, got, want);
  }
  void require_fitted(const char* what) const {
    if (!fitted_)
      detail::raise<not_fitted_error>("uvp::ParetoNbdCovariates::", what, ": the model is not fitted (call fit() first)");
  }

  ParetoNbdCovariateParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
