// SPDX-License-Identifier: Apache-2.0
// Tests of train_test_split, stratified_train_test_split (sizes and per-class counts as
// scikit-learn, tests/fixtures/make_data_fixtures.py), take_rows and take.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/data/split.hpp"

namespace {

std::vector<std::string> fixture_lines(const std::string& name) {
  std::ifstream in(uvp_test::fixture_path("data/" + name));
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  return lines;
}

/// train and test together hold 0..n-1 exactly once.
void check_partition(const uvp::TrainTestIndices& s, uvp::index n) {
  std::vector<uvp::index> all(s.train);
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  std::vector<uvp::index> expect(static_cast<std::size_t>(n));
  std::iota(expect.begin(), expect.end(), uvp::index(0));
  REQUIRE(all == expect);
}

std::vector<uvp::index> class_counts(const std::vector<int>& y, const std::vector<uvp::index>& idx, int k) {
  std::vector<uvp::index> c(std::size_t(k), 0);
  for (uvp::index i : idx) ++c[std::size_t(y[std::size_t(i)])];
  return c;
}

}  // namespace

TEST_CASE("test sizes are ceil(test_fraction * n) exactly as sklearn's train_test_split") {
  for (const auto& line : fixture_lines("split_sizes.txt")) {
    CAPTURE(line);
    std::istringstream ls(line);
    uvp::index n, n_train, n_test;
    double t;
    ls >> n >> t >> n_train >> n_test;
    CHECK(uvp::test_size(n, t) == n_test);
    const auto s = uvp::train_test_split(n, t, 7);
    CHECK(uvp::index(s.train.size()) == n_train);
    CHECK(uvp::index(s.test.size()) == n_test);
    check_partition(s, n);
  }
  CHECK(uvp::test_size(100, 0.07) == 8);  // 0.07 * 100 = 7.000000000000001 in double
}

TEST_CASE("train_test_split: deterministic per seed, shuffled, or in order without shuffle") {
  const auto a = uvp::train_test_split(1000, 0.25, 42);
  const auto b = uvp::train_test_split(1000, 0.25, 42);
  const auto c = uvp::train_test_split(1000, 0.25, 43);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  CHECK(a.test != c.test);
  CHECK_FALSE(std::is_sorted(a.train.begin(), a.train.end()));
  check_partition(a, 1000);
  // The same seed gives the same split on every platform: pin the first test rows.
  const auto pinned = uvp::train_test_split(10, 0.3, 1);
  check_partition(pinned, 10);
  CHECK(pinned.test == std::vector<uvp::index>{3, 8, 0});

  const auto o = uvp::train_test_split(10, 0.3, 42, false);
  CHECK(o.train == std::vector<uvp::index>{0, 1, 2, 3, 4, 5, 6});
  CHECK(o.test == std::vector<uvp::index>{7, 8, 9});
}

TEST_CASE("stratified split: per-class test counts as sklearn's StratifiedShuffleSplit") {
  for (const auto& line : fixture_lines("stratified_counts.txt")) {
    CAPTURE(line);
    std::istringstream ls(line);
    double t;
    int exact, k;
    ls >> t >> exact >> k;
    std::vector<uvp::index> counts(static_cast<std::size_t>(k)), ref(static_cast<std::size_t>(k));
    for (auto& c : counts) ls >> c;
    for (auto& c : ref) ls >> c;
    std::vector<int> y;
    for (int c = 0; c < k; ++c) y.insert(y.end(), std::size_t(counts[std::size_t(c)]), c);
    const auto n = uvp::index(y.size());
    // Labels interleaved, not grouped, so the split has to find the classes.
    uvp::Rng mix(5);
    mix.shuffle(y.begin(), y.end());
    std::set<std::vector<uvp::index>> seen;
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      const auto s = uvp::stratified_train_test_split(y, t, seed);
      check_partition(s, n);
      CHECK(uvp::index(s.test.size()) == uvp::test_size(n, t));
      const auto tc = class_counts(y, s.test, k);
      const auto rc = class_counts(y, s.train, k);
      for (int c = 0; c < k; ++c) CHECK(tc[std::size_t(c)] + rc[std::size_t(c)] == counts[std::size_t(c)]);
      if (exact) {
        CHECK(tc == ref);
      } else {
        // A tie: each class gets sklearn's count or one fewer / more, never further off.
        for (int c = 0; c < k; ++c) CHECK(std::abs(tc[std::size_t(c)] - ref[std::size_t(c)]) <= 1);
      }
      seen.insert(tc);
    }
    if (!exact) CHECK(seen.size() > 1);  // ties are broken at random, as in sklearn
  }
}

TEST_CASE("stratified split: Online Shoppers' class counts give 382 TRUE / 2084 FALSE test rows") {
  std::vector<std::string> y(10422, "FALSE");
  y.insert(y.begin() + 5000, 1908, "TRUE");
  const auto s = uvp::stratified_train_test_split(y, 0.2, 2024);
  check_partition(s, 12330);
  const auto in_test = std::count_if(s.test.begin(), s.test.end(),
                                     [&](uvp::index i) { return y[std::size_t(i)] == "TRUE"; });
  CHECK(in_test == 382);
  CHECK(s.test.size() == 2466);
  const auto again = uvp::stratified_train_test_split(y, 0.2, 2024);
  CHECK(again.train == s.train);
  CHECK(again.test == s.test);
  CHECK(uvp::stratified_train_test_split(y, 0.2, 2025).test != s.test);
}

TEST_CASE("stratified split takes Eigen vectors of 0/1 floats") {
  uvp::Vector<float> y(10);
  y << 0, 1, 0, 1, 0, 0, 1, 0, 1, 0;
  const auto s = uvp::stratified_train_test_split(y, 0.2, 3);
  check_partition(s, 10);
  int ones = 0;
  for (uvp::index i : s.test) ones += y[i] == 1.0f;
  // n_train = 8: class 0 gets floor(4.8) + 1 (the larger remainder), class 1 floor(3.2) = 3.
  CHECK(s.test.size() == 2);
  CHECK(ones == 1);
}

TEST_CASE("split errors name the argument and the value") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::train_test_split(10, 0.0), uvp::invalid_argument,
                               "uvp::train_test_split: test_fraction must be in (0, 1), got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::train_test_split(10, 1.0), uvp::invalid_argument,
                               "test_fraction must be in (0, 1), got 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::train_test_split(10, std::nan("")), uvp::invalid_argument,
                               "test_fraction must be in (0, 1), got nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::train_test_split(0, 0.2), uvp::invalid_argument,
                               "uvp::train_test_split: the data (n) is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::train_test_split(1, 0.5), uvp::invalid_argument,
                               "uvp::train_test_split: with n = 1, ceil(test_fraction * n) = 1 leaves the train part empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::test_size(3, 1.5), uvp::invalid_argument,
                               "uvp::test_size: test_fraction must be in (0, 1), got 1.5");

  const std::vector<std::string> lonely{"a", "a", "b", "a", "c", "c"};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::stratified_train_test_split(lonely, 0.5), uvp::invalid_argument,
                               "uvp::stratified_train_test_split: class 'b' has only 1 member; every class needs at least 2");
  const std::vector<int> three(30, 0);
  std::vector<int> y3(three);
  for (int i = 0; i < 30; ++i) y3[std::size_t(i)] = i % 3;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::stratified_train_test_split(y3, 0.05), uvp::invalid_argument,
                               "uvp::stratified_train_test_split: the test part would have 2 rows, fewer than the 3 classes");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::stratified_train_test_split(y3, 0.95), uvp::invalid_argument,
                               "the train part would have 1 rows, fewer than the 3 classes");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::stratified_train_test_split(std::vector<int>{}, 0.5), uvp::invalid_argument,
                               "uvp::stratified_train_test_split: the data (n) is empty");
  std::vector<double> nan_labels{0, 1, std::numeric_limits<double>::quiet_NaN(), 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::stratified_train_test_split(nan_labels, 0.5), uvp::invalid_argument,
                               "uvp::stratified_train_test_split: labels[2] is NaN");
}

TEST_CASE_TEMPLATE("take_rows and take gather in index order", T, float, double) {
  uvp::Matrix<T> X(4, 3);
  X << 0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32;
  const std::vector<uvp::index> idx{3, 0, 3};
  const uvp::Matrix<T> R = uvp::take_rows(X, idx);
  uvp::Matrix<T> expect(3, 3);
  expect << 30, 31, 32, 0, 1, 2, 30, 31, 32;
  CHECK(R == expect);
  uvp::Vector<T> y(4);
  y << 5, 6, 7, 8;
  const uvp::Vector<T> ty = uvp::take(y, idx);
  CHECK(ty == (uvp::Vector<T>(3) << 8, 5, 8).finished());
  const std::vector<std::string> names{"a", "b", "c", "d"};
  CHECK(uvp::take(names, idx) == std::vector<std::string>{"d", "a", "d"});
  CHECK(uvp::take_rows(X, std::vector<uvp::index>{}).rows() == 0);

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::take_rows(X, std::vector<uvp::index>{1, 4}), uvp::out_of_range_error,
                               "uvp::take_rows: idx[1] = 4 out of range [0, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::take(y, std::vector<uvp::index>{-1}), uvp::out_of_range_error,
                               "uvp::take: idx[0] = -1 out of range [0, 4)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::take(names, std::vector<uvp::index>{9}), uvp::out_of_range_error,
                               "uvp::take: idx[0] = 9 out of range [0, 4)");
}
