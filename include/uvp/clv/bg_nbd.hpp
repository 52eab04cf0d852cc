// SPDX-License-Identifier: Apache-2.0
// The BG/NBD ("beta-geometric / negative binomial") model of repeat purchasing: fit and predictions.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/special_functions.hpp"
#include "uvp/clv/standard_errors.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"
#include "uvp/detail/clv_identifiability.hpp"
#include "uvp/detail/clv_patterns.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"

namespace uvp {

/// BG/NBD parameters (Fader, Hardie & Lee 2005): while alive, a customer buys as a Poisson process
/// of rate lambda ~ Gamma(shape r, rate alpha); after each repeat purchase they drop out for good
/// with probability p ~ Beta(a, b). alpha is in the time unit of recency and T (1/alpha scales the
/// purchase rate). All four are > 0.
struct BgNbdParams {
  double r = 0;
  double alpha = 0;
  double a = 0;
  double b = 0;
};

/// Options of BgNbd::fit.
struct BgNbdFitOptions {
  /// L2 penalty on the parameters, as lifetimes' `penalizer_coef`: the fit minimises
  /// -sum(w_i LL_i) / sum(w_i) + penalizer * (r^2 + alpha^2 + a^2 + b^2). 0: plain maximum likelihood.
  double penalizer = 0;
  /// Starting point; default r = a = b = 1 and alpha = max(T) / 10 (lifetimes' time scaling,
  /// which puts the start at the scale of the data).
  std::optional<BgNbdParams> initial = std::nullopt;
  int max_iterations = 500;
  /// BFGS stops when the gradient of the objective with respect to the log-parameters is below
  /// gradient_tolerance * max(1, |objective|) in every component.
  double gradient_tolerance = 1e-10;
};

namespace detail {

inline void check_bgnbd_params(const char* where, const BgNbdParams& p) {
  const double v[4] = {p.r, p.alpha, p.a, p.b};
  const char* names[4] = {"r", "alpha", "a", "b"};
  for (int i = 0; i < 4; ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      raise<invalid_argument>(where, ": parameter ", names[i], " must be finite and > 0, got ", v[i]);
}

/// frequency / recency / T (and weights when given) of a BG/NBD data set: same length, not empty,
/// finite, frequency a whole number >= 0, 0 <= recency <= T, recency = 0 when frequency = 0.
inline void check_rft(const char* where, const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                      const ConstVectorRef<double>& T, const double* w = nullptr, index w_size = 0) {
  check_not_empty(where, "frequency", f.size());
  check_size(where, "recency", r.size(), f.size());
  check_size(where, "T", T.size(), f.size());
  if (w) check_size(where, "weights", w_size, f.size());
  for (index i = 0; i < f.size(); ++i) {
    const double x = f[i], tx = r[i], t = T[i];
    if (!std::isfinite(x) || x < 0 || x != std::floor(x))
      raise<invalid_argument>(where, ": frequency[", i, "] = ", x, " must be a whole number >= 0");
    if (!std::isfinite(tx) || tx < 0)
      raise<invalid_argument>(where, ": recency[", i, "] = ", tx, " must be finite and >= 0");
    if (!std::isfinite(t) || t < 0) raise<invalid_argument>(where, ": T[", i, "] = ", t, " must be finite and >= 0");
    if (tx > t) raise<invalid_argument>(where, ": recency[", i, "] = ", tx, " exceeds T[", i, "] = ", t);
    if (x == 0 && tx != 0)
      raise<invalid_argument>(where, ": recency[", i, "] = ", tx, " but frequency[", i,
                              "] = 0 (recency must be 0 without repeat purchases)");
    if (w && (!std::isfinite(w[i]) || w[i] < 0))
      raise<invalid_argument>(where, ": weights[", i, "] = ", w[i], " must be finite and >= 0");
  }
}

/// check_rft for one customer (the one-customer predictions and scores of every BTYD model).
inline void check_one_rft(const char* where, double x, double tx, double T) {
  Eigen::Matrix<double, 1, 1> f, r, t;
  f << x;
  r << tx;
  t << T;
  check_rft(where, f, r, t);
}

/// Customers sorted by frequency and cut into segments of one frequency each, so that every
/// term that depends only on (x, parameters) - the log-gamma and digamma terms - is computed once
/// per distinct x, and the per-customer work is a few logs and one exp, vectorised with xsimd and
/// spread over threads segment by segment (summed in a fixed order: results do not depend on the
/// thread count).
class BgNbdLikelihood {
 public:
  BgNbdLikelihood(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r, const ConstVectorRef<double>& T,
                  const double* w) {
    const index n = f.size();
    const std::vector<index> order = order_by_frequency(f, false);  // stable in x (counting sort)
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
  }

  double total_weight() const noexcept { return total_weight_; }
  index size() const noexcept { return static_cast<index>(tx_.size()); }

  /// Sum of w_i LL_i at p; when grad is not null, writes d/d(r, alpha, a, b) of that sum.
  double evaluate(const BgNbdParams& p, double* grad) const {
    const double r = p.r, al = p.alpha, a = p.a, b = p.b;
    const index ns = static_cast<index>(segments_.size());
    std::vector<std::array<double, 5>> part(static_cast<std::size_t>(ns));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 2) if (size() > 20000)
#endif
    for (index s = 0; s < ns; ++s) {
      const Segment& sg = segments_[static_cast<std::size_t>(s)];
      const double x = groups_[static_cast<std::size_t>(sg.group)].x;
      part[static_cast<std::size_t>(s)] = segment_sums(sg.begin, sg.end, x, r, al, a, b);
    }
    double ll = 0, dr = 0, dal = 0, da = 0, db = 0;
    for (index s = 0; s < ns; ++s) {
      const auto& q = part[static_cast<std::size_t>(s)];
      const double x = groups_[static_cast<std::size_t>(segments_[static_cast<std::size_t>(s)].group)].x;
      ll += q[0];
      dr -= q[1];
      dal -= (r + x) * q[2];
      da += q[3] / a;
      if (x > 0) db -= q[3] / (b + x - 1);
    }
    // Terms shared by every customer with the same x (A_1 + A_2 of Fader, Hardie & Lee's note 004).
    const double lg_r = log_gamma(r), lg_b = log_gamma(b), lg_ab = log_gamma(a + b);
    const double ps_r = digamma(r), ps_b = digamma(b), ps_ab = digamma(a + b), log_al = std::log(al);
    for (const Group& g : groups_) {
      const double x = g.x, W = g.weight;
      ll += W * (log_gamma(r + x) - lg_r + r * log_al + lg_ab + log_gamma(b + x) - lg_b - log_gamma(a + b + x));
      if (grad) {
        const double ps_abx = digamma(a + b + x);
        dr += W * (digamma(r + x) - ps_r + log_al);
        dal += W * r / al;
        da += W * (ps_ab - ps_abx);
        db += W * (ps_ab + digamma(b + x) - ps_b - ps_abx);
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

  // Per customer, with L_T = log(alpha + T), L_t = log(alpha + t_x):
  //   A_3 = -(r+x) L_T,  A_4 = log a - log(b+x-1) - (r+x) L_t  (x > 0 only),
  //   s = logaddexp(A_3, A_4) = A_3 + softplus(A_4 - A_3),  w4 = sigmoid(A_4 - A_3) = 1 - w3.
  // Returns sum w s, sum w (w3 L_T + w4 L_t), sum w (w3/(alpha+T) + w4/(alpha+t_x)), sum w w4:
  // the data-dependent parts of the log-likelihood and of its four derivatives.
  std::array<double, 5> segment_sums(index begin, index end, double x, double r, double al, double a, double b) const {
    using B = simd::batch<double>;
    constexpr index W = static_cast<index>(simd::width<double>);
    const double rx = r + x;
    const bool repeat = x > 0;
    const double K = repeat ? std::log(a) - std::log(b + x - 1) : 0.0;
    const B vrx(rx), vK(K), val(al), one(1.0), zero(0.0);
    B acc_s(0.0), acc_r(0.0), acc_al(0.0), acc_w4(0.0);
    auto step = [&](const B& tx, const B& T, const B& w) {
      const B at = val + T;
      const B LT = xsimd::log(at);
      if (!repeat) {
        acc_s += w * (-vrx * LT);
        acc_r += w * LT;
        acc_al += w / at;
        return;
      }
      const B ax = val + tx;
      const B Lt = xsimd::log(ax);
      const B c3 = -vrx * LT;
      const B d = (vK - vrx * Lt) - c3;
      const B e = simd::exp(-xsimd::abs(d));
      const B inv = one / (one + e);
      const B w4 = xsimd::select(d >= zero, inv, e * inv);
      const B w3 = one - w4;
      acc_s += w * (c3 + xsimd::max(d, zero) + xsimd::log1p(e));
      acc_r += w * (w3 * LT + w4 * Lt);
      acc_al += w * (w3 / at + w4 / ax);
      acc_w4 += w * w4;
    };
    const double* tx = tx_.data();
    const double* T = T_.data();
    const double* w = w_.data();
    index i = begin;
    for (; i + W <= end; i += W) step(B::load_unaligned(tx + i), B::load_unaligned(T + i), B::load_unaligned(w + i));
    if (i < end) {  // the tail, padded with weight-0 customers (t_x = 0, T = 1: finite terms)
      alignas(64) double ptx[W], pT[W], pw[W];
      for (index k = 0; k < W; ++k) {
        const bool in = i + k < end;
        ptx[k] = in ? tx[i + k] : 0.0;
        pT[k] = in ? T[i + k] : 1.0;
        pw[k] = in ? w[i + k] : 0.0;
      }
      step(B::load_unaligned(ptx), B::load_unaligned(pT), B::load_unaligned(pw));
    }
    return {simd::reduce_add(acc_s), simd::reduce_add(acc_r), simd::reduce_add(acc_al), simd::reduce_add(acc_w4), 0.0};
  }

  std::vector<double> tx_, T_, w_;
  std::vector<Group> groups_;
  std::vector<Segment> segments_;
  double total_weight_ = 0;
};

/// 1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x): the denominator of FHL eq. 10, and
/// 1 / P(alive | x, t_x, T) (Fader, Hardie & Lee's note 021).
inline double bgnbd_alive_denominator(double r, double al, double a, double b, double x, double tx, double T) noexcept {
  if (x == 0) return 1.0;
  // log((alpha+T)/(alpha+t_x)) as log1p: the difference of two logs loses its digits when alpha
  // is large, and r + x multiplies that error.
  return 1 + a / (b + x - 1) * std::exp((r + x) * std::log1p((T - tx) / (al + tx)));
}

inline double bgnbd_probability_alive(const BgNbdParams& p, double x, double tx, double T) noexcept {
  return 1 / bgnbd_alive_denominator(p.r, p.alpha, p.a, p.b, x, tx, T);
}

/// E[Y(t_k) | x, t_x, T] for K horizons at once (FHL 2005 eq. 10):
///   E = (a+b+x-1)/(a-1) [1 - (1-z)^(r+x) 2F1(r+x, b+x; c; z)] / D,  c = a+b+x-1, z = t/(alpha+T+t),
/// D = bgnbd_alive_denominator. The Gauss hypergeometric function is summed as a power series
/// either directly or through Euler's transformation
///   2F1(r+x, b+x; c; z) = (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; c; z),
/// whichever has the smaller upper parameters: Euler's do not grow with x, so frequent buyers
/// neither overflow nor need many terms; the direct form is the one that converges when a is very
/// large. The K horizons share the series coefficients (a fixed-width inner loop the compiler
/// vectorises; the horizons' log1p/expm1 go through xsimd). The factor 1 - (1-z)^e (1 + S1) is
/// formed from expm1/log1p and the series minus its leading 1, so short horizons keep their
/// relative precision. When p_alive is not null it receives P(alive) = 1 / D. A series that has not
/// converged after 2e6 terms (z within ~1e-5 of 1, or both forms growing) gives NaN (which
/// BgNbd's predictions turn into uvp::numeric_error). Each term is accumulated as one running
/// product, so coefficients that would overflow on their own (a large r) do not.
inline void bgnbd_conditional_expected_core(double r, double al, double a, double b, const double* t, int K, double x,
                                            double tx, double T, double* out, double* p_alive = nullptr,
                                            int form = 0) noexcept {
  const double c = a + b + x - 1, first = c / (a - 1);
  const bool euler = form == 1 || (form == 0 && std::abs((a + b - 1 - r) * (a - 1)) <= (r + x) * (b + x));
  // Euler's series alternates when r > a + b - 1; with r large (a near-homogeneous purchase rate)
  // its terms dwarf the sum. Then, past 1e4 (four digits lost), the direct series - positive
  // terms - is summed instead, and kept where it converges.
  constexpr double cancellation = 1e4;
  const double ca = euler ? a + b - 1 - r : r + x;  // upper parameters of the series summed
  const double cb = euler ? a - 1 : b + x;
  const double power = euler ? a - 1 : r + x;  // exponent of (1 - z) in front of it
  const double denom = bgnbd_alive_denominator(r, al, a, b, x, tx, T);
  if (p_alive) *p_alive = 1 / denom;
  constexpr long max_terms = 2000000;
  constexpr double eps = 1e-17;
  if (K == 1) {
    const double z = t[0] / (al + T + t[0]);
    // term_n = coef_n z^n accumulated as one product: for a large r the coefficients alone
    // overflow (and z^n underflows) long before the terms themselves are small.
    double term = 1, s1 = 0, s_abs = 0;
    bool converged = z == 0;
    for (long n = 0; n < max_terms && !converged; ++n) {
      const double dn = static_cast<double>(n);
      const double ratio = (ca + dn) * (cb + dn) / ((c + dn) * (dn + 1));
      term *= ratio * z;
      s1 += term;
      s_abs += std::abs(term);
      converged = term == 0 || (std::abs(term) <= eps * std::abs(1 + s1) && std::abs(ratio) * z < 1);
    }
    if (form == 0 && euler && converged && s_abs > cancellation * std::abs(1 + s1)) {
      bgnbd_conditional_expected_core(r, al, a, b, t, 1, x, tx, T, out, nullptr, 2);
      if (std::isfinite(out[0])) return;
    }
    // 1 - (1-z)^e (1 + s1) = -(e1 + s1 (1-z)^e): the product, not e1 s1 + s1, when the series is
    // large (a long horizon at a large rate) and (1-z)^e tiny.
    const double u = power * std::log1p(-z);
    const double e1 = std::expm1(u);
    out[0] = converged ? first * (-(e1 + s1 * std::exp(u))) / denom : std::nan("");
    return;
  }
  using B = simd::batch<double>;
  constexpr int W = static_cast<int>(simd::width<double>);
  constexpr int L = 16;  // lanes: a multiple of every batch width
  static_assert(L % W == 0, "uvp: the horizon chunk must be a multiple of the SIMD width");
  alignas(64) double z[L], zq[L], zp[L], s1[L], e1[L], q[L];
  for (int k0 = 0; k0 < K; k0 += L) {
    const int kn = std::min(L, K - k0);
    int kmax = 0;
    for (int k = 0; k < L; ++k) {
      z[k] = k < kn ? t[k0 + k] / (al + T + t[k0 + k]) : 0.0;  // padding lanes: z = 0, series = 1
      zp[k] = 1;
      s1[k] = 0;
      if (z[k] > z[kmax]) kmax = k;
    }
    // The slowest lane (largest z) decides convergence; it is tracked in scalars beside the
    // vector loop, and checked every 4 terms (extra terms below eps change nothing). Lane k's
    // term is coef_n zm^n (z_k / zm)^n: the shared factor is the slowest lane's term, which stays
    // finite where coef_n alone overflows (large r), and (z_k / zm)^n <= 1 can only underflow.
    const double zm = z[kmax];
    for (int k = 0; k < L; ++k) zq[k] = zm > 0 ? z[k] / zm : 0.0;
    double s1m = 0, last = 1, ratio = 0, s_abs = 0;
    bool converged = zm == 0;
    for (long n = 0; n < max_terms && !converged;) {
      for (int u = 0; u < 4; ++u, ++n) {
        const double dn = static_cast<double>(n);
        ratio = (ca + dn) * (cb + dn) / ((c + dn) * (dn + 1));
        last *= ratio * zm;
        for (int k = 0; k < L; ++k) {
          zp[k] *= zq[k];
          s1[k] += last * zp[k];
        }
        s1m += last;
        s_abs += std::abs(last);
      }
      converged = last == 0 || (std::abs(last) <= eps * std::abs(1 + s1m) && std::abs(ratio) * zm < 1);
    }
    const B vpow(power);
    for (int k = 0; k < L; k += W) {
      const B u = vpow * xsimd::log1p(-B::load_aligned(z + k));
      simd::expm1(u).store_aligned(e1 + k);
      simd::exp(u).store_aligned(q + k);
    }
    for (int k = 0; k < kn; ++k)
      out[k0 + k] = converged ? first * (-(e1[k] + s1[k] * q[k])) / denom : std::nan("");
    if (form == 0 && euler && converged && s_abs > cancellation * std::abs(1 + s1m)) {
      double direct[L];
      bgnbd_conditional_expected_core(r, al, a, b, t + k0, kn, x, tx, T, direct, nullptr, 2);
      for (int k = 0; k < kn; ++k)
        if (std::isfinite(direct[k])) out[k0 + k] = direct[k];
    }
  }
}

/// bgnbd_conditional_expected_core with the a = 1 singularity handled: for |a - 1| < 1e-5 the
/// expectation is interpolated linearly between a = 1 - 1e-5 and a = 1 + 1e-5 (error O(1e-10)).
inline void bgnbd_conditional_expected(const BgNbdParams& p, const double* t, int K, double x, double tx, double T,
                                       double* out, double* p_alive = nullptr) noexcept {
  constexpr double h = 1e-5;
  if (std::abs(p.a - 1) >= h) {
    bgnbd_conditional_expected_core(p.r, p.alpha, p.a, p.b, t, K, x, tx, T, out, p_alive);
    return;
  }
  constexpr int chunk = 16;
  double lo[chunk], hi[chunk];
  const double u = (p.a - (1 - h)) / (2 * h);
  for (int k0 = 0; k0 < K; k0 += chunk) {
    const int kn = std::min(chunk, K - k0);
    bgnbd_conditional_expected_core(p.r, p.alpha, 1 - h, p.b, t + k0, kn, x, tx, T, lo);
    bgnbd_conditional_expected_core(p.r, p.alpha, 1 + h, p.b, t + k0, kn, x, tx, T, hi);
    for (int k = 0; k < kn; ++k) out[k0 + k] = (1 - u) * lo[k] + u * hi[k];
  }
  if (p_alive) *p_alive = bgnbd_probability_alive(p, x, tx, T);  // smooth in a: no interpolation
}

/// The parameters of p that ran off to 0 or infinity (relative to 1 for r, a, b and to the data's
/// longest T for alpha, by a factor 1e6), as "r = 1.4e+10 (-> infinity), ..."; empty when none.
inline std::string bgnbd_boundary_parameters(const BgNbdParams& p, double time_scale) {
  const double v[4] = {p.r, p.alpha, p.a, p.b}, scale[4] = {1, time_scale, 1, 1};
  const char* names[4] = {"r", "alpha", "a", "b"};
  std::string out;
  for (int i = 0; i < 4; ++i) {
    const double u = v[i] / scale[i];
    if (u >= 1e-6 && u <= 1e6) continue;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s = %.3g (-> %s)", out.empty() ? "" : ", ", names[i], v[i],
                  u < 1e-6 ? "0" : "infinity");
    out += buf;
  }
  return out;
}

}  // namespace detail

/// Sum over customers of the BG/NBD log-likelihood at `params` (FHL 2005 eq. 6, in the log-space
/// form of Fader & Hardie's note 004 / lifetimes: log-gamma terms and a log-sum-exp, stable for
/// large frequencies). When `gradient` is not null it receives d/d(r, alpha, a, b) of that sum
/// (analytic, digamma-based). frequency, recency, T: one entry per customer (see BgNbd::fit).
inline double bgnbd_log_likelihood(const BgNbdParams& params, const ConstVectorRef<double>& frequency,
                                   const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                   Eigen::Vector4d* gradient = nullptr) {
  constexpr const char* where = "uvp::bgnbd_log_likelihood";
  detail::check_bgnbd_params(where, params);
  detail::check_rft(where, frequency, recency, T);
  const detail::BgNbdLikelihood lik(frequency, recency, T, nullptr);
  double g[4];
  const double ll = lik.evaluate(params, gradient ? g : nullptr);
  if (gradient) *gradient << g[0], g[1], g[2], g[3];
  return ll;
}

/// The BG/NBD model of Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
/// Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284; the same
/// parameterisation and outputs as lifetimes' BetaGeoFitter and BTYD's bgnbd.* functions.
///
/// Data, one entry per customer (see summary_from_transactions): frequency x (repeat purchases,
/// a whole number), recency t_x (time of the last purchase since the first), T (time since the
/// first purchase), all in the same time unit, with 0 <= t_x <= T and t_x = 0 when x = 0.
///
/// Fit: maximum likelihood over log(r, alpha, a, b) by BFGS with the analytic gradient. Predictions
/// are parallel over customers (OpenMP). Throws uvp::not_fitted_error before fit() or a constructor
/// with parameters; bad data throw uvp::invalid_argument naming the argument and index.
///
/// Data that cannot identify the parameters (counting only customers with weight > 0):
/// - every T = 0, or every frequency = 0: throws uvp::invalid_argument. No estimate exists: with
///   no repeat purchase, a and b do not enter the likelihood and the purchase rate's estimate is
///   0 (r / alpha -> 0); with no time observed nothing is.
/// - one customer, or customers who all have the same (x, t_x, T): the likelihood of identical
///   customers is n times one customer's, linear in the mixing distributions and so largest for
///   point masses (r, alpha, a, b -> infinity; checked numerically: BFGS drifts to r ~ 1e10).
///   Throws uvp::invalid_argument, unless a penalizer is set: the penalised objective then has a
///   minimum, which is returned with a warning that the penalty decided it.
/// - any other data whose likelihood keeps growing towards the edge of the parameter space (e.g.
///   t_x = T for everyone: nobody seems to drop out, a -> 0): the optimizer works in a box of 1e8
///   around the data's scale (r, a, b relative to 1, alpha relative to max T), and an estimate
///   beyond 1e6 of it is a *boundary estimate*: converged = false, and the message and a warning
///   name the parameters and their direction. Predictions at it are finite.
/// When BFGS does not converge, or stops on the boundary, three more starts around the data's mean
/// purchase rate are tried and the lowest objective kept (the message and a warning say so).
class BgNbd {
 public:
  BgNbd() = default;
  /// A model with known parameters (e.g. published ones); each must be finite and > 0.
  explicit BgNbd(const BgNbdParams& params) : params_(params), fitted_(true) {
    detail::check_bgnbd_params("uvp::BgNbd::BgNbd", params);
  }

  /// Fits (r, alpha, a, b); see BgNbdFitOptions for the penalty and the starting point.
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const BgNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, nullptr, 0, options);
  }
  /// Weighted fit: customer i counts weights[i] times (for data compressed to distinct
  /// (x, t_x, T) patterns, as lifetimes' `weights`). Weights finite and >= 0.
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                   const ConstVectorRef<double>& T, const ConstVectorRef<double>& weights,
                   const BgNbdFitOptions& options = {}) {
    return fit_impl(frequency, recency, T, weights.data(), weights.size(), options);
  }
  ClvFitResult fit(const CustomerSummary& summary, const BgNbdFitOptions& options = {}) {
    return fit(summary.frequency, summary.recency, summary.T, options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const BgNbdParams& params() const {
    require_fitted("params");
    return params_;
  }

  /// Sum of the log-likelihoods of the given customers at the model's parameters.
  double log_likelihood(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                        const ConstVectorRef<double>& T) const {
    require_fitted("log_likelihood");
    return bgnbd_log_likelihood(params_, frequency, recency, T);
  }

  /// E[X(t)]: expected repeat purchases in (0, t] of a customer who made their first purchase at
  /// time 0 (FHL eq. 9). t finite and >= 0. Throws uvp::numeric_error when t is beyond about 5e4
  /// times alpha, where the series does not converge.
  double expected_purchases(double t) const {
    require_fitted("expected_purchases");
    check_horizon("uvp::BgNbd::expected_purchases", t);
    double out;
    detail::bgnbd_conditional_expected(params_, &t, 1, 0, 0, 0, &out);
    check_converged("uvp::BgNbd::expected_purchases", out, t, 0, 0, 0, -1);
    return out;
  }

  /// E[Y(t) | x, t_x, T]: expected purchases in the next t time units of a customer with history
  /// (x, t_x, T) (FHL eq. 10; lifetimes' conditional_expected_number_of_purchases_up_to_time).
  /// Throws uvp::numeric_error when t is beyond about 5e4 times alpha + T (see expected_purchases).
  double conditional_expected_purchases(double t, double frequency, double recency, double T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::BgNbd::conditional_expected_purchases";
    check_horizon(where, t);
    check_one(where, frequency, recency, T);
    double out;
    detail::bgnbd_conditional_expected(params_, &t, 1, frequency, recency, T, &out);
    check_converged(where, out, t, frequency, recency, T, -1);
    return out;
  }
  /// The same for every customer (parallel); returns one value per customer.
  Vector<double> conditional_expected_purchases(double t, const ConstVectorRef<double>& frequency,
                                                const ConstVectorRef<double>& recency,
                                                const ConstVectorRef<double>& T) const {
    require_fitted("conditional_expected_purchases");
    constexpr const char* where = "uvp::BgNbd::conditional_expected_purchases";
    check_horizon(where, t);
    detail::check_rft(where, frequency, recency, T);
    const index n = frequency.size();
    Vector<double> out(n);
    const BgNbdParams p = params_;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1024) if (n > 4096)
#endif
    for (index i = 0; i < n; ++i) detail::bgnbd_conditional_expected(p, &t, 1, frequency[i], recency[i], T[i], &out[i]);
    for (index i = 0; i < n; ++i) check_converged(where, out[i], t, frequency[i], recency[i], T[i], i);
    return out;
  }

  /// P(alive | x, t_x, T) (Fader, Hardie & Lee's note 021; 1 when x = 0, since a BG/NBD customer
  /// can only drop out right after a repeat purchase).
  double probability_alive(double frequency, double recency, double T) const {
    require_fitted("probability_alive");
    check_one("uvp::BgNbd::probability_alive", frequency, recency, T);
    return detail::bgnbd_probability_alive(params_, frequency, recency, T);
  }
  Vector<double> probability_alive(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& recency,
                                   const ConstVectorRef<double>& T) const {
    require_fitted("probability_alive");
    detail::check_rft("uvp::BgNbd::probability_alive", frequency, recency, T);
    const index n = frequency.size();
    Vector<double> out(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 16384)
#endif
    for (index i = 0; i < n; ++i) out[i] = detail::bgnbd_probability_alive(params_, frequency[i], recency[i], T[i]);
    return out;
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_) detail::raise<not_fitted_error>("uvp::BgNbd::", what, ": the model is not fitted (call fit() first)");
  }
  // Eq. 10's series does not converge in 2e6 terms when t is more than about 5e4 times alpha + T
  // (z = t / (alpha + T + t) within 2e-5 of 1): say so instead of returning NaN.
  void check_converged(const char* where, double v, double t, double x, double tx, double T, index i) const {
    if (!std::isnan(v)) return;
    const std::string who = i >= 0 ? detail::str(" for customer ", i) : std::string();
    detail::raise<numeric_error>(where, ": the hypergeometric series of eq. 10 did not converge", who, " (t = ", t,
                                 ", x = ", x, ", t_x = ", tx, ", T = ", T, ", alpha = ", params_.alpha,
                                 "): the horizon is more than about 5e4 times alpha + T");
  }
  static void check_horizon(const char* where, double t) {
    if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": t must be finite and >= 0, got ", t);
  }
  static void check_one(const char* where, double x, double tx, double T) { detail::check_one_rft(where, x, tx, T); }

  ClvFitResult fit_impl(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                        const ConstVectorRef<double>& T, const double* w, index w_size, const BgNbdFitOptions& opt) {
    constexpr const char* where = "uvp::BgNbd::fit";
    if (!std::isfinite(opt.penalizer) || opt.penalizer < 0)
      detail::raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", opt.penalizer);
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    detail::check_rft(where, f, r, T, w, w_size);
    const auto lik = detail::grouped_likelihood<detail::BgNbdLikelihood>(f, r, T, w);  // per distinct (x, t_x, T)
    const double W = lik.total_weight();
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": weights sum to 0");
    // Data that cannot identify the parameters (see the class comment): no estimate exists, so
    // refuse rather than return wherever the optimizer happened to stop.
    const detail::ClvDataShape shape = detail::clv_data_shape(f, r, T, w);
    const std::string identical = detail::check_identifiable(
        where, shape, f, r, T, opt.penalizer,
        "a and b do not enter the likelihood and the purchase rate's estimate is 0 (r / alpha -> 0)");
    return fit_likelihood(lik, shape, identical, f.size(), T.maxCoeff(), opt);
  }

 public:
  /// The optimisation half of fit(), over any likelihood object with `double evaluate(const
  /// BgNbdParams&, double* grad) const` (sum of w_i LL_i and its gradient d/d(r, alpha, a, b), as
  /// detail::BgNbdLikelihood) and `double total_weight() const`. For fits whose sums are formed
  /// elsewhere - uvp/mpi/clv.hpp reduces them across ranks -; options and data are assumed checked.
  /// `shape` and `identical` are from detail::clv_data_shape / detail::check_identifiable over all the
  /// customers, `customers` their count and `max_T_all` the largest T (the default start's scale).
  /// Every call of evaluate depends only on the values it returned before, so processes that see
  /// the same values make the same calls.
  template <class Likelihood>
  ClvFitResult fit_likelihood(const Likelihood& lik, const detail::ClvDataShape& shape, const std::string& identical,
                              index customers, double max_T_all, const BgNbdFitOptions& opt) {
    constexpr const char* where = "uvp::BgNbd::fit";
    const double W = lik.total_weight();
    BgNbdParams start{1, std::max(max_T_all / 10, 1e-3), 1, 1};
    if (opt.initial) {
      detail::check_bgnbd_params(where, *opt.initial);
      start = *opt.initial;
    }
    const double lambda = opt.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const BgNbdParams p{std::exp(th[0]), std::exp(th[1]), std::exp(th[2]), std::exp(th[3])};
      const double pv[4] = {p.r, p.alpha, p.a, p.b};
      // A box of 1e8 around the data's scale (beyond the 1e6 at which a boundary estimate is
      // reported): a likelihood that keeps growing towards a boundary stops there, where the
      // predictions are still accurate, instead of at 1e12 or 1e-16.
      for (int i = 0; i < 4; ++i) {
        const double u = pv[i] / (i == 1 ? shape.max_T : 1.0);
        if (!(u >= 1e-8 && u <= 1e8)) return std::numeric_limits<double>::infinity();
      }
      double grad[4];
      const double ll = lik.evaluate(p, grad);
      double f_val = -ll / W;
      for (int i = 0; i < 4; ++i) {
        f_val += lambda * pv[i] * pv[i];
        g[i] = pv[i] * (-grad[i] / W + 2 * lambda * pv[i]);  // chain rule through p = exp(theta)
      }
      return std::isfinite(f_val) ? f_val : std::numeric_limits<double>::infinity();
    };
    Eigen::VectorXd th0(4);
    th0 << std::log(start.r), std::log(start.alpha), std::log(start.a), std::log(start.b);
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    auto inside = [&](const detail::BfgsResult& rk) {
      return rk.converged && detail::bgnbd_boundary_parameters({std::exp(rk.x[0]), std::exp(rk.x[1]),
                                                                std::exp(rk.x[2]), std::exp(rk.x[3])},
                                                               shape.max_T)
                                 .empty();
    };
    detail::BfgsResult res = detail::bfgs_minimize(objective, th0, bo);
    int restart = 0;
    if (!inside(res)) {
      // Fallback starts when BFGS did not converge or stopped on the boundary (a flat region far
      // from the data can stall it there), spread around the data's mean purchase rate
      // (r / alpha = sum w x / sum w T): the lowest objective wins, a converged interior run on a tie.
      const double al = shape.sum_wT / shape.sum_wx;
      const BgNbdParams alt[3] = {{1, al, 1, 1}, {0.5, 0.5 * al, 0.5, 2}, {2, 2 * al, 2, 8}};
      for (int k = 0; k < 3 && !inside(res); ++k) {
        th0 << std::log(alt[k].r), std::log(alt[k].alpha), std::log(alt[k].a), std::log(alt[k].b);
        detail::BfgsResult rk = detail::bfgs_minimize(objective, th0, bo);
        const double tie = 1e-10 * std::max(1.0, std::abs(res.f));
        const bool finite_now = std::isfinite(rk.f) && !std::isfinite(res.f);
        if (finite_now || rk.f < res.f - tie || (inside(rk) && rk.f <= res.f + tie)) {
          res = std::move(rk);
          restart = k + 1;
        }
      }
    }
    ClvFitResult out;
    out.converged = res.converged;
    out.iterations = res.iterations;
    out.evaluations = res.evaluations;
    out.customers = customers;
    out.message = res.message;
    if (!std::isfinite(res.f)) {
      out.message = "the log-likelihood is not finite at the starting point";
      out.warnings.push_back("uvp::BgNbd::fit: " + out.message + "; the model was not changed");
      return out;
    }
    params_ = {std::exp(res.x[0]), std::exp(res.x[1]), std::exp(res.x[2]), std::exp(res.x[3])};
    fitted_ = true;
    out.objective = res.f;
    out.log_likelihood = lik.evaluate(params_, nullptr);
    // Standard errors of the unpenalised likelihood at the (possibly penalised) estimate.
    detail::fill_standard_errors(
        out, {"r", "alpha", "a", "b"}, {params_.r, params_.alpha, params_.a, params_.b},
        [&lik](const double* th, double* g) {
          lik.evaluate({th[0], th[1], th[2], th[3]}, g);
          for (int i = 0; i < 4; ++i) g[i] = -g[i];
        },
        where);
    if (!res.converged) out.warnings.push_back("uvp::BgNbd::fit: the optimizer did not converge (" + res.message + ")");
    if (restart > 0) {
      out.message += " (from fallback start " + std::to_string(restart) + ")";
      out.warnings.push_back("uvp::BgNbd::fit: the optimizer did not reach an interior optimum from the first "
                             "starting point; the lowest objective came from fallback start " +
                             std::to_string(restart));
    }
    if (!identical.empty())
      out.warnings.push_back(std::string(where) + ": " + identical + "; the estimate is set by the penalizer");
    const std::string boundary = detail::bgnbd_boundary_parameters(params_, shape.max_T);
    if (!boundary.empty()) {
      out.converged = false;
      out.message = "boundary estimate: " + boundary + " (" + res.message + ")";
      out.warnings.push_back(std::string(where) + ": boundary estimate: " + boundary +
                             "; the likelihood has no maximum inside the parameter space (e.g. purchase or dropout "
                             "rates that look the same for every customer, or nobody who seems to drop out), so "
                             "the parameters are not identified and predictions are the limiting model's");
    }
    return out;
  }

 private:
  BgNbdParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
