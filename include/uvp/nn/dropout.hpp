// SPDX-License-Identifier: Apache-2.0
// Inverted dropout (torch.nn.Dropout; Srivastava et al., JMLR 2014).
//
//   training (is_training() and p > 0):  Y = X * M,  M_ij = 1 / (1 - p) with probability 1 - p,
//                                        else 0, drawn independently per element
//   eval (or p = 0):                     Y = X
//   backward:                            dX = dY * M  (dX = dY in eval)
//
// X, Y, dY, dX are (n, d). The mask M lives in a caller-owned Context and is drawn from a
// caller-owned uvp::Rng, so forward() is const and thread-safe (one Context and Rng per thread)
// and a run is reproducible from its seed. The Context's buffer only grows: no allocation once
// it has seen the largest batch. The mask stream is uvp's own (xoshiro256**), so the dropped
// positions differ from PyTorch's; their distribution is the same.
//
// The layer contract (uvp/nn/layer.hpp) is the API: Y = forward(X, ctx) draws the mask from
// ctx.rng (seeded by Context's constructor) and returns a view of Y owned by ctx, and dX =
// backward(ctx, dY) returns a view of dX owned by ctx. spec() / from_spec() give and take {p}.
// The low-level forms below them take explicit buffers and a separate Rng; both run the same
// code.
#pragma once

#include <cstdint>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::nn {

template <class T, class Backend = cpu>
class Dropout : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Dropout: only the uvp::cpu backend is implemented; use Dropout<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Dropout";
  static constexpr bool backward_from_output = false;

  /// The mask of the last forward: (rows, cols) values in {0, 1 / (1 - p)}, or none (active =
  /// false) when that forward was the identity. holds_forward(): that forward completed.
  /// rng draws the masks of the contract forward; the low-level forward takes its own Rng.
  struct Context : uvp::detail::NnContextBase {
    explicit Context(std::uint64_t seed = 0x5eed) : rng(seed) {}
    Rng rng;
    uvp::detail::NnBuffer<T> mask;
    index rows = 0, cols = 0;
    bool active = false;

    /// The mask (rows x cols); empty when the last forward was the identity or did not complete.
    ConstMatrixView<T> mask_matrix() const noexcept {
      const bool on = active && holds_forward();
      return {mask.data(), on ? rows : 0, on ? cols : 0};
    }

   private:
    friend class Dropout;
    uvp::detail::NnMatrixIo<T> io_;  // the contract forms' X view, Y and dX buffers
  };

  /// p: the probability of zeroing an element, in [0, 1) (torch's default 0.5).
  explicit Dropout(double p = 0.5) : p_(p) {
    if (!(p >= 0.0 && p < 1.0))
      uvp::detail::raise<invalid_argument>("uvp::nn::Dropout: p must be in [0, 1), got ", p);
  }

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width; -1: not known).
  index output_width(index in) const {
    uvp::detail::nn_check_width("uvp::nn::Dropout::output_width", in);
    return in;
  }
  /// Y = X * M in training (M drawn from ctx.rng), a copy of X in eval; X (n, d), finite. Returns
  /// Y, owned by ctx and valid until its next forward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return ctx.io_.forward(ctx, {}, "uvp::nn::Dropout::forward", X, X.cols(),
                           [&](MatrixRef<T> Y) { forward(X, Y, ctx, ctx.rng); });
  }
  /// dX = dY * M with the mask of ctx's last forward (dX = dY after an eval one); owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return ctx.io_.backward(ctx, nullptr, "uvp::nn::Dropout::backward", "Dropout", dY,
                            [&](MatrixRef<T> dX) { backward(ctx, dY, dX); });
  }
  /// {p}.
  BlockSpec spec() const { return BlockSpec(kind).set("p", p_); }
  /// uvp::format_error for a spec of another kind or without p; the constructor's error for a bad p.
  static Dropout from_spec(const BlockSpec& s) {
    uvp::detail::nn_check_spec_kind("uvp::nn::Dropout::from_spec", s, kind);
    return Dropout(s.get("p"));
  }

  // ---- Accessors and the low-level forms ---------------------------------------------------

  double p() const noexcept { return p_; }
  index output_cols(index in_cols) const noexcept { return in_cols; }

  /// Y = X * M in training (draws M from rng into ctx), Y = X in eval. Y may be X itself.
  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y, Context& ctx, Rng& rng) const {
    constexpr const char* where = "uvp::nn::Dropout::forward";
    uvp::detail::nn_begin_forward(ctx, {});  // invalid until this forward completes
    uvp::detail::check_shape(where, "Y", Y.rows(), Y.cols(), X.rows(), X.cols());
    uvp::detail::nn_check_finite<T>(where, "X", X);
    const index n = X.rows(), d = X.cols();
    ctx.rows = n;
    ctx.cols = d;
    ctx.active = this->is_training() && p_ > 0.0;
    if (!ctx.active) {
      if (Y.data() != X.data() || Y.outerStride() != X.outerStride()) Y = X;
    } else {
      auto M = ctx.mask.matrix(n, d);
      draw_mask(M.data(), n * d, rng);
      Y.array() = X.array() * M.array();
    }
    uvp::detail::nn_end_forward(ctx);
  }

  /// Allocating form (a fresh mask each call when training).
  Matrix<T> forward(ConstMatrixRef<T> X, Rng& rng) const {
    Matrix<T> Y(X.rows(), X.cols());
    Context ctx;
    forward(X, Y, ctx, rng);
    return Y;
  }

  /// dX = dY * M with the mask of ctx's forward (dX = dY after an eval forward). dX may be dY.
  void backward(const Context& ctx, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    constexpr const char* where = "uvp::nn::Dropout::backward";
    uvp::detail::nn_require_forward(where, ctx, "Dropout");
    uvp::detail::check_shape(where, "dY", dY.rows(), dY.cols(), ctx.rows, ctx.cols);
    uvp::detail::check_shape(where, "dX", dX.rows(), dX.cols(), ctx.rows, ctx.cols);
    if (!ctx.active) {
      if (dX.data() != dY.data() || dX.outerStride() != dY.outerStride()) dX = dY;
      return;
    }
    dX.array() = dY.array() * ctx.mask_matrix().array();
  }

 private:
  // Two elements per 64-bit draw: keep when a 32-bit half is >= p 2^32 (a drop probability
  // within 2^-32 of p).
  void draw_mask(T* m, index n, Rng& rng) const noexcept {
    const auto threshold = static_cast<std::uint64_t>(p_ * 4294967296.0);
    const T keep = static_cast<T>(1.0 / (1.0 - p_));
    index i = 0;
    for (; i + 2 <= n; i += 2) {
      const std::uint64_t r = rng();
      m[i] = (r & 0xffffffffULL) >= threshold ? keep : T(0);
      m[i + 1] = (r >> 32) >= threshold ? keep : T(0);
    }
    if (i < n) m[i] = (rng() & 0xffffffffULL) >= threshold ? keep : T(0);
  }

  double p_;
};

}  // namespace uvp::nn
