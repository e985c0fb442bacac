// The steer command-line tool run as a program (its path comes from CMake as STEER_CLI_PATH):
// each subcommand against the library calls it stands for, a control vector written by the
// Python gguf package applied at resid_post of its layers, and the one-line errors.
#include <sys/wait.h>

#include <cstdlib>
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

// Runs `steer <args...>`, its stdout and stderr captured in scratch files.
Run steer_cli(const std::vector<std::string>& args) {
  static int runs = 0;
  const auto stem = scratch("run-" + std::to_string(runs++));
  std::string command = quoted(STEER_CLI_PATH);
  for (const auto& a : args) command += " " + quoted(a);
  command += " >" + quoted(stem + ".out") + " 2>" + quoted(stem + ".err");
  const int raw = std::system(command.c_str());
  Run run;
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  run.out = read_bytes(stem + ".out");
  run.err = read_bytes(stem + ".err");
  return run;
}

// Runs the tool and expects exit status 0; returns stdout.
std::string steer_ok(const std::vector<std::string>& args) {
  const auto run = steer_cli(args);
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

// Every bad input is one line "steer <command>: error: ..." and exit status 1.
TEST(Cli, ErrorsAreOneLineAndExitStatusOne) {
  const auto model_dir = default_model_dir();
  const auto pairs = pairs_file();
  const auto narrow = scratch("d_model_7.safetensors");
  steer::SteeringVector seven(/*d_model=*/7, steer::VectorOrigin().model("tiny"));
  seven.set(/*layer=*/3, torch::ones({7}));
  steer::io::write_steering_vector(narrow, seven);
  const auto missing = scratch("missing.gguf");
  const auto prompts = scratch("one-prompt.txt");
  write_bytes(prompts, "Hello\n");

  struct Case {
    std::vector<std::string> args;
    std::string start;     // the line starts with it
    std::string fragment;  // and contains it
  };
  const std::vector<Case> cases = {
      {{"generate", "--model", model_dir, "--prompt", "x", "--bogus"},
       "steer generate: error: ",
       "unknown argument '--bogus'"},
      {{"extract", "--pairs", pairs, "--out", "v.gguf"},
       "steer extract: error: ",
       "--model is required"},
      {{"extract", "--model", model_dir, "--pairs", pairs, "--site", "resid_middle", "--out",
        "v.gguf"},
       "steer extract: error: ",
       "--site: unknown site 'resid_middle'"},
      {{"extract", "--model", model_dir, "--pairs", pairs, "--site", "resid_pre", "--out",
        "v.gguf"},
       "steer extract: error: ",
       "--allow-other-sites"},
      {{"generate", "--model", model_dir, "--prompt", "x", "--vector", narrow},
       "steer generate: error: ",
       "has d_model=7 but model 'smollm2-135m-instruct' has d_model=576"},
      {{"generate", "--model", model_dir, "--prompt", "x", "--layers", "40"},
       "steer generate: error: ",
       "--layers: '40' names layer 40, out of range"},
      {{"generate", "--model", model_dir, "--prompt", "x", "--vector", missing + ":2"},
       "steer generate: error: ",
       "cannot open " + missing},
      {{"record", "--model", fixture_dir() + "/no-such-model", "--prompts", prompts, "--out", "a"},
       "steer record: error: ",
       "is neither a directory nor a file"},
      {{"tokenize", "--model", model_dir}, "steer tokenize: error: ", "--text is required"},
      {{"frobnicate"}, "steer: error: ", "unknown command 'frobnicate'"},
  };
  for (const auto& c : cases) {
    const auto run = steer_cli(c.args);
    SCOPED_TRACE(c.args.front() + ": " + run.err);
    EXPECT_EQ(run.status, 1);
    EXPECT_EQ(run.err.rfind(c.start, 0), 0u);
    EXPECT_NE(run.err.find(c.fragment), std::string::npos);
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "one line";
    EXPECT_EQ(run.out, "");
  }
}

TEST(Cli, HelpAndVersion) {
  EXPECT_EQ(steer_ok({"--version"}).rfind(std::string("steer ") + steer::version(), 0), 0u);
  const auto help = steer_ok({"--help"});
  for (const auto* command : {"extract", "generate", "record", "tokenize"}) {
    EXPECT_NE(help.find(command), std::string::npos) << command;
  }
  EXPECT_EQ(steer_ok({"generate", "--help"}).rfind("usage: steer generate", 0), 0u);
}

}  // namespace
