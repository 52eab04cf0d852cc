// SPDX-License-Identifier: Apache-2.0
// One rule for every repeat-purchase model (BG/NBD, MBG/NBD, Pareto/NBD, with or without
// covariates): data that cannot identify the parameters are refused before any optimizer runs,
// rather than returned as wherever the optimizer happened to stop.
#pragma once

#include <algorithm>
#include <string>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::detail {

/// Summaries of the customers with weight > 0, read before a fit.
struct ClvDataShape {
  index customers = 0;            ///< with weight > 0
  index first = -1;               ///< index of the first of them
  double repeat_weight = 0;       ///< weight of those with x > 0
  double max_T = 0;
  double sum_wx = 0, sum_wT = 0;  ///< sum w x and sum w T (a start's purchase rate)
  bool identical = true;          ///< all of them have the same (x, t_x, T)
};

inline ClvDataShape clv_data_shape(const ConstVectorRef<double>& f, const ConstVectorRef<double>& r,
                                   const ConstVectorRef<double>& T, const double* w) {
  ClvDataShape s;
  for (index i = 0; i < f.size(); ++i) {
    const double wi = w ? w[i] : 1.0;
    if (!(wi > 0)) continue;
    if (s.first < 0) s.first = i;
    const index j = s.first;
    s.identical = s.identical && f[i] == f[j] && r[i] == r[j] && T[i] == T[j];
    ++s.customers;
    if (f[i] > 0) s.repeat_weight += wi;
    s.max_T = std::max(s.max_T, T[i]);
    s.sum_wx += wi * f[i];
    s.sum_wT += wi * T[i];
  }
  return s;
}

/// Raises uvp::invalid_argument naming `where` when no estimate exists: every T = 0, no repeat
/// purchase at all (`no_repeat_why` says what then happens to this model's likelihood), or one
/// customer / identical histories without a penalty (the likelihood then grows as the shape
/// parameters go to infinity). With a penalty, identical histories are fitted and the returned
/// text, non-empty, is for the fit's warning ("the estimate is set by the penalizer").
inline std::string check_identifiable(const char* where, const ClvDataShape& s, const ConstVectorRef<double>& f,
                                      const ConstVectorRef<double>& r, const ConstVectorRef<double>& T,
                                      double penalizer, const char* no_repeat_why) {
  if (!(s.max_T > 0))
    raise<invalid_argument>(where, ": every customer has T = 0 (no time observed since the first purchase), "
                                   "so the data carry no information on the parameters");
  if (!(s.repeat_weight > 0))
    raise<invalid_argument>(where, ": no customer has a repeat purchase (every frequency is 0): ", no_repeat_why,
                            ", so no estimate exists");
  if (!s.identical) return {};
  const index j = s.first;
  const std::string who = s.customers == 1 ? std::string("there is only one customer")
                                           : str("all ", s.customers, " customers have the same history");
  std::string identical = str(who, " (x = ", f[j], ", t_x = ", r[j], ", T = ", T[j],
                              "), so the spread of purchase and dropout rates across customers is not identified");
  if (penalizer == 0)
    raise<invalid_argument>(where, ": ", identical,
                            " (the likelihood grows as the shape parameters go to infinity); fit on more customers "
                            "or set a penalizer");
  return identical;
}

}  // namespace uvp::detail
