// SPDX-License-Identifier: Apache-2.0
// The Gauss (2F1) and confluent (Tricomi U) hypergeometric functions the Pareto/NBD model needs.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "uvp/clv/special_functions.hpp"
#include "uvp/core/error.hpp"

namespace uvp {

namespace detail {

/// ln H and its partial derivatives, H = 2F1(1, Q; Q + P; z).
struct LogHyp2f1Result {
  double value = 0;  ///< ln H
  double dQ = 0;     ///< d ln H / dQ (P and z fixed)
  double dP = 0;     ///< d ln H / dP (Q and z fixed)
  double dz = 0;     ///< d ln H / dz
};

/// ln 2F1(1, Q; Q+P; z) and its derivatives from the integral (Q + P > 1, 0 <= z < 1)
///   H = (Q+P-1) int_0^inf exp(psi(y)) dy,   psi(y) = (1-P) y - Q ln(1 + w (e^y - 1)),   w = 1 - z
/// (the Pareto/NBD's int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du with m + u = (m + t) e^y). psi is
/// concave, so the integrand is unimodal with tails that decay at least exponentially: composite
/// 16-point Gauss-Legendre on panels no wider than 1, than 1/|psi'| and than 1/sqrt(|psi''|), walked
/// outwards from the mode until the integrand is below e^-42 of its peak. The derivatives are the
/// integrals of -y, -ln(1 + w (e^y - 1)) and Q (e^y - 1) / (1 + w (e^y - 1)) against the same weight.
/// Used for z near 1 with large Q (beta >> alpha in the Pareto/NBD, shapes s of 10^4 and more),
/// where the series needs 10^5+ terms (a continued fraction, tried first, needed as many and lost
/// digits there).
inline LogHyp2f1Result log_hyp2f1_1qc_quadrature(double Q, double P, double z) noexcept {
  static constexpr double gx[8] = {0.0950125098376374402, 0.281603550779258913, 0.458016777657227386,
                                   0.617876244402643748, 0.755404408355003034, 0.865631202387831744,
                                   0.944575023073232576, 0.989400934991649933};
  static constexpr double gw[8] = {0.189450610455068496, 0.182603415044923589, 0.169156519395002538,
                                   0.149595988816576732, 0.124628971255533872, 0.095158511682492785,
                                   0.062253523938647893, 0.027152459411754095};
  const double w = 1 - z, c1 = 1 - P;
  auto L = [&](double y) { return std::log1p(w * std::expm1(y)); };
  auto psi = [&](double y) { return c1 * y - Q * L(y); };
  auto dpsi = [&](double y) {
    const double e = std::exp(y);
    return c1 - Q * w * e / (1 + w * (e - 1));
  };
  auto d2psi = [&](double y) {
    const double e = std::exp(y), den = 1 + w * (e - 1);
    return -Q * w * (1 - w) * e / (den * den);
  };
  // The mode: y = 0 when psi'(0) <= 0, else the root of the decreasing psi' (bisection).
  double mode = 0;
  if (dpsi(0) > 0) {
    double lo = 0, hi = 1;
    while (dpsi(hi) > 0 && hi < 1e4) hi *= 2;
    for (int it = 0; it < 200 && hi - lo > 1e-12 * std::max(1.0, hi); ++it) {
      const double mid = 0.5 * (lo + hi);
      (dpsi(mid) > 0 ? lo : hi) = mid;
    }
    mode = 0.5 * (lo + hi);
  }
  const double peak = psi(mode);
  double S = 0, SQ = 0, SP = 0, Sz = 0;
  auto width = [&](double y) {
    const double a1 = std::abs(dpsi(y)), a2 = std::sqrt(std::abs(d2psi(y)));
    return 1 / std::max({1.0, a1, a2});
  };
  auto panel = [&](double y0, double y1) {  // adds the panel's integrals; returns its largest log-integrand
    const double half = 0.5 * (y1 - y0), mid = 0.5 * (y0 + y1);
    double top = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < 16; ++k) {
      const double y = mid + (k < 8 ? -gx[k] : gx[k - 8]) * half, wk = gw[k < 8 ? k : k - 8] * half;
      const double l = L(y), p = c1 * y - Q * l - peak;
      top = std::max(top, p);
      const double f = wk * std::exp(p);
      const double em1 = std::expm1(y);
      S += f;
      SQ -= f * l;
      SP -= f * y;
      Sz += f * Q * em1 / (1 + w * em1);
    }
    return top;
  };
  constexpr double cut = -42;
  for (double y = mode; y < 1e6;) {  // rightwards
    const double y1 = y + width(y);
    if (panel(y, y1) < cut) break;
    y = y1;
  }
  for (double y = mode; y > 0;) {  // leftwards, down to 0
    const double y0 = std::max(0.0, y - width(y));
    if (panel(y0, y) < cut) break;
    y = y0;
  }
  LogHyp2f1Result out;
  const double C1 = Q + P - 1;
  out.value = std::log(C1) + peak + std::log(S);
  out.dQ = 1 / C1 + SQ / S;
  out.dP = 1 / C1 + SP / S;
  out.dz = Sz / S;
  return out;
}

/// ln 2F1(1, Q; Q + P; z) for Q > 0, P > 0, Q + P > 1, 0 <= z < 1, with its derivatives in Q, P and z.
///
/// This is the one Gauss hypergeometric function in the Pareto/NBD likelihood, after Euler's
/// transformation of Fader & Hardie's 2F1(r+s+x, s+1; r+s+x+1; z) (see log_hyp2f1). Every term of
///   H = sum_n (Q)_n / (Q+P)_n z^n
/// is positive and the ratio of consecutive terms, (Q+n)/(Q+P+n) z, is below z, so 1 <= H <= 1/(1-z):
/// nothing overflows however large Q and P are (frequent buyers, large beta). For z <= 0.7 the
/// series is summed, with each term's logarithmic derivative carried along (d/dQ of term n is
/// term n times sum_{k<n} 1/(Q+k) - 1/(Q+P+k)); the tail after a term t is below t z/(1-z), the
/// stopping rule. When z > 0.7 and the series would need more than ~4000 terms (1 - z small and
/// P not >> Q), the integral of detail::log_hyp2f1_1qc_quadrature is used instead (about 1000
/// exp/log evaluations whatever z, Q and P: beta = 1e8 with s = 1e5 costs the same as CDNOW).
inline LogHyp2f1Result log_hyp2f1_1qc(double Q, double P, double z) noexcept {
  LogHyp2f1Result out;
  const double C = Q + P;
  constexpr double eps = 1e-16;  // tail / sum below this: the rounding of the sum itself
  constexpr long max_steps = 1000000;
  if (z == 0) return {0, 0, 0, Q / C};  // d/dz at 0: the first term's coefficient
  // Terms the series needs: the ratio starts at z Q/C and creeps up to z; a few fixed-point steps
  // of N = 40 / (1 - z (Q+N)/(C+N)) estimate it. Beyond ~4000 terms the quadrature is cheaper.
  double n_series = 40 / (1 - z * Q / C);
  for (int k = 0; k < 3; ++k) n_series = 40 / (1 - z * (Q + n_series) / (C + n_series));
  if (z <= 0.7 || n_series <= 4000) {
    double term = 1, sum = 1, sQ = 0, sP = 0, sz = 0, gQ = 0, gP = 0;
    bool done = false;
    for (long n = 0; n < max_steps && !done; ++n) {
      const double dn = static_cast<double>(n);
      const double inv_c = 1 / (C + dn), ratio = (Q + dn) * inv_c;
      // d(term_{n+1})/dz = (n+1) term_n ratio (exact at z = 0, where only n = 0 contributes).
      sz += (dn + 1) * term * ratio;
      term *= ratio * z;
      gQ += 1 / (Q + dn) - inv_c;
      gP -= inv_c;
      sum += term;
      sQ += term * gQ;
      sP += term * gP;
      done = term <= eps * (1 - z) * sum;
    }
    if (!done) return {std::nan(""), std::nan(""), std::nan(""), std::nan("")};
    out.value = std::log(sum);
    out.dQ = sQ / sum;
    out.dP = sP / sum;
    out.dz = sz / sum;
    return out;
  }
  return log_hyp2f1_1qc_quadrature(Q, P, z);
}

/// ln U(a, b, z) for z > 0 and a > 0 (Tricomi's confluent hypergeometric function), from
///   U(a, b, z) = 1/Gamma(a) int_0^inf e^(-z t) t^(a-1) (1+t)^(b-a-1) dt   (DLMF 13.4.4)
/// with t = e^u / z (dt = t du, a factor z^-a): the integrand exp(a u - e^u) (1 + e^u/z)^(b-a-1) is analytic in the strip
/// |Im u| < pi/2 and decays exponentially as u -> -inf (rate a) and doubly exponentially as
/// u -> +inf, so the trapezoidal rule converges geometrically in 1/h (error ~ exp(-pi^2 / h) for
/// moderate a); the step shrinks like 1/sqrt(max(1, a, |b-a-1|)) as the integrand sharpens.
/// The sum is accumulated relative to its largest term (no overflow). NaN for bad arguments.
inline double log_hyperu_integral(double a, double b, double z) noexcept {
  const double m = b - a - 1;
  const double sharp = std::max({1.0, a, std::abs(m)});
  const double h = 0.18 / std::sqrt(sharp);
  // log-integrand in u; its maximum is near e^u = a (+ the (1+e^u/z)^m factor's pull).
  const double log_z = std::log(z);
  auto softplus = [](double v) { return v > 30 ? v + std::exp(-v) : std::log1p(std::exp(v)); };
  auto f = [&](double u) { return a * u - std::exp(u) + (m == 0 ? 0.0 : m * softplus(u - log_z)); };
  // The log-integrand is unimodal (f' = a - e^u + m e^u/(z + e^u) crosses 0 once, from above):
  // bisect f' for the peak u0, then sum outwards from it until the terms are negligible.
  auto df = [&](double u) {
    return a - std::exp(u) + m / (1 + std::exp(log_z - u));
  };
  double lo = -1, hi = 1;
  while (df(lo) <= 0 && lo > -1e6) lo *= 2;
  while (df(hi) >= 0 && hi < 800) hi = hi < 1 ? 1 : 2 * hi;
  for (int it = 0; it < 200 && hi - lo > 1e-9 * std::max(1.0, std::abs(lo)); ++it) {
    const double mid = 0.5 * (lo + hi);
    (df(mid) > 0 ? lo : hi) = mid;
  }
  const double u0 = 0.5 * (lo + hi);
  const double fmax = f(u0);
  if (!std::isfinite(fmax)) return std::nan("");
  constexpr double cut = 45;  // terms below e^-45 of the largest are dropped (sum of tails < 1e-17)
  double sum = 0;
  long steps = 0;
  constexpr long max_steps = 4000000;
  for (long k = 0; steps < max_steps; ++k, ++steps) {  // rightwards from u0
    const double fu = f(u0 + static_cast<double>(k) * h) - fmax;
    if (fu < -cut && k > 0) break;
    sum += std::exp(fu);
  }
  for (long k = 1; steps < max_steps; ++k, ++steps) {  // leftwards; the tail decays like e^(a u)
    const double fu = f(u0 - static_cast<double>(k) * h) - fmax;
    if (fu < -cut) break;
    sum += std::exp(fu);
  }
  if (steps >= max_steps) return std::nan("");
  return fmax + std::log(sum * h) - a * log_z - log_gamma(a);
}

}  // namespace detail

/// ln 2F1(a, b; c; z), the Gauss hypergeometric function, for the family the Pareto/NBD likelihood
/// uses (Fader & Hardie, "A Note on Deriving the Pareto/NBD Model and Related Expressions", 2005):
///
///   c = a + 1 (or c = b + 1; checked to a relative 1e-12), a > 0, 0 < b < c, 0 <= z < 1.
///
/// By Euler's transformation 2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z), a series of
/// positive terms bounded by 1/(1-z) (see detail::log_hyp2f1_1qc): the result is finite and
/// accurate (about 1e-13 relative in ln) for a, b up to 1e8 and z up to 1 - 1e-9, where the direct
/// series overflows (a = r+s+x > 300 in lifetimes) or needs billions of terms (z near 1, large beta).
/// Arguments outside that domain throw uvp::invalid_argument. Near z = 1 the function itself is
/// ill-conditioned in z (relative condition number about 1/(1-z)), which bounds any method's accuracy.
inline double log_hyp2f1(double a, double b, double c, double z) {
  constexpr const char* where = "uvp::log_hyp2f1";
  const double args[4] = {a, b, c, z};
  const char* names[4] = {"a", "b", "c", "z"};
  for (int i = 0; i < 4; ++i)
    if (!std::isfinite(args[i])) detail::raise<invalid_argument>(where, ": ", names[i], " = ", args[i], " must be finite");
  if (std::abs(c - (b + 1)) <= 1e-12 * std::abs(c) && std::abs(c - (a + 1)) > 1e-12 * std::abs(c)) std::swap(a, b);
  if (std::abs(c - (a + 1)) > 1e-12 * std::abs(c))
    detail::raise<invalid_argument>(where, ": c = ", c, " must equal a + 1 = ", a + 1,
                                    " (or b + 1): only the family 2F1(a, b; a+1; z) is implemented");
  if (!(a > 0)) detail::raise<invalid_argument>(where, ": a = ", a, " must be > 0");
  if (!(b > 0) || !(b < c)) detail::raise<invalid_argument>(where, ": b = ", b, " must be in (0, c = ", c, ")");
  if (!(z >= 0) || !(z < 1)) detail::raise<invalid_argument>(where, ": z = ", z, " must be in [0, 1)");
  const double Q = c - b;  // a + 1 - b
  const double lh = detail::log_hyp2f1_1qc(Q, b, z).value;
  return (1 - b) * std::log1p(-z) + lh;
}

/// ln U(a, b, z), Tricomi's confluent hypergeometric function of the second kind (DLMF 13.2.6),
/// for z > 0 and max(a, 1 + a - b) >= 1e-3 (the integral representation DLMF 13.4.4 holds for a > 0;
/// otherwise Kummer's transformation U(a, b, z) = z^(1-b) U(1+a-b, 2-b, z) is used). Evaluated by
/// the trapezoidal rule on the integral in a logarithmic variable (detail::log_hyperu_integral):
/// relative accuracy about 1e-13. Used for the Pareto/NBD DERT, U(s, s, delta (beta + T)).
/// Arguments outside the domain throw uvp::invalid_argument.
inline double log_hyperu(double a, double b, double z) {
  constexpr const char* where = "uvp::log_hyperu";
  if (!std::isfinite(a)) detail::raise<invalid_argument>(where, ": a = ", a, " must be finite");
  if (!std::isfinite(b)) detail::raise<invalid_argument>(where, ": b = ", b, " must be finite");
  if (!(z > 0) || !std::isfinite(z)) detail::raise<invalid_argument>(where, ": z = ", z, " must be finite and > 0");
  const double a2 = 1 + a - b;
  if (std::max(a, a2) < 1e-3)
    detail::raise<invalid_argument>(where, ": a = ", a, ", b = ", b, ": max(a, 1 + a - b) must be >= 1e-3");
  // The integral's left tail decays like e^(a u): use the form with the larger a (fewer steps).
  if (a >= a2) return detail::log_hyperu_integral(a, b, z);
  return (1 - b) * std::log(z) + detail::log_hyperu_integral(a2, 2 - b, z);
}

/// U(a, b, z) = exp(log_hyperu(a, b, z)) (may overflow to inf or underflow to 0 where ln U does not).
inline double hyperu(double a, double b, double z) { return std::exp(log_hyperu(a, b, z)); }

}  // namespace uvp
