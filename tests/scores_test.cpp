// Scores (next-token log-probabilities, token-set log-odds, KL, perplexity) against transformers
// (reference from tests/fixtures/make_extract_fixtures.py) and closed forms; prompt and pair files;
// layer lists.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::test::default_model_dir;
using steer::test::fixture_dir;
using steer::test::scratch_path;
using steer::test::write_bytes;

namespace {

TEST(Scores, MatchTransformersOnTheDefaultModel) {
  const auto model = steer::Model::load(default_model_dir());
  const auto ref = steer::io::read_safetensors(fixture_dir() + "/extract.safetensors");
  const auto texts =
      nlohmann::json::parse(ref.metadata.at("ppl_texts")).get<std::vector<std::string>>();
  // Two prompts of different lengths in one padded batch.
  const auto lp = steer::next_token_log_probs(
      model, {model.tokenizer().encode(texts[0]), model.tokenizer().encode(texts[1])});
  // log p_j = z_j - logsumexp(z) moves by at most |dz_j| + max |dz|, that is by
  // 2 * kLogitTolerance * max |z| (model_support.hpp): an absolute bound in nats, from the
  // logit scale of these texts (about 30, so 6e-3 nats). A log-probability of the wrong token
  // or position is off by nats.
  double scale = 0;
  for (const auto& text : texts) {
    const auto logits = model.logits(steer::to_batch({model.tokenizer().encode(text)}));
    scale = std::max(scale, logits.abs().max().item<double>());
  }
  const double nats = 2 * steer::test::kLogitTolerance * scale;
  const auto lp_diff = (lp - ref.at("scores.next_log_probs")).abs().max().item<double>();
  EXPECT_LE(lp_diff, nats);
  // Perplexity is exp(mean negative log-likelihood): its logarithm moves by at most the same
  // bound. Counting one token more or fewer, or padding, moves it by far more.
  const auto expected = ref.at("scores.perplexity").item<double>();
  const double perplexity = steer::perplexity(model, texts, /*batch_size=*/2);
  EXPECT_NEAR(std::log(perplexity), std::log(expected), nats);
  std::printf("[ scores  ] max |log p difference| %.3g nats, |log perplexity difference| %.3g "
              "(bound %.3g nats)\n", lp_diff, std::abs(std::log(perplexity / expected)), nats);
  EXPECT_STEER_ERROR(steer::perplexity(model, {"Hi"}), "perplexity: text 0 has 1 tokens");
}

TEST(Scores, LogOddsAndKlHaveTheirClosedForms) {
  // Row 0: p = 0.2 + 0.3 = 0.5 -> log-odds 0; row 1: p = 0.9 -> log(9).
  const auto probs = torch::tensor({{0.2, 0.3, 0.5}, {0.85, 0.05, 0.1}}, torch::kFloat64);
  const auto odds = steer::token_set_log_odds(probs.log(), {0, 1});
  // Closed forms in float64 from a handful of terms: a few float64 roundings (u = 1.1e-16).
  EXPECT_NEAR(odds[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(odds[1].item<double>(), std::log(9.0), 1e-12);
  const auto q = torch::tensor({{0.25, 0.25, 0.5}, {0.85, 0.05, 0.1}}, torch::kFloat64);
  const auto kl = steer::kl_divergence(probs.log(), q.log());
  EXPECT_NEAR(kl[0].item<double>(), 0.2 * std::log(0.2 / 0.25) + 0.3 * std::log(0.3 / 0.25), 1e-12);
  EXPECT_NEAR(kl[1].item<double>(), 0.0, 1e-15);
  EXPECT_STEER_ERROR(steer::token_set_log_odds(probs.log(), {3}),
                     "token_set_log_odds: token id 3 is outside the vocabulary of 3 tokens");
  EXPECT_STEER_ERROR(steer::kl_divergence(probs, q[0]), "kl_divergence: expected two tensors");
}

TEST(PromptFiles, ReadJsonListsObjectsTextAndPairs) {
  const auto json = scratch_path("prompt_files", "prompts.json");
  write_bytes(json, R"([{"instruction": "Write a poem", "category": null}, "Say hi", {"text": "x"}])");
  EXPECT_EQ(steer::io::read_prompts(json), (std::vector<std::string>{"Write a poem", "Say hi", "x"}));
  const auto text = scratch_path("prompt_files", "prompts.txt");
  write_bytes(text, "first line\r\n\n  \nsecond line\n");
  EXPECT_EQ(steer::io::read_prompts(text), (std::vector<std::string>{"first line", "second line"}));
  const auto pairs = scratch_path("prompt_files", "pairs.json");
  write_bytes(pairs, R"([["Love", "Hate"], {"positive": "Kind", "negative": "Cruel"}])");
  const auto read = steer::io::read_pairs(pairs);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[1].first, "Kind");
  EXPECT_EQ(read[1].second, "Cruel");

  EXPECT_STEER_ERROR(steer::io::read_prompts(scratch_path("prompt_files", "missing.json")),
                     "read_prompts: cannot open");
  write_bytes(json, "[1, 2]");
  EXPECT_STEER_ERROR(steer::io::read_prompts(json), "read_prompts: entry 0 of", "is 1; expected a "
                     "string or an object with a string \"instruction\"");
  write_bytes(json, "[\"unterminated");
  EXPECT_STEER_ERROR(steer::io::read_prompts(json), "is not valid JSON");
  write_bytes(json, "[]");
  EXPECT_STEER_ERROR(steer::io::read_prompts(json), "holds no prompts");
  write_bytes(pairs, R"([["only one"]])");
  EXPECT_STEER_ERROR(steer::io::read_pairs(pairs), "read_pairs: entry 0 of",
                     "expected [\"positive\", \"negative\"]");
}

TEST(LayerLists, ParseRangesAndLists) {
  EXPECT_EQ(steer::parse_layers("4-6,10", 30), (std::vector<int64_t>{4, 5, 6, 10}));
  EXPECT_EQ(steer::parse_layers("3,1,3", 30), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(steer::parse_layers("all", 3), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_STEER_ERROR(steer::parse_layers("5-2", 30), "parse_layers: '5-2' has the range '5-2' "
                     "with its end before its start");
  EXPECT_STEER_ERROR(steer::parse_layers("30", 30), "names layer 30, out of range",
                     "with layers 0 to 29");
  EXPECT_STEER_ERROR(steer::parse_layers("1,,2", 30), "has '' where a layer number belongs");
}

}  // namespace
