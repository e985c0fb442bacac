// Hooks: recorded activations and steered logits against transformers (reference made at test
// time by tests/fixtures/make_hook_fixtures.py), ablation, padding, KV cache vs full recompute,
// enable / detach / order, and the errors users see.
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "hook_support.hpp"
#include "model_support.hpp"

using steer::HookPoint;
using steer::Positions;
using steer::test::default_model_dir;
using steer::test::fixture_dir;
using steer::test::all_selections;
using steer::test::cached_logits;
using steer::test::expect_add_matches;
using steer::test::expect_records_match;
using steer::test::kSites;
using steer::test::kActivationTolerance;
using steer::test::kLogitTolerance;
using steer::test::max_abs_diff;
using steer::test::max_logit_diff;
using steer::test::max_row_relative_diff;
using steer::test::random_ids;
using steer::test::tiny;
using steer::test::padded_batch;

namespace {

std::string reference(const std::string& name) {
  return fixture_dir() + "/hooks/" + name + ".safetensors";
}

TEST(HooksRecord, TinyLlamaMatchesTransformers) {
  expect_records_match(tiny("llama"), reference("tiny-llama"));
}
TEST(HooksRecord, TinyGpt2MatchesTransformers) {
  expect_records_match(tiny("gpt2"), reference("tiny-gpt2"));
}
TEST(HooksRecord, DefaultModelMatchesTransformers) {
  expect_records_match(default_model_dir(), reference("default"));
}

TEST(HooksAdd, TinyLlamaMatchesTransformers) {
  expect_add_matches(tiny("llama"), reference("tiny-llama"));
}
TEST(HooksAdd, TinyGpt2MatchesTransformers) {
  expect_add_matches(tiny("gpt2"), reference("tiny-gpt2"));
}
TEST(HooksAdd, DefaultModelMatchesTransformers) {
  expect_add_matches(default_model_dir(), reference("default"));
}

TEST(HooksAdd, ZeroCoefficientIsBitIdentical) {
  for (const auto* family : {"llama", "gpt2"}) {
    const auto model = steer::Model::load(tiny(family));
    const auto ids = random_ids(model, 2, 7, 1);
    const auto plain = model.logits(ids);
    std::vector<steer::HookHandle<steer::Add>> hooks;
    for (int64_t l = 0; l < model.n_layers(); ++l) {
      for (const char* site : kSites) {
        hooks.push_back(steer::hook(model, std::string(site) + "." + std::to_string(l),
                                    steer::Add(torch::randn({model.d_model()}), 0.0)));
      }
    }
    EXPECT_TRUE(torch::equal(model.logits(ids), plain)) << family;
  }
}

TEST(HooksAblate, RemovesProjectionOnEachDirection) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto ids = random_ids(model, 2, 6, 2);
  torch::manual_seed(3);
  const auto directions = torch::randn({2, model.d_model()});
  auto ablate = steer::hook(model, "resid_post.1", steer::Ablate(directions));
  auto after = steer::hook(model, "resid_post.1", steer::Record());
  model.logits(ids);
  const auto x = after->sequence(0).to(torch::kFloat64);
  for (int64_t i = 0; i < 2; ++i) {
    const auto r = directions[i].to(torch::kFloat64) / directions[i].norm().item<double>();
    // x - (x.r) r in float32: x.r itself, a sum of d_model = 64 products, carries up to
    // d_model * u = 3.8e-6 of |x| (u = 2^-24, rounding all one way); 1e-5 covers that worst case.
    // Without the ablation the projection is ~1/sqrt(64) = 0.12 of |x|.
    const auto relative = (x.matmul(r).abs() / x.norm(2, {1})).max().item<double>();
    EXPECT_LT(relative, 1e-5) << "direction " << i;
  }
  // The projection-setting variant.
  ablate.detach();
  after.detach();
  auto set = steer::hook(model, "resid_post.1", steer::Ablate(directions[0], {2.5}));
  after = steer::hook(model, "resid_post.1", steer::Record());
  model.logits(ids);
  const auto r = directions[0].to(torch::kFloat64) / directions[0].norm().item<double>();
  // As above, relative to the row (|x| is ~8 here); the projection before was ~1.
  const auto x1 = after->sequence(1).to(torch::kFloat64);
  EXPECT_LT(((x1.matmul(r) - 2.5).abs() / x1.norm(2, {1})).max().item<double>(), 1e-5);
}

TEST(HooksPositions, PaddedBatchEqualsEachSequenceAlone) {
  for (const auto* family : {"llama", "gpt2"}) {
    const auto model = steer::Model::load(tiny(family));
    const auto batch = padded_batch(model, {8, 5, 3}, 4);
    const auto v = torch::randn({model.d_model()});
    for (const auto& [name, positions] : all_selections()) {
      SCOPED_TRACE(std::string(family) + " " + name);
      auto h = steer::hook(model, "resid_pre.1", steer::Add(v, 2.0), positions);
      // prompt_length 6 columns: prompt / generated split inside the padded batch.
      const int64_t prompt_columns = 6;
      const auto logits = model.logits(batch.ids, batch.mask, prompt_columns);
      for (size_t i = 0; i < batch.alone.size(); ++i) {
        const auto n = batch.alone[i].size(1);
        const auto pad = batch.ids.size(1) - n;
        const auto alone = model.logits(batch.alone[i], {}, std::max<int64_t>(prompt_columns - pad, 0));
        EXPECT_LE(max_logit_diff(logits[i].slice(0, pad), alone[0]), kLogitTolerance)
            << "sequence " << i;
      }
    }
  }
}

TEST(HooksPositions, CachedEqualsFullRecomputeForEverySelection) {
  for (const auto* family : {"llama", "gpt2"}) {
    const auto model = steer::Model::load(tiny(family));
    const auto batch = padded_batch(model, {9, 6}, 5);
    const auto v = torch::randn({model.d_model()});
    const int64_t prompt = 5;
    const auto plain_full = model.logits(batch.ids, batch.mask, prompt);
    for (const auto& [name, positions] : all_selections()) {
      SCOPED_TRACE(std::string(family) + " " + name);
      auto h = steer::hook(model, "resid_post.0", steer::Add(v, 3.0), positions);
      const auto cached = cached_logits(model, batch.ids, batch.mask, prompt);
      // "last" selects each token when it is the newest: in full recompute with the prompt
      // length given, the last prompt token and every token after it.
      const auto full = model.logits(batch.ids, batch.mask, prompt);
      // Compare real tokens only (padding rows are never read).
      const auto real = batch.mask.to(torch::kBool);
      EXPECT_LE(max_logit_diff(cached.index({real}), full.index({real})), kLogitTolerance);
      // Every selection steers something: far more than float32 noise moves the logits.
      EXPECT_GT(max_logit_diff(full, plain_full), 10 * kLogitTolerance);
    }
  }
}

// Steered greedy generation through the KV cache equals steered generation by full recompute,
// token for token, for every kind of position selection, on a left-padded batch.
TEST(HooksPositions, SteeredGenerationCachedEqualsRecomputed) {
  const auto options = steer::GenerateOptions().max_new_tokens(12).stop_at_eos(false);
  for (const auto* family : {"llama", "gpt2"}) {
    const auto model = steer::Model::load(tiny(family));
    const auto batch = padded_batch(model, {7, 4}, 9);
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& seq : batch.alone) {
      prompts.emplace_back(seq.data_ptr<int64_t>(), seq.data_ptr<int64_t>() + seq.size(1));
    }
    const auto plain = model.generate(prompts, options);
    const auto v = torch::randn({model.d_model()});
    for (const auto& [name, positions] : all_selections()) {
      SCOPED_TRACE(std::string(family) + " " + name);
      auto h = steer::hook(model, "resid_post.0", steer::Add(v, 4.0), positions);
      const auto cached = model.generate(prompts, options);
      const auto recomputed = model.generate(prompts, steer::GenerateOptions(options).use_cache(false));
      bool changed = false;
      for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(cached[i].ids, recomputed[i].ids) << "sequence " << i;
        changed = changed || cached[i].ids != plain[i].ids;
      }
      // "at" and "range" select prompt positions only in the longest prompt; all others
      // steer every sequence. Either way the output must move.
      EXPECT_TRUE(changed) << "steering changed no generated token";
    }
  }
  // The default model, with the selections used for steering in practice.
  const auto model = steer::Model::load(default_model_dir());
  const std::vector<std::string> prompts = {"I hate you because", "Tell me about the sea."};
  const auto v = torch::randn({model.d_model()}, torch::TensorOptions().dtype(torch::kFloat32));
  for (const auto& positions : {Positions::last(), Positions::generated(), Positions::all()}) {
    SCOPED_TRACE(positions.to_string());
    auto h = steer::hook(model, "resid_pre.10", steer::Add(v, 4.0), positions);
    const auto cached = model.generate(prompts, options);
    const auto recomputed = model.generate(prompts, steer::GenerateOptions(options).use_cache(false));
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(cached[i].ids, recomputed[i].ids);
  }
}

TEST(HooksPositions, DecodeStepSeesAbsolutePositions) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto batch = padded_batch(model, {7, 4}, 6);
  std::vector<torch::Tensor> seen;
  std::vector<int64_t> past;
  auto h = steer::hook(model, "attn_out.2", steer::Lambda([&](const torch::Tensor& x,
                                                              const steer::HookContext& ctx) {
    seen.push_back(ctx.positions().clone());
    past.push_back(ctx.past_length());
    EXPECT_EQ(ctx.point().to_string(), "attn_out.2");
    return x;
  }));
  cached_logits(model, batch.ids, batch.mask, 5);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(torch::equal(seen[0], torch::tensor({0, 1, 2, 3, 4, -1, -1, -1, 0, 1}).view({2, 5})));
  EXPECT_TRUE(torch::equal(seen[1], torch::tensor({5, 2}).view({2, 1})));
  EXPECT_TRUE(torch::equal(seen[2], torch::tensor({6, 3}).view({2, 1})));
  EXPECT_EQ(past, (std::vector<int64_t>{0, 5, 6}));
}

TEST(HooksRecord, CachedRecordEqualsFullRecord) {
  const auto model = steer::Model::load(tiny("gpt2"));
  const auto batch = padded_batch(model, {8, 5}, 7);
  auto full = steer::hook(model, "resid_post.1", steer::Record(), Positions::from(2));
  model.logits(batch.ids, batch.mask);
  full.enable(false);
  auto cached = steer::hook(model, "resid_post.1", steer::Record(), Positions::from(2));
  cached_logits(model, batch.ids, batch.mask, 4);
  EXPECT_EQ(cached->calls(), 5);
  for (int64_t b = 0; b < 2; ++b) {
    EXPECT_TRUE(torch::equal(full->positions(b), cached->positions(b)));
    EXPECT_LE(max_row_relative_diff(cached->sequence(b), full->sequence(b)), kActivationTolerance);
  }
  EXPECT_EQ(full->sequence(1).size(0), 3);
  // mean(true) keeps running sums that equal the mean of the kept rows.
  auto means = steer::hook(model, "resid_post.1", steer::Record(steer::RecordOptions().mean(true)),
                           Positions::from(2));
  model.logits(batch.ids, batch.mask);
  // Running float32 sums of 2 x 3 rows against the mean of the same rows: a few u of |mean|.
  EXPECT_LE(max_row_relative_diff(means->mean(), full->mean()), 1e-6);
}

TEST(HooksHandle, EnableDetachAndOrder) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto ids = random_ids(model, 1, 5, 8);
  const auto plain = model.logits(ids);
  auto twice = steer::hook(model, "mlp_out.1",
                           steer::Lambda([](const torch::Tensor& x, const steer::HookContext&) {
                             return x * 2;
                           }));
  auto plus_one = steer::hook(model, "mlp_out.1",
                              steer::Lambda([](const torch::Tensor& x, const steer::HookContext&) {
                                return x + 1;
                              }));
  auto record = steer::hook(model, "mlp_out.1", steer::Record());
  auto before = steer::hook(model, "model.layers.1.mlp.down_proj", steer::Record());
  const auto steered = model.logits(ids);
  EXPECT_GT(max_logit_diff(steered, plain), 10 * kLogitTolerance);
  // mlp_out is down_proj's output; hooks compose in order: (x * 2) + 1. Doubling is exact and
  // the addition rounds once, as here: bit for bit (x + 1 then * 2 is off by 1 everywhere).
  EXPECT_TRUE(torch::equal(record->sequence(0), before->sequence(0) * 2 + 1));
  twice.enable(false);
  plus_one.enable(false);
  EXPECT_TRUE(torch::equal(model.logits(ids), plain));
  twice.enable(true);
  plus_one.detach();
  record->clear();
  before->clear();
  model.logits(ids);
  EXPECT_TRUE(torch::equal(record->sequence(0), before->sequence(0) * 2));
  twice.detach();
  EXPECT_TRUE(torch::equal(model.logits(ids), plain));
}

TEST(HooksDtype, HalfAndBfloat16) {
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    const auto model = steer::Model::load(tiny("llama"), steer::ModelOptions().dtype(dtype));
    const auto ids = random_ids(model, 2, 5, 9);
    const auto plain = model.logits(ids);
    auto record = steer::hook(model, "resid_post.0", steer::Record(), Positions::last());
    auto add = steer::hook(model, "resid_pre.1", steer::Add(torch::ones({model.d_model()}), 0.0));
    EXPECT_TRUE(torch::equal(model.logits(ids), plain));
    EXPECT_EQ(record->sequence(0).scalar_type(), dtype);
    EXPECT_EQ(record->sequence(0).size(0), 1);  // the last token of the one call
    add->set_coefficient(4.0);
    const auto changed = model.logits(ids);
    // Far beyond the rounding of the dtype (u = 2^-8 for bfloat16, 2^-11 for float16, relative
    // to the logit scale).
    EXPECT_GT(max_logit_diff(changed, plain), 0.1);
    // set_coefficient scales the same vector as the constructor does: bit for bit the logits of
    // a fresh hook with the new coefficient.
    add.detach();
    auto fresh = steer::hook(model, "resid_pre.1", steer::Add(torch::ones({model.d_model()}), 4.0));
    EXPECT_TRUE(torch::equal(model.logits(ids), changed));
  }
}

// set_coefficient(c2) on a hook made with c1 gives the logits of a fresh hook made with c2, not
// those of c1, at every site, in float32.
TEST(HooksAdd, SetCoefficientEqualsAFreshHook) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto ids = random_ids(model, 2, 6, 12);
  torch::manual_seed(13);
  const auto v = torch::randn({model.d_model()});
  for (const char* site : kSites) {
    SCOPED_TRACE(site);
    const auto point = std::string(site) + ".1";
    torch::Tensor with_c1, with_c2;
    {
      auto fresh = steer::hook(model, point, steer::Add(v, 1.5));
      with_c1 = model.logits(ids);
    }
    {
      auto fresh = steer::hook(model, point, steer::Add(v, -2.0));
      with_c2 = model.logits(ids);
    }
    auto add = steer::hook(model, point, steer::Add(v, 1.5));
    EXPECT_TRUE(torch::equal(model.logits(ids), with_c1));
    add->set_coefficient(-2.0);
    EXPECT_EQ(add->coefficient(), -2.0);
    const auto got = model.logits(ids);
    EXPECT_TRUE(torch::equal(got, with_c2));
    EXPECT_GT(max_logit_diff(got, with_c1), 10 * kLogitTolerance);
  }
}

TEST(HooksErrors, MessagesNameTheProblem) {
  const auto model = steer::Model::load(tiny("gpt2"));
  const auto d = model.d_model();
  EXPECT_STEER_ERROR(steer::hook(model, "resid_post.1", steer::Add(torch::ones({d + 3}))),
                     "Add: vector has d_model=" + std::to_string(d + 3), "but layer 1 of model "
                     "'tiny-gpt2' has " + std::to_string(d), "(hint: vector from another model?)");
  auto nan = torch::ones({d});
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_STEER_ERROR(steer::Add(nan, 1.0), "Add: vector has 1 NaN or infinite entries",
                     "first at index 5");
  EXPECT_STEER_ERROR(steer::hook(model, "resid_post.7", steer::Record()),
                     "Record at resid_post.7: hook point 'resid_post.7' has layer 7",
                     "has layers 0 to 1");
  EXPECT_STEER_ERROR(steer::hook(model, "resid_posts.1", steer::Record()),
                     "'resid_posts.1' is neither a hook point", "resid_pre.L, resid_mid.L",
                     "with L from 0 to 1");
  EXPECT_STEER_ERROR(steer::hook(model, "transformer.h.1.mlpx", steer::Record()),
                     "module paths include: transformer.h.1");
  EXPECT_STEER_ERROR(HookPoint("resid_post.x"), "HookPoint: 'resid_post.x' has no valid layer");
  EXPECT_STEER_ERROR(Positions::range(4, 2), "Positions::range: expected 0 <= begin < end");
  EXPECT_STEER_ERROR(Positions::at({-1}), "Positions::at: position -1 is negative");
  EXPECT_STEER_ERROR(steer::Ablate(torch::zeros({d})), "Ablate: direction 0 is zero");
  {
    auto h = steer::hook(model, "resid_pre.0", steer::Add(torch::ones({d})), Positions::at({12}));
    EXPECT_STEER_ERROR(model.logits(random_ids(model, 1, 6, 1)),
                       "Add at resid_pre.0: position 12 is outside the sequence",
                       "the longest sequence of this call has 6 tokens");
  }
  {
    auto h = steer::hook(model, "transformer.h.0.mlp.c_fc", steer::Add(torch::ones({d})));
    EXPECT_STEER_ERROR(model.logits(random_ids(model, 1, 3, 1)),
                       "Add at transformer.h.0.mlp.c_fc: vector has d_model=" + std::to_string(d),
                       "but the activation has shape");
  }
  const auto bare = steer::Model::load(tiny("gpt2"), steer::ModelOptions().instrument(false));
  EXPECT_STEER_ERROR(steer::hook(bare, "resid_pre.0", steer::Record()),
                     "was loaded with ModelOptions().instrument(false)");
}

TEST(HooksPoints, ModulePathAndInstrumentationOff) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto bare = steer::Model::load(tiny("llama"), steer::ModelOptions().instrument(false));
  const auto ids = random_ids(model, 2, 4, 10);
  EXPECT_TRUE(torch::equal(model.logits(ids), bare.logits(ids)));
  // resid_post of layer L is resid_pre of layer L+1 and the output of module model.layers.L.
  auto post = steer::hook(model, "resid_post.0", steer::Record());
  auto pre = steer::hook(model, "resid_pre.1", steer::Record());
  auto block = steer::hook(model, HookPoint::module("model.layers.0"), steer::Record());
  model.logits(ids);
  EXPECT_TRUE(torch::equal(post->sequence(1), pre->sequence(1)));
  EXPECT_TRUE(torch::equal(post->sequence(1), block->sequence(1)));
}

}  // namespace
