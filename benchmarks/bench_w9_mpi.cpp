// SPDX-License-Identifier: Apache-2.0
// W9: W2's training step and W8's 1M-customer CLV fit on 1 MPI rank vs 2 ranks, in the same run.
// Built only with MPI (UVP_WITH_MPI); a plain program (no Google Benchmark), launched as
//
//   OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core bench_w9_mpi [--w2-steps 40] [--reps 3]
//                                                            [--customers 1000000] [--skip-w8]
//
// Each measurement first runs on rank 0 alone (a one-rank communicator; rank 1 waits, sleeping,
// in a non-blocking barrier) and then on both ranks; rank 0 prints (times: the best of --reps):
//
//   W9 workload=W2 ranks=2 speedup=… comm_us_per_step=… bytes_per_step=… step_ms_1=… step_ms_2=… …
//   W9 workload=W8 ranks=2 speedup=… fit_score_ms_1=… fit_score_ms_2=… max_param_diff=…
//   W9 comm alpha_us=… beta_us_per_mb=…
//
// W2: the W2 model (Embedding(10000, 32) -> Lstm(32, 64) -> last hidden -> Dense(64, 1), BCE,
// Adam 1e-3) trained by uvp::mpi::fit (include/uvp/mpi/data_parallel.hpp) on batch 64 per rank:
// 64 rows per step on one rank, 64 x 2 on two (one epoch of --w2-steps steps). speedup = rows per
// second on 2 ranks / on 1 rank. comm_us_per_step and bytes_per_step are rank 0's
// (uvp::mpi::ParallelStats: the control message, the dense gradient allreduce, the sparse
// embedding rows; communication time includes waiting for the other rank); compute_ms_1/_2 its
// forward + loss + backward per step (wall time), so that a slow 2-rank step can be told apart:
// computing, or waiting for the other rank (on a loaded machine, for it to be scheduled).
// W8: BG/NBD + Gamma-Gamma fitted over the ranks (uvp::mpi::fit of uvp/mpi/clv.hpp, rank_order)
// and every customer scored (score_customers, 12 months) on W8's 1,000,000 simulated customers
// (bench_w8_clv.cpp's data; each rank draws them all and keeps its half). speedup = time on 1 rank
// / time on 2. max_param_diff: the largest relative difference of the 7 parameters, 2 vs 1 rank.
// comm: the latency model of one allreduce, t = alpha + beta * bytes, fitted from 8-byte and
// 1-MiB allreduces on 2 ranks (the docs' projection to 64 ranks uses it).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
// GCC PR 105593: false -W(maybe-)uninitialized inside the AVX-512 intrinsics Eigen and xsimd use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/lstm_data.hpp"
#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/lifetime_value.hpp"
#include "uvp/clv/simulate.hpp"
#include "uvp/core/random.hpp"
#include "uvp/mpi/clv.hpp"
#include "uvp/mpi/communicator.hpp"
#include "uvp/mpi/data_parallel.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/training/loss_functions.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
  std::int64_t w2_steps = 40;
  int reps = 3;
  uvp::index customers = 1000000;
  bool w8 = true;
};

// Runs fn on a communicator of rank 0 alone while the other ranks sleep in a non-blocking barrier
// (a blocking MPI wait spins and would take a core from rank 0 on a shared machine).
void on_rank0_alone(const uvp::mpi::Communicator& world, const std::function<void(const uvp::mpi::Communicator&)>& fn) {
  MPI_Comm alone = MPI_COMM_NULL;
  MPI_Comm_split(world.get(), world.rank() == 0 ? 0 : MPI_UNDEFINED, 0, &alone);
  if (alone != MPI_COMM_NULL) {
    fn(uvp::mpi::Communicator(alone));
    MPI_Comm_free(&alone);
  }
  MPI_Request req;
  MPI_Ibarrier(world.get(), &req);
  for (int done = 0; !done;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// ---- W2 ----------------------------------------------------------------------------------------

constexpr uvp::index kBatch = 64, kSeq = uvp_bench::lstm_seq_len;

using W2Net = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Lstm<float>, uvp::nn::GlobalLastPool1d<float>,
                             uvp::nn::Dense<float>>;

W2Net make_w2_net() {  // bench_w2_lstm.cpp's model and initialisation
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb(uvp_bench::lstm_vocab, uvp_bench::lstm_embed, rng);
  uvp::nn::Lstm<float> lstm(uvp_bench::lstm_embed, uvp_bench::lstm_hidden, rng);
  uvp::nn::Dense<float> head(uvp_bench::lstm_hidden, 1, rng);
  W2Net net(std::move(emb), std::move(lstm), uvp::nn::GlobalLastPool1d<float>(), std::move(head));
  net.set_names({"emb", "lstm", "pool", "head"});
  return net;
}

struct W2Time {
  double step_s = 0, comm_us = 0, bytes = 0, compute_s = 0;
};

// One epoch of `steps` steps at 64 rows per rank; the time per step (fit's wall time / steps).
W2Time w2_epoch(const uvp::mpi::Communicator& comm, const uvp_bench::LstmData& data, std::int64_t steps) {
  const uvp::index rows = kBatch * comm.size() * steps;
  const uvp::SequenceData<float> train(
      uvp::Span<const uvp::index>(data.ids.data(), rows * kSeq), kSeq, {},
      Eigen::Map<const uvp::Vector<float>>(data.labels.data(), rows));
  W2Net net = make_w2_net();
  uvp::Adam<float> adam(uvp::AdamOptions{1e-3});
  uvp::mpi::ParallelTrainOptions<uvp::SequenceData<float>> o;
  o.epochs = 1;
  o.batch_size = kBatch;  // per rank
  o.check_consistency = false;
  uvp::mpi::ParallelStats stats;
  comm.barrier();
  const auto t0 = Clock::now();
  uvp::mpi::fit(comm, net, train, uvp::BceWithLogitsLoss<float>(), adam, o, &stats);
  const double s = seconds_since(t0);
  const double steps_run = double(std::max<uvp::index>(stats.steps, 1));
  return {s / steps_run, stats.us_per_step_communicating(), stats.bytes_sent_per_step,
          stats.compute_seconds / steps_run};
}

void run_w2(const uvp::mpi::Communicator& world, const Args& a) {
  // Enough rows for the 2-rank epoch; the one-rank epoch uses the first half.
  const uvp_bench::LstmData data = uvp_bench::make_lstm_data(kBatch * 2 * a.w2_steps, 1, 2024);
  W2Time one{1e300, 0, 0, 0}, two{1e300, 0, 0, 0};
  for (int r = 0; r < a.reps + 1; ++r) {  // the first round warms up
    on_rank0_alone(world, [&](const uvp::mpi::Communicator& c) {
      const W2Time t = w2_epoch(c, data, a.w2_steps);
      if (r > 0 && t.step_s < one.step_s) one = t;
    });
    const W2Time t = w2_epoch(world, data, a.w2_steps);
    if (r > 0 && t.step_s < two.step_s) two = t;
  }
  if (world.rank() != 0) return;
  const double speedup = (double(kBatch * world.size()) / two.step_s) / (double(kBatch) / one.step_s);
  std::printf("W9 workload=W2 ranks=%d speedup=%.3f comm_us_per_step=%.1f bytes_per_step=%.0f step_ms_1=%.3f "
              "step_ms_2=%.3f compute_ms_1=%.3f compute_ms_2=%.3f rows_per_s_1=%.0f rows_per_s_2=%.0f "
              "batch_per_rank=%lld steps=%lld\n",
              world.size(), speedup, two.comm_us, two.bytes, 1e3 * one.step_s, 1e3 * two.step_s, 1e3 * one.compute_s,
              1e3 * two.compute_s,
              double(kBatch) / one.step_s, double(kBatch * world.size()) / two.step_s,
              static_cast<long long>(kBatch), static_cast<long long>(a.w2_steps));
  std::fflush(stdout);
}

// ---- W8 ----------------------------------------------------------------------------------------

const uvp::BgNbdParams kTruth{0.243, 4.414, 0.793, 2.426};  // bench_w8_clv.cpp's generating parameters
const uvp::GammaGammaParams kSpend{6.25, 3.74, 15.44};

// BG/NBD + Gamma-Gamma over comm's ranks and the scores of this rank's customers; returns the time
// and the 7 parameters.
double w8_fit_score(const uvp::mpi::Communicator& comm, const uvp::CustomerSummary& shard, std::vector<double>& p) {
  comm.barrier();
  const auto t0 = Clock::now();
  uvp::BgNbd bg;
  uvp::GammaGamma gg;
  const auto rb = uvp::mpi::fit(comm, bg, shard);
  const auto rg = uvp::mpi::fit(comm, gg, shard);
  const uvp::CustomerScores scores = uvp::score_customers(bg, gg, shard);
  volatile double sink = scores.clv.sum();
  (void)sink;
  comm.barrier();
  const double s = seconds_since(t0);
  if (!rb.converged || !rg.converged) std::fprintf(stderr, "W9: a W8 fit did not converge\n");
  p = {bg.params().r, bg.params().alpha, bg.params().a, bg.params().b, gg.params().p, gg.params().q, gg.params().gamma};
  return s;
}

uvp::CustomerSummary rows_of(const uvp::SimulatedCustomers& s, uvp::index b, uvp::index e) {
  uvp::CustomerSummary out;
  out.frequency = s.frequency.segment(b, e - b);
  out.recency = s.recency.segment(b, e - b);
  out.T = s.T.segment(b, e - b);
  out.monetary_value = s.monetary_value.segment(b, e - b);
  return out;
}

void run_w8(const uvp::mpi::Communicator& world, const Args& a) {
  const uvp::index n = a.customers;
  uvp::Rng rng(20050401);
  uvp::Vector<double> T(n);
  for (uvp::index i = 0; i < n; ++i) T[i] = rng.uniform(27.0, 39.0);  // CDNOW-like ages (weeks)
  const uvp::SimulatedCustomers all = uvp::simulate_customers(kTruth, T, rng, kSpend);
  // rank_order needs no hashing: rank r keeps the r-th of size() contiguous parts.
  const uvp::index b = n * world.rank() / world.size(), e = n * (world.rank() + 1) / world.size();
  const uvp::CustomerSummary mine = rows_of(all, b, e), whole = rows_of(all, 0, n);
  double one = 1e300, two = 1e300;
  std::vector<double> p1, p2;
  for (int r = 0; r < std::max(1, a.reps - 1); ++r) {  // fits of seconds: fewer repetitions
    on_rank0_alone(world, [&](const uvp::mpi::Communicator& c) { one = std::min(one, w8_fit_score(c, whole, p1)); });
    two = std::min(two, w8_fit_score(world, mine, p2));
  }
  if (world.rank() != 0) return;
  double diff = 0;
  for (std::size_t i = 0; i < p1.size(); ++i) diff = std::max(diff, std::abs(p2[i] / p1[i] - 1));
  std::printf("W9 workload=W8 ranks=%d speedup=%.3f fit_score_ms_1=%.1f fit_score_ms_2=%.1f customers=%lld "
              "max_param_diff=%.2g\n",
              world.size(), one / two, 1e3 * one, 1e3 * two, static_cast<long long>(n), diff);
  std::fflush(stdout);
}

// ---- the latency model -------------------------------------------------------------------------

double allreduce_us(const uvp::mpi::Communicator& comm, std::size_t floats, int reps) {
  std::vector<float> x(floats, 1.0f);
  comm.allreduce_sum(uvp::Span<float>(x));  // warm-up
  double best = 1e300;
  for (int k = 0; k < 5; ++k) {
    comm.barrier();
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) comm.allreduce_sum(uvp::Span<float>(x));
    best = std::min(best, seconds_since(t0) * 1e6 / reps);
  }
  return best;
}

void run_comm(const uvp::mpi::Communicator& world) {
  const double small = allreduce_us(world, 2, 2000);            // 8 bytes
  const double large = allreduce_us(world, 1 << 18, 20);        // 1 MiB
  const double beta = (large - small) / (double(1 << 20) - 8);  // us per byte
  if (world.rank() == 0)
    std::printf("W9 comm ranks=%d alpha_us=%.2f beta_us_per_mb=%.1f allreduce_8b_us=%.2f allreduce_1mib_us=%.1f\n",
                world.size(), small, beta * double(1 << 20), small, large);
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + s);
      return argv[++i];
    };
    if (s == "--w2-steps") a.w2_steps = std::max<std::int64_t>(1, std::atoll(next()));
    else if (s == "--reps") a.reps = std::max(1, std::atoi(next()));
    else if (s == "--customers") a.customers = std::max<uvp::index>(1000, std::atoll(next()));
    else if (s == "--skip-w8") a.w8 = false;
    else throw std::runtime_error("unknown argument " + s +
                                  " (usage: bench_w9_mpi [--w2-steps N] [--reps N] [--customers N] [--skip-w8])");
  }
  const uvp::mpi::Communicator world;
  if (world.size() < 2) {
    if (world.rank() == 0) std::printf("W9 skipped: run under mpirun -np 2 (got %d rank)\n", world.size());
    return 0;
  }
  run_comm(world);
  run_w2(world, a);
  if (a.w8) run_w8(world, a);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uvp::mpi::Environment env(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_w9_mpi: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}
