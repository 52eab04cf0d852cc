// SPDX-License-Identifier: Apache-2.0
// Layer normalisation over the last dimension (torch.nn.LayerNorm(d); Ba, Kiros & Hinton 2016).
//
//   X (n, d) -> Y (n, d), per row r:
//     mean_r = sum_j x_rj / d,   var_r = sum_j (x_rj - mean_r)^2 / d   (biased, as PyTorch)
//     rstd_r = 1 / sqrt(var_r + eps),   xhat_rj = (x_rj - mean_r) rstd_r
//     y_rj = xhat_rj gamma_j + beta_j       gamma: tensor "weight" (d), beta: "bias" (d)
//   backward, from dY (n, d), with g_rj = dy_rj gamma_j:
//     dgamma += sum_r dy_r * xhat_r,   dbeta += sum_r dy_r                  (accumulated)
//     dx_r = rstd_r (g_r - mean_j(g_rj) - xhat_r mean_j(g_rj xhat_rj))       (written)
//
// Statistics (summed in column order: a row's result does not depend on the batch), xhat and
// the row reductions of backward are computed in double also for T = float:
// a float row of mean 100 and spread 1e-3 then matches float64 PyTorch to 1e-5 (float32
// PyTorch is 2.4e-3 off). Defaults are PyTorch's: eps = 1e-5, elementwise_affine = true with
// gamma = 1 and beta = 0 at start (without it there are no tensors). forward() saves (mean, rstd)
// per row in a caller-owned Context that backward() reads; forward is const and thread-safe with
// one Context per thread, and the Context only grows (no allocation after the largest batch).
//
// The layer contract (uvp/nn/layer.hpp) is the API: Y = forward(X, ctx) returns a view of Y owned
// by ctx (which keeps a view of X), and dX = backward(ctx, dY) accumulates dgamma, dbeta and
// returns a view of dX owned by ctx. spec() / from_spec() give and take {normalized_shape, eps,
// elementwise_affine}. The low-level forms below them take explicit buffers (and X again in
// backward); both run the same code.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

template <class T, class Backend = cpu>
class LayerNorm : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::LayerNorm: only the uvp::cpu backend is implemented; use LayerNorm<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "LayerNorm";
  static constexpr bool backward_from_output = false;

  /// The row statistics of the last forward: mean and rstd = 1 / sqrt(var + eps), `rows` each,
  /// in double whatever T is (see forward).
  struct Context : uvp::detail::NnContextBase {
    uvp::detail::NnBuffer<double> stats;  // mean (rows) then rstd (rows)
    index rows = -1;                      // -1: no forward yet

    /// Empty unless the last forward completed (holds_forward()).
    Span<const double> mean() const noexcept { return {stats.data(), count()}; }
    Span<const double> rstd() const noexcept { return {stats.data() + count(), count()}; }

   private:
    friend class LayerNorm;
    index count() const noexcept { return holds_forward() && rows > 0 ? rows : 0; }
    uvp::detail::NnMatrixIo<T> io_;  // the contract forms' X view, Y and dX buffers
  };

  /// normalized_shape: d, the size of the last dimension (> 0); eps > 0.
  explicit LayerNorm(index normalized_shape, double eps = 1e-5, bool elementwise_affine = true)
      : d_(normalized_shape), eps_(eps), affine_(elementwise_affine) {
    uvp::detail::check_positive("uvp::nn::LayerNorm", "normalized_shape", normalized_shape);
    uvp::detail::check_positive("uvp::nn::LayerNorm", "eps", eps);
    if (affine_) {
      this->add_tensor("weight", {d_});
      this->add_tensor("bias", {d_});
    }
    this->allocate_parameters();
    if (affine_) init::constant(this->values(this->tensors()[0]), T(1));
  }

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return d_; }
  /// normalized_shape; uvp::shape_error if in (-1: not known) is not normalized_shape.
  index output_width(index in) const {
    if (in != -1 && in != d_)
      uvp::detail::nn_width_mismatch("uvp::nn::LayerNorm::output_width", "LayerNorm", in, d_);
    return d_;
  }
  /// Y for X (n, d), finite: a view owned by ctx, valid until its next forward. ctx keeps a view
  /// of X, which must stay alive and unchanged until backward, and each row's mean and rstd.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return ctx.io_.forward(ctx, shape(), "uvp::nn::LayerNorm::forward", X, d_,
                           [&](MatrixRef<T> Y) { forward(X, Y, ctx); });
  }
  /// From dY (n, d), the gradient of ctx's last forward's output: dgamma, dbeta accumulated;
  /// returns dX (n, d), owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) {
    const auto s = shape();
    auto& io = ctx.io_;
    return io.backward(ctx, &s, "uvp::nn::LayerNorm::backward", "LayerNorm", dY,
                       [&](MatrixRef<T> dX) { backward(io.x.view(), ctx, dY, dX); });
  }
  /// {normalized_shape, eps, elementwise_affine}.
  BlockSpec spec() const {
    return BlockSpec(kind)
        .set("normalized_shape", double(d_))
        .set("eps", eps_)
        .set("elementwise_affine", affine_ ? 1 : 0);
  }
  /// uvp::format_error for a spec of another kind or a missing argument; the constructor's
  /// error for a bad one.
  static LayerNorm from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::LayerNorm::from_spec", s, kind);
    // One argument at a time: a missing one is reported in the spec's order.
    const index d = s.get_index("normalized_shape", -uvp::detail::nn_spec_max_size, uvp::detail::nn_spec_max_size);
    const double eps = s.get("eps");
    return LayerNorm(d, eps, s.get_bool("elementwise_affine"));
  }

  // ---- Accessors and the low-level forms ---------------------------------------------------

  index normalized_shape() const noexcept { return d_; }
  double eps() const noexcept { return eps_; }
  bool elementwise_affine() const noexcept { return affine_; }
  index output_cols(index in_cols) const noexcept { return in_cols; }

  /// gamma and beta (d each); empty without elementwise_affine.
  Span<T> weight() noexcept { return affine_ ? this->values(this->tensors()[0]) : Span<T>(); }
  Span<const T> weight() const noexcept { return affine_ ? this->values(this->tensors()[0]) : Span<const T>(); }
  Span<T> bias() noexcept { return affine_ ? this->values(this->tensors()[1]) : Span<T>(); }
  Span<const T> bias() const noexcept { return affine_ ? this->values(this->tensors()[1]) : Span<const T>(); }

  /// X: (n, d), finite; Y: (n, d), may be X itself. Saves mean and rstd of each row in ctx.
  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y, Context& ctx) const {
    constexpr const char* where = "uvp::nn::LayerNorm::forward";
    uvp::detail::nn_begin_forward(ctx, shape());  // invalid until this forward completes
    uvp::detail::check_cols(where, "X", X.cols(), d_);
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), X.rows(), d_);
    uvp::detail::nn_check_finite<T>(where, "X", X);
    const index n = X.rows();
    double* mean = ctx.stats.reserve(2 * n);
    double* rstd = mean + n;
    ctx.rows = n;
    const double inv_d = 1.0 / double(d_);
    const auto g = weight().as_vector();
    const auto b = bias().as_vector();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= uvp::detail::nn_parallel_rows && n * d_ >= uvp::detail::nn_parallel_elements)
#endif
    for (index r = 0; r < n; ++r) {
      // In double: in float, rounding the mean alone can cost 4e-3 of a small spread.
      const auto x = X.row(r).array().template cast<double>();
      // Sums in column order: Eigen's vectorised sum starts its packets at the first aligned
      // element, so its order (and the result) would depend on where the row lies in the batch.
      const T* xr = X.row(r).data();
      double sum = 0, sq = 0;
      for (index c = 0; c < d_; ++c) sum += double(xr[c]);
      const double mu = sum * inv_d;
      for (index c = 0; c < d_; ++c) sq += (double(xr[c]) - mu) * (double(xr[c]) - mu);
      const double var = sq * inv_d;  // two passes: no cancellation
      const double rs = 1.0 / std::sqrt(var + eps_);
      mean[r] = mu;
      rstd[r] = rs;
      if (affine_)
        Y.row(r).array() = ((x - mu) * rs).template cast<T>() * g.transpose().array() + b.transpose().array();
      else
        Y.row(r).array() = ((x - mu) * rs).template cast<T>();
    }
    uvp::detail::nn_end_forward(ctx);
  }

  /// Allocating form (a local context).
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    Context ctx;
    forward(X, Y, ctx);
    return Y;
  }

  /// Parameter gradients only (dgamma, dbeta); X and ctx: the forward's input and context.
  void backward(ConstMatrixRef<T> X, const Context& ctx, ConstMatrixRef<T> dY) {
    check_backward("uvp::nn::LayerNorm::backward", X, ctx, dY);
    accumulate(X, ctx, dY);
  }

  /// As above, and writes dX (n, d); dX may be dY itself.
  void backward(ConstMatrixRef<T> X, const Context& ctx, ConstMatrixRef<T> dY, MatrixRef<T> dX) {
    constexpr const char* where = "uvp::nn::LayerNorm::backward";
    check_backward(where, X, ctx, dY);
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), X.rows(), d_);
    accumulate(X, ctx, dY);  // first: dX may overwrite dY
    const index n = X.rows();
    const double* mean = ctx.mean().data();
    const double* rstd = ctx.rstd().data();
    const double inv_d = 1.0 / double(d_);
    const auto g = weight().as_vector();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= uvp::detail::nn_parallel_rows && n * d_ >= uvp::detail::nn_parallel_elements)
#endif
    for (index r = 0; r < n; ++r) {
      const auto xhat = (X.row(r).array().template cast<double>() - mean[r]) * rstd[r];
      const auto dy = dY.row(r).array().template cast<double>();
      if (affine_) {
        const auto gd = g.transpose().array().template cast<double>();
        const double m1 = (dy * gd).sum() * inv_d;
        const double m2 = (dy * gd * xhat).sum() * inv_d;
        dX.row(r).array() = (rstd[r] * (dy * gd - m1 - xhat * m2)).template cast<T>();
      } else {
        const double m1 = dy.sum() * inv_d;
        const double m2 = (dy * xhat).sum() * inv_d;
        dX.row(r).array() = (rstd[r] * (dy - m1 - xhat * m2)).template cast<T>();
      }
    }
  }

 private:
  void check_backward(const char* where, const ConstMatrixRef<T>& X, const Context& ctx,
                      const ConstMatrixRef<T>& dY) const {
    uvp::detail::check_cols(where, "X", X.cols(), d_);
    const auto s = shape();
    uvp::detail::nn_require_forward(where, ctx, "LayerNorm", &s);
    if (ctx.rows != X.rows())
      uvp::detail::raise<shape_error>(where, ": the context holds ", ctx.rows < 0 ? 0 : ctx.rows,
                                      " rows of statistics, X has ", X.rows(),
                                      " (run forward on this X with this context first)");
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), X.rows(), d_);
  }

  void accumulate(const ConstMatrixRef<T>& X, const Context& ctx, const ConstMatrixRef<T>& dY) {
    if (!affine_) return;
    auto dg = this->grads(this->tensors()[0]).as_vector();
    auto db = this->grads(this->tensors()[1]).as_vector();
    const double* mean = ctx.mean().data();
    const double* rstd = ctx.rstd().data();
    for (index r = 0; r < X.rows(); ++r) {
      const auto xhat = (X.row(r).array().template cast<double>() - mean[r]) * rstd[r];
      dg.transpose().array() += (dY.row(r).array().template cast<double>() * xhat).template cast<T>();
      db.transpose().array() += dY.row(r).array();
    }
  }

  uvp::detail::NnBlockShape shape() const noexcept { return {{"normalized_shape", d_}}; }

  index d_;
  double eps_;
  bool affine_;
};

}  // namespace uvp::nn
