// Separation: how well one direction tells two sets apart, by projecting both on it and
// thresholding (training threshold at the midpoint of the projected means; held-out accuracy).
#pragma once

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// A direction read as a classifier: score(x) = direction . x, positive when score > threshold.
struct Separation {
  /// Midpoint of the mean projections of the two sets.
  double threshold = 0.0;
  /// Mean projection of each set on the direction (positive set first).
  double positive_mean = 0.0, negative_mean = 0.0;
  /// Share of the rows of both sets on their side of the threshold, in [0, 1].
  double accuracy = 0.0;
};

/// Share of rows on their side of `threshold` along `direction` (positive rows above).
/// Use it for held-out rows with the threshold of `separation` on the training rows.
/// Example: `double a = steer::vec::accuracy_at(v, fit.threshold, test_pos, test_neg);`
inline double accuracy_at(const VectorRef& direction, double threshold, const RowsRef& positive,
                          const RowsRef& negative) {
  detail::check_vector("accuracy_at", "direction", direction);
  detail::check_rows("accuracy_at", "positive", positive);
  detail::check_rows("accuracy_at", "negative", negative);
  detail::check_same_d("accuracy_at", "direction", direction.size(), "positive", positive.cols());
  detail::check_same_d("accuracy_at", "direction", direction.size(), "negative", negative.cols());
  const Eigen::VectorXd d = direction.cast<double>();
  const Eigen::VectorXd p = positive.cast<double>() * d;
  const Eigen::VectorXd n = negative.cast<double>() * d;
  const auto right = (p.array() > threshold).count() + (n.array() <= threshold).count();
  return static_cast<double>(right) / static_cast<double>(p.size() + n.size());
}

/// Projects both sets on `direction`, puts the threshold at the midpoint of their mean
/// projections and reports the training accuracy. A direction pointing from the negative to
/// the positive set has positive_mean > negative_mean.
/// Example: `auto fit = steer::vec::separation(v, train_pos, train_neg);  // fit.accuracy`
inline Separation separation(const VectorRef& direction, const RowsRef& positive,
                             const RowsRef& negative) {
  detail::check_vector("separation", "direction", direction);
  detail::check_rows("separation", "positive", positive);
  detail::check_rows("separation", "negative", negative);
  detail::check_same_d("separation", "direction", direction.size(), "positive", positive.cols());
  detail::check_same_d("separation", "direction", direction.size(), "negative", negative.cols());
  const Eigen::VectorXd d = direction.cast<double>();
  Separation s;
  s.positive_mean = (positive.cast<double>() * d).mean();
  s.negative_mean = (negative.cast<double>() * d).mean();
  s.threshold = 0.5 * (s.positive_mean + s.negative_mean);
  s.accuracy = accuracy_at(direction, s.threshold, positive, negative);
  return s;
}

}  // namespace steer::vec
