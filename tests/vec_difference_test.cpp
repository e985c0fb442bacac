// steer::vec differences and means: closed forms, NumPy references, bad input.
#include <gtest/gtest.h>

#include "steer/vec/difference.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

TEST(VecDifference, OnePairIsPositiveMinusNegative) {
  Eigen::VectorXf p(3), n(3);
  p << 1.0f, 2.0f, 3.0f;
  n << 0.5f, -2.0f, 3.0f;
  const Eigen::VectorXf d = sv::difference(p, n);
  EXPECT_FLOAT_EQ(d(0), 0.5f);
  EXPECT_FLOAT_EQ(d(1), 4.0f);
  EXPECT_FLOAT_EQ(d(2), 0.0f);
}

TEST(VecDifference, MeanDifferenceOfUnequalSets) {
  Eigen::MatrixXf p(2, 2), n(3, 2);
  p << 1, 2, 3, 4;          // mean (2, 3)
  n << 0, 0, 0, 3, 3, 0;    // mean (1, 1)
  const Eigen::VectorXf v = sv::mean_difference(p, n);
  EXPECT_FLOAT_EQ(v(0), 1.0f);
  EXPECT_FLOAT_EQ(v(1), 2.0f);
}

TEST(VecDifference, MeanAccumulatesInDouble) {
  // 1e6 rows of 1 + 1e-7 steps: float32 accumulation would drift by ~1e-2.
  const int n = 1000000;
  Eigen::MatrixXf x(n, 1);
  for (int i = 0; i < n; ++i) x(i, 0) = 1.0f + static_cast<float>(i % 10) * 0.1f;
  const Eigen::VectorXd m = sv::mean(x);
  double expected = 0.0;
  for (int i = 0; i < n; ++i) expected += static_cast<double>(x(i, 0));
  EXPECT_NEAR(m(0), expected / n, 1e-12);
}

TEST(VecDifference, MatchesNumpy) {
  const Eigen::MatrixXf p = vec_test::load_f("wide_pos");
  const Eigen::MatrixXf n = vec_test::load_f("wide_neg");
  const Eigen::VectorXd expected = vec_test::load_vd("wide_mean_diff");
  const Eigen::VectorXf v = sv::mean_difference(p, n);
  ASSERT_EQ(v.size(), expected.size());
  // Means accumulate in double; only the float32 result is rounded: u * |v_i| <= 6e-8 * 2 here
  // (entries below 2). 1e-6 leaves 8x; a missing 1/N or a swapped sign is off by O(1).
  EXPECT_LE((v.cast<double>() - expected).cwiseAbs().maxCoeff(), 1e-6);
  const Eigen::MatrixXf diffs = sv::paired_differences(p, n);
  EXPECT_LE((sv::mean(diffs) - expected).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(VecDifference, BadInputNamesTheProblem) {
  Eigen::MatrixXf a = Eigen::MatrixXf::Ones(4, 8);
  Eigen::MatrixXf b = Eigen::MatrixXf::Ones(4, 6);
  EXPECT_STEER_ERROR(sv::mean_difference(a, b), "mean_difference:", "same d_model",
                     "got 8 and 6", "hint");
  EXPECT_STEER_ERROR(sv::mean_difference(Eigen::MatrixXf(0, 8), a), "mean_difference:",
                     "positive must be a non-empty set", "got 0 x 8");
  Eigen::MatrixXf c = a;
  c(2, 5) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(sv::mean_difference(a, c), "negative must contain finite values",
                     "got NaN at row 2, column 5");
  c(2, 5) = std::numeric_limits<float>::infinity();
  EXPECT_STEER_ERROR(sv::mean(c), "mean: rows", "got Inf at row 2, column 5");
  EXPECT_STEER_ERROR(sv::paired_differences(a, Eigen::MatrixXf::Ones(3, 8)),
                     "paired_differences:", "same number of pairs", "got 4 and 3");
  EXPECT_STEER_ERROR(sv::difference(Eigen::VectorXf::Ones(3), Eigen::VectorXf::Ones(4)),
                     "difference:", "got 3 and 4");
}

TEST(VecDifference, RowMajorBuffersBind) {
  // A LibTorch tensor (N, d) is a row-major buffer; mapped, it binds to RowsRef by one copy.
  const float positive[] = {1, 2, 3, 4, 5, 6};   // 2 x 3, rows (1 2 3), (4 5 6)
  const float negative[] = {0, 0, 0, 1, 1, 1};   // rows (0 0 0), (1 1 1)
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> p(positive, 2, 3);
  const Eigen::Map<const RowMajor> n(negative, 2, 3);
  const Eigen::VectorXf v = sv::mean_difference(p, n);
  EXPECT_FLOAT_EQ(v(0), 2.0f);  // (1 + 4)/2 - (0 + 1)/2
  EXPECT_FLOAT_EQ(v(1), 3.0f);
  EXPECT_FLOAT_EQ(v(2), 4.0f);
  const Eigen::MatrixXf d = sv::paired_differences(p, n);
  EXPECT_FLOAT_EQ(d(1, 2), 5.0f);
}
