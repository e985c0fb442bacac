// Whole vectors in one call: steer::apply and steer::ablate_direction against the hooks they
// stand for, attached one by one (bit-identical logits: the same ops on the same values); the
// normalizations against a direct computation; the group handle (coefficient, vector swap,
// enable, detach), also while other threads run the model; and the errors.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "model_support.hpp"
#include "test_support.hpp"

using steer::ApplyOptions;
using steer::HookPoint;
using steer::LayerRange;
using steer::Normalization;
using steer::Operation;
using steer::Positions;
using steer::Site;
using steer::SteeringVector;
using steer::VectorOrigin;
using steer::test::random_ids;
using steer::test::scratch_path;
using steer::test::tiny;

namespace {

const steer::Model& llama() {
  static const auto m = steer::Model::load(tiny("llama"));
  return m;
}

/// A random vector with a direction at each of `layers`, read at `site`.
SteeringVector random_vector(const steer::Model& model, std::vector<int64_t> layers, int seed,
                             const std::string& site = "resid_pre") {
  torch::manual_seed(seed);
  SteeringVector v(model.d_model(), VectorOrigin().n_layers(model.n_layers()).site(site));
  for (auto l : layers) v.set(l, torch::randn({model.d_model()}));
  return v;
}

torch::Tensor ids() { return random_ids(llama(), 2, 9, 11); }

TEST(Apply, AddsTheChosenLayersAsSingleHooksWould) {
  const auto& model = llama();
  const auto v = random_vector(model, {0, 1, 2}, 1);
  const auto plain = model.logits(ids());
  torch::Tensor by_hand;
  {
    auto a = steer::hook(model, "resid_pre.0", steer::Add(v.at(0), 1.5), Positions::from(2));
    auto b = steer::hook(model, "resid_pre.2", steer::Add(v.at(2), 1.5), Positions::from(2));
    by_hand = model.logits(ids());
  }
  auto group = steer::apply(
      model, v, ApplyOptions().coefficient(1.5).layers({2, 0}).positions(Positions::from(2)));
  EXPECT_EQ(group.size(), 2u);
  EXPECT_EQ(group.layers(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(group.points()[1].to_string(), "resid_pre.2");
  EXPECT_TRUE(torch::equal(model.logits(ids()), by_hand));
  EXPECT_GT((by_hand - plain).abs().max().item<double>(), 1e-2) << "the steering acts";
  group.detach();
  EXPECT_TRUE(torch::equal(model.logits(ids()), plain));
}

TEST(Apply, SiteComesFromTheVectorUnlessGiven) {
  const auto& model = llama();
  const auto v = random_vector(model, {1}, 2, "mlp_out");
  torch::Tensor at_mlp, at_post;
  {
    auto h = steer::hook(model, "mlp_out.1", steer::Add(v.at(1)));
    at_mlp = model.logits(ids());
  }
  {
    auto h = steer::hook(model, "resid_post.1", steer::Add(v.at(1)));
    at_post = model.logits(ids());
  }
  {
    auto group = steer::apply(model, v);
    EXPECT_TRUE(torch::equal(model.logits(ids()), at_mlp));
  }
  auto group = steer::apply(model, v, ApplyOptions().site("resid_post"));
  EXPECT_TRUE(torch::equal(model.logits(ids()), at_post));
}

TEST(Apply, LayerRangeTakesTheVectorsLayersWithinIt) {
  const auto& model = llama();  // 3 layers
  const auto v = random_vector(model, {0, 2}, 3);
  EXPECT_EQ(steer::apply(model, v, ApplyOptions().layer_range({1, -1})).layers(),
            (std::vector<int64_t>{2}));
  EXPECT_EQ(steer::apply(model, v, ApplyOptions().layer_range(LayerRange{})).layers(),
            (std::vector<int64_t>{0, 2}));
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().layer_range(LayerRange{1, 1})),
                     "apply: the vector has no direction in layers 1 .. 1 (it has layers 0, 2)");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().layer_range(LayerRange{1, 3})),
                     "apply: layer range 1 .. 3 is not within 0 .. 2");
}

// Row norms of the activations at `point` over every token but the first of each text, each
// text run alone (no batching, no padding): the typical norm by definition.
double typical_norm_by_hand(const steer::Model& model, const HookPoint& point) {
  std::vector<torch::Tensor> rows;
  for (const auto& text : steer::reference_texts()) {
    auto record = steer::hook(model, point, steer::Record(), Positions::from(1));
    const auto tokens = steer::prompt_ids(model, text, /*chat=*/false);
    model.logits(torch::tensor(tokens, torch::kInt64).unsqueeze(0));
    rows.push_back(record->sequence(0).to(torch::kFloat64));
  }
  return torch::cat(rows).norm(2, 1).mean().item<double>();
}

TEST(Apply, NormalizationsScaleEachDirectionBeforeTheCoefficient) {
  const auto& model = llama();
  auto v = random_vector(model, {0, 1}, 4);
  v.origin().activation_norms({{0, 3.0}, {1, 7.0}});
  // Measured on the model as it is: first, with no hook attached.
  auto typical = steer::apply(model, v, ApplyOptions().normalization(Normalization::typical));
  typical.detach();
  auto unit = steer::apply(model, v, ApplyOptions().normalization(Normalization::unit));
  auto recorded = steer::apply(model, v, ApplyOptions().normalization(Normalization::recorded));
  auto none = steer::apply(model, v);
  for (int64_t layer : {0, 1}) {
    // float32 directions: the norm of a rescaled float32 vector is exact to a few ulps.
    EXPECT_NEAR(unit.normalized_norms().at(layer), 1.0, 1e-6);
    EXPECT_NEAR(recorded.normalized_norms().at(layer), layer == 0 ? 3.0 : 7.0, 1e-5);
    EXPECT_NEAR(none.normalized_norms().at(layer), v.norms().at(layer),
                1e-6 * v.norms().at(layer));
  }
  unit.detach();
  recorded.detach();
  none.detach();
  for (int64_t layer : {0, 1}) {
    // Batched (apply) against one text at a time: activation rows agree within
    // kActivationTolerance of their norm (tests/model_support.hpp), so their mean norm too.
    const double by_hand = typical_norm_by_hand(model, HookPoint(Site::resid_pre, layer));
    EXPECT_NEAR(typical.normalized_norms().at(layer), by_hand,
                steer::test::kActivationTolerance * by_hand);
  }
  // The added vector is the normalized direction times the coefficient.
  const auto direction = v.at(1).to(torch::kFloat64);
  const auto scaled = (direction * (2.0 * 7.0 / direction.norm().item<double>())).to(torch::kFloat32);
  torch::Tensor by_hand;
  {
    auto h = steer::hook(model, "resid_pre.1", steer::Add(scaled));
    by_hand = model.logits(ids());
  }
  // The same sum up to the rounding of c * v in float32 (one ulp of each entry of the vector).
  auto group = steer::apply(model, v,
                            ApplyOptions().layers({1}).coefficient(2).normalization(Normalization::recorded));
  EXPECT_LT(steer::test::max_logit_diff(model.logits(ids()), by_hand),
            steer::test::kLogitTolerance);

  auto bare = random_vector(model, {0}, 5);
  EXPECT_STEER_ERROR(steer::apply(model, bare, ApplyOptions().normalization(Normalization::recorded)),
                     "normalization 'recorded' needs the activation norm of layer 0");
  SteeringVector zero(model.d_model(), VectorOrigin().site("resid_pre"));
  zero.set(0, torch::zeros({model.d_model()}));
  EXPECT_STEER_ERROR(steer::apply(model, zero, ApplyOptions().normalization(Normalization::unit)),
                     "the direction of layer 0 is zero");
  EXPECT_EQ(steer::parse_normalization("typical"), Normalization::typical);
  EXPECT_STEER_ERROR(steer::parse_normalization("sideways"),
                     "unknown normalization 'sideways'; expected none, unit, typical or recorded");
}

TEST(Apply, TheHandleChangesCoefficientAndVectorAndSwitches) {
  const auto& model = llama();
  const auto v = random_vector(model, {0, 2}, 6);
  const auto w = random_vector(model, {0, 1, 2}, 7);
  const auto plain = model.logits(ids());
  const auto fresh = [&](const SteeringVector& vector, double c) {
    auto g = steer::apply(model, vector, ApplyOptions().coefficient(c).layers({0, 2}));
    return model.logits(ids());
  };
  const auto v3 = fresh(v, 3.0), w3 = fresh(w, 3.0);
  auto group = steer::apply(model, v, ApplyOptions().coefficient(0.5));
  group.set_coefficient(3.0);
  EXPECT_EQ(group.coefficient(), 3.0);
  EXPECT_TRUE(torch::equal(model.logits(ids()), v3));
  group.set_vector(w);  // w's layer 1 is not steered: the group keeps its layers
  EXPECT_TRUE(torch::equal(model.logits(ids()), w3));
  group.enable(false);
  EXPECT_FALSE(group.enabled());
  EXPECT_TRUE(torch::equal(model.logits(ids()), plain));
  group.enable(true);
  EXPECT_TRUE(torch::equal(model.logits(ids()), w3));

  // A vector without one of the group's layers changes nothing.
  EXPECT_STEER_ERROR(group.set_vector(random_vector(model, {0}, 8)),
                     "the group steers layer 2 but the new vector has no direction there");
  EXPECT_TRUE(torch::equal(model.logits(ids()), w3));
  EXPECT_STEER_ERROR(group.set_coefficient(std::nan("")), "expected a finite coefficient");
  EXPECT_STEER_ERROR(group.set_direction(v.at(0)), "use set_vector");

  // A moved handle keeps the hooks; detach (or the end of the handle) removes them.
  auto moved = std::move(group);
  EXPECT_TRUE(moved.attached());
  EXPECT_TRUE(torch::equal(model.logits(ids()), w3));
  moved.detach();
  EXPECT_FALSE(moved.attached());
  EXPECT_TRUE(torch::equal(model.logits(ids()), plain));
}

TEST(Apply, AblateEqualsAblateHooks) {
  const auto& model = llama();
  const auto v = random_vector(model, {0, 1}, 9, "attn_out");
  const auto w = random_vector(model, {0, 1}, 10, "attn_out");
  const auto by_hand = [&](const SteeringVector& vector) {
    auto a = steer::hook(model, "attn_out.0", steer::Ablate(vector.at(0)), Positions::last());
    auto b = steer::hook(model, "attn_out.1", steer::Ablate(vector.at(1)), Positions::last());
    return model.logits(ids());
  };
  const auto ablated_v = by_hand(v), ablated_w = by_hand(w);
  auto group = steer::apply(
      model, v, ApplyOptions().operation(Operation::ablate).positions(Positions::last()));
  EXPECT_TRUE(torch::equal(model.logits(ids()), ablated_v));
  group.set_vector(w);
  EXPECT_TRUE(torch::equal(model.logits(ids()), ablated_w));
  EXPECT_STEER_ERROR(group.set_coefficient(2.0), "the group ablates directions, which takes no "
                     "coefficient");
  EXPECT_STEER_ERROR(
      steer::apply(model, v, ApplyOptions().operation(Operation::ablate).coefficient(2)),
      "apply: ablation removes the component along each direction and takes no coefficient");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().operation(Operation::ablate)
                                                .normalization(Normalization::unit)),
                     "normalization 'unit' would change nothing");
}

TEST(AblateDirection, EveryLayerOfARangeAtThreeSites) {
  const auto& model = llama();
  torch::manual_seed(12);
  const auto r = torch::randn({model.d_model()});
  const auto r2 = torch::randn({model.d_model()});
  const auto by_hand = [&](const torch::Tensor& direction) {
    std::vector<steer::HookHandle<steer::Ablate>> hooks;
    for (int64_t layer : {1, 2}) {
      for (auto site : {Site::resid_pre, Site::attn_out, Site::mlp_out}) {
        hooks.push_back(steer::hook(model, HookPoint(site, layer), steer::Ablate(direction)));
      }
    }
    return model.logits(ids());
  };
  const auto expected = by_hand(r), expected2 = by_hand(r2);
  const auto plain = model.logits(ids());
  EXPECT_GT((expected - plain).abs().max().item<double>(), 1e-3) << "the ablation acts";
  {
    auto group = steer::ablate_direction(model, r, LayerRange{1, -1});
    EXPECT_EQ(group.size(), 6u);
    EXPECT_EQ(group.points()[0].to_string(), "resid_pre.1");
    EXPECT_TRUE(torch::equal(model.logits(ids()), expected));
    group.set_direction(r2);
    EXPECT_TRUE(torch::equal(model.logits(ids()), expected2));
    EXPECT_STEER_ERROR(group.set_vector(random_vector(model, {0}, 1)), "use set_direction");
  }
  EXPECT_TRUE(torch::equal(model.logits(ids()), plain));

  // The same from a direction file: the one direction it holds, or the one named.
  SteeringVector one(model.d_model(), VectorOrigin().n_layers(model.n_layers()));
  one.set(2, r);
  const auto file = scratch_path("apply", "direction.safetensors");
  steer::io::write_steering_vector(file, one);
  {
    auto group = steer::ablate_direction(model, file, std::nullopt, LayerRange{1, 2});
    EXPECT_TRUE(torch::equal(model.logits(ids()), expected));
  }
  SteeringVector two = one;
  two.set(0, r2);
  steer::io::write_steering_vector(file, two);
  EXPECT_STEER_ERROR(steer::ablate_direction(model, file),
                     "ablate_direction: the vector has 2 directions (layers 0, 2); say which one "
                     "to ablate");
  {
    auto group = steer::ablate_direction(model, file, 0, LayerRange{1, 2});
    EXPECT_TRUE(torch::equal(model.logits(ids()), expected2));
  }
  EXPECT_STEER_ERROR(steer::ablate_direction(model, file, 1),
                     "ablate_direction: the vector has no direction for layer 1 (it has layers 0, 2)");
  EXPECT_STEER_ERROR(steer::ablate_direction(model, r, LayerRange{2, 1}),
                     "ablate_direction: layer range 2 .. 1 is not within 0 .. 2");
  SteeringVector deeper(model.d_model(), VectorOrigin().n_layers(30));
  deeper.set(0, r);
  EXPECT_STEER_ERROR(steer::ablate_direction(model, deeper, 0),
                     "ablate_direction: the vector was made for a model with 30 layers");
  EXPECT_EQ(steer::ablate_direction(model, r).size(), 3u * model.n_layers());
}

TEST(Apply, RefusesWhatDoesNotFitBeforeAttachingAnything) {
  const auto& model = llama();
  const auto v = random_vector(model, {0, 1}, 13);
  const auto plain = model.logits(ids());
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().layers({1, 2})),
                     "apply: layer 2 has no direction in the vector (it has layers 0, 1)");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().layers({1, 1})), "layer 1 is given twice");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().layers({1}).layer_range(LayerRange{})),
                     "give layers or layer_range, not both");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().site("resid_side")),
                     "apply: parse_site: unknown site 'resid_side'");
  EXPECT_STEER_ERROR(steer::apply(model, v, ApplyOptions().coefficient(INFINITY)),
                     "apply: expected a finite coefficient");
  EXPECT_STEER_ERROR(steer::apply(model, SteeringVector(model.d_model())),
                     "apply: the vector has no direction");
  SteeringVector wide(model.d_model() + 1, VectorOrigin().site("resid_pre"));
  wide.set(0, torch::ones({model.d_model() + 1}));
  EXPECT_STEER_ERROR(steer::apply(model, wide), "apply: the vector has d_model=",
                     "(hint: vector from another model?)");
  SteeringVector deeper(model.d_model(), VectorOrigin().n_layers(30));
  deeper.set(0, torch::ones({model.d_model()}));
  EXPECT_STEER_ERROR(steer::apply(model, deeper), "was made for a model with 30 layers");
  EXPECT_TRUE(torch::equal(model.logits(ids()), plain)) << "no hook was left behind";
}

// Swapping the vector while other threads run the model: every call sees one whole vector
// (the group has one layer, so a call's result is one of the two single-vector results).
TEST(Apply, SwapsAreWholeWhileOtherThreadsRun) {
  const auto& model = llama();
  const auto v = random_vector(model, {1}, 14);
  const auto w = random_vector(model, {1}, 15);
  for (auto operation : {Operation::add, Operation::ablate}) {
    SCOPED_TRACE(operation == Operation::add ? "add" : "ablate");
    const auto reference = [&](const SteeringVector& vector) {
      auto g = steer::apply(model, vector, ApplyOptions().operation(operation));
      return model.logits(ids());
    };
    const auto with_v = reference(v), with_w = reference(w);
    ASSERT_FALSE(torch::equal(with_v, with_w));
    auto group = steer::apply(model, v, ApplyOptions().operation(operation));
    std::atomic<bool> done{false};
    std::atomic<int> bad{0}, calls{0};
    std::thread runner([&] {
      while (!done.load()) {
        const auto logits = model.logits(ids());
        if (!torch::equal(logits, with_v) && !torch::equal(logits, with_w)) ++bad;
        ++calls;
      }
    });
    for (int i = 0; i < 200 || calls.load() < 20; ++i) group.set_vector(i % 2 ? v : w);
    done = true;
    runner.join();
    EXPECT_EQ(bad.load(), 0) << "of " << calls.load() << " calls";
  }
}

}  // namespace
