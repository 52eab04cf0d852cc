// SPDX-License-Identifier: Apache-2.0
// CPU side of test_cuda_optim: the schedule of optim_reference.hpp on uvp::Adam / uvp::Sgd.
#include "optim_reference.hpp"

#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"

namespace uvp_cuda_test {

namespace {

template <class Opt, class T>
void run_schedule(Opt& opt, std::vector<T>& params, const std::vector<T>& grads) {
  const uvp::index n = static_cast<uvp::index>(params.size());
  const uvp::index a_end = slice_a_end(n), b_begin = slice_b_begin(n);
  for (int s = 1; s <= schedule_steps; ++s) {
    if (s == 4) opt.set_lr(opt.lr() * 0.5);
    const T* g = grads.data() + (s - 1) * n;
    if (schedule_full_step(s)) {
      opt.step(uvp::Span<T>(params.data(), n), uvp::Span<const T>(g, n));
    } else {
      opt.begin_step();
      opt.update(uvp::Span<T>(params.data(), a_end), uvp::Span<const T>(g, a_end), 0);
      opt.update(uvp::Span<T>(params.data() + b_begin, n - b_begin),
                 uvp::Span<const T>(g + b_begin, n - b_begin), b_begin);
    }
  }
}

template <class T>
std::vector<T> to_vector(uvp::Span<const T> s) {
  return std::vector<T>(s.data(), s.data() + s.size());
}

}  // namespace

template <class T>
OptimResult<T> cpu_adam(const AdamCase& c, std::vector<T> params, const std::vector<T>& grads) {
  uvp::AdamOptions o;
  o.lr = c.lr;
  o.beta1 = c.beta1;
  o.beta2 = c.beta2;
  o.eps = c.eps;
  o.weight_decay = c.weight_decay;
  o.decoupled_weight_decay = c.decoupled;
  o.amsgrad = c.amsgrad;
  uvp::Adam<T> adam(o);
  run_schedule(adam, params, grads);
  return {params, to_vector(adam.exp_avg()), to_vector(adam.exp_avg_sq())};
}

template <class T>
OptimResult<T> cpu_sgd(const SgdCase& c, std::vector<T> params, const std::vector<T>& grads) {
  uvp::SgdOptions o;
  o.lr = c.lr;
  o.momentum = c.momentum;
  o.dampening = c.dampening;
  o.weight_decay = c.weight_decay;
  o.nesterov = c.nesterov;
  uvp::Sgd<T> sgd(o);
  run_schedule(sgd, params, grads);
  return {params, to_vector(sgd.momentum_buffer()), {}};
}

template OptimResult<float> cpu_adam<float>(const AdamCase&, std::vector<float>,
                                            const std::vector<float>&);
template OptimResult<double> cpu_adam<double>(const AdamCase&, std::vector<double>,
                                              const std::vector<double>&);
template OptimResult<float> cpu_sgd<float>(const SgdCase&, std::vector<float>,
                                           const std::vector<float>&);
template OptimResult<double> cpu_sgd<double>(const SgdCase&, std::vector<double>,
                                             const std::vector<double>&);

}  // namespace uvp_cuda_test
