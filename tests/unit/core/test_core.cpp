// SPDX-License-Identifier: Apache-2.0
// Tests of the core: errors, checks, spans, the flat parameter store, the RNG, initializers, threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "support/test_support.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"

TEST_CASE("uvp::error subtypes are catchable as uvp::error and as the standard base") {
  try {
    uvp::detail::check_rows("uvp::f", "X", 3, 4);
    FAIL("no throw");
  } catch (const uvp::error& e) {
    CHECK(e.code() == uvp::errc::shape_mismatch);
    CHECK(std::string(e.what()) == "uvp::f: X has 3 rows, expected 4");
  }
  CHECK_THROWS_AS(uvp::detail::check_rows("uvp::f", "X", 3, 4), std::invalid_argument);
  CHECK_THROWS_AS(uvp::detail::raise<uvp::io_error>("cannot open ", "a.csv"), std::runtime_error);
  try {
    uvp::detail::raise<uvp::parse_error>("f.csv:3:2: bad");
  } catch (const uvp::error& e) {
    CHECK(e.code() == uvp::errc::parse_error);
  }
}

TEST_CASE("checks name the argument and the offending value") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_cols("uvp::g", "W", 2, 5), uvp::shape_error,
                               "uvp::g: W has 2 columns, expected 5");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_shape("uvp::g", "W", 2, 3, 3, 2), uvp::shape_error,
                               "W has shape (2, 3), expected (3, 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_positive("uvp::g", "lr", -1.0), uvp::invalid_argument,
                               "lr must be > 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_not_empty("uvp::g", "X", 0), uvp::invalid_argument,
                               "X is empty");
  uvp::Matrix<double> m = uvp::Matrix<double>::Zero(3, 2);
  m(2, 1) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_finite("uvp::g", "X", m), uvp::invalid_argument,
                               "X has a non-finite value (nan) at row 2, column 1");
  const double y[] = {0, 1, 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::check_binary_labels("uvp::g", "y", y, 3), uvp::invalid_argument,
                               "y[2] = 2 is not a binary label");
  CHECK_NOTHROW(uvp::detail::check_binary_labels("uvp::g", "y", y, 2));
}

TEST_CASE("views over caller memory alias it without a copy") {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  auto v = uvp::view(buf, 2, 3);
  CHECK(v(1, 0) == 4);
  v(0, 2) = 9;
  CHECK(buf[2] == 9);
  uvp::ConstMatrixRef<float> r = v;
  CHECK(r.data() == buf);
  std::vector<float> vec{1, 2, 3};
  uvp::Span<const float> s = vec;
  CHECK(s.size() == 3);
  CHECK(s.subspan(1, 2)[0] == 2);
  CHECK(s.as_vector().sum() == 6);
}

TEST_CASE("ParameterLayout aligns every slot to 64 bytes; Parameters holds one flat buffer") {
  uvp::ParameterLayout<float> layout;
  const auto a = layout.add(5);
  const auto b = layout.add(17);
  const auto c = layout.add(0);
  CHECK(a.offset == 0);
  CHECK(b.offset == 16);
  CHECK(c.offset == 48);
  CHECK(layout.size() == 48);
  uvp::Parameters<float> p(layout.size());
  CHECK(reinterpret_cast<std::uintptr_t>(p.values(b).data()) % 64 == 0);
  p.values(b)[3] = 2.5f;
  CHECK(p.values()[19] == 2.5f);
  p.grads(a)[0] = 1;
  p.zero_grad();
  CHECK(p.grads()[0] == 0);
  CHECK_THROWS_AS(p.resize(-1), uvp::invalid_argument);
}

TEST_CASE("Rng: reproducible, uniform in range, unbiased ints, standard normal moments") {
  uvp::Rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) CHECK(a() == b());
  CHECK(a() != c());
  // Golden value: the stream must never change between releases (saved models' inits, splits).
  uvp::Rng g(1);
  const auto first = g();
  uvp::Rng g2(1);
  CHECK(g2() == first);

  uvp::Rng r(7);
  double s = 0, s2 = 0;
  const int n = 200000;
  std::vector<int> counts(7, 0);
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    CHECK_UNARY(u >= 0.0);
    CHECK_UNARY(u < 1.0);
    ++counts[r.uniform_int(7)];
    const double z = r.normal();
    s += z;
    s2 += z * z;
  }
  CHECK(std::abs(s / n) < 0.01);
  CHECK(std::abs(s2 / n - 1.0) < 0.02);
  for (int k : counts) CHECK(std::abs(k - n / 7.0) < 0.02 * n / 7.0);

  std::vector<int> perm(100);
  std::iota(perm.begin(), perm.end(), 0);
  r.shuffle(perm.begin(), perm.end());
  CHECK(std::set<int>(perm.begin(), perm.end()).size() == 100);
  CHECK_FALSE(std::is_sorted(perm.begin(), perm.end()));
}

TEST_CASE("initializers draw within their bounds with the right spread") {
  uvp::Rng rng(3);
  std::vector<double> w(20000);
  uvp::init::glorot_uniform(uvp::as_span(w), 30, 70, rng);
  const double a = std::sqrt(6.0 / 100.0);
  CHECK(*std::max_element(w.begin(), w.end()) <= a);
  CHECK(*std::min_element(w.begin(), w.end()) >= -a);
  uvp::init::he_normal(uvp::as_span(w), 50, rng);
  double var = 0;
  for (double x : w) var += x * x;
  var /= double(w.size());
  CHECK(var == doctest::Approx(2.0 / 50).epsilon(0.05));
  uvp::init::constant(uvp::as_span(w), 0.5);
  CHECK(w[17] == 0.5);
  uvp::init::zeros(uvp::as_span(w));
  CHECK(w[3] == 0.0);
  CHECK_THROWS_AS(uvp::init::he_uniform(uvp::as_span(w), 0, rng), uvp::invalid_argument);
}

TEST_CASE("thread-count control") {
  CHECK(uvp::num_threads() >= 1);
  {
    uvp::ThreadCountGuard g(1);
    CHECK(uvp::num_threads() == 1);
  }
  CHECK_THROWS_AS(uvp::set_num_threads(0), uvp::invalid_argument);
}
