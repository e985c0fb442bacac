// steer::vec probes: logistic regression and shrinkage LDA vs scikit-learn, closed forms,
// bad input.
#include <gtest/gtest.h>

#include "steer/vec/probe.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

TEST(VecProbe, SeparatesTwoClustersAlongTheKnownAxis) {
  // Positive rows at x_2 = +1, negative at x_2 = -1, identical noise elsewhere.
  const int n = 50, d = 8;
  Eigen::MatrixXf noise = Eigen::MatrixXf::Random(n, d);
  noise.col(2).setZero();
  Eigen::MatrixXf pos = noise, neg = noise;
  pos.col(2).setConstant(1.0f);
  neg.col(2).setConstant(-1.0f);
  const auto logistic = sv::logistic_probe(pos, neg, sv::LogisticOptions().lambda(0.1));
  EXPECT_GE(logistic.direction(2), 0.999f);
  EXPECT_DOUBLE_EQ(logistic.train_accuracy, 1.0);
  EXPECT_NEAR(logistic.intercept, 0.0, 1e-8);
  const auto lda = sv::lda_probe(pos, neg, sv::LdaOptions().shrinkage(0.5));
  EXPECT_GE(lda.direction(2), 0.999f);
  EXPECT_DOUBLE_EQ(lda.train_accuracy, 1.0);
}

TEST(VecProbe, LogisticMatchesSklearn) {
  const double lambda = vec_test::load_scalar("probe_lambda");
  for (const std::string tag : {"probe_tall", "probe_wide"}) {
    SCOPED_TRACE(tag);
    const Eigen::MatrixXf pos = vec_test::load_f(tag + "_pos");
    const Eigen::MatrixXf neg = vec_test::load_f(tag + "_neg");
    const Eigen::VectorXd coef = vec_test::load_vd(tag + "_logistic_coef");
    const auto r = sv::logistic_probe(pos, neg, sv::LogisticOptions().lambda(lambda));
    // Two iterative solvers (scikit-learn's L-BFGS at tol 1e-12, steer's Newton steps) on the
    // same strictly convex problem: they agree to their stopping rules, not to rounding.
    // Weights within 1e-3 (relative), so cos >= 0.999 is implied with room.
    EXPECT_GE(vec_test::abs_cos(r.direction, coef), 0.999);
    EXPECT_GT(r.direction.cast<double>().dot(coef), 0.0);  // points to the positive set
    // Same optimum, not just the same axis: weights and intercept agree closely.
    EXPECT_LE((r.weights - coef).norm(), 1e-3 * coef.norm());
    EXPECT_NEAR(r.intercept, vec_test::load_scalar(tag + "_logistic_intercept"), 1e-3);
    EXPECT_NEAR(r.train_accuracy, vec_test::load_scalar(tag + "_logistic_accuracy"), 1e-12);
    EXPECT_GE(r.iterations, 2);
  }
}

TEST(VecProbe, LdaMatchesSklearn) {
  const double shrinkage = vec_test::load_scalar("probe_shrinkage");
  for (const std::string tag : {"probe_tall", "probe_wide"}) {
    SCOPED_TRACE(tag);
    const Eigen::MatrixXf pos = vec_test::load_f(tag + "_pos");
    const Eigen::MatrixXf neg = vec_test::load_f(tag + "_neg");
    const Eigen::VectorXd coef = vec_test::load_vd(tag + "_lda_coef");
    const auto r = sv::lda_probe(pos, neg, sv::LdaOptions().shrinkage(shrinkage));
    // A closed form (shrunk covariance solve) in double on both sides: 1e-6 relative covers the
    // condition number of the shrunk covariance (<= 1/shrinkage * spread, ~1e2) times 1e-14.
    // Accuracy is a count: equal.
    EXPECT_GE(vec_test::abs_cos(r.direction, coef), 0.999);
    EXPECT_LE((r.weights - coef).norm(), 1e-6 * coef.norm());
    const double intercept = vec_test::load_scalar(tag + "_lda_intercept");
    EXPECT_NEAR(r.intercept, intercept, 1e-6 * (1.0 + std::abs(intercept)));
    EXPECT_NEAR(r.train_accuracy, vec_test::load_scalar(tag + "_lda_accuracy"), 1e-12);
  }
}

TEST(VecProbe, BadInput) {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(10, 4);
  EXPECT_STEER_ERROR(sv::logistic_probe(a, a, sv::LogisticOptions().lambda(0.0)),
                     "logistic_probe: LogisticOptions::lambda must be > 0, got 0", "hint");
  EXPECT_STEER_ERROR(sv::logistic_probe(a, a), "logistic_probe: expected non-zero finite weights",
                     "identical");
  EXPECT_STEER_ERROR(sv::logistic_probe(a, Eigen::MatrixXf::Random(10, 5)), "logistic_probe:",
                     "same d_model", "got 4 and 5");
  EXPECT_STEER_ERROR(sv::lda_probe(a, Eigen::MatrixXf(0, 4)),
                     "lda_probe: negative must be a non-empty set");
  EXPECT_STEER_ERROR(sv::lda_probe(a, a, sv::LdaOptions().shrinkage(1.5)),
                     "lda_probe: LdaOptions::shrinkage must be in [0, 1], got 1.5");
  const Eigen::MatrixXf wide_a = Eigen::MatrixXf::Random(5, 20);
  const Eigen::MatrixXf wide_b = Eigen::MatrixXf::Random(5, 20);
  EXPECT_STEER_ERROR(sv::lda_probe(wide_a, wide_b, sv::LdaOptions().shrinkage(0.0)),
                     "lda_probe: the within-class covariance of 10 rows in d_model=20 is singular",
                     "hint");
  Eigen::MatrixXf nan = a;
  nan(0, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(sv::lda_probe(nan, a), "lda_probe: positive must contain finite values");
}
