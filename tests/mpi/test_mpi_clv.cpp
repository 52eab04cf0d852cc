// SPDX-License-Identifier: Apache-2.0
// Distributed CLV (uvp/mpi/clv.hpp) on the bundled CDNOW log: the sharded summary equals the
// single-process one customer by customer; BG/NBD and Gamma-Gamma fitted over the ranks give the
// single-process parameters (to 1e-10; bit for bit on one rank); Reduction::fixed_blocks gives the
// same bits on 1, 2 and 3 ranks; errors reach every rank.
// mpi-ranks: 1 2 3
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/mpi/clv.hpp"
#include "uvp/mpi/communicator.hpp"

namespace {

using uvp::Date;
using uvp::mpi::Communicator;

const Date kEnd = Date::from_ymd(1997, 9, 30);  // FHL's calibration end

const uvp::TransactionLog& cdnow_log() {
  static const uvp::TransactionLog log = uvp::read_cdnow_transactions(uvp_test::data_path("cdnow/CDNOW_sample.txt"));
  return log;
}

const uvp::CustomerSummary& single_summary() {
  static const uvp::CustomerSummary s = uvp::summary_from_transactions(cdnow_log(), kEnd, uvp::TimeUnit::week);
  return s;
}

// Rank r of a communicator of size p starts with rows r, r + p, ... of the log (any split would do).
uvp::TransactionLog strided_rows(const Communicator& comm) {
  uvp::TransactionLog part;
  const auto& log = cdnow_log();
  for (uvp::index i = comm.rank(); i < log.size(); i += comm.size())
    part.add(log.customer_id[std::size_t(i)], log.date[std::size_t(i)], log.amount[std::size_t(i)]);
  return part;
}

double rel_diff(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

std::vector<double> bg_vec(const uvp::BgNbd& m) { return {m.params().r, m.params().alpha, m.params().a, m.params().b}; }
std::vector<double> gg_vec(const uvp::GammaGamma& m) { return {m.params().p, m.params().q, m.params().gamma}; }

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The first k ranks of the world as a communicator (MPI_COMM_NULL on the others).
struct SubWorld {
  MPI_Comm comm = MPI_COMM_NULL;
  explicit SubWorld(int k) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_split(MPI_COMM_WORLD, rank < k ? 0 : MPI_UNDEFINED, rank, &comm);
  }
  ~SubWorld() {
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
};

}  // namespace

TEST_CASE("mpi clv: the customer hash is the documented FNV-1a + fmix64, stable") {
  // FNV-1a 64 of "" is its offset basis; fmix64 of it pinned here so a change of the hash (a
  // breaking change: data sharded before would move) fails this test.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  CHECK(uvp::mpi::customer_hash("") == h);
  CHECK(uvp::mpi::customer_hash("00001") != uvp::mpi::customer_hash("00002"));
  // The CDNOW sample's 2,357 ids spread over 2 and 3 ranks within 10% of an even share.
  const auto& s = single_summary();
  for (int p : {2, 3}) {
    std::vector<int> n(std::size_t(p), 0);
    for (const auto& id : s.id) ++n[std::size_t(uvp::mpi::customer_rank(id, p))];
    for (int c : n) CHECK(std::abs(c - double(s.size()) / p) < 0.1 * double(s.size()) / p);
  }
}

TEST_CASE("mpi clv: the sharded summary equals the single-process summary, customer by customer") {
  Communicator comm;
  const uvp::CustomerSummary shard = uvp::mpi::summary_from_transactions(comm, strided_rows(comm), kEnd);
  const auto& one = single_summary();
  std::map<std::string, uvp::index> where;
  for (uvp::index i = 0; i < one.size(); ++i) where[one.id[std::size_t(i)]] = i;
  REQUIRE(shard.id.size() == std::size_t(shard.size()));
  int bad = 0;
  for (uvp::index i = 0; i < shard.size(); ++i) {
    const std::string& id = shard.id[std::size_t(i)];
    CHECK(uvp::mpi::customer_rank(id, comm.size()) == comm.rank());
    const auto it = where.find(id);
    REQUIRE(it != where.end());
    const uvp::index j = it->second;
    bad += shard.frequency[i] != one.frequency[j] || shard.recency[i] != one.recency[j] || shard.T[i] != one.T[j] ||
           !(std::abs(shard.monetary_value[i] - one.monetary_value[j]) <= 1e-12 * one.monetary_value[j]);
  }
  CHECK(bad == 0);
  std::vector<std::int64_t> total{shard.size()};
  comm.allreduce_sum(uvp::Span<std::int64_t>(total));
  CHECK(total[0] == one.size());  // every customer once

  // The overload without an end observes up to the last date of the whole log.
  const auto all = uvp::mpi::summary_from_transactions(comm, strided_rows(comm));
  const auto one_all = uvp::summary_from_transactions(cdnow_log());
  std::vector<double> max_T{all.size() ? all.T.maxCoeff() : 0.0};
  comm.allreduce_max(uvp::Span<double>(max_T));
  CHECK(max_T[0] == one_all.T.maxCoeff());
}

namespace {

// The 7 parameters (BG/NBD then Gamma-Gamma) fitted over the ranks of comm, on comm's shards of the log.
std::vector<double> fit_over(const Communicator& comm, const uvp::mpi::DistributedClvOptions& d,
                             uvp::ClvFitResult* rb = nullptr, uvp::ClvFitResult* rg = nullptr) {
  const uvp::CustomerSummary shard =
      uvp::mpi::summary_from_transactions(comm, strided_rows(comm), kEnd, uvp::TimeUnit::week, d.blocks);
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  const auto b = uvp::mpi::fit(comm, bg, shard, {}, d);
  const auto g = uvp::mpi::fit(comm, gg, shard, {}, d);
  if (rb) *rb = b;
  if (rg) *rg = g;
  std::vector<double> v = bg_vec(bg);
  const auto q = gg_vec(gg);
  v.insert(v.end(), q.begin(), q.end());
  return v;
}

// fit_over on the first k ranks, for k = 1 .. the world's size; every rank gets each k's parameters.
std::vector<std::vector<double>> fit_on_1_to_n_ranks(const uvp::mpi::DistributedClvOptions& d) {
  Communicator world;
  std::vector<std::vector<double>> out;
  for (int k = 1; k <= world.size(); ++k) {
    SubWorld sub(k);
    std::vector<double> v(7, 0.0);
    if (sub.comm != MPI_COMM_NULL) v = fit_over(Communicator(sub.comm), d);
    world.broadcast(uvp::Span<double>(v), 0);
    out.push_back(v);
  }
  return out;
}

std::vector<double> single_process_params() {
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  REQUIRE(bg.fit(single_summary()).converged);
  REQUIRE(gg.fit(single_summary()).converged);
  std::vector<double> v = bg_vec(bg);
  const auto q = gg_vec(gg);
  v.insert(v.end(), q.begin(), q.end());
  return v;
}

}  // namespace

TEST_CASE("mpi clv: BG/NBD and Gamma-Gamma over the ranks give the 1-rank parameters to 1e-10") {
  Communicator comm;
  uvp::ClvFitResult rb, rg;
  const std::vector<double> p = fit_over(comm, {}, &rb, &rg);
  CHECK(rb.converged);
  CHECK(rg.converged);
  CHECK(rb.customers == single_summary().size());
  // Rank order (the default) on 1, 2, ... ranks: the same estimate to 1e-10 (polished by Newton steps).
  const auto by_k = fit_on_1_to_n_ranks({});
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(rel_diff(p[i], by_k[0][i]) < 1e-10);
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(rel_diff(p[i], by_k.back()[i]) == 0);  // this run is the last k
  // Every rank holds the same bits.
  std::vector<double> mx = p;
  comm.allreduce_max(uvp::Span<double>(mx));
  CHECK(same_bits(p, mx));
  // The single-process BFGS estimate stops inside the region where the objective is flat at double
  // precision (1.5e-7 wide for CDNOW's Gamma-Gamma): the polished estimate lies in it.
  const auto one = single_process_params();
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(rel_diff(p[i], one[i]) < 1e-6);
  uvp::BgNbd bg1;
  const auto rb1 = bg1.fit(single_summary());
  CHECK(rel_diff(rb.log_likelihood, rb1.log_likelihood) < 1e-12);
  REQUIRE(rb.standard_errors.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(rel_diff(rb.standard_errors[i], rb1.standard_errors[i]) < 1e-5);
}

TEST_CASE("mpi clv: without polish, one rank is the single-process fit bit for bit") {
  Communicator comm;
  uvp::mpi::DistributedClvOptions raw;
  raw.polish = false;
  // Every customer on rank 0 (rank_order needs no hashing), the others empty: their sums are 0,
  // and adding 0 is exact.
  const uvp::CustomerSummary empty;
  const uvp::CustomerSummary& shard = comm.rank() == 0 ? single_summary() : empty;
  uvp::BgNbd bg1, bg;
  uvp::GammaGamma gg1, gg;
  const auto rb1 = bg1.fit(single_summary());
  const auto rg1 = gg1.fit(single_summary());
  const auto rb = uvp::mpi::fit(comm, bg, shard, {}, raw);
  const auto rg = uvp::mpi::fit(comm, gg, shard, {}, raw);
  CHECK(same_bits(bg_vec(bg), bg_vec(bg1)));
  CHECK(same_bits(gg_vec(gg), gg_vec(gg1)));
  CHECK(rb.iterations == rb1.iterations);
  CHECK(rg.evaluations == rg1.evaluations);
  CHECK(same_bits(rb.standard_errors, rb1.standard_errors));
  CHECK(rg.warnings == rg1.warnings);
}

TEST_CASE("mpi clv: Reduction::fixed_blocks gives the same bits on 1, 2 and 3 ranks") {
  uvp::mpi::DistributedClvOptions fixed;
  fixed.reduction = uvp::mpi::Reduction::fixed_blocks;
  fixed.blocks = 16;  // fewer than the default 64: the per-block terms stay cheap under ASan
  for (const bool polish : {true, false}) {
    fixed.polish = polish;
    const auto bits = fit_on_1_to_n_ranks(fixed);
    for (std::size_t k = 1; k < bits.size(); ++k) CHECK(same_bits(bits[k], bits[0]));
    const auto one = single_process_params();
    for (std::size_t i = 0; i < one.size(); ++i) CHECK(rel_diff(bits[0][i], one[i]) < 1e-6);
    if (polish) {
      const auto ranked = fit_on_1_to_n_ranks({});
      for (std::size_t i = 0; i < one.size(); ++i) CHECK(rel_diff(bits[0][i], ranked[0][i]) < 1e-10);
    }
  }
}

TEST_CASE("mpi clv: scores per shard are the single-process scores of the same customers") {
  Communicator comm;
  const uvp::CustomerSummary shard = uvp::mpi::summary_from_transactions(comm, strided_rows(comm), kEnd);
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  uvp::mpi::fit(comm, bg, shard);
  uvp::mpi::fit(comm, gg, shard);
  const auto& one = single_summary();
  std::map<std::string, uvp::index> row;
  for (uvp::index i = 0; i < one.size(); ++i) row[one.id[std::size_t(i)]] = i;
  const uvp::Vector<double> pa = bg.probability_alive(shard.frequency, shard.recency, shard.T);
  const uvp::Vector<double> ex = bg.conditional_expected_purchases(52.0, shard.frequency, shard.recency, shard.T);
  const uvp::Vector<double> spend = gg.conditional_expected_average_value(shard.frequency, shard.monetary_value);
  const uvp::Vector<double> pa1 = bg.probability_alive(one.frequency, one.recency, one.T);
  const uvp::Vector<double> ex1 = bg.conditional_expected_purchases(52.0, one.frequency, one.recency, one.T);
  const uvp::Vector<double> spend1 = gg.conditional_expected_average_value(one.frequency, one.monetary_value);
  int bad = 0;
  for (uvp::index i = 0; i < shard.size(); ++i) {
    const uvp::index j = row.at(shard.id[std::size_t(i)]);
    bad += pa[i] != pa1[j] || ex[i] != ex1[j] || !(rel_diff(spend[i], spend1[j]) < 1e-12);
  }
  CHECK(bad == 0);
  std::vector<double> total{ex.sum()};
  comm.allreduce_sum(uvp::Span<double>(total));
  CHECK(rel_diff(total[0], ex1.sum()) < 1e-12);  // the population's expected purchases, from the shards
}

TEST_CASE("mpi clv: bad data or mismatched options on one rank raise on every rank") {
  Communicator comm;
  const uvp::CustomerSummary shard = uvp::mpi::summary_from_transactions(comm, strided_rows(comm), kEnd);
  const int last = comm.size() - 1;
  {
    uvp::CustomerSummary bad = shard;
    if (comm.rank() == last && bad.size() > 0) bad.frequency[0] = -1;
    uvp::BgNbd bg;
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, bg, bad), uvp::invalid_argument,
                                 uvp::detail::str("uvp::mpi::fit(BgNbd): rank ", last,
                                                  ": uvp::BgNbd::fit: frequency[0] = -1"));
    CHECK_FALSE(bg.is_fitted());
  }
  {
    uvp::GammaGamma gg;
    uvp::GammaGammaFitOptions o;
    if (comm.rank() == last) o.max_iterations = 7;
    if (comm.size() > 1)
      UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, gg, shard, o), uvp::invalid_argument,
                                   uvp::detail::str("uvp::mpi::fit(GammaGamma): the options differ across ranks: "
                                                    "max_iterations is 7 on rank ",
                                                    last, " but 500 on rank 0"));
    uvp::BgNbd bg;
    uvp::mpi::DistributedClvOptions d;
    if (comm.rank() == last) d.reduction = uvp::mpi::Reduction::fixed_blocks;
    if (comm.size() > 1)
      UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, bg, shard, {}, d), uvp::invalid_argument,
                                   "the options differ across ranks: reduction");
  }
  {
    // fixed_blocks with customers not on their block's rank: every customer on rank 0.
    uvp::mpi::DistributedClvOptions fixed;
    fixed.reduction = uvp::mpi::Reduction::fixed_blocks;
    const uvp::CustomerSummary empty;
    uvp::BgNbd bg;
    if (comm.size() > 1)
      UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, bg, comm.rank() == 0 ? single_summary() : empty, {}, fixed),
                                   uvp::invalid_argument, "but is on rank 0; shard the data");
    // ... and without ids.
    uvp::CustomerSummary no_ids = shard;
    no_ids.id.clear();
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, bg, no_ids, {}, fixed), uvp::invalid_argument,
                                 "Reduction::fixed_blocks needs the customer ids");
  }
  {
    // No customer anywhere; no transaction before the end.
    const uvp::CustomerSummary empty;
    uvp::BgNbd bg;
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::fit(comm, bg, empty), uvp::invalid_argument, "no rank has any customer");
    UVP_CHECK_THROWS_WITH_SUBSTR(
        uvp::mpi::summary_from_transactions(comm, strided_rows(comm), Date::from_ymd(1990, 1, 1)),
        uvp::invalid_argument, "no transaction on or before observation_end 1990-01-01 on any rank");
    uvp::TransactionLog ragged = strided_rows(comm);
    if (comm.rank() == 0) ragged.amount.pop_back();
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mpi::shard_transactions(comm, ragged), uvp::shape_error,
                                 "uvp::mpi::shard_transactions: rank 0: uvp::mpi::shard_transactions: "
                                 "transactions.amount has");
  }
}
