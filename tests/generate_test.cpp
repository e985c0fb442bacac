// Generation: greedy output equals transformers' generate (reference made at test time by
// tests/fixtures/make_generate_fixtures.py), batches with left padding equal each prompt alone,
// the KV cache equals full recompute token for token, sampling is reproducible, stopping and
// streaming work, bad options are refused.
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::GenerateOptions;
using steer::test::default_model_dir;
using steer::test::fixture_dir;

namespace {

const steer::Model& default_model() {
  static const steer::Model model = steer::Model::load(default_model_dir());
  return model;
}

const steer::Model& tiny(const std::string& family) {
  static const steer::Model llama = steer::Model::load(fixture_dir() + "/tiny-llama");
  static const steer::Model gpt2 = steer::Model::load(fixture_dir() + "/tiny-gpt2");
  return family == "llama" ? llama : gpt2;
}

nlohmann::json reference() {
  std::ifstream in(fixture_dir() + "/generate-reference.json");
  return nlohmann::json::parse(in);
}

std::vector<std::vector<int64_t>> random_prompts(int64_t vocab, std::vector<int64_t> lengths,
                                                 uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<std::vector<int64_t>> prompts;
  for (const auto length : lengths) {
    const auto ids = torch::randint(0, vocab, {length}, torch::kInt64);
    prompts.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
  }
  return prompts;
}

// How many leading steps of a greedy reference are certain to survive float32 noise: steps
// whose gap between the two largest logits (over the largest |logit|, from the fixture) is more
// than twice kLogitTolerance (each of the two logits may move by that much). The reference
// prompts have gaps of 1.4e-3 and more, 7x that, so whole generations are compared; a near tie
// on some other machine would shorten the comparison instead of failing it.
size_t certain_steps(const nlohmann::json& gaps) {
  size_t n = 0;
  while (n < gaps.size() && gaps[n].get<double>() > 2 * steer::test::kLogitTolerance) ++n;
  return n;
}

// The first `n` ids of `ids` (all of them if there are fewer).
std::vector<int64_t> first_ids(const std::vector<int64_t>& ids, size_t n) {
  return {ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(n, ids.size()))};
}

}  // namespace

TEST(Generate, GreedyEqualsTransformersForEachPrompt) {
  const auto expected = reference();
  const auto max_new = expected["max_new_tokens"].get<int64_t>();
  for (const auto& item : expected["alone"]) {
    const auto prompt = item["prompt"].get<std::string>();
    SCOPED_TRACE(prompt);
    EXPECT_EQ(default_model().tokenizer().encode(prompt),
              item["prompt_ids"].get<std::vector<int64_t>>());
    const auto g = default_model().generate(prompt, GenerateOptions().max_new_tokens(max_new));
    const auto expected_ids = item["ids"].get<std::vector<int64_t>>();
    // One gap per generated token, and one for the end of sequence when it came.
    const auto certain = certain_steps(item["gaps"]);
    EXPECT_EQ(first_ids(g.ids, certain), first_ids(expected_ids, certain));
    if (certain == item["gaps"].size()) {
      EXPECT_EQ(g.ids, expected_ids);
      EXPECT_EQ(g.text, item["text"].get<std::string>());
    } else {
      std::printf("[ greedy  ] near tie at step %zu: compared the first %zu tokens\n", certain,
                  certain);
    }
    EXPECT_EQ(g.stop_reason, static_cast<int64_t>(g.ids.size()) == max_new ? "max_new_tokens" : "eos");
  }
}

TEST(Generate, LeftPaddedBatchEqualsTransformersAndEachPromptAlone) {
  const auto expected = reference();
  std::vector<std::string> prompts;
  for (const auto& item : expected["alone"]) prompts.push_back(item["prompt"].get<std::string>());
  const auto options = GenerateOptions().max_new_tokens(expected["max_new_tokens"].get<int64_t>());
  const auto batch = default_model().generate(prompts, options);
  ASSERT_EQ(batch.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    const auto certain = std::min(certain_steps(expected["batched_gaps"][i]),
                                  certain_steps(expected["alone"][i]["gaps"]));
    EXPECT_EQ(first_ids(batch[i].ids, certain),
              first_ids(expected["batched"][i].get<std::vector<int64_t>>(), certain));
    EXPECT_EQ(first_ids(batch[i].ids, certain),
              first_ids(expected["alone"][i]["ids"].get<std::vector<int64_t>>(), certain));
    if (certain < expected["alone"][i]["gaps"].size()) {
      std::printf("[ greedy  ] near tie at step %zu: compared the first %zu tokens\n", certain,
                  certain);
    }
  }
}

TEST(Generate, CacheEqualsFullRecomputeTokenForToken) {
  const auto prompts = std::vector<std::string>{"Once upon a time", "Steering vectors are"};
  const auto options = GenerateOptions().max_new_tokens(32).stop_at_eos(false);
  const auto cached = default_model().generate(prompts, options);
  const auto recomputed = default_model().generate(prompts, GenerateOptions(options).use_cache(false));
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(cached[i].ids.size(), 32u);
    EXPECT_EQ(cached[i].ids, recomputed[i].ids) << prompts[i];
  }
  for (const auto* family : {"llama", "gpt2"}) {
    const auto& model = tiny(family);
    const auto ids = random_prompts(model.vocab_size(), {3, 9, 1}, 11);
    const auto a = model.generate(ids, options);
    const auto b = model.generate(ids, GenerateOptions(options).use_cache(false));
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(a[i].ids, b[i].ids) << family << " " << i;
  }
}

TEST(Generate, SamplingIsReproducibleBySeed) {
  const auto& model = tiny("llama");
  const auto prompts = random_prompts(model.vocab_size(), {4, 6}, 5);
  const auto options = GenerateOptions().max_new_tokens(30).temperature(1.0).stop_at_eos(false);
  const auto a = model.generate(prompts, GenerateOptions(options).seed(7));
  const auto b = model.generate(prompts, GenerateOptions(options).seed(7));
  const auto c = model.generate(prompts, GenerateOptions(options).seed(8));
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(a[i].ids, b[i].ids);
    EXPECT_NE(a[i].ids, c[i].ids) << "30 tokens sampled at temperature 1 with two seeds agree";
  }
  // top_k = 1 and a tiny top_p leave only the most likely token: greedy.
  const auto greedy = model.generate(prompts, GenerateOptions().max_new_tokens(30).stop_at_eos(false));
  const auto top_k = model.generate(prompts, GenerateOptions(options).top_k(1).seed(3));
  const auto top_p = model.generate(prompts, GenerateOptions(options).top_p(1e-9).seed(3));
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(top_k[i].ids, greedy[i].ids);
    EXPECT_EQ(top_p[i].ids, greedy[i].ids);
  }
}

// With one seed per prompt, each prompt of a padded batch draws from its own generator: the
// batch samples what each prompt samples alone with its seed, token for token. Exact equality
// holds because the padded and the lone logits differ by float32 rounding only (~1e-6), far
// less than the gap a multinomial draw would need to land on another token, except with
// probability of that order per draw. A shared generator (seed) fails this: prompt 1 then
// draws after prompt 0 from the same stream.
TEST(Generate, SeedsPerPromptMakeABatchEqualEachPromptAlone) {
  for (const auto* family : {"llama", "gpt2"}) {
    const auto& model = tiny(family);
    const auto prompts = random_prompts(model.vocab_size(), {4, 9, 1}, 21);
    const auto options =
        GenerateOptions().max_new_tokens(24).temperature(1.0).top_k(50).stop_at_eos(false);
    const std::vector<uint64_t> seeds = {40, 41, 42};
    const auto batch = model.generate(prompts, GenerateOptions(options).seeds(seeds));
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto alone = model.generate(std::vector<std::vector<int64_t>>{prompts[i]},
                                        GenerateOptions(options).seed(seeds[i]));
      EXPECT_EQ(batch[i].ids, alone.front().ids) << family << " prompt " << i;
    }
  }
  const std::vector<std::vector<int64_t>> two = {{1, 2}, {3}};
  EXPECT_STEER_ERROR(tiny("llama").generate(two, GenerateOptions().temperature(1).seeds({1})),
                     "seeds has 1 seeds for a batch of 2 prompts; expected one per prompt");
  EXPECT_STEER_ERROR(
      tiny("llama").generate(two, GenerateOptions().temperature(1).seed(1).seeds({1, 2})),
      "both seed and seeds are set");
  EXPECT_STEER_ERROR(tiny("llama").generate(two, GenerateOptions().seeds({1, 2})),
                     "seeds is set but temperature is 0");
}

TEST(Generate, TopKAndTopPLimitTheTokensSampled) {
  // With top_k = 3, every sampled token is among the 3 most likely at its step; check through
  // the cache-free path by recomputing the logits of each prefix.
  const auto& model = tiny("gpt2");
  const auto prompt = random_prompts(model.vocab_size(), {5}, 2).front();
  const auto g = model.generate(std::vector<std::vector<int64_t>>{prompt},
                                GenerateOptions().max_new_tokens(20).temperature(2.0).top_k(3).seed(1).stop_at_eos(false))
                     .front();
  auto sequence = prompt;
  for (const auto token : g.ids) {
    const auto logits = model.logits(steer::to_batch({sequence}))[0][-1];
    const auto top = std::get<1>(logits.topk(3));
    EXPECT_TRUE((top == token).any().item<bool>()) << "token " << token << " is not in the top 3";
    sequence.push_back(token);
  }
}

namespace {

// The nucleus of a next-token distribution, computed here in float64 without steer: token ids in
// order of decreasing probability, up to and including the first that brings the mass to `p`.
std::vector<int64_t> nucleus(const torch::Tensor& logits, double temperature, double p) {
  const auto probs = (logits.to(torch::kFloat64) / temperature).softmax(-1);
  const auto order = std::get<1>(probs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true));
  const auto* prob = probs.data_ptr<double>();
  const auto* id = order.data_ptr<int64_t>();
  std::vector<int64_t> out;
  double mass = 0;
  for (int64_t i = 0; i < order.numel() && mass < p; ++i) {
    out.push_back(id[i]);
    mass += prob[id[i]];
  }
  return out;
}

bool contains(const std::vector<int64_t>& ids, int64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

TEST(Generate, TopPSamplesOnlyFromTheNucleus) {
  // Every token sampled with top_p 0.9 lies in the smallest set of tokens whose probability
  // reaches 0.9, recomputed from the logits of its prefix. The set is taken for p + 1e-4: steer
  // sums float32 probabilities through the KV cache, the check float64 ones by full recompute,
  // and a token at the edge of the set may fall either way by ~1e-6; 1e-4 is still far below
  // the probability of any token it could add here. After "The capital of France is" the
  // nucleus holds 10 of 49152 tokens.
  const auto& model = default_model();
  const double top_p = 0.9, temperature = 1.0;
  const auto prompt = model.tokenizer().encode("The capital of France is");
  std::set<std::vector<int64_t>> outputs;
  size_t largest = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const auto g = model.generate(std::vector<std::vector<int64_t>>{prompt},
                                  GenerateOptions().max_new_tokens(6).temperature(temperature)
                                      .top_p(top_p).seed(seed).stop_at_eos(false)).front();
    auto sequence = prompt;
    for (const auto token : g.ids) {
      const auto logits = model.logits(steer::to_batch({sequence}))[0][-1];
      const auto allowed = nucleus(logits, temperature, top_p + 1e-4);
      largest = std::max(largest, allowed.size());
      EXPECT_TRUE(contains(allowed, token)) << "seed " << seed << ": token " << token
                                            << " is outside the nucleus of " << allowed.size();
      sequence.push_back(token);
    }
    outputs.insert(g.ids);
  }
  EXPECT_GT(largest, 1u) << "the nucleus never held more than one token: nothing was tested";
  EXPECT_GT(outputs.size(), 1u) << "four seeds sampled the same six tokens";
}

TEST(Generate, TopPBetweenTheTopTwoSamplesBothOfThem) {
  // After "My favourite colour is", " blue" and " a" are the two most likely tokens (0.11 and
  // 0.09). A top_p between P1 and P1 + P2 makes the nucleus exactly those two: 32 seeds sample
  // only them, and both of them.
  const auto& model = default_model();
  const auto prompt = model.tokenizer().encode("My favourite colour is");
  const auto probs = model.logits(steer::to_batch({prompt}))[0][-1].to(torch::kFloat64).softmax(-1);
  const auto [top, ids] = probs.topk(2);
  const double p1 = top[0].item<double>(), p2 = top[1].item<double>();
  ASSERT_GT(p2 / (p1 + p2), 0.25) << "the second token is too rare for 32 seeds to sample it";
  const double top_p = p1 + p2 / 2;
  ASSERT_EQ(nucleus(probs.log(), 1.0, top_p).size(), 2u);
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    const auto g = model.generate(std::vector<std::vector<int64_t>>{prompt},
                                  GenerateOptions().max_new_tokens(1).temperature(1.0)
                                      .top_p(top_p).seed(seed).stop_at_eos(false)).front();
    ASSERT_EQ(g.ids.size(), 1u);
    seen.insert(g.ids[0]);
  }
  EXPECT_EQ(seen, (std::set<int64_t>{ids[0].item<int64_t>(), ids[1].item<int64_t>()}));
}

TEST(Generate, StopsAtStopTokensStopStringsAndMaxNewTokens) {
  const std::string prompt = "The capital of France is";
  const auto free = default_model().generate(prompt, GenerateOptions().max_new_tokens(12).stop_at_eos(false));
  ASSERT_EQ(free.ids.size(), 12u);
  EXPECT_EQ(free.stop_reason, "max_new_tokens");

  // Stop at the first token from the third on that did not come before it.
  size_t first_new = 2;
  while (first_new < free.ids.size() &&
         std::find(free.ids.begin(), free.ids.begin() + first_new, free.ids[first_new]) !=
             free.ids.begin() + first_new) {
    ++first_new;
  }
  ASSERT_LT(first_new, free.ids.size());
  const auto by_token = default_model().generate(
      prompt, GenerateOptions().max_new_tokens(12).stop_tokens({free.ids[first_new]}));
  EXPECT_EQ(by_token.stop_reason, "stop_token");
  EXPECT_EQ(by_token.ids, std::vector<int64_t>(free.ids.begin(), free.ids.begin() + first_new));

  const auto cut = free.text.substr(0, free.text.size() / 2);
  const auto stop_string = free.text.substr(free.text.size() / 2, 3);
  const auto by_string = default_model().generate(
      prompt, GenerateOptions().max_new_tokens(12).stop_strings({stop_string}));
  EXPECT_EQ(by_string.stop_reason, "stop_string");
  EXPECT_EQ(by_string.text, free.text.substr(0, free.text.find(stop_string)));
}

TEST(Generate, StreamingCallbackSeesEveryTokenInOrder) {
  std::vector<std::string> pieces(2);
  std::vector<int64_t> steps;
  const auto options = GenerateOptions().max_new_tokens(16).stop_at_eos(false).on_token(
      [&](const steer::TokenEvent& e) {
        pieces[e.sequence] += e.text;
        if (e.sequence == 0) steps.push_back(e.step);
      });
  const auto out = default_model().generate(std::vector<std::string>{"Café au lait, 東京, ", "I love"}, options);
  EXPECT_EQ(pieces[0], out[0].text);
  EXPECT_EQ(pieces[1], out[1].text);
  ASSERT_EQ(steps.size(), 16u);
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(steps[i], i);
}

TEST(Generate, ChatPromptGetsAnAnswer) {
  const auto& tokenizer = default_model().tokenizer();
  const auto prompt = tokenizer.apply_chat_template({{"user", "What is the capital of France?"}},
                                                    /*add_generation_prompt=*/true);
  EXPECT_EQ(prompt.rfind("<|im_start|>system\nYou are a helpful AI assistant named SmolLM", 0), 0u);
  const auto answer = default_model().generate(prompt, GenerateOptions().max_new_tokens(40));
  EXPECT_EQ(answer.stop_reason, "eos");
  EXPECT_NE(answer.text.find("Paris"), std::string::npos) << answer.text;
}

TEST(Generate, BadInputNamesTheArgument) {
  const auto& model = tiny("llama");
  const std::vector<std::vector<int64_t>> one = {{1, 2, 3}};
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().max_new_tokens(0)),
                     "max_new_tokens must be > 0, got 0");
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().top_p(0.0)), "top_p must be in (0, 1], got 0");
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().top_p(1.5)), "top_p must be in (0, 1], got 1.5");
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().temperature(-1)), "temperature must be >= 0");
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().top_k(-2)), "top_k must be >= 0");
  EXPECT_STEER_ERROR(model.generate(one, GenerateOptions().stop_strings({""})),
                     "stop_strings must not contain an empty string");
  EXPECT_STEER_ERROR(model.generate(std::string("")), "prompt 0 is empty");
  EXPECT_STEER_ERROR(model.generate(std::vector<std::vector<int64_t>>{{1}, {}}), "prompt 1 has no token");
  EXPECT_STEER_ERROR(model.generate(std::vector<std::vector<int64_t>>{{1, model.vocab_size()}}),
                     "token id " + std::to_string(model.vocab_size()) + " is outside the vocabulary");
  EXPECT_STEER_ERROR(steer::to_batch({{1, 2, 3}, {4, 5}}),
                     "ragged batch: sequence 1 has 2 tokens but sequence 0 has 3");
  const auto gpt2_limit = tiny("gpt2").config().max_positions;
  EXPECT_STEER_ERROR(tiny("gpt2").generate(std::vector<std::vector<int64_t>>{{1, 2}},
                                           GenerateOptions().max_new_tokens(gpt2_limit)),
                     "exceeds the model's " + std::to_string(gpt2_limit) + " positions");
}

TEST(Generate, LeftPadBuildsIdsAndMask) {
  const auto [ids, mask] = steer::left_pad({{7, 8, 9}, {5}}, /*pad_id=*/0);
  EXPECT_TRUE(torch::equal(ids, torch::tensor({{7, 8, 9}, {0, 0, 5}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(mask, torch::tensor({{1, 1, 1}, {0, 0, 1}}, torch::kInt64)));
}
