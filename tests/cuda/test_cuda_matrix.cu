// SPDX-License-Identifier: Apache-2.0
// DeviceMatrix, Stream, DeviceSpan and the transposing cuBLAS GEMM, against the CPU. Host-only
// part (runs everywhere): shapes, layouts and argument errors raised before any CUDA call.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "uvp/backend/cuda/blas.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/device_span.cuh"
#include "uvp/backend/cuda/matrix.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
using namespace uvp_cuda_test;
namespace cb = uvp::cuda_backend;

/// A host matrix as the free to_device / to_host see one: data(), rows(), cols(), and (when
/// Resizable) resize(rows, cols); IsRowMajor as Eigen spells it.
template <class T, bool RowMajor = true, bool Resizable = true>
struct HostMatrix {
  static constexpr bool IsRowMajor = RowMajor;
  std::vector<T> v;
  index r = 0, c = 0;
  T* data() { return v.data(); }
  const T* data() const { return v.data(); }
  index rows() const { return r; }
  index cols() const { return c; }
  template <bool R = Resizable, class = std::enable_if_t<R>>
  void resize(index rows, index cols) {
    v.assign(static_cast<std::size_t>(rows * cols), T(0));
    r = rows;
    c = cols;
  }
};

void host_checks() {
  cb::DeviceMatrix<float> empty;
  UVP_EXPECT(empty.rows() == 0 && empty.cols() == 0 && empty.size() == 0 && empty.empty() &&
             empty.data() == nullptr && empty.capacity() == 0);
  cb::DeviceMatrix<double> no_rows(0, 7);  // no element: no CUDA call
  UVP_EXPECT(no_rows.rows() == 0 && no_rows.cols() == 7 && no_rows.empty());
  cb::DeviceMatrix<double> moved(std::move(no_rows));
  UVP_EXPECT(moved.cols() == 7 && no_rows.cols() == 0 && no_rows.rows() == 0);
  no_rows.resize(0, 3);  // fits in capacity 0: no allocation
  UVP_EXPECT(no_rows.cols() == 3 && no_rows.capacity() == 0);
  no_rows.set_zero();  // nothing to set

  UVP_EXPECT_THROWS(uvp::invalid_argument, (cb::DeviceMatrix<float>(-1, 3)),
                    "uvp::cuda_backend::DeviceMatrix: shape -1 x 3 has a negative dimension");
  UVP_EXPECT_THROWS(uvp::invalid_argument, empty.resize(2, -3),
                    "uvp::cuda_backend::DeviceMatrix::resize: shape 2 x -3 has a negative dimension");
  std::vector<float> six(6, 1.0f);
  UVP_EXPECT_THROWS(uvp::shape_error, empty.to_device(six.data(), 2, 3),
                    "uvp::cuda_backend::DeviceMatrix::to_device: host matrix is 2 x 3, expected 0 x 0");
  UVP_EXPECT_THROWS(uvp::shape_error, empty.to_host(six.data(), 3, 2),
                    "uvp::cuda_backend::DeviceMatrix::to_host: host matrix is 3 x 2, expected 0 x 0");

  // The free functions refuse column-major host matrices before allocating anything.
  HostMatrix<float, false> col_major{std::vector<float>(6), 2, 3};
  UVP_EXPECT_THROWS(uvp::invalid_argument, cb::to_device(col_major),
                    "uvp::cuda_backend::to_device: the host matrix (2 x 3) is column-major");
  HostMatrix<float, false> col_vector{std::vector<float>(0), 0, 1};
  const auto v = cb::to_device(col_vector);  // a vector is the same in either order; 0 elements
  UVP_EXPECT(v.rows() == 0 && v.cols() == 1);
  HostMatrix<float, true, false> fixed{std::vector<float>(6), 2, 3};
  UVP_EXPECT_THROWS(uvp::shape_error, cb::to_host(v, fixed),
                    "uvp::cuda_backend::DeviceMatrix::to_host: host matrix is 2 x 3, expected 0 x 1");
  HostMatrix<float> resizable{std::vector<float>(6), 2, 3};
  cb::to_host(v, resizable);  // resized to 0 x 1, nothing copied
  UVP_EXPECT(resizable.rows() == 0 && resizable.cols() == 1);

  // DeviceSpan: views and the const conversion.
  float* fake = reinterpret_cast<float*>(std::uintptr_t(256));
  const cb::DeviceSpan<float> s(fake, 10);
  const cb::DeviceSpan<const float> cs = s;
  UVP_EXPECT(cs.data() == fake && cs.size() == 10 && !cs.empty());
  UVP_EXPECT(s.subspan(4, 3).data() == fake + 4 && s.subspan(4, 3).size() == 3);
  const cb::DeviceSpan<const float> from_matrix(empty);
  UVP_EXPECT(from_matrix.empty() && from_matrix.data() == nullptr);
}

// -------------------------------------------------------------------------------------------
template <class T>
std::vector<T> transposed(const std::vector<T>& a, index rows, index cols) {
  std::vector<T> t(a.size());
  for (index r = 0; r < rows; ++r)
    for (index c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  return t;
}

template <class T>
void matrix_checks(const cb::Stream& stream) {
  const auto host = uniform<T>(35 * 17, 5, -3, 3);
  cb::DeviceMatrix<T> d(host.data(), 35, 17, stream.get());
  UVP_EXPECT(d.rows() == 35 && d.cols() == 17 && d.size() == 595 && d.stream() == stream.get());
  std::vector<T> back(host.size());
  d.to_host(back.data(), 35, 17);
  UVP_EXPECT(back == host);
  const T* before = d.data();
  d.resize(17, 35);  // same size: same allocation
  UVP_EXPECT(d.data() == before && d.rows() == 17);
  d.resize(2, 3);
  UVP_EXPECT(d.data() == before && d.capacity() == 595);
  d.set_zero();
  std::vector<T> zeros(6, T(1));
  d.to_host(zeros.data(), 2, 3);
  UVP_EXPECT(zeros == std::vector<T>(6, T(0)));
  d.resize(40, 40);  // grows
  UVP_EXPECT(d.capacity() == 1600);

  HostMatrix<T> h{host, 35, 17};
  auto d2 = cb::to_device(h, stream.get());
  HostMatrix<T> out;
  cb::to_host(d2, out);  // resized to 35 x 17
  UVP_EXPECT(out.rows() == 35 && out.cols() == 17 && out.v == host);
  stream.synchronize();
}

template <class T>
void gemm_trans_checks(const cb::BlasHandle& blas) {
  const index m = 37, n = 19, k = 23;
  const T alpha = T(1.25), beta = T(-0.5);
  const auto a = uniform<T>(m * k, 31, -1, 1);  // op(A): m x k
  const auto b = uniform<T>(k * n, 32, -1, 1);  // op(B): k x n
  const auto c0 = uniform<T>(m * n, 33, -1, 1);
  const auto want = gemm<T>(a, b, c0, m, n, k, alpha, beta);
  const auto bound = gemm_error_bound<T>(a, b, c0, m, n, k, alpha, beta);
  const auto at = transposed(a, m, k), bt = transposed(b, k, n);
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const cb::DeviceBuffer<T> da(ta ? at : a), db(tb ? bt : b);
      cb::DeviceBuffer<T> dc(c0);
      cb::gemm<T>(blas, ta ? cb::Trans::transpose : cb::Trans::none,
                  tb ? cb::Trans::transpose : cb::Trans::none, m, n, k, alpha, da.data(),
                  db.data(), beta, dc.data());
      std::vector<T> got(c0.size());
      dc.to_host(got);
      double worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const double r = std::abs(double(got[i]) - double(want[i])) / double(bound[i]);
        if (!(r <= worst)) worst = r;
      }
      UVP_EXPECT_MSG(worst <= 1.0, "gemm(trans_a = " + std::to_string(ta) + ", trans_b = " +
                                       std::to_string(tb) + "): worst |gpu - cpu| / bound = " +
                                       std::to_string(worst));
    }
  }
  UVP_EXPECT_THROWS(uvp::invalid_argument,
                    (cb::gemm<T>(blas, cb::Trans::none, cb::Trans::none, 2, -1, 2, T(1), nullptr,
                                 nullptr, T(0), nullptr)),
                    "uvp::cuda_backend::gemm: n is -1, expected in [0, 2147483647]");
}

void device_checks() {
  cb::Stream stream;
  UVP_EXPECT(stream.get() != nullptr);
  cb::Stream other(true);
  cb::Stream moved(std::move(other));
  UVP_EXPECT(other.get() == nullptr && moved.get() != nullptr);
  matrix_checks<float>(stream);
  matrix_checks<double>(stream);
  cb::BlasHandle blas(stream.get());
  gemm_trans_checks<float>(blas);
  gemm_trans_checks<double>(blas);
  stream.synchronize();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_matrix", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
