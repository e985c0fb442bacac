// Argument types of steer::vec: sets of vectors are Eigen float32 matrices with one vector per
// row (rows = samples or directions, columns = d_model); single vectors are float32 columns.
#pragma once

#include <Eigen/Core>

namespace steer::vec {

/// A set of vectors, one per row (N x d_model), float32. Any column-major float matrix or block
/// binds without a copy; a row-major one (e.g. a mapped LibTorch tensor) is copied once.
using RowsRef = Eigen::Ref<const Eigen::MatrixXf>;

/// One vector of d_model float32 values.
using VectorRef = Eigen::Ref<const Eigen::VectorXf>;

}  // namespace steer::vec
