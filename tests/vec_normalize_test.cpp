// steer::vec normalization: unit, given norm, mean activation norm; zero vectors rejected.
#include <gtest/gtest.h>

#include "steer/vec/normalize.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

TEST(VecNormalize, UnitAndGivenNorm) {
  Eigen::VectorXf v(2);
  v << 3.0f, 4.0f;
  const Eigen::VectorXf u = sv::normalize(v);
  EXPECT_FLOAT_EQ(u(0), 0.6f);
  EXPECT_FLOAT_EQ(u(1), 0.8f);
  const Eigen::VectorXf w = sv::normalize_to(v, 10.0);
  EXPECT_FLOAT_EQ(w(0), 6.0f);
  EXPECT_FLOAT_EQ(w(1), 8.0f);
}

TEST(VecNormalize, MeanNormOfRows) {
  Eigen::MatrixXf x(3, 2);
  x << 3, 4, 0, 1, 6, 8;  // norms 5, 1, 10
  EXPECT_DOUBLE_EQ(sv::mean_norm(x), 16.0 / 3.0);
  Eigen::VectorXf v(2);
  v << 0.0f, -2.0f;
  const Eigen::VectorXf w = sv::normalize_to_mean_norm(v, x);
  EXPECT_NEAR(w.cast<double>().norm(), 16.0 / 3.0, 1e-6);
  EXPECT_LT(w(1), 0.0f);
}

TEST(VecNormalize, MeanNormMatchesNumpy) {
  const Eigen::MatrixXf p = vec_test::load_f("wide_pos");
  const double expected = vec_test::load_scalar("wide_mean_norm_pos");
  EXPECT_NEAR(sv::mean_norm(p), expected, 1e-9 * expected);
}

TEST(VecNormalize, ZeroAndBadInputs) {
  EXPECT_STEER_ERROR(sv::normalize(Eigen::VectorXf::Zero(5)), "normalize:",
                     "cannot normalize a zero vector", "d_model=5", "hint");
  EXPECT_STEER_ERROR(sv::normalize_to(Eigen::VectorXf::Zero(5), 2.0), "normalize_to:",
                     "zero vector");
  EXPECT_STEER_ERROR(sv::normalize_to(Eigen::VectorXf::Ones(5), -1.0), "normalize_to:",
                     "norm must be finite and >= 0, got -1");
  EXPECT_STEER_ERROR(sv::normalize_to_mean_norm(Eigen::VectorXf::Ones(5),
                                                Eigen::MatrixXf::Ones(3, 4)),
                     "normalize_to_mean_norm:", "same d_model", "got 5 and 4");
  EXPECT_STEER_ERROR(sv::normalize_to_mean_norm(Eigen::VectorXf::Zero(4),
                                                Eigen::MatrixXf::Ones(3, 4)),
                     "normalize_to_mean_norm:", "zero vector");
  Eigen::VectorXf nan = Eigen::VectorXf::Ones(3);
  nan(1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(sv::normalize(nan), "normalize: v must contain finite values",
                     "NaN at index 1");
}
