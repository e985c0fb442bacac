// Directional ablation and the refusal direction: orthogonalized weights compute what hook-based
// ablation computes (tiny Llama and GPT-2 models, and the default model), orthogonalize's errors,
// and on the default model with a few prompts of ../shared/data/refusal: ablating the refusal
// direction lowers the refusal score of harmful prompts, adding it raises that of harmless ones.
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"
#include "orthogonalize_support.hpp"

using steer::test::default_model_dir;
using steer::test::expect_orthogonalized_equals_ablation;
using steer::test::max_diff_on_tokens;
using steer::test::kLogitTolerance;
using steer::test::max_abs_diff;
using steer::test::padded_batch;
using steer::test::scratch_path;
using steer::test::tiny;

namespace {

namespace fs = std::filesystem;

/// The refusal data directory, or "" when this checkout has none (the test then skips).
std::string refusal_data_dir() {
  const auto dir = fs::path(STEER_TEST_DATA_DIR) / "refusal";
  return fs::is_directory(dir) ? dir.string() : "";
}

/// A path in this test's scratch directory: one per ATEN_CPU_CAPABILITY, so that the cpu_*
/// entries of tests/CMakeLists.txt and the plain ones can run side by side.
std::string scratch(const std::string& name) {
  const char* capability = std::getenv("ATEN_CPU_CAPABILITY");
  return scratch_path(capability ? std::string("refusal-") + capability : "refusal", name);
}

std::vector<std::string> first(std::vector<std::string> prompts, size_t n) {
  prompts.resize(std::min(n, prompts.size()));
  return prompts;
}

TEST(Orthogonalize, EqualsHookAblationOnTinyLlama) {
  expect_orthogonalized_equals_ablation(tiny("llama"), scratch("tiny-llama-orthogonalized"));
}

TEST(Orthogonalize, EqualsHookAblationOnTinyGpt2) {
  // GPT-2: position embeddings and the biases of both c_proj layers are edited too.
  expect_orthogonalized_equals_ablation(tiny("gpt2"), scratch("tiny-gpt2-orthogonalized"));
}

TEST(Orthogonalize, ErrorsNameTheProblem) {
  const auto model_dir = tiny("llama");
  const auto d = steer::Model::load(model_dir).d_model();
  const auto out_dir = scratch("errors-out");
  fs::remove_all(out_dir);
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, torch::ones({d + 3}), out_dir),
                     "orthogonalize: direction has d_model=" + std::to_string(d + 3) +
                         " but model 'tiny-llama' has " + std::to_string(d),
                     "hint: direction from another model?");
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, torch::zeros({d}), out_dir),
                     "orthogonalize: direction is zero");
  auto nan = torch::ones({d});
  nan[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, nan, out_dir),
                     "orthogonalize: direction has NaN or infinite entries");
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, torch::ones({2, d}), out_dir),
                     "orthogonalize: direction must be 1-D [d_model], got [2, " + std::to_string(d));
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir + "-missing", torch::ones({d}), out_dir),
                     "orthogonalize: model directory '" + model_dir + "-missing' does not exist");
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, torch::ones({d}), model_dir),
                     "is the model directory itself");
  EXPECT_FALSE(fs::exists(out_dir)) << "nothing is written when the arguments are wrong";
  fs::create_directories(out_dir);
  EXPECT_STEER_ERROR(steer::orthogonalize(model_dir, torch::ones({d}), out_dir),
                     "orthogonalize: '" + out_dir + "' already exists",
                     "OrthogonalizeOptions().overwrite(true)");
  steer::orthogonalize(model_dir, torch::ones({d}), out_dir,
                       steer::OrthogonalizeOptions().overwrite(true));
  EXPECT_TRUE(fs::is_regular_file(fs::path(out_dir) / "model.pt"));
  EXPECT_FALSE(fs::exists(out_dir + ".orthogonalize-partial"));

  const auto model = steer::Model::load(model_dir);
  EXPECT_STEER_ERROR(steer::ablate_direction(model, torch::ones({d + 1})),
                     "ablate_direction: direction has d_model=" + std::to_string(d + 1));
  const auto bare = steer::Model::load(model_dir, steer::ModelOptions().instrument(false));
  EXPECT_STEER_ERROR(steer::ablate_direction(bare, torch::ones({d})),
                     "was loaded with ModelOptions().instrument(false)");
}

/// The default model with the mean difference of 8 harmful and 8 harmless training prompts at
/// resid_pre of layer 10, first post-instruction token ("<|im_end|>", 6 tokens before the end).
struct RefusalFixture {
  steer::Model model;
  torch::Tensor direction;
  std::vector<std::vector<int64_t>> harmful_val, harmless_val;
  std::vector<int64_t> refusal_ids;
};

constexpr int64_t kLayer = 10;

RefusalFixture refusal_fixture(const std::string& data) {
  RefusalFixture f{steer::Model::load(default_model_dir()), {}, {}, {}, {}};
  const auto read = steer::ReadOptions()
                        .layers({kLayer})
                        .site(steer::Site::resid_pre)
                        .positions(steer::Positions::last_prompt(6))
                        .pooling(steer::Pooling::tokens)
                        .chat(true);
  const auto harmful = steer::read_activations(
      f.model, first(steer::io::read_prompts(data + "/harmful_train.json"), 8), read);
  const auto harmless = steer::read_activations(
      f.model, first(steer::io::read_prompts(data + "/harmless_train.json"), 8), read);
  // Rows of one prompt are adjacent, positions -6 .. -1: row 0 of each prompt is position -6.
  f.direction = steer::direction_from(harmful.at(kLayer).view({8, 6, -1}).select(1, 0).contiguous(),
                                      harmless.at(kLayer).view({8, 6, -1}).select(1, 0).contiguous(),
                                      steer::ExtractOptions());
  for (const auto& p : first(steer::io::read_prompts(data + "/harmful_val.json"), 4)) {
    f.harmful_val.push_back(steer::prompt_ids(f.model, p, /*chat=*/true));
  }
  for (const auto& p : first(steer::io::read_prompts(data + "/harmless_val.json"), 4)) {
    f.harmless_val.push_back(steer::prompt_ids(f.model, p, /*chat=*/true));
  }
  const auto& tok = f.model.tokenizer();
  f.refusal_ids = {tok.encode("I", false).at(0), tok.encode("As", false).at(0)};
  return f;
}

double mean_refusal_score(const RefusalFixture& f, const std::vector<std::vector<int64_t>>& prompts) {
  return steer::token_set_log_odds(steer::next_token_log_probs(f.model, prompts), f.refusal_ids)
      .mean()
      .item<double>();
}

TEST(RefusalDirection, AblationLowersAndAdditionRaisesTheRefusalScore) {
  const auto data = refusal_data_dir();
  if (data.empty()) {
    GTEST_SKIP() << "no refusal data: " << STEER_TEST_DATA_DIR
                 << "/refusal does not exist (set the CMake cache variable STEER_DATA_DIR)";
  }
  const auto f = refusal_fixture(data);
  const double harmful_before = mean_refusal_score(f, f.harmful_val);
  const double harmless_before = mean_refusal_score(f, f.harmless_val);
  double harmful_ablated = 0, harmless_added = 0;
  {
    const auto ablation = steer::ablate_direction(f.model, f.direction);
    harmful_ablated = mean_refusal_score(f, f.harmful_val);
  }
  {
    const auto addition = steer::hook(f.model, steer::HookPoint(steer::Site::resid_pre, kLayer),
                                      steer::Add(f.direction, /*coefficient=*/1.0));
    harmless_added = mean_refusal_score(f, f.harmless_val);
  }
  std::cout << "refusal score: harmful " << harmful_before << " -> " << harmful_ablated
            << " (ablation); harmless " << harmless_before << " -> " << harmless_added
            << " (addition)\n";
  EXPECT_LT(harmful_ablated, harmful_before);
  EXPECT_GT(harmless_added, harmless_before);

  // The same ablation in the weights of the default model (tied embeddings: the unembedding
  // keeps its own copy) gives the hook-based logits.
  const auto out_dir = scratch("default-orthogonalized");
  steer::orthogonalize(default_model_dir(), f.direction, out_dir,
                       steer::OrthogonalizeOptions().overwrite(true));
  const auto edited = steer::Model::load(out_dir);
  const auto [ids, mask] = steer::left_pad(f.harmful_val, f.model.config().pad.id);
  torch::Tensor hooked;
  {
    const auto ablation = steer::ablate_direction(f.model, f.direction);
    hooked = f.model.logits(ids, mask);
  }
  const auto baked = edited.logits(ids, mask);
  const auto all = max_diff_on_tokens(hooked, baked, mask);
  const auto last = max_abs_diff(hooked.select(1, -1), baked.select(1, -1));
  std::cout << "default model: max |logit difference| / max |logit| orthogonalized vs hooks: "
            << all << " (every token); max |logit difference| " << last << " (last token)\n";
  EXPECT_LE(all, kLogitTolerance);
  fs::remove_all(out_dir);
}

}  // namespace
