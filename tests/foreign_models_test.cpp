// Models that steer did not script: transformers' models traced directly and a scripted module
// with GPT-NeoX names and tuple outputs, all loaded without steer.json (layers found from module
// names), and steer's own traced exports (no KV cache method). Fixtures:
// tests/fixtures/make_foreign_fixtures.py.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "hook_support.hpp"
#include "model_support.hpp"

using steer::Positions;
using steer::test::all_selections;
using steer::test::expect_add_matches;
using steer::test::expect_records_match;
using steer::test::fixture_dir;
using steer::test::kSites;
using steer::test::kActivationTolerance;
using steer::test::kLogitTolerance;
using steer::test::max_logit_diff;
using steer::test::max_row_relative_diff;
using steer::test::padded_batch;
using steer::test::random_ids;
using steer::test::tiny;

namespace {

// Bounds: kActivationTolerance per activation row and kLogitTolerance of the logit scale
// (model_support.hpp, derived in docs/reliability.md). Traced and scripted graphs of the same
// weights may fuse or order operations differently: float32 noise of the same size.

std::string foreign(const std::string& name) { return fixture_dir() + "/foreign/" + name; }

std::vector<std::string> every_site(const steer::Model& model) {
  std::vector<std::string> out;
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    for (const char* site : kSites) out.push_back(std::string(site) + "." + std::to_string(l));
  }
  return out;
}

// ----------------------------------------------------------------------------- transformers, traced

TEST(ForeignTraced, RecordMatchesTransformers) {
  expect_records_match(foreign("hf-llama"), foreign("hf-llama.safetensors"));
  expect_records_match(foreign("hf-gpt2"), foreign("hf-gpt2.safetensors"));
}

TEST(ForeignTraced, AddMatchesTransformers) {
  expect_add_matches(foreign("hf-llama"), foreign("hf-llama.safetensors"));
  expect_add_matches(foreign("hf-gpt2"), foreign("hf-gpt2.safetensors"));
}

TEST(ForeignTraced, ZeroCoefficientIsBitIdentical) {
  for (const auto* name : {"hf-llama", "hf-gpt2"}) {
    const auto model = steer::Model::load(foreign(name));
    const auto ids = random_ids(model, 2, 7, 1);
    const auto plain = model.logits(ids);
    std::vector<steer::HookHandle<steer::Add>> hooks;
    for (const auto& point : every_site(model)) {
      hooks.push_back(steer::hook(model, point, steer::Add(torch::randn({model.d_model()}), 0.0)));
    }
    EXPECT_TRUE(torch::equal(model.logits(ids), plain)) << name;
  }
}

// The layout comes from the module names, d_model and the vocabulary from the embedding.
TEST(ForeignTraced, LayoutFromModuleNames) {
  const auto llama = steer::Model::load(foreign("hf-llama"));
  EXPECT_EQ(llama.config().family, "llama");
  EXPECT_EQ(llama.n_layers(), 3);
  EXPECT_EQ(llama.d_model(), 64);
  EXPECT_EQ(llama.layer(2).mlp, "model.layers.2.mlp");
  EXPECT_TRUE(llama.has_tokenizer());
  EXPECT_FALSE(llama.has_kv_cache());
  // A .pt file: no tokenizer; GPT-2's learned positions give the position limit.
  const auto gpt2 = steer::Model::load(foreign("hf-gpt2/model.pt"));
  EXPECT_EQ(gpt2.config().family, "gpt2");
  EXPECT_EQ(gpt2.n_layers(), 2);
  EXPECT_EQ(gpt2.d_model(), 32);
  EXPECT_EQ(gpt2.config().max_positions, 256);
  EXPECT_EQ(gpt2.layer(1).attn, "transformer.h.1.attn");
  EXPECT_FALSE(gpt2.has_tokenizer());
  EXPECT_STEER_ERROR(steer::hook(gpt2, "resid_post.1", steer::Add(torch::ones({33}))),
                     "Add: vector has d_model=33 but layer 1 of model 'hf-gpt2/model.pt' has 32");
  EXPECT_STEER_ERROR(steer::hook(gpt2, "mlp_out.2", steer::Record()),
                     "hook point 'mlp_out.2' has layer 2 but model 'hf-gpt2/model.pt' has layers "
                     "0 to 1");
}

// Generation runs by full recompute; without a tokenizer from ids only.
TEST(ForeignTraced, GenerateWithAndWithoutTokenizer) {
  const auto options = steer::GenerateOptions().max_new_tokens(6).stop_at_eos(false);
  const auto llama = steer::Model::load(foreign("hf-llama"));
  const auto text = llama.generate("The quick brown fox", options);
  EXPECT_EQ(text.ids.size(), 6u);
  EXPECT_EQ(text.text, llama.tokenizer().decode(text.ids));

  const auto gpt2 = steer::Model::load(foreign("hf-gpt2/model.pt"));
  const std::vector<int64_t> prompt = {5, 17, 42, 7};
  const auto out = gpt2.generate(std::vector<std::vector<int64_t>>{prompt}, options).front();
  ASSERT_EQ(out.ids.size(), 6u);
  EXPECT_EQ(out.text, "");
  // Greedy: each token is the argmax after the tokens before it.
  auto ids = prompt;
  for (auto token : out.ids) {
    const auto logits = gpt2.logits(torch::tensor(ids, torch::kInt64).unsqueeze(0));
    EXPECT_EQ(logits[0][-1].argmax().item<int64_t>(), token);
    ids.push_back(token);
  }
  EXPECT_STEER_ERROR(gpt2.tokenizer(), "Model::tokenizer: model '", "' has no tokenizer",
                     "hint: put the model's tokenizer.json next to its model.pt");
  EXPECT_STEER_ERROR(gpt2.generate("hello", options),
                     "generate: text prompts need the model's tokenizer",
                     "generate from token ids");
  EXPECT_STEER_ERROR(gpt2.generate(std::vector<std::vector<int64_t>>{prompt},
                                   steer::GenerateOptions(options).stop_strings({"x"})),
                     "generate: stop_strings need the model's tokenizer");
  // forward(input_ids) has no mask: a left-padded batch cannot run.
  const auto batch = padded_batch(gpt2, {5, 3}, 2);
  EXPECT_STEER_ERROR(gpt2.logits(batch.ids, batch.mask),
                     "Model::logits: model '", "' has forward(input_ids) without an attention mask",
                     "run each sequence alone");
  EXPECT_STEER_ERROR(gpt2.make_cache(1, 8), "Model::make_cache: model '",
                     "has no KV cache method (forward_cached)", "generate falls back to full "
                     "recompute by itself");
}

// ----------------------------------------------------------------------------- tuple outputs

// The attention of the GPT-NeoX-named module returns (out, weights): hooks act on element 0.
TEST(ForeignScripted, TupleOutputHookedAtElementZero) {
  const auto model = steer::Model::load(foreign("neox"));
  EXPECT_EQ(model.config().family, "gpt_neox");
  EXPECT_EQ(model.layer(1).attn, "gpt_neox.layers.1.attention");
  const auto ref = steer::io::read_safetensors(foreign("neox.safetensors"));
  const auto& ids = ref.at("ids");
  EXPECT_LE(max_logit_diff(model.logits(ids), ref.at("logits")), kLogitTolerance);
  {
    auto record = steer::hook(model, "attn_out.1", steer::Record());
    auto dense = steer::hook(model, "gpt_neox.layers.1.attention.dense", steer::Record());
    auto module = steer::hook(model, "gpt_neox.layers.1.attention", steer::Record());
    auto mid = steer::hook(model, "resid_mid.1", steer::Record());
    model.logits(ids);
    for (int64_t b = 0; b < ids.size(0); ++b) {
      EXPECT_LE(max_row_relative_diff(record->sequence(b), ref.at("record.attn_out.1")[b]),
                kActivationTolerance);
      EXPECT_TRUE(torch::equal(record->sequence(b), dense->sequence(b)));
      EXPECT_TRUE(torch::equal(record->sequence(b), module->sequence(b)));
    }
    EXPECT_EQ(mid->calls(), 1);
  }
  const double c = std::stod(ref.metadata.at("coefficient"));
  auto add = steer::hook(model, "attn_out.1", steer::Add(ref.at("vector"), c));
  EXPECT_LE(max_logit_diff(model.logits(ids), ref.at("add.attn_out.1")), kLogitTolerance);
}

// ----------------------------------------------------------------------------- steer's traced exports

// Hooks on the traced export equal hooks on the scripted export of the same weights.
TEST(TracedExport, HooksEqualScriptedExport) {
  for (const auto* family : {"llama", "gpt2"}) {
    SCOPED_TRACE(family);
    const auto scripted = steer::Model::load(tiny(family));
    const auto traced = steer::Model::load(foreign(std::string("tiny-") + family + "-traced"));
    EXPECT_TRUE(scripted.has_kv_cache());
    EXPECT_FALSE(traced.has_kv_cache());
    EXPECT_EQ(traced.config().layers.size(), scripted.config().layers.size());
    const auto ids = random_ids(scripted, 2, 9, 3);
    EXPECT_LE(max_logit_diff(traced.logits(ids), scripted.logits(ids)), kLogitTolerance);
    std::vector<steer::HookHandle<steer::Record>> a, b;
    for (const auto& point : every_site(scripted)) {
      a.push_back(steer::hook(scripted, point, steer::Record()));
      b.push_back(steer::hook(traced, point, steer::Record()));
    }
    scripted.logits(ids);
    traced.logits(ids);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE(max_row_relative_diff(b[i]->sequence(1), a[i]->sequence(1)), kActivationTolerance)
          << a[i].point().to_string();
    }
    const auto v = torch::randn({scripted.d_model()});
    for (const auto& point : every_site(scripted)) {
      auto x = steer::hook(scripted, point, steer::Add(v, 3.0));
      auto y = steer::hook(traced, point, steer::Add(v, 3.0));
      EXPECT_LE(max_logit_diff(traced.logits(ids), scripted.logits(ids)), kLogitTolerance) << point;
    }
  }
}

// A trace of a module with an exported method names the traced submodule forwards forward1
// (the scripted forward keeps its name): the taps go into both.
TEST(TracedExport, TracedForwardNamedForward1IsInstrumented) {
  const auto scripted = steer::Model::load(tiny("llama"));
  const auto hybrid = steer::Model::load(foreign("hybrid-llama"));
  const auto ids = random_ids(scripted, 2, 7, 8);
  const auto v = torch::randn({scripted.d_model()});
  for (const auto& point : every_site(scripted)) {
    auto a = steer::hook(scripted, point, steer::Record());
    auto b = steer::hook(hybrid, point, steer::Record());
    scripted.logits(ids);
    hybrid.logits(ids);
    ASSERT_EQ(b->calls(), 1) << point;
    EXPECT_LE(max_row_relative_diff(b->sequence(0), a->sequence(0)), kActivationTolerance) << point;
    auto x = steer::hook(scripted, point, steer::Add(v, 2.0));
    auto y = steer::hook(hybrid, point, steer::Add(v, 2.0));
    EXPECT_LE(max_logit_diff(hybrid.logits(ids), scripted.logits(ids)), kLogitTolerance) << point;
  }
}

TEST(TracedExport, PaddedBatchEqualsEachSequenceAlone) {
  for (const auto* family : {"llama", "gpt2"}) {
    const auto model = steer::Model::load(foreign(std::string("tiny-") + family + "-traced"));
    const auto batch = padded_batch(model, {8, 5, 3}, 4);
    const auto v = torch::randn({model.d_model()});
    for (const auto& [name, positions] : all_selections()) {
      SCOPED_TRACE(std::string(family) + " " + name);
      auto h = steer::hook(model, "resid_pre.1", steer::Add(v, 2.0), positions);
      const int64_t prompt_columns = 6;
      const auto logits = model.logits(batch.ids, batch.mask, prompt_columns);
      for (size_t i = 0; i < batch.alone.size(); ++i) {
        const auto n = batch.alone[i].size(1);
        const auto pad = batch.ids.size(1) - n;
        const auto alone =
            model.logits(batch.alone[i], {}, std::max<int64_t>(prompt_columns - pad, 0));
        EXPECT_LE(max_logit_diff(logits[i].slice(0, pad), alone[0]), kLogitTolerance)
            << "sequence " << i;
      }
    }
  }
}

// Without forward_cached, generate recomputes every step: the same tokens as the scripted
// export through its KV cache, steered or not.
TEST(TracedExport, GenerateRecomputesWithoutKvCache) {
  const auto options = steer::GenerateOptions().max_new_tokens(8).stop_at_eos(false);
  for (const auto* family : {"llama", "gpt2"}) {
    SCOPED_TRACE(family);
    const auto scripted = steer::Model::load(tiny(family));
    const auto traced = steer::Model::load(foreign(std::string("tiny-") + family + "-traced"));
    const std::vector<std::string> prompts = {"I love you because", "The fox"};
    const auto v = torch::randn({scripted.d_model()});
    auto x = steer::hook(scripted, "resid_post.0", steer::Add(v, 4.0), Positions::last());
    auto y = steer::hook(traced, "resid_post.0", steer::Add(v, 4.0), Positions::last());
    const auto expected = scripted.generate(prompts, options);
    const auto got = traced.generate(prompts, options);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(got[i].ids, expected[i].ids) << "prompt " << i;
      EXPECT_EQ(got[i].text, expected[i].text);
    }
    steer::KvCache cache;
    EXPECT_STEER_ERROR(traced.logits_cached(random_ids(traced, 1, 3, 5), {}, cache),
                       "Model::logits_cached: model '", "has no KV cache method (forward_cached)",
                       "a traced export");
  }
}

TEST(TracedExport, HalfPrecision) {
  for (const auto* family : {"llama", "gpt2"}) {
    SCOPED_TRACE(family);
    const auto options = steer::ModelOptions().dtype(torch::kBFloat16);
    const auto scripted = steer::Model::load(tiny(family), options);
    const auto traced = steer::Model::load(foreign(std::string("tiny-") + family + "-traced"),
                                           options);
    const auto batch = padded_batch(scripted, {6, 4}, 6);
    const auto real = batch.mask.to(torch::kBool);
    const auto a = scripted.logits(batch.ids, batch.mask);
    const auto b = traced.logits(batch.ids, batch.mask);
    EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(a.index({real}), b.index({real})));
  }
}

// ----------------------------------------------------------------------------- errors

TEST(ForeignErrors, UnknownLayoutListsWhatWasExpected) {
  EXPECT_STEER_ERROR(steer::Model::load(foreign("unknown")), "Model::load: ",
                     "unknown/model.pt has no steer.json and discover_layers: no known layer "
                     "layout among",
                     "expected blocks 'model.layers.N' (llama, gemma2), "
                     "'transformer.h.N' (gpt2), 'gpt_neox.layers.N' (gpt_neox)",
                     "hint: export the model with tools/export_model.py");
  EXPECT_STEER_ERROR(steer::Model::load(foreign("")), "has neither steer.json nor model.pt");
}

}  // namespace
