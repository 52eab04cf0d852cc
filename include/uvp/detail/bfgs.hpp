// SPDX-License-Identifier: Apache-2.0
// A small dense BFGS minimizer with a strong-Wolfe line search, for few-parameter likelihood fits.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace uvp::detail {

/// Options of bfgs_minimize (defaults suit smooth objectives of a few to a few dozen unknowns).
struct BfgsOptions {
  int max_iterations = 500;
  /// Converged when max_i |g_i| <= gradient_tolerance * max(1, |f|).
  double gradient_tolerance = 1e-10;
  /// Armijo (sufficient decrease) and curvature constants of the strong Wolfe conditions.
  double c1 = 1e-4;
  double c2 = 0.9;
  int max_line_search = 30;
  /// Largest step, in the max-norm of x: keeps a first step on log-parameters from leaving the
  /// region where the objective is finite.
  double max_step = 5;
};

struct BfgsResult {
  Eigen::VectorXd x;
  Eigen::VectorXd gradient;
  double f = std::numeric_limits<double>::quiet_NaN();
  int iterations = 0;
  int evaluations = 0;
  bool converged = false;
  std::string message;
};

namespace bfgs_internal {

// Minimiser of the cubic interpolating f and f' at a and b, clamped into the inner 80% of [a, b]
// (bisection when the cubic has no real minimiser or a value is not finite).
inline double interpolate(double a, double fa, double da, double b, double fb, double db) {
  const double lo = std::min(a, b), hi = std::max(a, b), width = hi - lo;
  double t = 0.5 * (a + b);
  if (std::isfinite(fa) && std::isfinite(fb) && std::isfinite(da) && std::isfinite(db)) {
    const double d1 = da + db - 3 * (fa - fb) / (a - b);
    const double disc = d1 * d1 - da * db;
    if (disc >= 0) {
      const double d2 = std::copysign(std::sqrt(disc), b - a);
      const double denom = db - da + 2 * d2;
      if (denom != 0) t = b - (b - a) * (db + d2 - d1) / denom;
    }
  }
  if (!std::isfinite(t)) t = 0.5 * (a + b);
  return std::clamp(t, lo + 0.1 * width, hi - 0.1 * width);
}

}  // namespace bfgs_internal

/// Minimises f over R^n by BFGS on the inverse Hessian (Nocedal & Wright, Numerical Optimization,
/// 2nd ed., Alg. 6.1) with the strong-Wolfe line search of their Alg. 3.5/3.6 (cubic
/// interpolation). `fg(x, g)` returns f(x) and writes the gradient into g (sized n); it may return
/// a non-finite value for x outside the domain, which the line search treats as "too far". The
/// inverse Hessian starts as (s'y / y'y) I after the first step (N&W eq. 6.20); an update with
/// s'y <= 0 is skipped, and a direction that is not downhill restarts from steepest descent.
/// Never throws for a difficult objective: the result says whether it converged and why it stopped.
template <class F>
BfgsResult bfgs_minimize(F&& fg, Eigen::VectorXd x, const BfgsOptions& opt = {}) {
  using Eigen::VectorXd;
  const Eigen::Index n = x.size();
  BfgsResult res;
  VectorXd g(n), g_new(n), x_new(n), p(n), s(n), y(n);
  double f = fg(x, g);
  res.evaluations = 1;
  if (!std::isfinite(f) || !g.allFinite()) {
    res.x = x;
    res.gradient = g;
    res.f = f;
    res.message = "the objective or its gradient is not finite at the starting point";
    return res;
  }
  Eigen::MatrixXd H = Eigen::MatrixXd::Identity(n, n);
  bool fresh = true;  // H is (a multiple of) the identity
  auto small_gradient = [&](double fv, const VectorXd& gv) {
    return gv.cwiseAbs().maxCoeff() <= opt.gradient_tolerance * std::max(1.0, std::abs(fv));
  };
  for (int it = 0;; ++it) {
    res.iterations = it;
    if (small_gradient(f, g)) {
      res.converged = true;
      res.message = "gradient below tolerance";
      break;
    }
    if (it >= opt.max_iterations) {
      res.message = "reached max_iterations";
      break;
    }
    p = -H * g;
    double dphi0 = g.dot(p);
    if (!(dphi0 < 0)) {  // not a descent direction: restart from steepest descent
      H.setIdentity();
      fresh = true;
      p = -g;
      dphi0 = g.dot(p);
    }
    const double pmax = p.cwiseAbs().maxCoeff();
    double a_max = pmax > 0 ? opt.max_step / pmax : 1.0;
    double a = std::min(1.0, a_max);
    if (it == 0 && fresh) a = std::min(a, 1.0 / std::max(1.0, g.norm()));

    // Strong-Wolfe line search on phi(a) = f(x + a p).
    double a_prev = 0, f_prev = f, d_prev = dphi0;
    double a_lo = 0, f_lo = f, d_lo = dphi0, a_hi = 0, f_hi = 0, d_hi = 0;
    bool found = false, zoom = false;
    int flat_trials = 0;
    double f_acc = f, a_acc = 0;
    VectorXd g_acc = g;
    auto eval = [&](double step, double& fv, double& dv) {
      x_new = x + step * p;
      fv = fg(x_new, g_new);
      ++res.evaluations;
      if (!g_new.allFinite()) fv = std::numeric_limits<double>::infinity();
      dv = std::isfinite(fv) ? g_new.dot(p) : std::numeric_limits<double>::quiet_NaN();
    };
    for (int ls = 0; ls < opt.max_line_search && !found; ++ls) {
      double fa, da;
      if (!zoom) {
        eval(a, fa, da);
        if (!std::isfinite(fa) || fa > f + opt.c1 * a * dphi0 || (ls > 0 && fa >= f_prev)) {
          a_lo = a_prev, f_lo = f_prev, d_lo = d_prev;
          a_hi = a, f_hi = fa, d_hi = da;
          zoom = true;
          continue;
        }
        if (std::abs(da) <= -opt.c2 * dphi0) {
          found = true, f_acc = fa, a_acc = a, g_acc = g_new;
          break;
        }
        if (da >= 0) {
          a_lo = a, f_lo = fa, d_lo = da;
          a_hi = a_prev, f_hi = f_prev, d_hi = d_prev;
          f_acc = fa, a_acc = a, g_acc = g_new;
          zoom = true;
          continue;
        }
        f_acc = fa, a_acc = a, g_acc = g_new;  // an acceptable (decreasing) fallback
        a_prev = a, f_prev = fa, d_prev = da;
        if (a >= a_max) {  // cannot go further: take the capped step
          found = true;
          break;
        }
        a = std::min(2 * a, a_max);
      } else {
        if (std::abs(a_hi - a_lo) <= 1e-16 * std::max(1.0, std::abs(a_lo))) break;
        const double aj = bfgs_internal::interpolate(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi);
        eval(aj, fa, da);
        // Trial values equal to f up to rounding, three times: f is flat at double precision
        // along p (the gradient is at the noise floor of f), and further zooming cannot help.
        if (std::abs(fa - f) <= 4 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(f)) &&
            ++flat_trials >= 3)
          break;
        if (!std::isfinite(fa) || fa > f + opt.c1 * aj * dphi0 || fa >= f_lo) {
          a_hi = aj, f_hi = fa, d_hi = da;
        } else {
          f_acc = fa, a_acc = aj, g_acc = g_new;
          if (std::abs(da) <= -opt.c2 * dphi0) {
            found = true;
            break;
          }
          if (da * (a_hi - a_lo) >= 0) a_hi = a_lo, f_hi = f_lo, d_hi = d_lo;
          a_lo = aj, f_lo = fa, d_lo = da;
        }
      }
    }
    if (!found && !(a_acc > 0 && f_acc < f)) {
      // No decrease along p. Near the optimum this is rounding (f is flat at double precision):
      // accept when the gradient is within 1000x the tolerance. Farther out a stale Hessian can
      // give a poor direction: retry once from steepest descent.
      const bool near = g.cwiseAbs().maxCoeff() <= 1e3 * opt.gradient_tolerance * std::max(1.0, std::abs(f));
      if (!fresh && !near) {
        H.setIdentity();
        fresh = true;
        continue;
      }
      res.message = "line search found no decrease (the objective is flat at double precision)";
      res.converged = near;
      break;
    }
    s = a_acc * p;
    x += s;
    y = g_acc - g;
    f = f_acc;
    g = g_acc;
    const double sy = s.dot(y);
    if (sy > 1e-12 * s.norm() * y.norm()) {
      if (fresh) {
        H *= sy / y.squaredNorm();
        fresh = false;
      }
      const double rho = 1 / sy;
      const VectorXd Hy = H * y;
      const double yHy = y.dot(Hy);
      // H <- (I - rho s y') H (I - rho y s') + rho s s', expanded.
      H += (rho * rho * yHy + rho) * (s * s.transpose()) - rho * (Hy * s.transpose() + s * Hy.transpose());
    }
  }
  res.x = std::move(x);
  res.gradient = std::move(g);
  res.f = f;
  return res;
}

}  // namespace uvp::detail
