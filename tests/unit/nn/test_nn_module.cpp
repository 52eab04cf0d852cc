// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "support/test_support.hpp"
#include "uvp/nn/module.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"

namespace {

// A dense block with two tensors and a sparse one, to exercise the shared machinery.
struct Affine : uvp::nn::Block<double> {
  Affine(uvp::index in, uvp::index out) {
    w = add_tensor("weight", {out, in});
    b = add_tensor("bias", {out});
    allocate_parameters();
  }
  std::size_t w, b;
};

struct Table : uvp::nn::Block<double> {
  Table(uvp::index rows, uvp::index dim) {
    add_tensor("weight", {rows, dim}, true);
    allocate_parameters();
  }
  void touch(uvp::index row, const double* g) { accumulate_sparse_row(row, g); }
};

}  // namespace

TEST_CASE("Block registers tensors in aligned slots and counts parameters") {
  Affine a(3, 2);
  CHECK(a.tensors().size() == 2);
  CHECK(a.tensor("weight").shape == std::vector<uvp::index>{2, 3});
  CHECK(a.parameter_count() == 8);
  CHECK(a.tensor("bias").slot.offset == 8);  // 64-byte alignment: 8 doubles
  CHECK(a.values(a.tensor("bias")).size() == 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(a.tensor("gamma"), uvp::invalid_argument, "no tensor named 'gamma'");
  CHECK(a.is_training());
  a.eval();
  CHECK_FALSE(a.is_training());
}

TEST_CASE("Sparse rows accumulate once per row and clear on zero_grad") {
  Table t(5, 2);
  CHECK(t.has_sparse_grad());
  CHECK_FALSE(t.parameters().has_grads());
  const double g1[2] = {1, 2}, g2[2] = {10, 20};
  t.touch(3, g1);
  t.touch(1, g2);
  t.touch(3, g2);
  REQUIRE(t.sparse_grad().size() == 2);
  CHECK(t.sparse_grad().rows[0] == 3);
  CHECK(t.sparse_grad().row(0)[0] == 11);
  CHECK(t.sparse_grad().row(0)[1] == 22);
  t.zero_grad();
  CHECK(t.sparse_grad().size() == 0);
  t.touch(3, g1);
  CHECK(t.sparse_grad().row(0)[1] == 2);
}

TEST_CASE("nn::step updates dense blocks whole and sparse tables lazily") {
  Affine a(3, 2);
  Table t(4, 2);
  for (auto& v : a.parameters().values()) v = 1;
  for (auto& v : t.parameters().values()) v = 1;
  auto model = uvp::nn::blocks<double>("affine", a, "table", t);
  CHECK(model.parameter_count() == 8 + 8);
  uvp::Sgd<double> sgd(uvp::SgdOptions{0.5});
  for (auto& g : a.parameters().grads()) g = 1;
  const double g[2] = {2, 4};
  t.touch(2, g);
  uvp::nn::step(sgd, model);
  CHECK(a.values(a.tensor("weight"))[0] == doctest::Approx(0.5));
  const auto table = t.values(t.tensors()[0]);
  CHECK(table[0] == 1);            // row 0 untouched
  CHECK(table[4] == doctest::Approx(0.0));  // row 2: 1 - 0.5 * 2
  CHECK(table[5] == doctest::Approx(-1.0));
  CHECK(table[6] == 1);            // row 3 untouched

  // An optimizer sized for another model is refused.
  Affine other(5, 5);
  auto model2 = uvp::nn::blocks<double>("other", other);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::step(sgd, model2), uvp::shape_error, "call reset()");

  // Lazy Adam leaves untouched rows' moments at zero.
  uvp::Adam<double> adam;
  t.zero_grad();
  t.touch(1, g);
  uvp::nn::step(adam, model);
  const auto m = adam.exp_avg();
  const uvp::index table_offset = a.parameters().size();
  CHECK(m[table_offset + 0] == 0);
  CHECK(m[table_offset + 2] != 0);
}
