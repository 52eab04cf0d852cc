// SPDX-License-Identifier: Apache-2.0
// Tests of the learning-rate schedules against torch.optim.lr_scheduler, apply(), and their errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "optim_fixture.hpp"
#include "support/test_support.hpp"
#include "uvp/optim/adam.hpp"
#include "uvp/optim/schedule.hpp"
#include "uvp/optim/sgd.hpp"

namespace {

template <class Schedule>
void check_lrs(const Schedule& s, const std::vector<double>& lrs, double base_lr) {
  for (std::size_t k = 0; k < lrs.size(); ++k) {
    CAPTURE(k);
    // torch's recursive updates drift by a few ulps from the closed forms.
    CHECK(std::abs(s.lr(uvp::index(k)) - lrs[k]) <= 1e-13 * base_lr);
  }
}

const uvp_test::FixtureCase& find(const std::vector<uvp_test::FixtureCase>& cases, const std::string& name) {
  for (const auto& c : cases)
    if (c.name == name) return c;
  FAIL("no fixture case " << name);
  return cases.front();
}

}  // namespace

TEST_CASE("schedules match torch.optim.lr_scheduler") {
  const auto cases = uvp_test::read_cases("schedules.txt");
  for (const char* name : {"step", "step_size_1"}) {
    const auto& c = find(cases, name);
    CAPTURE(c.name);
    check_lrs(uvp::StepLr{c.scalar("base_lr"), uvp::index(c.scalar("step_size")), c.scalar("gamma")}, c.at("lrs"),
              c.scalar("base_lr"));
  }
  for (const char* name : {"cosine", "cosine_eta0"}) {
    const auto& c = find(cases, name);
    CAPTURE(c.name);
    check_lrs(uvp::CosineLr{c.scalar("base_lr"), uvp::index(c.scalar("t_max")), c.scalar("eta_min")}, c.at("lrs"),
              c.scalar("base_lr"));
  }
  {
    const auto& c = find(cases, "warmup_cosine");
    const uvp::CosineLr cosine{c.scalar("base_lr"), uvp::index(c.scalar("t_max")), c.scalar("eta_min")};
    check_lrs(uvp::LinearWarmup{cosine, uvp::index(c.scalar("warmup")), c.scalar("start_factor")}, c.at("lrs"),
              c.scalar("base_lr"));
  }
  {
    const auto& c = find(cases, "warmup_step");
    const uvp::StepLr step{c.scalar("base_lr"), uvp::index(c.scalar("step_size")), c.scalar("gamma")};
    check_lrs(uvp::LinearWarmup{step, uvp::index(c.scalar("warmup")), c.scalar("start_factor")}, c.at("lrs"),
              c.scalar("base_lr"));
  }
}

TEST_CASE("schedules by hand") {
  CHECK(uvp::ConstantLr{0.3}.lr(0) == 0.3);
  CHECK(uvp::ConstantLr{0.3}.lr(1000000) == 0.3);
  CHECK(uvp::StepLr{1.0, 2, 0.5}.lr(3) == 0.5);
  CHECK(uvp::StepLr{1.0, 2, 0.5}.lr(4) == 0.25);
  CHECK(uvp::CosineLr{1.0, 4, 0.0}.lr(0) == 1.0);
  CHECK(uvp::CosineLr{1.0, 4, 0.0}.lr(2) == doctest::Approx(0.5));
  CHECK(uvp::CosineLr{1.0, 4, 0.1}.lr(4) == doctest::Approx(0.1));
  CHECK(uvp::CosineLr{1.0, 4, 0.1}.lr(8) == doctest::Approx(1.0));  // periodic, as PyTorch's closed form
  const uvp::LinearWarmup warm{uvp::ConstantLr{0.2}, 4, 0.5};
  CHECK(warm.lr(0) == doctest::Approx(0.1));
  CHECK(warm.lr(2) == doctest::Approx(0.15));
  CHECK(warm.lr(4) == 0.2);
  CHECK(warm.lr(99) == 0.2);
  const uvp::LinearWarmup none{uvp::StepLr{1.0, 1, 0.5}, 0};
  CHECK(none.lr(0) == 1.0);
  CHECK(none.lr(2) == 0.25);
}

TEST_CASE("apply sets the optimizer's learning rate") {
  uvp::Adam<float> adam(uvp::AdamOptions{0.1});
  uvp::Sgd<double> sgd(uvp::SgdOptions{0.1});
  const uvp::CosineLr s{0.1, 10, 0.0};
  CHECK(uvp::apply(s, adam, 5) == doctest::Approx(0.05));
  CHECK(adam.lr() == doctest::Approx(0.05));
  uvp::apply(s, adam, 10);
  CHECK(adam.lr() == doctest::Approx(0.0).epsilon(1e-15));  // eta_min = 0 is allowed as a set lr
  uvp::apply(uvp::StepLr{0.1, 1, 0.1}, sgd, 2);
  CHECK(sgd.lr() == doctest::Approx(1e-3));
  CHECK(sgd.options().lr == 0.1);
}

TEST_CASE("schedules reject bad parameters, naming them") {
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::ConstantLr{0.0}.lr(0), uvp::invalid_argument,
                               "uvp::ConstantLr: base_lr must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::ConstantLr{0.1}.lr(-1), uvp::invalid_argument,
                               "uvp::ConstantLr::lr: step must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::StepLr{0.1, 0, 0.5}.lr(0)), uvp::invalid_argument,
                               "uvp::StepLr: step_size must be > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::StepLr{0.1, 2, -0.5}.lr(0)), uvp::invalid_argument,
                               "uvp::StepLr: gamma must be finite and > 0, got -0.5");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::StepLr{-0.1, 2, 0.5}.lr(0)), uvp::invalid_argument,
                               "uvp::StepLr: base_lr must be finite and > 0, got -0.1");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::CosineLr{0.1, 0, 0.0}.lr(0)), uvp::invalid_argument,
                               "uvp::CosineLr: t_max must be > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::CosineLr{0.1, 5, 0.2}.lr(0)), uvp::invalid_argument,
                               "uvp::CosineLr: eta_min must be in [0, base_lr = 0.1], got 0.2");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::CosineLr{0.1, 5, -1.0}.lr(0)), uvp::invalid_argument, "got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::LinearWarmup{uvp::ConstantLr{0.1}, -1, 0.5}.lr(0)), uvp::invalid_argument,
                               "uvp::LinearWarmup: warmup_steps must be >= 0, got -1");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::LinearWarmup{uvp::ConstantLr{0.1}, 3, 0.0}.lr(0)), uvp::invalid_argument,
                               "uvp::LinearWarmup: start_factor must be in (0, 1], got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::LinearWarmup{uvp::ConstantLr{0.1}, 3, 1.5}.lr(0)), uvp::invalid_argument,
                               "start_factor must be in (0, 1], got 1.5");
  // The inner schedule's own checks still apply.
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::LinearWarmup{uvp::CosineLr{0.1, 0, 0.0}, 3, 0.5}.lr(5)),
                               uvp::invalid_argument, "uvp::CosineLr: t_max must be > 0, got 0");
  uvp::Sgd<double> sgd;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::apply(uvp::StepLr{0.1, 0, 0.5}, sgd, 1), uvp::invalid_argument, "step_size");
  CHECK(sgd.lr() == 0.01);
}
