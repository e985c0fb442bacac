// Extraction: activations read in padded batches against transformers run prompt by prompt, and
// the directions of every method against NumPy / scikit-learn (reference made at test time by
// tests/fixtures/make_extract_fixtures.py), on the default model; origin, progress and errors.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::ExtractOptions;
using steer::Method;
using steer::Pooling;
using steer::Positions;
using steer::ReadOptions;
using steer::Site;
using steer::test::default_model_dir;
using steer::test::fixture_dir;

namespace {

const std::vector<int64_t> kLayers = {2, 9, 20};

struct Reference {
  steer::io::Safetensors file;
  std::vector<std::string> positive, negative;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.file = steer::io::read_safetensors(fixture_dir() + "/extract.safetensors");
    r.positive = nlohmann::json::parse(r.file.metadata.at("positive")).get<std::vector<std::string>>();
    r.negative = nlohmann::json::parse(r.file.metadata.at("negative")).get<std::vector<std::string>>();
    return r;
  }();
  return ref;
}

const steer::Model& model() {
  static const auto m = steer::Model::load(default_model_dir());
  return m;
}

ReadOptions read_options() {
  return ReadOptions().layers(kLayers).site(Site::resid_pre).chat(true).batch_size(4);
}

// Largest difference relative to the largest magnitude of the reference.
double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const auto ref = b.to(torch::kFloat64);
  return (a.to(torch::kFloat64) - ref).abs().max().item<double>() /
         ref.abs().max().item<double>();
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}

// Batches of 4 (left padding) against transformers one prompt at a time, for each selection.
TEST(Extract, ReadActivationsMatchesTransformers) {
  const auto& ref = reference();
  struct Case {
    const char* name;
    Positions positions;
    Pooling pooling;
    int64_t rows_per_prompt;
  };
  const Case cases[] = {{"last", Positions::last(), Pooling::mean, 1},
                        {"tail", Positions::last_prompt(3), Pooling::mean, 1},
                        {"tokens", Positions::parse("-3:"), Pooling::tokens, 3}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (const auto* set : {"positive", "negative"}) {
      const auto& prompts = std::string(set) == "positive" ? ref.positive : ref.negative;
      const auto acts = steer::read_activations(
          model(), prompts, read_options().positions(c.positions).pooling(c.pooling));
      ASSERT_EQ(acts.rows(), static_cast<int64_t>(prompts.size()) * c.rows_per_prompt);
      EXPECT_EQ(acts.prompt_of_row.back(), static_cast<int64_t>(prompts.size()) - 1);
      for (auto layer : kLayers) {
        const auto expected = ref.file.at(std::string("rows.") + set + "." + c.name + "." +
                                          std::to_string(layer));
        ASSERT_EQ(acts.at(layer).sizes(), expected.sizes());
        EXPECT_LE(relative_diff(acts.at(layer), expected), 1e-5) << set << " layer " << layer;
      }
    }
  }
}

TEST(Extract, EveryMethodMatchesNumpyAndScikitLearn) {
  const auto& ref = reference();
  struct Case {
    Method method;
    const char* name;
  };
  for (auto c : {Case{Method::mean_diff, "mean_diff"}, Case{Method::pca_diff, "pca_diff"},
                 Case{Method::pca_center, "pca_center"}, Case{Method::logistic, "logistic"},
                 Case{Method::lda, "lda"}}) {
    SCOPED_TRACE(c.name);
    auto options = ExtractOptions(c.method).read(read_options());
    options.logistic().lambda(std::stod(ref.file.metadata.at("logistic_lambda")));
    options.lda().shrinkage(std::stod(ref.file.metadata.at("lda_shrinkage")));
    const auto x = steer::extract(model(), ref.positive, ref.negative, options);
    EXPECT_EQ(x.vector.layers(), kLayers);
    for (auto layer : kLayers) {
      const auto expected = ref.file.at(std::string(c.name) + "." + std::to_string(layer));
      const auto& got = x.vector.at(layer);
      if (c.method == Method::mean_diff) {
        EXPECT_LE(relative_diff(got, expected), 1e-5) << "layer " << layer;
      } else {
        // Same sign (oriented by the mean difference / towards the positive set), unit norm.
        EXPECT_GE(cosine(got, expected), c.method == Method::logistic ? 0.999 : 0.999999)
            << "layer " << layer;
        EXPECT_NEAR(got.norm().item<double>(), 1.0, 1e-5);
      }
      EXPECT_GE(x.accuracy.at(layer), 0.5);
      EXPECT_LE(x.accuracy.at(layer), 1.0);
    }
    const bool pca = c.method == Method::pca_diff || c.method == Method::pca_center;
    EXPECT_EQ(x.explained_variance_ratio.size(), pca ? kLayers.size() : 0u);
  }
}

TEST(Extract, OriginRecordsWhereTheVectorCameFrom) {
  const auto& ref = reference();
  const auto x = steer::extract(
      model(), ref.positive, ref.negative,
      ExtractOptions(Method::pca_diff)
          .read(read_options().positions(Positions::last_prompt(3)))
          .keep_activations(true));
  const auto& o = x.vector.origin();
  EXPECT_EQ(o.model(), "smollm2-135m-instruct");
  EXPECT_EQ(o.n_layers(), 30);
  EXPECT_EQ(o.site(), "resid_pre");
  EXPECT_EQ(o.positions(), "-3:");
  EXPECT_EQ(o.method(), "pca-diff");
  EXPECT_EQ(o.metadata().at("chat"), "true");
  EXPECT_EQ(o.metadata().at("positive_prompts"), "6");
  for (auto layer : kLayers) {
    // The mean activation norm over both sets, as normalized_to_activations uses it.
    const auto both = torch::cat({x.positive.at(layer), x.negative.at(layer)}).to(torch::kFloat64);
    EXPECT_NEAR(o.activation_norms().at(layer), both.norm(2, 1).mean().item<double>(), 1e-6);
    EXPECT_NEAR(x.vector.normalized_to_activations().at(layer).norm().item<double>(),
                o.activation_norms().at(layer), 1e-3);
  }
}

TEST(Extract, PairsEqualSetsAndProgressCountsEveryPrompt) {
  const auto& ref = reference();
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < ref.positive.size(); ++i) pairs.emplace_back(ref.positive[i], ref.negative[i]);
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  const auto a = steer::extract(model(), pairs,
                                ExtractOptions().read(read_options().progress(progress)));
  const auto b = steer::extract(model(), ref.positive, ref.negative,
                                ExtractOptions().read(read_options().batch_size(5)));
  for (auto layer : kLayers) {
    // Different batch sizes pad differently; the activations agree to float32 noise.
    EXPECT_LE(relative_diff(a.vector.at(layer), b.vector.at(layer)), 1e-4);
  }
  // 6 + 6 prompts in batches of 4: 4, 6 for the positive set, then 10, 12.
  const std::vector<std::pair<int64_t, int64_t>> expected = {{4, 12}, {6, 12}, {10, 12}, {12, 12}};
  EXPECT_EQ(calls, expected);
}

TEST(Extract, MeanDiffSteersTowardsThePositiveSet) {
  // The direction read as a classifier separates the training prompts at a middle layer.
  const auto& ref = reference();
  const auto x = steer::extract(model(), ref.positive, ref.negative,
                                ExtractOptions().read(read_options()));
  EXPECT_EQ(x.accuracy.at(9), 1.0);
  const auto acts = steer::read_activations(model(), ref.positive, read_options().layers({9}));
  const auto projection = acts.at(9).matmul(x.vector.at(9)).mean().item<double>();
  const auto acts_neg = steer::read_activations(model(), ref.negative, read_options().layers({9}));
  EXPECT_GT(projection, acts_neg.at(9).matmul(x.vector.at(9)).mean().item<double>());
}

TEST(Extract, BadInputGivesClearErrors) {
  const auto& ref = reference();
  EXPECT_STEER_ERROR(steer::extract(model(), ref.positive, {}, ExtractOptions()),
                     "extract: both prompt sets must be non-empty, got 6 positive and 0 negative");
  EXPECT_STEER_ERROR(
      steer::extract(model(), ref.positive, {ref.negative[0]}, ExtractOptions(Method::pca_diff)),
      "extract: pca-diff pairs positive prompt i with negative prompt i, but got 6 positive and "
      "1 negative prompts");
  EXPECT_STEER_ERROR(steer::read_activations(model(), ref.positive, ReadOptions().layers({30})),
                     "read_activations: layer 30 is out of range; model 'smollm2-135m-instruct' "
                     "has layers 0 to 29 (inclusive)");
  EXPECT_STEER_ERROR(steer::read_activations(model(), ref.positive, ReadOptions().layers({3, 3})),
                     "read_activations: layer 3 is listed twice");
  EXPECT_STEER_ERROR(steer::read_activations(model(), {"Hi", ""}, ReadOptions().layers({1})),
                     "read_activations: prompt 1 is empty");
  EXPECT_STEER_ERROR(
      steer::read_activations(model(), {"A much longer prompt than the other", "Hi"},
                              ReadOptions().layers({1}).positions(Positions::at({3}))),
      "read_activations: prompt 1 (1 tokens) has no token at positions '3'");
  EXPECT_STEER_ERROR(steer::read_activations(model(), {"Hi"}, ReadOptions().batch_size(0)),
                     "read_activations: batch_size must be >= 1, got 0");
  EXPECT_STEER_ERROR(steer::parse_method("pca"), "parse_method: unknown method 'pca'",
                     "expected mean-diff, pca-diff, pca-center, logistic or lda");
  EXPECT_STEER_ERROR(steer::parse_site("resid"), "parse_site: unknown site 'resid'");
  EXPECT_STEER_ERROR(steer::Activations().at(4), "Activations::at: layer 4 was not read");
}

}  // namespace
