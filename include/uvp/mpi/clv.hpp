// SPDX-License-Identifier: Apache-2.0
// Distributed CLV: customers sharded across MPI ranks, the transaction log summarised per shard,
// BG/NBD and Gamma-Gamma fitted with the likelihood sums reduced across ranks at every BFGS step.
// Needs MPI: link uvp::mpi (UVP_WITH_MPI); no other uvp header includes this one.
//
//   uvp::mpi::Environment env(argc, argv);
//   uvp::mpi::Communicator comm;
//   uvp::TransactionLog mine = ...;                            // any rows, on any rank
//   uvp::CustomerSummary shard = uvp::mpi::summary_from_transactions(comm, mine, end, uvp::TimeUnit::week);
//   uvp::BgNbd bg;
//   uvp::mpi::fit(comm, bg, shard);                            // the same parameters on every rank
//   auto p_alive = bg.probability_alive(shard.frequency, shard.recency, shard.T);  // scores per shard
//
// Sharding. A customer belongs to one of `blocks` fixed blocks, block = customer_hash(id) % blocks,
// and block b to rank b % size. customer_hash is FNV-1a (64-bit) over the id's bytes followed by
// MurmurHash3's fmix64 finaliser: stable across runs, machines and library versions (a change
// would be a breaking one), and spreading ids like "0001", "0002" evenly.
//
// What is reduced. A fit's sums over customers - the log-likelihood and its gradient, 5 doubles
// for BG/NBD and 4 for Gamma-Gamma at every evaluation of the objective - are formed per *unit*
// (the rank's customers, or a block's), gathered to every rank (MPI_Allgatherv: 1 + 1 + k doubles
// per unit, the unit's number first) and added in unit order. Every rank then holds the same bits,
// runs the same BFGS iterate and makes the same next call, so no parameter is ever broadcast.
// After BFGS, a few Newton steps on the gradient (DistributedClvOptions::polish) move the estimate
// onto the likelihood's stationary point, which BFGS alone leaves anywhere in the region where the
// objective is flat at double precision (1.5e-7 wide on CDNOW's Gamma-Gamma). Two kinds of unit:
// - Reduction::rank_order (default): a rank's customers are one unit. The ranks' sums are added in
//   rank order, so the last bits of the sums depend on the number of ranks; with the polish, 1 and
//   2 or 3 ranks agree to 6.4e-13 on CDNOW (tested to 1e-10). Without it, on one rank the fit is
//   BgNbd::fit / GammaGamma::fit bit for bit.
// - Reduction::fixed_blocks: each block is a unit, its customers summed in the order of their ids,
//   and the block sums added in block order: the estimate is the same bits for any number of
//   ranks (tested on 1, 2 and 3). Customers must sit on their block's rank (what
//   shard_transactions does); a customer elsewhere is an error. Costs the per-distinct-frequency
//   terms once per block (both CDNOW fits at 64 blocks: 0.2-0.3 s on a loaded 2-core machine,
//   against 5-20 ms in rank order) and `blocks` x (2 + k) doubles gathered per evaluation.
//
// Scoring needs nothing distributed: the fitted model is the same on every rank, and each rank
// scores its own customers (BgNbd::probability_alive, score_customers, ... on its shard).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "uvp/clv/bg_nbd.hpp"
#include "uvp/clv/date.hpp"
#include "uvp/clv/fit_result.hpp"
#include "uvp/clv/gamma_gamma.hpp"
#include "uvp/clv/summary.hpp"
#include "uvp/clv/transactions.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/clv_identifiability.hpp"
#include "uvp/detail/clv_patterns.hpp"
#include "uvp/io/file.hpp"
#include "uvp/mpi/communicator.hpp"

namespace uvp::mpi {

/// The blocks customers are hashed into unless a function is told otherwise.
inline constexpr int kDefaultClvBlocks = 64;

/// How a distributed CLV fit adds its sums over customers (see the file comment).
enum class Reduction {
  rank_order,   ///< per rank, then the ranks' sums in rank order: 1 rank = the single-process fit, bit for bit
  fixed_blocks  ///< per fixed block of customers, in block order: the same bits for any number of ranks
};

/// Options of the distributed fits; every rank must pass the same ones (checked).
struct DistributedClvOptions {
  Reduction reduction = Reduction::rank_order;
  /// Blocks of the customer hash (fixed_blocks: the units of the sums). 1 .. 2^20; the data must
  /// have been sharded with the same number.
  int blocks = kDefaultClvBlocks;
  /// After BFGS has converged, Newton steps on the analytic gradient (detail::newton_polish): the
  /// estimate is then the likelihood's stationary point to ~1e-12 relative, so 1, 2 or 64 ranks
  /// agree to 1e-10 in either reduction - BFGS alone stops anywhere in the region where the
  /// objective is flat at double precision (1.5e-7 wide on CDNOW's Gamma-Gamma). false: the result is
  /// BgNbd::fit's / GammaGamma::fit's (on one rank with rank_order, bit for bit).
  bool polish = true;
};

/// The documented, stable hash of a customer id: FNV-1a 64 over its bytes, then fmix64.
inline std::uint64_t customer_hash(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : id) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

/// The block of a customer, customer_hash(id) % blocks.
inline int customer_block(std::string_view id, int blocks = kDefaultClvBlocks) noexcept {
  return static_cast<int>(customer_hash(id) % static_cast<std::uint64_t>(blocks));
}

/// The rank a customer's transactions and summary row live on: customer_block(id, blocks) % size.
inline int customer_rank(std::string_view id, int size, int blocks = kDefaultClvBlocks) noexcept {
  return customer_block(id, blocks) % size;
}

namespace detail {

inline void check_blocks(const char* where, int blocks) {
  if (blocks < 1 || blocks > (1 << 20))
    ::uvp::detail::raise<invalid_argument>(where, ": blocks must be in [1, 1048576], got ", blocks);
}

/// The uvp::error class of e as one letter, so that every rank can raise the failing rank's type.
inline char error_kind(const std::exception& e) noexcept {
  if (dynamic_cast<const shape_error*>(&e)) return 's';
  if (dynamic_cast<const out_of_range_error*>(&e)) return 'o';
  if (dynamic_cast<const invalid_argument*>(&e)) return 'a';
  if (dynamic_cast<const parse_error*>(&e)) return 'p';
  if (dynamic_cast<const io_error*>(&e)) return 'i';
  if (dynamic_cast<const numeric_error*>(&e)) return 'n';
  if (dynamic_cast<const not_fitted_error*>(&e)) return 'f';
  if (dynamic_cast<const format_error*>(&e)) return 'm';
  return 'b';  // backend_error, and anything else (std::bad_alloc ...)
}

template <class... Args>
[[noreturn]] void raise_kind(char kind, const Args&... args) {
  using ::uvp::detail::raise;
  switch (kind) {
    case 's': raise<shape_error>(args...);
    case 'o': raise<out_of_range_error>(args...);
    case 'a': raise<invalid_argument>(args...);
    case 'p': raise<parse_error>(args...);
    case 'i': raise<io_error>(args...);
    case 'n': raise<numeric_error>(args...);
    case 'f': raise<not_fitted_error>(args...);
    case 'm': raise<format_error>(args...);
    default: raise<backend_error>(args...);
  }
}

/// Runs fn on every rank; when it throws (a std::exception) on any rank, every rank throws the
/// same uvp::error class with the first failing rank's message ("<where>: rank r: <what>"), so no
/// rank is left waiting in a later collective. A collective itself (one MPI_Allgatherv).
template <class F>
void collective_check(const Communicator& comm, const char* where, F&& fn) {
  std::string what;
  try {
    fn();
  } catch (const std::exception& e) {
    what = std::string(1, error_kind(e)) + e.what();
  }
  std::vector<int> counts;
  std::vector<char> all;
  comm.allgatherv(Span<const char>(what.data(), static_cast<index>(what.size())), all, counts);
  std::size_t off = 0;
  for (int r = 0; r < comm.size(); ++r) {
    const auto n = static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
    if (n > 0) raise_kind(all[off], where, ": rank ", r, ": ", std::string(all.data() + off + 1, n - 1));
    off += n;
  }
}

/// Every rank passes the same values (an options struct flattened); otherwise every rank throws
/// uvp::invalid_argument naming the first value that differs from rank 0's. A collective.
inline void check_same_on_all_ranks(const Communicator& comm, const char* where, const std::vector<double>& values,
                                    const std::vector<const char*>& names) {
  std::vector<int> counts;
  std::vector<double> all;
  comm.allgatherv(Span<const double>(values.data(), static_cast<index>(values.size())), all, counts);
  const std::size_t k = values.size();
  for (int r = 1; r < comm.size(); ++r) {
    if (static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]) != k)
      ::uvp::detail::raise<invalid_argument>(where, ": the options differ across ranks (rank ", r, " passes ",
                                             counts[static_cast<std::size_t>(r)], " values, rank 0 ", k, ")");
    for (std::size_t i = 0; i < k; ++i) {
      const double a = all[i], b = all[static_cast<std::size_t>(r) * k + i];
      if (std::memcmp(&a, &b, sizeof a) != 0)
        ::uvp::detail::raise<invalid_argument>(where, ": the options differ across ranks: ", names[i], " is ", b,
                                               " on rank ", r, " but ", a, " on rank 0 (every rank must pass the "
                                               "same options)");
    }
  }
}

/// Sums of k values per unit over every rank's units, added in unit order. Each rank passes its
/// units' rows [unit, v_1 .. v_k]; units are numbered in [0, n_units) and each appears on one
/// rank only. Buffers are kept between calls (a fit's evaluations allocate nothing after the first).
class UnitSums {
 public:
  UnitSums(const Communicator& comm, int k, int n_units) : comm_(&comm), k_(k), n_units_(n_units) {}

  /// rows: this rank's rows (1 + k doubles each); out: k sums.
  void sum(const std::vector<double>& rows, double* out) const {
    comm_->allgatherv(Span<const double>(rows.data(), static_cast<index>(rows.size())), all_, counts_);
    const std::size_t w = static_cast<std::size_t>(k_) + 1;
    slot_.assign(static_cast<std::size_t>(n_units_), -1);
    for (std::size_t i = 0; i + w <= all_.size(); i += w) {
      const double u = all_[i];
      if (!(u >= 0 && u < n_units_) || slot_[static_cast<std::size_t>(u)] >= 0)
        ::uvp::detail::raise<backend_error>("uvp::mpi: unit ", u, " reported twice or out of range (ranks disagree)");
      slot_[static_cast<std::size_t>(u)] = static_cast<std::ptrdiff_t>(i);
    }
    bool first = true;
    for (const std::ptrdiff_t s : slot_) {
      if (s < 0) continue;
      const double* v = all_.data() + s + 1;
      for (int j = 0; j < k_; ++j) out[j] = first ? v[j] : out[j] + v[j];
      first = false;
    }
    if (first) std::fill(out, out + k_, 0.0);
  }

 private:
  const Communicator* comm_;
  int k_, n_units_;
  mutable std::vector<double> all_;
  mutable std::vector<int> counts_;
  mutable std::vector<std::ptrdiff_t> slot_;
};

/// This rank's customers split into units: the whole shard (rank_order) or the blocks it owns,
/// each in id order (fixed_blocks). rows[u] are the shard's row indices of unit unit_id[u].
struct Units {
  std::vector<int> unit_id;
  std::vector<std::vector<index>> rows;
  int n_units = 1;
};

inline Units split_units(const Communicator& comm, const char* where, const CustomerSummary& s, index n,
                         const DistributedClvOptions& opt) {
  Units u;
  if (opt.reduction == Reduction::rank_order) {
    u.n_units = comm.size();
    u.unit_id.push_back(comm.rank());
    u.rows.emplace_back(static_cast<std::size_t>(n));
    for (index i = 0; i < n; ++i) u.rows[0][static_cast<std::size_t>(i)] = i;
    return u;
  }
  u.n_units = opt.blocks;
  if (static_cast<index>(s.id.size()) != n)
    ::uvp::detail::raise<invalid_argument>(where, ": Reduction::fixed_blocks needs the customer ids (summary.id has ",
                                           s.id.size(), " entries for ", n, " customers)");
  std::vector<std::vector<index>> by_block(static_cast<std::size_t>(opt.blocks));
  for (index i = 0; i < n; ++i) {
    const std::string& id = s.id[static_cast<std::size_t>(i)];
    const int b = customer_block(id, opt.blocks);
    if (b % comm.size() != comm.rank())
      ::uvp::detail::raise<invalid_argument>(where, ": customer '", ::uvp::detail::printable(id, 64), "' (row ", i,
                                             ") belongs on rank ", b % comm.size(), " (block ", b, " of ", opt.blocks,
                                             ") but is on rank ", comm.rank(),
                                             "; shard the data with uvp::mpi::shard_transactions (same blocks)");
    by_block[static_cast<std::size_t>(b)].push_back(i);
  }
  const auto key = [&](index i) {
    return std::make_tuple(std::string_view(s.id[static_cast<std::size_t>(i)]), s.frequency[i], s.recency[i], s.T[i],
                           s.monetary_value.size() == s.frequency.size() ? s.monetary_value[i] : 0.0);
  };
  for (int b = 0; b < opt.blocks; ++b) {
    auto& rows = by_block[static_cast<std::size_t>(b)];
    if (rows.empty()) continue;
    // The order inside a block must not depend on where the rows came from: by id, then values.
    std::sort(rows.begin(), rows.end(), [&](index x, index y) { return key(x) < key(y); });
    u.unit_id.push_back(b);
    u.rows.push_back(std::move(rows));
  }
  return u;
}

inline Vector<double> gather_rows(const Vector<double>& v, const std::vector<index>& rows) {
  Vector<double> out(static_cast<index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) out[static_cast<index>(i)] = v[rows[i]];
  return out;
}

/// A likelihood over every rank's customers for BgNbd / GammaGamma::fit_likelihood: one local
/// Likelihood per unit; evaluate() gathers the units' sums and adds them in unit order.
template <class Likelihood, class Params, int K>
class DistributedLikelihood {
 public:
  DistributedLikelihood(const Communicator& comm, std::vector<int> unit_id, std::vector<Likelihood> liks, int n_units)
      : sums_(comm, K + 1, n_units), unit_id_(std::move(unit_id)), liks_(std::move(liks)) {
    rows_.reserve(unit_id_.size() * (K + 2));
    std::vector<double> rows;
    for (std::size_t u = 0; u < liks_.size(); ++u) rows.insert(rows.end(), {double(unit_id_[u]), liks_[u].total_weight()});
    UnitSums(comm, 1, n_units).sum(rows, &total_weight_);
  }

  double total_weight() const noexcept { return total_weight_; }

  /// The log-likelihood summed over every rank's customers (and its gradient when grad is not
  /// null); a collective: every rank calls it with the same p.
  double evaluate(const Params& p, double* grad) const {
    rows_.clear();
    for (std::size_t u = 0; u < liks_.size(); ++u) {
      double g[K];
      const double ll = liks_[u].evaluate(p, g);
      rows_.push_back(double(unit_id_[u]));
      rows_.push_back(ll);
      rows_.insert(rows_.end(), g, g + K);
    }
    double out[K + 1];
    sums_.sum(rows_, out);
    if (grad) std::copy(out + 1, out + 1 + K, grad);
    return out[0];
  }

 private:
  UnitSums sums_;
  std::vector<int> unit_id_;
  std::vector<Likelihood> liks_;
  mutable std::vector<double> rows_;
  double total_weight_ = 0;
};

/// Newton steps on the analytic gradient of the fits' objective -sum(w LL) / W + penalizer * |p|^2
/// in log-parameters u, from a converged BFGS estimate p (updated in place). BFGS stops where the
/// objective is flat at double precision, which for a badly conditioned model (CDNOW's Gamma-Gamma:
/// p and q nearly collinear) is a region 1e-7 wide, and where in it depends on the last bits of
/// the sums; the gradient stays informative there, so a Newton step on it (Hessian by central
/// differences of the gradient, h = 1e-4, computed once) lands on its root to ~1e-12, whatever
/// the order of the sums. A step is kept only when it is small (< 1e-3 in u) and lowers max |g|;
/// at most 4 steps, 2K + 5 evaluations in all. A collective through lik.evaluate. Returns the steps taken.
template <int K, class Params, class Likelihood, class Make>
int newton_polish(const Likelihood& lik, double penalizer, std::array<double, K>& p, Make&& make) {
  const double W = lik.total_weight();
  using Vec = Eigen::Matrix<double, K, 1>;
  auto gradient = [&](const Vec& u, Vec& g) {
    std::array<double, K> v;
    for (int i = 0; i < K; ++i) v[static_cast<std::size_t>(i)] = std::exp(u[i]);
    double grad[K];
    lik.evaluate(make(v), grad);
    for (int i = 0; i < K; ++i)
      g[i] = v[static_cast<std::size_t>(i)] * (-grad[i] / W + 2 * penalizer * v[static_cast<std::size_t>(i)]);
    return g.allFinite();
  };
  Vec u, g;
  for (int i = 0; i < K; ++i) u[i] = std::log(p[static_cast<std::size_t>(i)]);
  if (!gradient(u, g)) return 0;
  constexpr double h = 1e-4;
  Eigen::Matrix<double, K, K> H;
  for (int j = 0; j < K; ++j) {
    Vec up = u, um = u, gp, gm;
    up[j] += h, um[j] -= h;
    if (!gradient(up, gp) || !gradient(um, gm)) return 0;
    H.col(j) = (gp - gm) / (2 * h);
  }
  const Eigen::Matrix<double, K, K> Hs = 0.5 * (H + H.transpose());
  const Eigen::LDLT<Eigen::Matrix<double, K, K>> ldlt(Hs);
  if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) return 0;
  int steps = 0;
  for (; steps < 4; ++steps) {
    const double gn = g.cwiseAbs().maxCoeff();
    if (!(gn > 0)) break;
    const Vec step = -ldlt.solve(g);
    if (!step.allFinite() || !(step.cwiseAbs().maxCoeff() < 1e-3)) break;
    const Vec u2 = u + step;
    Vec g2;
    if (!gradient(u2, g2) || !(g2.cwiseAbs().maxCoeff() < gn)) break;
    u = u2, g = g2;
  }
  for (int i = 0; i < K; ++i) p[static_cast<std::size_t>(i)] = std::exp(u[i]);
  return steps;
}

inline void check_fit_options(const char* where, double penalizer, int max_iterations, double gradient_tolerance,
                              const DistributedClvOptions& d) {
  if (!std::isfinite(penalizer) || penalizer < 0)
    ::uvp::detail::raise<invalid_argument>(where, ": penalizer must be finite and >= 0, got ", penalizer);
  ::uvp::detail::check_positive(where, "max_iterations", max_iterations);
  ::uvp::detail::check_positive(where, "gradient_tolerance", gradient_tolerance);
  check_blocks(where, d.blocks);
}

}  // namespace detail

/// BgNbd::fit over the customers of every rank: `shard` is this rank's part (frequency, recency,
/// T; ids for Reduction::fixed_blocks; it may be empty on some ranks). Every rank calls it with
/// the same options and ends with the same parameters in `model` and the same result
/// (`customers` counts every rank's). The result is BgNbd::fit's on the union of the shards: the
/// same checks, penalty, starts, boundary rule and standard errors; see the file comment for what
/// is reduced. Bad data on any rank, or options that differ across ranks (uvp::invalid_argument), throw
/// the same uvp::error class on every rank (uvp::invalid_argument for data), naming the rank.
inline ClvFitResult fit(const Communicator& comm, BgNbd& model, const CustomerSummary& shard,
                        const BgNbdFitOptions& options = {}, const DistributedClvOptions& dist = {}) {
  constexpr const char* where = "uvp::mpi::fit(BgNbd)";
  const BgNbdParams init = options.initial.value_or(BgNbdParams{});
  detail::check_same_on_all_ranks(
      comm, where,
      {options.penalizer, double(options.max_iterations), options.gradient_tolerance, double(options.initial.has_value()),
       init.r, init.alpha, init.a, init.b, double(dist.reduction), double(dist.blocks), double(dist.polish)},
      {"penalizer", "max_iterations", "gradient_tolerance", "initial (given or not)", "initial.r", "initial.alpha",
       "initial.a", "initial.b", "reduction", "blocks", "polish"});
  const index n = shard.frequency.size();
  detail::Units units;
  detail::collective_check(comm, where, [&] {
    detail::check_fit_options("uvp::BgNbd::fit", options.penalizer, options.max_iterations, options.gradient_tolerance,
                              dist);
    if (options.initial) ::uvp::detail::check_bgnbd_params("uvp::BgNbd::fit", *options.initial);
    if (n > 0) ::uvp::detail::check_rft("uvp::BgNbd::fit", shard.frequency, shard.recency, shard.T);
    units = detail::split_units(comm, where, shard, n, dist);
  });
  // The data's shape per unit, [customers, repeat weight, max T, sum x, sum T, identical, x, t_x, T
  // of the first customer], combined in unit order.
  std::vector<double> shape_rows;
  std::vector<::uvp::detail::BgNbdLikelihood> liks;
  for (std::size_t u = 0; u < units.rows.size(); ++u) {
    const auto& rows = units.rows[u];
    const Vector<double> f = detail::gather_rows(shard.frequency, rows), r = detail::gather_rows(shard.recency, rows),
                         T = detail::gather_rows(shard.T, rows);
    const ::uvp::detail::ClvDataShape s = ::uvp::detail::clv_data_shape(f, r, T, nullptr);
    const index j = std::max<index>(s.first, 0);
    shape_rows.insert(shape_rows.end(),
                      {double(units.unit_id[u]), double(s.customers), s.repeat_weight, s.max_T, s.sum_wx, s.sum_wT,
                       double(s.identical), f.size() ? f[j] : 0.0, f.size() ? r[j] : 0.0, f.size() ? T[j] : 0.0});
    liks.push_back(::uvp::detail::grouped_likelihood<::uvp::detail::BgNbdLikelihood>(f, r, T, nullptr));
  }
  std::vector<double> all;
  std::vector<int> counts;
  comm.allgatherv(Span<const double>(shape_rows), all, counts);
  constexpr std::size_t w = 10;
  std::vector<const double*> by_unit(static_cast<std::size_t>(units.n_units), nullptr);
  for (std::size_t i = 0; i + w <= all.size(); i += w) by_unit[static_cast<std::size_t>(all[i])] = all.data() + i;
  ::uvp::detail::ClvDataShape shape;
  Vector<double> f1(1), r1(1), T1(1);
  index customers = 0;
  bool any = false;
  for (const double* v : by_unit) {
    if (!v || v[1] == 0) continue;
    customers += static_cast<index>(v[1]);
    shape.customers += static_cast<index>(v[1]);
    shape.repeat_weight = any ? shape.repeat_weight + v[2] : v[2];
    shape.max_T = std::max(shape.max_T, v[3]);
    shape.sum_wx = any ? shape.sum_wx + v[4] : v[4];
    shape.sum_wT = any ? shape.sum_wT + v[5] : v[5];
    if (!any) {
      f1[0] = v[7], r1[0] = v[8], T1[0] = v[9];
      shape.first = 0;
      shape.identical = v[6] != 0;
    } else {
      shape.identical = shape.identical && v[6] != 0 && v[7] == f1[0] && v[8] == r1[0] && v[9] == T1[0];
    }
    any = true;
  }
  // Every rank raises the same error from the same gathered values.
  if (customers == 0) ::uvp::detail::raise<invalid_argument>(where, ": no rank has any customer");
  const std::string identical = ::uvp::detail::check_identifiable(
      "uvp::BgNbd::fit", shape, f1, r1, T1, options.penalizer,
      "a and b do not enter the likelihood and the purchase rate's estimate is 0 (r / alpha -> 0)");
  const detail::DistributedLikelihood<::uvp::detail::BgNbdLikelihood, BgNbdParams, 4> lik(
      comm, std::move(units.unit_id), std::move(liks), units.n_units);
  // Unweighted: the largest T over the customers is the shape's.
  ClvFitResult out = model.fit_likelihood(lik, shape, identical, customers, shape.max_T, options);
  if (dist.polish && out.converged && model.is_fitted()) {
    const BgNbdParams q = model.params();
    std::array<double, 4> v{q.r, q.alpha, q.a, q.b};
    const auto make = [](const std::array<double, 4>& x) { return BgNbdParams{x[0], x[1], x[2], x[3]}; };
    if (detail::newton_polish<4, BgNbdParams>(lik, options.penalizer, v, make) > 0) {
      model = BgNbd(make(v));
      out.parameters.assign(v.begin(), v.end());
      out.log_likelihood = lik.evaluate(model.params(), nullptr);
      out.objective = -out.log_likelihood / lik.total_weight() +
                      options.penalizer * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3]);
    }
  }
  return out;
}

/// GammaGamma::fit over the customers of every rank (frequency and monetary_value of `shard`;
/// ids for Reduction::fixed_blocks): the same contract as the BgNbd overload. The frequency /
/// spend correlation of the result's warning is computed over every rank's customers too.
inline ClvFitResult fit(const Communicator& comm, GammaGamma& model, const CustomerSummary& shard,
                        const GammaGammaFitOptions& options = {}, const DistributedClvOptions& dist = {}) {
  constexpr const char* where = "uvp::mpi::fit(GammaGamma)";
  const GammaGammaParams init = options.initial.value_or(GammaGammaParams{});
  detail::check_same_on_all_ranks(
      comm, where,
      {options.penalizer, double(options.max_iterations), options.gradient_tolerance, double(options.initial.has_value()),
       init.p, init.q, init.gamma, options.correlation_warning, double(dist.reduction), double(dist.blocks), double(dist.polish)},
      {"penalizer", "max_iterations", "gradient_tolerance", "initial (given or not)", "initial.p", "initial.q",
       "initial.gamma", "correlation_warning", "reduction", "blocks", "polish"});
  const index n = shard.frequency.size();
  detail::Units units;
  detail::collective_check(comm, where, [&] {
    detail::check_fit_options("uvp::GammaGamma::fit", options.penalizer, options.max_iterations,
                              options.gradient_tolerance, dist);
    if (options.initial) ::uvp::detail::check_gg_params("uvp::GammaGamma::fit", *options.initial);
    if (n > 0) ::uvp::detail::check_fm("uvp::GammaGamma::fit", shard.frequency, shard.monetary_value, true);
    units = detail::split_units(comm, where, shard, n, dist);
  });
  // Per unit: [repeat buyers, sum m, sum 1, sum x, sum m (correlation's first pass)], in unit order.
  std::vector<double> rows;
  std::vector<::uvp::detail::GammaGammaLikelihood> liks;
  std::vector<Vector<double>> fs, ms;
  for (std::size_t u = 0; u < units.rows.size(); ++u) {
    fs.push_back(detail::gather_rows(shard.frequency, units.rows[u]));
    ms.push_back(detail::gather_rows(shard.monetary_value, units.rows[u]));
    const Vector<double>&f = fs.back(), &m = ms.back();
    liks.emplace_back(f, m, nullptr);
    double spend = 0, sw = 0, sx = 0;
    for (index i = 0; i < f.size(); ++i)
      if (f[i] > 0) spend += m[i], sw += 1, sx += f[i];
    rows.insert(rows.end(), {double(units.unit_id[u]), double(liks.back().size()), spend, sw, sx});
  }
  const detail::UnitSums first(comm, 4, units.n_units);
  double s1[4];
  first.sum(rows, s1);
  const auto customers = static_cast<index>(s1[0]);
  if (customers == 0)
    ::uvp::detail::raise<invalid_argument>(where,
                                           ": no customer on any rank has frequency > 0 (the model is fitted on repeat "
                                           "buyers)");
  // frequency_monetary_correlation's second pass, with the global means.
  double rho = std::numeric_limits<double>::quiet_NaN();
  {
    const double mx = s1[3] / s1[2], mm = s1[1] / s1[2];
    rows.clear();
    for (std::size_t u = 0; u < fs.size(); ++u) {
      double cxx = 0, cmm = 0, cxm = 0;
      for (index i = 0; i < fs[u].size(); ++i)
        if (fs[u][i] > 0) {
          const double dx = fs[u][i] - mx, dm = ms[u][i] - mm;
          cxx += dx * dx, cmm += dm * dm, cxm += dx * dm;
        }
      rows.insert(rows.end(), {double(units.unit_id[u]), cxx, cmm, cxm});
    }
    double s2[3];
    detail::UnitSums(comm, 3, units.n_units).sum(rows, s2);
    if (customers >= 2 && s2[0] > 0 && s2[1] > 0) rho = s2[2] / std::sqrt(s2[0] * s2[1]);
  }
  const detail::DistributedLikelihood<::uvp::detail::GammaGammaLikelihood, GammaGammaParams, 3> lik(
      comm, std::move(units.unit_id), std::move(liks), units.n_units);
  ClvFitResult out = model.fit_likelihood(lik, customers, s1[1] / lik.total_weight(), rho, options);
  if (dist.polish && out.converged && model.is_fitted()) {
    const GammaGammaParams q = model.params();
    std::array<double, 3> v{q.p, q.q, q.gamma};
    const auto make = [](const std::array<double, 3>& x) { return GammaGammaParams{x[0], x[1], x[2]}; };
    if (detail::newton_polish<3, GammaGammaParams>(lik, options.penalizer, v, make) > 0) {
      model = GammaGamma(make(v));
      out.parameters.assign(v.begin(), v.end());
      out.log_likelihood = lik.evaluate(model.params(), nullptr);
      out.objective = -out.log_likelihood / lik.total_weight() + options.penalizer * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    }
  }
  return out;
}

/// Sends every transaction of `local` (this rank's rows of the log, any of them) to its
/// customer's rank, customer_rank(id, size, blocks), with MPI_Alltoallv; returns the rows this
/// rank received, in the order (source rank, row). Afterwards all the transactions of a customer
/// are on one rank. Columns of different lengths on any rank throw uvp::shape_error on every rank. Bytes moved: per row its id plus 24 (length, day, amount).
inline TransactionLog shard_transactions(const Communicator& comm, const TransactionLog& local,
                                         int blocks = kDefaultClvBlocks) {
  constexpr const char* where = "uvp::mpi::shard_transactions";
  const std::size_t n = local.customer_id.size();
  detail::collective_check(comm, where, [&] {
    detail::check_blocks(where, blocks);
    ::uvp::detail::check_size(where, "transactions.date", static_cast<index>(local.date.size()), index(n));
    ::uvp::detail::check_size(where, "transactions.amount", static_cast<index>(local.amount.size()), index(n));
    for (std::size_t i = 0; i < n; ++i)
      if (local.customer_id[i].size() > std::size_t(1) << 20)
        ::uvp::detail::raise<invalid_argument>(where, ": customer id of row ", i, " is ", local.customer_id[i].size(),
                                               " bytes long (at most 1 MiB)");
  });
  const int P = comm.size();
  std::vector<int> dest(n), rows_to(static_cast<std::size_t>(P), 0), chars_to(static_cast<std::size_t>(P), 0);
  for (std::size_t i = 0; i < n; ++i) {
    const int r = customer_rank(local.customer_id[i], P, blocks);
    dest[i] = r;
    ++rows_to[static_cast<std::size_t>(r)];
    const index c = index(chars_to[static_cast<std::size_t>(r)]) + index(local.customer_id[i].size());
    chars_to[static_cast<std::size_t>(r)] = mpi::detail::to_count(where, "the ids sent to one rank", c);
  }
  std::vector<std::size_t> row_at(static_cast<std::size_t>(P) + 1, 0), char_at(static_cast<std::size_t>(P) + 1, 0);
  for (int r = 0; r < P; ++r) {
    row_at[static_cast<std::size_t>(r) + 1] = row_at[static_cast<std::size_t>(r)] + std::size_t(rows_to[std::size_t(r)]);
    char_at[static_cast<std::size_t>(r) + 1] = char_at[static_cast<std::size_t>(r)] + std::size_t(chars_to[std::size_t(r)]);
  }
  std::vector<std::int64_t> len(n), day(n);
  std::vector<double> amount(n);
  std::vector<char> chars(char_at.back());
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = static_cast<std::size_t>(dest[i]);
    const std::size_t k = row_at[r]++;
    const std::string& id = local.customer_id[i];
    len[k] = static_cast<std::int64_t>(id.size());
    day[k] = local.date[i].days();
    amount[k] = local.amount[i];
    std::copy(id.begin(), id.end(), chars.begin() + static_cast<std::ptrdiff_t>(char_at[r]));
    char_at[r] += id.size();
  }
  const std::vector<std::int64_t> rlen = comm.alltoallv(Span<const std::int64_t>(len), rows_to);
  const std::vector<std::int64_t> rday = comm.alltoallv(Span<const std::int64_t>(day), rows_to);
  const std::vector<double> ramount = comm.alltoallv(Span<const double>(amount), rows_to);
  const std::vector<char> rchars = comm.alltoallv(Span<const char>(chars), chars_to);
  TransactionLog out;
  out.customer_id.reserve(rlen.size());
  out.date.reserve(rlen.size());
  out.amount = ramount;
  std::size_t off = 0;
  for (std::size_t i = 0; i < rlen.size(); ++i) {
    out.customer_id.emplace_back(rchars.data() + off, static_cast<std::size_t>(rlen[i]));
    off += static_cast<std::size_t>(rlen[i]);
    out.date.push_back(Date::from_days(rday[i]));
  }
  return out;
}

/// uvp::summary_from_transactions of the whole log, spread over the ranks: the rows of `local`
/// are first sent to their customers' ranks (shard_transactions), then each rank sorts its rows
/// by (id, date, amount) and summarises its customers - one row per customer with a purchase on or
/// before observation_end, in id order; `id` holds the ids. The summary of a customer is the same
/// bits however the log was split over however many ranks, and equals the single-process
/// summary's (the monetary value up to the rounding of summing the amounts in another order). A rank may end with no customer (an empty summary); no transaction on or
/// before observation_end on any rank, or bad amounts, throw uvp::invalid_argument on every rank.
inline CustomerSummary summary_from_transactions(const Communicator& comm, const TransactionLog& local,
                                                 Date observation_end, TimeUnit unit = TimeUnit::week,
                                                 int blocks = kDefaultClvBlocks) {
  constexpr const char* where = "uvp::mpi::summary_from_transactions";
  const TransactionLog received = shard_transactions(comm, local, blocks);
  // Rows in (id, date, amount) order: the order they arrived in depends on how the log was split
  // over the ranks, and a customer's amounts are summed in row order.
  std::vector<std::size_t> order(received.customer_id.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int c = received.customer_id[a].compare(received.customer_id[b]);
    if (c != 0) return c < 0;
    if (received.date[a] != received.date[b]) return received.date[a] < received.date[b];
    return received.amount[a] < received.amount[b];
  });
  TransactionLog mine;
  mine.customer_id.reserve(order.size());
  mine.date.reserve(order.size());
  mine.amount.reserve(order.size());
  for (const std::size_t i : order) {
    mine.customer_id.push_back(received.customer_id[i]);
    mine.date.push_back(received.date[i]);
    mine.amount.push_back(received.amount[i]);
  }
  bool any = false;
  for (const Date d : mine.date) any = any || d <= observation_end;
  CustomerSummary out;
  detail::collective_check(comm, where, [&] {
    for (std::size_t i = 0; i < mine.amount.size(); ++i)
      if (!std::isfinite(mine.amount[i]) || mine.amount[i] < 0)
        ::uvp::detail::raise<invalid_argument>(where, ": the amount of customer '",
                                               ::uvp::detail::printable(mine.customer_id[i], 64), "' on ",
                                               mine.date[i].to_string(), " is ", mine.amount[i],
                                               " (must be finite and >= 0)");
    if (any) out = ::uvp::summary_from_transactions(mine, observation_end, unit);
  });
  std::vector<std::int64_t> total{out.size()};
  comm.allreduce_sum(Span<std::int64_t>(total));
  if (total[0] == 0)
    ::uvp::detail::raise<invalid_argument>(where, ": no transaction on or before observation_end ",
                                           observation_end.to_string(), " on any rank");
  return out;
}

/// The same, observed up to the last transaction date of the whole log (over every rank).
inline CustomerSummary summary_from_transactions(const Communicator& comm, const TransactionLog& local,
                                                 TimeUnit unit = TimeUnit::week, int blocks = kDefaultClvBlocks) {
  std::vector<std::int64_t> last{std::numeric_limits<std::int64_t>::min()};
  for (const Date d : local.date) last[0] = std::max(last[0], d.days());
  comm.allreduce_max(Span<std::int64_t>(last));
  if (last[0] == std::numeric_limits<std::int64_t>::min())
    ::uvp::detail::raise<invalid_argument>("uvp::mpi::summary_from_transactions: the log is empty on every rank");
  return summary_from_transactions(comm, local, Date::from_days(last[0]), unit, blocks);
}

}  // namespace uvp::mpi
