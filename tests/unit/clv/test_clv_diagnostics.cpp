// SPDX-License-Identifier: Apache-2.0
// Tests of the CLV diagnostics: BG/NBD P(X(t) = x) against mpmath, the period-transactions histogram,
// holdout by frequency, the frequency x recency matrices, the tracking data, and their SVG plots.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>

#include "cdnow_data.hpp"
#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/diagnostics.hpp"
#include "uvp/clv/mbg_nbd.hpp"
#include "uvp/clv/pareto_nbd.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/io/svg.hpp"

namespace {
const uvp::BgNbdParams published{0.243, 4.414, 0.793, 2.426};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("BG/NBD P(X(t) = x) matches mpmath's integral over the purchase rate") {
  // tests/fixtures/clv/bgnbd_pmf.txt: t, x, P from the model's definition (make_diagnostics_reference.py).
  const auto rows = clv_test::fixture_rows("clv/bgnbd_pmf.txt", 3);
  REQUIRE(rows.size() == 18);
  for (const auto& row : rows) {
    const double p = uvp::bgnbd_purchase_count_probability(published, row[0], static_cast<int>(row[1]));
    INFO("t = " << row[0] << ", x = " << row[1]);
    CHECK(std::abs(p - row[2]) <= 1e-12 * row[2] + 1e-300);
  }
  // t = 0: no purchase yet.
  CHECK(uvp::bgnbd_purchase_count_probability(published, 0, 0) == 1);
  CHECK(uvp::bgnbd_purchase_count_probability(published, 0, 3) == 0);
}

TEST_CASE("BG/NBD P(X(t) = x) is a distribution whose mean is E[X(t)] (FHL eq. 9)") {
  const uvp::BgNbd model(published);
  for (double t : {1.0, 39.0, 78.0}) {
    double total = 0, mean = 0;
    for (int x = 0; x <= 1500; ++x) {
      const double p = uvp::bgnbd_purchase_count_probability(published, t, x);
      total += p, mean += x * p;
    }
    INFO("t = " << t);
    CHECK(total == doctest::Approx(1).epsilon(1e-9));
    CHECK(mean == doctest::Approx(model.expected_purchases(t)).epsilon(1e-7));
  }
  // Frequent buyers: log space, no overflow.
  const double far = uvp::bgnbd_purchase_count_probability(published, 78, 2000);
  CHECK(std::isfinite(far));
  CHECK(far >= 0);
}

TEST_CASE("MBG/NBD P(X(t) = x) is a distribution whose mean is E[X(t)]") {
  // The values lifetimes' tests use for CDNOW (from BTYDplus).
  const uvp::MbgNbdParams p{0.525, 6.183, 0.891, 1.614};
  const uvp::MbgNbd model(p);
  for (double t : {0.5, 39.0, 78.0}) {
    double total = 0, mean = 0;
    for (int x = 0; x <= 1500; ++x) {
      const double q = uvp::mbgnbd_purchase_count_probability(p, t, x);
      total += q, mean += x * q;
    }
    INFO("t = " << t);
    CHECK(total == doctest::Approx(1).epsilon(1e-9));
    CHECK(mean == doctest::Approx(model.expected_purchases(t)).epsilon(1e-7));
  }
  // t = 0: the customers alive and those who dropped out at once both have X(0) = 0.
  CHECK(uvp::mbgnbd_purchase_count_probability(p, 0, 0) == doctest::Approx(1).epsilon(1e-14));
  CHECK(uvp::purchase_count_probability(model, 39, 2) == uvp::mbgnbd_purchase_count_probability(p, 39, 2));
  const auto d = clv_test::read_cdnow_summary();
  const auto h = uvp::period_transactions(model, d.x, d.tx, d.T);
  CHECK(std::accumulate(h.expected.begin(), h.expected.end(), 0.0) == doctest::Approx(2357).epsilon(1e-12));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mbgnbd_purchase_count_probability({0.5, 6, -1, 1}, 1, 0), uvp::invalid_argument,
                               "parameter a");
}

TEST_CASE("Pareto/NBD P(X(t) = x): a distribution with mean E[X(t)], equal to the closed form") {
  for (const uvp::ParetoNbdParams p : {uvp::ParetoNbdParams{0.553, 10.578, 0.606, 11.669},  // CDNOW, published
                                       uvp::ParetoNbdParams{2.5, 2.0, 3.0, 500.0},       // frequent buyers, large beta
                                       uvp::ParetoNbdParams{0.3, 40.0, 0.2, 0.01}}) {   // beta << t
    const uvp::ParetoNbd model(p);
    for (double t : {0.5, 39.0, 78.0}) {
      const std::vector<double> d = uvp::pnbd_purchase_count_distribution(p, t, 3000);
      double total = 0, mean = 0;
      for (std::size_t x = 0; x < d.size(); ++x) total += d[x], mean += double(x) * d[x];
      INFO("r = " << p.r << ", t = " << t);
      CHECK(total == doctest::Approx(1).epsilon(1e-10));
      CHECK(mean == doctest::Approx(model.expected_purchases(t)).epsilon(1e-8));
      CHECK(uvp::pnbd_purchase_count_probability(p, t, 3) == d[3]);
      CHECK(uvp::purchase_count_probability(model, t, 3) == d[3]);
    }
  }
  // Fader & Hardie's closed form with mpmath.hyp2f1 at 120 digits (tests/fixtures/clv/pnbd_pmf.txt).
  const auto rows = clv_test::fixture_rows("clv/pnbd_pmf.txt", 7);
  REQUIRE(rows.size() == 54);
  for (const auto& row : rows) {
    const uvp::ParetoNbdParams p{row[0], row[1], row[2], row[3]};
    INFO("r = " << row[0] << ", t = " << row[4] << ", x = " << row[5]);
    CHECK(uvp::pnbd_purchase_count_probability(p, row[4], static_cast<int>(row[5])) ==
          doctest::Approx(row[6]).epsilon(1e-11));
  }
  // Nobody drops out (s -> 0): the NBD count.
  const uvp::ParetoNbdParams nbd{0.7, 9.0, 1e-12, 1.0};
  CHECK(uvp::pnbd_purchase_count_probability(nbd, 13, 2) ==
        doctest::Approx(0.7 * 1.7 / 2 * std::pow(9.0 / 22, 0.7) * std::pow(13.0 / 22, 2)).epsilon(1e-9));
  CHECK(uvp::pnbd_purchase_count_distribution(nbd, 0, 4) == std::vector<double>{1, 0, 0, 0, 0});
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::pnbd_purchase_count_distribution(nbd, -1, 4), uvp::invalid_argument, "t = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::pnbd_purchase_count_distribution({0.7, 9, 1, -2}, 1, 4), uvp::invalid_argument,
                               "beta");
}

TEST_CASE("period-transactions histogram on CDNOW: actual counts and the model column") {
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd model(published);
  const auto h = uvp::period_transactions(model, d.x, d.tx, d.T);
  REQUIRE(h.frequency.size() == 8);
  // The actual column counts the customers.
  std::vector<double> actual(8, 0);
  for (uvp::index i = 0; i < d.x.size(); ++i) actual[static_cast<std::size_t>(std::min(d.x[i], 7.0))] += 1;
  for (std::size_t k = 0; k < 8; ++k) CHECK(h.actual[k] == actual[k]);
  CHECK(h.actual[0] == 1411);  // FHL 2005: 1,411 of the 2,357 made no repeat purchase
  // The model column: mpmath's sum of eq. 8 over the customers (bgnbd_period_transactions.txt).
  const auto ref = clv_test::fixture_rows("clv/bgnbd_period_transactions.txt", 2);
  REQUIRE(ref.size() == 8);
  for (std::size_t k = 0; k < 8; ++k) CHECK(h.expected[k] == doctest::Approx(ref[k][1]).epsilon(1e-10));
  CHECK(std::accumulate(h.expected.begin(), h.expected.end(), 0.0) == doctest::Approx(2357).epsilon(1e-12));
  // Any model with P(X(t) = x): Pareto/NBD at the published CDNOW parameters.
  const uvp::ParetoNbd pnbd(uvp::ParetoNbdParams{0.553, 10.578, 0.606, 11.669});
  const auto hp = uvp::period_transactions(pnbd, d.x, d.tx, d.T);
  CHECK(hp.actual == h.actual);
  CHECK(std::accumulate(hp.expected.begin(), hp.expected.end(), 0.0) == doctest::Approx(2357).epsilon(1e-12));
  CHECK(hp.expected[0] == doctest::Approx(h.expected[0]).epsilon(0.05));  // the two models roughly agree
  // A smaller last bucket.
  const auto h3 = uvp::period_transactions(model, d.x, d.tx, d.T, 3);
  REQUIRE(h3.expected.size() == 4);
  CHECK(h3.expected[2] == doctest::Approx(h.expected[2]).epsilon(1e-13));
  CHECK(h3.expected[3] == doctest::Approx(h.expected[3] + h.expected[4] + h.expected[5] + h.expected[6] + h.expected[7])
                              .epsilon(1e-12));
}

TEST_CASE("holdout purchases by calibration frequency: bucket means of the direct predictions") {
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd model(published);
  // Any holdout counts do for the check: use 2 x frequency mod 5.
  uvp::Vector<double> hold(d.x.size());
  for (uvp::index i = 0; i < hold.size(); ++i) hold[i] = std::fmod(2 * d.x[i], 5.0);
  const auto b = uvp::holdout_by_frequency(model, d.x, d.tx, d.T, hold, 39);
  REQUIRE(b.frequency.size() == 8);
  const uvp::Vector<double> pred = model.conditional_expected_purchases(39, d.x, d.tx, d.T);
  double customers = 0;
  for (std::size_t k = 0; k < b.frequency.size(); ++k) {
    double n = 0, act = 0, exp = 0;
    for (uvp::index i = 0; i < d.x.size(); ++i)
      if (std::min(d.x[i], 7.0) == b.frequency[k]) n += 1, act += hold[i], exp += pred[i];
    CHECK(b.customers[k] == n);
    CHECK(b.actual[k] == doctest::Approx(act / n).epsilon(1e-13));
    CHECK(b.expected[k] == doctest::Approx(exp / n).epsilon(1e-12));
    customers += b.customers[k];
  }
  CHECK(customers == 2357);
  // Same result on one thread.
  const int threads = uvp::num_threads();
  uvp::set_num_threads(1);
  const auto b1 = uvp::holdout_by_frequency(model, d.x, d.tx, d.T, hold, 39);
  uvp::set_num_threads(threads);
  CHECK(b1.expected == b.expected);
}

TEST_CASE("frequency x recency matrices match direct calls; impossible cells are NaN") {
  const uvp::BgNbd model(published);
  const auto e = uvp::expected_purchases_matrix(model, 1.0, 39.0, 20, 14);
  const auto a = uvp::probability_alive_matrix(model, 39.0, 20, 14);
  REQUIRE(e.values.rows() == 21);
  REQUIRE(e.values.cols() == 14);
  REQUIRE(a.values.rows() == 21);
  CHECK(e.recency.front() == 0);
  CHECK(e.recency.back() == 39);
  for (uvp::index i = 0; i < 21; ++i)
    for (uvp::index j = 0; j < 14; ++j) {
      const double x = e.frequency[static_cast<std::size_t>(i)], tx = e.recency[static_cast<std::size_t>(j)];
      if (x == 0 && tx > 0) {
        CHECK(std::isnan(e.values(i, j)));
        CHECK(std::isnan(a.values(i, j)));
        continue;
      }
      CHECK(e.values(i, j) == model.conditional_expected_purchases(1.0, x, tx, 39.0));
      CHECK(a.values(i, j) == model.probability_alive(x, tx, 39.0));
    }
  // The familiar shape: a frequent buyer seen recently is alive, one who stopped long ago is not.
  CHECK(a.values(20, 13) > 0.9);
  CHECK(a.values(20, 0) < 1e-6);
}

TEST_CASE("tracking on the CDNOW sample: actual counts agree with the summaries, the model with direct sums") {
  const auto log = uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt"));
  const uvp::Date cal = uvp::Date::from_ymd(1997, 9, 30), hold = uvp::Date::from_ymd(1998, 6, 30);
  const auto tr = uvp::track_repeat_transactions(log, cal, hold);
  const auto split = uvp::calibration_holdout_split(log, cal, hold);
  const auto& s = split.calibration;
  CHECK(tr.start == uvp::Date::from_ymd(1997, 1, 1));
  CHECK(tr.first_purchase.size() == 2357);
  CHECK(tr.calibration_end == doctest::Approx(272.0 / 7));
  CHECK(tr.holdout_end == doctest::Approx(545.0 / 7));
  REQUIRE(tr.period_end.size() == 78);
  CHECK(tr.period_end.back() == doctest::Approx(545.0 / 7));
  // Repeat purchases through week 38 (day 266) + the 6 days to the calibration end = sum of x; the rest
  // is the holdout.
  const double cal_repeats = s.frequency.sum(), hold_repeats = split.holdout_frequency.sum();
  CHECK(tr.actual_cumulative.back() == cal_repeats + hold_repeats);
  CHECK(hold_repeats == 1882);
  CHECK(tr.actual_cumulative[37] <= cal_repeats);
  CHECK(tr.actual_cumulative[38] >= cal_repeats);  // week 39 ends after the calibration end
  for (std::size_t k = 0; k < tr.actual_incremental.size(); ++k)
    CHECK(tr.actual_cumulative[k] == doctest::Approx(std::accumulate(tr.actual_incremental.begin(),
                                                                     tr.actual_incremental.begin() + long(k) + 1, 0.0)));

  const uvp::BgNbd model(published);
  const auto ex = uvp::expected_tracking(model, tr);
  REQUIRE(ex.cumulative.size() == 78);
  for (std::size_t k : {std::size_t(0), std::size_t(12), std::size_t(38), std::size_t(77)}) {
    const double t = tr.period_end[k];
    double direct = 0;
    for (double t0 : tr.first_purchase)
      if (t > t0) direct += model.expected_purchases(t - t0);
    INFO("period " << k + 1);
    CHECK(ex.cumulative[k] == doctest::Approx(direct).epsilon(1e-12));
    CHECK(ex.incremental[k] == doctest::Approx(ex.cumulative[k] - (k ? ex.cumulative[k - 1] : 0.0)));
  }
  // Any model with expected_purchases plugs in: Pareto/NBD at the published CDNOW parameters.
  const uvp::ParetoNbd pnbd(uvp::ParetoNbdParams{0.553, 10.578, 0.606, 11.669});
  const auto ep = uvp::expected_tracking(pnbd, tr);
  double direct_p = 0;
  for (double t0 : tr.first_purchase)
    if (tr.period_end[77] > t0) direct_p += pnbd.expected_purchases(tr.period_end[77] - t0);
  CHECK(ep.cumulative[77] == doctest::Approx(direct_p).epsilon(1e-12));
  // At the calibration end the cohort's expectation is sum_i E[X(T_i)] with the summary's T.
  const auto at_cal = uvp::expected_cumulative_repeat_transactions(model, tr.first_purchase, {tr.calibration_end});
  double by_T = 0;
  for (uvp::index i = 0; i < s.size(); ++i) by_T += model.expected_purchases(s.T[i]);
  CHECK(at_cal[0] == doctest::Approx(by_T).epsilon(1e-10));
  // Independent of the thread count.
  const int threads = uvp::num_threads();
  uvp::set_num_threads(1);
  const auto ex1 = uvp::expected_tracking(model, tr);
  uvp::set_num_threads(threads);
  CHECK(ex1.cumulative == ex.cumulative);
}

TEST_CASE("diagnostics reject bad input naming the argument") {
  const auto d = clv_test::read_cdnow_summary();
  const uvp::BgNbd model(published);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bgnbd_purchase_count_probability(published, -1, 0), uvp::invalid_argument,
                               "uvp::bgnbd_purchase_count_probability: t = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bgnbd_purchase_count_probability(published, 1, -2), uvp::invalid_argument,
                               "x = -2");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::pnbd_purchase_count_distribution({0.5, 10, 0.6, 11}, 1, 2000000000),
                               uvp::invalid_argument, "x = 2000000000");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bgnbd_purchase_count_probability({0.2, -1, 1, 1}, 1, 0), uvp::invalid_argument,
                               "alpha");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::period_transactions(model, d.x, d.tx, d.T, 0), uvp::invalid_argument,
                               "max_frequency = 0");
  uvp::Vector<double> bad_r = d.tx;
  bad_r[3] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::period_transactions(model, d.x, bad_r, d.T), uvp::invalid_argument,
                               "recency[3] = -1");
  const uvp::Vector<double> short_hold = uvp::Vector<double>::Zero(5);
  CHECK_THROWS_AS(uvp::holdout_by_frequency(model, d.x, d.tx, d.T, short_hold, 39), uvp::error);
  uvp::Vector<double> neg_hold = uvp::Vector<double>::Zero(d.x.size());
  neg_hold[7] = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::holdout_by_frequency(model, d.x, d.tx, d.T, neg_hold, 39), uvp::invalid_argument,
                               "holdout_purchases[7] = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::expected_purchases_matrix(model, 1, 0), uvp::invalid_argument, "T = 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::expected_purchases_matrix(model, -1, 39), uvp::invalid_argument, "t = -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::probability_alive_matrix(model, 39, 10, 1), uvp::invalid_argument,
                               "recency_points = 1");
  const auto log = uvp::parse_cdnow_transactions("1 19970101 1 10\n1 19970105 1 10\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::track_repeat_transactions(log, uvp::Date::from_ymd(1997, 2, 1), uvp::Date::from_ymd(1997, 1, 1)),
      uvp::invalid_argument, "holdout_end");
  UVP_CHECK_THROWS_WITH_SUBSTR(
      uvp::track_repeat_transactions(log, uvp::Date::from_ymd(1996, 2, 1), uvp::Date::from_ymd(1997, 3, 1)),
      uvp::invalid_argument, "no transaction on or before calibration_end");
  CHECK_THROWS_AS(uvp::BgNbd().expected_purchases(1), uvp::not_fitted_error);
}

TEST_CASE("SVG bars and heatmap: one rect per bar and per finite cell, written atomically") {
  const std::vector<double> x{0, 1, 2}, a{5, 3, 1}, m{4.5, 3.2, 0.9};
  uvp::SvgPlot plot("Period transactions", "repeat transactions", "customers");
  plot.add_bars(uvp::Span<const double>(x), uvp::Span<const double>(a), "actual")
      .add_bars(uvp::Span<const double>(x), uvp::Span<const double>(m), "model");
  const std::string svg = plot.to_svg();
  // 6 bars + 2 legend swatches, plus the background, the clip path and the frame.
  CHECK(count_of(svg, "<rect") == 6 + 2 + 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.add_bars(uvp::Span<const double>(x), uvp::Span<const double>(a), "w", 0),
                               uvp::invalid_argument, "width");

  const uvp::BgNbd model(published);
  const auto pa = uvp::probability_alive_matrix(model, 39.0, 5, 4);
  uvp::SvgHeatmap heat("P(alive)", "recency", "frequency");
  heat.values(uvp::Span<const double>(pa.recency), uvp::Span<const double>(pa.frequency), pa.values);
  const std::string hs = heat.to_svg();
  // 6 x 4 cells, 3 of them NaN (x = 0, t_x > 0); + 20 colour-bar steps + background + frame.
  CHECK(count_of(hs, "<rect") == 21 + 20 + 2);
  CHECK(hs.find("NaN") == std::string::npos);
  CHECK(hs.find("nan") == std::string::npos);
  uvp::Matrix<double> wrong(2, 2);
  wrong.setZero();
  CHECK_THROWS_AS(heat.values(uvp::Span<const double>(pa.recency), uvp::Span<const double>(pa.frequency), wrong),
                  uvp::shape_error);
  const std::string path = (std::filesystem::temp_directory_path() / "uvp_test_clv_diagnostics_heat.svg").string();
  heat.save(path);
  std::ifstream in(path);
  const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(back == hs);
  std::filesystem::remove(path);
}
