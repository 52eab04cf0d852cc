// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Dense<T, uvp::cuda> and uvp::nn::Embedding<T, uvp::cuda> against the CPU blocks
// (nn_reference.cpp) on the same weights: forward outputs, input gradients and accumulated
// parameter gradients (the Embedding's sparse rows against the CPU's SparseRowGrad, and its lazy
// sparse_step against uvp::nn::step with Adam and Sgd); weight copies from / to a host block; an
// optimizer step over the flat device parameters. Host-only part (runs everywhere): constructor
// argument errors, raised before any CUDA call.
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cpu_reference.hpp"
#include "cuda_test_support.hpp"
#include "nn_reference.hpp"
#include "uvp/backend/cuda/adam.cuh"
#include "uvp/backend/cuda/dense.cuh"
#include "uvp/backend/cuda/device.cuh"
#include "uvp/backend/cuda/embedding.cuh"
#include "uvp/backend/cuda/lstm_cell.cuh"
#include "uvp/backend/cuda/sgd.cuh"
#include "uvp/backend/cuda/stream.cuh"

namespace {

using uvp::index;
using namespace uvp_cuda_test;
namespace cb = uvp::cuda_backend;

/// Replays recorded uvp::Rng::uniform() draws: uniform(lo, hi) = lo + (hi - lo) u, as uvp::Rng.
struct ReplayRng {
  std::vector<double> u;
  std::size_t next = 0;
  double uniform(double lo, double hi) { return lo + (hi - lo) * u.at(next++); }
};

/// The part of uvp::nn::Block<T>'s interface that from_host / to_host use.
template <class T>
struct FakeHostBlock {
  struct Info {
    std::string name;
    std::vector<index> shape;
  };
  struct View {
    T* p;
    std::size_t n;
    T* data() const { return p; }
    std::size_t size() const { return n; }
  };
  std::vector<Info> infos;
  std::map<std::string, std::vector<T>> values_, grads_;
  const Info& tensor(const std::string& name) const {
    for (const auto& i : infos)
      if (i.name == name) return i;
    throw uvp::invalid_argument("no tensor");
  }
  View values(const Info& i) const {
    auto& v = const_cast<std::vector<T>&>(values_.at(i.name));
    return {v.data(), v.size()};
  }
  View grads(const Info& i) const {
    auto& v = const_cast<std::vector<T>&>(grads_.at(i.name));
    return {v.data(), v.size()};
  }
};

template <class T>
std::string type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

void host_checks() {
  ReplayRng rng{std::vector<double>(100, 0.5)};
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Dense<float, uvp::cuda>(0, 3, rng)),
                    "uvp::nn::Dense: in_features must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Dense<double, uvp::cuda>(4, -1)),
                    "uvp::nn::Dense: out_features must be > 0, got -1");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Embedding<float, uvp::cuda>(0, 4)),
                    "uvp::nn::Embedding: num_embeddings must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::Embedding<float, uvp::cuda>(5, 0)),
                    "uvp::nn::Embedding: embedding_dim must be > 0, got 0");
  UVP_EXPECT_THROWS(uvp::out_of_range_error, (uvp::nn::Embedding<double, uvp::cuda>(5, 2, 5)),
                    "uvp::nn::Embedding: padding_idx = 5 is outside [0, 5) and is not -1 (none)");
  UVP_EXPECT_THROWS(uvp::invalid_argument, (uvp::nn::LstmCell<float, uvp::cuda>(3, 0, rng)),
                    "uvp::nn::LstmCell: hidden_size must be > 0, got 0");
  UVP_EXPECT(rng.next == 0);  // no draw before the checks
}

// -------------------------------------------------------------------------------------------
template <class T>
std::vector<T> get(const cb::DeviceBlock<T>& b, const std::string& name, bool grads = false) {
  std::vector<T> v(static_cast<std::size_t>(b.tensor(name).numel()));
  if (grads)
    b.get_grads(name, v.data(), static_cast<index>(v.size()));
  else
    b.get_values(name, v.data(), static_cast<index>(v.size()));
  return v;
}

template <class T>
std::vector<T> host_copy(const cb::DeviceMatrix<T>& m) {
  std::vector<T> v(static_cast<std::size_t>(m.size()));
  m.to_host(v.data(), m.rows(), m.cols());
  return v;
}

template <class T>
std::vector<T> transposed(const std::vector<T>& a, index rows, index cols) {
  std::vector<T> t(a.size());
  for (index r = 0; r < rows; ++r)
    for (index c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  return t;
}

/// |got - want| <= scale * bound elementwise (bound: a GEMM forward error bound) + u |want|.
template <class T>
bool within(const std::vector<T>& got, const std::vector<T>& want, const std::vector<T>& bound,
            double scale) {
  if (got.size() != want.size() || got.size() != bound.size()) return false;
  const double u = std::numeric_limits<T>::epsilon();
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(double(got[i]) - double(want[i])) <=
          scale * double(bound[i]) + u * std::abs(double(want[i]))))
      return false;
  return true;
}

template <class T>
void dense_checks(const cb::Stream& stream) {
  struct Case {
    index in, out, n;
    bool bias;
  };
  const Case cases[] = {{5, 3, 7, true}, {64, 33, 100, false}, {17, 1, 1, true}, {8, 4, 0, true}};
  std::uint64_t seed = 60;
  for (const auto& c : cases) {
    ++seed;
    const auto x = uniform<T>(c.n * c.in, seed + 100, -1, 1);
    const auto dy = uniform<T>(c.n * c.out, seed + 200, -1, 1);
    const auto cpu = cpu_dense<T>(c.in, c.out, c.bias, seed, x, dy, c.n);
    const std::string what = "Dense<" + type_name<T>() + "> " + std::to_string(c.in) + " -> " +
                             std::to_string(c.out) + ", n = " + std::to_string(c.n);

    // Same seed, same draws: the same weights as the CPU block.
    ReplayRng rng{rng_uniform_draws(seed, c.in * c.out + c.out)};
    uvp::nn::Dense<T, uvp::cuda> dense(c.in, c.out, rng, c.bias, stream.get());
    UVP_EXPECT_MSG(get(dense, "weight") == cpu.weight, what + ": weight");
    if (c.bias) UVP_EXPECT_MSG(get(dense, "bias") == cpu.bias, what + ": bias");
    UVP_EXPECT(dense.parameter_count() == c.in * c.out + (c.bias ? c.out : 0));

    const cb::DeviceMatrix<T> X(x.data(), c.n, c.in, stream.get());
    const cb::DeviceMatrix<T> dY(dy.data(), c.n, c.out, stream.get());
    const cb::DeviceMatrix<T> Y = dense.forward(X);
    auto bound = gemm_error_bound<T>(x, transposed(cpu.weight, c.out, c.in), {}, c.n, c.out, c.in,
                                     T(1), T(0));
    UVP_EXPECT_MSG(within(host_copy(Y), cpu.y, bound, 1.0), what + ": forward");

    cb::DeviceMatrix<T> dX(c.n, c.in, stream.get());
    dense.backward(X, dY, dX);
    dense.backward(X, dY, dX);
    bound = gemm_error_bound<T>(dy, cpu.weight, {}, c.n, c.in, c.out, T(1), T(0));
    UVP_EXPECT_MSG(within(host_copy(dX), cpu.dx, bound, 1.0), what + ": dX");
    bound = gemm_error_bound<T>(transposed(dy, c.n, c.out), x, {}, c.out, c.in, c.n, T(1), T(0));
    UVP_EXPECT_MSG(within(get(dense, "weight", true), cpu.grad_weight, bound, 4.0),
                   what + ": weight gradient (accumulated twice)");
    if (c.bias) {
      const std::vector<T> ones(static_cast<std::size_t>(c.n), T(1));
      bound = gemm_error_bound<T>(ones, dy, {}, 1, c.out, c.n, T(1), T(0));
      UVP_EXPECT_MSG(within(get(dense, "bias", true), cpu.grad_bias, bound, 4.0),
                     what + ": bias gradient");
    }
  }

  // Weights from / to a host block, by tensor name; gradients to the host block.
  FakeHostBlock<T> host;
  host.infos = {{"weight", {2, 3}}, {"bias", {2}}};
  host.values_["weight"] = {1, 2, 3, 4, 5, 6};
  host.values_["bias"] = {T(0.5), T(-0.5)};
  host.grads_["weight"] = std::vector<T>(6, T(9));
  host.grads_["bias"] = std::vector<T>(2, T(9));
  uvp::nn::Dense<T, uvp::cuda> copy(2 + 1, 2, true, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, copy.from_host(host),
                    "uvp::cuda_backend::DeviceBlock::from_host: tensor \"weight\" has a different shape");
  uvp::nn::Dense<T, uvp::cuda> small(3, 2, true, stream.get());
  small.from_host(host);
  const std::vector<T> xs = {1, 0, -1};
  const cb::DeviceMatrix<T> X1(xs.data(), 1, 3, stream.get());
  UVP_EXPECT(host_copy(small.forward(X1)) == (std::vector<T>{T(-1.5), T(-2.5)}));
  host.values_["bias"] = {0, 0};
  small.to_host(host);
  UVP_EXPECT(host.values_["bias"] == (std::vector<T>{T(0.5), T(-0.5)}));
  small.grads_to_host(host);
  UVP_EXPECT(host.grads_["weight"] == std::vector<T>(6, T(0)));  // zero: no backward yet

  // Shape errors, as on the CPU.
  cb::DeviceMatrix<T> wrong(1, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, small.forward(X1, wrong),
                    "uvp::nn::Dense::forward: Y has shape (1, 3), expected (1, 2)");
  const cb::DeviceMatrix<T> X2(2, 4, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, small.forward(X2),
                    "uvp::nn::Dense::forward: X has 4 columns, expected 3");
  std::vector<T> nan_x = {1, std::numeric_limits<T>::quiet_NaN(), 0};
  const cb::DeviceMatrix<T> Xn(nan_x.data(), 1, 3, stream.get());
  UVP_EXPECT_THROWS(uvp::numeric_error, small.forward(Xn),
                    "uvp::nn::Dense::forward: X has a non-finite value (", ") at row 0, column 1");

  // One Adam step over the flat device parameters moves each weight by at most ~lr.
  const cb::DeviceMatrix<T> dY1(std::vector<T>{1, -1}.data(), 1, 2, stream.get());
  small.backward(X1, dY1);
  uvp::AdamOptions o;
  o.lr = 0.01;
  uvp::Adam<T, uvp::cuda> adam(o, stream.get());
  adam.step(small.parameters(), small.grads());
  const auto w = get(small, "weight");
  bool moved = true;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = std::abs(double(w[i]) - double(host.values_["weight"][i]));
    moved = moved && d <= 0.0101 && (xs[i % 3] == T(0) ? d == 0 : d > 0.009);
  }
  UVP_EXPECT_MSG(moved, "Adam<" + type_name<T>() + ", cuda> step over Dense<cuda>::parameters()");
}

/// The ids of one embedding batch: duplicates, padding (3) and the last row.
std::vector<index> embedding_ids(index n, std::uint64_t seed, index range, index last) {
  std::vector<index> ids(static_cast<std::size_t>(n));
  const auto u = uniform<double>(n, seed, 0, 1);
  for (index i = 0; i < n; ++i) ids[i] = static_cast<index>(u[i] * double(range));
  ids[0] = last;
  return ids;
}

template <class T>
std::vector<T> table_of(const uvp::nn::Embedding<T, uvp::cuda>& emb) {
  std::vector<T> v(static_cast<std::size_t>(emb.parameter_count()));
  emb.get_values("weight", v.data(), static_cast<index>(v.size()));
  return v;
}

template <class T>
void embedding_checks(const cb::Stream& stream) {
  const index num = 50, dim = 8, padding = 3, n = 200;
  const auto ids = embedding_ids(n, 70, 12, num - 1);
  const auto ids2 = embedding_ids(60, 73, 30, 20);
  const auto d_out = uniform<T>(n * dim, 71, -1, 1);
  const auto d_out2 = uniform<T>(60 * dim, 74, -1, 1);
  const auto cpu = cpu_embedding<T>(num, dim, padding, 72, ids, d_out);
  const std::string what = "Embedding<" + type_name<T>() + ", cuda>";

  uvp::nn::Embedding<T, uvp::cuda> emb(num, dim, padding, stream.get());
  emb.set_values("weight", cpu.weight.data(), num * dim);
  const cb::DeviceBuffer<index> d_ids(ids, stream.get()), d_ids2(ids2, stream.get());
  const cb::DeviceMatrix<T> out = emb.forward(d_ids);
  UVP_EXPECT_MSG(host_copy(out) == cpu.out, what + "::forward");
  UVP_EXPECT_MSG(emb.grads().size() == 0 && emb.sparse_size() == 0, what + ": no dense gradient");
  const cb::DeviceMatrix<T> dO(d_out.data(), n, dim, stream.get());
  const cb::DeviceMatrix<T> dO2(d_out2.data(), 60, dim, stream.get());
  emb.backward(d_ids, dO);
  std::vector<index> rows;
  std::vector<T> values;
  emb.sparse_grad_to_host(rows, values);
  // The CPU's sparse rows as a dense table: same bits (each row summed in position order).
  std::vector<T> dense(static_cast<std::size_t>(num * dim), T(0));
  bool ascending = true;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    ascending = ascending && (k == 0 || rows[k - 1] < rows[k]) && rows[k] != padding;
    for (index c = 0; c < dim; ++c) dense[rows[k] * dim + c] = values[k * dim + c];
  }
  UVP_EXPECT_MSG(ascending && index(rows.size()) == emb.sparse_size(),
                 what + "::backward: distinct rows, ascending, no padding row");
  UVP_EXPECT_MSG(dense == cpu.dense_grad, what + "::backward: the CPU's sparse gradient, same bits");

  // Accumulation over two backward calls and a lazy step, against the CPU's nn::step.
  for (const bool adam : {true, false}) {
    const auto ref = cpu_embedding_train<T>(num, dim, padding, 72, ids, d_out, ids2, d_out2, adam);
    const std::string opt = what + (adam ? " + Adam" : " + Sgd (Nesterov)");
    emb.set_values("weight", cpu.weight.data(), num * dim);
    emb.zero_grad();
    UVP_EXPECT_MSG(emb.sparse_size() == 0, opt + ": zero_grad clears the rows");
    emb.backward(d_ids, dO);
    emb.backward(d_ids2, dO2);
    emb.sparse_grad_to_host(rows, values);
    UVP_EXPECT_MSG(rows == ref.rows && values == ref.values,
                   opt + ": accumulated sparse gradient == the CPU's SparseRowGrad (same bits)");
    uvp::Adam<T, uvp::cuda> a(embedding_adam_options(), stream.get());
    uvp::Sgd<T, uvp::cuda> s(embedding_sgd_options(), stream.get());
    const auto step = [&] { adam ? emb.sparse_step(a) : emb.sparse_step(s); };
    step();
    UVP_EXPECT_MSG((adam ? a.size() : s.size()) == num * dim, opt + ": state sized to the table");
    UVP_EXPECT_MSG(table_of(emb) == ref.table1, opt + ": step 1 == the CPU's nn::step (same bits)");
    emb.zero_grad();
    emb.backward(d_ids2, dO2);
    step();
    UVP_EXPECT_MSG(table_of(emb) == ref.table2,
                   opt + ": step 2, lazy rows and moments == the CPU's nn::step (same bits)");
    if (adam) {
      UVP_EXPECT_THROWS(uvp::out_of_range_error, emb.sparse_step(a, 1),
                        "uvp::nn::Embedding::sparse_step: slice [1, 401) is outside the state of size 400");
      uvp::Adam<T, uvp::cuda> fresh(embedding_adam_options(), stream.get());
      fresh.resize(num * dim);
      UVP_EXPECT_THROWS(uvp::invalid_argument, emb.sparse_update(fresh, 0),
                        "uvp::nn::Embedding::sparse_update: no step begun; call begin_step() first");
      // A shared optimizer: the table at offset 10 of a larger state.
      uvp::Adam<T, uvp::cuda> shared(embedding_adam_options(), stream.get());
      shared.resize(num * dim + 10);
      shared.begin_step();
      const auto before = table_of(emb);
      emb.sparse_update(shared, 10);
      UVP_EXPECT_MSG(table_of(emb) != before && shared.steps() == 1,
                     opt + ": sparse_update in a step begun by the caller");
    }
  }

  // padding_idx only, then no ids: nothing touched.
  emb.zero_grad();
  const std::vector<index> pads(5, padding);
  const cb::DeviceBuffer<index> d_pads(pads, stream.get());
  const cb::DeviceMatrix<T> dP(d_out.data(), 5, dim, stream.get());
  emb.backward(d_pads, dP);
  emb.backward(cb::DeviceSpan<const index>(), cb::DeviceMatrix<T>(0, dim, stream.get()));
  UVP_EXPECT_MSG(emb.sparse_size() == 0, what + ": padding ids leave no gradient row");

  auto bad = ids;
  bad[7] = num;
  const cb::DeviceBuffer<index> d_bad(bad, stream.get());
  UVP_EXPECT_THROWS(uvp::out_of_range_error, emb.forward(d_bad),
                    "uvp::nn::Embedding::forward: ids[7] = 50 is out of range [0, 50)");
  const cb::DeviceMatrix<T> wide(n, dim + 1, stream.get());
  UVP_EXPECT_THROWS(uvp::shape_error, emb.backward(d_ids, wide),
                    "uvp::nn::Embedding::backward: d_out has shape (200, 9), expected (200, 8)");
}

/// A 10^6-row table: no dense gradient, and one step touches only the rows of the batch.
void large_embedding_checks(const cb::Stream& stream) {
  const index num = 1000000, dim = 16, n = 4096;
  std::vector<index> ids(static_cast<std::size_t>(n));
  const auto u = uniform<double>(n, 90, 0, 1);
  for (index i = 0; i < n; ++i) ids[i] = static_cast<index>(u[i] * 2000.0) * 499;  // duplicates
  const std::set<index> distinct(ids.begin(), ids.end());
  uvp::nn::Embedding<float, uvp::cuda> emb(num, dim, -1, stream.get());
  const auto w = uniform<float>(num * dim, 91, -1, 1);
  emb.set_values("weight", w.data(), num * dim);
  const cb::DeviceBuffer<index> d_ids(ids, stream.get());
  const auto g = uniform<float>(n * dim, 92, -1, 1);
  const cb::DeviceMatrix<float> dO(g.data(), n, dim, stream.get());
  emb.backward(d_ids, dO);
  UVP_EXPECT_MSG(emb.sparse_size() == index(distinct.size()), "Embedding(10^6, 16): distinct rows");
  uvp::Adam<float, uvp::cuda> adam(uvp::AdamOptions{}, stream.get());
  emb.sparse_step(adam);
  const auto after = table_of(emb);
  bool lazy = true;
  for (index r = 0; r < num && lazy; ++r) {
    const bool touched = distinct.count(r) > 0;
    for (index c = 0; c < dim; ++c)
      if ((after[r * dim + c] != w[r * dim + c]) != touched) lazy = false;
  }
  UVP_EXPECT_MSG(lazy, "Embedding(10^6, 16): the step changes exactly the touched rows");
}

/// |got - want| <= tol (|want| + 1) elementwise.
template <class T>
bool close(const std::vector<T>& got, const std::vector<T>& want, double tol) {
  return worst_error(got, want, tol, tol) <= 1.0;
}

template <class T>
void lstm_cell_checks(const cb::Stream& stream) {
  const index I = 6, H = 5, B = 9;
  const std::uint64_t seed = 80;
  const auto x = uniform<T>(B * I, 81, -1, 1), h = uniform<T>(B * H, 82, -1, 1);
  const auto c = uniform<T>(B * H, 83, -2, 2), dh_out = uniform<T>(B * H, 84, -1, 1);
  const auto dc_out = uniform<T>(B * H, 85, -1, 1);
  // float: GEMMs of <= 4H terms, then sigmoid / tanh (the device's tanhf is within 2 ulp).
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
  for (int with_dc = 0; with_dc < 2; ++with_dc) {
    const auto cpu = cpu_lstm_cell<T>(I, H, seed, B, x, h, c, dh_out,
                                      with_dc ? dc_out : std::vector<T>());
    const std::string what = "LstmCell<" + type_name<T>() + ", cuda>, dc_out " +
                             (with_dc ? "given" : "none") + ": ";
    ReplayRng rng{rng_uniform_draws(seed, 4 * H * (I + H) + 8 * H)};
    uvp::nn::LstmCell<T, uvp::cuda> cell(I, H, rng, stream.get());
    UVP_EXPECT_MSG(get(cell, "weight_ih") == cpu.w_ih && get(cell, "weight_hh") == cpu.w_hh &&
                       get(cell, "bias_ih") == cpu.b_ih && get(cell, "bias_hh") == cpu.b_hh,
                   what + "same weights from the same draws");
    typename uvp::nn::LstmCell<T, uvp::cuda>::Context ctx;
    const cb::DeviceMatrix<T> X(x.data(), B, I, stream.get()), Hm(h.data(), B, H, stream.get()),
        C(c.data(), B, H, stream.get()), dH(dh_out.data(), B, H, stream.get());
    const cb::DeviceMatrix<T> dC = with_dc ? cb::DeviceMatrix<T>(dc_out.data(), B, H, stream.get())
                                           : cb::DeviceMatrix<T>();
    cb::DeviceMatrix<T> h_out(B, H, stream.get()), c_out(B, H, stream.get()),
        dx(B, I, stream.get()), dh(B, H, stream.get()), dc(B, H, stream.get());
    cell.forward(X, Hm, C, h_out, c_out, ctx);
    cell.backward(X, Hm, C, dH, dC, dx, dh, dc, ctx);
    UVP_EXPECT_MSG(close(host_copy(h_out), cpu.h_out, tol), what + "h_out");
    UVP_EXPECT_MSG(close(host_copy(c_out), cpu.c_out, tol), what + "c_out");
    UVP_EXPECT_MSG(close(host_copy(dx), cpu.dx, tol), what + "dx");
    UVP_EXPECT_MSG(close(host_copy(dh), cpu.dh, tol), what + "dh");
    UVP_EXPECT_MSG(close(host_copy(dc), cpu.dc, tol), what + "dc");
    UVP_EXPECT_MSG(close(get(cell, "weight_ih", true), cpu.g_w_ih, tol) &&
                       close(get(cell, "weight_hh", true), cpu.g_w_hh, tol) &&
                       close(get(cell, "bias_ih", true), cpu.g_b_ih, tol) &&
                       close(get(cell, "bias_hh", true), cpu.g_b_hh, tol),
                   what + "parameter gradients");
    if (with_dc == 0) {
      typename uvp::nn::LstmCell<T, uvp::cuda>::Context fresh;
      UVP_EXPECT_THROWS(uvp::invalid_argument, cell.backward(X, Hm, C, dH, dC, dx, dh, dc, fresh),
                        "uvp::nn::LstmCell::backward: ctx holds no forward of this cell on 9 rows");
      UVP_EXPECT_THROWS(uvp::shape_error, cell.forward(X, Hm, C, dx, c_out, ctx),
                        "uvp::nn::LstmCell::forward: h_out has shape (9, 6), expected (9, 5)");
    }
  }
}

void device_checks() {
  cb::Stream stream;
  dense_checks<float>(stream);
  dense_checks<double>(stream);
  embedding_checks<float>(stream);
  embedding_checks<double>(stream);
  large_embedding_checks(stream);
  lstm_cell_checks<float>(stream);
  lstm_cell_checks<double>(stream);
  stream.synchronize();
}

}  // namespace

int main() {
  return uvp_cuda_test::run("test_cuda_nn", host_checks, device_checks,
                            uvp::cuda_backend::device_available());
}
