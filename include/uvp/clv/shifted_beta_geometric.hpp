// SPDX-License-Identifier: Apache-2.0
// The shifted-beta-geometric (sBG) model of contractual retention: fit on a survival curve, projections.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"

namespace uvp {

/// sBG parameters: each customer of a cohort cancels at the end of each period with a constant
/// probability theta ~ Beta(gamma, delta) across customers. Fader & Hardie (2007) call the two
/// shape parameters alpha and beta; uvp uses gamma and delta, the names Fader & Hardie give the
/// same dropout distribution in their later contractual-valuation and BG/BB papers, so that
/// "alpha" keeps meaning a BTYD purchase-side parameter. Both > 0, dimensionless (time is in periods).
struct ShiftedBetaGeometricParams {
  double gamma = 0;  ///< the paper's alpha
  double delta = 0;  ///< the paper's beta
};

/// Options of ShiftedBetaGeometric::fit.
struct ShiftedBetaGeometricFitOptions {
  /// Starting point; default gamma = delta = 1 (fallbacks (0.1, 0.1) and (5, 20) are tried when
  /// BFGS does not converge from it).
  std::optional<ShiftedBetaGeometricParams> initial = std::nullopt;
  int max_iterations = 500;
  /// BFGS stops when every component of the gradient with respect to the log-parameters is below
  /// gradient_tolerance * max(1, |objective|).
  double gradient_tolerance = 1e-10;
};

namespace detail {

inline void check_sbg_params(const char* where, const ShiftedBetaGeometricParams& p) {
  if (!(p.gamma > 0) || !std::isfinite(p.gamma))
    raise<invalid_argument>(where, ": parameter gamma must be finite and > 0, got ", p.gamma);
  if (!(p.delta > 0) || !std::isfinite(p.delta))
    raise<invalid_argument>(where, ": parameter delta must be finite and > 0, got ", p.delta);
}

/// A survival curve: not empty, finite, >= 0, non-increasing, and survivors[0] > 0.
inline void check_survivors(const char* where, const ConstVectorRef<double>& s) {
  if (s.size() == 0)
    raise<invalid_argument>(where, ": survivors is empty (give the cohort size, then the number still active at the "
                                   "end of each period)");
  for (index t = 0; t < s.size(); ++t) {
    if (!std::isfinite(s[t]) || s[t] < 0)
      raise<invalid_argument>(where, ": survivors[", t, "] = ", s[t], " must be finite and >= 0");
    if (t > 0 && s[t] > s[t - 1])
      raise<invalid_argument>(where, ": survivors[", t, "] = ", s[t], " exceeds survivors[", t - 1, "] = ", s[t - 1],
                              " (a survival curve cannot increase)");
  }
  if (!(s[0] > 0)) raise<invalid_argument>(where, ": survivors[0] = ", s[0], " (the cohort size) must be > 0");
}

/// LL = sum_{t=1}^{k} (s_{t-1} - s_t) ln P(T = t) + s_k ln S(k) (Fader & Hardie 2007, Appendix B), with
/// ln P(T = t) = ln B(g+1, d+t-1) - ln B(g, d) and ln S(t) = ln B(g, d+t) - ln B(g, d) (eq. 5, 6);
/// grad (when not null) receives d/d(gamma, delta).
inline double sbg_log_likelihood(double g, double d, const double* s, index k, double* grad) noexcept {
  const double lb = log_gamma(g) + log_gamma(d) - log_gamma(g + d);
  const double ps_gd = digamma(g + d), ps_g = digamma(g), ps_d = digamma(d), ps_g1 = digamma(g + 1);
  const double lg_g1 = log_gamma(g + 1);
  double ll = 0, dg = 0, dd = 0;
  for (index t = 1; t <= k; ++t) {
    const double lost = s[t - 1] - s[t];
    if (lost == 0) continue;
    const double tt = static_cast<double>(t);
    ll += lost * (lg_g1 + log_gamma(d + tt - 1) - log_gamma(g + d + tt) - lb);
    if (grad) {
      const double ps = digamma(g + d + tt);
      dg += lost * (ps_g1 - ps - ps_g + ps_gd);
      dd += lost * (digamma(d + tt - 1) - ps - ps_d + ps_gd);
    }
  }
  if (s[k] > 0) {
    const double kk = static_cast<double>(k);
    ll += s[k] * (log_gamma(d + kk) - log_gamma(g + d + kk) - log_gamma(d) + log_gamma(g + d));
    if (grad) {
      const double ps = digamma(g + d + kk);
      dg += s[k] * (ps_gd - ps);
      dd += s[k] * (digamma(d + kk) - ps - ps_d + ps_gd);
    }
  }
  if (grad) {
    grad[0] = dg;
    grad[1] = dd;
  }
  return ll;
}

}  // namespace detail

/// The shifted-beta-geometric model of Fader & Hardie (2007), "How to Project Customer Retention",
/// Journal of Interactive Marketing 21(1), 76-90, for discrete-time contractual settings
/// (subscriptions renewed period by period): P(T = t) = B(gamma+1, delta+t-1)/B(gamma, delta),
/// S(t) = B(gamma, delta+t)/B(gamma, delta), retention r_t = (delta+t-1)/(gamma+delta+t-1).
/// Valuation follows Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting: The
/// Perils of Ignoring Heterogeneity", Marketing Science 29(1), 85-93 (DEL, DERL).
///
/// Data: one cohort's survival curve, survivors[0] = customers at the start (the cohort size) and
/// survivors[t] = customers still active at the end of period t (counts or percentages; any
/// non-negative numbers). Fit: maximum likelihood over log(gamma, delta) by BFGS with the analytic
/// gradient, standard errors from the observed information. A curve with one period (only the mean
/// churn gamma / (gamma + delta) is identified), without any churn, or with everybody gone after
/// the first period is refused; an estimate running off to the boundary (e.g. a churn rate that
/// does not vary across customers, where the sBG becomes a plain geometric with gamma, delta ->
/// infinity) is reported with converged = false and a warning.
class ShiftedBetaGeometric {
 public:
  ShiftedBetaGeometric() = default;
  explicit ShiftedBetaGeometric(const ShiftedBetaGeometricParams& params) : params_(params), fitted_(true) {
    detail::check_sbg_params("uvp::ShiftedBetaGeometric::ShiftedBetaGeometric", params);
  }

  /// Fits on a survival curve (see the class comment).
  ClvFitResult fit(const ConstVectorRef<double>& survivors, const ShiftedBetaGeometricFitOptions& options = {}) {
    detail::check_survivors("uvp::ShiftedBetaGeometric::fit", survivors);
    return fit_impl(Vector<double>(survivors), options);
  }
  /// Fits on the customers lost in each period 1..k (lost[t-1]) and those still active after period k.
  ClvFitResult fit_from_losses(const ConstVectorRef<double>& lost, double still_active,
                               const ShiftedBetaGeometricFitOptions& options = {}) {
    constexpr const char* where = "uvp::ShiftedBetaGeometric::fit_from_losses";
    if (lost.size() == 0) detail::raise<invalid_argument>(where, ": lost is empty (no period observed)");
    for (index t = 0; t < lost.size(); ++t)
      if (!std::isfinite(lost[t]) || lost[t] < 0)
        detail::raise<invalid_argument>(where, ": lost[", t, "] = ", lost[t], " must be finite and >= 0");
    if (!std::isfinite(still_active) || still_active < 0)
      detail::raise<invalid_argument>(where, ": still_active = ", still_active, " must be finite and >= 0");
    Vector<double> s(lost.size() + 1);
    s[lost.size()] = still_active;
    for (index t = lost.size(); t > 0; --t) s[t - 1] = s[t] + lost[t - 1];
    detail::check_survivors(where, s);
    return fit_impl(std::move(s), options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const ShiftedBetaGeometricParams& params() const {
    require_fitted("params");
    return params_;
  }

  /// The log-likelihood of a survival curve at the model's parameters.
  double log_likelihood(const ConstVectorRef<double>& survivors) const {
    require_fitted("log_likelihood");
    detail::check_survivors("uvp::ShiftedBetaGeometric::log_likelihood", survivors);
    return detail::sbg_log_likelihood(params_.gamma, params_.delta, survivors.data(), survivors.size() - 1, nullptr);
  }

  /// P(T = t): the probability that a new customer's last period is t (they cancel at its end). t >= 1.
  double churn_probability(double t) const {
    require_fitted("churn_probability");
    check_period("uvp::ShiftedBetaGeometric::churn_probability", t, 1);
    const double g = params_.gamma, d = params_.delta;
    return std::exp(detail::log_gamma(g + 1) + detail::log_gamma(d + t - 1) - detail::log_gamma(g + d + t) -
                    detail::log_gamma(g) - detail::log_gamma(d) + detail::log_gamma(g + d));
  }
  /// S(t): the share of a cohort still active at the end of period t (S(0) = 1). t >= 0, whole.
  double survival(double t) const {
    require_fitted("survival");
    check_period("uvp::ShiftedBetaGeometric::survival", t, 0);
    const double g = params_.gamma, d = params_.delta;
    return std::exp(detail::log_gamma(d + t) - detail::log_gamma(g + d + t) - detail::log_gamma(d) +
                    detail::log_gamma(g + d));
  }
  /// r_t = S(t) / S(t-1) = (delta+t-1)/(gamma+delta+t-1): the retention rate of period t (eq. 8). t >= 1.
  double retention_rate(double t) const {
    require_fitted("retention_rate");
    check_period("uvp::ShiftedBetaGeometric::retention_rate", t, 1);
    return (params_.delta + t - 1) / (params_.gamma + params_.delta + t - 1);
  }
  /// S(0), S(1), ..., S(periods) (by the retention recursion, so it costs one division per period).
  Vector<double> survival_curve(index periods) const {
    require_fitted("survival_curve");
    if (periods < 0)
      detail::raise<invalid_argument>("uvp::ShiftedBetaGeometric::survival_curve: periods must be >= 0, got ", periods);
    Vector<double> s(periods + 1);
    s[0] = 1;
    for (index t = 1; t <= periods; ++t) s[t] = s[t - 1] * retention_rate_unchecked(static_cast<double>(t));
    return s;
  }

  /// E[T] = sum_{t>=0} S(t) = (gamma+delta-1)/(gamma-1): the expected lifetime in periods of a new
  /// customer, counting the first period; +infinity when gamma <= 1 (the mean of 1/theta diverges).
  double expected_lifetime() const {
    require_fitted("expected_lifetime");
    const double g = params_.gamma, d = params_.delta;
    return g > 1 ? (g + d - 1) / (g - 1) : std::numeric_limits<double>::infinity();
  }

  /// DERL(d | gamma, delta, n-1 renewals) of Fader & Hardie (2010): the expected discounted number
  /// of future payments of a customer who has just made `renewals` = n-1 renewals (has been active
  /// n periods) and is about to decide on the next one, sum_{t>=n} S(t)/S(n-1) (1+d)^-(t-n) - the
  /// first of them, at the coming renewal, undiscounted:
  ///   DERL = (delta+n-1)/(gamma+delta+n-1) 2F1(1, delta+n; gamma+delta+n; 1/(1+d)).
  /// Summed term by term until the remainder (bounded by a geometric tail) is below 1e-16
  /// relative. discount_rate d >= 0 per period; d = 0 gives the undiscounted expected residual
  /// lifetime (delta+n-1)/(gamma-1), +infinity when gamma <= 1. renewals whole, >= 0.
  double discounted_expected_residual_lifetime(double discount_rate, double renewals = 0) const {
    require_fitted("discounted_expected_residual_lifetime");
    constexpr const char* where = "uvp::ShiftedBetaGeometric::discounted_expected_residual_lifetime";
    if (!std::isfinite(discount_rate) || discount_rate < 0)
      detail::raise<invalid_argument>(where, ": discount_rate must be finite and >= 0, got ", discount_rate);
    check_period(where, renewals, 0, "renewals");
    const double g = params_.gamma, d = params_.delta, n = renewals + 1;
    if (discount_rate == 0) return g > 1 ? (d + n - 1) / (g - 1) : std::numeric_limits<double>::infinity();
    const double z = 1 / (1 + discount_rate), tail = z / (1 - z);
    double c = (d + n - 1) / (g + d + n - 1), s = 0;  // c = S(t)/S(n-1) z^(t-n) at t = n, n+1, ...
    constexpr long max_terms = 100000000;
    for (long j = 0; j < max_terms; ++j) {
      s += c;
      if (c * tail <= 1e-16 * s) return s;
      const double t = n + static_cast<double>(j);
      c *= z * (d + t) / (g + d + t);
    }
    detail::raise<numeric_error>(where, ": the series did not converge in 1e8 terms (discount_rate = ", discount_rate,
                                 " is too small)");
  }
  /// DEL(d) = sum_{t>=0} S(t) (1+d)^-t = 2F1(1, delta; gamma+delta; 1/(1+d)): the discounted
  /// expected lifetime of a new customer, the first payment (t = 0) undiscounted (Fader & Hardie
  /// 2010). discount_rate d >= 0; d = 0 gives expected_lifetime().
  double discounted_expected_lifetime(double discount_rate) const {
    require_fitted("discounted_expected_lifetime");
    if (!std::isfinite(discount_rate) || discount_rate < 0)
      detail::raise<invalid_argument>("uvp::ShiftedBetaGeometric::discounted_expected_lifetime: discount_rate must be "
                                      "finite and >= 0, got ",
                                      discount_rate);
    return 1 + discounted_expected_residual_lifetime(discount_rate, 0) / (1 + discount_rate);
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_)
      detail::raise<not_fitted_error>("uvp::ShiftedBetaGeometric::", what, ": the model is not fitted (call fit() first)");
  }
  static void check_period(const char* where, double t, double lowest, const char* name = "t") {
    if (!std::isfinite(t) || t < lowest || t != std::floor(t))
      detail::raise<invalid_argument>(where, ": ", name, " must be a whole number >= ", lowest, ", got ", t);
  }
  double retention_rate_unchecked(double t) const noexcept {
    return (params_.delta + t - 1) / (params_.gamma + params_.delta + t - 1);
  }

  ClvFitResult fit_impl(Vector<double> s, const ShiftedBetaGeometricFitOptions& opt) {
    constexpr const char* where = "uvp::ShiftedBetaGeometric::fit";
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    if (opt.initial) detail::check_sbg_params(where, *opt.initial);
    const index k = s.size() - 1;
    if (k < 2)
      detail::raise<invalid_argument>(where, ": survivors has ", s.size(),
                                      " entries; at least 3 (the cohort size and two periods) are needed, since one "
                                      "period identifies only the mean churn gamma / (gamma + delta)");
    if (s[k] == s[0])
      detail::raise<invalid_argument>(where, ": nobody churned (survivors[", k, "] = survivors[0] = ", s[0],
                                      "): the likelihood grows as gamma -> 0, so no estimate exists");
    if (s[1] == 0)
      detail::raise<invalid_argument>(where, ": every customer churned in the first period (survivors[1] = 0): the "
                                      "likelihood grows as gamma / delta -> infinity, so no estimate exists");
    const double N = s[0];
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const double ga = std::exp(th[0]), de = std::exp(th[1]);
      if (!(ga > 0) || !(de > 0) || !std::isfinite(ga) || !std::isfinite(de))
        return std::numeric_limits<double>::infinity();
      double grad[2];
      const double ll = detail::sbg_log_likelihood(ga, de, s.data(), k, grad);
      g[0] = -ga * grad[0] / N;
      g[1] = -de * grad[1] / N;
      const double f = -ll / N;
      return std::isfinite(f) && g.allFinite() ? f : std::numeric_limits<double>::infinity();
    };
    std::vector<ShiftedBetaGeometricParams> starts;
    starts.push_back(opt.initial ? *opt.initial : ShiftedBetaGeometricParams{1, 1});
    starts.push_back({0.1, 0.1});
    starts.push_back({5, 20});
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    detail::BfgsResult res;
    int used = -1;
    for (int i = 0; i < static_cast<int>(starts.size()); ++i) {
      const auto& st = starts[static_cast<std::size_t>(i)];
      Eigen::VectorXd th0(2);
      th0 << std::log(st.gamma), std::log(st.delta);
      detail::BfgsResult ri = detail::bfgs_minimize(objective, th0, bo);
      const double tie = 1e-12 * std::max(1.0, std::abs(res.f));
      if (used < 0 || (std::isfinite(ri.f) && !std::isfinite(res.f)) || ri.f < res.f - tie ||
          (ri.converged && !res.converged && ri.f <= res.f + tie)) {
        res = std::move(ri);
        used = i;
      }
      if (res.converged) break;
    }
    ClvFitResult out;
    out.converged = res.converged;
    out.iterations = res.iterations;
    out.evaluations = res.evaluations;
    out.customers = static_cast<index>(std::llround(N));
    out.message = res.message;
    if (!std::isfinite(res.f)) {
      out.converged = false;
      out.message = "the log-likelihood is not finite at any starting point";
      out.warnings.push_back(std::string(where) + ": " + out.message + "; the model was not changed");
      return out;
    }
    params_ = {std::exp(res.x[0]), std::exp(res.x[1])};
    fitted_ = true;
    out.objective = res.f;
    out.log_likelihood = detail::sbg_log_likelihood(params_.gamma, params_.delta, s.data(), k, nullptr);
    detail::fill_standard_errors(
        out, {"gamma", "delta"}, {params_.gamma, params_.delta},
        [&s, k](const double* th, double* g) {
          detail::sbg_log_likelihood(th[0], th[1], s.data(), k, g);
          g[0] = -g[0];
          g[1] = -g[1];
        },
        where);
    if (!res.converged) out.warnings.push_back(std::string(where) + ": the optimizer did not converge (" + res.message + ")");
    if (used > 0)
      out.warnings.push_back(std::string(where) + ": the estimate is from fallback start " + std::to_string(used) +
                             " (the first start did not converge)");
    std::string boundary;
    if (!(params_.gamma >= 1e-6 && params_.gamma <= 1e6))
      boundary = detail::str("gamma -> ", params_.gamma < 1e-6 ? "0" : "infinity");
    if (!(params_.delta >= 1e-6 && params_.delta <= 1e6))
      boundary += detail::str(boundary.empty() ? "" : ", ", "delta -> ", params_.delta < 1e-6 ? "0" : "infinity");
    if (!boundary.empty()) {
      out.converged = false;
      out.message = "boundary estimate (" + boundary + "): " + res.message;
      out.warnings.push_back(std::string(where) + ": boundary estimate (" + boundary +
                             "): the likelihood has no maximum inside the parameter space (a churn probability "
                             "that does not vary across customers makes the sBG a plain geometric), so gamma and "
                             "delta are not identified; the mean churn gamma / (gamma + delta) still is");
    } else if (out.standard_errors.empty()) {
      out.converged = false;
      out.message = "the observed information is not positive definite at the estimate: " + res.message;
      const bool drifting = params_.gamma > 1e3 && params_.delta > 1e3;
      out.warnings.push_back(std::string(where) + ": the estimate is not a strict maximum of the likelihood, so gamma "
                             "and delta are not identified by these data" +
                             (drifting ? " (both drift to infinity: a churn probability that does not vary across "
                                         "customers makes the sBG a plain geometric; the mean churn gamma / (gamma + "
                                         "delta) is still estimated)"
                                       : ""));
    }
    return out;
  }

  ShiftedBetaGeometricParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
