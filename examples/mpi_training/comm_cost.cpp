// SPDX-License-Identifier: Apache-2.0
// What one data-parallel step of the W2 model costs in communication (docs/mpi.md's cost
// model): W2 = Embedding(10000, 32) -> Lstm(32 -> 64) -> last hidden -> Dense(64 -> 1),
// sequences of 50 uniform item ids, 64 sequences per rank and step (benchmarks/bench_w2_lstm.cpp's
// shapes). Prints the bytes a rank sends per step, computed from the model (the dense gradient
// buffer and the touched embedding rows of each step), the measured time of the collectives
// alone (median of 200), and of uvp::mpi::fit's communication per step (2 epochs, 40 steps each).
//
//   mpirun -np 2 mpi_comm_cost
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <vector>

#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/mpi/communicator.hpp"
#include "uvp/mpi/data_parallel.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/optim/adam.hpp"

namespace {

using uvp::index;
constexpr index vocab = 10000, E = 32, H = 64, S = 50, B = 64, steps_per_epoch = 40;
using W2Net = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Lstm<float>, uvp::nn::GlobalLastPool1d<float>,
                             uvp::nn::Dense<float>>;

W2Net make_w2() {
  uvp::Rng rng{2};
  uvp::nn::Embedding<float> emb(vocab, E, rng);
  uvp::nn::Lstm<float> lstm(E, H, rng);
  uvp::nn::Dense<float> head(H, 1, rng);
  W2Net net(std::move(emb), std::move(lstm), uvp::nn::GlobalLastPool1d<float>(), std::move(head));
  net.set_names({"emb", "lstm", "pool", "head"});
  return net;
}

template <class F>
double median_us(const uvp::mpi::Communicator& comm, int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  uvp::mpi::Environment env(argc, argv);
  try {
    const uvp::mpi::Communicator comm;
    const int P = comm.size();
    W2Net net = make_w2();
    const uvp::index dense = net.parameters().dense_size();

    // The data: B x P sequences per step, the same on every rank (uvp::mpi::fit's contract).
    const uvp::index n = B * P * steps_per_epoch;
    std::vector<uvp::index> ids(static_cast<std::size_t>(n * S));
    uvp::Vector<float> y(n);
    uvp::Rng rng(7);
    for (auto& id : ids) id = uvp::index(rng.uniform() * double(vocab)) % vocab;
    for (uvp::index i = 0; i < n; ++i) y[i] = rng.uniform() < 0.3 ? 1.f : 0.f;
    const uvp::SequenceData<float> data(uvp::Span<const uvp::index>(ids), S, {}, y);

    // Distinct rows a rank's 64 sequences touch per step (what it sends as (id, row) pairs).
    double rows = 0;
    std::vector<char> seen(static_cast<std::size_t>(vocab));
    for (uvp::index s = 0; s < steps_per_epoch; ++s) {
      std::fill(seen.begin(), seen.end(), 0);
      for (uvp::index k = 0; k < B * S; ++k) {
        const uvp::index id = ids[std::size_t((s * B * P) * S + k)];
        rows += seen[std::size_t(id)] ? 0 : 1;
        seen[std::size_t(id)] = 1;
      }
    }
    rows /= double(steps_per_epoch);

    // The collectives alone, with the payload of one step.
    std::vector<float> g(static_cast<std::size_t>(dense), 1.f);
    const double allreduce_us = median_us(comm, 200, [&] { comm.allreduce_sum(uvp::Span<float>(g)); });
    std::vector<std::int64_t> row_ids(static_cast<std::size_t>(rows)), all_ids;
    std::vector<float> row_vals(std::size_t(rows) * E), all_vals;
    std::vector<int> counts;
    const double allgatherv_us = median_us(comm, 200, [&] {
      comm.allgatherv(uvp::Span<const std::int64_t>(row_ids), all_ids, counts);
      comm.allgatherv(uvp::Span<const float>(row_vals), all_vals, counts);
    });

    // uvp::mpi::fit itself: 2 epochs of 40 steps; the communication per step includes waiting
    // for the slower rank.
    uvp::Adam<float> adam(uvp::AdamOptions{1e-3});
    uvp::mpi::ParallelTrainOptions<uvp::SequenceData<float>> o;
    o.epochs = 2, o.batch_size = B, o.shuffle = true;
    uvp::mpi::ParallelStats st;
    uvp::mpi::fit(comm, net, data, uvp::BceWithLogitsLoss<float>(), adam, o, &st);

    if (comm.rank() == 0) {
      const double dense_bytes = double(dense) * sizeof(float);
      const double sparse_bytes = rows * (E * sizeof(float) + sizeof(std::int64_t));
      std::printf("ranks: %d  batch: %ld x %d  seq_len: %ld\n", P, long(B), P, long(S));
      std::printf("dense_gradient_values: %ld  dense_bytes: %.0f\n", long(dense), dense_bytes);
      std::printf("sparse_rows_per_rank_step: %.1f  sparse_bytes: %.0f  (dense table would be %ld bytes)\n", rows,
                  sparse_bytes, long(vocab * E * uvp::index(sizeof(float))));
      std::printf("bytes_per_step (sent by each rank, + %d control bytes): %.0f\n", int(2 * sizeof(double)),
                  dense_bytes + sparse_bytes);
      std::printf("allreduce_us (dense gradients, median of 200): %.1f\n", allreduce_us);
      std::printf("allgatherv_us (ids + rows, median of 200): %.1f\n", allgatherv_us);
      std::printf("fit: steps %ld  comm_us_per_step %.1f  compute_us_per_step %.1f  bytes_per_step %.0f\n",
                  long(st.steps), st.us_per_step_communicating(), st.compute_seconds * 1e6 / double(st.steps),
                  st.bytes_sent_per_step);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_comm_cost: %s\n", e.what());
    return 2;
  }
}
