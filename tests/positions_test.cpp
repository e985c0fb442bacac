// Hook points (parsing, layout discovery) and Positions on hand-made call layouts.
#include <gtest/gtest.h>
#include <steer/hook_point.hpp>
#include <steer/positions.hpp>

#include "test_support.hpp"

using steer::CallLayout;
using steer::HookPoint;
using steer::Positions;
using steer::Site;

namespace {

TEST(HookPoint, ParsesSitesAndModulePaths) {
  const HookPoint a("resid_post.12");
  EXPECT_EQ(a.site, Site::resid_post);
  EXPECT_EQ(a.layer, 12);
  EXPECT_EQ(a.to_string(), "resid_post.12");
  const HookPoint b("model.layers.3.mlp.down_proj");
  EXPECT_EQ(b.site, Site::module);
  EXPECT_EQ(b.path, "model.layers.3.mlp.down_proj");
  EXPECT_EQ(HookPoint(Site::mlp_out, 2).to_string(), "mlp_out.2");
  EXPECT_STEER_ERROR(HookPoint("attn_out"), "HookPoint: 'attn_out' has no valid layer",
                     "expected 'attn_out.<layer>'");
  EXPECT_STEER_ERROR(HookPoint("resid_pre.-1"), "'resid_pre.-1' has no valid layer");
  EXPECT_STEER_ERROR(HookPoint(""), "HookPoint: empty hook point");
}

TEST(HookPoint, DiscoversLayersFromModulePaths) {
  const auto llama = steer::discover_layers(
      {"model", "model.embed_tokens", "model.layers", "model.layers.0", "model.layers.0.self_attn",
       "model.layers.0.mlp", "model.layers.1", "model.layers.1.self_attn", "model.layers.1.mlp",
       "model.norm", "lm_head"});
  ASSERT_EQ(llama.size(), 2u);
  EXPECT_EQ(llama[1].block, "model.layers.1");
  EXPECT_EQ(llama[1].attn, "model.layers.1.self_attn");
  EXPECT_EQ(llama[1].mlp, "model.layers.1.mlp");
  const auto gpt2 = steer::discover_layers(
      {"transformer", "transformer.h", "transformer.h.0", "transformer.h.0.attn",
       "transformer.h.0.mlp", "transformer.ln_f"});
  ASSERT_EQ(gpt2.size(), 1u);
  EXPECT_EQ(gpt2[0].attn, "transformer.h.0.attn");
  const auto neox = steer::discover_layers(
      {"gpt_neox.layers.0", "gpt_neox.layers.0.attention", "gpt_neox.layers.0.mlp"});
  ASSERT_EQ(neox.size(), 1u);
  EXPECT_EQ(neox[0].attn, "gpt_neox.layers.0.attention");
  EXPECT_STEER_ERROR(steer::discover_layers({"encoder.block.0", "decoder"}),
                     "discover_layers: no known layer layout among 2 module paths",
                     "'transformer.h.N' (gpt2)");
  EXPECT_STEER_ERROR(steer::discover_layers({"model.layers.0", "model.layers.0.mlp"}),
                     "block 'model.layers.0' looks like a llama block but has no "
                     "'model.layers.0.self_attn'");
  EXPECT_STEER_ERROR(
      steer::discover_layers({"transformer.h.0", "transformer.h.0.attn", "transformer.h.0.mlp",
                              "transformer.h.2", "transformer.h.2.attn", "transformer.h.2.mlp"}),
      "are not numbered 0 to 1 without gaps");
}

// Two sequences: [pad pad a b c] and [a b c d e], call of the last `t` columns.
CallLayout layout(int64_t t, int64_t prompt_columns, bool full) {
  const auto mask = torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 5});
  return CallLayout(mask, 5 - t, t, prompt_columns, 5, true, full);
}

torch::Tensor bools(std::vector<int> values, int64_t t) {
  return torch::tensor(values, torch::kInt64).view({2, t}).to(torch::kBool);
}

TEST(Positions, CountRealTokensWithPadding) {
  const auto full = layout(5, 3, true);
  EXPECT_TRUE(torch::equal(full.positions(),
                           torch::tensor({-1, -1, 0, 1, 2, 0, 1, 2, 3, 4}).view({2, 5})));
  EXPECT_TRUE(torch::equal(full.prompt_tokens(), torch::tensor({1, 3})));
  EXPECT_TRUE(torch::equal(full.left_padding(), torch::tensor({2, 0})));
  EXPECT_TRUE(torch::equal(Positions::all().select(full, "t"), bools({0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, 5)));
  // "last" in full recompute: the last prompt token and every token after it; with no prompt
  // length, the final token only.
  EXPECT_TRUE(torch::equal(Positions::last().select(full, "t"), bools({0, 0, 1, 1, 1, 0, 0, 1, 1, 1}, 5)));
  EXPECT_TRUE(torch::equal(Positions::last().select(layout(5, -1, true), "t"),
                           bools({0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, 5)));
  EXPECT_TRUE(torch::equal(Positions::at({0, 2}).select(full, "t"), bools({0, 0, 1, 0, 1, 1, 0, 1, 0, 0}, 5)));
  EXPECT_TRUE(torch::equal(Positions::range(1, 3).select(full, "t"), bools({0, 0, 0, 1, 1, 0, 1, 1, 0, 0}, 5)));
  EXPECT_TRUE(torch::equal(Positions::from(2).select(full, "t"), bools({0, 0, 0, 0, 1, 0, 0, 1, 1, 1}, 5)));
  EXPECT_TRUE(torch::equal(Positions::prompt().select(full, "t"), bools({0, 0, 1, 0, 0, 1, 1, 1, 0, 0}, 5)));
  EXPECT_TRUE(torch::equal(Positions::generated().select(full, "t"), bools({0, 0, 0, 1, 1, 0, 0, 0, 1, 1}, 5)));
}

TEST(Positions, DecodeStepSeesItsAbsolutePosition) {
  const auto step = layout(1, 3, false);  // the last column, 4 tokens in the cache
  EXPECT_TRUE(torch::equal(step.positions(), torch::tensor({2, 4}).view({2, 1})));
  EXPECT_TRUE(torch::equal(Positions::last().select(step, "t"), bools({1, 1}, 1)));
  EXPECT_TRUE(torch::equal(Positions::at({4}).select(step, "t"), bools({0, 1}, 1)));
  EXPECT_TRUE(torch::equal(Positions::generated().select(step, "t"), bools({1, 1}, 1)));
  // A cached call may select tokens still to come: no error.
  EXPECT_TRUE(torch::equal(Positions::at({40}).select(step, "t"), bools({0, 0}, 1)));
}

TEST(Positions, OutsideTheSequenceInFullRecompute) {
  EXPECT_STEER_ERROR(Positions::from(5).select(layout(5, -1, true), "Add at resid_pre.3"),
                     "Add at resid_pre.3: position 5 is outside the sequence",
                     "the longest sequence of this call has 5 tokens (positions 0 to 4");
}

TEST(Positions, SpecStringsRoundTrip) {
  for (const std::string spec : {"all", "last", "prompt", "generated", "3:", "1:4", "-5:", "-3",
                                 "7", "0,3,7"}) {
    EXPECT_EQ(Positions::parse(spec).to_string(), spec);
  }
  EXPECT_EQ(Positions::parse("1:4").kind(), Positions::Kind::range);
  EXPECT_EQ(Positions::parse("-2:").kind(), Positions::Kind::last_prompt);
  EXPECT_EQ(Positions::parse("-2").kind(), Positions::Kind::prompt_from_end);
  EXPECT_EQ(Positions::range(1, 4).to_string(), "1:4");
  for (const std::string bad : {"", "first", "4:2", "-0:", "-3:5", "1,,2", "a:", "1:x", "-0", "-x", "-1,2"}) {
    SCOPED_TRACE(bad);
    EXPECT_STEER_ERROR(Positions::parse(bad), "Positions::parse: '" + bad + "'",
                       "expected all, last, prompt, generated, K: (from K)");
  }
}

TEST(Positions, LastPromptSelectsTheTailOfEachPrompt) {
  // Two sequences, prompts of 4 and 2 real tokens (left padding 0 and 2), then one generated
  // column: last_prompt(3) selects positions 1..3 of the first and 0..1 of the second.
  const auto mask = torch::tensor({{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}}, torch::kInt64);
  const CallLayout full(mask, 0, 5, /*prompt_columns=*/4, /*longest=*/5, true, true);
  EXPECT_TRUE(torch::equal(Positions::last_prompt(3).select(full, "t"),
                           torch::tensor({{0, 1, 1, 1, 0}, {0, 0, 1, 1, 0}}, torch::kBool)));
}

TEST(Positions, PromptFromEndSelectsOneTokenOfEachPrompt) {
  // The same two sequences: -1 is the last prompt token of each, -2 the one before it, and -3
  // is position 1 of the first prompt and nothing of the second (2 tokens long).
  const auto mask = torch::tensor({{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}}, torch::kInt64);
  const CallLayout full(mask, 0, 5, /*prompt_columns=*/4, /*longest=*/5, true, true);
  EXPECT_TRUE(torch::equal(Positions::prompt_from_end(1).select(full, "t"),
                           torch::tensor({{0, 0, 0, 1, 0}, {0, 0, 0, 1, 0}}, torch::kBool)));
  EXPECT_TRUE(torch::equal(Positions::parse("-2").select(full, "t"),
                           torch::tensor({{0, 0, 1, 0, 0}, {0, 0, 1, 0, 0}}, torch::kBool)));
  EXPECT_TRUE(torch::equal(Positions::prompt_from_end(3).select(full, "t"),
                           torch::tensor({{0, 1, 0, 0, 0}, {0, 0, 0, 0, 0}}, torch::kBool)));
  // A decode step (one column, past the prompt) selects nothing.
  const CallLayout step(mask, 4, 1, /*prompt_columns=*/4, /*longest=*/5, false, true);
  EXPECT_FALSE(Positions::prompt_from_end(1).select(step, "t").any().item<bool>());
  EXPECT_STEER_ERROR(Positions::prompt_from_end(0), "expected n >= 1 (1 = the last prompt token)");
}

}  // namespace
