// SPDX-License-Identifier: Apache-2.0
// uvp::predict: a model's outputs for a whole data set, in chunks through one reused context.
#pragma once

#include <type_traits>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/training/training_data.hpp"

namespace uvp {

struct PredictOptions {
  /// Rows per forward pass: bounds the memory of the model's context (activations of
  /// chunk_size rows); the results do not depend on it beyond the blocks' rounding.
  index chunk_size = 1024;
};

namespace detail {

template <class M, class = void>
struct has_is_training : std::false_type {};
template <class M>
struct has_is_training<M, std::void_t<decltype(bool(std::declval<const M&>().is_training()))>> : std::true_type {};

/// out (n x outputs, resized once) = the model's outputs on data, chunk rows at a time.
template <class M, class Data, class Ctx>
void predict_rows(const char* where, const M& model, const Data& data, index chunk, BatchSource<Data>& src, Ctx& ctx,
                  Matrix<typename Data::value_type>& out) {
  using T = typename Data::value_type;
  const index n = data.size();
  for (index s = 0; s < n; s += chunk) {
    const index m = std::min(chunk, n - s);
    const auto batch = src.gather(data, nullptr, s, m);
    const ConstMatrixView<T> y = model.forward(batch.input, ctx);
    if (y.rows() != m)
      raise<shape_error>(where, ": the model gave ", y.rows(), " rows for a chunk of ", m,
                         " (its output must have one row per sample)");
    if (s == 0 && (out.rows() != n || out.cols() != y.cols())) out.resize(n, y.cols());
    out.middleRows(s, m) = y;
  }
}

}  // namespace detail

/// The model's outputs (n x outputs) on data (RowData<T>: X; SequenceData<T>: ids, steps,
/// lengths; targets are ignored), chunk_size rows per forward through one context. Const and
/// thread-safe. The model must be in eval mode when it has one (uvp::fit leaves it so):
/// uvp::invalid_argument otherwise, since Dropout would draw.
template <class Model, class Data>
Matrix<typename Data::value_type> predict(const Model& model, const Data& data, const PredictOptions& options = {}) {
  constexpr const char* where = "uvp::predict";
  using T = typename Data::value_type;
  static_assert(std::is_same_v<typename Model::value_type, T>,
                "uvp::predict: the data and the model must have the same scalar type");
  if (options.chunk_size < 1)
    detail::raise<invalid_argument>(where, ": options.chunk_size must be >= 1, got ", options.chunk_size);
  if (data.size() == 0) detail::raise<invalid_argument>(where, ": data is empty");
  if constexpr (detail::has_is_training<Model>::value)
    if (model.is_training())
      detail::raise<invalid_argument>(where, ": the model is in training mode; call model.eval() first");
  detail::BatchSource<Data> src;
  auto ctx = detail::make_fit_context<typename Model::Context>(0x5eed);
  Matrix<T> out;
  detail::predict_rows(where, model, data, options.chunk_size, src, ctx, out);
  return out;
}

/// sigmoid(predict(model, data)): probabilities of a model trained with BceWithLogitsLoss.
template <class Model, class Data>
Matrix<typename Data::value_type> predict_proba(const Model& model, const Data& data,
                                                const PredictOptions& options = {}) {
  auto p = predict(model, data, options);
  kernels::sigmoid(p.data(), p.data(), p.size());
  return p;
}

}  // namespace uvp
