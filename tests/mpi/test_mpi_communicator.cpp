// SPDX-License-Identifier: Apache-2.0
// uvp::mpi::Communicator's collectives: results against sums worked out by hand, on any rank count.
// mpi-ranks: 1 2 3
#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "uvp/mpi/communicator.hpp"

using uvp::Span;
using uvp::mpi::Communicator;

TEST_CASE("mpi communicator: rank, size, the world by default") {
  Communicator c;
  int world_size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  CHECK(c.size() == world_size);
  CHECK(c.rank() >= 0);
  CHECK(c.rank() < c.size());
  CHECK(c.get() == MPI_COMM_WORLD);
}

TEST_CASE_TEMPLATE("mpi communicator: allreduce_sum, ordered sum, max", T, float, double, std::int64_t, int, char) {
  Communicator c;
  const int r = c.rank(), p = c.size();
  std::vector<T> x{T(r + 1), T(2 * r), T(-r)};
  c.allreduce_sum(Span<T>(x));
  CHECK(x[0] == T(p * (p + 1) / 2));
  CHECK(x[1] == T(p * (p - 1)));
  CHECK(x[2] == T(-p * (p - 1) / 2));

  std::vector<T> y{T(r + 1), T(3)};
  c.allreduce_sum_ordered(Span<T>(y));
  CHECK(y[0] == T(p * (p + 1) / 2));
  CHECK(y[1] == T(3 * p));

  std::vector<T> m{T(r), T(-r)};
  c.allreduce_max(Span<T>(m));
  CHECK(m[0] == T(p - 1));
  CHECK(m[1] == T(0));
}

TEST_CASE("mpi communicator: the ordered sum adds in rank order, the same bits on every rank") {
  Communicator c;
  // 1e16 + 1 + ... loses the ones when the big term comes first: the order is visible in the result.
  const int r = c.rank(), p = c.size();
  std::vector<double> x{r == 0 ? 1e16 : 1.0, r == p - 1 ? -1e16 : 1.0};
  std::vector<double> expect(2, 0.0);
  for (int q = 0; q < p; ++q) {
    expect[0] += q == 0 ? 1e16 : 1.0;
    expect[1] += q == p - 1 ? -1e16 : 1.0;
  }
  c.allreduce_sum_ordered(Span<double>(x));
  CHECK(x[0] == expect[0]);
  CHECK(x[1] == expect[1]);
  std::vector<double> gathered = c.allgatherv(Span<const double>(x));
  REQUIRE(gathered.size() == std::size_t(2 * p));
  for (int q = 0; q < p; ++q) {
    CHECK(gathered[std::size_t(2 * q)] == x[0]);
    CHECK(gathered[std::size_t(2 * q + 1)] == x[1]);
  }
}

TEST_CASE("mpi communicator: fold_in_rank_order applies each rank's step in rank order; allgather") {
  Communicator c;
  // acc -> 10 acc + rank + 1 along the ranks: the digits 1, 2, 3 ... spell the order.
  std::vector<std::int64_t> acc{0, 7};
  if (c.rank() > 0) acc = {-5, -5};  // overwritten by what rank r-1 sends
  c.fold_in_rank_order(Span<std::int64_t>(acc), [&](Span<std::int64_t> a) { a[0] = 10 * a[0] + c.rank() + 1; });
  std::int64_t expect = 0;
  for (int q = 0; q < c.size(); ++q) expect = 10 * expect + q + 1;
  CHECK(acc[0] == expect);
  CHECK(acc[1] == 7);
  const double mine[2] = {double(c.rank()), -1.0};
  std::vector<double> all(std::size_t(2 * c.size()));
  c.allgather(Span<const double>(mine, 2), Span<double>(all));
  for (int q = 0; q < c.size(); ++q) {
    CHECK(all[std::size_t(2 * q)] == double(q));
    CHECK(all[std::size_t(2 * q + 1)] == -1.0);
  }
}

TEST_CASE("mpi communicator: broadcast, allgatherv of unequal lengths, alltoallv, barrier") {
  Communicator c;
  const int r = c.rank(), p = c.size();
  std::vector<float> b(3, float(r));
  c.broadcast(Span<float>(b), p - 1);
  CHECK(b == std::vector<float>(3, float(p - 1)));

  // rank q sends q+1 copies of q: the result is 0, 1, 1, 2, 2, 2, ...
  std::vector<std::int64_t> mine(std::size_t(r + 1), std::int64_t(r));
  const std::vector<std::int64_t> all = c.allgatherv(Span<const std::int64_t>(mine));
  std::vector<std::int64_t> expect;
  for (int q = 0; q < p; ++q) expect.insert(expect.end(), std::size_t(q + 1), std::int64_t(q));
  CHECK(all == expect);

  std::vector<char> text(std::size_t(r), 'a');
  std::vector<char> gathered_text;
  std::vector<int> counts;
  c.allgatherv(Span<const char>(text), gathered_text, counts);
  CHECK(gathered_text.size() == std::size_t(p * (p - 1) / 2));
  REQUIRE(counts.size() == std::size_t(p));
  for (int q = 0; q < p; ++q) CHECK(counts[std::size_t(q)] == q);

  // Rank r sends the value 100*r + d, d+1 times, to rank d.
  std::vector<int> send, send_counts;
  for (int d = 0; d < p; ++d) {
    send_counts.push_back(d + 1);
    send.insert(send.end(), std::size_t(d + 1), 100 * r + d);
  }
  std::vector<int> recv_counts;
  const std::vector<int> got = c.alltoallv(Span<const int>(send), send_counts, &recv_counts);
  REQUIRE(got.size() == std::size_t(p * (r + 1)));
  CHECK(recv_counts == std::vector<int>(std::size_t(p), r + 1));
  for (int q = 0; q < p; ++q)
    for (int k = 0; k <= r; ++k) CHECK(got[std::size_t(q * (r + 1) + k)] == 100 * q + r);
  c.barrier();
}

TEST_CASE("mpi communicator: bad arguments raise uvp errors naming the function") {
  Communicator c;
  std::vector<float> b(2);
  CHECK_THROWS_WITH_AS(c.broadcast(Span<float>(b), c.size()),
                       doctest::Contains("uvp::mpi::Communicator::broadcast: root"), uvp::out_of_range_error);
  std::vector<int> send(3);
  CHECK_THROWS_WITH_AS(c.alltoallv(Span<const int>(send), std::vector<int>(std::size_t(c.size() + 1), 0)),
                       doctest::Contains("send_counts has"), uvp::shape_error);
  CHECK_THROWS_AS(c.alltoallv(Span<const int>(send), std::vector<int>(std::size_t(c.size()), 0)), uvp::shape_error);
  CHECK_THROWS_WITH_AS(Communicator(MPI_COMM_NULL), doctest::Contains("MPI_COMM_NULL"), uvp::invalid_argument);
}
