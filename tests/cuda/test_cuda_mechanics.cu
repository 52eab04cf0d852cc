// SPDX-License-Identifier: Apache-2.0
// CUDA mechanics behind uvp::cuda: error macros, DeviceBuffer, cuBLAS GEMM and one element-wise
// kernel, each checked against the CPU. Exits 77 ("skipped: no CUDA device") after the host-only
// checks when no device can be used.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "uvp/backend/cuda/cuda.cuh"

namespace {

using uvp::index;
namespace cb = uvp::cuda_backend;

int g_failures = 0;
int g_checks = 0;

void expect(bool ok, const std::string& what, int line) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "test_cuda_mechanics.cu:%d: FAILED: %s\n", line, what.c_str());
  }
}
#define EXPECT(cond) expect((cond), #cond, __LINE__)

/// Runs f, expects an exception of type E whose what() contains every one of `parts`.
template <class E>
void expect_throws(const std::function<void()>& f, std::vector<std::string> parts, int line) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      expect(msg.find(p) != std::string::npos, "'" + msg + "' contains '" + p + "'", line);
    return;
  } catch (const std::exception& e) {
    expect(false, std::string("wrong exception type: ") + e.what(), line);
    return;
  }
  expect(false, "no exception thrown", line);
}

/// Largest |got - want| / tol over the elements; <= 1 passes.
template <class T>
double worst_ratio(const std::vector<T>& got, const std::vector<T>& want,
                   const std::vector<T>& tol) {
  if (got.size() != want.size() || got.size() != tol.size())
    return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double r = std::abs(double(got[i]) - double(want[i])) / double(tol[i]);
    if (!(r <= worst)) worst = r;  // also catches NaN
  }
  return worst;
}

// -------------------------------------------------------------------------------------------
// The pipeline on the CUDA backend (the CPU overload is in cpu_reference.cpp): sigmoid(A * B).
template <class T>
std::vector<T> sigmoid_of_product(uvp::cuda, const std::vector<T>& a, const std::vector<T>& b,
                                  index m, index n, index k) {
  cb::BlasHandle blas;
  const cb::DeviceBuffer<T> da(a), db(b);
  cb::DeviceBuffer<T> dc(m * n);
  cb::gemm(blas, da, db, dc, m, n, k);
  cb::sigmoid(dc, dc);  // in place
  std::vector<T> c(static_cast<std::size_t>(m * n));
  dc.to_host(c);
  return c;
}

cudaError_t fake_failure_returning(cudaError_t status) { return status; }

// -------------------------------------------------------------------------------------------
// Checks that need no device: error formatting, argument checks made before any CUDA call,
// the shared scalar function on the host, and the device query itself.
void host_only_checks() {
  expect_throws<uvp::backend_error>(
      [] { UVP_CUDA_CHECK(fake_failure_returning(cudaErrorMemoryAllocation)); },
      {"uvp::cuda: fake_failure_returning(cudaErrorMemoryAllocation) failed at ",
       "test_cuda_mechanics.cu:", "cudaErrorMemoryAllocation", "out of memory"},
      __LINE__);
  expect_throws<uvp::backend_error>(
      [] { UVP_CUBLAS_CHECK(cublasStatus_t(CUBLAS_STATUS_INVALID_VALUE)); },
      {"uvp::cuda: cublasStatus_t(CUBLAS_STATUS_INVALID_VALUE) failed at ",
       "test_cuda_mechanics.cu:", "CUBLAS_STATUS_INVALID_VALUE"},
      __LINE__);
  try {
    UVP_CUDA_CHECK(fake_failure_returning(cudaErrorInvalidValue));
  } catch (const uvp::error& e) {  // the catch-all base, and its stable code
    EXPECT(e.code() == uvp::errc::backend_error);
  }
  UVP_CUDA_CHECK(fake_failure_returning(cudaSuccess));  // success does not throw
  UVP_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS);

  // sigmoid_scalar: the one definition the kernel uses, here on the host.
  EXPECT(uvp::detail::sigmoid_scalar(0.0) == 0.5);
  EXPECT(uvp::detail::sigmoid_scalar(0.0f) == 0.5f);
  EXPECT(std::abs(uvp::detail::sigmoid_scalar(2.0) - 0.8807970779778823) < 1e-15);
  EXPECT(std::abs(uvp::detail::sigmoid_scalar(-2.0) - 0.11920292202211755) < 1e-15);
  EXPECT(uvp::detail::sigmoid_scalar(-200.0f) >= 0.0f);  // no 1 / inf, no NaN
  EXPECT(uvp::detail::sigmoid_scalar(-1000.0) == 0.0 && uvp::detail::sigmoid_scalar(1000.0) == 1.0);
  EXPECT(std::isnan(uvp::detail::sigmoid_scalar(std::numeric_limits<double>::quiet_NaN())));

  // DeviceBuffer without allocating: no CUDA call is made for size 0.
  cb::DeviceBuffer<float> empty;
  EXPECT(empty.size() == 0 && empty.empty() && empty.data() == nullptr && empty.bytes() == 0);
  cb::DeviceBuffer<double> zero(index(0));
  EXPECT(zero.size() == 0 && zero.data() == nullptr);
  cb::DeviceBuffer<double> moved(std::move(zero));
  EXPECT(moved.empty());
  std::vector<float> three(3, 1.0f);
  expect_throws<uvp::invalid_argument>(
      [] { cb::DeviceBuffer<float> b(index(-1)); },
      {"uvp::cuda_backend::DeviceBuffer: size is -1, expected >= 0"}, __LINE__);
  expect_throws<uvp::shape_error>(
      [&] { empty.to_device(three); },
      {"uvp::cuda_backend::DeviceBuffer::to_device: host has size 3, expected 0"}, __LINE__);
  expect_throws<uvp::shape_error>(
      [&] { empty.to_host(three); },
      {"uvp::cuda_backend::DeviceBuffer::to_host: host has size 3, expected 0"}, __LINE__);
  expect_throws<uvp::invalid_argument>([] { cb::sigmoid<float>(nullptr, nullptr, -5); },
                                       {"uvp::cuda_backend::sigmoid: n is -5, expected >= 0"},
                                       __LINE__);

  // The query answers without throwing, with or without a device (or driver).
  const int count = cb::device_count();
  EXPECT(count >= 0);
  EXPECT(cb::device_available() == (count > 0));
  int raw = 0;
  const cudaError_t status = cudaGetDeviceCount(&raw);
  std::printf("CUDA devices: %d (cudaGetDeviceCount: %s)\n", count, cudaGetErrorName(status));
  // With a device the query leaves no error behind; without a usable runtime every call keeps
  // returning the initialisation error, so there is nothing to clear.
  if (count > 0) EXPECT(cudaGetLastError() == cudaSuccess);
}

// -------------------------------------------------------------------------------------------
template <class T>
void buffer_checks() {
  const auto host = uvp_cuda_test::uniform<T>(1000, 7, -5, 5);
  cb::DeviceBuffer<T> d(host);
  EXPECT(d.size() == 1000 && d.data() != nullptr && d.bytes() == 1000 * sizeof(T));
  std::vector<T> back(host.size(), T(0));
  d.to_host(back);
  EXPECT(back == host);  // bit-exact round trip

  cb::DeviceBuffer<T> moved(std::move(d));
  EXPECT(d.empty() && d.data() == nullptr && moved.size() == 1000);
  cb::DeviceBuffer<T> assigned(index(4));
  assigned = std::move(moved);  // frees its own 4 elements, takes the 1000
  std::fill(back.begin(), back.end(), T(0));
  assigned.to_host(back.data(), static_cast<index>(back.size()));
  EXPECT(back == host);

  expect_throws<uvp::shape_error>(
      [&] { assigned.to_device(host.data(), 999); },
      {"uvp::cuda_backend::DeviceBuffer::to_device: host has size 999, expected 1000"}, __LINE__);

  // A failing runtime call throws, and the (non-sticky) error does not leak into later checks.
  expect_throws<uvp::backend_error>(
      [&] { UVP_CUDA_CHECK(cudaMemcpy(nullptr, host.data(), 8, cudaMemcpyHostToDevice)); },
      {"uvp::cuda: cudaMemcpy(nullptr, host.data(), 8, cudaMemcpyHostToDevice) failed at ",
       "cudaErrorInvalidValue"},
      __LINE__);
  EXPECT(cudaGetLastError() == cudaSuccess);
  expect_throws<uvp::backend_error>([] { cb::DeviceBuffer<T> huge(index(1) << 50); },
                                    {"cudaMalloc", "cudaErrorMemoryAllocation"}, __LINE__);
  std::fill(back.begin(), back.end(), T(0));
  assigned.to_host(back);
  EXPECT(back == host);  // the device still works
}

template <class T>
void gemm_checks(cb::BlasHandle& blas) {
  struct Shape {
    index m, n, k;
    double alpha, beta;
  };
  const Shape shapes[] = {{1, 1, 1, 1, 0},      {3, 5, 4, 1, 0},    {64, 33, 17, 1.5, -0.5},
                          {128, 96, 256, 1, 0}, {7, 9, 0, 2, 0.25}, {33, 1, 65, -1, 1}};
  std::uint64_t seed = 100;
  for (const auto& s : shapes) {
    const T alpha = T(s.alpha), beta = T(s.beta);
    const auto a = uvp_cuda_test::uniform<T>(s.m * s.k, ++seed, -1, 1);
    const auto b = uvp_cuda_test::uniform<T>(s.k * s.n, ++seed, -1, 1);
    auto c0 = uvp_cuda_test::uniform<T>(s.m * s.n, ++seed, -1, 1);
    // beta == 0: C's old contents must not be read, so NaN there must not reach the result.
    if (beta == T(0)) std::fill(c0.begin(), c0.end(), std::numeric_limits<T>::quiet_NaN());
    const auto want = uvp_cuda_test::gemm<T>(a, b, c0, s.m, s.n, s.k, alpha, beta);
    const auto tol = uvp_cuda_test::gemm_error_bound<T>(a, b, c0, s.m, s.n, s.k, alpha, beta);

    const cb::DeviceBuffer<T> da(a), db(b);
    cb::DeviceBuffer<T> dc(c0);
    cb::gemm(blas, da, db, dc, s.m, s.n, s.k, s.alpha, s.beta);
    std::vector<T> got(c0.size());
    dc.to_host(got);
    const double r = worst_ratio(got, want, tol);
    expect(r <= 1.0,
           "gemm " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
               " (" + (sizeof(T) == 4 ? "float" : "double") +
               "): worst |gpu - cpu| / bound = " + std::to_string(r),
           __LINE__);
  }

  cb::DeviceBuffer<T> a(index(6)), b(index(6)), c(index(4));
  expect_throws<uvp::shape_error>([&] { cb::gemm(blas, a, b, c, 2, 2, 2); },
                                  {"uvp::cuda_backend::gemm: a has size 6, expected 2 x 2 = 4"},
                                  __LINE__);
  expect_throws<uvp::invalid_argument>(
      [&] { cb::gemm<T>(blas, -1, 2, 3, 1, a.data(), b.data(), 0, c.data()); },
      {"uvp::cuda_backend::gemm: m is -1, expected in [0, 2147483647]"}, __LINE__);
}

template <class T>
void sigmoid_checks(cudaStream_t stream) {
  // More than 65535 blocks of 256, so the grid-stride loop runs more than once per thread.
  const index n = index(65535) * 256 + 1001;
  auto x = uvp_cuda_test::uniform<T>(n, 11, -40, 40);
  x[0] = T(0);
  x[1] = T(-1000);
  x[2] = T(1000);
  x[3] = std::numeric_limits<T>::quiet_NaN();
  const cb::DeviceBuffer<T> dx(x, stream);
  cb::DeviceBuffer<T> dy(n, stream);
  cb::sigmoid(dx, dy);
  std::vector<T> y(x.size());
  dy.to_host(y);  // waits for the kernel on `stream`

  // Same scalar code on both sides; only exp differs (CUDA's expf / exp: <= 2 ulp, glibc < 1 ulp).
  const T eps = std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (index i = 4; i < n; ++i) {
    const T want = uvp::detail::sigmoid_scalar(x[i]);
    const double r =
        std::abs(double(y[i]) - double(want)) /
        (8 * double(eps) * double(want) + double(std::numeric_limits<T>::denorm_min()));
    if (!(r <= worst)) worst = r;
  }
  expect(worst <= 1.0,
         "sigmoid kernel: worst |gpu - cpu| / (8 eps |cpu|) = " + std::to_string(worst), __LINE__);
  EXPECT(y[0] == T(0.5) && y[1] == T(0) && y[2] == T(1) && std::isnan(y[3]));

  cb::DeviceBuffer<T> wrong(index(3), stream);
  expect_throws<uvp::shape_error>(
      [&] { cb::sigmoid(dx, wrong); },
      {"uvp::cuda_backend::sigmoid: y has size 3, expected " + std::to_string(n)}, __LINE__);
}

/// The pipeline written once, run on uvp::cpu and uvp::cuda, compared.
template <class T>
void backend_equivalence() {
  const index m = 37, n = 19, k = 23;
  const auto a = uvp_cuda_test::uniform<T>(m * k, 21, -1, 1);
  const auto b = uvp_cuda_test::uniform<T>(k * n, 22, -1, 1);
  const auto on_cpu = uvp_cuda_test::sigmoid_of_product(uvp::cpu{}, a, b, m, n, k);
  const auto on_gpu = sigmoid_of_product(uvp::cuda{}, a, b, m, n, k);
  // sigmoid' <= 1/4, so the GEMM bound carries over; plus the sigmoid's own rounding.
  auto tol = uvp_cuda_test::gemm_error_bound<T>(a, b, {}, m, n, k, T(1), T(0));
  for (auto& t : tol) t = t / 4 + 8 * std::numeric_limits<T>::epsilon();
  const double r = worst_ratio(on_gpu, on_cpu, tol);
  expect(r <= 1.0, std::string("cpu vs cuda backend: worst ratio ") + std::to_string(r), __LINE__);
}

void device_checks() {
  buffer_checks<float>();
  buffer_checks<double>();

  cudaStream_t stream = nullptr;
  UVP_CUDA_CHECK(cudaStreamCreate(&stream));
  {
    cb::BlasHandle blas(stream);
    EXPECT(blas.get() != nullptr);
    gemm_checks<float>(blas);
    gemm_checks<double>(blas);
    cb::BlasHandle moved(std::move(blas));
    EXPECT(blas.get() == nullptr && moved.get() != nullptr);
  }
  sigmoid_checks<float>(stream);
  sigmoid_checks<double>(stream);
  UVP_CUDA_CHECK(cudaStreamDestroy(stream));

  backend_equivalence<float>();
  backend_equivalence<double>();
  EXPECT(cudaDeviceSynchronize() == cudaSuccess);
}

}  // namespace

int main() {
  try {
    host_only_checks();
    if (g_failures == 0 && !cb::device_available()) {
      std::printf("host-only checks: %d passed\nskipped: no CUDA device\n", g_checks);
      return 77;  // ctest: SKIP_RETURN_CODE
    }
    if (g_failures == 0) {
      cudaDeviceProp prop{};
      UVP_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
      std::printf("device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
      device_checks();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    return 1;
  }
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
