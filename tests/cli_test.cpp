// The steer command-line tool run as a program (its path comes from CMake as STEER_CLI_PATH):
// each subcommand against the library calls it stands for, a control vector written by the
// Python gguf package applied at resid_post of its layers, prompts from files and stdin, help,
// and the one-line errors with their exit status (2 for usage, 1 for the rest).
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::GenerateOptions;
using steer::HookPoint;
using steer::Positions;
using steer::ReadOptions;
using steer::Site;
using steer::test::default_model_dir;
using steer::test::fixture_dir;
using steer::test::max_abs_diff;
using steer::test::read_bytes;
using steer::test::scratch_path;
using steer::test::write_bytes;
using Json = nlohmann::json;

namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A scratch file of the running test (ctest runs the tests side by side, in separate processes).
std::string scratch(const std::string& name) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return scratch_path("cli", std::string(test->name()) + "-" + name);
}

// Runs `steer <args...>` with stdin from the file `input` (empty: /dev/null), its stdout and
// stderr captured in scratch files.
Run steer_cli(const std::vector<std::string>& args, const std::string& input = "") {
  static int runs = 0;
  const auto stem = scratch("run-" + std::to_string(runs++));
  std::string command = quoted(STEER_CLI_PATH);
  for (const auto& a : args) command += " " + quoted(a);
  command += " <" + quoted(input.empty() ? "/dev/null" : input);
  command += " >" + quoted(stem + ".out") + " 2>" + quoted(stem + ".err");
  const int raw = std::system(command.c_str());
  Run run;
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  run.out = read_bytes(stem + ".out");
  run.err = read_bytes(stem + ".err");
  return run;
}

// Runs the tool and expects exit status 0; returns stdout.
std::string steer_ok(const std::vector<std::string>& args, const std::string& input = "") {
  const auto run = steer_cli(args, input);
  EXPECT_EQ(run.status, 0) << "stderr: " << run.err;
  return run.out;
}

const steer::Model& model() {
  static const auto m = steer::Model::load(default_model_dir());
  return m;
}

const std::vector<std::pair<std::string, std::string>> kPairs = {
    {"Love", "Hate"}, {"I love you", "I hate you"}, {"Kind", "Cruel"}, {"Joy", "Anger"}};

std::string pairs_file() {
  const auto path = scratch("pairs.json");
  write_bytes(path, Json(kPairs).dump());
  return path;
}

const std::string kPrompt = "I hate you because";

// Greedy generation of kPrompt by the library, with the hooks already attached.
steer::Generation library_generate(int64_t max_new_tokens) {
  return model().generate(kPrompt, GenerateOptions().max_new_tokens(max_new_tokens));
}

std::vector<int64_t> ids_of(const Json& j) { return j.get<std::vector<int64_t>>(); }

// steer extract then steer generate --vector F:SCALE equal steer::extract, hooks Add at
// resid_post of each layer and Model::generate; the GGUF reads back with the same directions.
TEST(Cli, ExtractThenGenerateEqualLibraryCalls) {
  const auto gguf = scratch("love.gguf");
  const auto summary =
      Json::parse(steer_ok({"extract", "--model", default_model_dir(), "--pairs", pairs_file(),
                            "--layers", "3-6", "--site", "resid_post", "--positions", "last",
                            "--method", "mean-diff", "--out", gguf, "--json", "--quiet"}));
  const auto expected = steer::extract(model(), kPairs,
                                       steer::ExtractOptions(steer::Method::mean_diff)
                                           .read(ReadOptions()
                                                     .layers({3, 4, 5, 6})
                                                     .site(Site::resid_post)
                                                     .positions(Positions::last())));

  const auto written = steer::io::read_steering_vector(gguf);
  ASSERT_EQ(written.layers(), expected.vector.layers());
  EXPECT_EQ(written.d_model(), model().d_model());
  EXPECT_EQ(written.origin().site(), "resid_post");
  EXPECT_EQ(written.origin().n_layers(), model().n_layers());
  EXPECT_EQ(written.origin().model(), expected.vector.origin().model());
  EXPECT_EQ(written.origin().architecture(), "llama");
  // The hint names the architecture as repeng and llama.cpp write it, not the directory.
  EXPECT_EQ(steer::io::read_gguf(gguf).at("controlvector.model_hint").as_string(), "llama");
  EXPECT_EQ(steer::io::read_gguf(gguf).at("steer.model").as_string(), "smollm2-135m-instruct");
  EXPECT_EQ(written.origin().method(), "mean-diff");
  for (const auto layer : written.layers()) {
    EXPECT_EQ(max_abs_diff(written.at(layer), expected.vector.at(layer)), 0.0) << layer;
  }
  ASSERT_EQ(summary["layers"].size(), 4u);
  for (const auto& entry : summary["layers"]) {
    const auto layer = entry["layer"].get<int64_t>();
    EXPECT_NEAR(entry["norm"].get<double>(), expected.vector.norms().at(layer), 1e-6);
    EXPECT_EQ(entry["accuracy"].get<double>(), expected.accuracy.at(layer));
  }

  const double coefficient = 0.2;
  const auto out = Json::parse(
      steer_ok({"generate", "--model", default_model_dir(), "--prompt", kPrompt, "--vector",
                gguf + ":0.2", "--greedy", "--max-new-tokens", "8", "--json"}));
  std::vector<steer::HookHandle<steer::Add>> hooks;
  for (const auto layer : expected.vector.layers()) {
    hooks.push_back(steer::hook(model(), HookPoint(Site::resid_post, layer),
                                steer::Add(expected.vector.at(layer), coefficient)));
  }
  const auto steered = library_generate(8);
  hooks.clear();
  EXPECT_EQ(ids_of(out["tokens"]), steered.ids);
  EXPECT_EQ(out["text"].get<std::string>(), steered.text);
  EXPECT_EQ(ids_of(out["prompt_tokens"]), model().tokenizer().encode(kPrompt));
  EXPECT_NE(steered.ids, library_generate(8).ids) << "the vector should change the text";

  // Streaming (no --json) prints the same text.
  EXPECT_EQ(steer_ok({"generate", "--model", default_model_dir(), "--prompt", kPrompt, "--vector",
                      gguf + ":0.2", "--max-new-tokens", "8"}),
            steered.text + "\n");
}

// Prompt files, a paired method, normalization, another site, the chat template, safetensors.
TEST(Cli, ExtractWithEveryKindOfOptionEqualsTheLibrary) {
  const auto positive = scratch("positive.txt");
  const auto negative = scratch("negative.json");
  write_bytes(positive, "Tell me about joy\nDescribe a kind act\n");
  write_bytes(negative, R"(["Tell me about anger", {"prompt": "Describe a cruel act"}])");
  const auto file = scratch("pca.safetensors");
  steer_ok({"extract",      "--model",   default_model_dir(),
            "--positive",   positive,    "--negative",
            negative,       "--layers",  "2,5",
            "--site",       "resid_pre", "--positions",
            "-2:",          "--method",  "pca-diff",
            "--normalize",  "unit",      "--chat",
            "--batch-size", "1",         "--out",
            file,           "--quiet"});
  const auto expected = steer::extract(model(), {"Tell me about joy", "Describe a kind act"},
                                       {"Tell me about anger", "Describe a cruel act"},
                                       steer::ExtractOptions(steer::Method::pca_diff)
                                           .read(ReadOptions()
                                                     .layers({2, 5})
                                                     .site(Site::resid_pre)
                                                     .positions(Positions::last_prompt(2))
                                                     .chat(true)
                                                     .batch_size(1)))
                            .vector.normalized();
  const auto written = steer::io::read_steering_vector(file);
  ASSERT_EQ(written.layers(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(written.origin().site(), "resid_pre");
  EXPECT_EQ(written.origin().positions(), "-2:");
  EXPECT_EQ(written.origin().metadata().at("chat"), "true");
  EXPECT_EQ(written.origin().metadata().at("normalize"), "unit");
  for (const auto layer : written.layers()) {
    EXPECT_LT(max_abs_diff(written.at(layer), expected.at(layer)), 1e-6) << layer;
  }
}

// steer record writes what read_activations returns.
TEST(Cli, RecordEqualsReadActivations) {
  const auto prompts = scratch("prompts.txt");
  write_bytes(prompts, "The cat sat\nA longer prompt about the sea and the sky\nHi\n");
  const auto file = scratch("acts.safetensors");
  steer_ok({"record", "--model", default_model_dir(), "--prompts", prompts, "--layers", "1,4",
            "--site", "mlp_out", "--positions", "all", "--pooling", "tokens", "--chat",
            "--batch-size", "2", "--out", file, "--quiet"});
  const auto expected = steer::read_activations(
      model(), {"The cat sat", "A longer prompt about the sea and the sky", "Hi"},
      ReadOptions()
          .layers({1, 4})
          .site(Site::mlp_out)
          .positions(Positions::all())
          .pooling(steer::Pooling::tokens)
          .chat(true)
          .batch_size(2));
  const auto written = steer::io::read_safetensors(file);
  EXPECT_EQ(written.tensors.size(), 3u);
  for (const auto layer : {1, 4}) {
    const auto& rows = written.at("activations." + std::to_string(layer));
    EXPECT_EQ(rows.scalar_type(), torch::kFloat32);
    EXPECT_EQ(max_abs_diff(rows, expected.at(layer)), 0.0) << layer;
  }
  EXPECT_TRUE(torch::equal(written.at("prompt_of_row"),
                           torch::tensor(expected.prompt_of_row, torch::kInt64)));
  EXPECT_EQ(written.metadata.at("steer.site"), "mlp_out");
  EXPECT_EQ(written.metadata.at("steer.positions"), "all");
  EXPECT_EQ(written.metadata.at("steer.pooling"), "tokens");
  EXPECT_EQ(written.metadata.at("steer.prompts"), "3");
  EXPECT_EQ(written.metadata.at("steer.layers"), "1,4");
  EXPECT_EQ(written.metadata.at("steer.model"), steer::detail::model_name(model()));
}

TEST(Cli, TokenizeEqualsTheTokenizer) {
  const std::string text = "Hello, world! Grüße";
  const auto& tok = model().tokenizer();
  EXPECT_EQ(
      ids_of(Json::parse(steer_ok({"tokenize", "--model", default_model_dir(), "--text", text}))),
      tok.encode(text));
  const auto chat = Json::parse(
      steer_ok({"tokenize", "--model", default_model_dir(), "--text", text, "--chat", "--tokens"}));
  const auto ids = steer::prompt_ids(model(), text, /*chat=*/true);
  EXPECT_EQ(ids_of(chat["ids"]), ids);
  ASSERT_EQ(chat["tokens"].size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(chat["tokens"][i].get<std::string>(), tok.id_to_token(ids[i]));
  }
}

// A control vector written by the Python gguf package as repeng exports one (fixture
// cli_control_vector): direction.N is applied at resid_post.N, the output of block N.
TEST(Cli, AppliesAPythonControlVectorAtResidPostOfItsLayers) {
  const auto file = fixture_dir() + "/cli/python-576.gguf";
  const auto reference = Json::parse(read_bytes(fixture_dir() + "/cli/python-576.json"));
  const auto out =
      Json::parse(steer_ok({"generate", "--model", default_model_dir(), "--prompt", kPrompt,
                            "--vector", file + ":2", "--max-new-tokens", "8", "--json"}));
  EXPECT_EQ(out["vectors"][0]["site"], "resid_post");
  const auto steered_at = [&](Site site) {
    std::vector<steer::HookHandle<steer::Add>> hooks;
    for (const auto& [layer, values] : reference["directions"].items()) {
      const auto direction = torch::tensor(values.get<std::vector<float>>());
      hooks.push_back(
          steer::hook(model(), HookPoint(site, std::stoll(layer)), steer::Add(direction, 2.0)));
    }
    return library_generate(8).ids;
  };
  const auto at_resid_post = steered_at(Site::resid_post);
  EXPECT_EQ(ids_of(out["tokens"]), at_resid_post);
  // One layer off (resid_pre.N is the input of block N) steers differently.
  EXPECT_NE(steered_at(Site::resid_pre), at_resid_post);
  EXPECT_NE(library_generate(8).ids, at_resid_post);

  // --ablate with --layers: Ablate at resid_post.4 only, with the file's direction.4.
  const auto ablated =
      Json::parse(steer_ok({"generate", "--model", default_model_dir(), "--prompt", kPrompt,
                            "--ablate", file, "--layers", "4", "--max-new-tokens", "8", "--json"}));
  EXPECT_EQ(ablated["ablations"][0]["layers"], Json::array({4}));
  const auto direction = torch::tensor(reference["directions"]["4"].get<std::vector<float>>());
  auto ablate = steer::hook(model(), "resid_post.4", steer::Ablate(direction));
  EXPECT_EQ(ids_of(ablated["tokens"]), library_generate(8).ids);
}

// --normalize and --ablate-direction F[:LAYER] equal steer::apply and steer::ablate_direction.
TEST(Cli, NormalizeAndAblateDirectionEqualTheLibrary) {
  const auto file = fixture_dir() + "/cli/python-576.gguf";
  const auto vector = steer::io::read_steering_vector(file);
  const auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--model", default_model_dir(), "--prompt",
                                     kPrompt, "--max-new-tokens", "8", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Json::parse(steer_ok(args));
  };
  const auto unsteered = library_generate(8).ids;

  const auto unit = run({"--vector", file + ":3", "--normalize", "unit", "--layers", "2-5"});
  EXPECT_EQ(unit["vectors"][0]["normalize"], "unit");
  EXPECT_NEAR(unit["vectors"][0]["normalized_norms"]["4"].get<double>(), 1.0, 1e-6);
  {
    auto group = steer::apply(model(), vector,
                              steer::ApplyOptions().coefficient(3).layer_range({2, 5}).normalization(
                                  steer::Normalization::unit));
    EXPECT_EQ(ids_of(unit["tokens"]), library_generate(8).ids);
  }
  EXPECT_NE(ids_of(unit["tokens"]), unsteered);

  // Arditi et al.'s ablation of the file's direction.4 at every layer; then at layers 0-9 only.
  const auto everywhere = run({"--ablate-direction", file + ":4"});
  EXPECT_EQ(everywhere["ablated_directions"][0]["direction_layer"], 4);
  EXPECT_EQ(everywhere["ablated_directions"][0]["layers"].size(), 30u);
  const auto some = run({"--ablate-direction", file + ":4", "--layers", "0-9"});
  {
    auto group = steer::ablate_direction(model(), vector, 4);
    EXPECT_EQ(ids_of(everywhere["tokens"]), library_generate(8).ids);
  }
  {
    auto group = steer::ablate_direction(model(), vector, 4, steer::LayerRange{0, 9});
    EXPECT_EQ(ids_of(some["tokens"]), library_generate(8).ids);
  }
  EXPECT_NE(ids_of(everywhere["tokens"]), unsteered);
}

// An error the tool must report: its exit status, the start of its one stderr line and a
// fragment of it.
struct ErrorCase {
  std::vector<std::string> args;
  int status;
  std::string start;     // the line starts with it
  std::string fragment;  // and contains it
};

void expect_error(const ErrorCase& c, const std::string& input = "") {
  const auto run = steer_cli(c.args, input);
  std::string line;
  for (const auto& a : c.args) line += a + " ";
  SCOPED_TRACE("steer " + line + "-> " + run.err);
  EXPECT_EQ(run.status, c.status);
  EXPECT_EQ(run.err.rfind(c.start, 0), 0u);
  EXPECT_NE(run.err.find(c.fragment), std::string::npos);
  EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "one line";
  EXPECT_EQ(run.out, "");
}

// A copy of the control vector fixture at `path`.
std::string copy_of_control_vector(const std::string& path) {
  write_bytes(path, read_bytes(fixture_dir() + "/cli/python-576.gguf"));
  return path;
}

// steer inspect prints the vector's origin and norms as the library reads them; steer convert
// writes the same vector in the other format, and back to the same bytes.
TEST(Cli, InspectAndConvertKeepEverything) {
  steer::SteeringVector v(/*d_model=*/576, steer::VectorOrigin()
                                               .model("smollm2-135m-instruct")
                                               .n_layers(30)
                                               .site("resid_pre")
                                               .positions("-6:")
                                               .method("mean-diff")
                                               .activation_norms({{3, 12.5}, {7, 40.25}})
                                               .metadata({{"experiment", "refusal"}}));
  torch::manual_seed(3);
  v.set(3, torch::randn({576}));
  v.set(7, torch::randn({576}));
  const auto original = scratch("v.safetensors");
  steer::io::write_steering_vector(original, v);

  const auto j = Json::parse(steer_ok({"inspect", original, "--json"}));
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["model"], "smollm2-135m-instruct");
  EXPECT_EQ(j["n_layers"], 30);
  EXPECT_EQ(j["d_model"], 576);
  EXPECT_EQ(j["site"], "resid_pre");
  EXPECT_EQ(j["positions"], "-6:");
  EXPECT_EQ(j["method"], "mean-diff");
  EXPECT_EQ(j["metadata"]["experiment"], "refusal");
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][1]["layer"], 7);
  EXPECT_EQ(j["layers"][1]["norm"].get<double>(), v.norms().at(7));
  EXPECT_EQ(j["layers"][1]["activation_norm"].get<double>(), 40.25);
  const auto text = steer_ok({"inspect", original});
  EXPECT_NE(text.find("site       resid_pre\n"), std::string::npos) << text;
  EXPECT_NE(text.find("metadata   experiment = refusal\n"), std::string::npos) << text;

  // A resid_pre vector as .gguf: llama.cpp would add it at resid_post, so only when asked.
  const auto gguf = scratch("v.gguf");
  expect_error({{"convert", original, gguf}, 1, "steer convert: error: ",
                "the vector was read at hook point 'resid_pre' but llama.cpp adds direction.N"});
  EXPECT_NE(steer_ok({"convert", original, gguf, "--allow-other-sites"}).find("wrote " + gguf),
            std::string::npos);
  const auto back = steer::io::read_steering_vector(gguf);
  EXPECT_TRUE(torch::equal(back.at(3), v.at(3)));
  EXPECT_TRUE(torch::equal(back.at(7), v.at(7)));
  EXPECT_EQ(back.origin().site(), "resid_pre");
  EXPECT_EQ(back.origin().activation_norms(), v.origin().activation_norms());
  EXPECT_EQ(back.origin().metadata(), v.origin().metadata());
  EXPECT_EQ(Json::parse(steer_ok({"inspect", gguf, "--json"}))["gguf_architecture"],
            "controlvector");
  const auto again = scratch("again.safetensors");
  steer_ok({"convert", gguf, again});
  EXPECT_EQ(read_bytes(again), read_bytes(original)) << "safetensors -> gguf -> safetensors";

  // A control vector written by the Python gguf package: its layers and norms.
  const auto python = Json::parse(steer_ok({"inspect", fixture_dir() + "/cli/python-576.gguf",
                                            "--json"}));
  const auto reference = Json::parse(read_bytes(fixture_dir() + "/cli/python-576.json"));
  EXPECT_EQ(python["format"], "gguf");
  EXPECT_EQ(python["site"], "resid_post");
  ASSERT_EQ(python["layers"].size(), 2u);
  for (const auto& entry : python["layers"]) {
    const auto values = reference["directions"][std::to_string(entry["layer"].get<int>())];
    const double expected =
        torch::tensor(values.get<std::vector<float>>()).to(torch::kFloat64).norm().item<double>();
    EXPECT_DOUBLE_EQ(entry["norm"].get<double>(), expected);
  }
  expect_error({{"inspect", scratch("missing.gguf")}, 1, "steer inspect: error: ",
                "read_steering_vector: cannot open"});
}

// Mistakes in the command line itself: exit status 2 (as getopt and argparse programs), one
// line that names the option, what it got and what it expects; nothing is loaded.
TEST(Cli, UsageErrorsExitTwoAndNameTheOption) {
  const auto model_dir = default_model_dir();
  const auto pairs = pairs_file();
  const auto vector = copy_of_control_vector(scratch("love.gguf"));
  const auto prompt_file = scratch("prompt.txt");
  write_bytes(prompt_file, "Hello\n");
  const auto npy = scratch("acts.npy");
  std::filesystem::remove(npy);
  const std::vector<std::string> generate = {"generate", "--model", model_dir};
  const auto with = [](std::vector<std::string> head, const std::vector<std::string>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::vector<ErrorCase> cases = {
      {with(generate, {"--prompt", "x", "--bogus"}), 2, "steer generate: error: ",
       "unknown option --bogus; this program takes: --ablate --ablate-direction --batch-size "
       "--chat --device"},
      {{"generate", "--modle", model_dir, "--prompt", "x"}, 2, "steer generate: error: ",
       "unknown option --modle (did you mean --model?)"},
      {with(generate, {"--prompt", "x", "--max-new-tokns", "3"}), 2, "steer generate: error: ",
       "unknown option --max-new-tokns (did you mean --max-new-tokens?)"},
      {with(generate, {"-prompt", "x"}), 2, "steer generate: error: ",
       "unknown option -prompt (did you mean --prompt?)"},
      {{"extract", "--pairs", pairs, "--out", "v.gguf"}, 2, "steer extract: error: ",
       "--model is required (see 'steer extract --help')"},
      {with(generate, {"--prompt", "x", "--max-new-tokens", "ten"}), 2, "steer generate: error: ",
       "--max-new-tokens expects an integer, got 'ten'"},
      {with(generate, {"--prompt", "x", "--temperature", "1e400"}), 2, "steer generate: error: ",
       "--temperature expects a finite number, got '1e400'"},
      {with(generate, {"--prompt"}), 2, "steer generate: error: ",
       "--prompt needs a value (nothing follows it)"},
      {with(generate, {"--prompt", "--help"}), 2, "steer generate: error: ",
       "--prompt needs a value, but the next word is the option --help (write --prompt=--help "
       "to give '--help' as the value)"},
      {with(generate, {"-f", "-h"}), 2, "steer generate: error: ",
       "-f needs a value, but the next word is the option -h (write --prompt-file=-h"},
      {with(generate, {"--prompt", "x", "--chat", "yes"}), 2, "steer generate: error: ",
       "unexpected argument 'yes' after --chat, which takes no value"},
      {with(generate, {"--prompt", "x", "--json=1"}), 2, "steer generate: error: ",
       "--json takes no value, got '--json=1'"},
      {with(generate, {"--prompt", "x", "--seed", "1", "--seed", "2"}), 2,
       "steer generate: error: ", "--seed is given 2 times; expected once"},
      {with(generate, {"--prompt", "x", "--seed", "1"}), 2, "steer generate: error: ",
       "--seed is given but --temperature is 0 (greedy decoding ignores it"},
      {with(generate, {"--prompt", "x", "--top-k", "5"}), 2, "steer generate: error: ",
       "--top-k is given but --temperature is 0"},
      {generate, 2, "steer generate: error: ",
       "give the prompt: --prompt TEXT, -f/--prompt-file FILE ('-' for stdin), or --prompts FILE"},
      {with(generate, {"--prompt", "x", "-f", prompt_file}), 2, "steer generate: error: ",
       "give either --prompt or --prompt-file, not both"},
      {with(generate, {"--prompt", "x", "--vector", vector + ":1e400"}), 2,
       "steer generate: error: ",
       "--vector: scale '1e400' of '" + vector + "' is not a finite number"},
      {with(generate, {"--prompt", "x", "--vector", vector + ":nan"}), 2,
       "steer generate: error: ", "--vector: scale 'nan' of '" + vector + "' is not a finite number"},
      {with(generate, {"--prompt", "x", "--vector", vector + ":4x"}), 2,
       "steer generate: error: ", "--vector: scale '4x' of '" + vector + "' is not a number"},
      {with(generate, {"--prompt", "x", "--normalize", "sideways"}), 2, "steer generate: error: ",
       "--normalize: unknown normalization 'sideways'; expected none, unit, typical or recorded"},
      {with(generate, {"--prompt", "x", "--ablate-direction", vector + ":x"}), 2,
       "steer generate: error: ", "--ablate-direction: layer 'x' of '" + vector + "' is not a number"},
      {with(generate, {"--prompt", "x", "--layers", "4..6"}), 2, "steer generate: error: ",
       "--layers: '4..6' is not a layer list; expected all, A-B (inclusive)"},
      {{"extract", "--model", model_dir, "--pairs", pairs, "--site", "resid_middle", "--out",
        "v.gguf"},
       2, "steer extract: error: ", "--site: unknown site 'resid_middle'"},
      {{"extract", "--model", model_dir, "--pairs", pairs, "--site", "resid_pre", "--out",
        "v.gguf"},
       2, "steer extract: error: ", "--allow-other-sites"},
      {{"record", "--model", model_dir, "--prompts", prompt_file, "--out", "-"}, 2,
       "steer record: error: ",
       "--out -: steer record does not write to stdout; expected a file name ending in "
       ".safetensors"},
      {{"record", "--model", model_dir, "--prompts", prompt_file, "--out", npy}, 2,
       "steer record: error: ",
       "--out: cannot write '" + npy + "': steer record writes safetensors only; expected a name "
       "ending in .safetensors"},
      {{"tokenize", "--model", model_dir}, 2, "steer tokenize: error: ",
       "give the text: --text TEXT, or -f/--text-file FILE ('-' for stdin)"},
      {{}, 2, "steer: error: ", "no command given; expected extract, generate, record, tokenize, "
       "inspect, convert or help"},
      {{"frobnicate"}, 2, "steer: error: ", "unknown command 'frobnicate'; expected extract, "
       "generate, record, tokenize, inspect, convert or help"},
      {{"inspect"}, 2, "steer inspect: error: ", "give the vector file to inspect"},
      {{"inspect", vector, vector}, 2, "steer inspect: error: ", "give one vector file, got 2"},
      {{"convert", vector}, 2, "steer convert: error: ",
       "give the input and the output file (steer convert IN OUT), got 1 file"},
      {{"convert", vector, "v.txt"}, 2, "steer convert: error: ",
       "cannot tell the format of 'v.txt' (expected a name ending in .gguf or .safetensors)"},
      {{"convert", vector, vector}, 2, "steer convert: error: ", "IN and OUT are the same file"},
      {{"convert", vector, "v.safetensors", "--allow-layer-zero"}, 2, "steer convert: error: ",
       "--allow-other-sites and --allow-layer-zero are about .gguf files"},
      {{"genrate", "--model", model_dir}, 2, "steer: error: ",
       "unknown command 'genrate' (did you mean generate?)"},
      {{"help", "bogus"}, 2, "steer help: error: ", "unknown command 'bogus'"},
  };
  for (const auto& c : cases) expect_error(c);
  // Never a missing --model for a misspelled one, and no file written for a refused --out.
  EXPECT_EQ(steer_cli({"generate", "--modle", model_dir, "--prompt", "x"}).err.find("required"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists("-"));
  EXPECT_FALSE(std::filesystem::exists(npy));
}

// Errors of files, models and computations: exit status 1, one line naming the file and what
// was expected.
TEST(Cli, RuntimeErrorsExitOneAndNameTheFile) {
  const auto model_dir = default_model_dir();
  const auto narrow = scratch("d_model_7.safetensors");
  steer::SteeringVector seven(/*d_model=*/7, steer::VectorOrigin().model("tiny"));
  seven.set(/*layer=*/3, torch::ones({7}));
  steer::io::write_steering_vector(narrow, seven);
  // Control vectors written for another architecture (same width) and another width.
  const auto qwen = scratch("qwen2-576.gguf");
  steer::SteeringVector for_qwen(/*d_model=*/576, steer::VectorOrigin().architecture("qwen2"));
  for_qwen.set(/*layer=*/3, torch::ones({576}));
  steer::io::write_control_vector(qwen, for_qwen);
  const auto wide = scratch("llama-2048.gguf");
  steer::SteeringVector for_wide(/*d_model=*/2048, steer::VectorOrigin().architecture("llama"));
  for_wide.set(/*layer=*/3, torch::ones({2048}));
  steer::io::write_control_vector(wide, for_wide);
  const auto missing = scratch("missing.gguf");
  const auto empty = scratch("empty.gguf");
  write_bytes(empty, "");
  const auto directory = scratch("vectors.d");
  std::filesystem::create_directories(directory);
  const auto text = scratch("text.gguf");
  write_bytes(text, "hello, not a vector");
  const auto misnamed = copy_of_control_vector(scratch("misnamed.safetensors"));
  const auto junk = scratch("junk.vec");
  write_bytes(junk, "junk junk junk");
  const auto empty_prompt = scratch("empty-prompt.txt");
  write_bytes(empty_prompt, "\n");
  const auto llama_positive = scratch("positive.json");
  write_bytes(llama_positive, "[INST] Act like a person who is extremely happy. [/INST]\n");
  const auto prompts = scratch("one-prompt.txt");
  write_bytes(prompts, "Hello\n");
  const std::vector<std::string> generate = {"generate", "--model", model_dir, "--prompt", "x"};
  const auto with = [&](const std::vector<std::string>& tail) {
    auto args = generate;
    args.insert(args.end(), tail.begin(), tail.end());
    return args;
  };
  const std::string start = "steer generate: error: ";
  const std::vector<ErrorCase> cases = {
      {with({"--vector", narrow}), 1, start,
       "has d_model=7 but model 'smollm2-135m-instruct' has d_model=576"},
      {with({"--vector", qwen + ":2"}), 1, start,
       "vector '" + qwen + "' was written for a 'qwen2' model but model 'smollm2-135m-instruct' "
       "is a 'llama' (hint: vector from another model?)"},
      {with({"--vector", wide}), 1, start,
       "vector '" + wide + "' has d_model=2048 but model 'smollm2-135m-instruct' has "
       "d_model=576"},
      {with({"--layers", "40"}), 1, start, "--layers: '40' names layer 40, out of range"},
      {with({"--ablate-direction", missing + ":4"}), 1, start,
       "read_steering_vector: cannot open '" + missing + "'"},
      {with({"--ablate-direction", copy_of_control_vector(scratch("several.gguf"))}), 1, start,
       "--ablate-direction " + scratch("several.gguf") + ": ablate_direction: the vector has 2 "
       "directions (layers 4, 10); say which one to ablate (e.g. FILE:4)"},
      {with({"--ablate-direction", scratch("several.gguf") + ":31"}), 1, start,
       "ablate_direction: the vector has no direction for layer 31"},
      {with({"--vector", missing + ":2"}), 1, start,
       "read_steering_vector: cannot open '" + missing + "'"},
      {with({"--vector", empty}), 1, start,
       "read_steering_vector: '" + empty + "' is empty (0 bytes); expected a GGUF control vector"},
      {with({"--vector", directory}), 1, start,
       "read_steering_vector: '" + directory +
           "' is a directory; expected a steering vector (.gguf or .safetensors)"},
      {with({"--vector", text}), 1, start,
       "read_steering_vector: '" + text + "' is not a GGUF file: it starts with bytes 68 65 6c "
       "6c, not the magic 'GGUF'; expected a GGUF control vector"},
      {with({"--ablate", misnamed}), 1, start,
       "read_steering_vector: '" + misnamed + "' holds a GGUF file; expected a safetensors "
       "steering vector (hint: rename it to .gguf)"},
      {with({"--vector", junk}), 1, start,
       "read_steering_vector: '" + junk + "' is neither GGUF (it would start with 'GGUF') nor "
       "safetensors (a header length, then '{'); expected a steering vector (.gguf or "
       ".safetensors)"},
      {{"generate", "--model", model_dir, "-f", missing}, 1, start,
       "--prompt-file: cannot open '" + missing + "'"},
      {{"generate", "--model", model_dir, "-f", empty_prompt}, 1, start,
       "--prompt-file: '" + empty_prompt + "' is empty; expected the text"},
      {{"extract", "--model", model_dir, "--positive", llama_positive, "--negative", prompts,
        "--out", "v.gguf"},
       1, "steer extract: error: ", "read_prompts: '" + llama_positive + "' is not valid JSON"},
      {{"record", "--model", fixture_dir() + "/no-such-model", "--prompts", prompts, "--out",
        "a.safetensors"},
       1, "steer record: error: ", "is neither a directory nor a file"},
  };
  for (const auto& c : cases) expect_error(c);
  expect_error({{"generate", "--model", model_dir, "-f", "-"}, 1, start,
                "--prompt-file: stdin is empty; expected the text"});
}

// -h and --help anywhere print the command's help on stdout and exit 0, even with other
// mistakes on the line; `steer help <command>` prints the same; `steer -h` the overview.
TEST(Cli, HelpEverywhere) {
  const auto overview = steer_ok({"--help"});
  for (const auto* command : {"extract", "generate", "record", "tokenize", "help"}) {
    EXPECT_NE(overview.find(std::string("  ") + command + " "), std::string::npos) << command;
  }
  EXPECT_NE(overview.find("Exit status: 0 success, 1 error (a file, a model, a computation), 2 "
                          "usage error."),
            std::string::npos);
  EXPECT_EQ(steer_ok({"-h"}), overview);
  EXPECT_EQ(steer_ok({"help"}), overview);
  for (const std::string command : {"extract", "generate", "record", "tokenize"}) {
    const auto help = steer_ok({"help", command});
    EXPECT_EQ(help.rfind("usage: steer " + command + " ", 0), 0u) << help;
    EXPECT_NE(help.find("-h, --help          this text"), std::string::npos) << command;
    EXPECT_EQ(steer_ok({command, "-h"}), help);
    EXPECT_EQ(steer_ok({command, "--help"}), help);
  }
  const auto generate_help = steer_ok({"help", "generate"});
  EXPECT_NE(generate_help.find("-f, --prompt-file F"), std::string::npos);
  EXPECT_EQ(steer_ok({"generate", "--modle", "x", "--max-new-tokens", "ten", "-h"}),
            generate_help);
  EXPECT_EQ(steer_ok({"generate", "--prompt", "x", "--help", "--json"}), generate_help);
  EXPECT_EQ(steer_ok({"--version"}).rfind(std::string("steer ") + steer::version(), 0), 0u);
}

// A value that starts with "--" is given with '=': --prompt=--help is the prompt "--help".
// Values that start with '-' and a digit are values: --positions -1:.
TEST(Cli, ValuesThatLookLikeOptionsAreGivenWithEquals) {
  const auto out = Json::parse(steer_ok({"generate", "--model", default_model_dir(),
                                         "--prompt=--help", "--positions", "-1:",
                                         "--max-new-tokens", "2", "--json"}));
  EXPECT_EQ(out["prompt"], "--help");
  EXPECT_EQ(out["positions"], "-1:");
  EXPECT_EQ(ids_of(out["prompt_tokens"]), model().tokenizer().encode("--help"));
}

// --vector F:SCALE: the scale after the last ':'; a name that exists is a file even when it
// has ':' in it; a file of another extension is read by its first bytes.
TEST(Cli, VectorScalesAndPathsWithColons) {
  const auto with_colon = copy_of_control_vector(scratch("odd:name.gguf"));
  const auto colon_suffix = copy_of_control_vector(scratch("plain.gguf:3"));
  const auto other_name = copy_of_control_vector(scratch("vector.bin"));
  const auto out = Json::parse(steer_ok(
      {"generate", "--model", default_model_dir(), "--prompt", kPrompt, "--vector",
       with_colon + ":0.5", "--vector", colon_suffix, "--vector", with_colon, "--vector",
       other_name + ":-1e-3", "--max-new-tokens", "1", "--json"}));
  const auto& vectors = out["vectors"];
  ASSERT_EQ(vectors.size(), 4u);
  EXPECT_EQ(vectors[0]["file"], with_colon);
  EXPECT_EQ(vectors[0]["coefficient"], 0.5);
  EXPECT_EQ(vectors[1]["file"], colon_suffix);
  EXPECT_EQ(vectors[1]["coefficient"], 1.0);
  EXPECT_EQ(vectors[2]["file"], with_colon);
  EXPECT_EQ(vectors[2]["coefficient"], 1.0);
  EXPECT_EQ(vectors[3]["file"], other_name);
  EXPECT_EQ(vectors[3]["coefficient"], -1e-3);
  EXPECT_EQ(vectors[3]["layers"], Json::array({4, 10}));
}

// -f FILE and -f - (stdin) give the file's text as the prompt, without its trailing newline;
// a 200 KB prompt, longer than one command-line argument may be (128 KB on Linux), reads whole.
TEST(Cli, PromptsFromAFileOrStdin) {
  const auto file = scratch("prompt.txt");
  write_bytes(file, kPrompt + "\n");
  const auto expected = library_generate(4);
  for (const auto& [args, input] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"-f", file}, ""}, {{"--prompt-file", "-"}, file}, {{"--prompt-file=" + file}, ""}}) {
    auto command = std::vector<std::string>{"generate", "--model", default_model_dir(),
                                            "--max-new-tokens", "4", "--json"};
    command.insert(command.end(), args.begin(), args.end());
    const auto out = Json::parse(steer_ok(command, input));
    EXPECT_EQ(out["prompt"], kPrompt);
    EXPECT_EQ(ids_of(out["tokens"]), expected.ids);
  }

  std::string big;
  for (int i = 0; big.size() < 200 * 1024; ++i) {
    big += "Line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog.\n";
  }
  big += "The end";
  const auto big_file = scratch("big.txt");
  write_bytes(big_file, big + "\n");
  const auto ids = ids_of(Json::parse(
      steer_ok({"tokenize", "--model", default_model_dir(), "--text-file", big_file})));
  EXPECT_EQ(ids, model().tokenizer().encode(big));
  EXPECT_EQ(ids_of(Json::parse(steer_ok({"tokenize", "--model", default_model_dir(), "-f", "-"},
                                        big_file))),
            ids);
  // generate reads it whole too: all its tokens reach the model, which has fewer positions.
  const auto max_positions = model().config().max_positions;
  ASSERT_GT(max_positions, 0);
  ASSERT_GT(static_cast<int64_t>(ids.size()), max_positions);
  expect_error({{"generate", "--model", default_model_dir(), "-f", big_file, "--max-new-tokens",
                 "2"},
                1, "steer generate: error: ",
                "--prompt-file: the prompt has " + std::to_string(ids.size()) +
                    " tokens; with --max-new-tokens 2 that is " + std::to_string(ids.size() + 2) +
                    " positions, beyond the model's " + std::to_string(max_positions)});
}

// llama.cpp's cvector-generator prompt files (positive.txt: "[INST] ... [/INST]" lines, \n
// escapes) read as llama.cpp reads them: steer record equals read_activations of the
// unescaped lines.
TEST(Cli, RecordReadsLlamaCppPromptFiles) {
  const auto positive = scratch("positive.txt");
  write_bytes(positive,
              "[INST] Act like a person who is extremely happy. [/INST]\n"
              "\n"
              "<|im_start|>system\\nYou are in a very good mood today<|im_end|>\n");
  const auto file = scratch("acts.safetensors");
  steer_ok({"record", "--model", default_model_dir(), "--prompts", positive, "--layers", "2",
            "--out", file, "--quiet"});
  const auto expected = steer::read_activations(
      model(),
      {"[INST] Act like a person who is extremely happy. [/INST]",
       "<|im_start|>system\nYou are in a very good mood today<|im_end|>"},
      ReadOptions().layers({2}));
  const auto written = steer::io::read_safetensors(file);
  EXPECT_EQ(written.metadata.at("steer.prompts"), "2");
  EXPECT_EQ(max_abs_diff(written.at("activations.2"), expected.at(2)), 0.0);
}

}  // namespace

// --prompts: the JSON Lines of a file of prompts, generated in batches, one line per prompt in
// file order.
std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> out;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    out.push_back(Json::parse(text.substr(start, end - start)));
  }
  EXPECT_EQ(start, text.size()) << "the output ends with a newline";
  return out;
}

// Prompts of different lengths (so batches are left-padded), one with a \n escape.
const std::vector<std::string> kBatchPrompts = {
    "I hate you because", "The weather today is", "Once upon a time,\nin a small village",
    "My favourite food", "Tell me about the moon and the stars at night"};

std::string batch_prompt_file() {
  const auto path = scratch("prompts.txt");
  write_bytes(path, "I hate you because\nThe weather today is\n\n"
                    "Once upon a time,\\nin a small village\nMy favourite food\n"
                    "Tell me about the moon and the stars at night\n");
  return path;
}

// Greedy: each line equals Model::generate of its prompt alone (no padding), token for token,
// whatever the batch size (2 leaves a partial last batch; 1 pads nothing; 8 takes all five).
// Greedy choice is exact here because the padded and the lone logits differ by float32
// rounding only, far below the gap between the two largest logits at each step.
TEST(Cli, PromptFileInBatchesEqualsOnePromptAtATime) {
  const auto file = batch_prompt_file();
  for (const bool chat : {false, true}) {
    std::vector<steer::Generation> alone;
    for (const auto& p : kBatchPrompts) {
      alone.push_back(model().generate(
          std::vector<std::vector<int64_t>>{steer::prompt_ids(model(), p, chat)},
          GenerateOptions().max_new_tokens(8)).front());
    }
    for (const auto* batch_size : {"2", "1", "8"}) {
      if (chat && std::string(batch_size) != "2") continue;
      std::vector<std::string> args = {"generate", "--model", default_model_dir(), "--prompts",
                                       file, "--batch-size", batch_size, "--max-new-tokens", "8",
                                       "--quiet"};
      if (chat) args.push_back("--chat");
      const auto run = steer_cli(args);
      ASSERT_EQ(run.status, 0) << run.err;
      EXPECT_EQ(run.err, "") << "--quiet";
      const auto lines = json_lines(run.out);
      ASSERT_EQ(lines.size(), kBatchPrompts.size());
      for (size_t i = 0; i < lines.size(); ++i) {
        SCOPED_TRACE("batch size " + std::string(batch_size) + (chat ? ", chat" : "") +
                     ", prompt " + std::to_string(i));
        EXPECT_EQ(lines[i]["prompt"], kBatchPrompts[i]);
        EXPECT_EQ(lines[i]["chat"], chat);
        EXPECT_EQ(ids_of(lines[i]["prompt_tokens"]), alone[i].prompt_ids);
        EXPECT_EQ(ids_of(lines[i]["tokens"]), alone[i].ids);
        EXPECT_EQ(lines[i]["text"], alone[i].text);
        EXPECT_EQ(lines[i]["stop_reason"], alone[i].stop_reason);
        EXPECT_EQ(lines[i]["seed"], nullptr);
        EXPECT_EQ(lines[i]["temperature"], 0.0);
      }
    }
  }
}

// Sampling with --seed S and a vector: prompt i of the batched run samples what
// `steer generate --prompt P_i --seed S+i` samples, token for token (docs/cli.md). Exact for
// the reason above: a draw lands on another token only if the logits move by about the
// spacing of the cumulative probabilities at the draw, orders above float32 rounding.
TEST(Cli, SeededSamplingInBatchesEqualsOnePromptAtATime) {
  const auto file = batch_prompt_file();
  const auto vector = copy_of_control_vector(scratch("love.gguf"));
  const std::vector<std::string> sampling = {"--max-new-tokens", "8", "--temperature", "0.9",
                                             "--top-k", "40"};
  // Tokens of `steer generate --prompt P_i --seed S --json`, with or without the vector.
  const auto alone = [&](size_t i, uint64_t seed, bool with_vector) {
    std::vector<std::string> args = {"generate", "--model", default_model_dir(), "--prompt",
                                     kBatchPrompts[i], "--seed", std::to_string(seed), "--json"};
    args.insert(args.end(), sampling.begin(), sampling.end());
    if (with_vector) args.insert(args.end(), {"--vector", vector + ":2"});
    return Json::parse(steer_ok(args));
  };
  auto args = std::vector<std::string>{"generate", "--model", default_model_dir(), "--prompts",
                                       file, "--batch-size", "3", "--seed", "5",
                                       "--vector", vector + ":2"};
  args.insert(args.end(), sampling.begin(), sampling.end());
  const auto run = steer_cli(args);
  ASSERT_EQ(run.status, 0) << run.err;
  const auto lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), kBatchPrompts.size());
  // Progress goes to stderr (not a terminal here: one line per batch), never into the JSON.
  EXPECT_NE(run.err.find("steer generate: generated 3/5 prompts, "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("steer generate: generated 5/5 prompts, "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(" prompts/s"), std::string::npos) << run.err;

  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i));
    EXPECT_EQ(lines[i]["seed"], 5 + i);
    EXPECT_EQ(lines[i]["vectors"][0]["coefficient"], 2.0);
    EXPECT_EQ(lines[i]["vectors"][0]["layers"], Json::array({4, 10}));
    EXPECT_EQ(lines[i]["top_k"], 40);
    // Batches {0, 1, 2} and {3, 4}: the middle and the end of the first, the end of the last
    // (one process per prompt is slow, so not all five).
    if (i != 1 && i != 2 && i != 4) continue;
    const auto expected = alone(i, 5 + i, /*with_vector=*/true);
    EXPECT_EQ(ids_of(lines[i]["tokens"]), ids_of(expected["tokens"]));
    EXPECT_EQ(lines[i]["text"], expected["text"]);
  }
  // The seed and the vector both matter: prompt 1 samples other tokens with --seed 5 (the
  // batch's seed, not its own) and without the vector.
  EXPECT_NE(ids_of(alone(1, 5, true)["tokens"]), ids_of(lines[1]["tokens"]));
  EXPECT_NE(ids_of(alone(1, 6, false)["tokens"]), ids_of(lines[1]["tokens"]));

  // --out writes the same lines to the file, nothing to stdout.
  const auto out_file = scratch("out.jsonl");
  args.insert(args.end(), {"--out", out_file, "--quiet"});
  EXPECT_EQ(steer_ok(args), "");
  EXPECT_EQ(read_bytes(out_file), run.out);
}

TEST(Cli, PromptFileErrors) {
  const auto model_dir = default_model_dir();
  const auto file = batch_prompt_file();
  const auto missing = scratch("missing.txt");
  const auto empty = scratch("empty.txt");
  write_bytes(empty, "\n  \n");
  const auto wrong_shape = scratch("numbers.json");
  write_bytes(wrong_shape, "[1, 2]");
  const auto bad_jsonl = scratch("bad.jsonl");
  write_bytes(bad_jsonl, "\"fine\"\n{not json\n");
  const auto empty_prompt = scratch("empty-prompt.json");
  write_bytes(empty_prompt, "[\"Hello\", \"\"]");
  const std::vector<std::string> generate = {"generate", "--model", model_dir};
  const auto with = [&](const std::vector<std::string>& tail) {
    auto head = generate;
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::string start = "steer generate: error: ";
  const std::vector<ErrorCase> cases = {
      {with({"--prompts", file, "--prompt", "x"}), 2, start,
       "--prompts FILE generates every prompt of FILE; give it without --prompt"},
      {with({"--prompts", file, "-f", file}), 2, start,
       "--prompts FILE generates every prompt of FILE; give it without --prompt-file"},
      {with({"--prompt", "x", "--batch-size", "4"}), 2, start,
       "--batch-size applies to --prompts FILE"},
      {with({"--prompt", "x", "--out", scratch("x.jsonl")}), 2, start,
       "--out applies to --prompts FILE"},
      {with({"--prompts", file, "--batch-size", "0"}), 2, start,
       "--batch-size must be >= 1, got 0"},
      {with({}), 2, start, "or --prompts FILE (one prompt per line, JSON or JSONL)"},
      {with({"--prompts", missing}), 1, start, "--prompts: cannot open '" + missing + "'"},
      {with({"--prompts", empty}), 1, start, "--prompts: '" + empty + "' holds no prompts"},
      {with({"--prompts", wrong_shape}), 1, start,
       "--prompts: entry 0 of '" + wrong_shape + "' is 1; expected a string or an object"},
      {with({"--prompts", bad_jsonl}), 1, start,
       "--prompts: line 2 of '" + bad_jsonl + "' is not valid JSON"},
      {with({"--prompts", empty_prompt}), 1, start,
       "--prompts: prompt 1 of '" + empty_prompt + "' is empty (it has no token)"},
      {with({"--prompts", file, "--out", scratch("no-such-dir") + "/out.jsonl"}), 1, start,
       "--out: cannot write '"},
  };
  for (const auto& c : cases) expect_error(c);
}

// steer extract --streaming is steer::extract with ExtractOptions::streaming: the same vector,
// bit for bit (one code path), and no accuracy (null), which needs every row.
TEST(Cli, ExtractStreamingEqualsTheLibrary) {
  const auto out = scratch("streamed.safetensors");
  const auto summary = Json::parse(
      steer_ok({"extract", "--model", default_model_dir(), "--pairs", pairs_file(), "--layers",
                "3-4", "--method", "pca-diff", "--streaming", "--out", out, "--json", "--quiet"}));
  const auto expected = steer::extract(model(), kPairs,
                                       steer::ExtractOptions(steer::Method::pca_diff)
                                           .read(ReadOptions().layers({3, 4}))
                                           .streaming(true));
  const auto written = steer::io::read_steering_vector(out);
  ASSERT_EQ(written.layers(), expected.vector.layers());
  for (const auto layer : written.layers()) {
    EXPECT_EQ(max_abs_diff(written.at(layer), expected.vector.at(layer)), 0.0) << layer;
  }
  EXPECT_EQ(summary["streaming"], true);
  for (const auto& entry : summary["layers"]) {
    EXPECT_EQ(entry["accuracy"], nullptr);
    EXPECT_EQ(entry["explained_variance_ratio"].get<double>(),
              expected.explained_variance_ratio.at(entry["layer"].get<int64_t>()));
  }
  expect_error({{"extract", "--model", default_model_dir(), "--pairs", pairs_file(), "--method",
                 "logistic", "--streaming", "--out", out},
                2, "steer extract: error: ",
                "--streaming keeps the statistics of mean-diff, pca-diff and pca-center, but "
                "--method logistic needs every row"});
}
