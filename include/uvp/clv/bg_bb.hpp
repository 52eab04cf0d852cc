// SPDX-License-Identifier: Apache-2.0
// The BG/BB ("beta-geometric / beta-Bernoulli") model of discrete-time repeat transactions.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
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

/// BG/BB parameters (Fader, Hardie & Shang 2010): while alive, a customer transacts at each
/// opportunity with probability p ~ Beta(alpha, beta); before each opportunity they drop out for
/// good with probability theta ~ Beta(gamma, delta). All four are > 0 and dimensionless (time is
/// counted in opportunities: years, issues, events).
struct BgBbParams {
  double alpha = 0;
  double beta = 0;
  double gamma = 0;
  double delta = 0;
};

/// Options of BgBb::fit.
struct BgBbFitOptions {
  /// L2 penalty: the fit minimises -sum(w_i LL_i) / sum(w_i) + penalizer * (alpha^2 + beta^2 +
  /// gamma^2 + delta^2). 0: plain maximum likelihood.
  double penalizer = 0;
  /// Starting point; default all four = 1. When BFGS does not converge from it, fallback starts
  /// (0.5, 0.5, 0.5, 2) and (2, 1, 1, 5) are tried.
  std::optional<BgBbParams> initial = std::nullopt;
  int max_iterations = 500;
  /// BFGS stops when every component of the gradient with respect to the log-parameters is below
  /// gradient_tolerance * max(1, |objective|).
  double gradient_tolerance = 1e-10;
};

namespace detail {

inline void check_bgbb_params(const char* where, const BgBbParams& p) {
  const double v[4] = {p.alpha, p.beta, p.gamma, p.delta};
  const char* names[4] = {"alpha", "beta", "gamma", "delta"};
  for (int i = 0; i < 4; ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      raise<invalid_argument>(where, ": parameter ", names[i], " must be finite and > 0, got ", v[i]);
}

inline bool bgbb_whole(double v) noexcept { return std::isfinite(v) && v >= 0 && v == std::floor(v); }

/// Largest number of opportunities n in the data, and of the horizon n* of a prediction: the
/// likelihood's sum has n - t_x terms and the expectations n* terms, so the bound keeps every call
/// finite in time (1e7 terms are about 0.05 s).
inline constexpr double bgbb_max_opportunities = 1e7;

/// frequency x / recency t_x / opportunities n (and weights when given) of a BG/BB data set: same
/// length, not empty, whole numbers with 0 <= x <= t_x <= n, and t_x = 0 exactly when x = 0.
inline void check_bgbb_data(const char* where, const ConstVectorRef<double>& x, const ConstVectorRef<double>& tx,
                            const ConstVectorRef<double>& n, const double* w = nullptr, index w_size = 0) {
  check_not_empty(where, "frequency", x.size());
  check_size(where, "recency", tx.size(), x.size());
  check_size(where, "n", n.size(), x.size());
  if (w) check_size(where, "weights", w_size, x.size());
  for (index i = 0; i < x.size(); ++i) {
    if (!bgbb_whole(x[i])) raise<invalid_argument>(where, ": frequency[", i, "] = ", x[i], " must be a whole number >= 0");
    if (!bgbb_whole(tx[i])) raise<invalid_argument>(where, ": recency[", i, "] = ", tx[i], " must be a whole number >= 0");
    if (!bgbb_whole(n[i])) raise<invalid_argument>(where, ": n[", i, "] = ", n[i], " must be a whole number >= 0");
    if (n[i] > bgbb_max_opportunities)
      raise<invalid_argument>(where, ": n[", i, "] = ", n[i], " exceeds the supported 1e7 opportunities");
    if (tx[i] > n[i]) raise<invalid_argument>(where, ": recency[", i, "] = ", tx[i], " exceeds n[", i, "] = ", n[i]);
    if (x[i] > tx[i])
      raise<invalid_argument>(where, ": frequency[", i, "] = ", x[i], " exceeds recency[", i, "] = ", tx[i],
                              " (x transactions need at least x opportunities)");
    if (x[i] == 0 && tx[i] != 0)
      raise<invalid_argument>(where, ": recency[", i, "] = ", tx[i], " but frequency[", i,
                              "] = 0 (recency must be 0 without transactions)");
    if (w && (!std::isfinite(w[i]) || w[i] < 0))
      raise<invalid_argument>(where, ": weights[", i, "] = ", w[i], " must be finite and >= 0");
  }
}

inline double log_beta(double a, double b) noexcept { return log_gamma(a) + log_gamma(b) - log_gamma(a + b); }

/// ln L of one customer (Fader, Hardie & Shang 2010, eq. 5):
///   L = B(al+x, be+n-x)/B(al,be) B(ga, de+n)/B(ga,de)
///     + sum_{i=0}^{n-t_x-1} B(al+x, be+t_x-x+i)/B(al,be) B(ga+1, de+t_x+i)/B(ga,de),
/// as logaddexp(A, B_0 + ln S): the i-th term of the sum is B_0 times rho_i with
/// rho_{i+1} / rho_i = (be+t_x-x+i)/(al+be+t_x+i) * (de+t_x+i)/(ga+de+t_x+1+i), so the sum costs
/// n - t_x multiplications and no special functions. `shared` = ln B(al,be) + ln B(ga,de). When
/// grad is not null it receives d ln L / d(al, be, ga, de) (digamma terms plus the running sums of
/// d ln rho_i).
inline double bgbb_customer_log_likelihood(const BgBbParams& p, double x, double tx, double n, double shared,
                                           double* grad) noexcept {
  const double al = p.alpha, be = p.beta, ga = p.gamma, de = p.delta;
  const double A = log_beta(al + x, be + n - x) + log_beta(ga, de + n) - shared;
  const long m = static_cast<long>(n - tx);
  if (m == 0) {
    if (grad) {
      const double ps_ab = digamma(al + be), ps_gd = digamma(ga + de);
      grad[0] = digamma(al + x) - digamma(al + be + n) - digamma(al) + ps_ab;
      grad[1] = digamma(be + n - x) - digamma(al + be + n) - digamma(be) + ps_ab;
      grad[2] = ps_gd - digamma(ga + de + n);
      grad[3] = digamma(de + n) - digamma(ga + de + n) - digamma(de) + ps_gd;
    }
    return A;
  }
  const double B0 = log_beta(al + x, be + tx - x) + log_beta(ga + 1, de + tx) - shared;
  double rho = 1, S = 1, d_al = 0, d_be = 0, d_ga = 0, d_de = 0;  // d ln rho_i
  double S_al = 0, S_be = 0, S_ga = 0, S_de = 0;                    // sum rho_i d ln rho_i
  for (long i = 0; i + 1 < m; ++i) {
    const double di = static_cast<double>(i);
    const double u = be + tx - x + di, v = al + be + tx + di, s = de + tx + di, q = ga + de + tx + 1 + di;
    rho *= (u / v) * (s / q);
    S += rho;
    if (grad) {
      d_al -= 1 / v;
      d_be += 1 / u - 1 / v;
      d_ga -= 1 / q;
      d_de += 1 / s - 1 / q;
      S_al += rho * d_al;
      S_be += rho * d_be;
      S_ga += rho * d_ga;
      S_de += rho * d_de;
    }
  }
  const double Bs = B0 + std::log(S);
  const double hi = std::max(A, Bs), lo = std::min(A, Bs);
  const double ll = hi + std::log1p(std::exp(lo - hi));
  if (grad) {
    const double wA = std::exp(A - ll), wB = std::exp(Bs - ll);
    const double ps_ab = digamma(al + be), ps_gd = digamma(ga + de), ps_a = digamma(al), ps_b = digamma(be);
    const double ps_ax = digamma(al + x), ps_d = digamma(de);
    const double dA[4] = {ps_ax - digamma(al + be + n) - ps_a + ps_ab,
                          digamma(be + n - x) - digamma(al + be + n) - ps_b + ps_ab, ps_gd - digamma(ga + de + n),
                          digamma(de + n) - digamma(ga + de + n) - ps_d + ps_gd};
    const double dB[4] = {ps_ax - digamma(al + be + tx) - ps_a + ps_ab,
                          digamma(be + tx - x) - digamma(al + be + tx) - ps_b + ps_ab,
                          digamma(ga + 1) - digamma(ga + de + tx + 1) - digamma(ga) + ps_gd,
                          digamma(de + tx) - digamma(ga + de + tx + 1) - ps_d + ps_gd};
    const double dS[4] = {S_al / S, S_be / S, S_ga / S, S_de / S};
    for (int k = 0; k < 4; ++k) grad[k] = wA * dA[k] + wB * (dB[k] + dS[k]);
  }
  return ll;
}

/// Weighted sum of the customers' log-likelihoods. Discrete-time data repeat a few patterns many
/// times (n is shared by a cohort, 0 <= x <= t_x <= n), so the customers are first merged into
/// distinct (x, t_x, n) patterns with summed weights; the patterns are summed in fixed chunks (in
/// parallel) and the chunks added in order: results do not depend on the thread count.
class BgBbLikelihood {
 public:
  BgBbLikelihood(const ConstVectorRef<double>& x, const ConstVectorRef<double>& tx, const ConstVectorRef<double>& n,
                 const double* w) {
    const index N = x.size();
    std::vector<index> order;
    order.reserve(static_cast<std::size_t>(N));
    for (index i = 0; i < N; ++i) {
      const double wi = w ? w[i] : 1.0;
      total_weight_ += wi;
      if (wi > 0) order.push_back(i);
    }
    auto key = [&](index i) { return std::array<double, 3>{n[i], x[i], tx[i]}; };
    std::stable_sort(order.begin(), order.end(), [&](index a, index b) { return key(a) < key(b); });
    for (std::size_t k = 0; k < order.size(); ++k) {
      const index i = order[k];
      const double wi = w ? w[i] : 1.0;
      if (k > 0 && key(i) == key(order[k - 1])) {
        w_.back() += wi;
        continue;
      }
      x_.push_back(x[i]);
      tx_.push_back(tx[i]);
      n_.push_back(n[i]);
      w_.push_back(wi);
    }
    part_.resize((x_.size() + chunk - 1) / chunk);
  }

  /// Distinct (x, t_x, n) patterns with weight > 0.
  index patterns() const noexcept { return static_cast<index>(x_.size()); }

  double total_weight() const noexcept { return total_weight_; }

  /// Sum of w_i LL_i at p; grad (when not null) receives its derivatives. One evaluation at a time
  /// per object (a buffer of per-chunk sums is reused).
  double evaluate(const BgBbParams& p, double* grad) const {
    const double shared = log_beta(p.alpha, p.beta) + log_beta(p.gamma, p.delta);
    const index nc = static_cast<index>(part_.size());
    const index N = static_cast<index>(x_.size());
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (nc > 4)
#endif
    for (index c = 0; c < nc; ++c) {
      std::array<double, 5> acc{};
      const index e = std::min(N, (c + 1) * static_cast<index>(chunk));
      for (index i = c * static_cast<index>(chunk); i < e; ++i) {
        const std::size_t k = static_cast<std::size_t>(i);
        if (w_[k] == 0) continue;
        double g[4];
        acc[0] += w_[k] * bgbb_customer_log_likelihood(p, x_[k], tx_[k], n_[k], shared, grad ? g : nullptr);
        if (grad)
          for (int j = 0; j < 4; ++j) acc[static_cast<std::size_t>(j) + 1] += w_[k] * g[j];
      }
      part_[static_cast<std::size_t>(c)] = acc;
    }
    std::array<double, 5> sum{};
    for (const auto& a : part_)
      for (std::size_t j = 0; j < 5; ++j) sum[j] += a[j];
    if (grad)
      for (int j = 0; j < 4; ++j) grad[j] = sum[static_cast<std::size_t>(j) + 1];
    return sum[0];
  }

 private:
  static constexpr std::size_t chunk = 256;
  std::vector<double> x_, tx_, n_, w_;
  mutable std::vector<std::array<double, 5>> part_;
  double total_weight_ = 0;
};

/// Largest number of terms a BG/BB series may take before it is declared non-convergent.
inline constexpr long bgbb_max_terms = 100000000;

/// ln of B(al+x+1, be+n-x)/B(al,be) * B(ga, de+n+1)/B(ga,de) / L: the factor in front of the sums
/// of the conditional expectation and of DERT (FHS 2010 eq. 13, 14).
inline double bgbb_log_future_factor(const BgBbParams& p, double x, double tx, double n) noexcept {
  const double shared = log_beta(p.alpha, p.beta) + log_beta(p.gamma, p.delta);
  const double ll = bgbb_customer_log_likelihood(p, x, tx, n, shared, nullptr);
  return log_beta(p.alpha + x + 1, p.beta + n - x) + log_beta(p.gamma, p.delta + n + 1) - shared - ll;
}

/// sum_{i=1}^{ns} B(ga, de+n+i) / B(ga, de+n+1): c_1 = 1, c_{i+1} = c_i (de+n+i)/(ga+de+n+i).
inline double bgbb_survival_sum(double ga, double de, double n, double ns) noexcept {
  double c = 1, s = 0;
  const long m = static_cast<long>(ns);
  for (long i = 1; i <= m; ++i) {
    s += c;
    const double di = static_cast<double>(i);
    c *= (de + n + di) / (ga + de + n + di);
  }
  return s;
}

}  // namespace detail

/// Weighted sum of the BG/BB log-likelihoods (FHS 2010 eq. 5) at `params`; `gradient` (when not
/// null) receives d/d(alpha, beta, gamma, delta) of that sum (analytic). Pass weights.size() == 0
/// for unit weights.
inline double bgbb_log_likelihood(const BgBbParams& params, const ConstVectorRef<double>& frequency,
                                  const ConstVectorRef<double>& recency, const ConstVectorRef<double>& n,
                                  const ConstVectorRef<double>& weights, Eigen::Vector4d* gradient = nullptr) {
  constexpr const char* where = "uvp::bgbb_log_likelihood";
  detail::check_bgbb_params(where, params);
  const double* w = weights.size() > 0 ? weights.data() : nullptr;
  detail::check_bgbb_data(where, frequency, recency, n, w, weights.size());
  const detail::BgBbLikelihood lik(frequency, recency, n, w);
  double g[4];
  const double ll = lik.evaluate(params, gradient ? g : nullptr);
  if (gradient) *gradient << g[0], g[1], g[2], g[3];
  return ll;
}

/// The BG/BB model of Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time
/// Noncontractual Setting", Marketing Science 29(6), 1086-1108 (lifetimes' BetaGeoBetaBinomFitter,
/// BTYD's bgbb.* functions), for transactions that can only happen at discrete opportunities
/// (annual donations, event attendance, issues of a magazine).
///
/// Data, one entry per customer (or per distinct pattern with a weight): frequency x (transactions
/// in the n opportunities after the first one), recency t_x (the opportunity of the last of them,
/// 1..n; 0 when x = 0), n (opportunities observed); whole numbers with x <= t_x <= n. Non-whole or
/// inconsistent values throw uvp::invalid_argument naming the argument and index.
///
/// Fit: maximum likelihood over log(alpha, beta, gamma, delta) by BFGS with the analytic gradient;
/// standard errors from the observed information. Data without any variation to identify the
/// parameters (one pattern only, no transaction at all, every n = 0) are refused; an estimate on the
/// boundary or without a positive definite observed information is reported with converged = false.
/// Predictions are parallel over customers; their cost grows with n - t_x (the likelihood's sum) and
/// with the horizon n* (expectations are summed term by term, exact for every gamma, including the
/// gamma = 1 point where the closed forms divide 0 by 0). n and n* are limited to 1e7 opportunities
/// (uvp::invalid_argument beyond), which keeps every call bounded in time.
class BgBb {
 public:
  BgBb() = default;
  explicit BgBb(const BgBbParams& params) : params_(params), fitted_(true) {
    detail::check_bgbb_params("uvp::BgBb::BgBb", params);
  }

  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& n, const BgBbFitOptions& options = {}) {
    return fit_impl(frequency, recency, n, nullptr, 0, options);
  }
  /// Weighted fit: row i stands for weights[i] customers with the same (x, t_x, n), as in the
  /// published donations data.
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& n, const ConstVectorRef<double>& weights,
                   const BgBbFitOptions& options = {}) {
    return fit_impl(frequency, recency, n, weights.data(), weights.size(), options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const BgBbParams& params() const {
    require_fitted("params");
    return params_;
  }

  /// ln L(x, t_x, n) of one customer at the model's parameters.
  double log_likelihood(double frequency, double recency, double n) const {
    require_fitted("log_likelihood");
    check_one("uvp::BgBb::log_likelihood", frequency, recency, n);
    const double shared = detail::log_beta(params_.alpha, params_.beta) + detail::log_beta(params_.gamma, params_.delta);
    return detail::bgbb_customer_log_likelihood(params_, frequency, recency, n, shared, nullptr);
  }

  /// P(alive at opportunity n+1 | x, t_x, n) (FHS 2010 eq. 11).
  double probability_alive(double frequency, double recency, double n) const {
    require_fitted("probability_alive");
    check_one("uvp::BgBb::probability_alive", frequency, recency, n);
    return alive_one(frequency, recency, n);
  }
  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& n) const {
    require_fitted("probability_alive");
    detail::check_bgbb_data("uvp::BgBb::probability_alive", frequency, recency, n);
    return for_each(frequency.size(), [&](index i) { return alive_one(frequency[i], recency[i], n[i]); });
  }

  /// E[X(n, n + n_star) | x, t_x, n]: expected transactions in the next n_star opportunities
  /// (FHS 2010 eq. 13, summed as (1/L) B(al+x+1, be+n-x)/B(al,be) sum_{i=1}^{n*} B(ga, de+n+i)/B(ga,de)).
  /// n_star a whole number >= 0.
  double conditional_expected_transactions(double n_star, double frequency, double recency, double n) const {
    require_fitted("conditional_expected_transactions");
    constexpr const char* where = "uvp::BgBb::conditional_expected_transactions";
    check_horizon(where, n_star);
    check_one(where, frequency, recency, n);
    return expected_one(n_star, frequency, recency, n);
  }
  Vector<double> conditional_expected_transactions(double n_star, const ConstVectorRef<double>& frequency,
                                                   const ConstVectorRef<double>& recency,
                                                   const ConstVectorRef<double>& n) const {
    require_fitted("conditional_expected_transactions");
    constexpr const char* where = "uvp::BgBb::conditional_expected_transactions";
    check_horizon(where, n_star);
    detail::check_bgbb_data(where, frequency, recency, n);
    return for_each(frequency.size(), [&](index i) { return expected_one(n_star, frequency[i], recency[i], n[i]); });
  }

  /// E[X(n)]: expected transactions of a new customer in their first n opportunities (FHS 2010
  /// eq. 8, summed as al/(al+be) sum_{i=1}^{n} B(ga, de+i)/B(ga,de)). n a whole number >= 0.
  double expected_transactions(double n) const {
    require_fitted("expected_transactions");
    check_horizon("uvp::BgBb::expected_transactions", n, "n");
    const BgBbParams& p = params_;
    return p.alpha / (p.alpha + p.beta) * p.delta / (p.gamma + p.delta) *
           detail::bgbb_survival_sum(p.gamma, p.delta, 0, n);
  }

  /// DERT(d | x, t_x, n): discounted expected residual transactions, transaction at opportunity
  /// n+i discounted by (1+d)^-i (FHS 2010 eq. 14; the 2F1 there summed term by term until the
  /// remainder, bounded by a geometric tail, is below 1e-16 relative). discount_rate d finite and
  /// > 0, per opportunity. Throws uvp::numeric_error if d is so small that 1e8 terms do not suffice.
  double discounted_expected_residual_transactions(double discount_rate, double frequency, double recency,
                                                   double n) const {
    require_fitted("discounted_expected_residual_transactions");
    constexpr const char* where = "uvp::BgBb::discounted_expected_residual_transactions";
    check_rate(where, discount_rate);
    check_one(where, frequency, recency, n);
    return dert_one(discount_rate, frequency, recency, n);
  }
  Vector<double> discounted_expected_residual_transactions(double discount_rate, const ConstVectorRef<double>& frequency,
                                                           const ConstVectorRef<double>& recency,
                                                           const ConstVectorRef<double>& n) const {
    require_fitted("discounted_expected_residual_transactions");
    constexpr const char* where = "uvp::BgBb::discounted_expected_residual_transactions";
    check_rate(where, discount_rate);
    detail::check_bgbb_data(where, frequency, recency, n);
    dert_one(discount_rate, 0, 0, 0);  // throws here, not inside the parallel loop, when d is too small
    return for_each(frequency.size(), [&](index i) { return dert_one(discount_rate, frequency[i], recency[i], n[i]); });
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_) detail::raise<not_fitted_error>("uvp::BgBb::", what, ": the model is not fitted (call fit() first)");
  }
  static void check_horizon(const char* where, double value, const char* name = "n_star") {
    if (!detail::bgbb_whole(value))
      detail::raise<invalid_argument>(where, ": ", name, " must be a whole number >= 0, got ", value);
    if (value > detail::bgbb_max_opportunities)
      detail::raise<invalid_argument>(where, ": ", name, " = ", value, " exceeds the supported 1e7 opportunities");
  }
  static void check_rate(const char* where, double d) {
    if (!std::isfinite(d) || !(d > 0))
      detail::raise<invalid_argument>(where, ": discount_rate must be finite and > 0, got ", d);
  }
  static void check_one(const char* where, double x, double tx, double n) {
    Eigen::Matrix<double, 1, 1> a, b, c;
    a << x;
    b << tx;
    c << n;
    detail::check_bgbb_data(where, a, b, c);
  }
  template <class F>
  static Vector<double> for_each(index N, F&& one) {
    Vector<double> out(N);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 256) if (N > 2048)
#endif
    for (index i = 0; i < N; ++i) out[i] = one(i);
    return out;
  }

  double alive_one(double x, double tx, double n) const {
    const BgBbParams& p = params_;
    const double shared = detail::log_beta(p.alpha, p.beta) + detail::log_beta(p.gamma, p.delta);
    const double ll = detail::bgbb_customer_log_likelihood(p, x, tx, n, shared, nullptr);
    return std::exp(detail::log_beta(p.alpha + x, p.beta + n - x) + detail::log_beta(p.gamma, p.delta + n + 1) -
                    shared - ll);
  }
  double expected_one(double ns, double x, double tx, double n) const {
    if (ns == 0) return 0;
    return std::exp(detail::bgbb_log_future_factor(params_, x, tx, n)) *
           detail::bgbb_survival_sum(params_.gamma, params_.delta, n, ns);
  }
  double dert_one(double d, double x, double tx, double n) const {
    const double z = 1 / (1 + d), tail = z / (1 - z);
    const double ga = params_.gamma, de = params_.delta;
    double c = z, s = 0;  // c = z^i B(ga, de+n+i) / B(ga, de+n+1)
    for (long i = 1; i <= detail::bgbb_max_terms; ++i) {
      s += c;
      if (c * tail <= 1e-16 * s) return std::exp(detail::bgbb_log_future_factor(params_, x, tx, n)) * s;
      const double di = static_cast<double>(i);
      c *= z * (de + n + di) / (ga + de + n + di);
    }
    detail::raise<numeric_error>("uvp::BgBb::discounted_expected_residual_transactions: the series did not converge "
                                 "in 1e8 terms (discount_rate = ", d, " is too small)");
  }

  ClvFitResult fit_impl(const ConstVectorRef<double>& x, const ConstVectorRef<double>& tx, const ConstVectorRef<double>& n,
                        const double* w, index w_size, const BgBbFitOptions& opt) {
    constexpr const char* where = "uvp::BgBb::fit";
    if (!std::isfinite(opt.penalizer) || opt.penalizer < 0)
      detail::raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", opt.penalizer);
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    detail::check_bgbb_data(where, x, tx, n, w, w_size);
    if (opt.initial) detail::check_bgbb_params(where, *opt.initial);
    const detail::BgBbLikelihood lik(x, tx, n, w);
    const double W = lik.total_weight();
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": weights sum to 0");
    index patterns = 0, first = -1;
    bool identical = true;
    double sum_wx = 0, max_n = 0;
    for (index i = 0; i < x.size(); ++i) {
      const double wi = w ? w[i] : 1.0;
      if (!(wi > 0)) continue;
      if (first < 0) first = i;
      identical = identical && x[i] == x[first] && tx[i] == tx[first] && n[i] == n[first];
      ++patterns;
      sum_wx += wi * x[i];
      max_n = std::max(max_n, n[i]);
    }
    if (!(max_n > 0))
      detail::raise<invalid_argument>(where, ": every n is 0 (no opportunity observed), so the data carry no "
                                             "information on the parameters");
    if (!(sum_wx > 0))
      detail::raise<invalid_argument>(where, ": no customer has a transaction (every frequency is 0): the likelihood "
                                             "grows without bound as the transaction probability -> 0, so no "
                                             "estimate exists");
    std::string same;
    if (identical) {
      same = detail::str(patterns == 1 ? "there is only one customer (or pattern)" : "every customer has the same history",
                         " (x = ", x[first], ", t_x = ", tx[first], ", n = ", n[first],
                         "), so the spread of transaction and dropout probabilities is not identified");
      if (opt.penalizer == 0)
        detail::raise<invalid_argument>(where, ": ", same, "; fit on more customers or set a penalizer");
    }
    const double lambda = opt.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const BgBbParams p{std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3])};
      const double pv[4] = {p.alpha, p.beta, p.gamma, p.delta};
      for (double v : pv)
        if (!(v > 0) || !std::isfinite(v)) return std::numeric_limits<double>::infinity();
      double grad[4];
      const double ll = lik.evaluate(p, grad);
      double f_val = -ll / W;
      for (int i = 0; i < 4; ++i) {
        f_val += lambda * pv[i] * pv[i];
        g[i] = pv[i] * (-grad[i] / W + 2 * lambda * pv[i]);
      }
      return std::isfinite(f_val) && g.allFinite() ? f_val : std::numeric_limits<double>::infinity();
    };
    std::vector<BgBbParams> starts;
    starts.push_back(opt.initial ? *opt.initial : BgBbParams{1, 1, 1, 1});
    starts.push_back({0.5, 0.5, 0.5, 2});
    starts.push_back({2, 1, 1, 5});
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    detail::BfgsResult res;
    int used = -1;
    for (int k = 0; k < static_cast<int>(starts.size()); ++k) {
      const BgBbParams& s = starts[static_cast<std::size_t>(k)];
      Eigen::VectorXd th0(4);
      th0 << std::log(s.alpha), std::log(s.beta), std::log(s.gamma), std::log(s.delta);
      detail::BfgsResult rk = detail::bfgs_minimize(objective, th0, bo);
      const double tie = 1e-12 * std::max(1.0, std::abs(res.f));
      if (used < 0 || (std::isfinite(rk.f) && !std::isfinite(res.f)) || rk.f < res.f - tie ||
          (rk.converged && !res.converged && rk.f <= res.f + tie)) {
        res = std::move(rk);
        used = k;
      }
      if (res.converged) break;
    }
    ClvFitResult out;
    out.converged = res.converged;
    out.iterations = res.iterations;
    out.evaluations = res.evaluations;
    out.customers = x.size();
    out.message = res.message;
    if (!std::isfinite(res.f)) {
      out.converged = false;
      out.message = "the log-likelihood is not finite at any starting point";
      out.warnings.push_back(std::string(where) + ": " + out.message + "; the model was not changed");
      return out;
    }
    params_ = {std::exp(res.x[0]), std::exp(res.x[1]), std::exp(res.x[2]), std::exp(res.x[3])};
    fitted_ = true;
    out.objective = res.f;
    out.log_likelihood = lik.evaluate(params_, nullptr);
    detail::fill_standard_errors(
        out, {"alpha", "beta", "gamma", "delta"}, {params_.alpha, params_.beta, params_.gamma, params_.delta},
        [&lik](const double* th, double* g) {
          lik.evaluate({th[0], th[1], th[2], th[3]}, g);
          for (int i = 0; i < 4; ++i) g[i] = -g[i];
        },
        where);
    if (!res.converged) out.warnings.push_back(std::string(where) + ": the optimizer did not converge (" + res.message + ")");
    if (used > 0)
      out.warnings.push_back(std::string(where) + ": the estimate is from fallback start " + std::to_string(used) +
                             " (the first start did not converge)");
    if (!same.empty()) out.warnings.push_back(std::string(where) + ": " + same + "; the estimate is set by the penalizer");
    const double v[4] = {params_.alpha, params_.beta, params_.gamma, params_.delta};
    const char* names[4] = {"alpha", "beta", "gamma", "delta"};
    std::string boundary;
    for (int i = 0; i < 4; ++i)
      if (!(v[i] >= 1e-6 && v[i] <= 1e6))
        boundary += detail::str(boundary.empty() ? "" : ", ", names[i], " -> ", v[i] < 1e-6 ? "0" : "infinity");
    if (!boundary.empty()) {
      out.converged = false;
      out.message = "boundary estimate (" + boundary + "): " + res.message;
      out.warnings.push_back(std::string(where) + ": boundary estimate (" + boundary +
                             "): the likelihood has no maximum inside the parameter space, so the parameters are "
                             "not identified by these data");
    } else if (out.standard_errors.empty() && lambda == 0) {
      out.converged = false;
      out.message = "the observed information is not positive definite at the estimate: " + res.message;
      out.warnings.push_back(std::string(where) + ": the estimate is not a strict maximum of the likelihood, so alpha, beta, gamma and delta "
                             "are not identified by these data");
    }
    return out;
  }

  BgBbParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
