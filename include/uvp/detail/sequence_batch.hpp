// SPDX-License-Identifier: Apache-2.0
// Internals shared by the sequence blocks of uvp::nn (MultiHeadSelfAttention, Lstm, Conv1d,
// GlobalMaxPool1d / GlobalMeanPool1d): the argument checks of a batch of sequences, the finite
// check of its valid steps, grow-only buffers and strided row-major views.
//
//   X  (batch * seq_len) x cols, row b * seq_len + t (batch-first)
//   lengths  empty (every sequence has seq_len steps) or batch values n_b in [1, seq_len];
//            rows t >= n_b of sequence b are padding
//   batch    >= 0: an empty batch (0 sequences, X with 0 rows) is valid everywhere and gives an
//            empty output and no gradient (see docs/nn.md, "Empty batches")
#pragma once

#include <cstddef>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/gemm.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/detail/nn_rows.hpp"

namespace uvp::detail {

/// (AlignedBuffer and grow, the workspaces these blocks share, are in detail/nn_rows.hpp.)

/// Row-major views with a row stride: one head's columns of a fused matrix, or step t of every
/// sequence of a batch-first buffer.
template <class T>
using StridedView = Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstStridedView = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;

/// How check_sequence_batch words a bad entry of lengths. The blocks were written with two
/// wordings and their tests (and users) match on them, so both are kept:
///   masks  (attention, pooling, conv1d): n_b < 1 -> invalid_argument "... must be >= 1 (a length
///          of 0 masks every position)"; n_b > seq_len -> out_of_range_error "... exceeds seq_len"
///   steps  (Lstm): n_b = 0 -> invalid_argument "... (a sequence needs at least one step)";
///          n_b < 0 or > seq_len -> out_of_range_error "... is outside [1, seq_len = S]"
enum class LengthsWording { masks, steps };

/// Checks a batch of sequences: batch >= 0, seq_len >= 1, X (batch * seq_len) x cols, lengths
/// empty or batch values in [1, seq_len]. `where` names the caller in every message.
template <class T>
void check_sequence_batch(const char* where, const ConstMatrixRef<T>& X, index cols, index batch, index seq_len,
                          Span<const index> lengths, LengthsWording wording = LengthsWording::masks) {
  if (batch < 0) raise<invalid_argument>(where, ": batch must be >= 0, got ", batch);
  if (seq_len < 1) raise<invalid_argument>(where, ": seq_len must be >= 1, got ", seq_len);
  if (X.rows() != batch * seq_len)
    raise<shape_error>(where, ": X has ", X.rows(), " rows, expected batch * seq_len = ", batch * seq_len);
  check_cols(where, "X", X.cols(), cols);
  if (lengths.empty()) return;
  check_size(where, "lengths", lengths.size(), batch);
  for (index b = 0; b < batch; ++b) {
    const index n = lengths[b];
    if (wording == LengthsWording::steps) {
      if (n == 0) raise<invalid_argument>(where, ": lengths[", b, "] = 0 (a sequence needs at least one step)");
      if (n < 0 || n > seq_len)
        raise<out_of_range_error>(where, ": lengths[", b, "] = ", n, " is outside [1, seq_len = ", seq_len, "]");
    } else {
      if (n < 1)
        raise<invalid_argument>(where, ": lengths[", b, "] = ", n,
                                " must be >= 1 (a length of 0 masks every position)");
      if (n > seq_len)
        raise<out_of_range_error>(where, ": lengths[", b, "] = ", n, " exceeds seq_len = ", seq_len);
    }
  }
}

/// uvp::numeric_error naming `what`, the row and column of the first NaN / infinity among the
/// valid steps of M ((batch * seq_len) x cols); padding steps are not read.
template <class T>
void check_finite_steps(const char* where, const char* what, const ConstMatrixRef<T>& M, index batch,
                        index seq_len, Span<const index> lengths) {
  for (index b = 0; b < batch; ++b) {
    const index n = lengths.empty() ? seq_len : lengths[b];
    for (index r = b * seq_len; r < b * seq_len + n; ++r) nn_check_finite_row<T>(where, what, M, r);
  }
}

/// uvp::invalid_argument unless the sizes of a batch of sequences handed to a block (`what`, an
/// nn::SequenceBatch, whose fields are public) can describe its rows: batch, steps and features
/// >= 0, and data set when there are values.
template <class Batch>
void check_batch_sizes(const char* where, const char* what, const Batch& x) {
  if (x.batch < 0 || x.steps < 0 || x.features < 0)
    raise<invalid_argument>(where, ": ", what, " has batch ", x.batch, ", steps ", x.steps, " and ", x.features,
                            " features (each must be >= 0)");
  if (x.data == nullptr && x.batch * x.steps * x.features > 0)
    raise<invalid_argument>(where, ": ", what, " has no data for its ", x.batch * x.steps, " rows");
}

/// The same for a forward's input, named "x".
template <class Batch>
void check_batch_sizes(const char* where, const Batch& x) {
  check_batch_sizes(where, "x", x);
}

/// uvp::invalid_argument when `what` (a contract forward's x, or a backward's d_output) lies in
/// one of the context's own buffers (vectors), which the call overwrites, or moves when it grows.
template <class T, class... Buffers>
void check_not_in_context(const char* where, const char* what, const ConstMatrixRef<T>& m, const Buffers&... bufs) {
  const auto in = [&m](const auto& buf) {
    const auto n = static_cast<index>(buf.size());
    return ranges_overlap(m.data(), m.rows(), m.outerStride(), m.cols(), buf.data(), n > 0 ? index(1) : 0, n, n);
  };
  if ((in(bufs) || ...))
    raise<invalid_argument>(where, ": ", what, " lies in the context's own buffers (the output or gradient of its "
                            "last pass); give this call another context, or copy it first");
}

/// uvp::shape_error unless a batch of sequences handed to a backward (`what`, a d_output) has the
/// batch, steps and features its forward produced: "<where>: d_output has batch 2, steps 5 and
/// 3 features, expected batch 2, steps 5 and 4 features".
inline void check_sequence_shape(const char* where, const char* what, index batch, index steps, index features,
                                 index expected_batch, index expected_steps, index expected_features) {
  if (batch != expected_batch || steps != expected_steps || features != expected_features)
    raise<shape_error>(where, ": ", what, " has batch ", batch, ", steps ", steps, " and ", features,
                       " features, expected batch ", expected_batch, ", steps ", expected_steps, " and ",
                       expected_features, " features");
}

}  // namespace uvp::detail
