// `steer generate`: text from a prompt, with steering vectors added (Add hooks) and directions
// ablated (Ablate hooks) while the model generates.
#pragma once

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"

namespace steer::cli {

inline std::string generate_usage() {
  return std::string(
             "usage: steer generate --model DIR --prompt TEXT [--vector F[:SCALE]]... [options]\n"
             "\n"
             "Generates a continuation of the prompt, streamed to stdout. Each --vector adds\n"
             "SCALE times its direction of layer N at its site (resid_post for llama.cpp and\n"
             "repeng files: direction.N is the output of block N) to every selected token.\n"
             "\n"
             "  --model DIR         model directory (tools/export_model.py)\n"
             "  --prompt TEXT       the prompt\n"
             "  --chat              wrap the prompt as a user message in the chat template\n"
             "  --vector F[:SCALE]  add a .gguf or .safetensors vector, SCALE times (default 1);\n"
             "                      repeatable\n"
             "  --ablate F          remove the direction of each layer of F at that layer and\n"
             "                      site (directional ablation); repeatable\n"
             "  --layers SPEC       apply vectors and ablations only at these layers (all, A-B,\n"
             "                      A, 0-3,7); default: every layer of each file\n"
             "  --positions SPEC    tokens steered: all (default, as llama.cpp), last, prompt,\n"
             "                      generated, K:, A:B, -N:, I,J\n"
             "  --max-new-tokens N  tokens to generate at most (default 32)\n"
             "  --temperature T     0 = greedy (default); > 0 samples\n"
             "  --top-k K           sample among the K most likely tokens (default 0: all)\n"
             "  --top-p P           nucleus sampling, in (0, 1] (default 1)\n"
             "  --seed S            seed of the sampler (default 0)\n"
             "  --greedy            argmax decoding (the default; refuses --temperature > 0)\n"
             "  --ignore-eos        keep generating past the end-of-sequence token\n"
             "  --json              print {prompt, text, tokens, ...} instead of streaming\n") +
         model_options_help() +
         "\nexample: steer generate --model models/smollm2-135m-instruct \\\n"
         "           --prompt \"I hate you because\" --vector love.gguf:4";
}

/// "F:SCALE" -> (F, SCALE); "F" (or a name whose part after the last ':' is no number) -> (F, 1).
inline std::pair<std::string, double> split_vector_argument(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon != std::string::npos && colon > 0 && colon + 1 < text.size()) {
    const auto scale = text.substr(colon + 1);
    size_t end = 0;
    double value = 0;
    try {
      value = std::stod(scale, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    if (end == scale.size()) {
      STEER_CHECK(std::isfinite(value), "--vector ", text, ": the scale must be finite");
      return {text.substr(0, colon), value};
    }
  }
  return {text, 1.0};
}

/// A vector file as applied: its layers (restricted to --layers) at its site.
struct AppliedFile {
  std::string file;
  double coefficient = 1.0;
  SteeringVector vector;
  Site site = Site::resid_post;
  std::vector<int64_t> layers;
};

/// Checks `applied.vector` against the model and sets its site and the layers it applies at.
inline void fit_to_model(const std::string& option, AppliedFile& applied, const Model& model,
                         const std::optional<std::vector<int64_t>>& only) {
  applied.site = check_vector_fits(applied.vector, applied.file, model);
  for (const auto layer : applied.vector.layers()) {
    if (!only || std::find(only->begin(), only->end(), layer) != only->end()) {
      applied.layers.push_back(layer);
    }
  }
  STEER_CHECK(!applied.layers.empty(), "--", option, " ", applied.file,
              ": the file has no "
              "direction in --layers ",
              layer_ranges(*only), " (it has layers ", layer_ranges(applied.vector.layers()), ")");
}

inline int run_generate(int argc, char** argv) {
  Args args(argc, argv, generate_usage(), 2);
  args.hint_on_error("see 'steer generate --help'");
  const auto model_dir = args.required("model");
  const auto prompt = args.required("prompt");
  const bool chat = args.flag("chat");
  const auto vector_arguments = args.values("vector");
  const auto ablate_files = args.values("ablate");
  const auto layers_spec = args.optional("layers");
  const auto positions_spec = args.value("positions", "all");
  const bool greedy = args.flag("greedy");
  auto options = GenerateOptions()
                     .max_new_tokens(args.integer("max-new-tokens", 32))
                     .temperature(args.number("temperature", 0.0))
                     .top_k(args.integer("top-k", 0))
                     .top_p(args.number("top-p", 1.0))
                     .stop_at_eos(!args.flag("ignore-eos"));
  const auto seed = args.integer("seed", 0);
  const bool json = args.flag("json");
  const auto load_options = model_options(args);
  args.finish();

  STEER_CHECK(!greedy || options.temperature() == 0.0,
              "--greedy decodes by argmax, but "
              "--temperature ",
              options.temperature(), " asks for sampling (give one of them)");
  STEER_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
  options.seed(static_cast<uint64_t>(seed));
  STEER_CHECK(options.max_new_tokens() > 0, "--max-new-tokens must be > 0, got ",
              options.max_new_tokens());
  STEER_CHECK(options.temperature() >= 0.0 && std::isfinite(options.temperature()),
              "--temperature must be >= 0 (0 = greedy), got ", options.temperature());
  STEER_CHECK(options.top_k() >= 0, "--top-k must be >= 0 (0 = no limit), got ", options.top_k());
  STEER_CHECK(options.top_p() > 0.0 && options.top_p() <= 1.0, "--top-p must be in (0, 1], got ",
              options.top_p());
  const auto positions = parse_option("positions", "Positions::parse",
                                      [&] { return Positions::parse(positions_spec); });
  // The files are read before the model loads, so a missing one fails fast.
  std::vector<AppliedFile> additions, ablations;
  for (const auto& text : vector_arguments) {
    const auto [file, coefficient] = split_vector_argument(text);
    additions.push_back({file, coefficient, io::read_steering_vector(file)});
  }
  for (const auto& file : ablate_files) {
    ablations.push_back({file, 1.0, io::read_steering_vector(file)});
  }

  const auto model = Model::load(model_dir, load_options);
  std::optional<std::vector<int64_t>> only;
  if (layers_spec) {
    only = parse_option("layers", "parse_layers",
                        [&] { return parse_layers(*layers_spec, model.n_layers()); });
  }
  for (auto& a : additions) fit_to_model("vector", a, model, only);
  for (auto& a : ablations) fit_to_model("ablate", a, model, only);
  // Ablations first: at a hook point they run before the additions, so an added vector is not
  // removed again by an ablation of a similar direction.
  std::vector<HookHandle<Ablate>> ablate_hooks;
  for (const auto& a : ablations) {
    for (const auto layer : a.layers) {
      ablate_hooks.push_back(
          hook(model, HookPoint(a.site, layer), Ablate(a.vector.at(layer)), positions));
    }
  }
  std::vector<HookHandle<Add>> add_hooks;
  for (const auto& a : additions) {
    for (const auto layer : a.layers) {
      add_hooks.push_back(
          hook(model, HookPoint(a.site, layer), Add(a.vector.at(layer), a.coefficient), positions));
    }
  }

  const auto ids = prompt_ids(model, prompt, chat);
  STEER_CHECK(!ids.empty(), "--prompt is empty (it has no token)");
  if (!json) {
    options.on_token([](const TokenEvent& event) { std::cout << event.text << std::flush; });
  }
  const auto generation = model.generate(std::vector<std::vector<int64_t>>{ids}, options).front();
  if (!json) {
    std::cout << "\n";
    return 0;
  }
  const auto describe = [](const std::vector<AppliedFile>& files, bool with_coefficient) {
    Json list = Json::array();
    for (const auto& f : files) {
      Json entry = {{"file", f.file}, {"site", site_name(f.site)}, {"layers", f.layers}};
      if (with_coefficient) entry["coefficient"] = f.coefficient;
      list.push_back(entry);
    }
    return list;
  };
  const Json out = {{"prompt", prompt},
                    {"chat", chat},
                    {"prompt_tokens", generation.prompt_ids},
                    {"text", generation.text},
                    {"tokens", generation.ids},
                    {"stop_reason", generation.stop_reason},
                    {"vectors", describe(additions, true)},
                    {"ablations", describe(ablations, false)},
                    {"positions", positions.to_string()},
                    {"max_new_tokens", options.max_new_tokens()},
                    {"temperature", options.temperature()},
                    {"top_k", options.top_k()},
                    {"top_p", options.top_p()},
                    {"seed", options.seed()}};
  std::cout << to_text(out) << "\n";
  return 0;
}

}  // namespace steer::cli
