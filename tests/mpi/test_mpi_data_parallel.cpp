// SPDX-License-Identifier: Apache-2.0
// uvp::mpi::fit and the distributed metrics: what data parallelism must keep (the global batch's
// gradient, identical parameters on every rank, rank-count independence in reproducible mode,
// errors on every rank, no hang), each checked against a single-process computation in the same
// run. Run with 1, 2 and 3 ranks (reproducibility: each count against the serial run).
// mpi-ranks: 1 2 3
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "uvp/core/random.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/mpi/communicator.hpp"
#include "uvp/mpi/data_parallel.hpp"
#include "uvp/mpi/metrics.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"
#include "uvp/training/fit.hpp"

namespace {

using uvp::index;
using Model = uvp::nn::Chain<uvp::nn::Embedding<double>, uvp::nn::GlobalMeanPool1d<double>, uvp::nn::Dense<double>>;

constexpr index vocab = 40, dim = 6, steps = 5, rows = 150;

Model make_model(std::uint64_t seed, index embed_dim = dim) {
  uvp::Rng rng(seed);
  uvp::nn::Embedding<double> e(vocab, embed_dim, rng, 0);
  uvp::nn::Dense<double> head(embed_dim, 1, rng);
  Model m(std::move(e), uvp::nn::GlobalMeanPool1d<double>(), std::move(head));
  m.set_names({"embedding", "pool", "head"});
  return m;
}

/// Sequences whose label depends on whether low token ids dominate: learnable, noisy.
struct Toy {
  std::vector<index> ids, lengths;
  uvp::Vector<double> y;
  explicit Toy(index n, std::uint64_t seed) : ids(std::size_t(n * steps), 0), lengths(std::size_t(n)), y(n) {
    uvp::Rng rng(seed);
    for (index b = 0; b < n; ++b) {
      const index len = 1 + index(rng.uniform() * steps) % steps;
      lengths[std::size_t(b)] = len;
      double low = 0;
      for (index t = 0; t < len; ++t) {
        const index id = 1 + index(rng.uniform() * (vocab - 1)) % (vocab - 1);
        ids[std::size_t(b * steps + t)] = id;
        low += id < vocab / 2 ? 1 : 0;
      }
      y[b] = (low / double(len) + 0.3 * (rng.uniform() - 0.5)) > 0.5 ? 1.0 : 0.0;
    }
  }
  uvp::SequenceData<double> data() const {
    return uvp::SequenceData<double>(uvp::Span<const index>(ids), steps, uvp::Span<const index>(lengths), y);
  }
};

std::vector<double> params_of(Model& m) {
  auto v = m.parameters().values();
  return {v.begin(), v.end()};
}

/// True when every rank holds exactly these values (bitwise).
bool same_on_every_rank(const uvp::mpi::Communicator& comm, const std::vector<double>& v) {
  std::vector<double> all(v.size() * std::size_t(comm.size()));
  comm.allgather(uvp::Span<const double>(v), uvp::Span<double>(all));
  for (int r = 0; r < comm.size(); ++r)
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::memcmp(&all[std::size_t(r) * v.size() + i], &v[i], sizeof(double)) != 0) return false;
  return true;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("mpi fit: ranks x batch B follows the single-process fit with batch ranks x B; parameters identical on every rank") {
  uvp::mpi::Communicator comm;
  const Toy toy(rows, 7);
  const auto data = toy.data();
  // Rank 1 starts from other weights: the broadcast from rank 0 must erase them.
  Model model = make_model(comm.rank() == 0 ? 11 : 99);
  Model serial = make_model(11);
  uvp::Sgd<double> sgd(uvp::SgdOptions{0.5});
  uvp::Sgd<double> sgd_serial(uvp::SgdOptions{0.5});

  const Toy val(23, 4);
  uvp::mpi::ParallelTrainOptions<uvp::SequenceData<double>> o;
  o.epochs = 3, o.batch_size = 16, o.seed = 5;
  o.validation = val.data();  // no metric: the validation loss, over rows split across the ranks
  uvp::mpi::ParallelStats stats;
  const uvp::FitResult r = uvp::mpi::fit(comm, model, data, uvp::BceWithLogitsLoss<double>(), sgd, o, &stats);
  uvp::TrainOptions<uvp::SequenceData<double>> so;
  so.epochs = 3, so.batch_size = 16 * comm.size(), so.seed = 5;
  so.validation = val.data();
  const uvp::FitResult rs = uvp::fit(serial, data, uvp::BceWithLogitsLoss<double>(), sgd_serial, so);

  const auto p = params_of(model), ps = params_of(serial);
  CHECK(r.epochs_run == 3);
  CHECK(stats.steps == 3 * ((rows + 16 * comm.size() - 1) / (16 * comm.size())));
  CHECK(same_on_every_rank(comm, p));
  // The same global batches and the mean gradient over them: equal up to the summation order.
  CHECK(max_abs_diff(p, ps) < 1e-12);
  CHECK(r.final_train_loss == doctest::Approx(rs.final_train_loss).epsilon(1e-12));
  CHECK(r.final_validation == doctest::Approx(rs.final_validation).epsilon(1e-12));
  CHECK(std::isfinite(r.final_validation));
  if (comm.size() == 1) CHECK(p == ps);  // one rank: uvp::fit exactly
}

TEST_CASE("mpi fit: a linear model on rows (its L2 penalty added once) follows uvp::fit with batch ranks x B") {
  uvp::mpi::Communicator comm;
  const uvp::index n = 90, f = 3;
  uvp::Matrix<double> X(n, f);
  uvp::Vector<double> y(n);
  uvp::Rng rng(12);
  for (uvp::index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  for (uvp::index i = 0; i < n; ++i) y[i] = X(i, 0) - 0.5 * X(i, 2) + 0.3 * rng.normal() > 0 ? 1.0 : 0.0;
  uvp::LogisticRegressionOptions lo;
  lo.l2 = 0.05;
  uvp::LogisticRegression<double> m(f, lo), serial(f, lo);
  uvp::Adam<double> adam(uvp::AdamOptions{0.05}), adam_serial(uvp::AdamOptions{0.05});
  uvp::FitOptions o;
  o.epochs = 4, o.batch_size = 7, o.seed = 3;
  const uvp::FitResult r = uvp::mpi::fit(comm, m, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam, o);
  uvp::FitOptions so = o;
  so.batch_size = 7 * comm.size();
  const uvp::FitResult rs = uvp::fit(serial, uvp::RowData<double>(X, y), uvp::BceWithLogitsLoss<double>(), adam_serial, so);
  std::vector<double> p(m.coef().data(), m.coef().data() + f), ps(serial.coef().data(), serial.coef().data() + f);
  p.push_back(m.intercept()), ps.push_back(serial.intercept());
  CHECK(max_abs_diff(p, ps) < 1e-12);
  CHECK(std::abs(p[0]) > 0.1);  // it learned something
  CHECK(r.final_train_loss == doctest::Approx(rs.final_train_loss).epsilon(1e-12));
  CHECK(same_on_every_rank(comm, p));
}

TEST_CASE("mpi fit: Adam with early stopping on a distributed validation metric decides alike on every rank") {
  uvp::mpi::Communicator comm;
  const Toy toy(rows, 7), val(61, 8);
  Model model = make_model(3);
  uvp::Adam<double> adam(uvp::AdamOptions{0.05});
  uvp::mpi::ParallelTrainOptions<uvp::SequenceData<double>> o;
  o.epochs = 6, o.batch_size = 10, o.patience = 2, o.seed = 1;
  o.validation = val.data();
  o.metric = [](uvp::ConstMatrixView<double> y, uvp::ConstMatrixView<double> p) {
    return uvp::roc_auc<double>({y.data(), y.size()}, {p.data(), p.size()});
  };
  int calls = 0;
  const uvp::FitResult r = uvp::mpi::fit(comm, model, toy.data(), uvp::BceWithLogitsLoss<double>(), adam, o,
                                         [&](const uvp::EpochReport&) { return ++calls < 100; });
  // The metric over every validation row, not a per-rank average: recompute it here.
  model.eval();
  const auto pred = uvp::predict(model, val.data());
  const double auc = uvp::roc_auc<double>({val.y.data(), val.y.size()}, {pred.data(), pred.size()});
  if (!r.restored_best) CHECK(r.final_validation == auc);
  CHECK(calls == r.epochs_run);
  const std::vector<double> summary{double(r.epochs_run), double(r.best_epoch), r.best_score, r.final_validation,
                                    r.final_train_loss};
  CHECK(same_on_every_rank(comm, summary));
  CHECK(same_on_every_rank(comm, params_of(model)));
}

TEST_CASE("mpi fit: reproducible mode gives the serial run's parameters bit for bit, whatever the rank count") {
  uvp::mpi::Communicator comm;
  const Toy toy(rows, 21);
  uvp::mpi::ParallelTrainOptions<uvp::SequenceData<double>> o;
  o.epochs = 2, o.batch_size = 40, o.seed = 9, o.reproducible = true, o.clip_grad_norm = 1.0;
  Model model = make_model(4);
  uvp::Adam<double> adam(uvp::AdamOptions{0.02});
  auto bad = o;
  bad.micro_shards = 0;
  CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, model, toy.data(), uvp::BceWithLogitsLoss<double>(), adam, bad),
                       "uvp::mpi::fit: options.micro_shards must be in [1, 1024], got 0", uvp::invalid_argument);
  uvp::mpi::fit(comm, model, toy.data(), uvp::BceWithLogitsLoss<double>(), adam, o);
  // The same fit alone on this rank (a one-rank communicator).
  Model alone = make_model(4);
  uvp::Adam<double> adam_alone(uvp::AdamOptions{0.02});
  uvp::mpi::fit(uvp::mpi::Communicator(MPI_COMM_SELF), alone, toy.data(), uvp::BceWithLogitsLoss<double>(),
                adam_alone, o);
  const auto p = params_of(model);
  CHECK(std::memcmp(p.data(), params_of(alone).data(), p.size() * sizeof(double)) == 0);
  CHECK(same_on_every_rank(comm, p));
  // A fixed reference: the first weight after training, the same at 1, 2 and 3 ranks.
  std::vector<double> first{p[0]};
  CHECK(same_on_every_rank(comm, first));
}

TEST_CASE("mpi fit: a model that differs on one rank is refused at start-up on every rank") {
  uvp::mpi::Communicator comm;
  if (comm.size() < 2) return;
  const Toy toy(40, 2);
  Model model = make_model(1, comm.rank() == 1 ? dim + 2 : dim);
  uvp::Sgd<double> sgd;
  CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, model, toy.data(), uvp::BceWithLogitsLoss<double>(), sgd, uvp::FitOptions{}),
                       doctest::Contains("uvp::mpi::fit: rank 1 differs from rank 0: tensor 'embedding.weight' of shape (40, 8)"),
                       uvp::invalid_argument);
  // Other rows on one rank (a different file, another split): refused, naming the data.
  Toy other(40, 2);
  if (comm.rank() == 1) other.y[0] = 1 - other.y[0];
  Model same = make_model(1);
  CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, same, other.data(), uvp::BceWithLogitsLoss<double>(), sgd, uvp::FitOptions{}),
                       doctest::Contains("rank 1 differs from rank 0: data: 40 sequences x 5 steps, 1 outputs, checksum"),
                       uvp::invalid_argument);
  // Bad options on one rank only: every rank raises, none waits.
  uvp::FitOptions bad;
  if (comm.rank() == comm.size() - 1) bad.epochs = 0;
  Model ok = make_model(1);
  if (comm.rank() == comm.size() - 1)
    CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, ok, toy.data(), uvp::BceWithLogitsLoss<double>(), sgd, bad),
                         doctest::Contains("options.epochs must be >= 1"), uvp::invalid_argument);
  else
    CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, ok, toy.data(), uvp::BceWithLogitsLoss<double>(), sgd, bad),
                         doctest::Contains("uvp::mpi::fit: rank "), uvp::mpi::remote_error);
}

namespace {
/// BCE that throws on the last rank at its third call (a bad batch, a failing data source).
struct FailingLoss : uvp::BceWithLogitsLoss<double> {
  int rank = 0, fail_rank = 0, calls = 0;
  double operator()(uvp::ConstMatrixView<double> out, uvp::ConstMatrixView<double> y, const double* w,
                    uvp::MatrixView<double> grad) {
    if (rank == fail_rank && ++calls == 3) uvp::detail::raise<uvp::invalid_argument>("FailingLoss: bad batch at step 3");
    return uvp::BceWithLogitsLoss<double>::operator()(out, y, w, grad);
  }
};
}  // namespace

TEST_CASE("mpi fit: a rank that throws at step 3 stops every rank with the error, no hang") {
  uvp::mpi::Communicator comm;
  const Toy toy(rows, 3);
  Model model = make_model(2);
  uvp::Sgd<double> sgd;
  FailingLoss loss;
  loss.rank = comm.rank(), loss.fail_rank = comm.size() - 1;
  uvp::FitOptions o;
  o.epochs = 2, o.batch_size = 8;
  const std::string expected =
      uvp::detail::str("uvp::mpi::fit: rank ", comm.size() - 1, " failed: FailingLoss: bad batch at step 3");
  if (comm.rank() == loss.fail_rank)
    CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, model, toy.data(), loss, sgd, o), "FailingLoss: bad batch at step 3",
                         uvp::invalid_argument);
  else
    CHECK_THROWS_WITH_AS(uvp::mpi::fit(comm, model, toy.data(), loss, sgd, o), expected.c_str(), uvp::mpi::remote_error);
  // The communicator still works afterwards.
  int one = 1;
  comm.allreduce_sum(uvp::Span<int>(&one, 1));
  CHECK(one == comm.size());
}

TEST_CASE("mpi metrics: ROC-AUC and PR-AUC over the union of the ranks' rows, exact") {
  uvp::mpi::Communicator comm;
  const uvp::index n = 97;
  std::vector<double> y(n), s(n);
  uvp::Rng rng(17);
  for (uvp::index i = 0; i < n; ++i) {
    y[std::size_t(i)] = rng.uniform() < 0.3 ? 1 : 0;
    s[std::size_t(i)] = 0.5 * y[std::size_t(i)] + rng.uniform();
  }
  // Rank r holds rows [n*r/p, n*(r+1)/p); per-rank AUCs would average to something else.
  const uvp::index lo = n * comm.rank() / comm.size(), hi = n * (comm.rank() + 1) / comm.size();
  const uvp::Span<const double> ym(y.data() + lo, hi - lo), sm(s.data() + lo, hi - lo);
  CHECK(uvp::mpi::roc_auc<double>(comm, ym, sm) == uvp::roc_auc<double>(uvp::Span<const double>(y), uvp::Span<const double>(s)));
  CHECK(uvp::mpi::pr_auc<double>(comm, ym, sm) == uvp::pr_auc<double>(uvp::Span<const double>(y), uvp::Span<const double>(s)));
  // Different sizes on one rank: every rank raises.
  const uvp::Span<const double> short_s(s.data() + lo, comm.rank() == 0 ? hi - lo - 1 : hi - lo);
  CHECK_THROWS_AS(uvp::mpi::roc_auc<double>(comm, ym, short_s), uvp::shape_error);
}
