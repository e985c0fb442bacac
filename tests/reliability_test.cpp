// Never a silent wrong answer: non-finite weights, logits, vectors and coefficients are
// reported naming where they came from, and options that would be ignored are errors.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "model_support.hpp"
#include "test_support.hpp"

using steer::Positions;
using steer::test::random_ids;
using steer::test::tiny;

namespace {

torch::Tensor unit_vector(const steer::Model& model, int seed) {
  torch::manual_seed(seed);
  auto v = torch::randn({model.d_model()});
  return v / v.norm();
}

/// Sets one entry of the parameter `name` of a loaded model to `value` (in place: the model
/// and its copies see it).
void corrupt(steer::Model& model, const std::string& name, float value) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model.module().named_parameters()) {
    if (p.name == name) {
      p.value.view(-1)[0].fill_(value);
      return;
    }
  }
  FAIL() << "no parameter " << name;
}

/// Collects steer::warn's messages while alive.
class Warnings {
 public:
  Warnings() {
    previous_ = steer::set_warning_handler([this](const std::string& m) { messages.push_back(m); });
  }
  ~Warnings() { steer::set_warning_handler(previous_); }
  std::vector<std::string> messages;

 private:
  std::function<void(const std::string&)> previous_;
};

// ----------------------------------------------------------------------------- non-finite

TEST(NonFinite, CorruptedWeightInModelFileIsRefusedAtLoad) {
  auto model = steer::Model::load(tiny("llama"));
  corrupt(model, "model.layers.1.mlp.down_proj.weight", std::numeric_limits<float>::quiet_NaN());
  const auto dir = steer::test::scratch_path("reliability", "nan-llama");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(tiny("llama"))) {
    if (entry.path().filename() != "model.pt") {
      std::filesystem::copy(entry.path(), dir + "/" + entry.path().filename().string());
    }
  }
  model.module().save(dir + "/model.pt");
  EXPECT_STEER_ERROR(steer::Model::load(dir),
                     "Model::load: parameter 'model.layers.1.mlp.down_proj.weight' holds 1 NaN "
                     "or infinite values");
  // Switched off, it loads; the first call then finds the NaN.
  const auto unchecked = steer::Model::load(dir, steer::ModelOptions().check_finite(false));
  EXPECT_TRUE(torch::isnan(unchecked.logits(random_ids(unchecked, 1, 4, 1))).any().item<bool>());
}

TEST(NonFinite, NaNWeightInALoadedModelIsNamedByTheCall) {
  auto model = steer::Model::load(tiny("llama"));
  corrupt(model, "model.layers.1.mlp.down_proj.weight", std::numeric_limits<float>::quiet_NaN());
  EXPECT_STEER_ERROR(model.logits(random_ids(model, 2, 5, 1)),
                     "Model::logits: the logits of 10 token(s) hold NaN or infinity; the first "
                     "non-finite values came from the output of module "
                     "'model.layers.1.mlp.down_proj'; no hook ran before it",
                     "model's weights may hold NaN");
  // Generation stops at the same check instead of sampling from NaN (the old behaviour was
  // an end-of-sequence token and an exit code of 0).
  EXPECT_STEER_ERROR(model.generate(std::vector<std::vector<int64_t>>{{1, 2, 3}}),
                     "Model::logits_cached: the logits of 3 token(s) hold NaN or infinity",
                     "'model.layers.1.mlp.down_proj'");
}

TEST(NonFinite, HookThatProducesInfinityIsNamed) {
  const auto model = steer::Model::load(tiny("gpt2"));
  auto bad = steer::hook(model, "mlp_out.0", steer::Lambda([](const torch::Tensor& x, auto&) {
    return x / 0.0;
  }));
  EXPECT_STEER_ERROR(model.logits(random_ids(model, 1, 4, 2)),
                     "the first non-finite values came from Lambda at mlp_out.0",
                     "that hook's vector or coefficient is too large");
}

TEST(NonFinite, VectorOfHugeFiniteValuesIsCaughtWithTheHooksBeforeIt) {
  // A vector file of 3e38 values, finite in float32, applied at every layer (as `steer
  // generate --vector` does): the second addition overflows the residual stream to infinity.
  const auto model = steer::Model::load(tiny("llama"));
  Warnings warnings;
  const auto huge = torch::full({model.d_model()}, 3e38);
  auto first = steer::hook(model, "resid_pre.0", steer::Add(huge, 1.0));
  auto second = steer::hook(model, "resid_pre.1", steer::Add(huge, 1.0));
  EXPECT_STEER_ERROR(model.generate(std::vector<std::vector<int64_t>>{{4, 5, 6}}),
                     "hold NaN or infinity; the first non-finite values came from Add at "
                     "resid_pre.1; hooks that ran before it: Add at resid_pre.0",
                     "that hook's vector or coefficient is too large");
  ASSERT_GE(warnings.messages.size(), 1u);
  EXPECT_NE(warnings.messages[0].find("Add at resid_pre.0: |coefficient x vector| ="),
            std::string::npos)
      << warnings.messages[0];
}

TEST(NonFinite, CoefficientsAreChecked) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto v = unit_vector(model, 3);
  EXPECT_STEER_ERROR(steer::Add(v, std::nan("")), "Add: coefficient must be finite, got nan");
  auto add = steer::hook(model, "resid_pre.0", steer::Add(v, 1.0));
  EXPECT_STEER_ERROR(add->set_coefficient(std::nan("")),
                     "Add::set_coefficient: coefficient must be finite, got nan");
  EXPECT_STEER_ERROR(add->set_coefficient(std::numeric_limits<double>::infinity()),
                     "Add::set_coefficient: coefficient must be finite, got inf");
  EXPECT_EQ(add->coefficient(), 1.0);  // unchanged by the refused calls
  // Finite in float64, beyond float32 once scaled (`--vector love.gguf:1e308`).
  EXPECT_STEER_ERROR(steer::hook(model, "resid_pre.1", steer::Add(v, 1e308)),
                     "Add at resid_pre.1: coefficient 1e+308 times the vector", "overflows Float");
  EXPECT_STEER_ERROR(add->set_coefficient(1e300), "Add at resid_pre.0: coefficient 1e+300");
}

TEST(NonFinite, HugeScaledVectorWarnsOnceAtTheFirstCall) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto ids = random_ids(model, 1, 5, 4);
  Warnings warnings;
  {
    // 1 typical norm: no warning.
    auto add = steer::hook(model, "resid_pre.1", steer::Add(unit_vector(model, 1), 1.0));
    model.logits(ids);
  }
  EXPECT_TRUE(warnings.messages.empty());
  auto add = steer::hook(model, "resid_pre.1", steer::Add(unit_vector(model, 1), 1e6));
  model.logits(ids);
  model.logits(ids);
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_NE(warnings.messages[0].find("times the mean activation norm there"), std::string::npos)
      << warnings.messages[0];
  // A new coefficient is checked again at the next call.
  add->set_coefficient(2e6);
  model.logits(ids);
  EXPECT_EQ(warnings.messages.size(), 2u);
}

TEST(NonFinite, CheckCanBeSwitchedOff) {
  auto model = steer::Model::load(tiny("gpt2"), steer::ModelOptions().check_finite(false));
  auto bad = steer::hook(model, "mlp_out.0", steer::Lambda([](const torch::Tensor& x, auto&) {
    return x * std::numeric_limits<float>::quiet_NaN();
  }));
  EXPECT_TRUE(torch::isnan(model.logits(random_ids(model, 1, 3, 5))).all().item<bool>());
}

// ----------------------------------------------------------------------------- ignored options

TEST(IgnoredOptions, SamplingOptionsAtTemperatureZero) {
  const auto model = steer::Model::load(tiny("llama"));
  const std::vector<std::vector<int64_t>> prompt = {{1, 2, 3}};
  EXPECT_STEER_ERROR(model.generate(prompt, steer::GenerateOptions().top_k(5)),
                     "generate: top_k is set but temperature is 0");
  EXPECT_STEER_ERROR(model.generate(prompt, steer::GenerateOptions().top_p(0.9)),
                     "generate: top_p is set but temperature is 0");
  EXPECT_STEER_ERROR(model.generate(prompt, steer::GenerateOptions().seed(3)),
                     "generate: seed is set but temperature is 0");
  // With a temperature they are used (and a seed of 0 is a seed like any other).
  model.generate(prompt, steer::GenerateOptions().temperature(0.7).top_k(5).top_p(0.9).seed(0));
}

TEST(IgnoredOptions, RecordToHostOnCpuAndWithMean) {
  const auto model = steer::Model::load(tiny("llama"));
  EXPECT_STEER_ERROR(steer::hook(model, "resid_pre.0",
                                 steer::Record(steer::RecordOptions().to_host(true))),
                     "Record at resid_pre.0: RecordOptions().to_host(true) copies CUDA "
                     "activations to host memory, but model 'tiny-llama' runs on cpu");
  EXPECT_STEER_ERROR(steer::Record(steer::RecordOptions().mean(true).to_host(true)),
                     "Record: RecordOptions().mean(true) keeps running sums on the device, so "
                     "to_host(true) has nothing to copy");
}

TEST(IgnoredOptions, PcaWithMoreThanOneComponentInExtract) {
  const auto model = steer::Model::load(tiny("llama"));
  EXPECT_STEER_ERROR(
      steer::extract(model, {"a b", "c"}, {"d", "e f"},
                     steer::ExtractOptions(steer::Method::pca_diff).pca(steer::vec::PcaOptions().k(2))),
      "extract: pca.k is 2, but extract keeps one direction per layer");
}

TEST(IgnoredOptions, AblateWithLinearlyDependentDirections) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto a = unit_vector(model, 1);
  const auto b = unit_vector(model, 2);
  EXPECT_STEER_ERROR(steer::Ablate(torch::stack({a, b, 2 * a - 3 * b})),
                     "Ablate: the 3 directions are linearly dependent (direction 2 lies in the "
                     "span of the ones before it");
  EXPECT_STEER_ERROR(steer::Ablate(torch::stack({a, a})), "Ablate: the 2 directions are linearly "
                                                          "dependent");
  // Independent (not orthogonal) directions are fine: the basis spans both.
  const steer::Ablate ok(torch::stack({a, a + b}));
  EXPECT_EQ(ok.basis().size(0), 2);
}

TEST(IgnoredOptions, PositionsBeyondTheGeneration) {
  const auto model = steer::Model::load(tiny("llama"));
  const std::vector<std::vector<int64_t>> prompt = {{1, 2, 3}, {4, 5}};
  const auto options = steer::GenerateOptions().max_new_tokens(4);
  {
    auto add = steer::hook(model, "resid_pre.0", steer::Add(unit_vector(model, 1)),
                           Positions::from(1000000));
    EXPECT_STEER_ERROR(model.generate(prompt, options),
                       "generate: Add at resid_pre.0 acts from position 1000000 on, but no "
                       "sequence of this generation gets past position 6");
    add.enable(false);  // a switched-off hook never acts anyway
    model.generate(prompt, options);
  }
  {
    steer::Steering steering(model);
    steering.add("resid_pre.1", steer::Add(unit_vector(model, 1)), Positions::at({9, 7}));
    steer::SteeringGuard guard(steering);
    EXPECT_STEER_ERROR(model.generate(prompt, options),
                       "Add at resid_pre.1 acts from position 7 on");
    // With 5 new tokens the longest sequence reaches position 7 (3 + 5 - 1): allowed.
    model.generate(prompt, steer::GenerateOptions().max_new_tokens(5));
  }
}

}  // namespace
