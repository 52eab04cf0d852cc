// SPDX-License-Identifier: Apache-2.0
// Ranking metrics over the union of the ranks' predictions: each rank passes its own rows; the
// scores, labels (and weights) are gathered in rank order and the metric is computed on the whole
// on every rank — the exact value over all rows, never an average of per-rank values, and the same
// bits everywhere (so decisions taken on it, such as early stopping, agree).
//
//   double auc = uvp::mpi::roc_auc<float>(comm, y_mine, p_mine);   // = uvp::roc_auc on all rows
//
// Collective: every rank must call, with or without sample weights alike. Cost: an allgatherv of
// 2 (or 3) values per row, then the single-process metric on all rows on every rank.
#pragma once

#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/metrics/ranking.hpp"
#include "uvp/mpi/communicator.hpp"

namespace uvp::mpi {

namespace detail {

/// The ranks' y_true, y_score and (if any rank has them) sample_weight, concatenated in rank order.
template <class T>
struct GatheredScores {
  std::vector<T> y, score, weight;
};

template <class T>
GatheredScores<T> gather_scores(const Communicator& comm, const char* where, Span<const T> y_true,
                                Span<const T> y_score, Span<const T> sample_weight) {
  // Weighted on one rank means weighted on all (a rank without rows may pass none): each rank's
  // kind (0 no rows, 1 unweighted, 2 weighted) is gathered, so every rank decides alike.
  // A rank whose sizes disagree (kind 3) makes every rank raise.
  const bool bad = y_true.size() != y_score.size() || (!sample_weight.empty() && sample_weight.size() != y_true.size());
  const int kind = bad ? 3 : y_true.empty() ? 0 : (sample_weight.empty() ? 1 : 2);
  std::vector<int> kinds(static_cast<std::size_t>(comm.size()));
  comm.allgather(Span<const int>(&kind, 1), Span<int>(kinds));
  if (bad)
    ::uvp::detail::raise<shape_error>(where, ": y_true, y_score and sample_weight have sizes ", y_true.size(), ", ",
                                      y_score.size(), " and ", sample_weight.size(), " (sample_weight: 0 or the same)");
  for (int r = 0; r < comm.size(); ++r)
    if (kinds[static_cast<std::size_t>(r)] == 3)
      ::uvp::detail::raise<shape_error>(where, ": rank ", r, " passed arrays of different sizes");
  bool weighted = false, unweighted = false;
  for (int k : kinds) weighted = weighted || k == 2, unweighted = unweighted || k == 1;
  if (weighted && unweighted)
    ::uvp::detail::raise<invalid_argument>(where, ": sample_weight is given on some ranks and empty on others");
  GatheredScores<T> g;
  std::vector<int> counts;
  comm.allgatherv(y_true, g.y, counts);
  comm.allgatherv(y_score, g.score, counts);
  if (weighted) comm.allgatherv(sample_weight, g.weight, counts);
  return g;
}

}  // namespace detail

/// ROC-AUC of all ranks' rows (uvp::roc_auc on their union; errors as uvp::roc_auc's, on every rank).
template <class T>
double roc_auc(const Communicator& comm, Span<const T> y_true, Span<const T> y_score,
               Span<const T> sample_weight = {}) {
  const auto g = detail::gather_scores(comm, "uvp::mpi::roc_auc", y_true, y_score, sample_weight);
  return ::uvp::roc_auc<T>(Span<const T>(g.y), Span<const T>(g.score), Span<const T>(g.weight));
}

/// PR-AUC (average precision) of all ranks' rows (uvp::pr_auc on their union).
template <class T>
double pr_auc(const Communicator& comm, Span<const T> y_true, Span<const T> y_score,
              Span<const T> sample_weight = {}) {
  const auto g = detail::gather_scores(comm, "uvp::mpi::pr_auc", y_true, y_score, sample_weight);
  return ::uvp::pr_auc<T>(Span<const T>(g.y), Span<const T>(g.score), Span<const T>(g.weight));
}

/// Average precision of all ranks' rows: the same number as pr_auc.
template <class T>
double average_precision(const Communicator& comm, Span<const T> y_true, Span<const T> y_score,
                         Span<const T> sample_weight = {}) {
  const auto g = detail::gather_scores(comm, "uvp::mpi::average_precision", y_true, y_score, sample_weight);
  return ::uvp::average_precision<T>(Span<const T>(g.y), Span<const T>(g.score), Span<const T>(g.weight));
}

}  // namespace uvp::mpi
