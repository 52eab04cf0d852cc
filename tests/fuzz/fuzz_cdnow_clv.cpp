// SPDX-License-Identifier: Apache-2.0
// Fuzz target: a CDNOW-layout transaction log as text -> customer summary -> BG/NBD and Gamma-Gamma
// fits -> scores. Bad text or data must end in a uvp::error; a fit that returns must leave
// predictions that are finite (or report, in its result, that it could not fit).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) return 0;  // a few hundred lines reach every path; longer inputs only slow the run
  const std::string text(reinterpret_cast<const char*>(data), size);
  uvp_fuzz::expect_uvp_errors_only([&] {
    const uvp::TransactionLog log = uvp::parse_cdnow_transactions(text, "fuzz.txt");
    if (log.size() == 0) return;
    const uvp::CustomerSummary s = uvp::summary_from_transactions(log, uvp::TimeUnit::week);
    for (uvp::index i = 0; i < s.frequency.size(); ++i)
      if (!std::isfinite(s.frequency[i]) || !std::isfinite(s.recency[i]) || !std::isfinite(s.T[i]) ||
          !std::isfinite(s.monetary_value[i]) || s.recency[i] > s.T[i] || s.recency[i] < 0)
        uvp_fuzz::finding("a summary with a non-finite or inconsistent entry");
    uvp::BgNbd purchases;
    uvp::BgNbdFitOptions bo;
    bo.max_iterations = 60;
    const uvp::ClvFitResult fit = purchases.fit(s, bo);
    if (!purchases.is_fitted()) return;
    const auto p = purchases.params();
    if (!(p.r > 0 && p.alpha > 0 && p.a > 0 && p.b > 0) || !std::isfinite(p.r + p.alpha + p.a + p.b))
      uvp_fuzz::finding("BG/NBD fitted non-finite or non-positive parameters");
    if (fit.converged) {
      const auto alive = purchases.probability_alive(s.frequency, s.recency, s.T);
      const auto expected = purchases.conditional_expected_purchases(10.0, s.frequency, s.recency, s.T);
      for (uvp::index i = 0; i < alive.size(); ++i)
        if (!(alive[i] >= 0 && alive[i] <= 1) || !std::isfinite(expected[i]) || expected[i] < 0)
          uvp_fuzz::finding("BG/NBD predictions out of range after a converged fit");
    }
    uvp::GammaGamma spend;
    uvp::GammaGammaFitOptions go;
    go.max_iterations = 60;
    uvp_fuzz::expect_uvp_errors_only([&] {
      const uvp::ClvFitResult gfit = spend.fit(s, go);
      if (!spend.is_fitted() || !fit.converged || !gfit.converged) return;
      const uvp::CustomerScores scores = uvp::score_customers(purchases, spend, s);
      for (uvp::index i = 0; i < scores.clv.size(); ++i)
        if (std::isnan(scores.clv[i])) uvp_fuzz::finding("a NaN customer lifetime value after converged fits");
    });
  });
  return 0;
}
