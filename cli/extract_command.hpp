// `steer extract`: contrasting prompts -> a steering vector per layer, written as a GGUF
// control vector or safetensors (steer::extract, steer::io::write_steering_vector).
#pragma once

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"

namespace steer::cli {

inline std::string extract_usage() {
  return std::string(
             "usage: steer extract --model DIR (--pairs FILE | --positive FILE --negative FILE)\n"
             "                     --out F.gguf|F.safetensors [options]\n"
             "\n"
             "Reads the prompts through the model, records activations at --site of each layer\n"
             "and makes one direction per layer, from the negative to the positive prompts.\n"
             "\n"
             "  --model DIR         model directory (tools/export_model.py)\n"
             "  --pairs FILE        .json: a list of [\"positive\", \"negative\"] pairs (or objects\n"
             "                      {\"positive\": ..., \"negative\": ...}); .jsonl: one per line\n"
             "  --positive FILE     prompts of the positive set: .json (a JSON list), .jsonl,\n"
             "                      or .txt (one per line, llama.cpp's positive.txt form)\n"
             "  --negative FILE     prompts of the negative set, same forms\n"
             "  --layers SPEC       all (default), A-B (inclusive), A, or a list such as 0-3,7\n"
             "  --site SITE         resid_post (default), resid_pre, resid_mid, attn_out, mlp_out\n"
             "  --positions SPEC    tokens read: last (default), all, -N: (last N), K:, A:B, I,J\n"
             "  --pooling P         mean (default: one row per prompt) or tokens (one per token)\n"
             "  --method M          mean-diff (default), pca-diff, pca-center, logistic, lda\n"
             "  --normalize N       none (default), unit, activations (to the mean activation\n"
             "                      norm of each layer, so a coefficient counts typical norms)\n"
             "  --chat              wrap each prompt in the model's chat template\n"
             "  --batch-size N      prompts per forward pass (default 8)\n"
             "  --streaming         keep only the statistics of the method (mean-diff: two\n"
             "                      means; pca-diff, pca-center: a d_model x d_model moment), not\n"
             "                      every row: memory does not grow with the prompts; no accuracy\n"
             "  --out FILE          .gguf (llama.cpp control vector) or .safetensors\n"
             "  --allow-layer-zero  keep layer 0 in a .gguf (llama.cpp refuses such files; "
             "without\n"
             "                      this flag layer 0 is dropped with a warning)\n"
             "  --allow-other-sites write a .gguf read at a site other than resid_post (llama.cpp\n"
             "                      would apply it at resid_post all the same)\n"
             "  --json              print a JSON summary instead of the table\n"
             "  --quiet             no progress on stderr\n"
             "  -h, --help          this text\n") +
         model_options_help() +
         "\nexample: steer extract --model models/smollm2-135m-instruct --pairs love_hate.json \\\n"
         "           --layers 3-6 --out love.gguf";
}

inline int run_extract(int argc, char** argv) {
  const std::string program = "steer extract";
  Args args(argc, argv, extract_usage(), 2);
  args.hint_on_error("see 'steer extract --help'");
  const auto model_dir = args.required("model");
  const auto pairs_file = args.optional("pairs");
  const auto positive_file = args.optional("positive");
  const auto negative_file = args.optional("negative");
  const auto layers_spec = args.value("layers", "all");
  const auto site_name_given = args.value("site", "resid_post");
  const auto positions_spec = args.value("positions", "last");
  const auto pooling_name = args.value("pooling", "mean");
  const auto method_name_given = args.value("method", "mean-diff");
  const auto normalize = args.value("normalize", "none");
  const bool chat = args.flag("chat");
  const auto batch_size = args.integer("batch-size", 8);
  const bool streaming = args.flag("streaming");
  const auto out = args.required("out");
  const bool allow_layer_zero = args.flag("allow-layer-zero");
  const bool allow_other_sites = args.flag("allow-other-sites");
  const bool json = args.flag("json");
  const bool quiet = args.flag("quiet");
  const auto model_given = model_arguments(args);
  args.finish();

  // Everything that needs no file and no model is checked first: a usage error (exit 2).
  usage_check(pairs_file.has_value() != (positive_file.has_value() || negative_file.has_value()),
              pairs_file
                  ? "give either --pairs or --positive and --negative, not both"
                  : "give the prompts: --pairs FILE, or --positive FILE and --negative FILE");
  usage_check(pairs_file || (positive_file && negative_file), "--",
              positive_file ? "negative" : "positive",
              " is missing (--positive and --negative go together)");
  const auto site = parse_option("site", "parse_site", [&] { return parse_site(site_name_given); });
  const auto positions = parse_option("positions", "Positions::parse",
                                      [&] { return Positions::parse(positions_spec); });
  const auto method =
      parse_option("method", "parse_method", [&] { return parse_method(method_name_given); });
  usage_check(pooling_name == "mean" || pooling_name == "tokens", "--pooling: unknown pooling '",
              pooling_name, "'; expected mean or tokens");
  usage_check(normalize == "none" || normalize == "unit" || normalize == "activations",
              "--normalize: unknown normalization '", normalize,
              "'; expected none, unit or activations");
  usage_check(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  usage_check(!streaming || method == Method::mean_diff || method == Method::pca_diff ||
                  method == Method::pca_center,
              "--streaming keeps the statistics of mean-diff, pca-diff and pca-center, but "
              "--method ", method_name(method), " needs every row (hint: drop --streaming)");
  check_layers_syntax(layers_spec);
  const bool gguf = ends_with(out, ".gguf");
  usage_check(gguf || ends_with(out, ".safetensors"), "--out: cannot tell the format of '", out,
              "' (expected a name ending in .gguf or .safetensors)");
  usage_check(!gguf || site == Site::resid_post || allow_other_sites, "--site ", site_name(site),
              ": llama.cpp adds direction.N of a .gguf control vector at resid_post (the output of "
              "block N), not where this vector is read (hint: write .safetensors, or pass "
              "--allow-other-sites to write the .gguf anyway)");
  const auto load_options = model_options(model_given);

  std::vector<std::string> positive, negative;
  if (pairs_file) {
    for (auto& [p, n] : io::read_pairs(*pairs_file)) {
      positive.push_back(std::move(p));
      negative.push_back(std::move(n));
    }
  } else {
    positive = io::read_prompts(*positive_file);
    negative = io::read_prompts(*negative_file);
  }

  const auto model = Model::load(model_dir, load_options);
  const auto layers = layers_of(layers_spec, model);
  auto read = ReadOptions()
                  .layers(layers)
                  .site(site)
                  .positions(positions)
                  .pooling(pooling_name == "mean" ? Pooling::mean : Pooling::tokens)
                  .batch_size(batch_size)
                  .chat(chat);
  if (!quiet) read.progress(progress_printer(program));
  const auto extraction =
      extract(model, positive, negative, ExtractOptions(method).read(read).streaming(streaming));
  // Streaming computes no accuracy (it would project every row on the final direction).
  const auto accuracy = [&](int64_t layer) {
    const auto found = extraction.accuracy.find(layer);
    return found == extraction.accuracy.end() ? Json(nullptr) : Json(found->second);
  };

  auto vector = extraction.vector;
  if (normalize == "unit") vector = vector.normalized();
  if (normalize == "activations") vector = vector.normalized_to_activations();
  vector.origin().metadata()["normalize"] = normalize;
  std::vector<int64_t> dropped;
  if (gguf && vector.has(0) && !allow_layer_zero) {
    auto kept = vector.layers();
    kept.erase(kept.begin());
    STEER_CHECK(
        !kept.empty(), "--layers ", layers_spec,
        ": a .gguf control vector cannot hold "
        "only layer 0, which llama.cpp refuses (hint: --allow-layer-zero, or .safetensors)");
    vector = vector.select_layers(kept);
    dropped.push_back(0);
    std::cerr << program << ": warning: layer 0 left out of " << out
              << ": llama.cpp refuses control vectors with direction.0 (--allow-layer-zero keeps "
                 "it)\n";
  }
  io::write_steering_vector(out, vector,
                            io::ControlVectorOptions()
                                .allow_layer_zero(allow_layer_zero)
                                .allow_other_sites(allow_other_sites));

  const auto norms = vector.norms();
  const auto& activation_norms = vector.origin().activation_norms();
  const bool pca = method == Method::pca_diff || method == Method::pca_center;
  if (json) {
    Json layers_json = Json::array();
    for (const auto& [layer, norm] : norms) {
      Json entry = {{"layer", layer},
                    {"norm", norm},
                    {"accuracy", accuracy(layer)},
                    {"activation_norm", activation_norms.at(layer)}};
      if (pca) entry["explained_variance_ratio"] = extraction.explained_variance_ratio.at(layer);
      layers_json.push_back(entry);
    }
    Json summary = {{"out", out},
                    {"model", vector.origin().model()},
                    {"d_model", vector.d_model()},
                    {"site", site_name(site)},
                    {"positions", positions.to_string()},
                    {"pooling", pooling_name},
                    {"method", method_name(method)},
                    {"normalize", normalize},
                    {"chat", chat},
                    {"streaming", streaming},
                    {"positive_prompts", positive.size()},
                    {"negative_prompts", negative.size()},
                    {"dropped_layers", dropped},
                    {"layers", layers_json}};
    std::cout << to_text(summary) << "\n";
    return 0;
  }
  std::cout << method_name(method) << " of " << positive.size() << " positive and "
            << negative.size() << " negative prompts at " << site_name(site) << ", positions "
            << positions.to_string() << ", model " << vector.origin().model() << "\n";
  std::cout << "layer        norm  accuracy  activation_norm" << (pca ? "  explained" : "") << "\n";
  for (const auto& [layer, norm] : norms) {
    std::cout << std::setw(5) << layer << std::fixed << std::setprecision(3) << std::setw(12)
              << norm << std::setw(10);
    if (streaming) std::cout << "-";
    else std::cout << extraction.accuracy.at(layer);
    std::cout << std::setw(17) << activation_norms.at(layer);
    if (pca) std::cout << std::setw(11) << extraction.explained_variance_ratio.at(layer);
    std::cout << "\n";
  }
  std::cout << "wrote " << out << " (layers " << layer_ranges(vector.layers()) << ", d_model "
            << vector.d_model() << ")\n";
  return 0;
}

}  // namespace steer::cli
