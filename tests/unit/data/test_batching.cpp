// SPDX-License-Identifier: Apache-2.0
// Tests of MinibatchIterator, for_each_minibatch, gather_rows and gather: every row once per
// epoch, reshuffling, determinism, and no allocation per batch.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "support/test_support.hpp"
// Counts operator new calls (std::vector and friends); Eigen allocates through malloc, so its
// buffers are checked by pointer identity instead.
#include "unit/optim/alloc_counter.hpp"
#include "uvp/data/batching.hpp"

using Idx = uvp::index;
using uvp::Span;

namespace {

std::vector<Idx> one_epoch(uvp::MinibatchIterator& it, std::vector<Idx>* sizes = nullptr) {
  std::vector<Idx> rows;
  for (Span<const Idx> b; it.next(b);) {
    rows.insert(rows.end(), b.begin(), b.end());
    if (sizes) sizes->push_back(b.size());
  }
  return rows;
}

std::vector<Idx> iota(Idx n) {
  std::vector<Idx> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), Idx(0));
  return v;
}

}  // namespace

TEST_CASE("every row exactly once per epoch; the last partial batch is kept; orders change per epoch") {
  uvp::MinibatchOptions o;
  o.batch_size = 3;
  uvp::MinibatchIterator it(10, o);
  CHECK(it.size() == 10);
  CHECK(it.batches_per_epoch() == 4);
  std::vector<std::vector<Idx>> orders;
  for (int epoch = 0; epoch < 5; ++epoch) {
    std::vector<Idx> sizes;
    std::vector<Idx> rows = one_epoch(it, &sizes);
    CHECK(sizes == std::vector<Idx>{3, 3, 3, 1});
    orders.push_back(rows);
    std::sort(rows.begin(), rows.end());
    CHECK(rows == iota(10));
  }
  CHECK(it.epoch() == 5);
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);
  CHECK(orders[0] != iota(10));

  // Same seed, same sequence of orders; another seed, another.
  uvp::MinibatchIterator again(10, o);
  for (int epoch = 0; epoch < 5; ++epoch) CHECK(one_epoch(again) == orders[std::size_t(epoch)]);
  o.seed = 99;
  uvp::MinibatchIterator other(10, o);
  CHECK(one_epoch(other) != orders[0]);
}

TEST_CASE("no shuffle: rows in order; drop_last drops the short batch; batch larger than n") {
  uvp::MinibatchOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  uvp::MinibatchIterator it(10, o);
  std::vector<Idx> sizes;
  CHECK(one_epoch(it, &sizes) == iota(10));
  CHECK(sizes == std::vector<Idx>{4, 4, 2});
  CHECK(one_epoch(it) == iota(10));

  o.drop_last = true;
  uvp::MinibatchIterator d(10, o);
  CHECK(d.batches_per_epoch() == 2);
  sizes.clear();
  CHECK(one_epoch(d, &sizes) == iota(8));
  CHECK(sizes == std::vector<Idx>{4, 4});

  o.drop_last = false;
  o.batch_size = 100;
  uvp::MinibatchIterator big(7, o);
  sizes.clear();
  CHECK(one_epoch(big, &sizes) == iota(7));
  CHECK(sizes == std::vector<Idx>{7});
}

TEST_CASE("start_epoch abandons the rest of an epoch; for_each_minibatch runs whole epochs") {
  uvp::MinibatchOptions o;
  o.batch_size = 2;
  uvp::MinibatchIterator it(5, o);
  Span<const Idx> b;
  REQUIRE(it.next(b));
  it.start_epoch();
  CHECK(it.epoch() == 2);
  std::vector<Idx> rows = one_epoch(it);
  std::sort(rows.begin(), rows.end());
  CHECK(rows == iota(5));

  std::vector<Idx> seen;
  const Idx batches = uvp::for_each_minibatch(it, [&](Span<const Idx> r) { seen.insert(seen.end(), r.begin(), r.end()); });
  CHECK(batches == 3);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == iota(5));
  // Returning false stops early.
  Idx calls = 0;
  CHECK(uvp::for_each_minibatch(it, [&](Span<const Idx>) { return ++calls < 2; }) == 2);
  CHECK(calls == 2);

  // The free flavour: in order without an Rng, shuffled by one.
  seen.clear();
  CHECK(uvp::for_each_minibatch(7, 3, nullptr, [&](Span<const Idx> r) { seen.insert(seen.end(), r.begin(), r.end()); }) == 3);
  CHECK(seen == iota(7));
  uvp::Rng rng(1);
  seen.clear();
  uvp::for_each_minibatch(7, 3, &rng, [&](Span<const Idx> r) { seen.insert(seen.end(), r.begin(), r.end()); });
  CHECK(seen != iota(7));
  std::sort(seen.begin(), seen.end());
  CHECK(seen == iota(7));
}

TEST_CASE_TEMPLATE("gather_rows / gather copy the batch rows into a reused buffer", T, float, double) {
  uvp::Matrix<T> X(6, 3);
  for (Idx i = 0; i < X.size(); ++i) X.data()[i] = T(i);
  uvp::Vector<T> y(6);
  y << 0, 10, 20, 30, 40, 50;
  uvp::Matrix<T> xb;
  uvp::Vector<T> yb;
  const std::vector<Idx> rows{4, 1, 5};
  auto xv = uvp::gather_rows(X, rows, xb);
  auto yv = uvp::gather(y, rows, yb);
  CHECK(xv.rows() == 3);
  CHECK(xv.cols() == 3);
  CHECK(xv.row(0) == X.row(4));
  CHECK(xv.row(1) == X.row(1));
  CHECK(xv.row(2) == X.row(5));
  CHECK(yv == (uvp::Vector<T>(3) << 40, 10, 50).finished());
  // A smaller batch reuses the buffer (same memory); a larger one grows it.
  const T* before = xb.data();
  const T* ybefore = yb.data();
  auto small = uvp::gather_rows(X, std::vector<Idx>{2}, xb);
  auto ysmall = uvp::gather(y, std::vector<Idx>{2}, yb);
  CHECK(xb.data() == before);
  CHECK(yb.data() == ybefore);
  CHECK(small.rows() == 1);
  CHECK(small.row(0) == X.row(2));
  CHECK(ysmall[0] == T(20));
  auto all = uvp::gather_rows(X, iota(6), xb);
  CHECK(xb.rows() == 6);
  CHECK(all == X);

  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gather_rows(X, std::vector<Idx>{0, 6}, xb), uvp::out_of_range_error,
                               "uvp::gather_rows: idx[1] = 6 out of range [0, 6)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::gather(y, std::vector<Idx>{-2}, yb), uvp::out_of_range_error,
                               "uvp::gather: idx[0] = -2 out of range [0, 6)");
}

TEST_CASE("a training loop allocates nothing per batch after setup") {
  const Idx n = 1000, d = 8;
  uvp::Matrix<float> X = uvp::Matrix<float>::Random(n, d);
  uvp::Vector<float> y = uvp::Vector<float>::Random(n);
  uvp::MinibatchOptions o;
  o.batch_size = 64;  // 1000 = 15 * 64 + 40: the last batch is partial
  uvp::MinibatchIterator batches(n, o);
  uvp::Matrix<float> xb(o.batch_size, d);
  uvp::Vector<float> yb(o.batch_size);
  const float* xp = xb.data();
  const float* yp = yb.data();
  double checksum = 0;
  Idx visited = 0;
  const long news_before = uvp_test::allocations.load();
  for (int epoch = 0; epoch < 3; ++epoch)
    for (Span<const Idx> rows; batches.next(rows);) {
      const auto xv = uvp::gather_rows(X, rows, xb);
      const auto yv = uvp::gather(y, rows, yb);
      checksum += double(xv.sum()) + double(yv.sum());
      visited += rows.size();
    }
  const long news_after = uvp_test::allocations.load();
  CHECK(news_after == news_before);
  {
    std::vector<Idx> probe(3);  // the counter does see allocations
    CHECK(uvp_test::allocations.load() == news_after + 1);
  }
  CHECK(xb.data() == xp);
  CHECK(yb.data() == yp);
  CHECK(visited == 3 * n);
  CHECK(checksum == doctest::Approx(3.0 * (double(X.sum()) + double(y.sum()))).epsilon(1e-4));
}

TEST_CASE("batching errors") {
  uvp::MinibatchOptions o;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::MinibatchIterator(0, o), uvp::invalid_argument,
                               "uvp::MinibatchIterator: the data (n) is empty");
  o.batch_size = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::MinibatchIterator(5, o), uvp::invalid_argument,
                               "uvp::MinibatchIterator: options.batch_size must be > 0, got 0");
  o.batch_size = 6;
  o.drop_last = true;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::MinibatchIterator(5, o), uvp::invalid_argument,
                               "uvp::MinibatchIterator: options.batch_size = 6 exceeds n = 5 with drop_last");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::for_each_minibatch(5, -1, nullptr, [](Span<const Idx>) {}),
                               uvp::invalid_argument, "uvp::for_each_minibatch: batch_size must be > 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::for_each_minibatch(0, 2, nullptr, [](Span<const Idx>) {}),
                               uvp::invalid_argument, "uvp::for_each_minibatch: the data (n) is empty");
}
