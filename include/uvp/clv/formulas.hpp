// SPDX-License-Identifier: Apache-2.0
// Closed-form customer lifetime value formulas (no model fit): the textbook starting points.
#pragma once

#include <cmath>

#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp {

namespace detail {
inline void check_finite_non_negative(const char* where, const char* what, double v) {
  if (!std::isfinite(v) || v < 0) raise<invalid_argument>(where, ": ", what, " must be finite and >= 0, got ", v);
}
inline void check_rate(const char* where, const char* what, double v) {
  if (!(v >= 0 && v <= 1)) raise<invalid_argument>(where, ": ", what, " must be in [0, 1], got ", v);
}
inline void check_discount(const char* where, double d) {
  if (!std::isfinite(d) || !(d > -1))
    raise<invalid_argument>(where, ": discount_rate must be finite and > -1, got ", d);
}
}  // namespace detail

/// Value per purchase x purchases per period x periods: the "average order value x purchase
/// frequency x lifespan" rule of thumb (no discounting, no churn). All three finite and >= 0.
inline double simple_clv(double value_per_purchase, double purchases_per_period, double periods) {
  constexpr const char* where = "uvp::simple_clv";
  detail::check_finite_non_negative(where, "value_per_purchase", value_per_purchase);
  detail::check_finite_non_negative(where, "purchases_per_period", purchases_per_period);
  detail::check_finite_non_negative(where, "periods", periods);
  return value_per_purchase * purchases_per_period * periods;
}

/// Margin m per period, retention probability r per period, discount rate d per period; the
/// customer pays at the end of every period they are retained through (the first payment at the
/// end of period 1, with probability r):
///   CLV = sum_{t>=1} m r^t / (1+d)^t = m r / (1 + d - r)
/// (Gupta & Lehmann 2003, "Customers as assets", J. Interactive Marketing 17(1)). m finite and
/// >= 0, r in [0, 1], d finite and >= 0, and 1 + d - r > 0 (r = 1 needs d > 0).
inline double retention_clv(double margin, double retention, double discount_rate) {
  constexpr const char* where = "uvp::retention_clv";
  detail::check_finite_non_negative(where, "margin", margin);
  detail::check_rate(where, "retention", retention);
  detail::check_finite_non_negative(where, "discount_rate", discount_rate);
  if (!(1 + discount_rate - retention > 0))
    detail::raise<invalid_argument>(where, ": retention = 1 with discount_rate = 0 gives an infinite value");
  return margin * retention / (1 + discount_rate - retention);
}

/// The same sum cut after `periods` periods: sum_{t=1}^{periods} m (r / (1+d))^t. It tends to
/// retention_clv as periods grows. periods >= 0 (0 gives 0).
inline double finite_horizon_clv(double margin, double retention, double discount_rate, index periods) {
  constexpr const char* where = "uvp::finite_horizon_clv";
  detail::check_finite_non_negative(where, "margin", margin);
  detail::check_rate(where, "retention", retention);
  detail::check_finite_non_negative(where, "discount_rate", discount_rate);
  detail::check_non_negative(where, "periods", periods);
  const double q = retention / (1 + discount_rate);
  if (q == 1) return margin * static_cast<double>(periods);
  // m q (1 - q^n) / (1 - q), with expm1/log1p so that q close to 1 keeps its digits.
  if (q == 0) return 0;
  const double qn_minus_1 = std::expm1(static_cast<double>(periods) * std::log(q));
  return margin * q * (-qn_minus_1) / (1 - q);
}

/// Net present value of per-period cash flows paid at the end of periods 1..n:
/// sum_t cash_flows[t-1] / (1+d)^t. cash_flows finite (any sign); d finite and > -1.
inline double discounted_value(Span<const double> cash_flows, double discount_rate) {
  constexpr const char* where = "uvp::discounted_value";
  detail::check_finite(where, "cash_flows", cash_flows.data(), cash_flows.size());
  detail::check_discount(where, discount_rate);
  double factor = 1, total = 0;
  for (index t = 0; t < cash_flows.size(); ++t) {
    factor /= 1 + discount_rate;
    total += cash_flows[t] * factor;
  }
  return total;
}

}  // namespace uvp
