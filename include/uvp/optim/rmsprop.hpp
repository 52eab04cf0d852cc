// SPDX-License-Identifier: Apache-2.0
// RMSprop over a flat parameter vector, plain, centered and with momentum, as torch.optim.RMSprop.
//
// Reference: Tieleman & Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running average
// of its recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012; the centered
// form is Graves, "Generating Sequences With Recurrent Neural Networks", 2013. The update is
// exactly torch.optim.RMSprop (PyTorch 1.13, foreach=False), with g the gradient, p the parameter,
// s the running mean of g^2, a the running mean of g (centered) and b the momentum buffer:
//
//   g <- g + weight_decay * p
//   s <- alpha * s + (1 - alpha) * g * g
//   a <- alpha * a + (1 - alpha) * g;  d = sqrt(max(s - a * a, 0)) + eps    (centered)
//                                      d = sqrt(s) + eps                     (otherwise)
//   b <- momentum * b + g / d;  p <- p - lr * b                              (momentum > 0)
//   p <- p - lr * g / d                                                      (otherwise)
//
// with s, a, b zero before the first step. The max(., 0) guards the centered variance against a
// rounding below zero (PyTorch would take the square root of a tiny negative number: NaN); it
// changes nothing else. No coefficient depends on the step count, so a slice first updated at a
// later step (step with an offset) is exactly a fresh RMSprop on that slice. See
// optim/optimizer.hpp for the member functions every optimizer shares.
#pragma once

#include <cmath>
#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/lane_ops.hpp"
#include "uvp/detail/optimizer_base.hpp"
#include "uvp/detail/rounding_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

/// Options of uvp::RmsProp; the defaults are PyTorch's.
struct RmsPropOptions {
  double lr = 1e-2;           ///< learning rate, > 0
  double alpha = 0.99;        ///< decay of the running mean of g^2 (and of g), in [0, 1)
  double eps = 1e-8;          ///< added to the denominator, > 0
  double weight_decay = 0;    ///< L2 penalty added to the gradient, >= 0
  double momentum = 0;        ///< in [0, 1]; 0 = no momentum buffer
  bool centered = false;      ///< true: divide by the running standard deviation instead of the RMS
  bool check_finite = false;  ///< true: throw uvp::numeric_error on NaN / inf gradients
};

namespace detail {

/// The per-step scalars of one RMSprop step, rounded to T (or broadcast to a batch of T).
template <class T>
struct RmsPropCoefficients {
  T weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;

  template <class U>
  RmsPropCoefficients<U> as() const noexcept {
    return {U(weight_decay), U(alpha), U(one_minus_alpha), U(eps), U(momentum), U(neg_lr)};
  }
};

/// One element (or batch) of one RMSprop step: updates p, s, and *a (Centered) and *b (Momentum)
/// in place, in PyTorch's order of operations (add, mul_, addcmul_, [mul_, add_, addcmul, sqrt_],
/// add_, [mul_, addcdiv_ | addcdiv_]).
template <bool Centered, bool Momentum, class T>
inline void rmsprop_update_element(T& p, T g, T& s, T* a, T* b, const RmsPropCoefficients<T>& c) noexcept {
  using std::sqrt;
  const T gi = rn_add(g, rn_mul(c.weight_decay, p));
  s = rn_add(rn_mul(s, c.alpha), rn_mul(rn_mul(c.one_minus_alpha, gi), gi));
  T avg;
  if constexpr (Centered) {
    *a = rn_add(rn_mul(*a, c.alpha), rn_mul(c.one_minus_alpha, gi));
    avg = sqrt(LaneOps<T>::max(s - rn_mul(*a, *a), T(0)));
  } else {
    avg = sqrt(s);
  }
  avg = rn_add(avg, c.eps);
  if constexpr (Momentum) {
    *b = rn_add(rn_mul(*b, c.momentum), gi / avg);
    p = rn_add(p, rn_mul(c.neg_lr, *b));
  } else {
    p = rn_add(p, rn_mul(c.neg_lr, gi / avg));
  }
}

/// RMSprop's update rule for OptimizerBase. Slots: 0 = s (square_avg), 1 = a (grad_avg,
/// centered only), 2 = b (momentum_buffer, momentum > 0 only).
struct RmsPropRule {
  using options_type = RmsPropOptions;
  static constexpr OptimizerNames names{"uvp::RmsProp", "uvp::RmsProp::step", "uvp::RmsProp::update",
                                        "uvp::RmsProp::set_lr", "uvp::RmsProp::resize"};
  static constexpr int max_states = 3;
  template <class T>
  using coefficients_type = RmsPropCoefficients<T>;

  static void validate(const RmsPropOptions& o) {
    check_option_unit_open(names.type, "alpha", o.alpha);
    check_option_positive(names.type, "eps", o.eps);
    check_option_non_negative(names.type, "weight_decay", o.weight_decay);
    check_option_unit_closed(names.type, "momentum", o.momentum);
  }
  static double initial_state(const RmsPropOptions&, int) noexcept { return 0; }
  template <class T>
  static RmsPropCoefficients<T> coefficients(const RmsPropOptions& o, double lr, index) noexcept {
    return {T(o.weight_decay), T(o.alpha), T(1 - o.alpha), T(o.eps), T(o.momentum), T(-lr)};
  }

  template <bool Centered, bool Momentum>
  struct Kernel {
    using slots = slots_where<true, Centered, Momentum>;
    template <class V>
    static void apply(const RmsPropCoefficients<V>& c, V& p, V g, V* const* s) noexcept {
      rmsprop_update_element<Centered, Momentum>(p, g, *s[0], s[1], s[2], c);
    }
  };
  template <class Visit>
  static void dispatch(const RmsPropOptions& o, Visit&& visit) {
    const bool momentum = o.momentum > 0;
    if (o.centered) {
      if (momentum)
        visit(Kernel<true, true>{});
      else
        visit(Kernel<true, false>{});
    } else {
      if (momentum)
        visit(Kernel<false, true>{});
      else
        visit(Kernel<false, false>{});
    }
  }
};

}  // namespace detail

/// RMSprop state for one flat parameter vector of T (float or double). State: square_avg, and
/// grad_avg (centered) and momentum_buffer (momentum > 0), each size() elements, 64-byte aligned,
/// allocated on the first step (or by resize) and never again until reset(). The member
/// functions are the driver's (detail::OptimizerBase, contract in optim/optimizer.hpp).
template <class T, class Backend = cpu>
class RmsProp : public detail::OptimizerBase<T, detail::RmsPropRule> {
  static_assert(is_scalar_v<T>, "uvp::RmsProp<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::RmsProp: only the uvp::cpu backend is implemented; use RmsProp<T, uvp::cpu>");
  using Base = detail::OptimizerBase<T, detail::RmsPropRule>;

 public:
  using backend_type = Backend;

  explicit RmsProp(RmsPropOptions options = {}) : Base(options) {}

  /// Running mean of g^2; running mean of g (empty unless centered); momentum buffer (empty
  /// unless momentum > 0). PyTorch's state names.
  Span<const T> square_avg() const noexcept { return this->state(0); }
  Span<const T> grad_avg() const noexcept { return this->state(1); }
  Span<const T> momentum_buffer() const noexcept { return this->state(2); }
};

}  // namespace uvp
