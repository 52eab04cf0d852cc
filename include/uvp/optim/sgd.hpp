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
// The rule (detail::SgdRule) is a policy of the shared driver detail::OptimizerBase; its
// per-element update is detail::sgd_update_element (detail/sgd_math.hpp), the one the CUDA
// backend runs too.
#pragma once

#include <type_traits>

#include "uvp/backend/tags.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/detail/optimizer_base.hpp"
#include "uvp/detail/sgd_math.hpp"
#include "uvp/optim/optimizer.hpp"

namespace uvp {

// SgdOptions (shared with the CUDA backend) is defined in uvp/detail/sgd_math.hpp.

namespace detail {

/// SGD's update rule for OptimizerBase. Slot 0 = the momentum buffer (momentum > 0 only).
struct SgdRule {
  using options_type = SgdOptions;
  static constexpr OptimizerNames names{"uvp::Sgd", "uvp::Sgd::step", "uvp::Sgd::update", "uvp::Sgd::set_lr",
                                        "uvp::Sgd::resize"};
  static constexpr int max_states = 1;
  template <class T>
  using coefficients_type = SgdCoefficients<T>;

  static void validate(const SgdOptions& o) {
    check_option_unit_closed(names.type, "momentum", o.momentum);
    check_option_unit_closed(names.type, "dampening", o.dampening);
    check_option_non_negative(names.type, "weight_decay", o.weight_decay);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      raise<invalid_argument>(names.type, ": nesterov needs momentum > 0 and dampening = 0, got momentum ",
                              o.momentum, " and dampening ", o.dampening);
  }
  static double initial_state(const SgdOptions&, int) noexcept { return 0; }
  template <class T>
  static SgdCoefficients<T> coefficients(const SgdOptions& o, double lr, index t) noexcept {
    return sgd_coefficients<T>(o, lr, t);
  }

  template <bool Momentum, bool Nesterov>
  struct Kernel {
    using slots = slots_where<Momentum>;
    template <class V>
    static void apply(const SgdCoefficients<V>& c, V& p, V g, V* const* s) noexcept {
      sgd_update_element<Momentum, Nesterov>(p, g, s[0], c);
    }
  };
  template <class Visit>
  static void dispatch(const SgdOptions& o, Visit&& visit) {
    if (o.momentum == 0)
      visit(Kernel<false, false>{});
    else if (o.nesterov)
      visit(Kernel<true, true>{});
    else
      visit(Kernel<true, false>{});
  }
};

}  // namespace detail

/// SGD state for one flat parameter vector of T (float or double). State: the momentum buffer,
/// size() elements, 64-byte aligned, allocated on the first step only when momentum > 0. The
/// member functions are the driver's (detail::OptimizerBase, contract in optim/optimizer.hpp).
template <class T, class Backend = cpu>
class Sgd : public detail::OptimizerBase<T, detail::SgdRule> {
  static_assert(is_scalar_v<T>, "uvp::Sgd<T>: T must be float or double");
  static_assert(std::is_same_v<Backend, cpu>,
                "uvp::Sgd: only the uvp::cpu backend is implemented; use Sgd<T, uvp::cpu>");
  using Base = detail::OptimizerBase<T, detail::SgdRule>;

 public:
  using backend_type = Backend;

  explicit Sgd(SgdOptions options = {}) : Base(options) {}

  /// The momentum buffer (empty when momentum = 0).
  Span<const T> momentum_buffer() const noexcept { return this->state(0); }
};

}  // namespace uvp
