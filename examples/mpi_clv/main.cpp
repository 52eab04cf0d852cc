// SPDX-License-Identifier: Apache-2.0
// Customer lifetime value over MPI ranks (uvp/mpi/clv.hpp): each rank starts with a share of the
// CDNOW transaction log, the rows are sent to their customers' ranks and summarised there, and
// BG/NBD and Gamma-Gamma are fitted with the likelihood sums reduced across ranks at every BFGS
// step. The same pipeline on rank 0 alone gives the 1-rank parameters, which the run compares.
//
//   mpirun -np 2 mpi_clv [--data CDNOW_sample.txt] [--fixed-blocks]
//
// --fixed-blocks: Reduction::fixed_blocks, whose parameters are the same bits on any number of
// ranks (max_param_diff_vs_1_rank: 0). Prints, on rank 0, `name: value` lines:
//
//   ranks: 2
//   customers: 2357
//   bgnbd_r: 0.242595
//   ...
//   max_param_diff_vs_1_rank: 1.2e-14
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/mpi/clv.hpp"
#include "uvp/mpi/communicator.hpp"

namespace {

struct Fitted {
  std::vector<double> params;  // r, alpha, a, b, p, q, gamma
  double ms = 0;               // summary + both fits, wall time on rank 0
  std::int64_t customers = 0, on_root = 0;
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  uvp::CustomerSummary shard;
};

// The distributed pipeline on comm: rank r of P keeps rows r, r + P, ... of the log (as if each
// machine had read its own part), then shards, summarises and fits.
Fitted run(const uvp::mpi::Communicator& comm, const uvp::TransactionLog& log,
           const uvp::mpi::DistributedClvOptions& dist) {
  uvp::TransactionLog mine;
  for (uvp::index i = comm.rank(); i < log.size(); i += comm.size())
    mine.add(log.customer_id[std::size_t(i)], log.date[std::size_t(i)], log.amount[std::size_t(i)]);
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  Fitted f;
  // FHL's calibration period: the 39 weeks to 1997-09-30.
  f.shard = uvp::mpi::summary_from_transactions(comm, mine, uvp::Date::from_ymd(1997, 9, 30), uvp::TimeUnit::week,
                                                dist.blocks);
  const uvp::ClvFitResult rb = uvp::mpi::fit(comm, f.bg, f.shard, {}, dist);
  const uvp::ClvFitResult rg = uvp::mpi::fit(comm, f.gg, f.shard, {}, dist);
  f.ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!rb.converged || !rg.converged)
    std::fprintf(stderr, "rank %d: a fit did not converge: %s / %s\n", comm.rank(), rb.message.c_str(),
                 rg.message.c_str());
  const uvp::BgNbdParams b = f.bg.params();
  const uvp::GammaGammaParams g = f.gg.params();
  f.params = {b.r, b.alpha, b.a, b.b, g.p, g.q, g.gamma};
  f.customers = rb.customers;
  f.on_root = f.shard.size();
  return f;
}

int main_body(int argc, char** argv) {
  std::string data = std::string(UVP_EXAMPLE_DATA_DIR) + "/cdnow/CDNOW_sample.txt";
  uvp::mpi::DistributedClvOptions dist;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else if (a == "--fixed-blocks") {
      dist.reduction = uvp::mpi::Reduction::fixed_blocks;
    } else {
      std::fprintf(stderr, "usage: mpi_clv [--data CDNOW_sample.txt] [--fixed-blocks]\n");
      return 2;
    }
  }
  const uvp::mpi::Communicator world;
  const bool root = world.rank() == 0;
  const uvp::TransactionLog log = uvp::read_cdnow_transactions(data);  // each rank reads it, keeps its share

  const Fitted all = run(world, log, dist);

  // The 1-rank parameters: the same pipeline on rank 0 alone.
  MPI_Comm alone = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, root ? 0 : MPI_UNDEFINED, 0, &alone);
  std::vector<double> one(all.params.size(), 0.0);
  if (alone != MPI_COMM_NULL) {
    one = run(uvp::mpi::Communicator(alone), log, dist).params;
    MPI_Comm_free(&alone);
  }
  world.broadcast(uvp::Span<double>(one), 0);
  double diff = 0;
  for (std::size_t i = 0; i < one.size(); ++i) diff = std::max(diff, std::abs(all.params[i] / one[i] - 1));

  // Scoring per shard: expected purchases in the next 52 weeks and P(alive), summed over the ranks.
  const uvp::Vector<double> expected =
      all.bg.conditional_expected_purchases(52.0, all.shard.frequency, all.shard.recency, all.shard.T);
  const uvp::Vector<double> alive = all.bg.probability_alive(all.shard.frequency, all.shard.recency, all.shard.T);
  std::vector<double> sums{expected.sum(), alive.sum()};
  world.allreduce_sum_ordered(uvp::Span<double>(sums));

  if (root) {
    const char* names[7] = {"bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b", "gg_p", "gg_q", "gg_gamma"};
    std::printf("ranks: %d\n", world.size());
    std::printf("reduction: %s\n", dist.reduction == uvp::mpi::Reduction::fixed_blocks ? "fixed_blocks" : "rank_order");
    std::printf("customers: %lld\n", static_cast<long long>(all.customers));
    std::printf("customers_on_rank_0: %lld\n", static_cast<long long>(all.on_root));
    for (std::size_t i = 0; i < 7; ++i) std::printf("%s: %.10f\n", names[i], all.params[i]);
    std::printf("expected_purchases_52w_total: %.4f\n", sums[0]);
    std::printf("mean_p_alive: %.6f\n", sums[1] / static_cast<double>(all.customers));
    std::printf("summary_and_fit_ms: %.1f\n", all.ms);
    std::printf("max_param_diff_vs_1_rank: %.3g\n", diff);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uvp::mpi::Environment env(argc, argv);
  try {
    return main_body(argc, argv);
  } catch (const std::exception& e) {
    // Every rank raises the same error (uvp/mpi/clv.hpp's collective checks): report it once.
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) std::fprintf(stderr, "mpi_clv: %s\n", e.what());
    return 1;
  }
}
