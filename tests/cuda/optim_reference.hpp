// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_optim: uvp::Adam<T> / uvp::Sgd<T> (optim/*.hpp, with Eigen and xsimd)
// run a fixed schedule of steps, compiled by the host compiler.
#pragma once

#include <vector>

#include "uvp/core/config.hpp"

namespace uvp_cuda_test {

/// The options of one case, as plain numbers (each side builds its own uvp::AdamOptions).
struct AdamCase {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled, amsgrad;
};
struct SgdCase {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

/// The schedule both sides run on n parameters, `steps` steps, gradients grads[s * n + i]:
/// odd steps (1, 3, ...) are full steps; even steps are begin_step() + update() of the two
/// slices [0, n / 3) and [n / 2, n) (lazy updates); before step 4 the lr is halved.
inline constexpr int schedule_steps = 6;
inline bool schedule_full_step(int s) { return s % 2 == 1; }
inline uvp::index slice_a_end(uvp::index n) { return n / 3; }
inline uvp::index slice_b_begin(uvp::index n) { return n / 2; }

/// Final params and state (m, v or the momentum buffer) after the schedule on the CPU.
template <class T>
struct OptimResult {
  std::vector<T> params, state1, state2;
};
template <class T>
OptimResult<T> cpu_adam(const AdamCase& c, std::vector<T> params, const std::vector<T>& grads);
template <class T>
OptimResult<T> cpu_sgd(const SgdCase& c, std::vector<T> params, const std::vector<T>& grads);

}  // namespace uvp_cuda_test
