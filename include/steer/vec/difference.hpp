// Differences of activations: one pair, paired sets, and the mean difference of two sets
// (the "diff-in-means" / CAA direction), accumulated in float64.
#pragma once

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// `positive - negative` for one pair of activations, computed in float64 and rounded once.
inline Eigen::VectorXf difference(const VectorRef& positive, const VectorRef& negative) {
  detail::check_vector("difference", "positive", positive);
  detail::check_vector("difference", "negative", negative);
  detail::check_same_d("difference", "positive", positive.size(), "negative", negative.size());
  return (positive.cast<double>() - negative.cast<double>()).cast<float>();
}

/// Column mean of a set (one vector per row), accumulated and returned in float64.
inline Eigen::VectorXd mean(const RowsRef& rows) {
  detail::check_rows("mean", "rows", rows);
  return detail::column_sums(rows) / static_cast<double>(rows.rows());
}

/// Row i is `positive.row(i) - negative.row(i)`: the differences of N contrastive pairs.
inline Eigen::MatrixXf paired_differences(const RowsRef& positive, const RowsRef& negative) {
  detail::check_rows("paired_differences", "positive", positive);
  detail::check_rows("paired_differences", "negative", negative);
  detail::check_same_d("paired_differences", "positive", positive.cols(), "negative",
                       negative.cols());
  STEER_CHECK(positive.rows() == negative.rows(),
              "paired_differences: positive and negative must hold the same number of pairs, got ",
              positive.rows(), " and ", negative.rows(),
              " rows (hint: for unpaired sets use mean_difference)");
  return (positive.cast<double>() - negative.cast<double>()).cast<float>();
}

/// `mean(positive) - mean(negative)`, accumulated in float64; the sets may differ in size.
/// Example: `Eigen::VectorXf v = steer::vec::mean_difference(harmful, harmless);`
inline Eigen::VectorXf mean_difference(const RowsRef& positive, const RowsRef& negative) {
  detail::check_rows("mean_difference", "positive", positive);
  detail::check_rows("mean_difference", "negative", negative);
  detail::check_same_d("mean_difference", "positive", positive.cols(), "negative",
                       negative.cols());
  const Eigen::VectorXd mp = detail::column_sums(positive) / static_cast<double>(positive.rows());
  const Eigen::VectorXd mn = detail::column_sums(negative) / static_cast<double>(negative.rows());
  return (mp - mn).cast<float>();
}

}  // namespace steer::vec
