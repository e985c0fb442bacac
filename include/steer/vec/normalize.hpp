// Normalization of a direction: to unit norm, to a given norm, or to the mean activation norm
// of a set, so that a coefficient means "this many typical activations" at any layer.
#pragma once

#include <cmath>

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// Mean L2 norm of the rows of a set (float64): the typical activation norm at a layer.
inline double mean_norm(const RowsRef& activations) {
  detail::check_rows("mean_norm", "activations", activations);
  Eigen::ArrayXd squares = Eigen::ArrayXd::Zero(activations.rows());
  for (Eigen::Index j = 0; j < activations.cols(); ++j) {
    squares += activations.col(j).cast<double>().array().square();
  }
  return squares.sqrt().mean();
}

/// `v` scaled to L2 norm `norm` (float64 arithmetic). Throws for a zero vector or norm < 0.
/// Example: `auto v = steer::vec::normalize_to(direction, /*norm=*/8.0);`
inline Eigen::VectorXf normalize_to(const VectorRef& v, double norm) {
  detail::check_vector("normalize_to", "v", v);
  STEER_CHECK(std::isfinite(norm) && norm >= 0.0,
              "normalize_to: norm must be finite and >= 0, got ", norm);
  const Eigen::VectorXd vd = v.cast<double>();
  const double length = vd.norm();
  STEER_CHECK(length > 0.0, "normalize_to: cannot normalize a zero vector (d_model=", v.size(),
              ", norm 0) (hint: were the positive and negative sets identical?)");
  return (vd * (norm / length)).cast<float>();
}

/// `v / |v|`. Throws for a zero vector.
inline Eigen::VectorXf normalize(const VectorRef& v) {
  detail::check_vector("normalize", "v", v);
  const Eigen::VectorXd vd = v.cast<double>();
  const double length = vd.norm();
  STEER_CHECK(length > 0.0, "normalize: cannot normalize a zero vector (d_model=", v.size(),
              ", norm 0) (hint: were the positive and negative sets identical?)");
  return (vd / length).cast<float>();
}

/// `v` scaled to the mean L2 norm of `activations` (rows), so that coefficient 1 adds one
/// typical activation's worth. Example:
/// `auto v = steer::vec::normalize_to_mean_norm(direction, layer_activations);`
inline Eigen::VectorXf normalize_to_mean_norm(const VectorRef& v, const RowsRef& activations) {
  detail::check_vector("normalize_to_mean_norm", "v", v);
  detail::check_rows("normalize_to_mean_norm", "activations", activations);
  detail::check_same_d("normalize_to_mean_norm", "v", v.size(), "activations",
                       activations.cols());
  const Eigen::VectorXd vd = v.cast<double>();
  const double length = vd.norm();
  STEER_CHECK(length > 0.0, "normalize_to_mean_norm: cannot normalize a zero vector (d_model=",
              v.size(), ", norm 0) (hint: were the positive and negative sets identical?)");
  return (vd * (mean_norm(activations) / length)).cast<float>();
}

}  // namespace steer::vec
