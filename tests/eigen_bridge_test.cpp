// steer::to_eigen_rows / to_eigen_vector / to_tensor / adopt_tensor: the torch <-> Eigen bridge.
#include <gtest/gtest.h>
#include <steer/eigen_bridge.hpp>
#include <steer/vec/difference.hpp>
#include <steer/vec/normalize.hpp>

#include "test_support.hpp"

TEST(EigenBridge, MapsContiguousFloatTensorsWithoutACopy) {
  auto t = torch::arange(12, torch::kFloat32).reshape({3, 4});
  auto rows = steer::to_eigen_rows(t);
  EXPECT_FALSE(rows.copied);
  EXPECT_EQ(rows.map.data(), t.data_ptr<float>());
  ASSERT_EQ(rows.map.rows(), 3);
  ASSERT_EQ(rows.map.cols(), 4);
  EXPECT_EQ(rows.map(1, 2), 6.0f);  // row-major: element [1, 2] of the tensor
  EXPECT_EQ(rows.map(2, 3), 11.0f);
  t[0][1] = 42.0f;  // writes show through the view
  EXPECT_EQ(rows.map(0, 1), 42.0f);

  auto v = torch::linspace(-1, 1, 5);
  auto mapped = steer::to_eigen_vector(v);
  EXPECT_FALSE(mapped.copied);
  EXPECT_EQ(mapped.map.data(), v.data_ptr<float>());
  EXPECT_EQ(mapped.map(4), 1.0f);
}

TEST(EigenBridge, TheViewOutlivesTheCallersTensor) {
  steer::EigenRows rows = [] {
    auto t = torch::full({2, 3}, 7.0f);
    return steer::to_eigen_rows(t);
  }();
  EXPECT_EQ(rows.map.sum(), 42.0f);
}

TEST(EigenBridge, CopiesOtherLayoutsAndDtypes) {
  auto base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  auto transposed = base.t();  // [4, 3], not contiguous
  auto rows = steer::to_eigen_rows(transposed);
  EXPECT_TRUE(rows.copied);
  EXPECT_NE(rows.map.data(), base.data_ptr<float>());
  EXPECT_EQ(rows.map(2, 1), 6.0f);  // transposed[2][1] = base[1][2]

  auto doubles = torch::tensor({1.5, -2.5, 4.0}, torch::kFloat64);
  auto vec = steer::to_eigen_vector(doubles);
  EXPECT_TRUE(vec.copied);
  EXPECT_EQ(vec.map(1), -2.5f);

  auto strided = torch::arange(10, torch::kFloat32).slice(0, 0, 10, 2);  // 0 2 4 6 8
  auto s = steer::to_eigen_vector(strided);
  EXPECT_TRUE(s.copied);
  EXPECT_EQ(s.map(3), 6.0f);
}

TEST(EigenBridge, ChecksShapes) {
  EXPECT_STEER_ERROR(steer::to_eigen_rows(torch::zeros({3})),
                     "to_eigen_rows: expected a tensor [N, d_model], received shape [3]",
                     "hint: use to_eigen_vector");
  EXPECT_STEER_ERROR(steer::to_eigen_vector(torch::zeros({2, 3})),
                     "to_eigen_vector: expected a tensor [d_model], received shape [2, 3]");
  EXPECT_STEER_ERROR(steer::to_eigen_rows(torch::zeros({2, 3}, torch::kInt64)),
                     "expected a floating-point tensor, received Long");
  EXPECT_STEER_ERROR(steer::to_eigen_vector(torch::Tensor()), "undefined tensor");
}

TEST(EigenBridge, FeedsSteerVecAndComesBack) {
  auto pos = torch::tensor({{1.0f, 2.0f, 3.0f}, {3.0f, 2.0f, 1.0f}});
  auto neg = torch::tensor({{0.0f, 0.0f, 1.0f}, {0.0f, 2.0f, 1.0f}});
  const Eigen::VectorXf diff =
      steer::vec::mean_difference(steer::to_eigen_rows(pos).map, steer::to_eigen_rows(neg).map);
  auto t = steer::to_tensor(diff);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3}));
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(t, torch::tensor({2.0f, 1.0f, 1.0f})));
  EXPECT_TRUE(torch::allclose(t, (pos - neg).mean(0)));

  Eigen::MatrixXd m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  auto tm = steer::to_tensor(m);
  EXPECT_EQ(tm.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(tm.is_contiguous());
  EXPECT_TRUE(torch::equal(tm, torch::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, torch::kFloat64)));
  auto expr = steer::to_tensor(m.transpose().cast<float>());  // any expression
  EXPECT_TRUE(torch::equal(expr, tm.t().to(torch::kFloat32)));
}

TEST(EigenBridge, AdoptTakesTheBufferWithoutACopy) {
  Eigen::VectorXf v = Eigen::VectorXf::LinSpaced(6, 0.0f, 5.0f);
  const float* data = v.data();
  auto t = steer::adopt_tensor(std::move(v));
  EXPECT_EQ(t.data_ptr<float>(), data);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{6}));
  EXPECT_EQ(t[5].item<float>(), 5.0f);

  Eigen::MatrixXf m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  const float* mdata = m.data();
  auto tm = steer::adopt_tensor(std::move(m));
  EXPECT_EQ(tm.data_ptr<float>(), mdata);
  EXPECT_FALSE(tm.is_contiguous());  // column-major memory, strides (1, rows)
  EXPECT_TRUE(torch::equal(tm, torch::tensor({{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}})));
  auto copy = tm.clone();
  tm = torch::Tensor();  // frees the adopted buffer (checked under AddressSanitizer)
  EXPECT_EQ(copy[1][2].item<float>(), 6.0f);
}
