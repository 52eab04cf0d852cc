// SPDX-License-Identifier: Apache-2.0
// Numeric options of the training paths are validated on every path: FitOptions (also when the
// caller passes its own optimizer, which ignores FitOptions::lr), the models' options, and the
// options of a caller-supplied Adam / Sgd. Each message names the option and the value.
#include <doctest/doctest.h>

#include <limits>

#include "support/test_support.hpp"
#include "uvp/models/linear_regression.hpp"
#include "uvp/models/logistic_regression.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/sgd.hpp"

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();

struct Data {
  uvp::Matrix<double> X = uvp::Matrix<double>::Identity(4, 3);
  uvp::Vector<double> y = (uvp::Vector<double>(4) << 0, 1, 0, 1).finished();
};
}  // namespace

TEST_CASE("FitOptions::lr must be finite and > 0, with the default and with a caller-supplied optimizer") {
  const Data d;
  for (const double lr : {inf, -inf, nan_v, 0.0, -1.0}) {
    CAPTURE(lr);
    uvp::FitOptions fo;
    fo.lr = lr;
    uvp::LogisticRegression<double> logistic(3);
    uvp::LinearRegression<double> linear(3);
    uvp::Adam<double> adam;
    uvp::Sgd<double> sgd;
    UVP_CHECK_THROWS_WITH_SUBSTR(logistic.fit(d.X, d.y, fo), uvp::invalid_argument,
                                 "uvp::LogisticRegression::fit: options.lr must be finite and > 0, got");
    UVP_CHECK_THROWS_WITH_SUBSTR(logistic.fit(d.X, d.y, adam, fo), uvp::invalid_argument,
                                 "uvp::LogisticRegression::fit: options.lr must be finite and > 0, got");
    UVP_CHECK_THROWS_WITH_SUBSTR(linear.fit(d.X, d.y, sgd, fo), uvp::invalid_argument,
                                 "uvp::LinearRegression::fit: options.lr must be finite and > 0, got");
    CHECK(adam.steps() == 0);  // nothing ran
  }
  uvp::FitOptions fo;
  fo.lr = inf;
  uvp::LogisticRegression<double> m(3);
  uvp::Adam<double> adam;
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(d.X, d.y, adam, fo), uvp::invalid_argument, "options.lr must be finite and > 0, got inf");
}

TEST_CASE("a caller-supplied optimizer's options and current lr are checked, naming the option") {
  uvp::AdamOptions ao;
  ao.beta1 = nan_v;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Adam<double>{ao}, uvp::invalid_argument, "uvp::Adam: beta1 must be in [0, 1), got nan");
  ao = {};
  ao.beta2 = 1.0;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Adam<double>{ao}, uvp::invalid_argument, "uvp::Adam: beta2 must be in [0, 1), got 1");
  ao = {};
  ao.eps = inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Adam<double>{ao}, uvp::invalid_argument, "uvp::Adam: eps must be finite and > 0, got inf");
  ao = {};
  ao.weight_decay = inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Adam<double>{ao}, uvp::invalid_argument,
                               "uvp::Adam: weight_decay must be finite and >= 0, got inf");
  ao = {};
  ao.lr = inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Adam<double>{ao}, uvp::invalid_argument, "uvp::Adam: lr must be finite and > 0, got inf");
  uvp::SgdOptions so;
  so.momentum = nan_v;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Sgd<double>{so}, uvp::invalid_argument, "uvp::Sgd: momentum must be in [0, 1], got nan");
  so = {};
  so.weight_decay = -inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Sgd<double>{so}, uvp::invalid_argument,
                               "uvp::Sgd: weight_decay must be finite and >= 0, got -inf");
  so = {};
  so.lr = nan_v;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::Sgd<double>{so}, uvp::invalid_argument, "uvp::Sgd: lr must be finite and > 0, got nan");

  // A user optimizer (anything with step(params, grads)) whose lr() went non-finite.
  struct Broken {
    double lr() const { return inf; }
    void step(uvp::Span<double>, uvp::Span<const double>) {}
  };
  const Data d;
  Broken broken;
  uvp::LogisticRegression<double> m(3);
  UVP_CHECK_THROWS_WITH_SUBSTR(m.fit(d.X, d.y, broken, uvp::FitOptions{}), uvp::invalid_argument,
                               "uvp::LogisticRegression::fit: the optimizer's lr must be finite and >= 0, got inf");
}

TEST_CASE("the models' numeric options must be finite") {
  uvp::LogisticRegressionOptions lo;
  lo.l2 = inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LogisticRegression<double>(3, lo), uvp::invalid_argument,
                               "options.l2 must be finite and >= 0, got inf");
  lo = {};
  lo.class_weight_positive = inf;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LogisticRegression<double>(3, lo), uvp::invalid_argument,
                               "options.class_weight_positive must be finite and > 0, got inf");
  lo = {};
  lo.class_weight_negative = nan_v;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LogisticRegression<double>(3, lo), uvp::invalid_argument,
                               "options.class_weight_negative must be finite and > 0, got nan");
  uvp::LinearRegressionOptions ro;
  ro.l2 = nan_v;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::LinearRegression<double>(3, ro), uvp::invalid_argument,
                               "uvp::LinearRegression: options.l2 must be finite and >= 0, got nan");
}
