// SPDX-License-Identifier: Apache-2.0
// uvp::mpi::fit: uvp::fit over MPI ranks (data parallelism), for any model uvp::fit trains (an
// nn::Chain of library or user blocks, the linear models). Every rank runs the same program on
// the same data (each reads the whole training set; they agree on every row's place from the
// shared seed) and ends with the same parameters, bit for bit.
//
//   uvp::mpi::Environment env(argc, argv);
//   uvp::mpi::Communicator comm;
//   uvp::mpi::ParallelTrainOptions<uvp::SequenceData<float>> o;
//   o.epochs = 8, o.batch_size = 64;                // 64 rows per rank and step: 64 x ranks in all
//   o.validation = val, o.metric = roc_auc_metric;  // scored over the ranks (exact)
//   uvp::mpi::fit(comm, model, train, uvp::BceWithLogitsLoss<float>(), adam, o);
//
// What happens (docs/mpi.md has the costs):
//  - start-up: every rank describes its model (tensor names, shapes, buffer sizes), its data
//    (rows, widths) and the options that must agree; a difference raises uvp::invalid_argument
//    on every rank naming the first rank and the first difference. Then rank 0's parameters are
//    broadcast (the optimizer must be fresh, or in the same state, on every rank).
//  - every epoch: the same shuffle on every rank (uvp::Rng(options.seed)); the global batch of
//    batch_size x ranks rows is split into ranks consecutive parts, rank r taking part r; each
//    rank runs forward, the loss and backward on its part with d_output weighted by
//    rows_r / rows, so that the sum over the ranks is the gradient of the global batch's mean.
//  - every step, after backward: (1) a control message (every rank's loss and a failure flag,
//    one allgather of 2 doubles per rank); (2) one allreduce (sum) of the model's dense gradient
//    buffer; (3) for each embedding table, the touched rows as (row ids, rows) by allgatherv,
//    re-accumulated in rank order by the table's own row coalescing (never a dense table). Then
//    gradient clipping and the optimizer step run on identical gradients on every rank.
//  - every epoch's end: validation rows split over the ranks, predictions gathered (exact
//    metric, the same on every rank: early stopping decides alike); a callback returning false
//    on any rank stops all; an 8-byte checksum of the parameters is compared across ranks.
//
// Reproducible mode (options.reproducible): results do not depend on the number of ranks.
// options.batch_size is then the GLOBAL batch, cut into options.micro_shards pieces (6 by
// default; ranks take consecutive pieces); each piece's gradient is computed on its own (its own
// model context, seeded by the piece's number) and the pieces are added in piece order: the
// dense part by a fold along the ranks (Communicator::fold_in_rank_order), the sparse rows by
// allgatherv then coalescing in piece order. 1, 2 or 3 ranks give bit-identical parameters. Cost:
// size()-1 sequential hops per step instead of one allreduce, and no use of more than
// micro_shards ranks.
//
// Faults: an exception on a rank during a step (data, loss, model) or an epoch's end (metric,
// callback) is agreed on at the step's control message: that rank rethrows it, every other rank
// raises uvp::mpi::remote_error "uvp::mpi::fit: rank 1 failed: <message>". Nobody hangs. A
// non-finite global loss ends training on every rank alike (FitResult::diverged), as uvp::fit.
//
// Only rank 0 prints progress. Needs MPI_THREAD_FUNNELED at least (uvp::mpi::Environment).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/mpi/communicator.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/training/fit.hpp"

namespace uvp::mpi {

/// uvp::TrainOptions plus the data-parallel settings. batch_size: rows per rank and step
/// (the global batch is batch_size x ranks), or the global batch in reproducible mode.
template <class Data>
struct ParallelTrainOptions : TrainOptions<Data> {
  /// Results independent of the number of ranks (see the top of this file).
  bool reproducible = false;
  /// Reproducible mode: pieces of every global batch, computed and added separately (1 to 1024;
  /// at most this many ranks get work; a rank keeps its pieces' dense gradients until the fold).
  index micro_shards = 6;
  /// Score the validation data split over the ranks (true) or whole on every rank (false; the
  /// same numbers, more work).
  bool distributed_validation = true;
  /// Compare a checksum of the parameters across the ranks after every epoch (8 bytes per rank).
  bool check_consistency = true;

  ParallelTrainOptions() = default;
  ParallelTrainOptions(const TrainOptions<Data>& o) : TrainOptions<Data>(o) {}  // NOLINT: implicit on purpose
  ParallelTrainOptions(const FitOptions& o) : TrainOptions<Data>(o) {}           // NOLINT: implicit on purpose
};

/// Where the time of a data-parallel fit went (rank-local; the communication includes waiting for
/// the slowest rank).
struct ParallelStats {
  index steps = 0;
  double compute_seconds = 0;        ///< forward, loss, backward
  double communicate_seconds = 0;    ///< control message, gradient reduction, sparse exchange
  double bytes_sent_per_step = 0;    ///< this rank's payload per step (mean): gradients, rows, ids, control
  double us_per_step_communicating() const noexcept { return steps ? communicate_seconds * 1e6 / double(steps) : 0.0; }
};

namespace detail {

using ::uvp::detail::raise;
using ::uvp::detail::str;

/// FNV-1a over bytes: the parameter checksum (cheap, order-sensitive).
inline std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = 1469598103934665603ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/// The data's shape and a checksum of its contents (every rank must pass the same rows).
template <class T>
std::string describe_data(const RowData<T>& d) {
  std::uint64_t h = fnv1a(d.x, std::size_t(d.size() * d.features) * sizeof(T));
  h = fnv1a(d.y, std::size_t(d.size() * d.outputs) * sizeof(T), h);
  return str("data: ", d.size(), " rows x ", d.features, " features, ", d.outputs, " outputs, checksum ", h);
}
template <class T>
std::string describe_data(const SequenceData<T>& d) {
  std::uint64_t h = fnv1a(d.ids.data(), std::size_t(d.ids.size()) * sizeof(index));
  h = fnv1a(d.lengths.data(), std::size_t(d.lengths.size()) * sizeof(index), h);
  h = fnv1a(d.y, std::size_t(d.size() * d.outputs) * sizeof(T), h);
  return str("data: ", d.size(), " sequences x ", d.steps, " steps, ", d.outputs, " outputs, checksum ", h);
}

/// One line per thing that must agree across ranks: the model's tensors and buffers, the data's
/// shape, the options that decide the schedule.
template <class M, class Data, class Opts>
std::vector<std::string> describe(const M& model, const Data& data, const Opts& o) {
  std::vector<std::string> lines;
  const auto& p = model.parameters();
  if constexpr (::uvp::detail::has_model_parameters<M>::value) {
    for (const auto& t : p.tensors()) {
      std::string shape;
      for (std::size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
      lines.push_back(str("tensor '", t.name, "' of shape (", shape, ")", t.sparse ? " sparse" : ""));
    }
    lines.push_back(str("parameter buffer of ", p.size(), " values, ", p.dense_size(), " dense"));
  } else {
    lines.push_back(str("parameter buffer of ", p.values().size(), " values"));
  }
  lines.push_back(describe_data(data));
  lines.push_back(str("validation: ", o.validation.size(), " rows"));
  lines.push_back(str("options: epochs ", o.epochs, ", batch_size ", o.batch_size, ", shuffle ", o.shuffle, ", seed ",
                      o.seed, ", patience ", o.patience, ", reproducible ", o.reproducible, ", micro_shards ",
                      o.micro_shards, ", distributed_validation ", o.distributed_validation));
  return lines;
}

/// Collective: every rank's description against rank 0's; the first difference raises on every rank.
inline void check_same_everywhere(const Communicator& comm, const char* where, const std::vector<std::string>& lines) {
  std::string mine;
  for (const auto& l : lines) mine += l + '\n';
  std::vector<char> all;
  std::vector<int> counts;
  comm.allgatherv(Span<const char>(mine.data(), index(mine.size())), all, counts);
  std::vector<std::string> texts;
  index at = 0;
  for (int r = 0; r < comm.size(); ++r) {
    texts.emplace_back(all.data() + at, std::size_t(counts[std::size_t(r)]));
    at += counts[std::size_t(r)];
  }
  auto split = [](const std::string& t) {
    std::vector<std::string> v;
    std::size_t b = 0;
    for (std::size_t e; (e = t.find('\n', b)) != std::string::npos; b = e + 1) v.push_back(t.substr(b, e - b));
    return v;
  };
  const auto ref = split(texts[0]);
  for (int r = 1; r < comm.size(); ++r) {
    if (texts[std::size_t(r)] == texts[0]) continue;
    const auto other = split(texts[std::size_t(r)]);
    for (std::size_t i = 0; i < std::max(ref.size(), other.size()); ++i) {
      const std::string a = i < ref.size() ? ref[i] : "(nothing)", b = i < other.size() ? other[i] : "(nothing)";
      if (a != b)
        raise<invalid_argument>(where, ": rank ", r, " differs from rank 0: ", b, " on rank ", r, ", ", a,
                                " on rank 0 (every rank must build the same model and pass the same data and options)");
    }
  }
}

/// Where part k of n near-equal consecutive parts of [0, total) begins: floor(total * k / n),
/// without overflow.
inline index part_begin_exact(index total, index k, index n) { return total / n * k + (total % n) * k / n; }

}  // namespace detail

/// Trains model on data over the ranks of comm (see the top of this file); every rank must call
/// it with the same model architecture, data, loss and options. Returns the same FitResult on
/// every rank; stats (if not null) receives this rank's timings.
template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          ::uvp::detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(const Communicator& comm, Model& model, const Data& data, Loss loss, Optimizer& opt,
              const ParallelTrainOptions<Data>& o, ParallelStats* stats, Callbacks&&... callbacks) {
  constexpr const char* where = "uvp::mpi::fit";
  using namespace ::uvp::detail;
  using T = typename Data::value_type;
  using M = Model;
  static_assert(std::is_same_v<typename M::value_type, T>, "uvp::mpi::fit: the data and the model must have the same scalar type");
  using Out = decltype(std::declval<const M&>().forward(std::declval<const data_input_t<Data>&>(),
                                                       std::declval<typename M::Context&>()));
  static_assert(std::is_same_v<std::decay_t<Out>, ConstMatrixView<T>>,
                "uvp::mpi::fit: the model must end in a matrix (one row per sample), e.g. a pooling and a Dense");
  constexpr bool has_sparse = has_model_parameters<M>::value;
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const int rank = comm.rank(), ranks = comm.size();
  ParallelStats st;

  // Start-up: local checks, agreed on (a rank with bad options must not leave the others waiting).
  {
    std::exception_ptr err;
    try {
      check_fit_options(where, o);
      check_fit_optimizer(where, opt);
      check_fit_data(where, "data", data);
      if (o.validation.size() > 0) {
        check_fit_data(where, "options.validation", o.validation);
        check_data_like(where, data, o.validation);
        if (o.predict_chunk < 1) raise<invalid_argument>(where, ": options.predict_chunk must be >= 1, got ", o.predict_chunk);
      }
      if (o.micro_shards < 1 || o.micro_shards > 1024)
        raise<invalid_argument>(where, ": options.micro_shards must be in [1, 1024], got ", o.micro_shards);
      if constexpr (!has_set_lr<Optimizer>::value)
        if (o.schedule) raise<invalid_argument>(where, ": options.schedule needs an optimizer with set_lr(double)");
    } catch (...) {
      err = std::current_exception();
    }
    throw_if_any_failed(comm, where, err);
  }
  mpi::detail::check_same_everywhere(comm, where, mpi::detail::describe(model, data, o));
  comm.broadcast(model.parameters().values(), 0);

  const bool rep = o.reproducible;
  const index K = rep ? o.micro_shards : 1;
  // Pieces this rank computes per global batch: [k_lo, k_hi) of K (reproducible), or its part.
  const index k_lo = rep ? mpi::detail::part_begin_exact(K, rank, ranks) : 0;
  const index k_hi = rep ? mpi::detail::part_begin_exact(K, rank + 1, ranks) : 1;
  const index n = data.size();
  // batch_size x ranks, capped at n without overflowing.
  const index global_bs = rep || o.batch_size >= n ? std::min(o.batch_size, n) : std::min(o.batch_size * index(ranks), n);
  const index piece_max = rep ? (global_bs + K - 1) / K : std::min(o.batch_size, n);
  const bool has_validation = o.validation.size() > 0;

  BatchSource<Data> src;
  src.reserve(data, piece_max, o.shuffle);
  std::vector<index> order;
  if (o.shuffle) {
    order.resize(std::size_t(n));
    std::iota(order.begin(), order.end(), index(0));
  }
  Rng rng(o.seed);
  // A context per piece (reproducible: seeded by the piece's number, so Dropout draws alike
  // whichever rank computes it), else one per rank (seeded apart: the ranks' masks differ).
  using Ctx = typename M::Context;
  std::vector<Ctx> ctxs;
  for (index k = k_lo; k < std::max(k_hi, k_lo + 1); ++k)
    ctxs.push_back(make_fit_context<Ctx>(o.seed + std::uint64_t(rep ? k : index(rank)) * 0x9E3779B97F4A7C15ULL));
  Ctx& val_ctx = ctxs.front();
  auto values = model.parameters().values();
  std::vector<T> last_good(values.begin(), values.end());
  Matrix<T> d_out, val_grad;
  Loss val_loss = loss;
  bool prepared = false;

  auto& params = model.parameters();
  const index D = index(params.grads().size());
  // Reproducible mode keeps each piece's dense gradient (and its sparse rows) until the fold.
  std::vector<T> piece_grads(rep ? std::size_t(D * (k_hi - k_lo)) : 0);
  struct SparseExchange {
    std::vector<std::int64_t> ids, all_ids;
    std::vector<T> rows, all_rows;
    std::vector<int> counts;
  };
  std::vector<SparseExchange> sx;
  if constexpr (has_sparse) sx.resize(params.sparse_blocks().size());
  // Control message: [failed, loss of each of my pieces] per rank, K + 1 doubles.
  const index ctrl_n = 1 + K;
  std::vector<double> ctrl(static_cast<std::size_t>(ctrl_n)), all_ctrl(static_cast<std::size_t>(ctrl_n * ranks));
  std::vector<T> val_local, val_all;
  std::vector<int> val_counts;

  const bool early = o.patience > 0;
  EarlyStopping<T> stop(typename EarlyStopping<T>::Options{
      early ? o.patience : 1, o.min_delta, has_validation && o.metric ? o.higher_is_better : false});
  FitResult result;
  index steps = 0;
  std::FILE* progress = rank == 0 ? o.progress : nullptr;
  double comm_bytes = 0;

  auto finish = [&](std::string message) {
    if (early && o.restore_best && stop.has_best()) {
      stop.restore(model.parameters().values());
      result.restored_best = true;
    }
    if (early) result.best_epoch = stop.best_epoch(), result.best_score = stop.best_score();
    set_training(model, false);
    result.message = std::move(message);
    st.steps = steps;
    st.bytes_sent_per_step = steps ? comm_bytes / double(steps) : 0.0;
    if (stats) *stats = st;
    return result;
  };
  auto restore_after_failure = [&] {
    auto v = model.parameters().values();
    if (early && stop.has_best())
      stop.restore(v), result.restored_best = true;
    else
      std::copy(last_good.begin(), last_good.end(), v.begin());
  };
  auto diverged = [&](index epoch, double bad_loss) {
    restore_after_failure();
    result.diverged = true;
    result.epochs_run = epoch;
    if (early) result.best_epoch = stop.best_epoch(), result.best_score = stop.best_score();
    set_training(model, false);
    result.message = str(where, ": training diverged in epoch ", epoch, " (loss ", bad_loss,
                         ", or non-finite parameters); parameters restored to those ",
                         result.restored_best ? str("of the best epoch, ", stop.best_epoch())
                                              : std::string("after the last complete epoch"),
                         " (lower the learning rate)");
    st.steps = steps;
    if (stats) *stats = st;
    return result;
  };

  // Forward, loss and backward of rows [s, s + m) of the epoch's order with d_output scaled by
  // weight; returns the weighted loss. The gradients accumulate into the model's buffers.
  auto compute_piece = [&](Ctx& ctx, index s, index m, double weight) {
    const auto batch = src.gather(data, o.shuffle ? order.data() : nullptr, s, m);
    const ConstMatrixView<T> out = static_cast<const M&>(model).forward(batch.input, ctx);
    if (!prepared) {
      loss.prepare(where, data.targets(), out.cols());
      if (has_validation) {
        val_loss = loss;
        val_loss.prepare(where, o.validation.targets(), out.cols(), /*fit_weights=*/false);
      }
      prepared = true;
    }
    if (d_out.rows() < m || d_out.cols() != out.cols()) d_out.resize(std::max(m, piece_max), out.cols());
    MatrixView<T> d(d_out.data(), m, out.cols());
    const double l = loss(out, batch.y, batch.w, d);
    if (weight != 1.0) d *= T(weight);
    if constexpr (has_accumulate_gradients<M>::value)
      model.accumulate_gradients(ctx, ConstMatrixView<T>(d.data(), m, d.cols()));
    else
      model.backward(ctx, ConstMatrixView<T>(d.data(), m, d.cols()));
    return l * weight;
  };

  // Stashes the sparse rows of the model's tables (after a piece) into the exchange buffers.
  auto stash_sparse = [&] {
    if constexpr (has_sparse) {
      const auto& blocks = params.sparse_blocks();
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        const auto& sg = blocks[b]->sparse_grad();
        for (index r : sg.rows) sx[b].ids.push_back(std::int64_t(r));
        sx[b].rows.insert(sx[b].rows.end(), sg.values.begin(), sg.values.end());
      }
    }
  };

  // (row ids, rows) of every rank, re-accumulated in rank (= piece) order.
  auto exchange_sparse = [&] {
    if constexpr (has_sparse) {
      const auto& blocks = params.sparse_blocks();
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        auto& e = sx[b];
        auto& sg = blocks[b]->sparse_grad();
        comm.allgatherv(Span<const std::int64_t>(e.ids), e.all_ids, e.counts);
        comm.allgatherv(Span<const T>(e.rows), e.all_rows, e.counts);
        comm_bytes += double(e.ids.size() * sizeof(std::int64_t) + e.rows.size() * sizeof(T));
        sg.clear();
        const index dim = sg.dim;
        const index rows_in_table = index(sg.slot_of_row.size());
        for (std::size_t i = 0; i < e.all_ids.size(); ++i) {
          const index row = index(e.all_ids[i]);
          if (row < 0 || row >= rows_in_table)
            raise<backend_error>(where, ": a gathered embedding row id (", row, ") is out of range [0, ", rows_in_table, ")");
          const T* g = e.all_rows.data() + index(i) * dim;
          index& slot = sg.slot_of_row[std::size_t(row)];
          if (slot < 0) {
            slot = sg.size();
            sg.rows.push_back(row);
            sg.values.insert(sg.values.end(), g, g + dim);
          } else {
            T* dst = sg.values.data() + slot * dim;
            for (index j = 0; j < dim; ++j) dst[j] += g[j];
          }
        }
        e.ids.clear();
        e.rows.clear();
      }
    }
  };

  for (index epoch = 1; epoch <= o.epochs; ++epoch) {
    set_training(model, true);
    if constexpr (has_set_lr<Optimizer>::value)
      if (o.schedule && !o.schedule_per_step) opt.set_lr(o.schedule.lr(epoch - 1));
    if (o.shuffle) rng.shuffle(order.begin(), order.end());
    double loss_sum = 0;
    index batches = 0;
    for (index s = 0; s < n; s += global_bs) {
      const index g = std::min(global_bs, n - s);
      if constexpr (has_set_lr<Optimizer>::value)
        if (o.schedule && o.schedule_per_step) opt.set_lr(o.schedule.lr(steps));
      const auto tc = Clock::now();
      std::exception_ptr err;
      std::fill(ctrl.begin(), ctrl.end(), 0.0);
      try {
        if (!rep) {
          const index lo = s + mpi::detail::part_begin_exact(g, rank, ranks);
          const index m = s + mpi::detail::part_begin_exact(g, rank + 1, ranks) - lo;
          fit_zero_grad(model);
          if (m > 0) ctrl[1] = compute_piece(ctxs[0], lo, m, double(m) / double(g));
          if constexpr (has_penalty<M>::value)
            if (rank == 0) ctrl[1] += model.add_penalty();
          stash_sparse();
        } else {
          for (index k = k_lo; k < k_hi; ++k) {
            const index lo = s + mpi::detail::part_begin_exact(g, k, K);
            const index m = s + mpi::detail::part_begin_exact(g, k + 1, K) - lo;
            fit_zero_grad(model);
            double l = 0;
            if (m > 0) l = compute_piece(ctxs[std::size_t(k - k_lo)], lo, m, double(m) / double(g));
            if constexpr (has_penalty<M>::value)
              if (k == 0) l += model.add_penalty();
            ctrl[std::size_t(1 + k)] = l;
            const auto gr = params.grads();
            std::copy(gr.begin(), gr.end(), piece_grads.begin() + (k - k_lo) * D);
            stash_sparse();
          }
        }
      } catch (...) {
        err = std::current_exception();
      }
      ctrl[0] = err ? 1.0 : 0.0;
      const auto tm = Clock::now();
      st.compute_seconds += std::chrono::duration<double>(tm - tc).count();

      // (1) Control message: failures first (so no rank reduces a half-computed gradient), then the loss.
      comm.allgather(Span<const double>(ctrl), Span<double>(all_ctrl));
      bool any_failed = false;
      for (int r = 0; r < ranks; ++r) any_failed = any_failed || all_ctrl[std::size_t(r * ctrl_n)] != 0.0;
      if (any_failed) {
        throw_if_any_failed(comm, where, err);
      }
      double batch_loss = 0;
      if (!rep) {
        for (int r = 0; r < ranks; ++r) batch_loss += all_ctrl[std::size_t(r * ctrl_n + 1)];
      } else {
        for (index k = 0; k < K; ++k) {
          const int owner = [&] {
            for (int r = 0; r < ranks; ++r)
              if (k < mpi::detail::part_begin_exact(K, r + 1, ranks)) return r;
            return ranks - 1;
          }();
          batch_loss += all_ctrl[std::size_t(owner * ctrl_n + 1 + k)];
        }
      }
      // (2) Dense gradients, (3) sparse rows.
      auto grads = params.grads();
      if (!rep) {
        comm.allreduce_sum(grads);
      } else {
        const index mine = k_hi - k_lo;
        comm.fold_in_rank_order(grads, [&](Span<T> acc) {
          if (rank == 0) std::fill(acc.begin(), acc.end(), T(0));
          for (index k = 0; k < mine; ++k) {
            const T* gk = piece_grads.data() + k * D;
            for (index i = 0; i < D; ++i) acc[i] = T(acc[i] + gk[i]);
          }
        });
      }
      comm_bytes += double(D) * sizeof(T) + double(ctrl_n) * sizeof(double);
      exchange_sparse();
      st.communicate_seconds += std::chrono::duration<double>(Clock::now() - tm).count();

      if (!std::isfinite(batch_loss)) {
        std::exception_ptr bad;
        try {
          // Each rank checks its own rows of the failing batch for a NaN or infinity.
          const index lo = rep ? s : s + mpi::detail::part_begin_exact(g, rank, ranks);
          const index hi = rep ? s + g : s + mpi::detail::part_begin_exact(g, rank + 1, ranks);
          src.check_finite_input(where, data, o.shuffle ? order.data() : nullptr, lo, hi - lo, restore_after_failure);
        } catch (...) {
          bad = std::current_exception();
        }
        throw_if_any_failed(comm, where, bad);
        return diverged(epoch, batch_loss);
      }
      if (o.clip_grad_norm > 0) clip_grad_norm(model, o.clip_grad_norm);
      fit_step(opt, model);
      ++steps;
      loss_sum += batch_loss;
      ++batches;
    }
    values = model.parameters().values();
    if (!values.as_vector().allFinite()) return diverged(epoch, loss_sum / double(batches));
    std::copy(values.begin(), values.end(), last_good.begin());
    result.epochs_run = epoch;
    result.final_train_loss = loss_sum / double(batches);

    EpochReport report{epoch, o.epochs, result.final_train_loss};
    bool go_on = true, go_on_early = true;
    std::exception_ptr err;
    try {
      if (o.check_consistency) {
        std::uint64_t h = mpi::detail::fnv1a(values.data(), std::size_t(values.size()) * sizeof(T));
        std::vector<std::uint64_t> all(static_cast<std::size_t>(ranks));
        comm.allgather(Span<const std::uint64_t>(&h, 1), Span<std::uint64_t>(all));
        for (int r = 1; r < ranks; ++r)
          if (all[std::size_t(r)] != all[0])
            raise<backend_error>(where, ": after epoch ", epoch, " the parameters on rank ", r,
                                 " differ from rank 0's (the MPI library's sum gave different bits on different "
                                 "ranks; use options.reproducible)");
      }
      if (has_validation) {
        set_training(model, false);
        const index nv = o.validation.size();
        const index lo = o.distributed_validation ? mpi::detail::part_begin_exact(nv, rank, ranks) : 0;
        const index hi = o.distributed_validation ? mpi::detail::part_begin_exact(nv, rank + 1, ranks) : nv;
        index cols = 0;
        val_local.clear();
        for (index s = lo; s < hi; s += o.predict_chunk) {
          const index m = std::min(o.predict_chunk, hi - s);
          const auto batch = src.gather(o.validation, nullptr, s, m);
          const ConstMatrixView<T> y = static_cast<const M&>(model).forward(batch.input, val_ctx);
          if (y.rows() != m)
            raise<shape_error>(where, ": the model gave ", y.rows(), " rows for a chunk of ", m,
                               " (its output must have one row per sample)");
          cols = y.cols();
          val_local.insert(val_local.end(), y.data(), y.data() + y.size());
        }
        const T* pred = val_local.data();
        if (o.distributed_validation) {
          comm.allgatherv(Span<const T>(val_local), val_all, val_counts);
          pred = val_all.data();
          cols = index(val_all.size()) / nv;
        }
        const ConstMatrixView<T> P(pred, nv, cols);
        if (!prepared && !o.metric) {  // a rank that has computed no rows yet
          loss.prepare(where, data.targets(), cols);
          val_loss = loss;
          val_loss.prepare(where, o.validation.targets(), cols, /*fit_weights=*/false);
          prepared = true;
        }
        if (o.metric) {
          report.validation = o.metric(ConstMatrixView<T>(o.validation.targets()), P);
        } else {
          if (val_grad.rows() != nv || val_grad.cols() != cols) val_grad.resize(nv, cols);
          report.validation = val_loss(P, o.validation.targets(),
                                       o.validation.sample_weight.empty() ? nullptr : o.validation.sample_weight.data(),
                                       MatrixView<T>(val_grad.data(), val_grad.rows(), val_grad.cols()));
        }
        result.final_validation = report.validation;
      }
      if constexpr (has_lr<Optimizer>::value) report.lr = double(opt.lr());
      report.elapsed_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      if (progress) {
        const double eta = report.elapsed_seconds / double(epoch) * double(o.epochs - epoch);
        std::fprintf(progress, "epoch %ld/%ld  loss %.4f", long(epoch), long(o.epochs), report.train_loss);
        if (has_validation)
          std::fprintf(progress, "  val_%s %.4f", o.metric ? o.metric_name.c_str() : loss_name<Loss>(), report.validation);
        std::fprintf(progress, "  %.1fs  eta %.0fs  (%d ranks)\n", report.elapsed_seconds, eta, ranks);
        std::fflush(progress);
      }
      const double monitored = has_validation ? report.validation : report.train_loss;
      go_on_early = early ? stop.update(monitored, model.parameters().values()) : true;
      go_on = notify_epoch(report, callbacks...);
    } catch (...) {
      err = std::current_exception();
    }
    throw_if_any_failed(comm, where, err);
    // A callback may answer differently on different ranks: any "stop" stops all.
    int stop_flag = go_on ? 0 : 1;
    comm.allreduce_max(Span<int>(&stop_flag, 1));
    go_on = stop_flag == 0;
    if (!go_on || !go_on_early) {
      result.stopped_early = true;
      return finish(!go_on ? str("stopped by a callback after epoch ", epoch)
                           : str("early stopping after epoch ", epoch, ": no improvement for ", o.patience,
                                 " epochs; best epoch ", stop.best_epoch()));
    }
  }
  return finish(str("completed ", o.epochs, " epochs"));
}

/// As above without timings.
template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          ::uvp::detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(const Communicator& comm, Model& model, const Data& data, Loss loss, Optimizer& optimizer,
              const ParallelTrainOptions<Data>& options, Callbacks&&... callbacks) {
  return mpi::fit(comm, model, data, std::move(loss), optimizer, options, static_cast<ParallelStats*>(nullptr),
                  callbacks...);
}

/// With TrainOptions: the default data-parallel settings.
template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          ::uvp::detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(const Communicator& comm, Model& model, const Data& data, Loss loss, Optimizer& optimizer,
              const TrainOptions<Data>& options, Callbacks&&... callbacks) {
  return mpi::fit(comm, model, data, std::move(loss), optimizer, ParallelTrainOptions<Data>(options),
                  static_cast<ParallelStats*>(nullptr), callbacks...);
}

/// With plain FitOptions: the default data-parallel settings.
template <class Model, class Data, class Loss, class Optimizer, class... Callbacks,
          ::uvp::detail::enable_if_callbacks<Callbacks...> = 0>
FitResult fit(const Communicator& comm, Model& model, const Data& data, Loss loss, Optimizer& optimizer,
              const FitOptions& options = {}, Callbacks&&... callbacks) {
  return mpi::fit(comm, model, data, std::move(loss), optimizer, ParallelTrainOptions<Data>(options),
                  static_cast<ParallelStats*>(nullptr), callbacks...);
}

}  // namespace uvp::mpi
