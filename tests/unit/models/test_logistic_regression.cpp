// SPDX-License-Identifier: Apache-2.0
// LogisticRegression: converges to scikit-learn's solution (plain, weighted, balanced), trains in
// float by minibatches, reports epochs, handles divergence, and rejects bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/optim/sgd.hpp"
#include "uvp/testing/gradient_check.hpp"
#include "uvp/training/early_stopping.hpp"

namespace {
struct LogregData {
  uvp::Matrix<double> X;
  uvp::Vector<double> y, sw;
  std::map<std::string, std::vector<double>> f;
};

LogregData load() {
  LogregData d;
  d.f = uvp_test::read_arrays(uvp_test::fixture_path("models/logreg.txt"));
  const auto n = uvp::index(d.f["y"].size());
  d.X = uvp::view(d.f["X"].data(), n, 5);
  d.y = uvp::ConstVectorView<double>(d.f["y"].data(), n);
  d.sw = uvp::ConstVectorView<double>(d.f["sw"].data(), n);
  return d;
}

// Full-batch heavy-ball descent reaches the optimum of the strongly convex objective to ~1e-10.
uvp::FitResult fit_to_optimum(uvp::LogisticRegression<double>& m, const LogregData& d,
                              uvp::Span<const double> sw = {}) {
  uvp::SgdOptions so;
  so.lr = 0.5;
  so.momentum = 0.9;
  uvp::Sgd<double> sgd(so);
  uvp::FitOptions fo;
  fo.epochs = 3000;
  fo.batch_size = d.X.rows();
  fo.shuffle = false;
  return m.fit(d.X, d.y, sgd, fo, sw);
}

double l2_for_sklearn_C(double C, uvp::index n) { return 1.0 / (C * double(n)); }

// The gradient of m's objective at its current parameters: one full-batch epoch with an
// optimizer that records the gradient instead of stepping.
std::vector<double> recorded_gradient(uvp::LogisticRegression<double>& m, const LogregData& d,
                                      uvp::Span<const double> sw = {}) {
  struct Record {
    std::vector<double> g;
    void step(uvp::Span<double>, uvp::Span<const double> grads) { g.assign(grads.begin(), grads.end()); }
  } rec;
  uvp::FitOptions fo;
  fo.epochs = 1;
  fo.batch_size = d.X.rows();
  fo.shuffle = false;
  m.fit(d.X, d.y, rec, fo, sw);
  return rec.g;
}

// The same at scikit-learn's solution (coef, intercept).
std::vector<double> gradient_at(const LogregData& d, const uvp::LogisticRegressionOptions& o, const char* coef,
                                const char* intercept, uvp::Span<const double> sw = {}) {
  uvp::LogisticRegression<double> m(5, o);
  for (uvp::index i = 0; i < 5; ++i) m.coef()[i] = d.f.at(coef)[std::size_t(i)];
  m.set_intercept(d.f.at(intercept)[0]);
  return recorded_gradient(m, d, sw);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}
}  // namespace

TEST_CASE("LogisticRegression reaches scikit-learn's LogisticRegression(C) solution") {
  const auto d = load();
  const double C = d.f.at("C")[0];
  uvp::LogisticRegressionOptions o;
  o.l2 = l2_for_sklearn_C(C, d.X.rows());

  SUBCASE("unweighted") {
    uvp::LogisticRegression<double> m(5, o);
    const auto r = fit_to_optimum(m, d);
    CHECK_FALSE(r.diverged);
    CHECK(r.epochs_run == 3000);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef")) < 1e-7);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept")[0]).epsilon(1e-7));
    const auto p = m.predict_proba(d.X);
    CHECK(uvp_test::rel_error(p, d.f.at("proba")) < 1e-7);
  }
  // scikit-learn's solutions (newton-cg, tol 1e-10) are stationary points of uvp's objectives.
  CHECK(max_abs(gradient_at(d, o, "coef", "intercept")) < 1e-9);
  const uvp::Span<const double> sw(d.sw.data(), d.sw.size());
  CHECK(max_abs(gradient_at(d, o, "coef_w", "intercept_w", sw)) < 1e-9);
  uvp::LogisticRegressionOptions balanced = o;
  balanced.balanced = true;
  CHECK(max_abs(gradient_at(d, balanced, "coef_bal", "intercept_bal")) < 1e-9);
  // And training reaches them. Under a sanitizer (where an epoch is ~50x slower) only the
  // unweighted fit trains: the weighted ones run the same loop, checked above at the optimum.
  if (uvp_test::sanitized) return;
  SUBCASE("sample weights") {
    uvp::LogisticRegression<double> m(5, o);
    fit_to_optimum(m, d, sw);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef_w")) < 1e-7);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept_w")[0]).epsilon(1e-7));
  }
  SUBCASE("balanced class weights") {
    uvp::LogisticRegression<double> m(5, balanced);
    fit_to_optimum(m, d);
    CHECK(uvp_test::rel_error(m.coef(), d.f.at("coef_bal")) < 1e-7);
    CHECK(m.intercept() == doctest::Approx(d.f.at("intercept_bal")[0]).epsilon(1e-7));
  }
}

TEST_CASE("LogisticRegression's gradient matches finite differences of its objective") {
  const auto d = load();
  uvp::LogisticRegressionOptions o;
  o.l2 = 0.1;
  uvp::LogisticRegression<double> m(5, o);
  for (uvp::index i = 0; i < 5; ++i) m.coef()[i] = 0.1 * double(i) - 0.2;
  m.set_intercept(0.05);
  const std::vector<double> g = recorded_gradient(m, d, uvp::Span<const double>(d.sw.data(), d.sw.size()));

  auto objective = [&] {
    const auto z = m.decision_function(d.X);
    double s = 0;
    for (uvp::index i = 0; i < z.size(); ++i)
      s += d.sw[i] * (std::max(z[i], 0.0) - z[i] * d.y[i] + std::log1p(std::exp(-std::abs(z[i]))));
    return s / double(z.size()) + 0.5 * o.l2 * m.coef().squaredNorm();
  };
  auto r = uvp::testing::check_gradient(objective, m.parameters().values(),
                                        uvp::Span<const double>(g.data(), uvp::index(g.size())));
  CHECK(r.relative_error < 1e-8);
}

TEST_CASE("LogisticRegression<float> learns by shuffled minibatches; callbacks see every epoch") {
  uvp::Rng rng(5);
  const uvp::index n = 4000, d = 8;
  uvp::Matrix<float> X(n, d);
  uvp::Vector<float> y(n);
  for (uvp::index i = 0; i < n; ++i) {
    double z = -0.5;
    for (uvp::index j = 0; j < d; ++j) {
      X(i, j) = float(rng.normal());
      z += (j % 2 ? 1.0 : -1.0) * X(i, j);
    }
    y[i] = rng.uniform() < 1.0 / (1.0 + std::exp(-3 * z)) ? 1.f : 0.f;
  }
  uvp::LogisticRegression<float> m(d);
  uvp::FitOptions fo;
  fo.epochs = 6;
  fo.batch_size = 64;
  fo.lr = 0.05;
  std::vector<double> losses;
  uvp::AdamOptions ao;
  ao.lr = 0.05;
  uvp::Adam<float> adam(ao);
  const auto r = m.fit(X, y, adam, fo, [&](const uvp::EpochReport& e) {
    losses.push_back(e.train_loss);
    CHECK(e.epochs == 6);
    return true;
  });
  CHECK(r.epochs_run == 6);
  REQUIRE(losses.size() == 6);
  CHECK(losses.back() < losses.front());
  const auto pred = m.predict(X);
  const double acc = (pred.array() == y.array()).cast<double>().mean();
  CHECK(acc > 0.85);
  for (uvp::index j = 0; j < d; ++j) CHECK((m.coef()[j] > 0) == (j % 2 == 1));

  // Same seed, same result.
  uvp::LogisticRegression<float> m2(d);
  uvp::Adam<float> adam2(ao);
  m2.fit(X, y, adam2, fo);
  CHECK(m2.coef() == m.coef());

  // A callback returning false stops training; EarlyStopping keeps and restores the best weights.
  uvp::LogisticRegression<float> m3(d);
  uvp::Adam<float> adam3(ao);
  const auto r3 = m3.fit(X, y, adam3, fo, [](const uvp::EpochReport& e) { return e.epoch < 2; });
  CHECK(r3.stopped_early);
  CHECK(r3.epochs_run == 2);

  uvp::EarlyStopping<float>::Options eo;
  eo.patience = 2;
  eo.higher_is_better = false;
  uvp::EarlyStopping<float> stop(eo);
  const std::vector<double> scores{0.5, 0.4, 0.45, 0.41};  // best at epoch 2, then two bad epochs
  uvp::LogisticRegression<float> m4(d);
  uvp::Adam<float> adam4(ao);
  std::vector<float> at_best;
  fo.epochs = 10;
  const auto r4 = m4.fit(X, y, adam4, fo, [&](const uvp::EpochReport& e) {
    const bool go_on = stop.update(scores[std::size_t(e.epoch - 1)], m4.parameters().values());
    if (e.epoch == 2) at_best.assign(m4.parameters().values().begin(), m4.parameters().values().end());
    return go_on;
  });
  CHECK(r4.stopped_early);
  CHECK(r4.epochs_run == 4);
  CHECK(stop.best_epoch() == 2);
  CHECK(stop.best_score() == 0.4);
  REQUIRE(stop.restore(m4.parameters().values()));
  CHECK(std::equal(at_best.begin(), at_best.end(), m4.parameters().values().begin()));
}

TEST_CASE("a diverging fit is reported in the result, with finite parameters kept") {
  uvp::Matrix<double> X(4, 1);
  X << 1e300, -1e300, 1e300, -1e300;
  uvp::Vector<double> y(4);
  y << 1, 0, 1, 0;
  uvp::LogisticRegression<double> m(1);
  uvp::SgdOptions so;
  so.lr = 1e300;
  uvp::Sgd<double> sgd(so);
  uvp::FitOptions fo;
  fo.epochs = 5;
  fo.batch_size = 4;
  const auto r = m.fit(X, y, sgd, fo);
  CHECK(r.diverged);
  CHECK(r.message.find("diverged") != std::string::npos);
  CHECK(std::isfinite(m.coef()[0]));
}

TEST_CASE("LogisticRegression rejects bad input with messages naming the argument") {
  uvp::LogisticRegression<double> m(3);
  uvp::Matrix<double> X = uvp::Matrix<double>::Ones(4, 3);
  uvp::Vector<double> y(4);
  y << 0, 1, 1, 0;
  uvp::Matrix<double> Xbad = uvp::Matrix<double>::Ones(4, 2);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.predict_proba(Xbad), uvp::shape_error,
                               "uvp::LogisticRegression::decision_function: X has 2 columns, expected 3");
  uvp::Vector<double> y3(3);
  y3 << 0, 1, 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(X, y3), uvp::shape_error, "y has size 3, expected 4");
  uvp::Vector<double> y2 = y;
  y2[2] = 2;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(X, y2), uvp::invalid_argument, "y[2] = 2 is not a binary label");
  uvp::Matrix<double> Xnan = X;
  Xnan(1, 2) = std::nan("");
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(Xnan, y), uvp::invalid_argument, "X has a non-finite value (nan) at row 1, column 2");
  CHECK(m.coef().isZero());  // the parameters are left as they were
  {
    // Found mid-training (the values are checked as batches are used): same message, and the
    // model is restored to where it was.
    uvp::Matrix<double> Xbig = uvp::Matrix<double>::Ones(1000, 3);
    uvp::Vector<double> ybig(1000);
    for (int i = 0; i < 1000; ++i) ybig[i] = i % 2;
    Xbig(731, 0) = -std::numeric_limits<double>::infinity();
    uvp::FitOptions small;
    small.batch_size = 16;
    UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(Xbig, ybig, small), uvp::invalid_argument,
                                 "uvp::LogisticRegression::fit: X has a non-finite value (-inf) at row 731, column 0");
    CHECK(m.coef().isZero());
  }
  uvp::Matrix<double> X0(0, 3);
  uvp::Vector<double> y0(0);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(X0, y0), uvp::invalid_argument, "X is empty");
  uvp::FitOptions fo;
  fo.batch_size = 0;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(X, y, fo), uvp::invalid_argument, "options.batch_size must be >= 1, got 0");
  std::vector<double> sw{1, -1, 1, 1};
  uvp::SgdOptions so;
  uvp::Sgd<double> sgd(so);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(X, y, sgd, uvp::FitOptions{}, uvp::as_span(sw)), uvp::invalid_argument,
                               "sample_weight[1] = -1 must be finite and >= 0");
  uvp::LogisticRegressionOptions bal;
  bal.balanced = true;
  uvp::LogisticRegression<double> mb(3, bal);
  uvp::Vector<double> ones = uvp::Vector<double>::Ones(4);
  UVP_CHECK_THROWS_WITH_SUBSTR(mb.fit(X, ones), uvp::invalid_argument, "balanced class weights need both classes");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LogisticRegression<double>(0), uvp::invalid_argument, "n_features must be >= 1, got 0");
  uvp::LogisticRegressionOptions neg;
  neg.l2 = -1;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LogisticRegression<double>(3, neg), uvp::invalid_argument, "options.l2 must be finite and >= 0, got -1");
  uvp::Vector<double> out(3);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.predict_proba(X, out), uvp::shape_error, "out has size 3, expected 4");
}
