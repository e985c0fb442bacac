// steer::SteeringVector: per-layer directions with their origin, checks and arithmetic.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <steer/steering_vector.hpp>

#include "test_support.hpp"

using steer::SteeringVector;
using steer::VectorOrigin;

namespace {

SteeringVector make(const std::string& method = "mean-diff") {
  SteeringVector v(/*d_model=*/4, VectorOrigin().model("tiny").n_layers(6).site("resid_post")
                                      .positions("last").method(method)
                                      .activation_norms({{1, 10.0}, {2, 20.0}, {3, 30.0}}));
  v.set(1, torch::tensor({3.0f, 4.0f, 0.0f, 0.0f}));
  v.set(2, torch::tensor({0.0, 0.0, 1.0, 0.0}, torch::kFloat64));  // converted to float32
  v.set(3, torch::tensor({1.0f, 1.0f, 1.0f, 1.0f}));
  return v;
}

}  // namespace

TEST(SteeringVector, StoresFloat32CopiesAndItsOrigin) {
  auto source = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f});
  SteeringVector v(4, VectorOrigin().model("tiny").n_layers(6).method("pca-diff"));
  v.set(5, source);
  source.mul_(10);  // the vector holds its own copy
  EXPECT_EQ(v.at(5)[3].item<float>(), 4.0f);
  EXPECT_EQ(v.at(5).scalar_type(), torch::kFloat32);
  EXPECT_EQ(v.d_model(), 4);
  EXPECT_EQ(v.origin().method(), "pca-diff");
  EXPECT_EQ(v.origin().site(), "resid_post");  // the default
  EXPECT_EQ(make().layers(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(make().at(2).scalar_type(), torch::kFloat32);
  EXPECT_STEER_ERROR(make().at(4), "SteeringVector::at: no direction for layer 4",
                     "(the vector has layers: 1, 2, 3)");
}

TEST(SteeringVector, ChecksShapeLayersAndFiniteValues) {
  auto v = make();
  EXPECT_STEER_ERROR(v.set(4, torch::zeros({5})), "SteeringVector::set: layer 4 has shape [5]",
                     "d_model=4", "vector from another model?");
  EXPECT_STEER_ERROR(v.set(4, torch::zeros({1, 4})), "layer 4 has shape [1, 4]");
  EXPECT_STEER_ERROR(v.set(6, torch::zeros({4})), "layer 6 is outside 0 .. 5 of model 'tiny'");
  EXPECT_STEER_ERROR(v.set(-1, torch::zeros({4})), "layer -1 is negative");
  EXPECT_STEER_ERROR(v.set(2, torch::tensor({0.0f, NAN, 1.0f, 2.0f})),
                     "SteeringVector::set: layer 2 has a non-finite value (nan) at index 1");
  EXPECT_STEER_ERROR(v.set(2, torch::tensor({0.0, 0.0, 1e300, 0.0}, torch::kFloat64)),
                     "layer 2 has a non-finite value (inf) at index 2");
  EXPECT_STEER_ERROR(v.set(2, torch::zeros({4}, torch::kInt64)), "expected a floating-point");
  EXPECT_STEER_ERROR(SteeringVector(0), "SteeringVector: expected d_model > 0, received 0");
  EXPECT_EQ(v.at(2)[2].item<float>(), 1.0f);  // failed sets change nothing
}

TEST(SteeringVector, NormsScaleAndNormalize) {
  const auto v = make();
  const auto norms = v.norms();
  EXPECT_DOUBLE_EQ(norms.at(1), 5.0);
  EXPECT_DOUBLE_EQ(norms.at(3), 2.0);
  const auto s = v.scaled(-2.0);
  EXPECT_TRUE(torch::equal(s.at(1), torch::tensor({-6.0f, -8.0f, 0.0f, 0.0f})));
  EXPECT_TRUE(torch::equal((0.5 * v).at(3), torch::full({4}, 0.5f)));
  EXPECT_EQ(s.origin().model(), "tiny");
  const auto n = v.normalized();
  EXPECT_TRUE(torch::allclose(n.at(1), torch::tensor({0.6f, 0.8f, 0.0f, 0.0f})));
  EXPECT_NEAR(n.norms().at(3), 1.0, 1e-6);
  const auto a = v.normalized_to_activations();
  EXPECT_NEAR(a.norms().at(1), 10.0, 1e-5);
  EXPECT_NEAR(a.norms().at(3), 30.0, 1e-5);
  EXPECT_TRUE(torch::allclose(a.at(3), torch::full({4}, 15.0f)));
  EXPECT_NEAR(v.normalized_to(3.0).norms().at(2), 3.0, 1e-6);

  auto zero = make();
  zero.set(4, torch::zeros({4}));
  EXPECT_STEER_ERROR(zero.normalized(), "the direction of layer 4 is zero");
  EXPECT_STEER_ERROR(zero.normalized_to_activations(), "no activation norm recorded for layer 4");
  EXPECT_STEER_ERROR(v.scaled(std::numeric_limits<double>::infinity()), "finite coefficient");
  EXPECT_STEER_ERROR(v.scaled(1e38), "SteeringVector::scaled: layer 1 has a non-finite value");
}

TEST(SteeringVector, SelectsLayers) {
  const auto v = make();
  EXPECT_EQ(v.select_layers(2, 5).layers(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v.select_layers(1, 1).layers(), (std::vector<int64_t>{1}));
  EXPECT_EQ(v.select_layers(std::vector<int64_t>{3, 1}).layers(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(torch::equal(v.select_layers(2, 2).at(2), v.at(2)));
  EXPECT_STEER_ERROR(v.select_layers(4, 5), "no direction in layers 4 .. 5 (inclusive",
                     "has layers: 1, 2, 3");
  EXPECT_STEER_ERROR(v.select_layers(3, 2), "expected first <= last, received 3 .. 2");
  EXPECT_STEER_ERROR(v.select_layers(std::vector<int64_t>{0}), "no direction for layer 0");
}

TEST(SteeringVector, AddsAndSubtractsLayerByLayer) {
  auto a = make();
  SteeringVector b(4, VectorOrigin().model("tiny").n_layers(6).positions("all").method("pca-diff"));
  b.set(1, torch::tensor({1.0f, 1.0f, 1.0f, 1.0f}));
  b.set(4, torch::tensor({0.0f, 2.0f, 0.0f, 0.0f}));
  const auto sum = a + b;
  EXPECT_EQ(sum.layers(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(torch::equal(sum.at(1), torch::tensor({4.0f, 5.0f, 1.0f, 1.0f})));
  EXPECT_TRUE(torch::equal(sum.at(2), a.at(2)));
  EXPECT_TRUE(torch::equal(sum.at(4), b.at(4)));
  EXPECT_EQ(sum.origin().method(), "(mean-diff) + (pca-diff)");
  EXPECT_EQ(sum.origin().positions(), "(last) + (all)");
  const auto diff = a - b;
  EXPECT_TRUE(torch::equal(diff.at(1), torch::tensor({2.0f, 3.0f, -1.0f, -1.0f})));
  EXPECT_TRUE(torch::equal(diff.at(4), torch::tensor({0.0f, -2.0f, 0.0f, 0.0f})));
  EXPECT_TRUE(torch::allclose((a - a).at(1), torch::zeros({4})));
  EXPECT_EQ((a - a).origin().method(), "(mean-diff) - (mean-diff)");

  SteeringVector wide(5, VectorOrigin().model("tiny"));
  wide.set(1, torch::ones({5}));
  EXPECT_STEER_ERROR(a + wide, "SteeringVector operator+: the vectors have d_model=4 and d_model=5",
                     "vectors from different models?");
  SteeringVector other(4, VectorOrigin().model("gpt2"));
  other.set(1, torch::ones({4}));
  EXPECT_STEER_ERROR(a - other, "SteeringVector operator-: the vectors come from model 'tiny' and "
                     "model 'gpt2'");
  SteeringVector pre(4, VectorOrigin().model("tiny").site("resid_pre"));
  pre.set(1, torch::ones({4}));
  EXPECT_STEER_ERROR(a + pre, "read at hook point 'resid_post' and 'resid_pre'");
  SteeringVector deeper(4, VectorOrigin().model("tiny").n_layers(12));
  deeper.set(1, torch::ones({4}));
  EXPECT_STEER_ERROR(a + deeper, "models with 6 and 12 layers");
}

TEST(SteeringVector, CheckCatchesEditedOrigins) {
  auto v = make();
  v.check();
  v.origin().n_layers(3);  // layer 3 no longer fits
  EXPECT_STEER_ERROR(v.check(), "SteeringVector::check: layer 3 is outside 0 .. 2");
  v.origin().n_layers(6).activation_norms({{1, -1.0}});
  EXPECT_STEER_ERROR(v.check(), "the activation norm of layer 1 is -1");
}
