// Projections onto and out of a direction or a subspace, Gram-Schmidt orthonormalization of
// several directions, and cosine similarity. All arithmetic in float64.
#pragma once

#include <cmath>

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {
namespace detail {

/// Unit vector of `direction` in float64; throws for a zero direction.
inline Eigen::VectorXd unit_direction(const char* call, const VectorRef& direction) {
  check_vector(call, "direction", direction);
  Eigen::VectorXd u = direction.cast<double>();
  const double length = u.norm();
  STEER_CHECK(length > 0.0, call, ": direction must be non-zero, got a zero vector (d_model=",
              direction.size(), ")");
  return u / length;
}

/// Rows of the result are an orthonormal basis (float64) of the rows of `directions`, in
/// order, by modified Gram-Schmidt applied twice. Throws when a row's part orthogonal to the
/// rows before it is below `tolerance` times its norm.
inline Eigen::MatrixXd orthonormal_rows(const char* call, const RowsRef& directions,
                                        double tolerance) {
  check_rows(call, "directions", directions);
  STEER_CHECK(tolerance >= 0.0 && tolerance < 1.0, call,
              ": tolerance must be in [0, 1), got ", tolerance);
  const Eigen::Index k = directions.rows();
  STEER_CHECK(k <= directions.cols(), call, ": at most d_model=", directions.cols(),
              " directions can be independent, got ", k);
  Eigen::MatrixXd q = directions.cast<double>();
  for (Eigen::Index i = 0; i < k; ++i) {
    const double original = q.row(i).norm();
    STEER_CHECK(original > 0.0, call, ": direction ", i, " is a zero vector (d_model=",
                directions.cols(), ")");
    for (int pass = 0; pass < 2; ++pass) {
      for (Eigen::Index j = 0; j < i; ++j) {
        q.row(i) -= q.row(j).dot(q.row(i)) * q.row(j);
      }
    }
    const double residual = q.row(i).norm();
    STEER_CHECK(residual > tolerance * original, call, ": direction ", i,
                " is (nearly) a linear combination of directions 0..", i - 1,
                ": expected its part orthogonal to them to exceed ", tolerance,
                " of its norm, got ", residual / original, " (", residual, " of ", original,
                ") (hint: drop the dependent direction, or lower the tolerance)");
    q.row(i) /= residual;
  }
  return q;
}

}  // namespace detail

/// Cosine similarity `a.b / (|a| |b|)` in float64. Throws for a zero vector.
inline double cosine_similarity(const VectorRef& a, const VectorRef& b) {
  detail::check_vector("cosine_similarity", "a", a);
  detail::check_vector("cosine_similarity", "b", b);
  detail::check_same_d("cosine_similarity", "a", a.size(), "b", b.size());
  const Eigen::VectorXd ad = a.cast<double>();
  const Eigen::VectorXd bd = b.cast<double>();
  const double na = ad.norm();
  const double nb = bd.norm();
  STEER_CHECK(na > 0.0 && nb > 0.0, "cosine_similarity: both vectors must be non-zero, got |a|=",
              na, " and |b|=", nb);
  return ad.dot(bd) / (na * nb);
}

/// Component of `x` along `direction` (which need not be unit): `(x.u) u`, u = direction/|direction|.
inline Eigen::VectorXf project_onto(const VectorRef& x, const VectorRef& direction) {
  detail::check_vector("project_onto", "x", x);
  const Eigen::VectorXd u = detail::unit_direction("project_onto", direction);
  detail::check_same_d("project_onto", "x", x.size(), "direction", direction.size());
  return (u.dot(x.cast<double>()) * u).cast<float>();
}

/// `x` with its component along `direction` removed: `x - (x.u) u` (directional ablation).
inline Eigen::VectorXf project_out(const VectorRef& x, const VectorRef& direction) {
  detail::check_vector("project_out", "x", x);
  const Eigen::VectorXd u = detail::unit_direction("project_out", direction);
  detail::check_same_d("project_out", "x", x.size(), "direction", direction.size());
  const Eigen::VectorXd xd = x.cast<double>();
  return (xd - u.dot(xd) * u).cast<float>();
}

/// Orthonormal basis (one direction per row, same order) of the rows of `directions`, by
/// modified Gram-Schmidt in float64 with re-orthogonalization. Throws steer::Error when a
/// direction's part orthogonal to the earlier ones is below `tolerance` of its norm.
/// Example: `Eigen::MatrixXf q = steer::vec::orthonormalize(directions, /*tolerance=*/1e-6);`
inline Eigen::MatrixXf orthonormalize(const RowsRef& directions, double tolerance = 1e-6) {
  return detail::orthonormal_rows("orthonormalize", directions, tolerance).cast<float>();
}

/// Projection of `x` onto the span of the rows of `directions` (orthonormalized first).
inline Eigen::VectorXf project_onto_subspace(const VectorRef& x, const RowsRef& directions) {
  detail::check_vector("project_onto_subspace", "x", x);
  const Eigen::MatrixXd q = detail::orthonormal_rows("project_onto_subspace", directions, 1e-6);
  detail::check_same_d("project_onto_subspace", "x", x.size(), "directions", directions.cols());
  const Eigen::VectorXd coefficients = q * x.cast<double>();
  return (q.transpose() * coefficients).cast<float>();
}

/// `x` minus its projection onto the span of the rows of `directions`.
inline Eigen::VectorXf project_out_subspace(const VectorRef& x, const RowsRef& directions) {
  detail::check_vector("project_out_subspace", "x", x);
  const Eigen::MatrixXd q = detail::orthonormal_rows("project_out_subspace", directions, 1e-6);
  detail::check_same_d("project_out_subspace", "x", x.size(), "directions", directions.cols());
  const Eigen::VectorXd xd = x.cast<double>();
  const Eigen::VectorXd coefficients = q * xd;
  return (xd - q.transpose() * coefficients).cast<float>();
}

/// Every row of `rows` with its projection onto the span of the rows of `directions` removed
/// (a set of activations ablated along one or several directions; one direction: pass
/// `v.transpose()`).
inline Eigen::MatrixXf project_out_rows(const RowsRef& rows, const RowsRef& directions) {
  detail::check_rows("project_out_rows", "rows", rows);
  const Eigen::MatrixXd q = detail::orthonormal_rows("project_out_rows", directions, 1e-6);
  detail::check_same_d("project_out_rows", "rows", rows.cols(), "directions", directions.cols());
  const Eigen::MatrixXd xd = rows.cast<double>();
  const Eigen::MatrixXd coefficients = xd * q.transpose();
  return (xd - coefficients * q).cast<float>();
}

}  // namespace steer::vec
