// SPDX-License-Identifier: Apache-2.0
// Tests of uvp/metrics/bootstrap.hpp: exact agreement with uvp::roc_auc on materialised
// resamples, determinism, interval sanity, the DeLong standard error (scipy fixture), errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metrics_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/random.hpp"
#include "uvp/metrics/bootstrap.hpp"
#include "uvp/metrics/ranking.hpp"

namespace {

/// Columns of a headed CSV of numbers written by tests/fixtures/make_bootstrap_fixtures.py.
std::vector<std::vector<double>> read_csv_columns(const std::string& name) {
  const std::string path = uvp_test::fixture_path("metrics/" + name);
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::vector<double>> cols;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string f;
    std::size_t c = 0;
    for (; std::getline(fields, f, ','); ++c) {
      if (cols.size() <= c) cols.emplace_back();
      cols[c].push_back(std::stod(f));
    }
  }
  REQUIRE_MESSAGE(!cols.empty(), "empty fixture " << path);
  return cols;
}

/// Typical data: ~30 % positives; a is informative, b is a noisier copy sharing a's noise.
struct Synthetic {
  std::vector<double> y, a, b;
};
Synthetic synthetic(std::size_t n, std::uint64_t seed, double signal_a, double signal_b) {
  uvp::Rng rng(seed);
  Synthetic d;
  for (std::size_t i = 0; i < n; ++i) {
    const double y = rng.uniform() < 0.3 ? 1.0 : 0.0;
    const double shared = rng.normal();
    d.y.push_back(y);
    d.a.push_back(signal_a * y + shared + 0.5 * rng.normal());
    // Rounded: many ties, which the fast path must count 1/2 like roc_auc.
    d.b.push_back(std::round(4 * (signal_b * y + shared + 0.5 * rng.normal())) / 4);
  }
  return d;
}

uvp::Span<const double> sp(const std::vector<double>& v) { return uvp::Span<const double>(v); }

}  // namespace

TEST_CASE("paired_bootstrap_roc_auc_difference: estimate is roc_auc(a) - roc_auc(b) exactly") {
  const Synthetic d = synthetic(3000, 1, 1.0, 0.5);
  uvp::BootstrapOptions o;
  o.resamples = 200;
  const auto r = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  CHECK(r.estimate == uvp::roc_auc(sp(d.y), sp(d.a)) - uvp::roc_auc(sp(d.y), sp(d.b)));
  CHECK(r.resamples == 200);
  CHECK(r.confidence == 0.95);
  // Interval sanity on typical data: ordered, contains the estimate, SE positive.
  CHECK(r.lower <= r.estimate);
  CHECK(r.estimate <= r.upper);
  CHECK(r.lower < r.upper);
  CHECK(r.standard_error > 0);
}

TEST_CASE("the fast resample AUC equals uvp::roc_auc on the materialised resample") {
  const Synthetic d = synthetic(1500, 2, 0.8, 0.4);
  const auto n = uvp::index(d.y.size());
  for (const bool stratified : {true, false}) {
    INFO("stratified = " << stratified);
    const uvp::detail::BootstrapSampler sampler(d.y.data(), n, stratified);
    const uvp::detail::RankedScores ra(d.y.data(), d.a.data(), n), rb(d.y.data(), d.b.data(), n);
    std::vector<std::uint32_t> counts(d.y.size());
    for (uvp::index r = 0; r < 6; ++r) {
      const auto [n_neg, n_pos] = sampler.draw(77, r, counts.data());
      // The same indices, written out one customer per draw.
      std::vector<double> y, a, b;
      uvp::index drawn = 0, drawn_pos = 0;
      for (std::size_t i = 0; i < counts.size(); ++i)
        for (std::uint32_t c = 0; c < counts[i]; ++c) {
          y.push_back(d.y[i]);
          a.push_back(d.a[i]);
          b.push_back(d.b[i]);
          ++drawn;
          drawn_pos += d.y[i] == 1.0;
        }
      CHECK(drawn == n);
      CHECK(drawn_pos == n_pos);
      CHECK(n - drawn_pos == n_neg);
      if (stratified) CHECK(n_pos == sampler.n_pos());
      CHECK(uvp::detail::resample_roc_auc(ra, counts.data(), n_neg, n_pos) == uvp::roc_auc(sp(y), sp(a)));
      CHECK(uvp::detail::resample_roc_auc(rb, counts.data(), n_neg, n_pos) == uvp::roc_auc(sp(y), sp(b)));
    }
  }
}

TEST_CASE("the generic paired bootstrap with roc_auc reproduces the fast path; float inputs") {
  const Synthetic d = synthetic(800, 3, 0.7, 0.3);
  for (const bool stratified : {true, false}) {
    INFO("stratified = " << stratified);
    uvp::BootstrapOptions o;
    o.resamples = 60;
    o.stratified = stratified;
    o.confidence = 0.9;
    const auto fast = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
    const auto generic = uvp::paired_bootstrap_difference(
        sp(d.y), sp(d.a), sp(d.b),
        [](uvp::Span<const double> y, uvp::Span<const double> s) { return uvp::roc_auc(y, s); }, o);
    CHECK(generic.estimate == fast.estimate);
    CHECK(generic.lower == fast.lower);
    CHECK(generic.upper == fast.upper);
    CHECK(generic.standard_error == fast.standard_error);
    CHECK(generic.confidence == 0.9);
  }
  // float inputs (the default options: 1000 stratified resamples): the estimate is the difference
  // of float roc_aucs.
  const std::vector<float> yf(d.y.begin(), d.y.end()), af(d.a.begin(), d.a.end()), bf(d.b.begin(), d.b.end());
  const auto rf = uvp::paired_bootstrap_roc_auc_difference(yf.data(), af.data(), bf.data(), uvp::index(yf.size()));
  CHECK(rf.estimate == uvp::roc_auc(yf.data(), af.data(), uvp::index(yf.size())) -
                           uvp::roc_auc(yf.data(), bf.data(), uvp::index(yf.size())));
  CHECK(rf.resamples == 1000);
}

TEST_CASE("paired bootstrap: deterministic by seed, independent of the thread count") {
  const Synthetic d = synthetic(2000, 4, 1.0, 0.6);
  uvp::BootstrapOptions o;
  o.resamples = 300;
  o.seed = 123;
  const int threads = uvp::num_threads();
  const auto r1 = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  const auto r2 = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  CHECK(r1.lower == r2.lower);
  CHECK(r1.upper == r2.upper);
  CHECK(r1.standard_error == r2.standard_error);
  if (uvp::has_openmp) {
    uvp::set_num_threads(threads == 1 ? 3 : 1);
    const auto r3 = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
    uvp::set_num_threads(threads);
    CHECK(r3.lower == r1.lower);
    CHECK(r3.upper == r1.upper);
    CHECK(r3.standard_error == r1.standard_error);
  }
  o.seed = 124;
  const auto r4 = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  CHECK(r4.estimate == r1.estimate);
  CHECK(r4.standard_error != r1.standard_error);
}

TEST_CASE("paired bootstrap: a clearly better model excludes 0; identical scores give [0, 0]") {
  const Synthetic d = synthetic(2000, 5, 2.0, 0.2);
  uvp::BootstrapOptions o;
  o.resamples = 400;
  const auto better = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  CHECK(better.estimate > 0.1);
  CHECK(better.lower > 0);
  const auto worse = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.b), sp(d.a), o);
  CHECK(worse.upper < 0);
  CHECK(worse.estimate == -better.estimate);
  // Same resamples, every difference negated (up to the rounding of the quantile positions).
  CHECK(worse.lower == doctest::Approx(-better.upper).epsilon(1e-12));
  CHECK(worse.standard_error == doctest::Approx(better.standard_error).epsilon(1e-12));

  for (const bool stratified : {true, false}) {
    o.stratified = stratified;
    const auto same = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.a), o);
    CHECK(same.estimate == 0);
    CHECK(same.lower == 0);
    CHECK(same.upper == 0);
    CHECK(same.standard_error == 0);
  }

  // A single resample: the interval collapses onto its difference, the SE is 0.
  o.resamples = 1;
  const auto one = uvp::paired_bootstrap_roc_auc_difference(sp(d.y), sp(d.a), sp(d.b), o);
  CHECK(one.lower == one.upper);
  CHECK(one.standard_error == 0);
}

TEST_CASE("paired bootstrap SE agrees with DeLong's standard error (scipy fixture)") {
  const auto data = read_csv_columns("bootstrap_data.csv");
  const auto ref = read_csv_columns("bootstrap_delong.csv");
  REQUIRE(data.size() == 3);
  REQUIRE(ref.size() == 4);
  const auto& y = data[0];
  const auto& a = data[1];
  const auto& b = data[2];
  REQUIRE(y.size() == 2000);
  UVP_CHECK_CLOSE(uvp::roc_auc(sp(y), sp(a)), ref[0][0], 1e-12);
  UVP_CHECK_CLOSE(uvp::roc_auc(sp(y), sp(b)), ref[1][0], 1e-12);

  uvp::BootstrapOptions o;
  o.resamples = 2000;  // the SE of an SE estimate is ~ SE / sqrt(2 * 2000): 1.6 %
  o.seed = 2026;
  for (const bool stratified : {true, false}) {
    INFO("stratified = " << stratified);
    o.stratified = stratified;
    const auto r = uvp::paired_bootstrap_roc_auc_difference(sp(y), sp(a), sp(b), o);
    UVP_CHECK_CLOSE(r.estimate, ref[2][0], 1e-12);
    const double delong = ref[3][0];
    INFO("bootstrap SE " << r.standard_error << ", DeLong SE " << delong);
    CHECK(std::abs(r.standard_error - delong) < 0.15 * delong);
    // The percentile interval is close to the normal one, estimate +- 1.96 SE.
    CHECK(std::abs(r.lower - (r.estimate - 1.96 * delong)) < 0.5 * delong);
    CHECK(std::abs(r.upper - (r.estimate + 1.96 * delong)) < 0.5 * delong);
  }
}

TEST_CASE("paired bootstrap: bad input raises uvp errors naming function, argument and value") {
  const std::vector<double> y{0, 1, 0, 1}, a{0.1, 0.9, 0.2, 0.8}, b{0.3, 0.4, 0.5, 0.6};
  const std::vector<double> short_b{0.1, 0.2, 0.3};
  uvp::BootstrapOptions o;
  o.resamples = 10;
  const auto call = [&](const std::vector<double>& yy, const std::vector<double>& aa,
                        const std::vector<double>& bb, const uvp::BootstrapOptions& oo) {
    return uvp::paired_bootstrap_roc_auc_difference(sp(yy), sp(aa), sp(bb), oo);
  };
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, a, short_b, o), uvp::shape_error,
                               "uvp::paired_bootstrap_roc_auc_difference: score_b has size 3, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, short_b, b, o), uvp::shape_error, "score_a has size 3, expected 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(call({}, {}, {}, o), uvp::invalid_argument, "y_true is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(call({0, 2, 0, 1}, a, b, o), uvp::invalid_argument,
                               "y_true[1] = 2 is not a binary label");
  UVP_CHECK_THROWS_WITH_SUBSTR(call({1, 1, 1, 1}, a, b, o), uvp::invalid_argument,
                               "only one class present in y_true (all 4 labels are 1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, a, {0.3, NAN, 0.5, 0.6}, o), uvp::invalid_argument,
                               "score_b has a non-finite value (nan) at flat index 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, {INFINITY, 0.9, 0.2, 0.8}, b, o), uvp::invalid_argument,
                               "score_a has a non-finite value (inf) at flat index 0");
  for (const double c : {0.0, 1.0, -0.5, 1.5, double(NAN)}) {
    uvp::BootstrapOptions bad = o;
    bad.confidence = c;
    UVP_CHECK_THROWS_WITH_SUBSTR(call(y, a, b, bad), uvp::invalid_argument, "confidence must be in (0, 1), got ");
  }
  uvp::BootstrapOptions bad = o;
  bad.confidence = 1.5;
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, a, b, bad), uvp::invalid_argument,
                               "uvp::paired_bootstrap_roc_auc_difference: confidence must be in (0, 1), got 1.5");
  bad = o;
  bad.resamples = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(call(y, a, b, bad), uvp::invalid_argument,
                               "uvp::paired_bootstrap_roc_auc_difference: resamples must be >= 1, got 0");
  const auto metric = [](uvp::Span<const double> yy, uvp::Span<const double> s) { return uvp::roc_auc(yy, s); };
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::paired_bootstrap_difference(sp(y), sp(a), sp(short_b), metric, o),
                               uvp::shape_error, "uvp::paired_bootstrap_difference: score_b has size 3, expected 4");
  // Tiny data, unstratified: one-class resamples are redrawn, never returned.
  uvp::BootstrapOptions tiny = o;
  tiny.stratified = false;
  tiny.resamples = 200;
  const auto r = uvp::paired_bootstrap_roc_auc_difference(sp(std::vector<double>{0, 1}), sp(std::vector<double>{0, 1}),
                                                          sp(std::vector<double>{1, 0}), tiny);
  CHECK(r.estimate == 1.0);
  CHECK(r.lower == 1.0);  // every two-class resample of 2 customers is {0, 1}: AUC 1 vs 0
  CHECK(r.upper == 1.0);
}
