// SPDX-License-Identifier: Apache-2.0
// uvp::Adam<T, uvp::cuda> and uvp::Sgd<T, uvp::cuda> against uvp::Adam<T> / uvp::Sgd<T> on the
// CPU (optim_reference.cpp): the same schedule of full and sliced steps must give the same bits.
// Host-only part (runs everywhere): the shared per-element updates (uvp/detail/adam_math.hpp,
// sgd_math.hpp) replayed on the host give the CPU optimizers' bits, and every argument error of
// the CUDA specialisations is raised before any CUDA call.
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "optim_reference.hpp"
#include "uvp/backend/cuda/adam.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/sgd.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
using namespace uvp_cuda_test;
namespace cb = uvp::cuda_backend;

constexpr index n_params = 1000;

const AdamCase adam_cases[] = {
    {1e-3, 0.9, 0.999, 1e-8, 0, false, false},    // PyTorch's defaults
    {5e-2, 0.8, 0.99, 1e-6, 0.1, false, false},   // L2 weight decay
    {5e-2, 0.9, 0.999, 1e-8, 0.05, true, false},  // AdamW
    {1e-2, 0.9, 0.99, 1e-8, 0.01, false, true},   // AMSGrad
};
const SgdCase sgd_cases[] = {
    {0.1, 0, 0, 0, false},       // plain
    {0.05, 0.9, 0, 1e-3, false},  // momentum + weight decay
    {0.05, 0.9, 0.25, 0, false},  // dampening
    {0.02, 0.8, 0, 0.01, true},   // Nesterov
};

uvp::AdamOptions adam_options(const AdamCase& c) {
  uvp::AdamOptions o;
  o.lr = c.lr;
  o.beta1 = c.beta1;
  o.beta2 = c.beta2;
  o.eps = c.eps;
  o.weight_decay = c.weight_decay;
  o.decoupled_weight_decay = c.decoupled;
  o.amsgrad = c.amsgrad;
  return o;
}
uvp::SgdOptions sgd_options(const SgdCase& c) {
  uvp::SgdOptions o;
  o.lr = c.lr;
  o.momentum = c.momentum;
  o.dampening = c.dampening;
  o.weight_decay = c.weight_decay;
  o.nesterov = c.nesterov;
  return o;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
std::string type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

// -------------------------------------------------------------------------------------------
// Host replay of the schedule with the shared per-element functions.
template <class T>
OptimResult<T> host_adam(const AdamCase& c, std::vector<T> p, const std::vector<T>& grads) {
  const uvp::AdamOptions o = adam_options(c);
  const index n = n_params;
  std::vector<T> m(n, T(0)), v(n, T(0)), vmax(n, T(0));
  double lr = o.lr;
  for (int s = 1; s <= schedule_steps; ++s) {
    if (s == 4) lr *= 0.5;
    const auto k = uvp::detail::adam_coefficients<T>(o, lr, s);
    const T* g = grads.data() + (s - 1) * n;
    for (index i = 0; i < n; ++i) {
      if (!schedule_full_step(s) && i >= slice_a_end(n) && i < slice_b_begin(n)) continue;
      if (o.amsgrad)
        uvp::detail::adam_update_element<true>(p[i], g[i], m[i], v[i], &vmax[i], k);
      else
        uvp::detail::adam_update_element<false>(p[i], g[i], m[i], v[i], static_cast<T*>(nullptr), k);
    }
  }
  return {p, m, v};
}

template <class T>
OptimResult<T> host_sgd(const SgdCase& c, std::vector<T> p, const std::vector<T>& grads) {
  const uvp::SgdOptions o = sgd_options(c);
  const index n = n_params;
  std::vector<T> b(o.momentum != 0 ? n : 0, T(0));
  double lr = o.lr;
  for (int s = 1; s <= schedule_steps; ++s) {
    if (s == 4) lr *= 0.5;
    const auto k = uvp::detail::sgd_coefficients<T>(o, lr, s);
    const T* g = grads.data() + (s - 1) * n;
    for (index i = 0; i < n; ++i) {
      if (!schedule_full_step(s) && i >= slice_a_end(n) && i < slice_b_begin(n)) continue;
      if (o.momentum == 0)
        uvp::detail::sgd_update_element<false, false>(p[i], g[i], static_cast<T*>(nullptr), k);
      else if (o.nesterov)
        uvp::detail::sgd_update_element<true, true>(p[i], g[i], &b[i], k);
      else
        uvp::detail::sgd_update_element<true, false>(p[i], g[i], &b[i], k);
    }
  }
  return {p, b, {}};
}

template <class T>
void shared_math_matches_cpu() {
  const auto p0 = uniform<T>(n_params, 1, -1, 1);
  const auto grads = uniform<T>(n_params * schedule_steps, 2, -0.5, 0.5);
  int k = 0;
  for (const auto& c : adam_cases) {
    const auto cpu = cpu_adam<T>(c, p0, grads);
    const auto host = host_adam<T>(c, p0, grads);
    UVP_EXPECT_MSG(same_bits(cpu.params, host.params) && same_bits(cpu.state1, host.state1) &&
                       same_bits(cpu.state2, host.state2),
                   "adam_update_element == uvp::Adam<" + type_name<T>() + ">, case " +
                       std::to_string(k));
    ++k;
  }
  k = 0;
  for (const auto& c : sgd_cases) {
    const auto cpu = cpu_sgd<T>(c, p0, grads);
    const auto host = host_sgd<T>(c, p0, grads);
    UVP_EXPECT_MSG(same_bits(cpu.params, host.params) && same_bits(cpu.state1, host.state1),
                   "sgd_update_element == uvp::Sgd<" + type_name<T>() + ">, case " +
                       std::to_string(k));
    ++k;
  }
}

// Argument errors: all raised before any CUDA call (no device needed). Fake device pointers
// are never dereferenced.
void argument_errors() {
  using A = uvp::Adam<float, uvp::cuda>;
  using S = uvp::Sgd<float, uvp::cuda>;
  uvp::AdamOptions bad;
  bad.lr = -1;
  UVP_EXPECT_THROWS(uvp::invalid_argument, A{bad}, "uvp::Adam: lr must be finite and > 0, got -1");
  bad = {};
  bad.beta2 = 1;
  UVP_EXPECT_THROWS(uvp::invalid_argument, A{bad}, "uvp::Adam: beta2 must be in [0, 1), got 1");
  uvp::SgdOptions sbad;
  sbad.nesterov = true;
  UVP_EXPECT_THROWS(uvp::invalid_argument, S{sbad},
                    "uvp::Sgd: nesterov needs momentum > 0 and dampening = 0, got momentum 0");

  A adam;
  UVP_EXPECT(adam.steps() == 0 && adam.size() == 0 && adam.exp_avg().empty());
  UVP_EXPECT_THROWS(uvp::invalid_argument, adam.set_lr(-0.5),
                    "uvp::Adam::set_lr: lr must be finite and >= 0, got -0.5");
  float* fake = reinterpret_cast<float*>(std::uintptr_t(256));
  const cb::DeviceSpan<float> p4(fake, 4), p0(fake, 0);
  const cb::DeviceSpan<const float> g4(fake, 4), g3(fake, 3);
  UVP_EXPECT_THROWS(uvp::invalid_argument, adam.step(p0, g3), "uvp::Adam::step: params is empty");
  UVP_EXPECT_THROWS(uvp::shape_error, adam.step(p4, g3),
                    "uvp::Adam::step: grads has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::invalid_argument, adam.step(p4, g4, 2),
                    "uvp::Adam::step: the state is not sized; call resize(n) or take a full step first");
  UVP_EXPECT_THROWS(uvp::invalid_argument, adam.update(p4, g4, 0),
                    "uvp::Adam::update: no step begun; call begin_step() first");
  UVP_EXPECT_THROWS(uvp::invalid_argument, adam.resize(0), "uvp::Adam::resize: n must be > 0, got 0");
  S sgd;
  UVP_EXPECT_THROWS(uvp::shape_error, sgd.step(p4, g3), "uvp::Sgd::step: grads has size 3, expected 4");
  UVP_EXPECT_THROWS(uvp::invalid_argument, sgd.resize(-2), "uvp::Sgd::resize: n must be > 0, got -2");
  UVP_EXPECT(std::string(uvp::backend_traits<A::backend_type>::name) == "cuda");
}

void host_checks() {
  shared_math_matches_cpu<float>();
  shared_math_matches_cpu<double>();
  argument_errors();
}

// -------------------------------------------------------------------------------------------
template <class Opt, class T>
OptimResult<T> device_schedule(Opt& opt, const std::vector<T>& p0, const std::vector<T>& grads) {
  const index n = n_params;
  cb::DeviceBuffer<T> p(p0), g(grads);
  const index a_end = slice_a_end(n), b_begin = slice_b_begin(n);
  for (int s = 1; s <= schedule_steps; ++s) {
    if (s == 4) opt.set_lr(opt.lr() * 0.5);
    const T* gs = g.data() + (s - 1) * n;
    if (schedule_full_step(s)) {
      opt.step(cb::DeviceSpan<T>(p.data(), n), cb::DeviceSpan<const T>(gs, n));
    } else {
      opt.begin_step();
      opt.update(cb::DeviceSpan<T>(p.data(), a_end), cb::DeviceSpan<const T>(gs, a_end), 0);
      opt.update(cb::DeviceSpan<T>(p.data() + b_begin, n - b_begin),
                 cb::DeviceSpan<const T>(gs + b_begin, n - b_begin), b_begin);
    }
  }
  OptimResult<T> r{std::vector<T>(n), {}, {}};
  p.to_host(r.params);
  return r;
}

template <class T>
std::vector<T> host_copy(const cb::DeviceBuffer<T>& b) {
  std::vector<T> v(static_cast<std::size_t>(b.size()));
  b.to_host(v);
  return v;
}

template <class T>
void device_matches_cpu() {
  const auto p0 = uniform<T>(n_params, 1, -1, 1);
  const auto grads = uniform<T>(n_params * schedule_steps, 2, -0.5, 0.5);
  cb::Stream stream;
  int k = 0;
  for (const auto& c : adam_cases) {
    uvp::Adam<T, uvp::cuda> adam(adam_options(c), stream.get());
    auto gpu = device_schedule(adam, p0, grads);
    const auto cpu = cpu_adam<T>(c, p0, grads);
    UVP_EXPECT_MSG(same_bits(gpu.params, cpu.params) &&
                       same_bits(host_copy(adam.exp_avg()), cpu.state1) &&
                       same_bits(host_copy(adam.exp_avg_sq()), cpu.state2),
                   "Adam<" + type_name<T>() + ", cuda> == Adam<" + type_name<T>() +
                       ">, case " + std::to_string(k) + " (worst relative difference " +
                       std::to_string(worst_error(gpu.params, cpu.params, 1, 1e-300)) + ")");
    UVP_EXPECT(adam.steps() == schedule_steps && adam.size() == n_params);
    ++k;
  }
  k = 0;
  for (const auto& c : sgd_cases) {
    uvp::Sgd<T, uvp::cuda> sgd(sgd_options(c), stream.get());
    auto gpu = device_schedule(sgd, p0, grads);
    const auto cpu = cpu_sgd<T>(c, p0, grads);
    UVP_EXPECT_MSG(same_bits(gpu.params, cpu.params) &&
                       same_bits(host_copy(sgd.momentum_buffer()), cpu.state1),
                   "Sgd<" + type_name<T>() + ", cuda> == Sgd<" + type_name<T>() + ">, case " +
                       std::to_string(k));
    ++k;
  }

  // check_finite: a NaN gradient throws before anything changes.
  uvp::AdamOptions o;
  o.check_finite = true;
  uvp::Adam<T, uvp::cuda> adam(o, stream.get());
  auto g = uniform<T>(n_params, 3, -1, 1);
  g[7] = std::numeric_limits<T>::quiet_NaN();
  cb::DeviceBuffer<T> dp(p0, stream.get()), dg(g, stream.get());
  UVP_EXPECT_THROWS(uvp::numeric_error, adam.step(cb::DeviceSpan<T>(dp), cb::DeviceSpan<const T>(dg)),
                    "uvp::Adam::step: grads has a non-finite value (", ") at flat index 7");
  UVP_EXPECT(host_copy(dp) == p0 && adam.steps() == 0);
  UVP_EXPECT(cudaGetLastError() == cudaSuccess);
}

void device_checks() {
  device_matches_cpu<float>();
  device_matches_cpu<double>();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_optim", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
