// SPDX-License-Identifier: Apache-2.0
// Parameterless activation blocks (torch.nn.ReLU, Sigmoid, Tanh, GELU, Softmax(dim=-1)).
//
// Each maps X (n, d) to Y (n, d) and back-propagates dY (n, d) to dX (n, d):
//
//   Relu     y = max(x, 0)                        dx = dy [y > 0]            (from Y, or X)
//   Sigmoid  y = 1 / (1 + exp(-x))                dx = dy y (1 - y)          (from Y)
//   Tanh     y = tanh(x)                          dx = dy (1 - y^2)          (from Y)
//   Gelu     y = x Phi(x) = x/2 (1 + erf(x/sqrt 2))  dx = dy (Phi(x) + x phi(x))  (from X)
//   Softmax  y_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k, over each row
//            dx = y (dy - <dy, y>)                                           (from Y)
//
// Gelu is the exact (erf) form, PyTorch's default (approximate='none'). `backward_from_output`
// says which forward tensor backward takes: Y (the output) when true, X (the input) when false.
// forward() checks shapes and that X is finite (uvp::numeric_error otherwise); the element-wise
// ones and Softmax may run in place (Y the same matrix as X), and backward may write dX over dY.
// All are thread-safe (no state) and vectorised with uvp::kernels; large inputs are split
// across OpenMP threads.
//
// The layer contract (uvp/nn/layer.hpp) is the API: Y = forward(X, ctx) returns a view of Y
// owned by ctx, and dX = backward(ctx, dY) returns a view of dX owned by ctx, taking Y or X (as
// backward_from_output says) from ctx; ctx's buffers only grow. spec() has no arguments. The
// low-level forms below them take explicit buffers and the saved tensor; both run the same code.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/backend/cpu/elementwise.hpp"
#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/nn_matrix_io.hpp"
#include "uvp/detail/nn_rows.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/module.hpp"

namespace uvp::detail {

inline constexpr double gelu_sqrt1_2 = 0.70710678118654752440;   // 1 / sqrt(2)
inline constexpr double gelu_inv_sqrt_2pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)

/// y = x / 2 (1 + erf(x / sqrt 2)), as PyTorch's GeluKernel computes it.
template <class T>
void gelu(const T* x, T* y, index n) noexcept {
  namespace s = uvp::detail::simd;
  const T a(gelu_sqrt1_2);
  if constexpr (!s::enabled<T>) {
    for (index i = 0; i < n; ++i) y[i] = x[i] * T(0.5) * (T(1) + std::erf(x[i] * a));
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [a](const T* xi, T* yi) {
          const B v = B::load_unaligned(xi);
          (v * B(T(0.5)) * (B(T(1)) + s::erf(v * B(a)))).store_unaligned(yi);
        },
        x, y);
  }
}

/// dx = dy (Phi(x) + x phi(x)) with Phi the normal cdf and phi its density (x: the input).
template <class T>
void gelu_backward(const T* x, const T* dy, T* dx, index n) noexcept {
  namespace s = uvp::detail::simd;
  const T a(gelu_sqrt1_2), b(gelu_inv_sqrt_2pi);
  if constexpr (!s::enabled<T>) {
    for (index i = 0; i < n; ++i) {
      const T cdf = T(0.5) * (T(1) + std::erf(x[i] * a));
      const T pdf = std::exp(T(-0.5) * x[i] * x[i]) * b;
      dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
  } else {
    using B = s::batch<T>;
    s::for_each_batch<T>(
        n,
        [a, b](const T* xi, const T* dyi, T* dxi) {
          const B v = B::load_unaligned(xi);
          const B cdf = B(T(0.5)) * (B(T(1)) + s::erf(v * B(a)));
          const B pdf = s::exp(B(T(-0.5)) * v * v) * B(b);
          (B::load_unaligned(dyi) * (cdf + v * pdf)).store_unaligned(dxi);
        },
        x, dy, dx);
  }
}

template <class T>
void nn_check_activation_forward(const char* where, const Eigen::Ref<const Matrix<T>>& X,
                                 const Eigen::Ref<Matrix<T>>& Y) {
  check_shape(where, "Y", Y.rows(), Y.cols(), X.rows(), X.cols());
  nn_check_finite<T>(where, "X", X);
}

template <class T>
void nn_check_activation_backward(const char* where, const Eigen::Ref<const Matrix<T>>& A,
                                  const Eigen::Ref<const Matrix<T>>& dY, const Eigen::Ref<Matrix<T>>& dX) {
  check_shape(where, "dY", dY.rows(), dY.cols(), A.rows(), A.cols());
  check_shape(where, "dX", dX.rows(), dX.cols(), A.rows(), A.cols());
}

/// What Relu, Sigmoid, Tanh and Gelu share: a forward kernel f(x, y, n) and a backward kernel
/// g(saved, dy, dx, n) applied over the whole matrix.
template <class T, class Derived>
struct nn_elementwise_activation {
  static void run_forward(const char* where, const Eigen::Ref<const Matrix<T>>& X, Eigen::Ref<Matrix<T>> Y) {
    nn_check_activation_forward<T>(where, X, Y);
    nn_rowwise_apply<T>([](const T* x, T* y, index n) { Derived::kernel(x, y, n); }, Y, X);
  }
  static void run_backward(const char* where, const Eigen::Ref<const Matrix<T>>& A,
                           const Eigen::Ref<const Matrix<T>>& dY, Eigen::Ref<Matrix<T>> dX) {
    nn_check_activation_backward<T>(where, A, dY, dX);
    nn_rowwise_apply<T>([](const T* a, const T* dy, T* dx, index n) { Derived::backward_kernel(a, dy, dx, n); },
                        dX, A, dY);
  }
};

/// The contract forms every activation shares (A: the activation, with its low-level forms).
/// Context: a view of X and the Y and dX buffers; backward hands the low-level backward Y or X
/// as A::backward_from_output says.
template <class T, class A>
struct nn_activation_contract {
  class Context : public NnContextBase {
    friend struct nn_activation_contract;
    NnMatrixIo<T> io_;
  };

  static ConstMatrixView<T> forward(const A& a, const char* where, const Eigen::Ref<const Matrix<T>>& X,
                                    Context& ctx) {
    return ctx.io_.forward(ctx, {}, where, X, X.cols(), [&](Eigen::Ref<Matrix<T>> Y) { a.forward(X, Y); });
  }
  static ConstMatrixView<T> backward(const A& a, const char* where, Context& ctx,
                                     const Eigen::Ref<const Matrix<T>>& dY) {
    auto& io = ctx.io_;
    return io.backward(ctx, nullptr, where, A::kind, dY, [&](Eigen::Ref<Matrix<T>> dX) {
      if constexpr (A::backward_from_output)
        a.backward(io.output(), dY, dX);
      else
        a.backward(io.x.view(), dY, dX);
    });
  }
  static index output_width(const char* where, index in) {
    nn_check_width(where, in);
    return in;
  }
  static A from_spec(const char* where, const nn::BlockSpec& s) {
    nn_check_spec_kind(where, s, A::kind);
    return A();
  }
};

}  // namespace uvp::detail

namespace uvp::nn {

/// max(x, 0) element-wise (torch.nn.ReLU). NaN-free input required; backward takes Y (or X).
template <class T, class Backend = cpu>
class Relu : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Relu: only the uvp::cpu backend is implemented; use Relu<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Relu";
  static constexpr bool backward_from_output = true;

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  using Context = typename uvp::detail::nn_activation_contract<T, Relu>::Context;

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width; -1: not known).
  index output_width(index in) const {
    constexpr const char* where = "uvp::nn::Relu::output_width";
    return contract::output_width(where, in);
  }
  /// Y for X (n, d), finite: a view owned by ctx, valid until its next forward. ctx keeps a
  /// view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return contract::forward(*this, "uvp::nn::Relu::forward", X, ctx);
  }
  /// dX (n, d) from dY (n, d), the gradient of ctx's last forward's output; owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return contract::backward(*this, "uvp::nn::Relu::backward", ctx, dY);
  }
  /// No arguments: {kind}.
  BlockSpec spec() const { return BlockSpec(kind); }
  /// uvp::format_error for a spec of another kind.
  static Relu from_spec(const BlockSpec& s) { return contract::from_spec("uvp::nn::Relu::from_spec", s); }

  // ---- The low-level forms ------------------------------------------------------------------

  index output_cols(index in_cols) const noexcept { return in_cols; }

  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const { impl::run_forward("uvp::nn::Relu::forward", X, Y); }
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    forward(X, Y);
    return Y;
  }
  /// dX = dY where Y > 0, else 0. Y: the forward output (the input X gives the same result).
  void backward(ConstMatrixRef<T> Y, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    impl::run_backward("uvp::nn::Relu::backward", Y, dY, dX);
  }

 private:
  using contract = uvp::detail::nn_activation_contract<T, Relu>;
  struct impl : uvp::detail::nn_elementwise_activation<T, impl> {
    static void kernel(const T* x, T* y, index n) noexcept { kernels::relu(x, y, n); }
    static void backward_kernel(const T* y, const T* dy, T* dx, index n) noexcept { kernels::relu_backward(y, dy, dx, n); }
  };
};

/// 1 / (1 + exp(-x)) element-wise (torch.nn.Sigmoid); backward takes Y.
template <class T, class Backend = cpu>
class Sigmoid : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Sigmoid: only the uvp::cpu backend is implemented; use Sigmoid<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Sigmoid";
  static constexpr bool backward_from_output = true;

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  using Context = typename uvp::detail::nn_activation_contract<T, Sigmoid>::Context;

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width; -1: not known).
  index output_width(index in) const {
    constexpr const char* where = "uvp::nn::Sigmoid::output_width";
    return contract::output_width(where, in);
  }
  /// Y for X (n, d), finite: a view owned by ctx, valid until its next forward. ctx keeps a
  /// view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return contract::forward(*this, "uvp::nn::Sigmoid::forward", X, ctx);
  }
  /// dX (n, d) from dY (n, d), the gradient of ctx's last forward's output; owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return contract::backward(*this, "uvp::nn::Sigmoid::backward", ctx, dY);
  }
  /// No arguments: {kind}.
  BlockSpec spec() const { return BlockSpec(kind); }
  /// uvp::format_error for a spec of another kind.
  static Sigmoid from_spec(const BlockSpec& s) { return contract::from_spec("uvp::nn::Sigmoid::from_spec", s); }

  // ---- The low-level forms ------------------------------------------------------------------

  index output_cols(index in_cols) const noexcept { return in_cols; }

  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const { impl::run_forward("uvp::nn::Sigmoid::forward", X, Y); }
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    forward(X, Y);
    return Y;
  }
  /// dX = dY Y (1 - Y). Y: the forward output.
  void backward(ConstMatrixRef<T> Y, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    impl::run_backward("uvp::nn::Sigmoid::backward", Y, dY, dX);
  }

 private:
  using contract = uvp::detail::nn_activation_contract<T, Sigmoid>;
  struct impl : uvp::detail::nn_elementwise_activation<T, impl> {
    static void kernel(const T* x, T* y, index n) noexcept { kernels::sigmoid(x, y, n); }
    static void backward_kernel(const T* y, const T* dy, T* dx, index n) noexcept {
      kernels::sigmoid_backward(y, dy, dx, n);
    }
  };
};

/// tanh(x) element-wise (torch.nn.Tanh); backward takes Y.
template <class T, class Backend = cpu>
class Tanh : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Tanh: only the uvp::cpu backend is implemented; use Tanh<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Tanh";
  static constexpr bool backward_from_output = true;

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  using Context = typename uvp::detail::nn_activation_contract<T, Tanh>::Context;

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width; -1: not known).
  index output_width(index in) const {
    constexpr const char* where = "uvp::nn::Tanh::output_width";
    return contract::output_width(where, in);
  }
  /// Y for X (n, d), finite: a view owned by ctx, valid until its next forward. ctx keeps a
  /// view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return contract::forward(*this, "uvp::nn::Tanh::forward", X, ctx);
  }
  /// dX (n, d) from dY (n, d), the gradient of ctx's last forward's output; owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return contract::backward(*this, "uvp::nn::Tanh::backward", ctx, dY);
  }
  /// No arguments: {kind}.
  BlockSpec spec() const { return BlockSpec(kind); }
  /// uvp::format_error for a spec of another kind.
  static Tanh from_spec(const BlockSpec& s) { return contract::from_spec("uvp::nn::Tanh::from_spec", s); }

  // ---- The low-level forms ------------------------------------------------------------------

  index output_cols(index in_cols) const noexcept { return in_cols; }

  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const { impl::run_forward("uvp::nn::Tanh::forward", X, Y); }
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    forward(X, Y);
    return Y;
  }
  /// dX = dY (1 - Y^2). Y: the forward output.
  void backward(ConstMatrixRef<T> Y, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    impl::run_backward("uvp::nn::Tanh::backward", Y, dY, dX);
  }

 private:
  using contract = uvp::detail::nn_activation_contract<T, Tanh>;
  struct impl : uvp::detail::nn_elementwise_activation<T, impl> {
    static void kernel(const T* x, T* y, index n) noexcept { kernels::tanh(x, y, n); }
    static void backward_kernel(const T* y, const T* dy, T* dx, index n) noexcept {
      kernels::tanh_backward(y, dy, dx, n);
    }
  };
};

/// x Phi(x) element-wise, exact erf form (torch.nn.GELU(), approximate='none'); backward takes X.
template <class T, class Backend = cpu>
class Gelu : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Gelu: only the uvp::cpu backend is implemented; use Gelu<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Gelu";
  static constexpr bool backward_from_output = false;

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  using Context = typename uvp::detail::nn_activation_contract<T, Gelu>::Context;

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width; -1: not known).
  index output_width(index in) const {
    constexpr const char* where = "uvp::nn::Gelu::output_width";
    return contract::output_width(where, in);
  }
  /// Y for X (n, d), finite: a view owned by ctx, valid until its next forward. ctx keeps a
  /// view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return contract::forward(*this, "uvp::nn::Gelu::forward", X, ctx);
  }
  /// dX (n, d) from dY (n, d), the gradient of ctx's last forward's output; owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return contract::backward(*this, "uvp::nn::Gelu::backward", ctx, dY);
  }
  /// No arguments: {kind}.
  BlockSpec spec() const { return BlockSpec(kind); }
  /// uvp::format_error for a spec of another kind.
  static Gelu from_spec(const BlockSpec& s) { return contract::from_spec("uvp::nn::Gelu::from_spec", s); }

  // ---- The low-level forms ------------------------------------------------------------------

  index output_cols(index in_cols) const noexcept { return in_cols; }

  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const { impl::run_forward("uvp::nn::Gelu::forward", X, Y); }
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    forward(X, Y);
    return Y;
  }
  /// dX = dY (Phi(X) + X phi(X)). X: the forward input (so Gelu cannot run in place in training).
  void backward(ConstMatrixRef<T> X, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    impl::run_backward("uvp::nn::Gelu::backward", X, dY, dX);
  }

 private:
  using contract = uvp::detail::nn_activation_contract<T, Gelu>;
  struct impl : uvp::detail::nn_elementwise_activation<T, impl> {
    static void kernel(const T* x, T* y, index n) noexcept { uvp::detail::gelu(x, y, n); }
    static void backward_kernel(const T* x, const T* dy, T* dx, index n) noexcept {
      uvp::detail::gelu_backward(x, dy, dx, n);
    }
  };
};

/// Row-wise softmax (torch.nn.Softmax(dim=-1)), shifted by each row's max so that no exp
/// overflows; backward takes Y.
template <class T, class Backend = cpu>
class Softmax : public Block<T> {
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::nn::Softmax: only the uvp::cpu backend is implemented; use Softmax<T, uvp::cpu>");

 public:
  using backend_type = Backend;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "Softmax";
  static constexpr bool backward_from_output = true;

  /// What forward leaves for backward: a view of X, the Y and dX buffers (they only grow).
  using Context = typename uvp::detail::nn_activation_contract<T, Softmax>::Context;

  // ---- The layer contract -----------------------------------------------------------------

  index input_width() const noexcept { return -1; }
  /// in (any width, at least 1; -1: not known).
  index output_width(index in) const {
    constexpr const char* where = "uvp::nn::Softmax::output_width";
    if (in == 0) uvp::detail::raise<shape_error>(where, ": Softmax takes at least 1 input feature, got 0");
    return contract::output_width(where, in);
  }
  /// Y for X (n, d), d >= 1, finite: a view owned by ctx, valid until its next forward. ctx keeps
  /// a view of X, which must stay alive and unchanged until backward.
  ConstMatrixView<T> forward(ConstMatrixRef<T> X, Context& ctx) const {
    return contract::forward(*this, "uvp::nn::Softmax::forward", X, ctx);
  }
  /// dX (n, d) from dY (n, d), the gradient of ctx's last forward's output; owned by ctx.
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dY) const {
    return contract::backward(*this, "uvp::nn::Softmax::backward", ctx, dY);
  }
  /// No arguments: {kind}.
  BlockSpec spec() const { return BlockSpec(kind); }
  /// uvp::format_error for a spec of another kind.
  static Softmax from_spec(const BlockSpec& s) { return contract::from_spec("uvp::nn::Softmax::from_spec", s); }

  // ---- The low-level forms ------------------------------------------------------------------

  index output_cols(index in_cols) const noexcept { return in_cols; }

  /// X: (n, d), d >= 1; Y: (n, d), may be X itself.
  void forward(ConstMatrixRef<T> X, MatrixRef<T> Y) const {
    constexpr const char* where = "uvp::nn::Softmax::forward";
    uvp::detail::nn_check_activation_forward<T>(where, X, Y);
    const index n = X.rows(), d = X.cols();
    if (n > 0 && d == 0) uvp::detail::raise<shape_error>(where, ": X has 0 columns, expected at least 1");
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= uvp::detail::nn_parallel_rows && n * d >= uvp::detail::nn_parallel_elements)
#endif
    for (index r = 0; r < n; ++r) {
      const T m = X.row(r).maxCoeff();
      Y.row(r).array() = X.row(r).array() - m;
      T* y = Y.row(r).data();
      kernels::exp(y, y, d);
      kernels::scale(T(1) / kernels::sum(y, d), y, d);
    }
  }
  Matrix<T> forward(ConstMatrixRef<T> X) const {
    Matrix<T> Y(X.rows(), X.cols());
    forward(X, Y);
    return Y;
  }
  /// dX = Y (dY - <dY, Y>) per row. Y: the forward output.
  void backward(ConstMatrixRef<T> Y, ConstMatrixRef<T> dY, MatrixRef<T> dX) const {
    uvp::detail::nn_check_activation_backward<T>("uvp::nn::Softmax::backward", Y, dY, dX);
    const index n = Y.rows(), d = Y.cols();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= uvp::detail::nn_parallel_rows && n * d >= uvp::detail::nn_parallel_elements)
#endif
    for (index r = 0; r < n; ++r) {
      const T s = kernels::dot(dY.row(r).data(), Y.row(r).data(), d);
      dX.row(r).array() = Y.row(r).array() * (dY.row(r).array() - s);
    }
  }

 private:
  using contract = uvp::detail::nn_activation_contract<T, Softmax>;
};

}  // namespace uvp::nn
