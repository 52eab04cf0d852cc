// SPDX-License-Identifier: Apache-2.0
// The purchase LSTM of examples/purchase_lstm trained over MPI ranks (uvp::mpi::fit): the same
// model, data, loss, optimizer and early stopping; each rank computes its part of every global
// minibatch and the gradients are reduced after backward (docs/mpi.md). The test customers'
// ROC-AUC is computed over the ranks (each scores its share; uvp::mpi::roc_auc is exact).
//
//   mpirun -np 2 mpi_training [--batch 256] [--reproducible] [purchase_lstm's options]
//
// --batch is the GLOBAL minibatch (default 256, as purchase_lstm): each of the P ranks takes
// ceil(256 / P) rows of it (exactly 256 / P when P divides 256). --reproducible: the
// rank-count-independent mode (the same parameters at 1, 2 or 3 ranks; --micro-shards K pieces,
// default 6). Prints, on rank 0, the fit, the test metrics and the communication per step:
//
//   ranks: 2
//   roc_auc: 0.7890
//   comm_us_per_step: 95.3   bytes_per_step: 123456
//   param_checksum: 0123456789abcdef     (FNV-1a of the trained parameters)
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include "../common/example_cli.hpp"
#include "../common/purchase_models.hpp"
#include "../common/sequence_data.hpp"
#include "uvp/mpi/communicator.hpp"
#include "uvp/mpi/data_parallel.hpp"
#include "uvp/mpi/metrics.hpp"

namespace {

namespace ex = uvp_examples;
using uvp::index;

struct MpiArgs {
  bool reproducible = false;
  index micro_shards = 6;
};

int run(const uvp::mpi::Communicator& comm, const ex::CommonArgs& args, const MpiArgs& margs) {
  const bool root = comm.rank() == 0;
  const ex::CdnowDataset ds = ex::load_dataset(args);  // every rank reads the whole log
  if (root) ex::print_dataset(ds);

  uvp::Rng rng(args.seed);
  ex::PurchaseLstm model = ex::purchase_lstm_model(rng);
  const ex::SequenceSet train = ex::sequence_set(ds, ds.train), validation = ex::sequence_set(ds, ds.validation);
  uvp::Adam<float> adam(ex::purchase_adam(args, /*lr=*/1e-3, /*weight_decay=*/0.5));
  uvp::mpi::ParallelTrainOptions<uvp::SequenceData<float>> o =
      ex::purchase_train_options(validation, args, /*epochs=*/40, /*patience=*/6, /*batch=*/256);
  const index global_batch = o.batch_size;
  o.reproducible = margs.reproducible;
  o.micro_shards = margs.micro_shards;
  if (!o.reproducible) o.batch_size = (global_batch + comm.size() - 1) / comm.size();
  uvp::mpi::ParallelStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  const uvp::FitResult fit =
      uvp::mpi::fit(comm, model, train.data(), uvp::BceWithLogitsLoss<float>(), adam, o, &stats);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The test customers, split over the ranks; the metrics over all of them.
  const ex::SequenceSet test = ex::sequence_set(ds, ds.test);
  const index n = index(ds.test.size());
  const index lo = n * comm.rank() / comm.size(), hi = n * (comm.rank() + 1) / comm.size();
  uvp::Matrix<float> logits(0, 1);
  if (hi > lo) {
    const uvp::SequenceData<float> mine(uvp::Span<const index>(test.ids.data() + lo * test.steps, (hi - lo) * test.steps),
                                        test.steps, uvp::Span<const index>(test.lengths.data() + lo, hi - lo));
    logits = uvp::predict(model, mine);
  }
  const uvp::Span<const float> y(test.y.data() + lo, hi - lo), p(logits.data(), logits.size());
  const double auc = uvp::mpi::roc_auc<float>(comm, y, p);
  const double pr = uvp::mpi::pr_auc<float>(comm, y, p);
  if (root) {
    std::printf("ranks: %d\n", comm.size());
    std::printf("mode: %s\n", o.reproducible ? "reproducible" : "default");
    std::printf("global_batch: %ld  rows_per_rank: %ld\n", long(global_batch),
                long(o.reproducible ? (global_batch + comm.size() - 1) / comm.size() : o.batch_size));
    std::printf("epochs_run: %ld  best_epoch: %ld  validation_roc_auc: %.4f\n", long(fit.epochs_run),
                long(fit.best_epoch), fit.best_score);
    std::printf("%s\n", fit.message.c_str());
    std::printf("roc_auc: %.4f\n", auc);
    std::printf("pr_auc: %.4f\n", pr);
    std::printf("train_seconds: %.2f  steps: %ld  compute_s: %.2f  communicate_s: %.2f\n", seconds, long(stats.steps),
                stats.compute_seconds, stats.communicate_seconds);
    std::printf("comm_us_per_step: %.1f  bytes_per_step: %.0f\n", stats.us_per_step_communicating(),
                stats.bytes_sent_per_step);
    // FNV-1a of the trained parameters' bytes: equal checksums, equal parameters bit for bit.
    std::uint64_t h = 1469598103934665603ULL;
    const auto v = model.parameters().values();
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
    for (std::size_t i = 0; i < std::size_t(v.size()) * sizeof(float); ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
    std::printf("param_checksum: %016llx\n", static_cast<unsigned long long>(h));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uvp::mpi::Environment env(argc, argv);
  int rank = 0;
  try {
    const uvp::mpi::Communicator comm;
    rank = comm.rank();
    MpiArgs margs;
    const auto args = ex::parse_common(
        argc, argv, "out/mpi_training",
        "usage: mpirun -np P mpi_training [--reproducible] [--micro-shards K] [options]\n"
        "The purchase LSTM (Embedding -> LSTM -> Dense) trained over P MPI ranks; --batch is the global minibatch.\n",
        [&](const std::string& k, const std::function<std::string()>& value) {
          if (k == "--reproducible") return margs.reproducible = true;
          if (k == "--micro-shards") return margs.micro_shards = ex::parse_at_least(k, value(), uvp::index(1)), true;
          return false;
        });
    return run(comm, args, margs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_training (rank %d): %s\n", rank, e.what());
    return 2;
  }
}
