// SPDX-License-Identifier: Apache-2.0
// Log-gamma and digamma for positive arguments, thread-safe (no global state), for the CLV models.
#pragma once

#include <cmath>

namespace uvp::detail {

// std::lgamma writes the global `signgam` on glibc, a data race inside OpenMP loops; these two are
// pure functions of x. Both shift x up to >= 10 with the recurrence and then use the asymptotic
// (Stirling / de Moivre) series, whose truncation error there is below 1e-17.

/// ln Gamma(x) for x > 0 (absolute error about 1e-15 near the zeros at 1 and 2, relative 1e-15
/// elsewhere). Returns NaN for x <= 0 or NaN.
inline double log_gamma(double x) noexcept {
  if (!(x > 0)) return std::nan("");
  if (std::isinf(x)) return x;
  double shift = 1;
  while (x < 10) {
    shift *= x;
    x += 1;
  }
  const double z = 1 / x, z2 = z * z;
  // Bernoulli-number series B_2k / (2k (2k-1) x^(2k-1)), k = 1..7.
  const double series =
      z * (1.0 / 12 + z2 * (-1.0 / 360 +
                            z2 * (1.0 / 1260 +
                                  z2 * (-1.0 / 1680 + z2 * (1.0 / 1188 + z2 * (-691.0 / 360360 + z2 * (1.0 / 156)))))));
  constexpr double half_log_2pi = 0.91893853320467274178;
  return (x - 0.5) * std::log(x) - x + half_log_2pi + series - std::log(shift);
}

/// psi(x) = d/dx ln Gamma(x) for x > 0 (relative error about 1e-15 away from its zero at
/// 1.4616...). Returns NaN for x <= 0 or NaN.
inline double digamma(double x) noexcept {
  if (!(x > 0)) return std::nan("");
  if (std::isinf(x)) return x;
  double acc = 0;
  while (x < 10) {
    acc -= 1 / x;
    x += 1;
  }
  const double z2 = 1 / (x * x);
  // B_2k / (2k x^(2k)), k = 1..7.
  const double series =
      z2 * (1.0 / 12 +
            z2 * (-1.0 / 120 +
                  z2 * (1.0 / 252 + z2 * (-1.0 / 240 + z2 * (1.0 / 132 + z2 * (-691.0 / 32760 + z2 * (1.0 / 12)))))));
  return acc + std::log(x) - 0.5 / x - series;
}

}  // namespace uvp::detail
