// `steer generate`: text from a prompt, with steering vectors added (Add hooks) and directions
// ablated (Ablate hooks) while the model generates.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"
#include "prompt_batches.hpp"

namespace steer::cli {

inline std::string generate_usage() {
  return std::string(
             "usage: steer generate --model DIR (--prompt TEXT | -f FILE | --prompts FILE)\n"
             "                      [--vector F[:SCALE]]... [options]\n"
             "\n"
             "Generates a continuation of the prompt, streamed to stdout; with --prompts, of\n"
             "every prompt of a file, in batches, as JSON Lines. Each --vector adds\n"
             "SCALE times its direction of layer N at its site (resid_post for llama.cpp and\n"
             "repeng files: direction.N is the output of block N) to every selected token.\n"
             "Ablations apply before additions, in the order given.\n"
             "\n"
             "  --model DIR         model directory (tools/export_model.py)\n"
             "  --prompt TEXT       the prompt\n"
             "  -f, --prompt-file F the prompt from file F ('-': stdin), one trailing newline\n"
             "                      removed; for prompts longer than the shell allows\n"
             "  --prompts FILE      generate each prompt of FILE (.json list, .jsonl, or .txt:\n"
             "                      one per line) and write one JSON line per prompt, in file\n"
             "                      order: {prompt, text, tokens, stop_reason, vectors, ...}\n"
             "  --batch-size N      with --prompts: prompts per batch, left-padded (default 8)\n"
             "  --out FILE          with --prompts: write the JSON Lines to FILE (default: stdout)\n"
             "  --quiet             with --prompts: no progress line on stderr\n"
             "  --chat              wrap the prompt as a user message in the chat template\n"
             "  --vector F[:SCALE]  add a .gguf or .safetensors vector, SCALE times (default 1);\n"
             "                      repeatable; a file whose name has ':' is found as it is\n"
             "  --normalize MODE    scale each direction of --vector before SCALE: none (default,\n"
             "                      as llama.cpp), unit (norm 1), typical (the mean activation\n"
             "                      norm at its layer and site on neutral text), recorded (the\n"
             "                      activation norm the file records, from steer extract)\n"
             "  --ablate F          remove the direction of each layer of F at that layer and\n"
             "                      site (directional ablation); repeatable\n"
             "  --ablate-direction F[:LAYER]\n"
             "                      remove F's direction of LAYER (optional when F has one) at\n"
             "                      resid_pre, attn_out and mlp_out of every layer (of --layers),\n"
             "                      all tokens: Arditi et al.'s ablation; repeatable\n"
             "  --layers SPEC       apply vectors and ablations only at these layers (all, A-B,\n"
             "                      A, 0-3,7); default: every layer of each file\n"
             "  --positions SPEC    tokens steered: all (default, as llama.cpp), last, prompt,\n"
             "                      generated, K:, A:B, -N:, I,J\n"
             "  --max-new-tokens N  tokens to generate at most (default 32)\n"
             "  --temperature T     0 = greedy (default); > 0 samples\n"
             "  --top-k K           sample among the K most likely tokens (default 0: all)\n"
             "  --top-p P           nucleus sampling, in (0, 1] (default 1)\n"
             "  --seed S            seed of the sampler, with --temperature > 0 (default 0);\n"
             "                      with --prompts, prompt i (from 0) is sampled with S+i\n"
             "  --greedy            argmax decoding (the default; refuses --temperature > 0)\n"
             "  --ignore-eos        keep generating past the end-of-sequence token\n"
             "  --json              print {prompt, text, tokens, ...} instead of streaming\n"
             "  -h, --help          this text\n") +
         model_options_help() +
         "\nexample: steer generate --model models/smollm2-135m-instruct \\\n"
         "           --prompt \"I hate you because\" --vector love.gguf:4";
}

/// "F:SUFFIX" -> (F, SUFFIX) when SUFFIX passes `is_suffix`; else (text, nullopt). A text that
/// names an existing file is that file (so a path with ':' works). `what` names the suffix in
/// the message for "F:junk" when F exists.
inline std::pair<std::string, std::optional<std::string>> split_file_suffix(
    const std::string& option, const std::string& text, const char* what, const char* example,
    const std::function<bool(const std::string&)>& is_suffix) {
  std::error_code ignored;
  const auto colon = text.rfind(':');
  if (std::filesystem::exists(text, ignored) || colon == std::string::npos || colon == 0) {
    return {text, std::nullopt};
  }
  const auto file = text.substr(0, colon);
  const auto suffix = text.substr(colon + 1);
  if (!suffix.empty() && !std::isspace(static_cast<unsigned char>(suffix[0])) && is_suffix(suffix)) {
    return {file, suffix};
  }
  usage_check(!std::filesystem::exists(file, ignored), "--", option, ": ", what, " '", suffix,
              "' of '", file, "' is not a number (expected F or F:", example, ")");
  return {text, std::nullopt};
}

/// --vector F[:SCALE] -> (F, SCALE): the part after the last ':' is the scale when it is a
/// number, and must be finite ("F:1e400" and "F:nan" are usage errors). "F:abc" is a bad scale
/// when F exists, else the file "F:abc" (which the reader reports as missing).
inline std::pair<std::string, double> split_vector_argument(const std::string& text) {
  const auto parse = [](const std::string& s, double& value) {
    char* end = nullptr;
    value = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
  };
  double value = 0;
  const auto [file, scale] = split_file_suffix(
      "vector", text, "scale", "4", [&](const std::string& s) { return parse(s, value); });
  if (!scale) return {file, 1.0};
  usage_check(std::isfinite(value), "--vector: scale '", *scale, "' of '", file,
              "' is not a finite number");
  return {file, value};
}

/// --ablate-direction F[:LAYER] -> (F, LAYER).
inline std::pair<std::string, std::optional<int64_t>> split_direction_argument(
    const std::string& text) {
  const auto [file, layer] = split_file_suffix(
      "ablate-direction", text, "layer", "12", [](const std::string& s) {
        return std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      });
  if (!layer) return {file, std::nullopt};
  return {file, Args::parse_integer("ablate-direction", *layer)};
}

/// A vector file as applied: its layers (restricted to --layers) at its site.
struct AppliedFile {
  std::string file;
  double coefficient = 1.0;
  SteeringVector vector;
  Site site = Site::resid_post;
  std::vector<int64_t> layers;
  std::optional<int64_t> direction_layer;  // --ablate-direction F:LAYER
};

/// Checks `applied.vector` against the model and sets its site and the layers it applies at.
inline void fit_to_model(const std::string& option, AppliedFile& applied, const Model& model,
                         const std::optional<std::vector<int64_t>>& only) {
  applied.site = detail::check_vector_fits(applied.vector, model, "vector '" + applied.file + "'");
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

/// The runs of consecutive layers in an ascending list: {0,1,2,7} -> {0..2, 7..7}.
inline std::vector<LayerRange> consecutive_runs(const std::vector<int64_t>& layers) {
  std::vector<LayerRange> runs;
  for (const auto layer : layers) {
    if (!runs.empty() && runs.back().last + 1 == layer) {
      runs.back().last = layer;
    } else {
      runs.push_back({layer, layer});
    }
  }
  return runs;
}

inline int run_generate(int argc, char** argv) {
  Args args(argc, argv, generate_usage(), 2);
  args.hint_on_error("see 'steer generate --help'").alias('f', "prompt-file");
  const auto model_dir = args.required("model");
  const auto prompt_text = args.optional("prompt");
  const auto prompt_file = args.optional("prompt-file");
  const auto prompts_file = args.optional("prompts");
  const auto batch_size = args.optional("batch-size");
  const auto out_file = args.optional("out");
  const bool quiet = args.flag("quiet");
  const bool chat = args.flag("chat");
  const auto vector_arguments = args.values("vector");
  const auto ablate_files = args.values("ablate");
  const auto direction_arguments = args.values("ablate-direction");
  const auto normalize_name = args.value("normalize", "none");
  const auto layers_spec = args.optional("layers");
  const auto positions_spec = args.value("positions", "all");
  const bool greedy = args.flag("greedy");
  auto options = GenerateOptions()
                     .max_new_tokens(args.integer("max-new-tokens", 32))
                     .temperature(args.number("temperature", 0.0))
                     .top_k(args.integer("top-k", 0))
                     .top_p(args.number("top-p", 1.0))
                     .stop_at_eos(!args.flag("ignore-eos"));
  const auto seed_text = args.optional("seed");
  const bool json = args.flag("json");
  const auto model_given = model_arguments(args);
  args.finish();

  // Everything that needs no file and no model is checked first: a usage error (exit 2).
  usage_check(!prompts_file || (!prompt_text && !prompt_file), "--prompts FILE generates every "
              "prompt of FILE; give it without ", prompt_text ? "--prompt" : "--prompt-file");
  usage_check(prompts_file || prompt_text.has_value() != prompt_file.has_value(),
              prompt_text ? "give either --prompt or --prompt-file, not both"
                          : "give the prompt: --prompt TEXT, -f/--prompt-file FILE ('-' for "
                            "stdin), or --prompts FILE (one prompt per line, JSON or JSONL)");
  const std::vector<std::pair<const char*, bool>> batch_only = {
      {"batch-size", batch_size.has_value()}, {"out", out_file.has_value()}, {"quiet", quiet}};
  for (const auto& [name, given] : batch_only) {
    usage_check(prompts_file || !given, "--", name, " applies to --prompts FILE (one prompt is "
                "streamed to stdout)");
  }
  auto batches = PromptBatches(prompts_file.value_or(""))
                     .batch_size(batch_size ? Args::parse_integer("batch-size", *batch_size) : 8)
                     .chat(chat)
                     .out(out_file.value_or("-"))
                     .quiet(quiet);
  usage_check(batches.batch_size() >= 1, "--batch-size must be >= 1, got ", batches.batch_size());
  usage_check(!greedy || options.temperature() == 0.0,
              "--greedy decodes by argmax, but --temperature ", options.temperature(),
              " asks for sampling (give one of them)");
  // Greedy decoding (temperature 0) takes the argmax: sampling options would be ignored.
  if (options.temperature() == 0.0) {
    const char* given = options.top_k() != 0 ? "--top-k" : options.top_p() != 1.0 ? "--top-p"
                        : seed_text ? "--seed" : nullptr;
    usage_check(given == nullptr, given, " is given but --temperature is 0 (greedy decoding "
                "ignores it; give --temperature > 0 to sample, e.g. 0.7)");
  }
  const int64_t seed = seed_text ? Args::parse_integer("seed", *seed_text) : 0;
  usage_check(seed >= 0, "--seed must be >= 0, got ", seed);
  if (options.temperature() > 0.0) options.seed(static_cast<uint64_t>(seed));
  usage_check(options.max_new_tokens() > 0, "--max-new-tokens must be > 0, got ",
              options.max_new_tokens());
  usage_check(options.temperature() >= 0.0, "--temperature must be >= 0 (0 = greedy), got ",
              options.temperature());
  usage_check(options.top_k() >= 0, "--top-k must be >= 0 (0 = no limit), got ", options.top_k());
  usage_check(options.top_p() > 0.0 && options.top_p() <= 1.0, "--top-p must be in (0, 1], got ",
              options.top_p());
  const auto positions = parse_option("positions", "Positions::parse",
                                      [&] { return Positions::parse(positions_spec); });
  if (layers_spec) check_layers_syntax(*layers_spec);
  const auto normalization = parse_option("normalize", "parse_normalization",
                                          [&] { return parse_normalization(normalize_name); });
  const auto load_options = model_options(model_given);
  std::vector<std::pair<std::string, double>> vector_files;
  for (const auto& text : vector_arguments) vector_files.push_back(split_vector_argument(text));

  // The files are read before the model loads, so a missing one fails fast.
  std::vector<std::string> prompts;
  std::ofstream out_stream;
  if (prompts_file) {
    prompts = read_prompt_file(batches);
    out_stream = open_output(batches);
  } else {
    prompts = {prompt_text ? *prompt_text : read_text_argument("prompt-file", *prompt_file)};
  }
  const auto& prompt = prompts.front();
  std::vector<AppliedFile> additions, ablations;
  for (const auto& [file, coefficient] : vector_files) {
    additions.push_back({file, coefficient, io::read_steering_vector(file)});
  }
  for (const auto& file : ablate_files) {
    ablations.push_back({file, 1.0, io::read_steering_vector(file)});
  }
  std::vector<AppliedFile> directions;
  for (const auto& text : direction_arguments) {
    const auto [file, layer] = split_direction_argument(text);
    directions.push_back({file, 1.0, io::read_steering_vector(file)});
    directions.back().direction_layer = layer;
  }

  const auto model = Model::load(model_dir, load_options);
  std::optional<std::vector<int64_t>> only;
  if (layers_spec) only = layers_of(*layers_spec, model);
  for (auto& a : additions) fit_to_model("vector", a, model, only);
  for (auto& a : ablations) fit_to_model("ablate", a, model, only);
  const auto every_layer = only ? *only : layers_of("all", model);
  // Ablations first: at a hook point they run before the additions, so an added vector is not
  // removed again by an ablation of a similar direction.
  std::vector<AppliedVector> applied;
  for (auto& d : directions) {
    try {
      for (const auto& run : consecutive_runs(every_layer)) {
        applied.push_back(ablate_direction(model, d.vector, d.direction_layer, run));
      }
    } catch (const Error& e) {
      throw Error(detail::concat("--ablate-direction ", d.file, ": ", e.what()));
    }
    d.layers = every_layer;
  }
  for (const auto& a : ablations) {
    applied.push_back(apply(model, a.vector,
                            ApplyOptions().operation(Operation::ablate).layers(a.layers).positions(positions)));
  }
  std::vector<LayerValues> added_norms;
  for (const auto& a : additions) {
    applied.push_back(apply(model, a.vector,
                            ApplyOptions()
                                .coefficient(a.coefficient)
                                .layers(a.layers)
                                .positions(positions)
                                .normalization(normalization)));
    added_norms.push_back(applied.back().normalized_norms());
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
  Json vectors = describe(additions, true);
  for (size_t i = 0; i < additions.size(); ++i) {
    Json norms = Json::object();
    for (const auto& [layer, norm] : added_norms[i]) norms[std::to_string(layer)] = norm;
    vectors[i]["normalize"] = normalize_name;
    vectors[i]["normalized_norms"] = norms;
  }
  Json direction_list = Json::array();
  for (const auto& d : directions) {
    const auto source = d.direction_layer ? *d.direction_layer : d.vector.layers().front();
    direction_list.push_back({{"file", d.file},
                              {"direction_layer", source},
                              {"sites", {"resid_pre", "attn_out", "mlp_out"}},
                              {"layers", d.layers}});
  }
  const Json settings = {{"vectors", vectors},
                         {"ablations", describe(ablations, false)},
                         {"ablated_directions", direction_list},
                         {"positions", positions.to_string()},
                         {"max_new_tokens", options.max_new_tokens()},
                         {"temperature", options.temperature()},
                         {"top_k", options.top_k()},
                         {"top_p", options.top_p()}};
  if (prompts_file) {
    generate_prompt_batches(model, prompts, batches, options, settings, out_stream);
    return 0;
  }

  const auto ids = prompt_ids(model, prompt, chat);
  const char* prompt_option = prompt_text ? "--prompt" : "--prompt-file";
  STEER_CHECK(!ids.empty(), prompt_option, " is empty (it has no token)");
  const auto positions_needed = static_cast<int64_t>(ids.size()) + options.max_new_tokens();
  const auto max_positions = model.config().max_positions;
  STEER_CHECK(max_positions <= 0 || positions_needed <= max_positions, prompt_option,
              ": the prompt has ", ids.size(), " tokens; with --max-new-tokens ",
              options.max_new_tokens(), " that is ", positions_needed,
              " positions, beyond the model's ", max_positions);
  if (!json) {
    options.on_token([](const TokenEvent& event) { std::cout << event.text << std::flush; });
  }
  const auto generation = model.generate(std::vector<std::vector<int64_t>>{ids}, options).front();
  if (!json) {
    std::cout << "\n";
    return 0;
  }
  std::cout << to_text(generation_record(prompt, chat, generation, settings, options.seed()))
            << "\n";
  return 0;
}

}  // namespace steer::cli
