// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Embedding: lookups, bags and their sparse gradients against PyTorch and finite
// differences, lazy SGD / SparseAdam steps, bad ids and offsets, a 10^6-row table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <ctime>
#include <tuple>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"
#include "uvp/testing/gradient_check.hpp"

using idx = uvp::index;
using uvp::Span;
using uvp::nn::BagMode;
using uvp::nn::Embedding;

namespace {

using Arrays = std::map<std::string, std::vector<double>>;

std::vector<idx> as_ids(const std::vector<double>& v) { return std::vector<idx>(v.begin(), v.end()); }

template <class T>
uvp::Matrix<T> as_matrix(const std::vector<double>& v, idx rows, idx cols, idx offset = 0) {
  uvp::Matrix<T> m(rows, cols);
  for (idx i = 0; i < rows * cols; ++i) m.data()[i] = T(v[std::size_t(offset + i)]);
  return m;
}

// A table shaped as the fixture's, with its weights.
template <class T>
Embedding<T> table_from(Arrays& f, const char* weight = "weight") {
  uvp::Rng rng(7);
  Embedding<T> emb{idx(f["shape"][0]), idx(f["shape"][1]), rng, idx(f["shape"][2])};
  emb.weight() = as_matrix<T>(f[weight], emb.num_embeddings(), emb.embedding_dim());
  return emb;
}

// The sparse gradient as a dense num x dim matrix (untouched rows 0).
template <class T>
uvp::Matrix<double> dense_grad(const Embedding<T>& emb) {
  uvp::Matrix<double> g = uvp::Matrix<double>::Zero(emb.num_embeddings(), emb.embedding_dim());
  const auto& sg = emb.sparse_grad();
  for (idx k = 0; k < sg.size(); ++k)
    for (idx j = 0; j < sg.dim; ++j) g(sg.rows[std::size_t(k)], j) = double(sg.row(k)[j]);
  return g;
}

template <class M>
Span<const double> flat(const M& m) {
  return {m.data(), m.size()};
}

template <class T>
double rel(const uvp::Matrix<T>& a, const std::vector<double>& ref) {
  const uvp::Matrix<double> ad = a.template cast<double>();
  REQUIRE(std::size_t(ad.size()) == ref.size());
  return uvp_test::rel_error(flat(ad), ref);
}

// sum(out .* R): a scalar whose gradient w.r.t. out is R.
double weighted_sum(const uvp::Matrix<double>& out, const uvp::Matrix<double>& R) { return out.cwiseProduct(R).sum(); }

}  // namespace

TEST_CASE("Embedding registers one sparse 'weight' tensor, initialised N(0, 1) with a zero padding row") {
  uvp::Rng rng(1);
  Embedding<double> emb(1000, 8, rng, 5);
  CHECK(emb.num_embeddings() == 1000);
  CHECK(emb.embedding_dim() == 8);
  CHECK(emb.padding_idx() == 5);
  REQUIRE(emb.tensors().size() == 1);
  CHECK(emb.tensors()[0].name == "weight");
  CHECK(emb.tensors()[0].shape == std::vector<idx>{1000, 8});
  CHECK(emb.tensors()[0].sparse);
  CHECK(emb.has_sparse_grad());
  CHECK_FALSE(emb.parameters().has_grads());  // no dense gradient buffer
  CHECK(emb.grads(emb.tensors()[0]).size() == 0);
  CHECK(emb.parameter_count() == 8000);
  CHECK(emb.weight().row(5).isZero(0));
  const auto w = emb.weight();
  const double mean = w.mean();
  const double var = (w.array() - mean).square().sum() / double(w.size() - 1);
  CHECK(std::abs(mean) < 0.05);
  CHECK(std::abs(var - 1.0) < 0.05);
  Embedding<float> none(3, 2, rng);
  CHECK(none.padding_idx() == -1);
  CHECK_FALSE(none.weight().row(0).isZero(0));
}

TEST_CASE_TEMPLATE("Embedding lookup and its sparse gradient match torch.nn.Embedding(sparse=True)", T, float, double) {
  Arrays f = uvp_test::read_arrays(uvp_test::fixture_path("nn_embedding/lookup.txt"));
  Embedding<T> emb = table_from<T>(f);
  const std::vector<idx> ids = as_ids(f["ids"]);
  const idx n = idx(ids.size()), d = emb.embedding_dim();
  const uvp::Matrix<T> out = emb.forward(ids);
  CHECK(out.rows() == n);
  CHECK(rel(out, f["out"]) < uvp_test::tolerance<T>::rel);

  emb.backward(ids, as_matrix<T>(f["d_out"], n, d));
  const uvp::Matrix<double> g = dense_grad(emb);
  CHECK(uvp_test::rel_error(flat(g), f["grad"]) < 10 * uvp_test::tolerance<T>::rel);
  // Rows in first-touch order, each once; padding row 3 is not among them.
  CHECK(emb.sparse_grad().rows == std::vector<idx>{0, 7, 9, 1, 5, 8});
  CHECK(emb.sparse_grad().values.size() == 6 * std::size_t(d));
}

TEST_CASE_TEMPLATE("Embedding bags (sum, mean, padding, empty bags) match torch.nn.EmbeddingBag", T, float, double) {
  for (const char* name : {"bag_sum", "bag_mean"}) {
    CAPTURE(name);
    const BagMode mode = std::string(name) == "bag_sum" ? BagMode::sum : BagMode::mean;
    Arrays f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_embedding/") + name + ".txt"));
    Embedding<T> emb = table_from<T>(f);
    const std::vector<idx> ids = as_ids(f["ids"]), offsets = as_ids(f["offsets"]);
    const idx bags = idx(offsets.size()), d = emb.embedding_dim();
    const uvp::Matrix<T> out = emb.forward_bag(ids, offsets, mode);
    CHECK(out.rows() == bags);
    CHECK(rel(out, f["out"]) < 10 * uvp_test::tolerance<T>::rel);
    CHECK(out.row(1).isZero(0));  // padding only
    CHECK(out.row(2).isZero(0));  // empty

    emb.backward_bag(ids, offsets, mode, as_matrix<T>(f["d_out"], bags, d));
    CHECK(uvp_test::rel_error(flat(dense_grad(emb)), f["grad"]) < 10 * uvp_test::tolerance<T>::rel);
    CHECK(std::find(emb.sparse_grad().rows.begin(), emb.sparse_grad().rows.end(), 3) == emb.sparse_grad().rows.end());
  }
}

TEST_CASE("Embedding gradients match finite differences (double): lookup, sum and mean bags with padding") {
  uvp::Rng rng(11);
  const idx num = 7, d = 3, pad = 6;
  Embedding<double> emb(num, d, rng, pad);
  Span<double> w(emb.weight().data(), num * d);

  SUBCASE("lookup with duplicates") {
    const std::vector<idx> ids{2, 0, 2, 6, 5, 2, 1, 6};
    uvp::Matrix<double> R(idx(ids.size()), d);
    for (idx i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();
    emb.backward(ids, R);
    const uvp::Matrix<double> g = dense_grad(emb);
    // The forward reads the padding row but gives it no gradient (torch's rule): check the
    // other rows, which come first (pad is the last row).
    const auto r = uvp::testing::check_gradient([&] { return weighted_sum(emb.forward(ids), R); },
                                                w.subspan(0, pad * d), Span<const double>(g.data(), pad * d));
    CHECK(r.relative_error < 1e-8);
    CHECK(g.row(pad).isZero(0));
    CHECK(g.row(2).isApprox(R.row(0) + R.row(2) + R.row(5)));
  }
  for (BagMode mode : {BagMode::sum, BagMode::mean}) {
    SUBCASE(mode == BagMode::sum ? "sum bags" : "mean bags") {
      // Bags of length 3, 0, 2 (padding only), 4 (with a padding and a duplicate), 1.
      const std::vector<idx> ids{0, 1, 2, 6, 6, 3, 6, 3, 4, 5};
      const std::vector<idx> offsets{0, 3, 3, 5, 9};
      uvp::Matrix<double> R(idx(offsets.size()), d);
      for (idx i = 0; i < R.size(); ++i) R.data()[i] = rng.normal();
      emb.backward_bag(ids, offsets, mode, R);
      const uvp::Matrix<double> g = dense_grad(emb);
      const auto r = uvp::testing::check_gradient(
          [&] { return weighted_sum(emb.forward_bag(ids, offsets, mode), R); }, w, flat(g));
      CHECK(r.relative_error < 1e-8);
      CHECK(g.row(pad).isZero(0));
      const double s = mode == BagMode::mean ? 1.0 / 3.0 : 1.0;  // bag 3 counts 3 non-padding ids
      CHECK(g.row(3).isApprox(2 * s * R.row(3)));
    }
  }
}

TEST_CASE("Embedding backward accumulates: duplicates, repeated calls, zero_grad") {
  uvp::Rng rng(3);
  Embedding<double> emb(5, 4, rng);
  const std::vector<idx> ids{4, 4, 4};
  const uvp::Matrix<double> ones = uvp::Matrix<double>::Ones(3, 4);
  emb.backward(ids, ones);
  REQUIRE(emb.sparse_grad().size() == 1);
  CHECK(emb.sparse_grad().row(0)[2] == 3.0);
  emb.backward(ids, ones);  // a second call adds
  CHECK(emb.sparse_grad().row(0)[2] == 6.0);
  const std::vector<idx> other{1};
  emb.backward(other, uvp::Matrix<double>::Ones(1, 4));
  CHECK(emb.sparse_grad().rows == std::vector<idx>{4, 1});
  emb.zero_grad();
  CHECK(emb.sparse_grad().size() == 0);
  emb.backward(ids, ones);
  CHECK(emb.sparse_grad().row(0)[0] == 3.0);
  // Empty ids and empty bags are fine.
  emb.backward(std::vector<idx>{}, uvp::Matrix<double>(0, 4));
  CHECK(emb.forward(std::vector<idx>{}).rows() == 0);
  CHECK(emb.forward_bag(std::vector<idx>{}, std::vector<idx>{}).rows() == 0);
}

TEST_CASE("Embedding passes NaN in d_out on: the only inputs checked are ids") {
  uvp::Rng rng(3);
  Embedding<float> emb(5, 2, rng);
  uvp::Matrix<float> d_out(2, 2);
  d_out << std::numeric_limits<float>::quiet_NaN(), 1.f, std::numeric_limits<float>::infinity(), 2.f;
  const std::vector<idx> ids{1, 3};
  emb.backward(ids, d_out);
  CHECK(std::isnan(emb.sparse_grad().row(0)[0]));
  CHECK(std::isinf(emb.sparse_grad().row(1)[0]));
  const std::vector<idx> offsets{0};
  emb.backward_bag(ids, offsets, BagMode::mean, d_out.topRows(1));
  CHECK(std::isnan(emb.sparse_grad().row(0)[0]));
}

TEST_CASE("Embedding rejects ids out of [0, num) before writing anything") {
  uvp::Rng rng(3);
  Embedding<double> emb(10, 2, rng, 0);
  const std::vector<idx> high{1, 2, 10, 3}, negative{1, -1}, ok{1, 2};
  uvp::Matrix<double> out = uvp::Matrix<double>::Constant(4, 2, 42.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward(high, out), uvp::out_of_range_error,
                               "uvp::nn::Embedding::forward: ids[2] = 10 is out of range [0, 10)");
  CHECK((out.array() == 42.0).all());
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward(negative), uvp::out_of_range_error, "ids[1] = -1 is out of range");

  emb.backward(ok, uvp::Matrix<double>::Ones(2, 2));
  const std::vector<double> before = emb.sparse_grad().values;
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward(high, uvp::Matrix<double>::Ones(4, 2)), uvp::out_of_range_error,
                               "uvp::nn::Embedding::backward: ids[2] = 10");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward(negative, uvp::Matrix<double>::Ones(2, 2)), uvp::out_of_range_error,
                               "ids[1] = -1");
  CHECK(emb.sparse_grad().values == before);
  CHECK(emb.sparse_grad().size() == 2);

  const std::vector<idx> offsets{0, 2};
  uvp::Matrix<double> bag_out = uvp::Matrix<double>::Constant(2, 2, 42.0);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(high, offsets, BagMode::sum, bag_out), uvp::out_of_range_error,
                               "uvp::nn::Embedding::forward_bag: ids[2] = 10");
  CHECK((bag_out.array() == 42.0).all());
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward_bag(negative, std::vector<idx>{0}, BagMode::mean,
                                                uvp::Matrix<double>::Ones(1, 2)),
                               uvp::out_of_range_error, "uvp::nn::Embedding::backward_bag: ids[1] = -1");
  CHECK(emb.sparse_grad().values == before);
}

TEST_CASE("Embedding rejects bad offsets, shapes and constructor arguments") {
  uvp::Rng rng(3);
  Embedding<double> emb(10, 2, rng);
  const std::vector<idx> ids{1, 2, 3, 4};
  const uvp::Matrix<double> g2 = uvp::Matrix<double>::Ones(2, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(ids, std::vector<idx>{1, 2}), uvp::invalid_argument,
                               "offsets[0] = 1, expected 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(ids, std::vector<idx>{0, 3, 2}), uvp::invalid_argument,
                               "offsets[2] = 2 is less than offsets[1] = 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(ids, std::vector<idx>{0, 5}), uvp::out_of_range_error,
                               "offsets[1] = 5 is greater than the number of ids, 4");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(ids, std::vector<idx>{}), uvp::invalid_argument,
                               "offsets is empty but ids has 4 entries");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward_bag(ids, std::vector<idx>{0, -1}, BagMode::sum, g2),
                               uvp::invalid_argument, "offsets[1] = -1 is less than offsets[0] = 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward_bag(ids, std::vector<idx>{2, 3}, BagMode::sum, g2),
                               uvp::invalid_argument, "uvp::nn::Embedding::backward_bag: offsets[0] = 2");
  CHECK(emb.sparse_grad().size() == 0);

  uvp::Matrix<double> out(3, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward(ids, out), uvp::shape_error, "out has shape (3, 2), expected (4, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward(ids, g2), uvp::shape_error, "d_out has shape (2, 2), expected (4, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.forward_bag(ids, std::vector<idx>{0, 2}, BagMode::sum, out), uvp::shape_error,
                               "out has shape (3, 2), expected (2, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(emb.backward_bag(ids, std::vector<idx>{0}, BagMode::sum, g2), uvp::shape_error,
                               "d_out has shape (2, 2), expected (1, 2)");

  UVP_CHECK_THROWS_WITH_SUBSTR(Embedding<float>(0, 2, rng), uvp::invalid_argument, "num_embeddings must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(Embedding<float>(5, 0, rng), uvp::invalid_argument, "embedding_dim must be > 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(Embedding<float>(5, 2, rng, 5), uvp::out_of_range_error, "padding_idx = 5 is outside [0, 5)");
  UVP_CHECK_THROWS_WITH_SUBSTR(Embedding<float>(5, 2, rng, -2), uvp::out_of_range_error, "padding_idx = -2");
}

TEST_CASE_TEMPLATE("nn::step on an Embedding is torch's SGD on a sparse grad and torch.optim.SparseAdam", T, float, double) {
  // In double, SGD and SparseAdam with a negligible eps agree to rounding (measured 4e-17 and
  // 4e-16). SparseAdam adds eps to sqrt(v) before dividing by the bias correction sqrt(1 - beta2^t),
  // uvp::Adam (= torch.optim.Adam) after it: with eps = 1e-8 the weights differ by 1.3e-8 relative.
  struct Case {
    const char* file;
    double tolerance;
  };
  const double tol = uvp_test::tolerance<T>::rel;
  for (Case c : {Case{"sgd", 10 * tol}, Case{"sparse_adam_tiny_eps", 10 * tol},
                 Case{"sparse_adam", std::max(10 * tol, 1e-7)}}) {
    const std::string file = c.file;
    CAPTURE(file);
    Arrays f = uvp_test::read_arrays(uvp_test::fixture_path(std::string("nn_embedding/") + c.file + ".txt"));
    Embedding<T> emb = table_from<T>(f, "weight0");
    auto model = uvp::nn::blocks<T>("emb", emb);
    const idx num = emb.num_embeddings(), d = emb.embedding_dim(), steps = idx(f["steps"][0]),
                n = idx(f["n"][0]);
    const std::vector<double>& o = f["options"];
    const bool is_sgd = std::string(c.file) == "sgd";
    uvp::Sgd<T> sgd(uvp::SgdOptions{o[0]});
    uvp::AdamOptions ao;
    ao.lr = o[0];
    if (!is_sgd) {
      ao.beta1 = o[1];
      ao.beta2 = o[2];
      ao.eps = o[3];
    }
    uvp::Adam<T> adam(ao);
    const std::vector<idx> all_ids = as_ids(f["ids"]);
    for (idx s = 0; s < steps; ++s) {
      CAPTURE(s);
      model.zero_grad();
      const std::vector<idx> ids(all_ids.begin() + s * n, all_ids.begin() + (s + 1) * n);
      emb.backward(ids, as_matrix<T>(f["d_out"], n, d, s * n * d));
      if (is_sgd)
        uvp::nn::step(sgd, model);
      else
        uvp::nn::step(adam, model);
      const uvp::Matrix<double> want = as_matrix<double>(f["trajectory"], num, d, s * num * d);
      const uvp::Matrix<double> got = emb.weight().template cast<double>();
      CHECK(uvp_test::rel_error(flat(got), flat(want)) < c.tolerance);
      // Untouched rows (7 always, 5 and 6 before step 3, padding row 2) keep their values exactly.
      CHECK(got.row(7) == as_matrix<double>(f["weight0"], num, d).row(7));
      CHECK(got.row(2).isZero(0));
    }
    if (!is_sgd) {
      CHECK(uvp_test::rel_error(adam.exp_avg().subspan(0, num * d), f["exp_avg"]) < 10 * tol);
      CHECK(uvp_test::rel_error(adam.exp_avg_sq().subspan(0, num * d), f["exp_avg_sq"]) < 10 * tol);
    }
  }
}

TEST_CASE("Embedding: parallel lookups, bags and scatters equal the serial ones") {
  uvp::Rng rng(5);
  Embedding<float> emb(5000, 32, rng, 0);
  std::vector<idx> ids(20000), offsets;
  for (auto& i : ids) i = idx(rng.uniform_int(300));  // many duplicates and some padding
  for (idx b = 0; b < idx(ids.size()); b += 1 + idx(rng.uniform_int(9))) offsets.push_back(b);
  uvp::Matrix<float> R(idx(ids.size()), 32), Rb(idx(offsets.size()), 32);
  for (idx i = 0; i < R.size(); ++i) R.data()[i] = float(rng.normal());
  for (idx i = 0; i < Rb.size(); ++i) Rb.data()[i] = float(rng.normal());
  auto run = [&](int threads) {
    uvp::ThreadCountGuard guard(uvp::has_openmp ? threads : 1);
    emb.zero_grad();
    const uvp::Matrix<float> out = emb.forward(ids), bags = emb.forward_bag(ids, offsets, BagMode::mean);
    emb.backward(ids, R);
    emb.backward_bag(ids, offsets, BagMode::mean, Rb);
    return std::make_tuple(out, bags, emb.sparse_grad().rows, emb.sparse_grad().values);
  };
  const auto one = run(1), two = run(2);
  CHECK(std::get<0>(one) == std::get<0>(two));
  CHECK(std::get<1>(one) == std::get<1>(two));
  CHECK(std::get<2>(one) == std::get<2>(two));
  CHECK(std::get<3>(one) == std::get<3>(two));  // bit-identical: each row sums in position order
}

TEST_CASE("A 1,000,000 x 16 float table trains a step touching only the rows it used") {
  // Under a sanitizer, 100,000 rows: the same paths, a tenth of the instrumented copying.
  const idx rows = uvp_test::sanitized ? 100000 : 1000000;
  // Process CPU time (all threads), reported: speed is measured in benchmarks, not asserted here.
  const std::clock_t c0 = std::clock();
  uvp::Rng rng(9);
  Embedding<float> emb(rows, 16, rng);
  std::vector<idx> ids(4096);
  for (auto& i : ids) i = idx(rng.uniform_int(static_cast<std::uint64_t>(rows)));
  ids[1] = ids[0];
  const uvp::Matrix<float> out = emb.forward(ids);
  auto model = uvp::nn::blocks<float>("emb", emb);
  const uvp::Matrix<float> before = emb.weight();  // a copy, to see which rows change
  uvp::Sgd<float> sgd(uvp::SgdOptions{0.5});
  model.zero_grad();
  emb.backward(ids, uvp::Matrix<float>::Ones(out.rows(), 16));
  uvp::nn::step(sgd, model);
  MESSAGE(rows << " x 16 table: construct + forward + backward + SGD step (+ a table copy): "
                << double(std::clock() - c0) / CLOCKS_PER_SEC << " s CPU");

  std::vector<idx> distinct = ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  CHECK(emb.sparse_grad().size() == idx(distinct.size()));
  const auto after = emb.weight();
  idx changed = 0;
  for (idx r = 0; r < after.rows(); ++r) changed += after.row(r) != before.row(r);
  CHECK(changed == idx(distinct.size()));
  CHECK(after(ids[0], 3) == doctest::Approx(before(ids[0], 3) - 0.5f * 2));  // a duplicate: gradient 2
}
