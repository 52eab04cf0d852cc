// SPDX-License-Identifier: Apache-2.0
// Losses: values and gradients against PyTorch, gradients against finite differences, stability.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/losses/bce_with_logits.hpp"
#include "uvp/losses/cross_entropy.hpp"
#include "uvp/losses/mse.hpp"
#include "uvp/testing/gradient_check.hpp"

using uvp::Span;

TEST_CASE_TEMPLATE("bce_with_logits matches PyTorch, including |z| = 150", T, float, double) {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("models/bce.txt"));
  std::vector<T> z(f["z"].begin(), f["z"].end()), t(f["t"].begin(), f["t"].end()), w(f["w"].begin(), f["w"].end());
  std::vector<T> g(z.size());
  const double loss = uvp::bce_with_logits<T>(uvp::as_span(z), uvp::as_span(t), uvp::as_span(g), uvp::as_span(w));
  CHECK(loss == doctest::Approx(f["loss"][0]).epsilon(uvp_test::tolerance<T>::rel * 10));
  CHECK(uvp_test::rel_error(g, f["grad"]) < uvp_test::tolerance<T>::rel * 10);
  for (T v : g) CHECK(std::isfinite(v));

  // The vectorised training-loop form agrees with the reference form.
  std::vector<T> g2(z.size());
  const double loss2 = uvp::detail::bce_logits_batch(z.data(), t.data(), w.data(), g2.data(), uvp::index(z.size()));
  CHECK(loss2 == doctest::Approx(loss).epsilon(1e-6));
  CHECK(uvp_test::rel_error(g2, g) < 1e-5);
}

TEST_CASE("bce_with_logits: stable far out, sum reduction, gradient vs finite differences") {
  const std::vector<double> z{1000.0, -1000.0}, t{1.0, 0.0};
  CHECK(uvp::bce_with_logits<double>(uvp::as_span(z), uvp::as_span(t)) == doctest::Approx(0.0));
  const std::vector<double> t2{0.0, 1.0};
  CHECK(uvp::bce_with_logits<double>(uvp::as_span(z), uvp::as_span(t2), {}, {}, uvp::Reduction::sum) ==
        doctest::Approx(2000.0));

  std::vector<double> x{-3.0, -0.2, 0.0, 0.7, 4.0}, y{0.0, 1.0, 0.3, 1.0, 0.0}, w{1, 2, 0.5, 1, 3};
  std::vector<double> g(x.size());
  uvp::bce_with_logits<double>(uvp::as_span(x), uvp::as_span(y), uvp::as_span(g), uvp::as_span(w));
  auto r = uvp::testing::check_gradient(
      [&] { return uvp::bce_with_logits<double>(uvp::as_span(x), uvp::as_span(y), {}, uvp::as_span(w)); },
      uvp::as_span(x), uvp::as_span(g));
  CHECK(r.relative_error < 1e-8);
}

TEST_CASE("softmax_cross_entropy matches PyTorch; gradient vs finite differences") {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("models/cross_entropy.txt"));
  uvp::Matrix<double> logits = uvp::view(f["logits"].data(), 6, 4);
  std::vector<uvp::index> targets(f["targets"].begin(), f["targets"].end());
  uvp::Matrix<double> g(6, 4);
  const double loss = uvp::softmax_cross_entropy<double>(logits, uvp::as_span(targets), g);
  CHECK(loss == doctest::Approx(f["loss"][0]).epsilon(1e-12));
  CHECK(uvp_test::rel_error(Span<const double>(g.data(), 24), f["grad"]) < 1e-12);

  auto r = uvp::testing::check_gradient(
      [&] { return uvp::softmax_cross_entropy<double>(logits, uvp::as_span(targets)); },
      Span<double>(logits.data(), 24), Span<const double>(g.data(), 24));
  CHECK(r.relative_error < 1e-8);

  uvp::Matrix<float> big(1, 3);
  big << 1000.f, -1000.f, 0.f;
  std::vector<uvp::index> t0{0};
  CHECK(uvp::softmax_cross_entropy<float>(big, uvp::as_span(t0)) == doctest::Approx(0.0));
}

TEST_CASE("mse_loss matches PyTorch; gradient vs finite differences") {
  auto f = uvp_test::read_arrays(uvp_test::fixture_path("models/mse.txt"));
  std::vector<double> p = f["pred"], t = f["target"], g(p.size());
  CHECK(uvp::mse_loss<double>(uvp::as_span(p), uvp::as_span(t), uvp::as_span(g)) ==
        doctest::Approx(f["loss"][0]).epsilon(1e-12));
  CHECK(uvp_test::rel_error(g, f["grad"]) < 1e-12);
  auto r = uvp::testing::check_gradient([&] { return uvp::mse_loss<double>(uvp::as_span(p), uvp::as_span(t)); },
                                        uvp::as_span(p), uvp::as_span(g));
  CHECK(r.relative_error < 1e-8);
}

TEST_CASE("losses reject bad shapes and out-of-range classes with clear errors") {
  std::vector<double> a{1, 2, 3}, b{1, 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::bce_with_logits<double>(uvp::as_span(a), uvp::as_span(b)), uvp::shape_error,
                               "uvp::bce_with_logits: targets has size 2, expected 3");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::mse_loss<double>(uvp::as_span(b), uvp::as_span(a)), uvp::shape_error,
                               "uvp::mse_loss: targets has size 3, expected 2");
  // An empty batch is valid (loss 0): tested with every loss in tests/unit/nn/test_nn_empty_batch.cpp.
  uvp::Matrix<double> logits = uvp::Matrix<double>::Zero(2, 3);
  std::vector<uvp::index> t{0, 3};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::softmax_cross_entropy<double>(logits, uvp::as_span(t)), uvp::out_of_range_error,
                               "targets[1] = 3 out of range [0, 3)");
  uvp::Matrix<double> g(3, 3);
  std::vector<uvp::index> t2{0, 1};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::softmax_cross_entropy<double>(logits, uvp::as_span(t2), g), uvp::shape_error,
                               "grad has shape (3, 3), expected (2, 3)");
}
