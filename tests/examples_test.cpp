// The steering examples run with small budgets on the default model: activation addition
// raises its behaviour score, the sweep writes its CSV and heat map, record_and_project
// separates held-out prompts above chance and draws its projection, the JSON outputs have
// their keys; and the behaviour score with a zero-coefficient hook equals the score computed
// directly from next-token log-probabilities.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"
#include "sentiment_score.hpp"

using steer::test::default_model_dir;
using steer::test::read_bytes;
using steer::test::write_bytes;

namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout (stderr goes to the test log)
};

/// A path for a file the examples write, under the fixture directory, which this test (needing
/// no fixture) may be the first to create.
std::string scratch_path(const std::string& name) {
  const auto dir = std::filesystem::path(STEER_TEST_FIXTURE_DIR) / "examples";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// Runs `program` with `arguments` (each single-quoted for /bin/sh) and captures stdout, and
/// stderr too with `with_stderr`.
Run run(const std::string& program, const std::vector<std::string>& arguments,
        bool with_stderr = false) {
  std::string command = "'" + program + "'";
  for (const auto& a : arguments) command += " '" + a + "'";
  if (with_stderr) command += " 2>&1";
  Run r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

nlohmann::json run_json(const std::string& program, std::vector<std::string> arguments) {
  arguments.insert(arguments.end(), {"--json", "--model", default_model_dir()});
  const auto r = run(program, arguments);
  EXPECT_EQ(r.status, 0) << r.out;
  try {
    return nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out;
    return {};
  }
}

void expect_keys(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* key : keys) EXPECT_TRUE(j.contains(key)) << "missing key " << key << " in " << j;
}

/// What a plot holds, decoded by Pillow (in the project's Python): its size, the share of
/// pixels that are not white, the share that are strongly coloured (largest minus smallest RGB
/// channel above 60: heat-map cells and markers, not black text or grey axes) and how many
/// pixels have exactly each of `colours` (RGB, e.g. matplotlib's tab:blue for filled markers).
struct PlotSummary {
  int width = 0, height = 0;
  double drawn = 0, coloured = 0;
  std::vector<long> exact;
};

PlotSummary summarize_png(const std::string& path, const std::vector<std::string>& colours = {}) {
  const std::string code = R"(import sys
import numpy as np
from PIL import Image
image = Image.open(sys.argv[1])
assert image.format == "PNG", image.format
rgb = np.asarray(image.convert("RGB")).astype(int)
drawn = (rgb.min(-1) < 250).mean()
coloured = ((rgb.max(-1) - rgb.min(-1)) > 60).mean()
exact = [int((rgb == [int(c[i:i + 2], 16) for i in (1, 3, 5)]).all(-1).sum()) for c in sys.argv[2:]]
print(image.width, image.height, drawn, coloured, *exact))";
  std::vector<std::string> arguments = {"-c", code, path};
  arguments.insert(arguments.end(), colours.begin(), colours.end());
  const auto r = run(STEER_TEST_PYTHON, arguments, /*with_stderr=*/true);
  EXPECT_EQ(r.status, 0) << r.out;
  PlotSummary summary;
  std::istringstream in(r.out);
  in >> summary.width >> summary.height >> summary.drawn >> summary.coloured;
  summary.exact.resize(colours.size());
  for (auto& n : summary.exact) in >> n;
  EXPECT_FALSE(in.fail()) << "cannot read the summary of " << path << ": " << r.out;
  return summary;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::istringstream in(read_bytes(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ActivationAddition, RaisesTheBehaviourScoreAtTheDefaultLayer) {
  const auto j = run_json(STEER_TEST_ACTIVATION_ADDITION, {"--max-new-tokens", "4"});
  expect_keys(j, {"model", "layer", "site", "coefficient", "normalize", "direction_norm",
                  "added_norm", "prompt", "unsteered", "steered"});
  ASSERT_TRUE(j.contains("steered") && j.contains("unsteered"));
  EXPECT_EQ(j["layer"], 6);
  EXPECT_EQ(j["site"], "resid_pre");
  EXPECT_GT(j["coefficient"].get<double>(), 0.0);
  for (const char* key : {"text", "behaviour", "perplexity"}) {
    EXPECT_TRUE(j["unsteered"].contains(key) && j["steered"].contains(key)) << key;
  }
  // Love - Hate added: positive next words become more likely than negative ones.
  EXPECT_GT(j["steered"]["behaviour"].get<double>(), j["unsteered"]["behaviour"].get<double>());
  EXPECT_NE(j["steered"]["text"], j["unsteered"]["text"]);
}

// --prompts: every prompt of a file, generated in batches of --batch-size; sampled prompt i
// gets seed + i, so it continues as `--prompt P_i --seed S+i` does alone (one batch per prompt).
// Equal token for token: padded and lone logits differ by float32 rounding only.
TEST(ActivationAddition, PromptsFileEqualsOnePromptAtATime) {
  const auto file = scratch_path("aa-prompts.json");
  const std::vector<std::string> prompts = {"I hate you because", "The food was",
                                            "Yesterday my neighbour told me that"};
  write_bytes(file, nlohmann::json(prompts).dump());
  const std::vector<std::string> sampling = {"--max-new-tokens", "6", "--temperature", "0.8"};
  auto batched_args = sampling;
  batched_args.insert(batched_args.end(), {"--prompts", file, "--batch-size", "2", "--seed", "3"});
  const auto batched = run_json(STEER_TEST_ACTIVATION_ADDITION, batched_args);
  ASSERT_EQ(batched["prompts"].size(), prompts.size()) << batched;
  for (size_t i = 1; i < prompts.size(); ++i) {
    auto alone_args = sampling;
    alone_args.insert(alone_args.end(), {"--prompt", prompts[i], "--seed", std::to_string(3 + i)});
    const auto alone = run_json(STEER_TEST_ACTIVATION_ADDITION, alone_args);
    const auto& entry = batched["prompts"][i];
    EXPECT_EQ(entry["prompt"], prompts[i]);
    EXPECT_EQ(entry["seed"], 3 + i);
    EXPECT_EQ(entry["unsteered"], alone["unsteered"]["text"]) << "prompt " << i;
    EXPECT_EQ(entry["steered"], alone["steered"]["text"]) << "prompt " << i;
  }
  EXPECT_NE(batched["prompts"][1]["steered"], batched["prompts"][1]["unsteered"]);
  const auto both = run(STEER_TEST_ACTIVATION_ADDITION, {"--prompt", "x", "--prompts", file}, true);
  EXPECT_EQ(both.status, 1);
  EXPECT_NE(both.out.find("give either --prompt or --prompts, not both"), std::string::npos)
      << both.out;
}

TEST(ActivationAddition, SweepWritesOneRowPerCellAndAHeatMap) {
  const auto csv = scratch_path("sweep.csv");
  const auto png = scratch_path("sweep.png");
  std::remove(png.c_str());
  const auto j = run_json(STEER_TEST_ACTIVATION_ADDITION,
                          {"--sweep", "--layers", "5-6", "--coefficients", "0,1", "--csv", csv,
                           "--png", png, "--python", STEER_TEST_PYTHON});
  expect_keys(j, {"layers", "coefficients", "cells", "best", "unsteered", "max_perplexity_ratio"});
  const auto lines = lines_of(csv);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "layer,coefficient,behaviour,perplexity");
  std::set<std::pair<int, double>> cells;
  for (size_t i = 1; i < lines.size(); ++i) {
    int layer = 0;
    double coefficient = 0, behaviour = 0, perplexity = 0;
    ASSERT_EQ(std::sscanf(lines[i].c_str(), "%d,%lf,%lf,%lf", &layer, &coefficient, &behaviour,
                          &perplexity), 4) << lines[i];
    cells.insert({layer, coefficient});
    EXPECT_TRUE(std::isfinite(behaviour));
    EXPECT_GT(perplexity, 1.0);
  }
  EXPECT_EQ(cells, (std::set<std::pair<int, double>>{{5, 0.0}, {5, 1.0}, {6, 0.0}, {6, 1.0}}));
  ASSERT_EQ(j["cells"].size(), 4u);
  // A zero coefficient leaves the model as it was: the logits bit for bit
  // (HooksAdd.ZeroCoefficientIsBitIdentical), so the scores differ at most by the order of their
  // float64 sums (~1e-15). 1e-5 nats (behaviour) and 1e-4 (perplexity, ~10-30) sit far above
  // that and far below what a coefficient of 1 does (0.1 and more).
  for (const auto& cell : j["cells"]) {
    if (cell["coefficient"].get<double>() != 0.0) continue;
    EXPECT_NEAR(cell["behaviour"].get<double>(), j["unsteered"]["behaviour"].get<double>(), 1e-5);
    EXPECT_NEAR(cell["perplexity"].get<double>(), j["unsteered"]["perplexity"].get<double>(), 1e-4);
  }
  // tools/plot_sweep.py: 11 x 3.5 inches at 110 dpi (2 layers), two heat maps. The coefficient
  // 1 cells sit at the ends of the colour scale (it spans the largest deviation): strongly
  // coloured, a good part of the figure. A blank or single-colour image fails both shares.
  const auto plot = summarize_png(png);
  EXPECT_EQ(plot.width, 1210) << png;
  EXPECT_EQ(plot.height, 385) << png;
  EXPECT_GT(plot.drawn, 0.2) << png;
  EXPECT_GT(plot.coloured, 0.1) << png;
}

TEST(ActivationAddition, RejectsBadArgumentsWithTheirNames) {
  auto r = run(STEER_TEST_ACTIVATION_ADDITION, {"--normalize", "sideways"}, true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("activation_addition: error: --normalize: unknown mode 'sideways'; "
                       "expected typical, none, unit or activations"), std::string::npos) << r.out;
  r = run(STEER_TEST_ACTIVATION_ADDITION, {"--coefficent", "1"}, true);
  EXPECT_EQ(r.status, 2);  // a usage error (cli/args.hpp)
  EXPECT_NE(r.out.find("unknown option --coefficent (did you mean --coefficient?)"),
            std::string::npos) << r.out;
  r = run(STEER_TEST_RECORD_AND_PROJECT, {"--test-fraction", "1"}, true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--test-fraction must be in (0, 1), got 1"), std::string::npos) << r.out;
}

TEST(BehaviourScore, WithAZeroCoefficientHookEqualsTheDirectComputation) {
  const auto model = steer::Model::load(default_model_dir());
  const auto& tokenizer = model.tokenizer();
  // Directly: P(set) summed in float64 from the log-probabilities of the unhooked model.
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& p : sentiment::score_prompts()) prompts.push_back(tokenizer.encode(p));
  const auto lp = steer::next_token_log_probs(model, prompts).to(torch::kFloat64);
  const auto positive = sentiment::first_tokens(tokenizer, sentiment::positive_words());
  const auto negative = sentiment::first_tokens(tokenizer, sentiment::negative_words());
  EXPECT_EQ(positive.size(), sentiment::positive_words().size());  // distinct first tokens
  double direct = 0;
  for (int64_t i = 0; i < lp.size(0); ++i) {
    double p = 0, n = 0;
    for (auto id : positive) p += std::exp(lp[i][id].item<double>());
    for (auto id : negative) n += std::exp(lp[i][id].item<double>());
    direct += std::log(p) - std::log(n);
  }
  direct /= static_cast<double>(lp.size(0));

  const auto direction = torch::ones({model.d_model()}, torch::kFloat32);
  auto add = steer::hook(model, "resid_pre.6", steer::Add(direction, /*coefficient=*/0.0));
  // The same float32 log-probabilities (a zero-coefficient hook is bit-identical), summed in
  // float64 in another order: ~1e-15; 1e-6 catches a wrong token set or a missing log.
  EXPECT_NEAR(sentiment::behaviour_score(model), direct, 1e-6);
}

TEST(RecordAndProject, SeparatesHeldOutPromptsAboveChanceAndDrawsThem) {
  const auto png = scratch_path("projection.png");
  const auto csv = scratch_path("projection.csv");
  std::remove(png.c_str());
  const auto j = run_json(STEER_TEST_RECORD_AND_PROJECT,
                          {"--max-prompts", "16", "--png", png, "--csv", csv, "--python",
                           STEER_TEST_PYTHON});
  expect_keys(j, {"model", "site", "positions", "seed", "train", "test", "best_layer", "layer",
                  "layers", "explained_variance_ratio"});
  ASSERT_TRUE(j.contains("layers") && j.contains("best_layer"));
  ASSERT_EQ(j["layers"].size(), 30u);  // SmolLM2-135M
  EXPECT_EQ(j["test"]["positive"], 8);
  EXPECT_EQ(j["test"]["negative"], 8);
  const auto best = j["layers"][j["best_layer"].get<size_t>()];
  for (const char* key : {"train_accuracy", "test_accuracy", "test_d", "direction_norm"}) {
    EXPECT_TRUE(best.contains(key)) << key;
  }
  // 16 held-out prompts: chance is 0.5 (+- 0.125 at one standard deviation).
  EXPECT_GE(best["test_accuracy"].get<double>(), 0.75);
  EXPECT_EQ(lines_of(csv).size(), 1u + 32u);
  // tools/plot_projection.py: 6.5 x 5.5 inches at 110 dpi, the positive set's training prompts
  // as filled tab:blue markers and the negative set's as filled tab:red ones (their inside
  // pixels are exactly those colours).
  const auto plot = summarize_png(png, {"#1f77b4", "#d62728"});
  EXPECT_EQ(plot.width, 715) << png;
  EXPECT_EQ(plot.height, 605) << png;
  EXPECT_GT(plot.drawn, 0.02) << png;
  EXPECT_GT(plot.exact.at(0), 50) << "no positive (tab:blue) markers in " << png;
  EXPECT_GT(plot.exact.at(1), 50) << "no negative (tab:red) markers in " << png;
}

}  // namespace
