// SPDX-License-Identifier: Apache-2.0
// Central finite-difference gradient checker, for uvp's own tests and for users' layers.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "uvp/core/tensor.hpp"

namespace uvp::testing {

/// Result of comparing an analytic gradient with central differences.
struct GradientCheck {
  double relative_error = 0;   ///< |a - n| / max(|a + n|, tiny) over all coordinates (the usual criterion)
  double max_abs_error = 0;    ///< largest |a_i - n_i|
  index worst_index = -1;      ///< coordinate of max_abs_error
};

/// Compares `analytic` (size n) with central differences of the scalar function `f` at `x`
/// (size n): n_i = (f(x + h e_i) - f(x - h e_i)) / 2h. `f` reads x through the span it is given;
/// x is restored after each probe. Use double and h around 1e-6 for a relative error near 1e-9.
template <class F>
GradientCheck check_gradient(F&& f, Span<double> x, Span<const double> analytic, double h = 1e-6) {
  GradientCheck r;
  double num = 0, den = 0;
  for (index i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double fp = f();
    x[i] = saved - h;
    const double fm = f();
    x[i] = saved;
    const double numeric = (fp - fm) / (2 * h);
    const double a = analytic[i];
    num += (a - numeric) * (a - numeric);
    den += (a + numeric) * (a + numeric);
    if (std::abs(a - numeric) > r.max_abs_error) {
      r.max_abs_error = std::abs(a - numeric);
      r.worst_index = i;
    }
  }
  r.relative_error = std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
  return r;
}

}  // namespace uvp::testing
