// SPDX-License-Identifier: Apache-2.0
// Stochastic gradient descent with momentum / Nesterov momentum and weight decay, as torch.optim.SGD.
//
// References: Robbins & Monro, "A Stochastic Approximation Method", 1951; Polyak, "Some methods of
// speeding up the convergence of iteration methods", 1964 (momentum); Sutskever, Martens, Dahl &
// Hinton, "On the importance of initialization and momentum in deep learning", ICML 2013
// (Nesterov momentum in this form). The update is exactly torch.optim.SGD (PyTorch 1.13), with
// g the gradient, p the parameter and b the momentum buffer:
//
//   g <- g + weight_decay * p
//   if momentum != 0:
//     b <- g                                         on the first step
//     b <- momentum * b + (1 - dampening) * g        afterwards
//     g <- g + momentum * b   (nesterov)   or   g <- b
//   p <- p - lr * g
//
// With step(params, grads, offset), "the first step" is steps() == 1 for every slice; a slice first
// touched at a later step starts from b = 0, i.e. b <- (1 - dampening) * g (the same as PyTorch's
// first step when dampening = 0). See optim/optimizer.hpp for the shared member functions.
#pragma once

#include <type_traits>
#include <vector>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/aligned_allocator.hpp"
#include "uvp/detail/simd_compat.hpp"
#include "uvp/detail/simd_math.hpp"
#include "uvp/detail/sgd_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

// SgdOptions (shared with the CUDA backend) is defined in uvp/detail/sgd_math.hpp.

/// SGD state for one flat parameter vector of T (float or double). State: the momentum buffer,
/// size() elements, 64-byte aligned, allocated on the first step only when momentum > 0.
template <class T, class Backend = cpu>
class Sgd {
  static_assert(is_scalar_v<T>, "uvp::Sgd<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::Sgd: only the uvp::cpu backend is implemented; use Sgd<T, uvp::cpu>");

 public:
  using value_type = T;
  using backend_type = Backend;
  using options_type = SgdOptions;

  explicit Sgd(SgdOptions options = {}) : options_(validated(options)), lr_(options.lr) {}

  const SgdOptions& options() const noexcept { return options_; }
  double lr() const noexcept { return lr_; }
  void set_lr(double lr) {
    detail::check_lr("uvp::Sgd::set_lr", lr);
    lr_ = lr;
  }
  index steps() const noexcept { return steps_; }
  index size() const noexcept { return size_; }

  /// The momentum buffer (empty when momentum = 0).
  Span<const T> momentum_buffer() const noexcept { return as_span(buf_); }

  void reset() noexcept {
    buf_.clear();
    size_ = 0;
    steps_ = 0;
    lr_ = options_.lr;
  }

  void resize(index n) {
    if (n <= 0) detail::raise<invalid_argument>("uvp::Sgd::resize: n must be > 0, got ", n);
    allocate(n);
  }

  /// One step over the whole vector. params: n values (updated in place); grads: n gradients.
  void step(Span<T> params, Span<const T> grads) {
    constexpr const char* where = "uvp::Sgd::step";
    if (size_ != 0) detail::check_size(where, "params", params.size(), size_);
    detail::check_step(where, params, grads, 0, size_ == 0 ? params.size() : size_, options_.check_finite);
    if (size_ == 0) allocate(params.size());
    begin_step();
    run(params, grads, 0);
  }

  /// One step over elements [offset, offset + n) of the vector (params, grads: that slice).
  void step(Span<T> params, Span<const T> grads, index offset) {
    detail::check_step("uvp::Sgd::step", params, grads, offset, size_, options_.check_finite);
    begin_step();
    run(params, grads, offset);
  }

  /// Counts one step for the update() calls that follow.
  void begin_step() noexcept { ++steps_; }

  /// Updates elements [offset, offset + n) for the current step.
  void update(Span<T> params, Span<const T> grads, index offset) {
    constexpr const char* where = "uvp::Sgd::update";
    if (steps_ == 0) detail::raise<invalid_argument>(where, ": no step begun; call begin_step() first");
    detail::check_step(where, params, grads, offset, size_, options_.check_finite);
    run(params, grads, offset);
  }

 private:
  using storage = std::vector<T, detail::aligned_allocator<T>>;

  struct Coefficients {
    T weight_decay, buf_keep, buf_new, momentum, neg_lr;
  };

  void allocate(index n) {
    if (options_.momentum != 0) buf_.assign(static_cast<std::size_t>(n), T(0));
    size_ = n;
    steps_ = 0;
  }

  static SgdOptions validated(const SgdOptions& o) {
    constexpr const char* where = "uvp::Sgd";
    detail::check_option_positive(where, "lr", o.lr);
    if (!(o.momentum >= 0 && o.momentum <= 1))
      detail::raise<invalid_argument>(where, ": momentum must be in [0, 1], got ", o.momentum);
    if (!(o.dampening >= 0 && o.dampening <= 1))
      detail::raise<invalid_argument>(where, ": dampening must be in [0, 1], got ", o.dampening);
    detail::check_option_non_negative(where, "weight_decay", o.weight_decay);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      detail::raise<invalid_argument>(where, ": nesterov needs momentum > 0 and dampening = 0, got momentum ",
                                      o.momentum, " and dampening ", o.dampening);
    return o;
  }

  void run(Span<T> params, Span<const T> grads, index offset) noexcept {
    const SgdOptions& o = options_;
    // The buffer is zero before a slice's first update, so b <- 0 * b + 1 * g is exactly b <- g.
    const bool first = steps_ == 1;
    const Coefficients c{T(o.weight_decay), T(first ? 0.0 : o.momentum), T(first ? 1.0 : 1 - o.dampening),
                         T(o.momentum), T(-lr_)};
    T* p = params.data();
    const T* g = grads.data();
    const index n = params.size();
    if (o.momentum == 0)
      kernel<false, false>(p, g, nullptr, n, c);
    else if (o.nesterov)
      kernel<true, true>(p, g, buf_.data() + offset, n, c);
    else
      kernel<true, false>(p, g, buf_.data() + offset, n, c);
  }

  // The order of operations follows PyTorch's (add, mul_, add_, add).
  template <bool Momentum, bool Nesterov>
  static void kernel(T* p, const T* g, T* b, index n, const Coefficients& c) noexcept {
    namespace s = detail::simd;
    if constexpr (!s::enabled<T>) {
      for (index i = 0; i < n; ++i) {
        T d = g[i] + c.weight_decay * p[i];
        if constexpr (Momentum) {
          b[i] = b[i] * c.buf_keep + c.buf_new * d;
          d = Nesterov ? d + c.momentum * b[i] : b[i];
        }
        p[i] = p[i] + c.neg_lr * d;
      }
    } else {
      using B = s::batch<T>;
      const B wd(c.weight_decay), keep(c.buf_keep), fresh(c.buf_new), mom(c.momentum), nlr(c.neg_lr);
      if constexpr (Momentum) {
        s::for_each_batch<T>(
            n,
            [&](T* pp, const T* gp, T* bp) {
              const B p0 = B::load_unaligned(pp);
              B d = B::load_unaligned(gp) + wd * p0;
              const B bi = B::load_unaligned(bp) * keep + fresh * d;
              bi.store_unaligned(bp);
              if constexpr (Nesterov)
                d = d + mom * bi;
              else
                d = bi;
              (p0 + nlr * d).store_unaligned(pp);
            },
            p, g, b);
      } else {
        s::for_each_batch<T>(
            n,
            [&](T* pp, const T* gp) {
              const B p0 = B::load_unaligned(pp);
              (p0 + nlr * (B::load_unaligned(gp) + wd * p0)).store_unaligned(pp);
            },
            p, g);
      }
    }
  }

  SgdOptions options_;
  double lr_;
  index steps_ = 0;
  index size_ = 0;
  storage buf_;
};

}  // namespace uvp
