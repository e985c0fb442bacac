// Separation: a direction read as a classifier, on hand-made sets with known answers.
#include <gtest/gtest.h>
#include <steer/vec/separation.hpp>

#include "test_support.hpp"

namespace {

using steer::vec::accuracy_at;
using steer::vec::separation;

TEST(VecSeparation, MidpointThresholdAndAccuracyByHand) {
  // Projections on e0: positive {3, 1, -1}, negative {-3, -1}: means 1 and -2, threshold -0.5.
  Eigen::MatrixXf pos(3, 2), neg(2, 2);
  pos << 3, 7, 1, -2, -1, 0;
  neg << -3, 1, -1, 5;
  const Eigen::VectorXf e0 = Eigen::Vector2f(1, 0);
  const auto s = separation(e0, pos, neg);
  EXPECT_DOUBLE_EQ(s.positive_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.negative_mean, -2.0);
  EXPECT_DOUBLE_EQ(s.threshold, -0.5);
  EXPECT_DOUBLE_EQ(s.accuracy, 4.0 / 5.0);  // -1 is on the negative side
  // A threshold from elsewhere (held-out use), and the reversed direction.
  EXPECT_DOUBLE_EQ(accuracy_at(e0, -2.0, pos, neg), 4.0 / 5.0);  // -3 below, -1 above: 3 + 1
  const Eigen::VectorXf reversed = -e0;
  EXPECT_DOUBLE_EQ(separation(reversed, pos, neg).accuracy, 1.0 / 5.0);
}

TEST(VecSeparation, BadInput) {
  Eigen::MatrixXf pos = Eigen::MatrixXf::Ones(2, 3), neg = Eigen::MatrixXf::Zero(2, 2);
  const Eigen::VectorXf v = Eigen::VectorXf::Ones(3);
  EXPECT_STEER_ERROR(separation(v, pos, neg), "separation: direction and negative must have the "
                     "same d_model, got 3 and 2");
  Eigen::VectorXf nan = v;
  nan(1) = std::nanf("");
  EXPECT_STEER_ERROR(separation(nan, pos, pos), "separation: direction must contain finite "
                     "values, got NaN at index 1");
}

}  // namespace
