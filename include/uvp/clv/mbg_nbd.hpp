// SPDX-License-Identifier: Apache-2.0
// The MBG/NBD ("modified beta-geometric / NBD") model of repeat purchasing: fit and predictions.
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

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"
#include "uvp/detail/clv_identifiability.hpp"

namespace uvp {

/// MBG/NBD parameters (Batislam, Denizel & Filiztekin 2007): as BG/NBD (purchase rate
/// lambda ~ Gamma(shape r, rate alpha), dropout probability p ~ Beta(a, b)), but a customer may also
/// drop out right after the first purchase, at time 0, not only after each repeat purchase. alpha
/// is in the time unit of recency and T. All four are > 0.
struct MbgNbdParams {
  double r = 0;
  double alpha = 0;
  double a = 0;
  double b = 0;
};

/// Options of MbgNbd::fit (the same meaning as BgNbdFitOptions).
struct MbgNbdFitOptions {
  /// L2 penalty as lifetimes' `penalizer_coef`: the fit minimises
  /// -sum(w_i LL_i) / sum(w_i) + penalizer * (r^2 + alpha^2 + a^2 + b^2). 0: plain maximum likelihood.
  double penalizer = 0;
  /// Starting point; default r = a = b = 1 and alpha = max(T) / 10. When BFGS does not converge
  /// from it, three fallback starts scaled to the data's mean purchase rate are tried.
  std::optional<MbgNbdParams> initial = std::nullopt;
  int max_iterations = 500;
  /// BFGS stops when every component of the gradient with respect to the log-parameters is below
  /// gradient_tolerance * max(1, |objective|).
  double gradient_tolerance = 1e-10;
};

namespace detail {

inline void check_mbgnbd_params(const char* where, const MbgNbdParams& p) {
  const double v[4] = {p.r, p.alpha, p.a, p.b};
  const char* names[4] = {"r", "alpha", "a", "b"};
  for (int i = 0; i < 4; ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      raise<invalid_argument>(where, ": parameter ", names[i], " must be finite and > 0, got ", v[i]);
}

/// The MBG/NBD log-likelihood (Batislam et al. 2007, eq. 4; lifetimes' ModifiedBetaGeoFitter):
///   LL = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x+1) - ln B(a, b)
///        + ln[(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)],
/// the last term as a log-sum-exp. Customers are sorted by x, so the log-gamma and digamma terms
/// are computed once per distinct x; the per-customer part is summed over fixed segments in
/// parallel and the segments added in order (results do not depend on the thread count).
class MbgNbdLikelihood {
 public:
  MbgNbdLikelihood(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r, const ConstVectorRef<double>& T,
                   const double* w) {
    const index n = f.size();
    std::vector<index> order(static_cast<std::size_t>(n));
    for (index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](index u, index v) { return f[u] < f[v]; });
    tx_.resize(static_cast<std::size_t>(n));
    T_.resize(static_cast<std::size_t>(n));
    w_.resize(static_cast<std::size_t>(n));
    for (index k = 0; k < n; ++k) {
      const index i = order[static_cast<std::size_t>(k)];
      tx_[static_cast<std::size_t>(k)] = r[i];
      T_[static_cast<std::size_t>(k)] = T[i];
      w_[static_cast<std::size_t>(k)] = w ? w[i] : 1.0;
      total_weight_ += w_[static_cast<std::size_t>(k)];
    }
    constexpr index segment = 2048;
    for (index k = 0; k < n;) {
      const double x = f[order[static_cast<std::size_t>(k)]];
      index e = k;
      double wsum = 0;
      while (e < n && f[order[static_cast<std::size_t>(e)]] == x) wsum += w_[static_cast<std::size_t>(e++)];
      groups_.push_back({x, wsum});
      for (index s = k; s < e; s += segment)
        segments_.push_back({static_cast<index>(groups_.size()) - 1, s, std::min(e, s + segment)});
      k = e;
    }
    part_.resize(segments_.size());
  }

  double total_weight() const noexcept { return total_weight_; }
  index size() const noexcept { return static_cast<index>(tx_.size()); }

  /// Sum of w_i LL_i at p; when grad is not null, writes d/d(r, alpha, a, b) of that sum. Not
  /// reentrant (it reuses one buffer of per-segment sums): one evaluation at a time per object.
  double evaluate(const MbgNbdParams& p, double* grad) const {
    const double r = p.r, al = p.alpha, a = p.a, b = p.b;
    const index ns = static_cast<index>(segments_.size());
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 2) if (size() > 20000)
#endif
    for (index s = 0; s < ns; ++s) {
      const Segment& sg = segments_[static_cast<std::size_t>(s)];
      const double x = groups_[static_cast<std::size_t>(sg.group)].x;
      part_[static_cast<std::size_t>(s)] = segment_sums(sg.begin, sg.end, x, r, al, a, b);
    }
    double ll = 0, dr = 0, dal = 0, da = 0, db = 0;
    for (index s = 0; s < ns; ++s) {
      const auto& q = part_[static_cast<std::size_t>(s)];
      const double x = groups_[static_cast<std::size_t>(segments_[static_cast<std::size_t>(s)].group)].x;
      ll += q[0];
      dr -= q[1];
      dal -= (r + x) * q[2];
      da += q[3] / a;
      db -= q[3] / (b + x);
    }
    const double lg_r = log_gamma(r), lg_b = log_gamma(b), lg_ab = log_gamma(a + b);
    const double ps_r = digamma(r), ps_b = digamma(b), ps_ab = digamma(a + b), log_al = std::log(al);
    for (const Group& g : groups_) {
      const double x = g.x, W = g.weight;
      ll += W * (log_gamma(r + x) - lg_r + r * log_al + lg_ab + log_gamma(b + x + 1) - lg_b - log_gamma(a + b + x + 1));
      if (grad) {
        const double ps_abx = digamma(a + b + x + 1);
        dr += W * (digamma(r + x) - ps_r + log_al);
        dal += W * r / al;
        da += W * (ps_ab - ps_abx);
        db += W * (ps_ab + digamma(b + x + 1) - ps_b - ps_abx);
      }
    }
    if (grad) {
      grad[0] = dr;
      grad[1] = dal;
      grad[2] = da;
      grad[3] = db;
    }
    return ll;
  }

 private:
  struct Group {
    double x, weight;
  };
  struct Segment {
    index group, begin, end;
  };

  // Per customer, with L_T = ln(alpha+T), L_t = ln(alpha+t_x), c3 = -(r+x) L_T and
  // c4 = ln a - ln(b+x) - (r+x) L_t: s = logaddexp(c3, c4), w4 = sigmoid(c4 - c3) = 1 - w3.
  // Returns sum w s, sum w (w3 L_T + w4 L_t), sum w (w3/(alpha+T) + w4/(alpha+t_x)), sum w w4.
  std::array<double, 4> segment_sums(index begin, index end, double x, double r, double al, double a,
                                     double b) const {
    const double rx = r + x, K = std::log(a) - std::log(b + x);
    double acc_s = 0, acc_r = 0, acc_al = 0, acc_w4 = 0;
    for (index i = begin; i < end; ++i) {
      const double tx = tx_[static_cast<std::size_t>(i)], T = T_[static_cast<std::size_t>(i)];
      const double w = w_[static_cast<std::size_t>(i)];
      const double at = al + T, ax = al + tx, LT = std::log(at), Lt = std::log(ax);
      const double c3 = -rx * LT, d = (K - rx * Lt) - c3;
      const double e = std::exp(-std::abs(d)), inv = 1 / (1 + e);
      const double w4 = d >= 0 ? inv : e * inv, w3 = 1 - w4;
      acc_s += w * (c3 + std::max(d, 0.0) + std::log1p(e));
      acc_r += w * (w3 * LT + w4 * Lt);
      acc_al += w * (w3 / at + w4 / ax);
      acc_w4 += w * w4;
    }
    return {acc_s, acc_r, acc_al, acc_w4};
  }

  std::vector<double> tx_, T_, w_;
  std::vector<Group> groups_;
  std::vector<Segment> segments_;
  mutable std::vector<std::array<double, 4>> part_;
  double total_weight_ = 0;
};

/// 1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x) = 1 / P(alive | x, t_x, T), for every x (an MBG/NBD
/// customer may have dropped out at time 0).
inline double mbgnbd_alive_denominator(const MbgNbdParams& p, double x, double tx, double T) noexcept {
  return 1 + p.a / (p.b + x) * std::exp((p.r + x) * (std::log(p.alpha + T) - std::log(p.alpha + tx)));
}

/// E[Y(t) | x, t_x, T] (Batislam et al. 2007; lifetimes' ModifiedBetaGeoFitter):
///   (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))] / D,
/// D = mbgnbd_alive_denominator. This is BG/NBD's eq. 10 with b -> b+1 and D in place of BG/NBD's
/// denominator, so it reuses bgnbd_conditional_expected (Euler-transformed series, stable for
/// frequent buyers, a = 1 handled); for x > 0 the two denominators coincide, for x = 0 BG/NBD's is 1.
/// Like BG/NBD's, a horizon whose series has not converged after 2e6 terms (t beyond ~1e5 times
/// alpha + T) gives NaN.
inline void mbgnbd_conditional_expected(const MbgNbdParams& p, const double* t, int K, double x, double tx, double T,
                                        double* out) noexcept {
  bgnbd_conditional_expected({p.r, p.alpha, p.a, p.b + 1}, t, K, x, tx, T, out);
  if (x == 0) {
    const double D = mbgnbd_alive_denominator(p, x, tx, T);
    for (int k = 0; k < K; ++k) out[k] /= D;
  }
}

}  // namespace detail

/// Sum over customers of the MBG/NBD log-likelihood at `params` (see detail::MbgNbdLikelihood);
/// when `gradient` is not null it receives d/d(r, alpha, a, b) of that sum (analytic).
inline double mbgnbd_log_likelihood(const MbgNbdParams& params, const ConstVectorRef<double>& frequency,
                                    const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                    Eigen::Vector4d* gradient = nullptr) {
  constexpr const char* where = "uvp::mbgnbd_log_likelihood";
  detail::check_mbgnbd_params(where, params);
  detail::check_rft(where, frequency, recency, T);
  const detail::MbgNbdLikelihood lik(frequency, recency, T, nullptr);
  double g[4];
  const double ll = lik.evaluate(params, gradient ? g : nullptr);
  if (gradient) *gradient << g[0], g[1], g[2], g[3];
  return ll;
}

/// The MBG/NBD model of Batislam, Denizel & Filiztekin (2007), "Empirical validation and
/// comparison of models for customer base analysis", International Journal of Research in
/// Marketing 24(3), 201-209; the parameterisation and outputs of lifetimes' ModifiedBetaGeoFitter
/// and BTYDplus' mbgcnbd with k = 1. Unlike BG/NBD, a customer without repeat purchases can be
/// "dead" (P(alive | x = 0) < 1), which removes BG/NBD's optimistic P(alive) = 1 for one-time buyers.
///
/// Data as BgNbd: frequency x (repeat purchases, whole), recency t_x, T, one time unit, with
/// 0 <= t_x <= T and t_x = 0 when x = 0. Fit: maximum likelihood over log(r, alpha, a, b) by BFGS
/// with the analytic gradient, standard errors from the observed information
/// (ClvFitResult::standard_errors). Data that cannot identify the parameters are refused (every
/// T = 0, no repeat purchase at all, one customer or identical histories without a penalty), and an
/// estimate on the boundary (a parameter -> 0 or infinity) or without a positive definite observed
/// information is reported with converged = false and a warning, never as a plain success.
class MbgNbd {
 public:
  MbgNbd() = default;
  /// A model with known parameters; each must be finite and > 0.
  explicit MbgNbd(const MbgNbdParams& params) : params_(params), fitted_(true) {
    detail::check_mbgnbd_params("uvp::MbgNbd::MbgNbd", params);
  }

  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const MbgNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, nullptr, 0, options);
  }
  /// Weighted fit: customer i counts weights[i] times (finite, >= 0).
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstVectorRef<double>& weights,
                   const MbgNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, weights.data(), weights.size(), options);
  }
  ClvFitResult fit(const CustomerSummary& summary, const MbgNbdFitOptions& options = {}) {
    return fit(summary.frequency, summary.recency, summary.T, options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const MbgNbdParams& params() const {
    require_fitted("params");
    return params_;
  }

  double log_likelihood(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                        const ConstVectorRef<double>& T) const {
    require_fitted("log_likelihood");
    return mbgnbd_log_likelihood(params_, frequency, recency, T);
  }

  /// E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]: expected repeat
  /// purchases in (0, t] of a new customer. t finite and >= 0.
  double expected_purchases(double t) const {
    require_fitted("expected_purchases");
    check_horizon("uvp::MbgNbd::expected_purchases", t);
    double out;
    detail::mbgnbd_conditional_expected(params_, &t, 1, 0, 0, 0, &out);
    return out;
  }

  /// E[Y(t) | x, t_x, T]: expected purchases in the next t time units of a customer with history
  /// (x, t_x, T) (lifetimes' conditional_expected_number_of_purchases_up_to_time).
  double conditional_expected_purchases(double t, double frequency, double recency, double T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::MbgNbd::conditional_expected_purchases";
    check_horizon(where, t);
    check_one(where, frequency, recency, T);
    double out;
    detail::mbgnbd_conditional_expected(params_, &t, 1, frequency, recency, T, &out);
    return out;
  }
  /// The same for every customer (parallel); one value per customer.
  Vector<double> conditional_expected_purchases(double t, const ConstVectorRef<double>& frequency,
                                                const ConstVectorRef<double>& recency,
                                                const ConstVectorRef<double>& T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::MbgNbd::conditional_expected_purchases";
    check_horizon(where, t);
    detail::check_rft(where, frequency, recency, T);
    const index n = frequency.size();
    Vector<double> out(n);
    const MbgNbdParams p = params_;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1024) if (n > 4096)
#endif
    for (index i = 0; i < n; ++i)
      detail::mbgnbd_conditional_expected(p, &t, 1, frequency[i], recency[i], T[i], &out[i]);
    return out;
  }

  /// P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)).
  double probability_alive(double frequency, double recency, double T) const {
    require_fitted("probability_alive");
    check_one("uvp::MbgNbd::probability_alive", frequency, recency, T);
    return 1 / detail::mbgnbd_alive_denominator(params_, frequency, recency, T);
  }
  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& T) const {
    require_fitted("probability_alive");
    detail::check_rft("uvp::MbgNbd::probability_alive", frequency, recency, T);
    const index n = frequency.size();
    Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 16384)
#endif
    for (index i = 0; i < n; ++i) out[i] = 1 / detail::mbgnbd_alive_denominator(params_, frequency[i], recency[i], T[i]);
    return out;
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_) detail::raise<not_fitted_error>("uvp::MbgNbd::", what, ": the model is not fitted (call fit() first)");
  }
  static void check_horizon(const char* where, double t) {
    if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": t must be finite and >= 0, got ", t);
  }
  static void check_one(const char* where, double x, double tx, double T) { detail::check_one_rft(where, x, tx, T); }

  ClvFitResult fit_impl(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                        const ConstVectorRef<double>& T, const double* w, index w_size, const MbgNbdFitOptions& opt) {
    constexpr const char* where = "uvp::MbgNbd::fit";
    if (!std::isfinite(opt.penalizer) || opt.penalizer < 0)
      detail::raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", opt.penalizer);
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    detail::check_rft(where, f, r, T, w, w_size);
    if (opt.initial) detail::check_mbgnbd_params(where, *opt.initial);
    const detail::MbgNbdLikelihood lik(f, r, T, w);
    const double W = lik.total_weight();
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": weights sum to 0");
    // What the data can identify (customers with weight > 0 only).
    const detail::ClvDataShape shape = detail::clv_data_shape(f, r, T, w);
    const std::string same = detail::check_identifiable(
        where, shape, f, r, T, opt.penalizer,
        "the likelihood grows without bound as the share dropping out at time 0 a / (a + b) -> 1");
    const double max_T = shape.max_T, sum_wx = shape.sum_wx, sum_wT = shape.sum_wT;
    const double lambda = opt.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const MbgNbdParams p{std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3])};
      const double pv[4] = {p.r, p.alpha, p.a, p.b};
      for (double v : pv)
        if (!(v > 0) || !std::isfinite(v)) return std::numeric_limits<double>::infinity();
      double grad[4];
      const double ll = lik.evaluate(p, grad);
      double f_val = -ll / W;
      for (int i = 0; i < 4; ++i) {
        f_val += lambda * pv[i] * pv[i];
        g[i] = pv[i] * (-grad[i] / W + 2 * lambda * pv[i]);  // chain rule through p = exp(theta)
      }
      return std::isfinite(f_val) && g.allFinite() ? f_val : std::numeric_limits<double>::infinity();
    };
    const double al0 = sum_wT / sum_wx;  // alpha that matches the mean purchase rate at r = 1
    std::vector<MbgNbdParams> starts;
    starts.push_back(opt.initial ? *opt.initial : MbgNbdParams{1, std::max(max_T / 10, 1e-3), 1, 1});
    starts.push_back({1, al0, 1, 1});
    starts.push_back({0.5, 0.5 * al0, 0.5, 2});
    starts.push_back({2, 2 * al0, 2, 8});
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    detail::BfgsResult res;
    int used = -1;
    for (int k = 0; k < static_cast<int>(starts.size()); ++k) {
      const MbgNbdParams& s = starts[static_cast<std::size_t>(k)];
      Eigen::VectorXd th0(4);
      th0 << std::log(s.r), std::log(s.alpha), std::log(s.a), std::log(s.b);
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
    out.customers = f.size();
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
        out, {"r", "alpha", "a", "b"}, {params_.r, params_.alpha, params_.a, params_.b},
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
    const double v[4] = {params_.r, params_.alpha / max_T, params_.a, params_.b};
    const char* names[4] = {"r", "alpha", "a", "b"};
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
      out.warnings.push_back(std::string(where) + ": the estimate is not a strict maximum of the likelihood, so r, alpha, a and b "
                             "are not identified by these data");
    }
    return out;
  }

  MbgNbdParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
