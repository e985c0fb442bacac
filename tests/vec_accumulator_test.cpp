// steer::vec streaming accumulators: NumPy agreement, merge in any order equals one pass.
#include <algorithm>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "steer/vec/accumulator.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

TEST(VecAccumulator, CovarianceMatchesNumpy) {
  const Eigen::MatrixXf x = vec_test::load_f("cov_x");
  const Eigen::VectorXd mean = vec_test::load_vd("cov_mean");
  const Eigen::MatrixXd cov = vec_test::load_d("cov_cov");
  sv::CovarianceAccumulator acc(x.cols(), /*block_rows=*/64);
  acc.add(x.topRows(333));
  acc.add(x.bottomRows(x.rows() - 333));
  EXPECT_EQ(acc.count(), x.rows());
  // Accumulated in double from float32 rows (exact in double): the mean of 1000 rows of size ~10
  // is off by ~1000 * 1.1e-16 * 10 = 1e-12 from NumPy's; 1e-6 allows a float32 result too. The
  // covariance, in double throughout: 1e-9 of its scale is ~1e5 float64 roundings away, and
  // 1e-3 of it (float32 accumulation) would fail.
  EXPECT_LE((acc.mean() - mean).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LE((acc.covariance() - cov).cwiseAbs().maxCoeff(), 1e-9 * cov.cwiseAbs().maxCoeff());
  sv::MeanAccumulator means(x.cols());
  means.add(x);
  EXPECT_LE((means.mean() - mean).cwiseAbs().maxCoeff(), 1e-6);
  const double mean_norm = vec_test::load_scalar("cov_mean_norm");
  EXPECT_NEAR(means.mean_norm(), mean_norm, 1e-12 * mean_norm);
}

TEST(VecAccumulator, MergeInAnyOrderEqualsOnePass) {
  const Eigen::MatrixXf x = vec_test::load_f("cov_x");
  sv::CovarianceAccumulator one_pass(x.cols());
  one_pass.add(x);
  sv::MeanAccumulator one_pass_mean(x.cols());
  one_pass_mean.add(x);
  const std::vector<Eigen::Index> cuts = {0, 1, 17, 250, 251, 600, 999, 1000};
  std::vector<int> order(cuts.size() - 1);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<sv::CovarianceAccumulator> parts;
    std::vector<sv::MeanAccumulator> mean_parts;
    for (int i : order) {
      parts.emplace_back(x.cols(), /*block_rows=*/32);
      parts.back().add(x.middleRows(cuts[i], cuts[i + 1] - cuts[i]));
      mean_parts.emplace_back(x.cols());
      mean_parts.back().add(x.middleRows(cuts[i], cuts[i + 1] - cuts[i]));
    }
    // Tree-shaped merge: pairs, then pairs of pairs.
    while (parts.size() > 1) {
      std::vector<sv::CovarianceAccumulator> next;
      std::vector<sv::MeanAccumulator> next_mean;
      for (size_t i = 0; i < parts.size(); i += 2) {
        if (i + 1 < parts.size()) {
          parts[i + 1].merge(parts[i]);
          mean_parts[i + 1].merge(mean_parts[i]);
        }
        next.push_back(parts[std::min(i + 1, parts.size() - 1)]);
        next_mean.push_back(mean_parts[std::min(i + 1, parts.size() - 1)]);
      }
      parts = next;
      mean_parts = next_mean;
    }
    const auto& merged = parts.front();
    EXPECT_EQ(merged.count(), one_pass.count());
    EXPECT_LE((merged.mean() - one_pass.mean()).cwiseAbs().maxCoeff(),
              1e-12 * one_pass.mean().cwiseAbs().maxCoeff());
    EXPECT_LE((merged.scatter() - one_pass.scatter()).cwiseAbs().maxCoeff(),
              1e-11 * one_pass.scatter().cwiseAbs().maxCoeff());
    EXPECT_LE((mean_parts.front().mean() - one_pass_mean.mean()).cwiseAbs().maxCoeff(), 1e-12 *
              one_pass_mean.mean().cwiseAbs().maxCoeff());
    EXPECT_NEAR(mean_parts.front().mean_norm(), one_pass_mean.mean_norm(),
                1e-12 * one_pass_mean.mean_norm());
  }
}

TEST(VecAccumulator, LargeOffsetIsStable) {
  // Mean 1e4, spread 1: a naive sum-of-squares covariance loses ~8 digits; Chan's does not.
  Eigen::MatrixXf x(4000, 3);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Eigen::Index i = 0; i < x.size(); ++i) x(i) = 1e4f + normal(rng);
  sv::CovarianceAccumulator acc(3, /*block_rows=*/100);
  acc.add(x);
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::MatrixXd c = xd.rowwise() - xd.colwise().mean();
  const Eigen::MatrixXd expected = c.transpose() * c / 3999.0;
  // Entries ~1 from squares of ~1e8: E[x^2] - E[x]^2 in double keeps only ~1e8 * 1.1e-16 * 4000
  // (terms) = 4e-5 absolute; Chan's update keeps ~1e-12. 1e-9 tells them apart.
  EXPECT_LE((acc.covariance() - expected).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(VecAccumulator, BadInput) {
  sv::CovarianceAccumulator acc(4);
  EXPECT_STEER_ERROR(acc.add(Eigen::VectorXf::Ones(4)),
                     "CovarianceAccumulator::add: expected batches of d_model=4 columns, got 4 x 1",
                     "pass v.transpose()");
  EXPECT_STEER_ERROR(acc.mean(), "CovarianceAccumulator::mean: no rows added yet");
  acc.add(Eigen::MatrixXf::Ones(1, 4));
  EXPECT_STEER_ERROR(acc.covariance(), "needs more than ddof=1 rows, got 1");
  EXPECT_STEER_ERROR(acc.merge(sv::CovarianceAccumulator(5)),
                     "CovarianceAccumulator::merge: expected d_model=4, got 5");
  sv::MeanAccumulator means(4);
  Eigen::MatrixXf nan = Eigen::MatrixXf::Ones(2, 4);
  nan(1, 3) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(means.add(nan), "MeanAccumulator::add: batch must contain finite values",
                     "NaN at row 1, column 3");
  EXPECT_STEER_ERROR(means.mean_norm(), "MeanAccumulator::mean_norm: no rows added yet");
  EXPECT_STEER_ERROR(sv::MeanAccumulator(0), "MeanAccumulator: d_model must be >= 1, got 0");
  means.add(Eigen::MatrixXf(0, 4));  // an empty batch is allowed and adds nothing
  EXPECT_EQ(means.count(), 0);
}
