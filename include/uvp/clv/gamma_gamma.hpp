// SPDX-License-Identifier: Apache-2.0
// The Gamma-Gamma model of the mean spend per transaction: fit and conditional expected order value.
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
#include "uvp/core/tensor.hpp"
#include "uvp/detail/bfgs.hpp"
#include "uvp/detail/clv_patterns.hpp"
#include "uvp/detail/simd_compat.hpp"

namespace uvp {

/// Gamma-Gamma parameters (Fader, Hardie & Lee 2005b; Fader & Hardie's note 025): a customer's
/// transaction values are Gamma(shape p, rate nu), and nu varies across customers as
/// Gamma(shape q, rate gamma). The population mean spend is p * gamma / (q - 1) (needs q > 1).
/// All three are > 0. (lifetimes calls gamma `v`.)
struct GammaGammaParams {
  double p = 0;
  double q = 0;
  double gamma = 0;
};

/// Options of GammaGamma::fit.
struct GammaGammaFitOptions {
  /// L2 penalty as lifetimes' `penalizer_coef`: minimises -mean LL + penalizer * (p^2 + q^2 + gamma^2).
  double penalizer = 0;
  /// Starting point; default p = 1, q = 2, gamma = mean spend (so the start's population mean is
  /// the observed one).
  std::optional<GammaGammaParams> initial = std::nullopt;
  int max_iterations = 500;
  double gradient_tolerance = 1e-10;
  /// The model assumes a customer's spend per transaction is independent of how often they buy.
  /// When |Pearson correlation(frequency, monetary_value)| over the customers with repeat purchases
  /// is at least this, fit() adds a warning to its result (it does not refuse to fit). 0.3 is a
  /// common rule of thumb for "no longer weak"; CDNOW's is 0.11.
  double correlation_warning = 0.3;
};

namespace detail {

inline void check_gg_params(const char* where, const GammaGammaParams& p) {
  const double v[3] = {p.p, p.q, p.gamma};
  const char* names[3] = {"p", "q", "gamma"};
  for (int i = 0; i < 3; ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      raise<invalid_argument>(where, ": parameter ", names[i], " must be finite and > 0, got ", v[i]);
}

/// frequency / monetary_value: same length, not empty, frequency a whole number >= 0, monetary
/// value finite and >= 0, exactly 0 when frequency = 0, and (for a fit, which takes its log) > 0
/// when frequency > 0.
inline void check_fm(const char* where, const ConstVectorRef<double>& f, const ConstVectorRef<double>& m, bool for_fit,
                     const double* w = nullptr, index w_size = 0) {
  check_not_empty(where, "frequency", f.size());
  check_size(where, "monetary_value", m.size(), f.size());
  if (w) check_size(where, "weights", w_size, f.size());
  for (index i = 0; i < f.size(); ++i) {
    const double x = f[i], v = m[i];
    if (!std::isfinite(x) || x < 0 || x != std::floor(x))
      raise<invalid_argument>(where, ": frequency[", i, "] = ", x, " must be a whole number >= 0");
    if (!std::isfinite(v) || v < 0)
      raise<invalid_argument>(where, ": monetary_value[", i, "] = ", v, " must be finite and >= 0");
    if (x == 0 && v != 0)
      raise<invalid_argument>(where, ": monetary_value[", i, "] = ", v, " but frequency[", i,
                              "] = 0 (the mean repeat spend of a customer without repeat purchases is 0)");
    if (for_fit && x > 0 && v == 0)
      raise<invalid_argument>(where, ": monetary_value[", i, "] = 0 with frequency[", i, "] = ", x,
                              " (the model needs a positive mean spend)");
    if (w && (!std::isfinite(w[i]) || w[i] < 0))
      raise<invalid_argument>(where, ": weights[", i, "] = ", w[i], " must be finite and >= 0");
  }
}

/// Customers with x > 0 sorted by x and cut into segments of one x each: the log-gamma / digamma
/// terms are computed once per distinct x, and per customer there is one log and one division per
/// evaluation (xsimd), spread over threads segment by segment and summed in a fixed order.
class GammaGammaLikelihood {
 public:
  GammaGammaLikelihood(const ConstVectorRef<double>& f, const ConstVectorRef<double>& m, const double* w) {
    const std::vector<index> order = order_by_frequency(f, true);  // x > 0, stable in x (counting sort)
    const std::size_t n = order.size();
    xm_.resize(n);
    w_.resize(n);
    constexpr index segment = 4096;
    for (std::size_t k = 0; k < n;) {
      const double x = f[order[k]];
      Group g{x, 0, 0};
      std::size_t e = k;
      for (; e < n && f[order[e]] == x; ++e) {
        const index i = order[e];
        const double wi = w ? w[i] : 1.0;
        xm_[e] = x * m[i];
        w_[e] = wi;
        g.weight += wi;
        g.w_log_m += wi * std::log(m[i]);
      }
      total_weight_ += g.weight;
      groups_.push_back(g);
      for (index sb = static_cast<index>(k); sb < static_cast<index>(e); sb += segment)
        segments_.push_back(
            {static_cast<index>(groups_.size()) - 1, sb, std::min(static_cast<index>(e), sb + segment)});
      k = e;
    }
  }

  index size() const noexcept { return static_cast<index>(xm_.size()); }
  double total_weight() const noexcept { return total_weight_; }

  /// Sum of w_i LL_i (note 025 eq. 1a: the density of the observed mean m_x given x) and, when grad
  /// is not null, its derivatives with respect to (p, q, gamma).
  double evaluate(const GammaGammaParams& par, double* grad) const {
    const double p = par.p, q = par.q, v = par.gamma, log_v = std::log(v);
    // Per segment: sum w log(x m + gamma) and sum w / (x m + gamma).
    const index ns = static_cast<index>(segments_.size());
    std::vector<std::array<double, 2>> part(static_cast<std::size_t>(ns));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 2) if (size() > 20000)
#endif
    for (index s = 0; s < ns; ++s) {
      const Segment& sg = segments_[static_cast<std::size_t>(s)];
      part[static_cast<std::size_t>(s)] = segment_sums(sg.begin, sg.end, v);
    }
    std::vector<double> s_log(groups_.size(), 0.0), s_inv(groups_.size(), 0.0);
    for (index s = 0; s < ns; ++s) {
      const auto g = static_cast<std::size_t>(segments_[static_cast<std::size_t>(s)].group);
      s_log[g] += part[static_cast<std::size_t>(s)][0];
      s_inv[g] += part[static_cast<std::size_t>(s)][1];
    }
    const double lg_q = log_gamma(q), ps_q = digamma(q);
    double ll = 0, dp = 0, dq = 0, dv = 0;
    for (std::size_t k = 0; k < groups_.size(); ++k) {
      const Group& g = groups_[k];
      const double x = g.x, px = p * x, W = g.weight, log_x = std::log(x);
      ll += W * (log_gamma(px + q) - log_gamma(px) - lg_q + q * log_v + px * log_x) + (px - 1) * g.w_log_m -
            (px + q) * s_log[k];
      if (grad) {
        const double ps_pxq = digamma(px + q);
        dp += x * (W * (ps_pxq - digamma(px) + log_x) + g.w_log_m - s_log[k]);
        dq += W * (ps_pxq - ps_q + log_v) - s_log[k];
        dv += W * q / v - (px + q) * s_inv[k];
      }
    }
    if (grad) {
      grad[0] = dp;
      grad[1] = dq;
      grad[2] = dv;
    }
    return ll;
  }

 private:
  struct Group {
    double x, weight, w_log_m;
  };
  struct Segment {
    index group, begin, end;
  };

  std::array<double, 2> segment_sums(index begin, index end, double v) const {
    using B = simd::batch<double>;
    constexpr index W = static_cast<index>(simd::width<double>);
    const B vv(v);
    B acc_log(0.0), acc_inv(0.0);
    const double* xm = xm_.data();
    const double* w = w_.data();
    index i = begin;
    for (; i + W <= end; i += W) {
      const B d = B::load_unaligned(xm + i) + vv, wi = B::load_unaligned(w + i);
      acc_log += wi * xsimd::log(d);
      acc_inv += wi / d;
    }
    double s_log = simd::reduce_add(acc_log), s_inv = simd::reduce_add(acc_inv);
    for (; i < end; ++i) {
      const double d = xm[i] + v;
      s_log += w[i] * std::log(d);
      s_inv += w[i] / d;
    }
    return {s_log, s_inv};
  }

  std::vector<double> xm_, w_;
  std::vector<Group> groups_;
  std::vector<Segment> segments_;
  double total_weight_ = 0;
};

}  // namespace detail

/// Sum of the Gamma-Gamma log-likelihoods of the customers with frequency > 0 (those with x = 0
/// carry no spend information and are skipped), and optionally its gradient d/d(p, q, gamma).
inline double gamma_gamma_log_likelihood(const GammaGammaParams& params, const ConstVectorRef<double>& frequency,
                                         const ConstVectorRef<double>& monetary_value,
                                         Eigen::Vector3d* gradient = nullptr) {
  constexpr const char* where = "uvp::gamma_gamma_log_likelihood";
  detail::check_gg_params(where, params);
  detail::check_fm(where, frequency, monetary_value, true);
  const detail::GammaGammaLikelihood lik(frequency, monetary_value, nullptr);
  double g[3];
  const double ll = lik.evaluate(params, gradient ? g : nullptr);
  if (gradient) *gradient << g[0], g[1], g[2];
  return ll;
}

/// Pearson correlation between frequency and monetary value over the customers with frequency > 0
/// (weighted when weights are given); NaN when fewer than two such customers or no spread.
inline double frequency_monetary_correlation(const ConstVectorRef<double>& frequency,
                                             const ConstVectorRef<double>& monetary_value,
                                             const double* weights = nullptr) {
  detail::check_size("uvp::frequency_monetary_correlation", "monetary_value", monetary_value.size(), frequency.size());
  double sw = 0, sx = 0, sm = 0;
  index count = 0;
  for (index i = 0; i < frequency.size(); ++i)
    if (frequency[i] > 0) {
      const double w = weights ? weights[i] : 1.0;
      sw += w, sx += w * frequency[i], sm += w * monetary_value[i], ++count;
    }
  if (count < 2 || !(sw > 0)) return std::numeric_limits<double>::quiet_NaN();
  const double mx = sx / sw, mm = sm / sw;
  double cxx = 0, cmm = 0, cxm = 0;
  for (index i = 0; i < frequency.size(); ++i)
    if (frequency[i] > 0) {
      const double w = weights ? weights[i] : 1.0, dx = frequency[i] - mx, dm = monetary_value[i] - mm;
      cxx += w * dx * dx, cmm += w * dm * dm, cxm += w * dx * dm;
    }
  if (!(cxx > 0) || !(cmm > 0)) return std::numeric_limits<double>::quiet_NaN();
  return cxm / std::sqrt(cxx * cmm);
}

/// The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for
/// Customer Base Analysis", J. Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma
/// Model of Monetary Value", note 025), as lifetimes' GammaGammaFitter.
///
/// Data, one entry per customer: frequency x (repeat purchases) and monetary_value m_x (mean value
/// of the repeat purchases; see summary_from_transactions). Only customers with x > 0 inform the
/// fit; x = 0 must come with m_x = 0, and the fit needs m_x > 0 when x > 0 (predictions accept
/// m_x = 0: repeat purchases that were free).
class GammaGamma {
 public:
  GammaGamma() = default;
  explicit GammaGamma(const GammaGammaParams& params) : params_(params), fitted_(true) {
    detail::check_gg_params("uvp::GammaGamma::GammaGamma", params);
  }

  /// Fits (p, q, gamma) by maximum likelihood over their logs (BFGS, analytic gradient) on the
  /// customers with frequency > 0. The result's `warnings` hold the frequency / spend correlation
  /// note (see GammaGammaFitOptions::correlation_warning) and a note when q <= 1 (no finite
  /// population mean).
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& monetary_value,
                   const GammaGammaFitOptions& options = {}) {
    return fit_impl(frequency, monetary_value, nullptr, 0, options);
  }
  ClvFitResult fit(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& monetary_value,
                   const ConstVectorRef<double>& weights, const GammaGammaFitOptions& options = {}) {
    return fit_impl(frequency, monetary_value, weights.data(), weights.size(), options);
  }
  ClvFitResult fit(const CustomerSummary& summary, const GammaGammaFitOptions& options = {}) {
    return fit(summary.frequency, summary.monetary_value, options);
  }

  bool is_fitted() const noexcept { return fitted_; }
  const GammaGammaParams& params() const {
    require_fitted("params");
    return params_;
  }

  double log_likelihood(const ConstVectorRef<double>& frequency, const ConstVectorRef<double>& monetary_value) const {
    require_fitted("log_likelihood");
    return gamma_gamma_log_likelihood(params_, frequency, monetary_value);
  }

  /// Population mean spend per transaction, p * gamma / (q - 1); throws uvp::numeric_error when q <= 1.
  double expected_average_value() const {
    require_fitted("expected_average_value");
    if (!(params_.q > 1))
      detail::raise<numeric_error>("uvp::GammaGamma::expected_average_value: q = ", params_.q,
                                   " <= 1, so the population mean spend is infinite");
    return params_.p * params_.gamma / (params_.q - 1);
  }

  /// E[M | x, m_x] = p (gamma + x m_x) / (p x + q - 1) (note 025 eq. 5): a weighted average of the
  /// population mean and the customer's own mean; the population mean for x = 0. Throws
  /// uvp::numeric_error when p x + q <= 1.
  double conditional_expected_average_value(double frequency, double monetary_value) const {
    require_fitted("conditional_expected_average_value");
    constexpr const char* where = "uvp::GammaGamma::conditional_expected_average_value";
    Eigen::Matrix<double, 1, 1> f, m;
    f << frequency;
    m << monetary_value;
    detail::check_fm(where, f, m, false);
    return value(where, frequency, monetary_value);
  }
  Vector<double> conditional_expected_average_value(const ConstVectorRef<double>& frequency,
                                                    const ConstVectorRef<double>& monetary_value) const {
    require_fitted("conditional_expected_average_value");
    constexpr const char* where = "uvp::GammaGamma::conditional_expected_average_value";
    detail::check_fm(where, frequency, monetary_value, false);
    Vector<double> out(frequency.size());
    for (index i = 0; i < frequency.size(); ++i) out[i] = value(where, frequency[i], monetary_value[i]);
    return out;
  }

 private:
  void require_fitted(const char* what) const {
    if (!fitted_)
      detail::raise<not_fitted_error>("uvp::GammaGamma::", what, ": the model is not fitted (call fit() first)");
  }
  double value(const char* where, double x, double m) const {
    const double den = params_.p * x + params_.q - 1;
    if (!(den > 0))
      detail::raise<numeric_error>(where, ": p * frequency + q - 1 = ", den, " <= 0 (q = ", params_.q,
                                   "): the expected spend is infinite");
    return params_.p * (params_.gamma + x * m) / den;
  }

  ClvFitResult fit_impl(const ConstVectorRef<double>& f, const ConstVectorRef<double>& m, const double* w, index w_size,
                        const GammaGammaFitOptions& opt) {
    constexpr const char* where = "uvp::GammaGamma::fit";
    if (!std::isfinite(opt.penalizer) || opt.penalizer < 0)
      detail::raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", opt.penalizer);
    detail::check_positive(where, "max_iterations", opt.max_iterations);
    detail::check_positive(where, "gradient_tolerance", opt.gradient_tolerance);
    detail::check_fm(where, f, m, true, w, w_size);
    const detail::GammaGammaLikelihood lik(f, m, w);
    if (lik.size() == 0)
      detail::raise<invalid_argument>(where, ": no customer has frequency > 0 (the model is fitted on repeat buyers)");
    const double W = lik.total_weight();
    if (!(W > 0)) detail::raise<invalid_argument>(where, ": the weights of the repeat buyers sum to 0");
    double spend = 0;
    for (index i = 0; i < f.size(); ++i)
      if (f[i] > 0) spend += (w ? w[i] : 1.0) * m[i];
    return fit_likelihood(lik, lik.size(), spend / W, frequency_monetary_correlation(f, m, w), opt);
  }

 public:
  /// The optimisation half of fit(), over any likelihood object with `double evaluate(const
  /// GammaGammaParams&, double* grad) const` (sum of w_i LL_i and its gradient d/d(p, q, gamma), as
  /// detail::GammaGammaLikelihood) and `double total_weight() const`. For fits whose sums are formed
  /// elsewhere - uvp/mpi/clv.hpp reduces them across ranks -; options and data are assumed checked.
  /// `customers`: the repeat buyers over all the data; `mean_spend`: their weighted mean
  /// monetary value (the default start's gamma); `correlation`: frequency_monetary_correlation over
  /// all the data (NaN: none). Every call of evaluate depends only on the values it returned before.
  template <class Likelihood>
  ClvFitResult fit_likelihood(const Likelihood& lik, index customers, double mean_spend, double correlation,
                              const GammaGammaFitOptions& opt) {
    constexpr const char* where = "uvp::GammaGamma::fit";
    const double W = lik.total_weight();
    GammaGammaParams start{1, 2, mean_spend};
    if (opt.initial) {
      detail::check_gg_params(where, *opt.initial);
      start = *opt.initial;
    }
    const double lambda = opt.penalizer;
    auto objective = [&](const Eigen::VectorXd& th, Eigen::VectorXd& g) {
      const GammaGammaParams p{std::exp(th[0]), std::exp(th[1]), std::exp(th[2])};
      const double pv[3] = {p.p, p.q, p.gamma};
      for (double v : pv)
        if (!(v > 0) || !std::isfinite(v)) return std::numeric_limits<double>::infinity();
      double grad[3];
      const double ll = lik.evaluate(p, grad);
      double f_val = -ll / W;
      for (int i = 0; i < 3; ++i) {
        f_val += lambda * pv[i] * pv[i];
        g[i] = pv[i] * (-grad[i] / W + 2 * lambda * pv[i]);
      }
      return std::isfinite(f_val) ? f_val : std::numeric_limits<double>::infinity();
    };
    Eigen::VectorXd th0(3);
    th0 << std::log(start.p), std::log(start.q), std::log(start.gamma);
    detail::BfgsOptions bo;
    bo.max_iterations = opt.max_iterations;
    bo.gradient_tolerance = opt.gradient_tolerance;
    const detail::BfgsResult res = detail::bfgs_minimize(objective, th0, bo);
    ClvFitResult out;
    out.converged = res.converged;
    out.iterations = res.iterations;
    out.evaluations = res.evaluations;
    out.customers = customers;
    out.message = res.message;
    const double rho = correlation;
    if (std::isfinite(rho) && std::abs(rho) >= opt.correlation_warning) {
      char buf[192];
      std::snprintf(buf, sizeof buf, "(Pearson r = %.3f over %lld customers with repeat purchases, threshold %g)", rho,
                    static_cast<long long>(customers), opt.correlation_warning);
      out.warnings.push_back(std::string("uvp::GammaGamma::fit: frequency and monetary_value are correlated ") + buf +
                             "; the Gamma-Gamma model assumes a customer's spend per transaction is independent of "
                             "how often they buy, so its spend estimates may be biased");
    }
    if (!std::isfinite(res.f)) {
      out.message = "the log-likelihood is not finite at the starting point";
      out.warnings.push_back("uvp::GammaGamma::fit: " + out.message + "; the model was not changed");
      return out;
    }
    params_ = {std::exp(res.x[0]), std::exp(res.x[1]), std::exp(res.x[2])};
    fitted_ = true;
    out.objective = res.f;
    out.log_likelihood = lik.evaluate(params_, nullptr);
    // Standard errors of the unpenalised likelihood at the (possibly penalised) estimate.
    detail::fill_standard_errors(
        out, {"p", "q", "gamma"}, {params_.p, params_.q, params_.gamma},
        [&lik](const double* th, double* g) {
          lik.evaluate({th[0], th[1], th[2]}, g);
          for (int i = 0; i < 3; ++i) g[i] = -g[i];
        },
        where);
    if (!res.converged)
      out.warnings.push_back("uvp::GammaGamma::fit: the optimizer did not converge (" + res.message + ")");
    if (!(params_.q > 1))
      out.warnings.push_back(detail::str("uvp::GammaGamma::fit: q = ", params_.q,
                                         " <= 1: the population mean spend p*gamma/(q-1) is infinite; "
                                         "conditional expectations need p*x + q > 1"));
    return out;
  }

 private:
  GammaGammaParams params_{};
  bool fitted_ = false;
};

}  // namespace uvp
