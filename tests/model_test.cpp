// Model: loading model directories, logits against Hugging Face transformers (reference made at
// test time by tests/fixtures/make_model_fixtures.py), the KV-cache path, and bad input.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/Version.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

namespace fs = std::filesystem;
using steer::test::default_model_dir;
using steer::test::fixture_dir;
using steer::test::cached_logits;
using steer::test::kLogitTolerance;
using steer::test::max_logit_diff;
using steer::test::tiny;

namespace {

std::vector<int64_t> lengths(const steer::io::Safetensors& reference) {
  std::vector<int64_t> out;
  std::stringstream list(reference.metadata.at("lengths"));
  for (std::string item; std::getline(list, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// Logits of `model` for every reference prompt, by full recompute and through the KV cache
// (prefill of L//2 tokens, then one token per step, as the reference does), each compared
// with its transformers twin.
void expect_matches_reference(const steer::Model& model, const std::string& reference_path) {
  const auto reference = steer::io::read_safetensors(reference_path);
  const auto all = lengths(reference);
  ASSERT_FALSE(all.empty());
  for (const auto length : all) {
    SCOPED_TRACE("prompt length " + std::to_string(length));
    const auto key = std::to_string(length);
    const auto& ids = reference.at("ids." + key);
    // kLogitTolerance of the logit scale (model_support.hpp): float32 noise of another summation
    // order, measured up to 7.6e-6 with ATen's default kernels on the default model.
    const auto full = max_logit_diff(model.logits(ids), reference.at("logits." + key));
    EXPECT_LE(full, kLogitTolerance);

    const int64_t split = std::max<int64_t>(1, length / 2);
    const auto cached = cached_logits(model, ids, torch::ones_like(ids), split);
    const auto through_cache = max_logit_diff(cached, reference.at("cached_logits." + key));
    EXPECT_LE(through_cache, kLogitTolerance);
    std::printf("[ logits  ] length %lld: max |difference| / max |logit| vs transformers %.3g "
                "(full), %.3g (KV cache), bound %.0e\n", static_cast<long long>(length), full,
                through_cache, kLogitTolerance);
  }
}


// A writable copy of a tiny model directory, for tests that damage it.
std::string copy_of(const std::string& source, const std::string& name) {
  const auto target = fs::path(fixture_dir()) / "damaged" / name;
  fs::remove_all(target);
  fs::create_directories(target.parent_path());
  fs::copy(source, target, fs::copy_options::recursive);
  return target.string();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

}  // namespace

class TinyModel : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyModel, LogitsMatchTransformersWithAndWithoutCache) {
  const auto model = steer::Model::load(tiny(GetParam()));
  expect_matches_reference(model, fixture_dir() + "/tiny-" + GetParam() + "-reference.safetensors");
}

TEST_P(TinyModel, LayoutComesFromSteerJson) {
  const auto model = steer::Model::load(tiny(GetParam()));
  const auto& config = model.config();
  EXPECT_EQ(config.family, GetParam());
  EXPECT_EQ(model.n_layers(), GetParam() == "gpt2" ? 2 : 3);
  EXPECT_EQ(model.d_model(), GetParam() == "gpt2" ? 32 : 64);
  for (int64_t i = 0; i < model.n_layers(); ++i) {
    const auto& layer = model.layer(i);
    // Each block, attention and MLP is its own submodule: the hook layer needs them.
    EXPECT_NO_THROW(model.submodule(layer.block));
    EXPECT_NO_THROW(model.submodule(layer.attn));
    EXPECT_NO_THROW(model.submodule(layer.mlp));
    EXPECT_EQ(layer.attn.rfind(layer.block + ".", 0), 0u) << layer.attn;
  }
}

TEST_P(TinyModel, LeftPaddingLeavesLogitsOfRealTokensUnchanged) {
  const auto model = steer::Model::load(tiny(GetParam()));
  const auto alone = torch::tensor({{5, 9, 17, 33}}, torch::kInt64);
  const auto padded = torch::tensor({{0, 0, 5, 9, 17, 33}, {1, 2, 3, 4, 5, 6}}, torch::kInt64);
  const auto mask = torch::tensor({{0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}, torch::kInt64);
  const auto expected = model.logits(alone)[0];
  const auto got = model.logits(padded, mask)[0].slice(0, 2);
  EXPECT_LE(max_logit_diff(got, expected), kLogitTolerance);
}

TEST_P(TinyModel, ReducedPrecisionStaysCloseToFloat32) {
  const auto reference = steer::Model::load(tiny(GetParam()));
  const auto ids = torch::tensor({{3, 1, 4, 1, 5, 9, 2, 6}}, torch::kInt64);
  const auto expected = reference.logits(ids);
  for (const auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    const auto model = steer::Model::load(tiny(GetParam()), steer::ModelOptions().dtype(dtype));
    const auto got = model.logits(ids);
    EXPECT_EQ(got.scalar_type(), dtype);
    // Each weight and each op's output is rounded to the dtype, relative u = 2^-8 (bfloat16: 8
    // significant bits) or 2^-11 (float16: 11); products still accumulate in float32. About 25
    // roundings per layer (norms, projections, rotary, softmax, activations, residual adds) over
    // 3 layers and the head, independent: sqrt(80) * u = 9u of the logit scale, times up to 2
    // where the norms and the softmax amplify. Measured on both kernels: 3u to 16.5u (float16
    // on tiny-llama). The bound is 32u: 0.125 (bfloat16) and 0.0156 (float16). A cast that
    // missed weights fails with a dtype mismatch; a cast that lost range or a norm computed in
    // the low dtype without float32 accumulation goes far beyond.
    const double u = dtype == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    const auto diff = max_logit_diff(got, expected);
    EXPECT_LE(diff, 32 * u) << dtype;
    std::printf("[ dtype   ] %s %s: max |difference| / max |logit| vs float32 %.3g = %.1fu\n",
                GetParam().c_str(), c10::toString(dtype), diff, diff / u);
  }
}

// The families of tools/architectures.py: llama and gpt2 from the tiny_models fixture, the
// others from family_models (make_model_fixtures.py families).
INSTANTIATE_TEST_SUITE_P(Families, TinyModel,
                         ::testing::Values("llama", "gpt2", "mistral", "qwen2", "qwen3", "gemma",
                                           "gemma2", "gemma3", "phi3", "gpt_neox"));

TEST(DefaultModel, LayoutOfSmolLM2) {
  const auto model = steer::Model::load(default_model_dir());
  EXPECT_EQ(model.config().family, "llama");
  EXPECT_EQ(model.n_layers(), 30);
  EXPECT_EQ(model.d_model(), 576);
  EXPECT_EQ(model.vocab_size(), 49152);
  EXPECT_EQ(model.config().chat_format, "chatml");
  EXPECT_EQ(model.config().eos.text, "<|im_end|>");
  EXPECT_EQ(model.layer(29).mlp, "model.layers.29.mlp");
}

TEST(DefaultModel, LogitsMatchTransformersWithAndWithoutCache) {
  const auto model = steer::Model::load(default_model_dir());
  expect_matches_reference(model, fixture_dir() + "/default-reference.safetensors");
}

// ----------------------------------------------------------------------------- CPU kernels

// The cpu_<capability>.* ctest entries (tests/CMakeLists.txt) set ATEN_CPU_CAPABILITY to run the
// numeric tests under other kernels; this proves ATen took it (it reads the variable once, at its
// first dispatch) instead of silently running the native kernels again.
TEST(CpuCapability, AtenUsesTheKernelsTheEnvironmentAsksFor) {
  const std::string used = at::get_cpu_capability();
  std::printf("[ kernels ] ATen CPU capability: %s\n", used.c_str());
  ::testing::Test::RecordProperty("cpu_capability", used);
  const char* asked = std::getenv("ATEN_CPU_CAPABILITY");
  if (asked == nullptr) {
    const char* known[] = {"DEFAULT", "NO AVX", "AVX2", "AVX512"};
    EXPECT_NE(std::find(std::begin(known), std::end(known), used), std::end(known)) << used;
    return;
  }
  std::string expected = asked;
  std::transform(expected.begin(), expected.end(), expected.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_EQ(used, expected);
}

// ----------------------------------------------------------------------------- bad input

TEST(ModelLoad, MissingDirectory) {
  EXPECT_STEER_ERROR(steer::Model::load("/nonexistent/model"),
                     "'/nonexistent/model' is neither a directory nor a file");
}

// Without steer.json the module loads as one of the user's own (tests/foreign_models_test.cpp):
// layout from the module names, no KV cache. Without model.pt either, nothing loads.
TEST(ModelLoad, DirectoryWithoutSteerJson) {
  const auto dir = copy_of(tiny("llama"), "no-steer-json");
  fs::remove(fs::path(dir) / "steer.json");
  const auto described = steer::Model::load(tiny("llama"));
  const auto discovered = steer::Model::load(dir);
  EXPECT_EQ(discovered.n_layers(), described.n_layers());
  EXPECT_EQ(discovered.d_model(), described.d_model());
  EXPECT_EQ(discovered.layer(2).attn, "model.layers.2.self_attn");
  EXPECT_FALSE(discovered.has_kv_cache());
  EXPECT_TRUE(discovered.has_tokenizer());
  const auto ids = torch::randint(0, described.vocab_size(), {2, 5}, torch::kInt64);
  EXPECT_TRUE(torch::equal(discovered.logits(ids), described.logits(ids)));
  fs::remove(fs::path(dir) / "model.pt");
  EXPECT_STEER_ERROR(steer::Model::load(dir), "has neither steer.json nor model.pt");
}

TEST(ModelLoad, SteerJsonThatIsNotJson) {
  const auto dir = copy_of(tiny("llama"), "bad-json");
  write_text(dir + "/steer.json", "{\"format_version\": 1, ");
  EXPECT_STEER_ERROR(steer::Model::load(dir), "steer.json is not valid JSON");
}

TEST(ModelLoad, SteerJsonWithMissingOrWrongFields) {
  const auto dir = copy_of(tiny("llama"), "missing-field");
  auto json = read_json(dir + "/steer.json");
  json.erase("d_model");
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir), "has no field 'd_model'");

  json = read_json(tiny("llama") + "/steer.json");
  json["n_layers"] = "three";
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir), "field 'n_layers' of");

  json = read_json(tiny("llama") + "/steer.json");
  json["format_version"] = 99;
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir), "has format_version 99 but this steer reads version 1");
}

TEST(ModelLoad, SteerJsonThatDisagreesWithTheModule) {
  const auto dir = copy_of(tiny("llama"), "disagrees");
  auto json = read_json(tiny("llama") + "/steer.json");
  json["d_model"] = 128;
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir),
                     "steer.json disagrees with " + dir + "/model.pt: vocab_size=");

  json = read_json(tiny("llama") + "/steer.json");
  json["n_layers"] = 2;
  json["layers"].erase(2);
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir), "n_layers=2 but 'model.layers' holds 3 blocks");

  json = read_json(tiny("llama") + "/steer.json");
  json["layers"][1]["mlp"] = "model.layers.1.feed_forward";
  write_text(dir + "/steer.json", json.dump());
  EXPECT_STEER_ERROR(steer::Model::load(dir),
                     "layer 1 path 'model.layers.1.feed_forward' is not a submodule");
}

TEST(ModelLoad, CorruptOrMissingModule) {
  const auto dir = copy_of(tiny("llama"), "corrupt-module");
  const auto module = dir + "/model.pt";
  fs::resize_file(module, fs::file_size(module) / 2);
  EXPECT_STEER_ERROR(steer::Model::load(dir), "cannot load the TorchScript module " + module);
  fs::remove(module);
  EXPECT_STEER_ERROR(steer::Model::load(dir), module + " is missing");
}

TEST(ModelLoad, UnusableDtypeOrDevice) {
  EXPECT_STEER_ERROR(steer::Model::load(tiny("llama"), steer::ModelOptions().dtype(torch::kInt32)),
                     "dtype Int is not supported; expected float32, float16 or bfloat16");
  if (!torch::cuda::is_available()) {
    EXPECT_STEER_ERROR(
        steer::Model::load(tiny("llama"), steer::ModelOptions().device(torch::kCUDA)),
        "CUDA is not available on this machine");
  }
  EXPECT_STEER_ERROR(steer::parse_dtype("int8"), "unknown dtype 'int8'");
  EXPECT_STEER_ERROR(steer::parse_device("tpu"), "unknown device 'tpu'");
  EXPECT_EQ(steer::parse_dtype("bf16"), torch::kBFloat16);
}

TEST(ModelCall, BadIdsMaskLayerOrPath) {
  const auto model = steer::Model::load(tiny("llama"));
  const int64_t vocab = model.vocab_size();
  EXPECT_STEER_ERROR(model.logits(torch::tensor({{int64_t{1}, vocab}}, torch::kInt64)),
                     "token id " + std::to_string(vocab) + " is outside the vocabulary [0, " +
                         std::to_string(vocab) + ")");
  EXPECT_STEER_ERROR(model.logits(torch::tensor({{1, -3}}, torch::kInt64)), "token id -3");
  EXPECT_STEER_ERROR(model.logits(torch::tensor({1, 2}, torch::kInt64)),
                     "input_ids must have shape [batch, tokens]");
  EXPECT_STEER_ERROR(model.logits(torch::zeros({1, 0}, torch::kInt64)),
                     "input_ids must have shape [batch, tokens]");
  EXPECT_STEER_ERROR(model.logits(torch::tensor({{1.0, 2.0}})), "input_ids must be int64");
  const auto ids = torch::tensor({{1, 2, 3}}, torch::kInt64);
  EXPECT_STEER_ERROR(model.logits(ids, torch::ones({1, 2}, torch::kInt64)),
                     "attention_mask must have shape [1, 3]");
  EXPECT_STEER_ERROR(model.logits(ids, torch::zeros({1, 3}, torch::kInt64)),
                     "its attention_mask row is all 0");
  EXPECT_STEER_ERROR(model.logits(ids, torch::full({1, 3}, 2, torch::kInt64)),
                     "only 0 (padding) and 1 (token)");
  EXPECT_STEER_ERROR(model.layer(3), "layer 3 is out of range; this model has layers 0 to 2");
  EXPECT_STEER_ERROR(model.submodule("model.layers.1.mlpp"),
                     "'model.layers.1.mlpp' is not a submodule");

  auto cache = model.make_cache(1, 4);
  model.logits_cached(ids, torch::ones({1, 3}, torch::kInt64), cache);
  EXPECT_STEER_ERROR(model.logits_cached(ids, torch::ones({1, 6}, torch::kInt64), cache),
                     "3 new tokens after 3 cached ones exceed the cache capacity 4");
  EXPECT_STEER_ERROR(model.logits_cached(torch::tensor({{1}, {2}}, torch::kInt64),
                                         torch::ones({2, 4}, torch::kInt64), cache),
                     "input_ids has batch 2 but the cache was made for batch 1");
}

TEST(ModelCall, GptPositionLimit) {
  const auto model = steer::Model::load(tiny("gpt2"));
  const auto limit = model.config().max_positions;
  ASSERT_GT(limit, 0);
  EXPECT_STEER_ERROR(model.logits(torch::ones({1, limit + 1}, torch::kInt64)),
                     "but the model has positions for " + std::to_string(limit));
}
