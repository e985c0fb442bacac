// steer::vec PCA: known principal axis, NumPy / scikit-learn agreement (exact and iterative,
// Gram and covariance paths), sign convention, determinism, bad input.
#include <algorithm>

#include <gtest/gtest.h>

#include "steer/vec/accumulator.hpp"
#include "steer/vec/difference.hpp"
#include "steer/vec/pca.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

namespace {

const sv::PcaMethod kMethods[] = {sv::PcaMethod::exact, sv::PcaMethod::iterative};

const char* name(sv::PcaMethod m) { return m == sv::PcaMethod::exact ? "exact" : "iterative"; }

// Compares components up to sign with the reference and checks steer's sign rule.
void expect_matches(const sv::PcaResult& r, const std::string& prefix,
                    const Eigen::VectorXd& mean_diff, double ratio_tol) {
  const Eigen::MatrixXd comps = vec_test::load_d(prefix + "_components");
  const Eigen::VectorXd ratio = vec_test::load_vd(prefix + "_ratio");
  const Eigen::VectorXd variance = vec_test::load_vd(prefix + "_variance");
  ASSERT_EQ(r.components.rows(), comps.rows());
  // Eigen (no runtime CPU dispatch) in double against LAPACK: components agree to an angle of
  // ~1e-12 / (spectral gap); cos >= 0.999999 (angle 1.4e-3) allows the float32 rounding of the
  // returned components (u * sqrt(d) = 8.5e-7 for d = 200) and iterative PCA's stopping rule.
  // Ratios and variances are double: 1e-6 relative is far above their rounding.
  for (Eigen::Index i = 0; i < comps.rows(); ++i) {
    EXPECT_GE(vec_test::abs_cos(r.components.row(i).transpose(), comps.row(i).transpose()),
              0.999999) << prefix << " component " << i;
    EXPECT_NEAR(r.explained_variance_ratio(i), ratio(i), ratio_tol * ratio(i)) << prefix;
    EXPECT_NEAR(r.explained_variance(i), variance(i), ratio_tol * variance(i)) << prefix;
    EXPECT_GT(r.components.row(i).cast<double>().dot(mean_diff), 0.0) << prefix << " sign";
    EXPECT_NEAR(r.components.row(i).cast<double>().norm(), 1.0, 1e-6);
  }
}

}  // namespace

TEST(VecPca, KnownPrincipalAxis) {
  // Differences spread along axis e_3 with mean along +e_3, small noise elsewhere.
  const int n = 40, d = 10;
  Eigen::MatrixXf pos = Eigen::MatrixXf::Zero(n, d), neg = Eigen::MatrixXf::Zero(n, d);
  for (int i = 0; i < n; ++i) {
    pos(i, 3) = 1.0f + 3.0f * static_cast<float>(i % 5);
    pos(i, i % d) += 0.01f;
  }
  for (auto method : kMethods) {
    const auto r = sv::pca_diff(pos, neg, sv::PcaOptions().method(method));
    EXPECT_GE(r.direction()(3), 0.9999f) << name(method);  // +e_3, never -e_3
    EXPECT_GT(r.explained_variance_ratio(0), 0.999) << name(method);
    EXPECT_EQ(r.method, method);
  }
}

TEST(VecPca, SignFollowsTheMeanDifference) {
  const Eigen::MatrixXf pos = vec_test::load_f("wide_pos");
  const Eigen::MatrixXf neg = vec_test::load_f("wide_neg");
  const auto forward = sv::pca_diff(pos, neg);
  const auto backward = sv::pca_diff(neg, pos);
  EXPECT_GE(forward.direction().cast<double>().dot(backward.direction().cast<double>()),
            -1.0 - 1e-6);
  EXPECT_LE(forward.direction().cast<double>().dot(backward.direction().cast<double>()),
            -1.0 + 1e-6);  // swapping the sets flips the direction, exactly
}

TEST(VecPca, MatchesNumpyAndSklearn) {
  for (const std::string tag : {"wide", "tall"}) {
    const Eigen::MatrixXf pos = vec_test::load_f(tag + "_pos");
    const Eigen::MatrixXf neg = vec_test::load_f(tag + "_neg");
    const Eigen::VectorXd mean_diff = vec_test::load_vd(tag + "_mean_diff");
    for (auto method : kMethods) {
      SCOPED_TRACE(tag + " " + name(method));
      const auto opts = sv::PcaOptions().k(3).method(method);
      expect_matches(sv::pca_diff(pos, neg, opts), tag + "_diff", mean_diff, 1e-6);
      expect_matches(sv::pca_diff(pos, neg, sv::PcaOptions(opts).center(true)), tag + "_diffc",
                     mean_diff, 1e-6);
      // repeng's pca_center goes through scikit-learn's PCA, which divides by 2N - 1.
      expect_matches(sv::pca_center(pos, neg, sv::PcaOptions(opts).center(true)),
                     tag + "_center", mean_diff, 1e-6);
      // Uncentred pca_center has pca_diff's components (rows are +-diff/2).
      const auto c = sv::pca_center(pos, neg, opts);
      const auto p = sv::pca_diff(pos, neg, opts);
      EXPECT_GE(c.direction().cast<double>().dot(p.direction().cast<double>()), 0.999999);
    }
  }
}

// Streamed (extract's streaming mode, steer::vec form): the paired differences added in
// chunks of 7 pairs to two accumulators, merged (Chan et al.), then decomposed as one d x d
// second moment, give NumPy's components, and the in-memory exact pca_diff / pca_center of the
// rows within float64 rounding. Both sides solve a float64 symmetric eigenproblem (N x N Gram
// or d x d moment) of the same data: eigenvectors differ by ~1e-16 x (largest eigenvalue /
// eigengap), far below the float32 rounding of the returned components (<= 6e-8 per entry),
// so entries agree to 1e-7; eigenvalues to 1e-12 relative (float64 rounding of sums of ~1e3
// terms, with margin).
TEST(VecPca, StreamedDifferencesEqualThePcaOfTheRows) {
  for (const std::string tag : {"wide", "tall"}) {
    SCOPED_TRACE(tag);
    const Eigen::MatrixXf pos = vec_test::load_f(tag + "_pos");
    const Eigen::MatrixXf neg = vec_test::load_f(tag + "_neg");
    const Eigen::VectorXd mean_diff = vec_test::load_vd(tag + "_mean_diff");
    sv::CovarianceAccumulator even(pos.cols()), odd(pos.cols());
    for (Eigen::Index start = 0; start < pos.rows(); start += 7) {
      const auto rows = std::min<Eigen::Index>(7, pos.rows() - start);
      ((start / 7) % 2 == 0 ? even : odd)
          .add_differences(pos.middleRows(start, rows), neg.middleRows(start, rows));
    }
    even.merge(odd);
    const auto compare = [&](const sv::PcaResult& streamed, const sv::PcaResult& rows) {
      ASSERT_EQ(streamed.components.rows(), rows.components.rows());
      EXPECT_LE((streamed.components - rows.components).cwiseAbs().maxCoeff(), 1e-7);
      for (Eigen::Index i = 0; i < rows.explained_variance.size(); ++i) {
        EXPECT_NEAR(streamed.explained_variance(i), rows.explained_variance(i),
                    1e-12 * rows.explained_variance(i));
        EXPECT_NEAR(streamed.explained_variance_ratio(i), rows.explained_variance_ratio(i),
                    1e-12);
      }
    };
    for (const bool center : {false, true}) {
      const auto opts = sv::PcaOptions().k(3).center(center).method(sv::PcaMethod::exact);
      const auto streamed = sv::pca_diff(even, opts);
      expect_matches(streamed, tag + (center ? "_diffc" : "_diff"), mean_diff, 1e-6);
      compare(streamed, sv::pca_diff(pos, neg, opts));
      compare(sv::pca_center(even, opts), sv::pca_center(pos, neg, opts));
    }
    expect_matches(sv::pca_center(even, sv::PcaOptions().k(3).center(true)), tag + "_center",
                   mean_diff, 1e-6);
  }
  sv::CovarianceAccumulator empty(4), some(4);
  EXPECT_STEER_ERROR(sv::pca_diff(empty), "pca_diff: the accumulator holds no differences");
  some.add_differences(Eigen::MatrixXf::Random(6, 4), Eigen::MatrixXf::Random(6, 4));
  EXPECT_STEER_ERROR(sv::pca_diff(some, sv::PcaOptions().method(sv::PcaMethod::iterative)),
                     "pca_diff: PcaMethod::iterative works on the rows");
  EXPECT_STEER_ERROR(some.add_differences(Eigen::MatrixXf::Random(6, 4),
                                          Eigen::MatrixXf::Random(5, 4)),
                     "add_differences: expected two batches of the same number of rows");
}

TEST(VecPca, DeterministicAcrossRunsAndMethods) {
  const Eigen::MatrixXf pos = vec_test::load_f("wide_pos");
  const Eigen::MatrixXf neg = vec_test::load_f("wide_neg");
  const auto first = sv::pca_diff(pos, neg, sv::PcaOptions().k(2).method(sv::PcaMethod::iterative));
  for (int run = 0; run < 3; ++run) {
    const auto again =
        sv::pca_diff(pos, neg, sv::PcaOptions().k(2).method(sv::PcaMethod::iterative));
    EXPECT_TRUE((again.components.array() == first.components.array()).all());
    EXPECT_EQ(again.iterations, first.iterations);
  }
  const auto exact = sv::pca_diff(pos, neg, sv::PcaOptions().k(2).method(sv::PcaMethod::exact));
  for (int i = 0; i < 2; ++i) {
    EXPECT_GE(exact.components.row(i).cast<double>().dot(first.components.row(i).cast<double>()),
              0.999999);  // same sign, not just the same axis
  }
  // A different seed converges to the same components.
  const auto seeded = sv::pca_diff(
      pos, neg, sv::PcaOptions().k(2).method(sv::PcaMethod::iterative).seed(12345));
  EXPECT_GE(seeded.direction().cast<double>().dot(first.direction().cast<double>()), 0.999999);
}

TEST(VecPca, PlainPcaOrientsByTheMeanRow) {
  Eigen::MatrixXf x = Eigen::MatrixXf::Random(30, 6);
  x.col(1).array() += 10.0f;
  const auto r = sv::pca(x);
  EXPECT_GT(r.direction()(1), 0.99f);
}

TEST(VecPca, BadInput) {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(5, 8);
  const Eigen::MatrixXf b = Eigen::MatrixXf::Random(5, 8);
  EXPECT_STEER_ERROR(sv::pca_diff(a, b, sv::PcaOptions().k(6)), "pca_diff: k must be in [1, 5]",
                     "got k=6", "hint");
  EXPECT_STEER_ERROR(sv::pca_diff(a, b, sv::PcaOptions().k(5).center(true)),
                     "pca_diff: k must be in [1, 4]", "centred", "N - 1");
  EXPECT_STEER_ERROR(sv::pca_diff(a, a), "pca_diff: the data is all zeros", "identical");
  EXPECT_STEER_ERROR(sv::pca_diff(a, Eigen::MatrixXf::Random(4, 8)), "pca_diff:",
                     "same number of pairs", "got 5 and 4");
  EXPECT_STEER_ERROR(sv::pca_center(a, Eigen::MatrixXf::Random(5, 7)), "pca_center:",
                     "same d_model", "got 8 and 7");
  EXPECT_STEER_ERROR(sv::pca(Eigen::MatrixXf(0, 3)), "pca: rows must be a non-empty set");
  // Rank 1 data asked for 2 components: both methods report the numerical rank.
  Eigen::MatrixXf rank1(6, 8);
  for (int i = 0; i < 6; ++i) rank1.row(i) = static_cast<float>(i + 1) * a.row(0);
  for (auto method : kMethods) {
    EXPECT_STEER_ERROR(sv::pca(rank1, sv::PcaOptions().k(2).method(method)),
                       "pca: k=2 exceeds the numerical rank", "component 1",
                       "spans only 1 direction");
  }
  Eigen::MatrixXf bad = a;
  bad(1, 1) = std::numeric_limits<float>::infinity();
  EXPECT_STEER_ERROR(sv::pca_diff(a, bad), "pca_diff: negative must contain finite values",
                     "Inf at row 1, column 1");
  EXPECT_STEER_ERROR(sv::pca(Eigen::MatrixXf::Random(200, 100),
                             sv::PcaOptions().method(sv::PcaMethod::iterative).max_iterations(2)),
                     "pca: iterative PCA did not converge in max_iterations=2", "hint");
}
