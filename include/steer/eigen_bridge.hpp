// The bridge between LibTorch tensors and Eigen (steer::vec): the one header that knows both.
// Tensor -> Eigen maps without a copy where it can; Eigen -> tensor copies, or adopts the buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include <Eigen/Core>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"

namespace steer {

/// Row-major float32 matrix: the memory layout of a contiguous LibTorch tensor [N, d].
using RowMajorMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// An Eigen view of a tensor [N, d] (one vector per row, as steer::vec takes sets).
/// `tensor` is what `map` points into: the input itself when it was float32, CPU and
/// contiguous (`copied == false`, no copy), otherwise a float32 CPU contiguous copy. The view
/// shares the tensor's storage, so it stays valid as long as this object lives, even when the
/// caller drops its own tensor; writes to the input tensor show through an uncopied view.
/// Passing `map` to a steer::vec function (`RowsRef`, column-major) copies it once there.
struct EigenRows {
  torch::Tensor tensor;
  Eigen::Map<const RowMajorMatrixXf> map;
  bool copied;
};

/// An Eigen view of a tensor [d]; same ownership rules as EigenRows. Binds to
/// steer::vec::VectorRef without a copy.
struct EigenVector {
  torch::Tensor tensor;
  Eigen::Map<const Eigen::VectorXf> map;
  bool copied;
};

namespace detail {

/// `t` as float32, CPU, contiguous; the input itself when it already is.
inline std::pair<torch::Tensor, bool> float_cpu_contiguous(const torch::Tensor& t) {
  if (t.scalar_type() == torch::kFloat32 && t.device().is_cpu() && t.is_contiguous()) {
    return {t, false};
  }
  return {t.detach().to(torch::kCPU, torch::kFloat32).contiguous(), true};
}

}  // namespace detail

/// Views a tensor [N, d] as an Eigen row-major matrix, without copying when it is float32,
/// CPU and contiguous. Example:
/// `auto rows = steer::to_eigen_rows(activations); steer::vec::mean(rows.map);`
inline EigenRows to_eigen_rows(const torch::Tensor& t) {
  STEER_CHECK(t.defined(), "to_eigen_rows: expected a tensor [N, d_model], received an "
              "undefined tensor");
  STEER_CHECK(t.dim() == 2, "to_eigen_rows: expected a tensor [N, d_model], received shape ",
              t.sizes(), " (hint: use to_eigen_vector for one vector [d_model])");
  STEER_CHECK(t.is_floating_point(), "to_eigen_rows: expected a floating-point tensor, received ",
              t.scalar_type());
  auto [tensor, copied] = detail::float_cpu_contiguous(t);
  Eigen::Map<const RowMajorMatrixXf> map(tensor.data_ptr<float>(), tensor.size(0),
                                         tensor.size(1));
  return EigenRows{tensor, map, copied};
}

/// Views a tensor [d] as an Eigen column vector, without copying when it is float32, CPU and
/// contiguous. Example: `auto v = steer::to_eigen_vector(direction); steer::vec::normalize(v.map);`
inline EigenVector to_eigen_vector(const torch::Tensor& t) {
  STEER_CHECK(t.defined(), "to_eigen_vector: expected a tensor [d_model], received an "
              "undefined tensor");
  STEER_CHECK(t.dim() == 1, "to_eigen_vector: expected a tensor [d_model], received shape ",
              t.sizes(), " (hint: use to_eigen_rows for a set [N, d_model])");
  STEER_CHECK(t.is_floating_point(),
              "to_eigen_vector: expected a floating-point tensor, received ", t.scalar_type());
  auto [tensor, copied] = detail::float_cpu_contiguous(t);
  Eigen::Map<const Eigen::VectorXf> map(tensor.data_ptr<float>(), tensor.size(0));
  return EigenVector{tensor, map, copied};
}

/// Copies an Eigen matrix or vector (float or double, any layout or expression) into a new
/// contiguous CPU tensor: [rows] for a column vector, [rows, cols] otherwise, dtype float32 for
/// float and float64 for double. Example: `auto t = steer::to_tensor(steer::vec::normalize(v));`
template <typename Derived>
torch::Tensor to_tensor(const Eigen::MatrixBase<Derived>& m) {
  using Scalar = typename Derived::Scalar;
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "steer::to_tensor takes float or double Eigen matrices");
  const auto dtype = std::is_same_v<Scalar, float> ? torch::kFloat32 : torch::kFloat64;
  if constexpr (Derived::ColsAtCompileTime == 1) {
    auto out = torch::empty({static_cast<int64_t>(m.rows())}, torch::TensorOptions().dtype(dtype));
    Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>(out.template data_ptr<Scalar>(), m.rows()) = m;
    return out;
  } else {
    auto out = torch::empty({static_cast<int64_t>(m.rows()), static_cast<int64_t>(m.cols())},
                            torch::TensorOptions().dtype(dtype));
    Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        out.template data_ptr<Scalar>(), m.rows(), m.cols()) = m;
    return out;
  }
}

/// Moves a float32 Eigen vector into a tensor [d] without copying: the tensor takes ownership
/// of the buffer (it is freed when the last tensor sharing the storage goes). Example:
/// `torch::Tensor t = steer::adopt_tensor(std::move(v));  // v is empty afterwards`
inline torch::Tensor adopt_tensor(Eigen::VectorXf&& v) {
  auto owner = std::make_unique<Eigen::VectorXf>(std::move(v));
  float* data = owner->data();
  const auto n = static_cast<int64_t>(owner->size());
  auto* raw = owner.get();
  auto t = torch::from_blob(
      data, {n}, [raw](void*) { delete raw; }, torch::TensorOptions().dtype(torch::kFloat32));
  owner.release();  // the tensor's deleter owns it now
  return t;
}

/// Moves a float32 (column-major) Eigen matrix into a tensor [rows, cols] without copying. The
/// tensor has strides (1, rows), i.e. it is the transpose of a contiguous tensor; call
/// `.contiguous()` when an operation needs row-major memory. The tensor owns the buffer.
inline torch::Tensor adopt_tensor(Eigen::MatrixXf&& m) {
  auto owner = std::make_unique<Eigen::MatrixXf>(std::move(m));
  float* data = owner->data();
  const auto rows = static_cast<int64_t>(owner->rows());
  const auto cols = static_cast<int64_t>(owner->cols());
  auto* raw = owner.get();
  auto t = torch::from_blob(
      data, {rows, cols}, {1, std::max<int64_t>(rows, 1)}, [raw](void*) { delete raw; },
      torch::TensorOptions().dtype(torch::kFloat32));
  owner.release();  // the tensor's deleter owns it now
  return t;
}

}  // namespace steer
