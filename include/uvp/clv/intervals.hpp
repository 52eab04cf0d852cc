// SPDX-License-Identifier: Apache-2.0
// Per-customer and aggregate intervals for CLV predictions, from draws of the fitted parameters.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

/// Options of the interval functions below.
struct IntervalOptions {
  double level = 0.9;       ///< probability of the central interval, in (0, 1)
  int draws = 1000;         ///< parameter draws, >= 2
  std::uint64_t seed = 42;  ///< the draws depend on this seed only (not on the thread count)
};

/// Intervals from parameter draws. Per customer: the prediction at the estimate, and the mean and
/// the (1 - level)/2 and (1 + level)/2 quantiles over the draws (linear interpolation between order
/// statistics, numpy's default). Aggregate: the same for the sum over customers (the sum is taken
/// within each draw, so customers' shared parameter uncertainty adds up, it does not average out).
struct PredictionIntervals {
  Vector<double> estimate, mean, lower, upper;
  double aggregate_estimate = 0, aggregate_mean = 0, aggregate_lower = 0, aggregate_upper = 0;
  double level = 0;
  int draws = 0;
};

namespace detail {

/// Quantile q of sorted[0..n) (numpy's "linear" method).
inline double sorted_quantile(const double* sorted, int n, double q) noexcept {
  const double h = (n - 1) * q;
  const int lo = static_cast<int>(std::floor(h));
  const int hi = std::min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

inline void check_interval_options(const char* where, const IntervalOptions& o) {
  if (!(o.level > 0 && o.level < 1))
    raise<invalid_argument>(where, ": level must be in (0, 1), got ", o.level);
  if (o.draws < 2) raise<invalid_argument>(where, ": draws must be >= 2, got ", o.draws);
}

/// Parameter draws (natural scale), draws x k row-major, from the asymptotic normal of the
/// log-parameters of independent fits: u ~ N(log theta_hat, blockdiag(J^-1 Cov J^-1)), theta = exp(u)
/// (positive by construction, and closer to normal than theta for these likelihoods). Serial and
/// seeded: the same seed gives the same bits.
inline std::vector<double> draw_parameters(const char* where, const std::vector<const ClvFitResult*>& fits,
                                           const std::vector<std::string>& fit_names, const IntervalOptions& opt,
                                           std::vector<double>& estimate) {
  estimate.clear();
  std::size_t k = 0;
  for (std::size_t f = 0; f < fits.size(); ++f) {
    const ClvFitResult& r = *fits[f];
    const std::size_t kf = r.parameters.size();
    if (kf == 0 || r.covariance.size() != kf * kf)
      raise<invalid_argument>(where, ": ", fit_names[f],
                              " has no covariance (a fit whose standard errors are not available: see its warnings)");
    for (double v : r.parameters)
      if (!(v > 0) || !std::isfinite(v))
        raise<invalid_argument>(where, ": ", fit_names[f], " has a parameter ", v, " that is not finite and > 0");
    k += kf;
  }
  const Eigen::Index K = static_cast<Eigen::Index>(k);
  Eigen::MatrixXd L = Eigen::MatrixXd::Zero(K, K);
  Eigen::VectorXd mu(K);
  Eigen::Index off = 0;
  for (std::size_t f = 0; f < fits.size(); ++f) {
    const ClvFitResult& r = *fits[f];
    const Eigen::Index kf = static_cast<Eigen::Index>(r.parameters.size());
    Eigen::MatrixXd c(kf, kf);
    for (Eigen::Index i = 0; i < kf; ++i) {
      const double ti = r.parameters[static_cast<std::size_t>(i)];
      mu[off + i] = std::log(ti);
      estimate.push_back(ti);
      for (Eigen::Index j = 0; j < kf; ++j)
        c(i, j) = r.covariance[static_cast<std::size_t>(i * kf + j)] / (ti * r.parameters[static_cast<std::size_t>(j)]);
    }
    const Eigen::LLT<Eigen::MatrixXd> llt(c);
    if (llt.info() != Eigen::Success || !c.allFinite())
      raise<invalid_argument>(where, ": the covariance of ", fit_names[f], " is not positive definite");
    L.block(off, off, kf, kf) = llt.matrixL();
    off += kf;
  }
  Rng rng(opt.seed);
  std::vector<double> out(static_cast<std::size_t>(opt.draws) * k);
  Eigen::VectorXd z(K);
  for (int d = 0; d < opt.draws; ++d) {
    for (Eigen::Index i = 0; i < K; ++i) z[i] = rng.normal();
    const Eigen::VectorXd u = mu + L * z;
    double* row = out.data() + static_cast<std::size_t>(d) * k;
    for (Eigen::Index i = 0; i < K; ++i) row[i] = std::exp(u[i]);
  }
  return out;
}

/// parameter_draw_intervals with the caller's name in messages and names for the fits.
template <class Predict>
PredictionIntervals parameter_draw_intervals_impl(const char* where, const std::vector<const ClvFitResult*>& fits,
                                                  const std::vector<std::string>& fit_names, index customers,
                                                  Predict& predict, const IntervalOptions& options) {
  detail::check_interval_options(where, options);
  if (customers < 1) detail::raise<invalid_argument>(where, ": customers must be >= 1, got ", customers);
  std::vector<double> estimate;
  const std::vector<double> theta = detail::draw_parameters(where, fits, fit_names, options, estimate);
  const std::size_t k = estimate.size();
  const int D = options.draws;
  const double qlo = (1 - options.level) / 2, qhi = (1 + options.level) / 2;

  PredictionIntervals out;
  out.level = options.level;
  out.draws = D;
  out.estimate.resize(customers);
  out.mean.resize(customers);
  out.lower.resize(customers);
  out.upper.resize(customers);
  predict(static_cast<const double*>(estimate.data()), index{0}, customers, out.estimate.data());
  for (index i = 0; i < customers; ++i)
    if (!std::isfinite(out.estimate[i]))
      detail::raise<numeric_error>(where, ": the prediction of customer ", i, " at the estimate is not finite (",
                                   out.estimate[i], ")");

  constexpr index block = 1024;
  std::vector<double> pred(static_cast<std::size_t>(std::min(customers, block)) * static_cast<std::size_t>(D));
  std::vector<double> aggregate(static_cast<std::size_t>(D), 0.0);
  for (index b0 = 0; b0 < customers; b0 += block) {
    const index nb = std::min(block, customers - b0);
    // pred[d * nb + i]: draw d, customer b0 + i
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int d = 0; d < D; ++d)
      predict(theta.data() + static_cast<std::size_t>(d) * k, b0, b0 + nb,
              pred.data() + static_cast<std::size_t>(d) * static_cast<std::size_t>(nb));
    for (int d = 0; d < D; ++d) {
      const double* p = pred.data() + static_cast<std::size_t>(d) * static_cast<std::size_t>(nb);
      double s = 0;
      for (index i = 0; i < nb; ++i) {
        if (!std::isfinite(p[i]))
          detail::raise<numeric_error>(where, ": draw ", d, " gives a non-finite prediction (", p[i],
                                       ") for customer ", b0 + i);
        s += p[i];
      }
      aggregate[static_cast<std::size_t>(d)] += s;
    }
#if defined(_OPENMP)
#pragma omp parallel if (nb > 64)
#endif
    {
      std::vector<double> v(static_cast<std::size_t>(D));
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
      for (index i = 0; i < nb; ++i) {
        double s = 0;
        for (int d = 0; d < D; ++d) {
          v[static_cast<std::size_t>(d)] = pred[static_cast<std::size_t>(d) * static_cast<std::size_t>(nb) +
                                                static_cast<std::size_t>(i)];
          s += v[static_cast<std::size_t>(d)];
        }
        std::sort(v.begin(), v.end());
        out.mean[b0 + i] = s / D;
        out.lower[b0 + i] = detail::sorted_quantile(v.data(), D, qlo);
        out.upper[b0 + i] = detail::sorted_quantile(v.data(), D, qhi);
      }
    }
  }
  out.aggregate_estimate = out.estimate.sum();
  double s = 0;
  for (double a : aggregate) s += a;
  out.aggregate_mean = s / D;
  std::sort(aggregate.begin(), aggregate.end());
  out.aggregate_lower = detail::sorted_quantile(aggregate.data(), D, qlo);
  out.aggregate_upper = detail::sorted_quantile(aggregate.data(), D, qhi);
  return out;
}

}  // namespace detail

/// Intervals for any model's per-customer predictions, from `options.draws` draws of the
/// parameters of `fits` out of the asymptotic normal of their log-parameters (the covariance each
/// fit reports: ClvFitResult::covariance; several fits, e.g. BG/NBD and Gamma-Gamma, are taken as
/// independent). This is a posterior-like draw from the estimate's sampling distribution, not a
/// bootstrap: it carries parameter uncertainty, not the Poisson noise of future purchases.
///
/// predict(const double* theta, index begin, index end, double* out) writes the predictions of
/// customers [begin, end) for the parameter vector theta (the fits' parameters concatenated, in
/// the order of `fits` and of each fit's parameter_names); it is called concurrently from several
/// threads (OpenMP over draws), so it must not throw nor write shared state (a non-finite output
/// is reported after the parallel loop). Customers are processed in blocks of 1024 (memory: 1024 x
/// draws doubles per block); every sum and quantile is formed in a fixed order, so the result is
/// bit-identical for any thread count.
///
/// Throws uvp::invalid_argument for a level outside (0, 1), draws < 2, customers < 1, or a fit
/// result without covariance; uvp::numeric_error when a draw gives a non-finite prediction.
template <class Predict>
PredictionIntervals parameter_draw_intervals(const std::vector<const ClvFitResult*>& fits, index customers,
                                             Predict&& predict, const IntervalOptions& options = {}) {
  constexpr const char* where = "uvp::parameter_draw_intervals";
  if (fits.empty()) detail::raise<invalid_argument>(where, ": fits is empty", "");
  std::vector<std::string> names;
  for (std::size_t f = 0; f < fits.size(); ++f) {
    if (!fits[f]) detail::raise<invalid_argument>(where, ": fits[", f, "] is null");
    names.push_back("fits[" + std::to_string(f) + "]");
  }
  return detail::parameter_draw_intervals_impl(where, fits, names, customers, predict, options);
}

/// One fit's flavour of parameter_draw_intervals.
template <class Predict>
PredictionIntervals parameter_draw_intervals(const ClvFitResult& fit, index customers, Predict&& predict,
                                             const IntervalOptions& options = {}) {
  return parameter_draw_intervals(std::vector<const ClvFitResult*>{&fit}, customers, std::forward<Predict>(predict),
                                  options);
}

/// Intervals for E[Y(t) | x, t_x, T], the BG/NBD expected purchases in the next t time units (of
/// recency and T), of every customer and of their sum. `fit` is what BgNbd::fit returned (its
/// parameters and covariance; r, alpha, a, b). Data are checked as in BgNbd::fit.
inline PredictionIntervals bgnbd_expected_purchases_intervals(const ClvFitResult& fit, double t,
                                                              const ConstVectorRef<double>& frequency,
                                                              const ConstVectorRef<double>& recency,
                                                              const ConstVectorRef<double>& T,
                                                              const IntervalOptions& options = {}) {
  constexpr const char* where = "uvp::bgnbd_expected_purchases_intervals";
  if (!std::isfinite(t) || t < 0) detail::raise<invalid_argument>(where, ": t must be finite and >= 0, got ", t);
  detail::check_rft(where, frequency, recency, T);
  if (fit.parameters.size() != 4)
    detail::raise<invalid_argument>(where, ": fit has ", fit.parameters.size(),
                                    " parameters, expected the 4 of a BG/NBD fit");
  auto predict = [&](const double* th, index begin, index end, double* out) {
    const BgNbdParams p{th[0], th[1], th[2], th[3]};
    for (index i = begin; i < end; ++i)
      detail::bgnbd_conditional_expected(p, &t, 1, frequency[i], recency[i], T[i], out + (i - begin));
  };
  return detail::parameter_draw_intervals_impl(where, {&fit}, {"fit"}, frequency.size(), predict, options);
}

/// Intervals for the discounted CLV of customer_lifetime_value (BG/NBD purchases x Gamma-Gamma
/// spend, lifetimes' monthly discounted sum; see ClvOptions for the horizon and the time unit),
/// drawing the BG/NBD and Gamma-Gamma parameters independently from their fits' covariances.
/// Throws uvp::numeric_error when a draw gives p x + q <= 1 for some customer (infinite spend).
inline PredictionIntervals clv_intervals(const ClvFitResult& purchases_fit, const ClvFitResult& spend_fit,
                                         const ConstVectorRef<double>& frequency,
                                         const ConstVectorRef<double>& recency, const ConstVectorRef<double>& T,
                                         const ConstVectorRef<double>& monetary_value,
                                         const ClvOptions& clv = {}, const IntervalOptions& options = {}) {
  constexpr const char* where = "uvp::clv_intervals";
  detail::check_clv_options(where, clv);
  detail::check_rft(where, frequency, recency, T);
  detail::check_fm(where, frequency, monetary_value, false);
  if (purchases_fit.parameters.size() != 4)
    detail::raise<invalid_argument>(where, ": purchases_fit has ", purchases_fit.parameters.size(),
                                    " parameters, expected the 4 of a BG/NBD fit");
  if (spend_fit.parameters.size() != 3)
    detail::raise<invalid_argument>(where, ": spend_fit has ", spend_fit.parameters.size(),
                                    " parameters, expected the 3 of a Gamma-Gamma fit");
  const detail::MonthlyDiscounting schedule(clv);
  auto predict = [&](const double* th, index begin, index end, double* out) {
    const BgNbdParams p{th[0], th[1], th[2], th[3]};
    const double gp = th[4], gq = th[5], gv = th[6];
    std::vector<double> cum(schedule.t.size());
    for (index i = begin; i < end; ++i) {
      const double x = frequency[i];
      const double spend = gp * (gv + x * monetary_value[i]) / (gp * x + gq - 1);
      out[i - begin] = (gp * x + gq - 1 > 0 ? spend : std::numeric_limits<double>::infinity()) *
                       detail::bgnbd_monthly_discounted_one(p, schedule, x, recency[i], T[i], cum.data());
    }
  };
  return detail::parameter_draw_intervals_impl(where, {&purchases_fit, &spend_fit}, {"purchases_fit", "spend_fit"},
                                               frequency.size(), predict, options);
}

}  // namespace uvp
