// SPDX-License-Identifier: Apache-2.0
// A gradient check for any block or model that fulfils the layer contract (uvp/nn/layer.hpp):
// the library's own blocks are tested with it, and a user checks a block of their own the same
// way (dlib's idea: the checker ships with the library).
//
//   FeatureAffine<double> block(3, rng);
//   uvp::Matrix<double> x = ...;                          // the input rows
//   auto r = uvp::testing::check_layer_gradients(block, x);   // x is perturbed and restored
//   assert(r.input.relative_error < 1e-6 && r.parameters.relative_error < 1e-6);
//
// The scalar probed is L = sum(forward(x) .* W) for a fixed random W, so dL/d_output = W; the
// analytic gradients come from one backward, the numeric ones from central differences of L
// over every input value and every parameter (dense ones and sparse embedding tables alike).
// Double precision only (float's rounding would swamp the differences). Cost: two forwards per
// value checked: keep the model small.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/model_parameters.hpp"
#include "uvp/testing/gradient_check.hpp"

namespace uvp::testing {

/// What check_layer_gradients found: the input's check (empty for token ids) and the check of
/// every parameter of the block, all tensors together.
struct LayerGradientCheck {
  GradientCheck input;
  GradientCheck parameters;
};

namespace detail {

template <class Out>
ConstMatrixView<double> output_rows(const Out& y) {
  if constexpr (std::is_same_v<Out, nn::SequenceBatch<double>>)
    return y.values();
  else
    return {y.data(), y.rows(), y.cols()};
}

}  // namespace detail

namespace detail {

// x_values: the memory forward reads x from (perturbed in place, restored), empty for token ids.
template <class Layer, class Input>
LayerGradientCheck check_layer_gradients(Layer& layer, const Input& x, Span<double> x_values, double h,
                                         std::uint64_t seed) {
  static_assert(std::is_same_v<typename Layer::value_type, double>,
                "uvp::testing::check_layer_gradients: check in double (a float block's rounding swamps the differences)");
  using Ctx = typename Layer::Context;
  const auto make_ctx = [] {
    if constexpr (std::is_constructible_v<Ctx, std::uint64_t>)
      return Ctx(std::uint64_t(0x5eed));
    else
      return Ctx();
  };
  const auto run = [&](Ctx& ctx) { return output_rows(layer.forward(x, ctx)); };
  // The probe's weights W, fixed for the whole check.
  Matrix<double> w;
  {
    Ctx ctx = make_ctx();
    const auto y = run(ctx);
    w.resize(y.rows(), y.cols());
    Rng rng(seed);
    for (index i = 0; i < w.size(); ++i) w.data()[i] = rng.uniform(-1.0, 1.0);
  }
  const auto loss = [&] {
    Ctx ctx = make_ctx();
    return (run(ctx).array() * w.array()).sum();
  };

  // Analytic: one backward from zeroed gradients.
  layer.zero_grad();
  Ctx ctx = make_ctx();
  const auto y = layer.forward(x, ctx);
  const auto dx = [&] {
    if constexpr (std::is_same_v<std::decay_t<decltype(y)>, nn::SequenceBatch<double>>)
      return layer.backward(ctx, nn::SequenceBatch<double>(ConstMatrixView<double>(w.data(), w.rows(), w.cols()),
                                                           y.batch, y.steps, y.lengths));
    else
      return layer.backward(ctx, ConstMatrixView<double>(w.data(), w.rows(), w.cols()));
  }();

  LayerGradientCheck r;
  auto& params = layer.parameters();
  // Every parameter: a model's dense gradients, then its sparse tables' touched rows scattered
  // into their regions (untouched rows: 0); a block's dense gradient, or its sparse rows.
  Span<double> values = params.values();
  std::vector<double> analytic(static_cast<std::size_t>(values.size()), 0.0);
  const auto scatter_rows = [&](const auto& sparse, index base) {
    for (index k = 0; k < sparse.size(); ++k) {
      const index r0 = base + sparse.rows[static_cast<std::size_t>(k)] * sparse.dim;
      for (index j = 0; j < sparse.dim; ++j) analytic[static_cast<std::size_t>(r0 + j)] += sparse.row(k)[j];
    }
  };
  if constexpr (uvp::detail::has_model_parameters<Layer>::value) {
    std::copy(params.grads().begin(), params.grads().end(), analytic.begin());
    for (std::size_t s = 0; s < params.sparse_blocks().size(); ++s)
      scatter_rows(params.sparse_blocks()[s]->sparse_grad(), params.sparse_offsets()[s]);
  } else if (layer.has_sparse_grad()) {
    scatter_rows(layer.sparse_grad(), layer.sparse_tensor().slot.offset);
  } else {
    std::copy(params.grads().begin(), params.grads().end(), analytic.begin());
  }
  if (!analytic.empty())
    r.parameters = check_gradient(loss, values, Span<const double>(analytic.data(), index(analytic.size())), h);

  if constexpr (!std::is_same_v<std::decay_t<decltype(dx)>, nn::NoGradient>) {
    const auto g = output_rows(dx);
    const std::vector<double> a(g.data(), g.data() + g.size());
    r.input = check_gradient(loss, x_values, Span<const double>(a.data(), index(a.size())), h);
  }
  return r;
}

}  // namespace detail

/// Checks a block's (or a model's) backward against central differences at input x (see the
/// top of this file). The layer's value_type is double; Dropout must be in eval mode (every probe
/// uses a fresh Context with the same seed, so masks would repeat, but the check assumes a
/// deterministic forward). x is perturbed in place and restored.
template <class Layer>
LayerGradientCheck check_layer_gradients(Layer& layer, Matrix<double>& x, double h = 1e-6, std::uint64_t seed = 1) {
  return detail::check_layer_gradients(layer, x, Span<double>(x.data(), x.size()), h, seed);
}
/// A sequence input: `values` is the (batch * steps) x features memory x views.
template <class Layer>
LayerGradientCheck check_layer_gradients(Layer& layer, Matrix<double>& values, index batch, index steps,
                                         Span<const index> lengths = {}, double h = 1e-6, std::uint64_t seed = 1) {
  const nn::SequenceBatch<double> x(ConstMatrixView<double>(values.data(), values.rows(), values.cols()), batch, steps,
                                    lengths);
  return detail::check_layer_gradients(layer, x, Span<double>(values.data(), values.size()), h, seed);
}
/// Token ids (no input gradient): the parameters only.
template <class Layer>
LayerGradientCheck check_layer_gradients(Layer& layer, const nn::TokenBatch& x, double h = 1e-6, std::uint64_t seed = 1) {
  return detail::check_layer_gradients(layer, x, Span<double>(), h, seed);
}

}  // namespace uvp::testing
