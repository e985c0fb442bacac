// The architecture table and the families it describes: on a tiny random model of each family
// built by transformers from a config and exported by tools/export_model.py --random (fixtures:
// make_model_fixtures.py families), every hook site equals a Python forward hook on the same
// transformers module, a left-padded batch longer than the sliding windows equals each
// sequence alone (full recompute and KV cache), orthogonalized weights equal hook ablation, and
// the sites a family lacks are clear errors. Logits against transformers, with and without the
// KV cache: model_test.cpp (Families/TinyModel).
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "hook_support.hpp"
#include "model_support.hpp"
#include "orthogonalize_support.hpp"

using steer::test::cached_logits;
using steer::test::expect_add_matches;
using steer::test::expect_orthogonalized_equals_ablation;
using steer::test::expect_records_match;
using steer::test::fixture_dir;
using steer::test::kLogitTolerance;
using steer::test::max_logit_diff;
using steer::test::padded_batch;
using steer::test::scratch_path;
using steer::test::tiny;

namespace {

/// The families with a tiny model in make_model_fixtures.py's `families` (llama and gpt2 are
/// the tiny_models fixture's, tested by model_test, hooks_test and refusal_test).
const std::vector<std::string> kFamilies = {"mistral", "qwen2",  "qwen3", "gemma",
                                            "gemma2",  "gemma3", "phi3",  "gpt_neox"};

std::string hooks_reference(const std::string& family) {
  return fixture_dir() + "/tiny-" + family + "-hooks.safetensors";
}

class Family : public ::testing::TestWithParam<std::string> {};

TEST_P(Family, SteerJsonNamesTheFamilyRow) {
  const auto model = steer::Model::load(tiny(GetParam()));
  EXPECT_EQ(model.config().family, GetParam());
  const auto& row = model.config().architecture();
  EXPECT_EQ(row.family, GetParam());
  EXPECT_EQ(model.layer(2).block, row.blocks + "2");
  EXPECT_EQ(model.layer(2).attn, row.blocks + "2." + row.attn);
  EXPECT_EQ(model.layer(2).mlp, row.blocks + "2." + row.mlp);
  EXPECT_EQ(model.config().embedding_path, row.embedding);
  EXPECT_EQ(model.config().final_norm_path, row.final_norm);
  EXPECT_EQ(model.config().unembedding_path, row.unembedding);
  EXPECT_TRUE(model.has_kv_cache());
}

// Every site of every layer, recorded in one pass, against Python forward hooks on the same
// transformers modules (resid_mid: the input of the family's MLP pre-norm, Gemma 2/3's
// pre_feedforward_layernorm); kActivationTolerance per row (model_support.hpp).
TEST_P(Family, EveryHookSiteMatchesTransformers) {
  expect_records_match(tiny(GetParam()), hooks_reference(GetParam()));
}

// Add at each site of the middle layer against the same addition by a Python hook.
TEST_P(Family, AddMatchesTransformers) {
  expect_add_matches(tiny(GetParam()), hooks_reference(GetParam()));
}

// Sequences of 13, 6 and 9 tokens, longer than the sliding windows (5 tokens) of mistral, gemma2
// and gemma3: each padded row equals the sequence alone, by full recompute and through the KV
// cache (prefill of 9 columns, then one per step), within kLogitTolerance: another batch shape
// sums the same products in another order (model_support.hpp). A window counted in columns
// rather than tokens, or padding that leaked into a window, moves logits by 0.1 to 1 of their
// scale.
TEST_P(Family, PaddedBatchEqualsEachSequenceAlone) {
  const auto model = steer::Model::load(tiny(GetParam()));
  const auto batch = padded_batch(model, {13, 6, 9}, /*seed=*/5);
  const auto full = model.logits(batch.ids, batch.mask);
  const auto cached = cached_logits(model, batch.ids, batch.mask, /*prompt=*/9);
  const auto width = batch.ids.size(1);
  for (size_t i = 0; i < batch.alone.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    const auto n = batch.alone[i].size(1);
    const auto expected = model.logits(batch.alone[i])[0];
    EXPECT_LE(max_logit_diff(full[i].slice(0, width - n), expected), kLogitTolerance);
    EXPECT_LE(max_logit_diff(cached[i].slice(0, width - n), expected), kLogitTolerance);
  }
}

// Orthogonalized weights compute what ablate_direction's hooks compute, and leave nothing of the
// direction in the residual stream (orthogonalize_support.hpp): Gemma 2/3 through their
// post-norms, GPT-NeoX with its parallel residual, Phi-3 and Qwen2 with their biases.
TEST_P(Family, OrthogonalizedEqualsHookAblation) {
  expect_orthogonalized_equals_ablation(
      tiny(GetParam()), scratch_path("architecture", GetParam() + "-orthogonalized"));
}

INSTANTIATE_TEST_SUITE_P(Architectures, Family, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return info.param; });

// Each row of the C++ table has a tiny model here or in tiny_models (llama, gpt2): a row added
// without its test fails.
TEST(ArchitectureTable, EveryFamilyIsTested) {
  std::set<std::string> tested(kFamilies.begin(), kFamilies.end());
  tested.insert({"llama", "gpt2"});
  std::set<std::string> rows;
  for (const auto& row : steer::architectures()) rows.insert(row.family);
  EXPECT_EQ(rows, tested);
  EXPECT_STEER_ERROR(steer::architecture("mamba"), "architecture: unknown model family 'mamba'; "
                     "steer knows llama, mistral");
}

// A parallel-residual block has no residual stream between attention and MLP: resid_mid is an
// error naming the family, not a stand-in for the block input.
TEST(ArchitectureTable, ParallelResidualHasNoResidMid) {
  const auto model = steer::Model::load(tiny("gpt_neox"));
  EXPECT_STEER_ERROR(steer::hook(model, "resid_mid.1", steer::Record()),
                     "Record at resid_mid.1: hook point 'resid_mid.1' does not exist in model 'tiny-gpt_neox' "
                     "(family gpt_neox): its blocks are parallel-residual",
                     "hint: resid_pre.1 is what both read");
  EXPECT_NO_THROW(steer::hook(model, "resid_pre.1", steer::Record()));
}

// A steer.json with a family outside the table is refused at load, naming the families.
TEST(ArchitectureTable, UnknownFamilyInSteerJson) {
  auto json = nlohmann::json::parse(R"({"format_version": 1, "family": "rwkv"})");
  EXPECT_STEER_ERROR(steer::ModelConfig::from_json(json, "x/steer.json"),
                     "ModelConfig: x/steer.json has family 'rwkv'; steer knows llama, mistral, "
                     "qwen2, qwen3, gemma, gemma2, gemma3, phi3, gpt2, gpt_neox");
}

}  // namespace
