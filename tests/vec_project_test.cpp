// steer::vec projections, Gram-Schmidt and cosine similarity: identities and errors.
#include <gtest/gtest.h>

#include "steer/vec/project.hpp"
#include "vec_fixture.hpp"

namespace sv = steer::vec;

TEST(VecProject, OntoPlusOutIsIdentityAndOrthogonal) {
  const Eigen::VectorXf x = Eigen::VectorXf::Random(50);
  const Eigen::VectorXf dir = Eigen::VectorXf::Random(50) * 7.0f;  // not unit
  const Eigen::VectorXf on = sv::project_onto(x, dir);
  const Eigen::VectorXf off = sv::project_out(x, dir);
  // float32 arithmetic on entries ~1: a few u = 6e-8 each; 1e-6 and 1e-5 (dot products of d
  // terms, error up to d * u) leave room, a wrong projection is off by O(1).
  EXPECT_LE((on + off - x).cwiseAbs().maxCoeff(), 1e-6f);
  EXPECT_NEAR(off.cast<double>().dot(dir.cast<double>()), 0.0, 1e-5);
  EXPECT_NEAR(sv::cosine_similarity(on, dir) * sv::cosine_similarity(on, dir), 1.0, 1e-10);
  // Idempotent: projecting out twice changes nothing.
  EXPECT_LE((sv::project_out(off, dir) - off).cwiseAbs().maxCoeff(), 1e-6f);
}

TEST(VecProject, KnownValues) {
  Eigen::VectorXf x(3), e0(3);
  x << 2.0f, -3.0f, 5.0f;
  e0 << 4.0f, 0.0f, 0.0f;
  const Eigen::VectorXf on = sv::project_onto(x, e0);
  EXPECT_FLOAT_EQ(on(0), 2.0f);
  EXPECT_FLOAT_EQ(on(1), 0.0f);
  EXPECT_FLOAT_EQ(sv::project_out(x, e0)(0), 0.0f);
  Eigen::VectorXf a(2), b(2);
  a << 1.0f, 0.0f;
  b << 1.0f, 1.0f;
  EXPECT_NEAR(sv::cosine_similarity(a, b), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(sv::cosine_similarity(a, -a), -1.0, 1e-12);
}

TEST(VecProject, GramSchmidtGivesOrthonormalRowsSpanningTheInput) {
  const Eigen::MatrixXf dirs = Eigen::MatrixXf::Random(4, 30);
  const Eigen::MatrixXf q = sv::orthonormalize(dirs);
  const Eigen::MatrixXd gram = q.cast<double>() * q.cast<double>().transpose();
  EXPECT_LE((gram - Eigen::MatrixXd::Identity(4, 4)).cwiseAbs().maxCoeff(), 1e-6);
  // First row is the first direction normalized (order kept).
  EXPECT_GE(q.row(0).cast<double>().dot(dirs.row(0).cast<double>()) /
                dirs.row(0).cast<double>().norm(),
            1.0 - 1e-6);
  // Each input row lies in the span: projecting it out of the subspace leaves ~0.
  for (int i = 0; i < 4; ++i) {
    const Eigen::VectorXf r = sv::project_out_subspace(dirs.row(i).transpose(), dirs);
    EXPECT_LE(r.norm(), 1e-5f * dirs.row(i).norm());
    const Eigen::VectorXf s = sv::project_onto_subspace(dirs.row(i).transpose(), dirs);
    EXPECT_LE((s - dirs.row(i).transpose()).norm(), 1e-5f * dirs.row(i).norm());
  }
}

TEST(VecProject, SubspaceProjectionOfRows) {
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(10, 20);
  const Eigen::MatrixXf dirs = Eigen::MatrixXf::Random(3, 20);
  const Eigen::MatrixXf ablated = sv::project_out_rows(x, dirs);
  const Eigen::MatrixXd residual = ablated.cast<double>() * dirs.cast<double>().transpose();
  EXPECT_LE(residual.cwiseAbs().maxCoeff(), 1e-5);
  for (int i = 0; i < 10; ++i) {
    const Eigen::VectorXf one = sv::project_out_subspace(x.row(i).transpose(), dirs);
    EXPECT_LE((one - ablated.row(i).transpose()).cwiseAbs().maxCoeff(), 1e-6f);
  }
  // One direction as a 1 x d row equals project_out.
  const Eigen::VectorXf v = dirs.row(0).transpose();
  const Eigen::MatrixXf single = sv::project_out_rows(x, v.transpose());
  EXPECT_LE((single.row(3).transpose() - sv::project_out(x.row(3).transpose(), v))
                .cwiseAbs().maxCoeff(), 1e-6f);
}

TEST(VecProject, DependentDirectionsAreRejected) {
  Eigen::MatrixXf dirs = Eigen::MatrixXf::Random(3, 10);
  dirs.row(2) = 2.0f * dirs.row(0) - dirs.row(1);
  EXPECT_STEER_ERROR(sv::orthonormalize(dirs), "orthonormalize: direction 2",
                     "(nearly) a linear combination of directions 0..1", "hint");
  dirs.row(2).setZero();
  EXPECT_STEER_ERROR(sv::orthonormalize(dirs), "direction 2 is a zero vector");
  EXPECT_STEER_ERROR(sv::orthonormalize(Eigen::MatrixXf::Random(4, 3)), "at most d_model=3",
                     "got 4");
  EXPECT_STEER_ERROR(sv::project_out(Eigen::VectorXf::Ones(3), Eigen::VectorXf::Zero(3)),
                     "project_out: direction must be non-zero");
  EXPECT_STEER_ERROR(sv::project_onto(Eigen::VectorXf::Ones(3), Eigen::VectorXf::Ones(4)),
                     "project_onto:", "same d_model", "got 3 and 4");
  EXPECT_STEER_ERROR(sv::cosine_similarity(Eigen::VectorXf::Ones(3), Eigen::VectorXf::Zero(3)),
                     "cosine_similarity: both vectors must be non-zero");
}
