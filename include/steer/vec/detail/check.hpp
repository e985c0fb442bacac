// Internal argument checks of steer::vec (shape, emptiness, finiteness), each throwing
// steer::Error with a message that names the call, what was expected and what was received.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec::detail {

inline const char* non_finite_name(float value) {
  return std::isnan(value) ? "NaN" : "Inf";
}

/// A non-empty set (N >= 1 rows, d >= 1 columns) of finite values.
inline void check_rows(const char* call, const char* name, const RowsRef& x) {
  STEER_CHECK(x.rows() > 0 && x.cols() > 0, call, ": ", name,
              " must be a non-empty set of vectors (N >= 1 rows x d_model >= 1 columns), got ",
              x.rows(), " x ", x.cols(), " (hint: did the activation capture select no positions?)");
  if (!x.allFinite()) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        if (!std::isfinite(x(i, j))) {
          throw Error(steer::detail::concat(
              call, ": ", name, " must contain finite values, got ", non_finite_name(x(i, j)),
              " at row ", i, ", column ", j,
              " (hint: float16 overflow in the activations, or an uninitialized buffer?)"));
        }
      }
    }
  }
}

/// A non-empty vector of finite values.
inline void check_vector(const char* call, const char* name, const VectorRef& v) {
  STEER_CHECK(v.size() > 0, call, ": ", name, " must have d_model >= 1 values, got an empty vector");
  if (!v.allFinite()) {
    for (Eigen::Index i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v(i))) {
        throw Error(steer::detail::concat(call, ": ", name, " must contain finite values, got ",
                                          non_finite_name(v(i)), " at index ", i,
                                          " (hint: a vector divided by a zero norm?)"));
      }
    }
  }
}

/// Two operands with the same d_model.
inline void check_same_d(const char* call, const char* name_a, Eigen::Index d_a,
                         const char* name_b, Eigen::Index d_b) {
  STEER_CHECK(d_a == d_b, call, ": ", name_a, " and ", name_b,
              " must have the same d_model, got ", d_a, " and ", d_b,
              " (hint: activations from different layers' widths or different models?)");
}

/// Column sums of a float32 set, accumulated in float64.
inline Eigen::VectorXd column_sums(const RowsRef& x) {
  Eigen::VectorXd sums(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    sums(j) = x.col(j).cast<double>().sum();
  }
  return sums;
}

}  // namespace steer::vec::detail
