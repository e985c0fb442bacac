// `steer record`: the activations of prompts at a site of some layers, written as safetensors
// (steer::read_activations, steer::io::write_safetensors).
#pragma once

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"

namespace steer::cli {

inline std::string record_usage() {
  return std::string(
             "usage: steer record --model DIR --prompts FILE --out F.safetensors [options]\n"
             "\n"
             "Reads the prompts through the model and writes the activations at --site of each\n"
             "layer: tensors activations.L (float32 [rows, d_model], one per layer L) and\n"
             "prompt_of_row (int64 [rows], the prompt each row came from, from 0), with the\n"
             "model, site, positions, pooling and prompt count in the metadata (steer.*).\n"
             "\n"
             "  --model DIR         model directory (tools/export_model.py)\n"
             "  --prompts FILE      .json: a JSON list of prompts; .jsonl: one JSON string or\n"
             "                      object per line; .txt: one prompt per line, with\n"
             "                      llama.cpp's escapes (\\n) (docs/file-formats.md)\n"
             "  --layers SPEC       all (default), A-B (inclusive), A, or a list such as 0-3,7\n"
             "  --site SITE         resid_post (default), resid_pre, resid_mid, attn_out, mlp_out\n"
             "  --positions SPEC    tokens read: last (default), all, -N:, K:, A:B, I,J\n"
             "  --pooling P         mean (default: one row per prompt) or tokens (one per token)\n"
             "  --chat              wrap each prompt in the model's chat template\n"
             "  --batch-size N      prompts per forward pass (default 8)\n"
             "  --out FILE          the file to write; its name must end in .safetensors\n"
             "  --quiet             no progress on stderr\n"
             "  -h, --help          this text\n") +
         model_options_help() +
         "\nexample: steer record --model models/smollm2-135m-instruct --prompts prompts.txt \\\n"
         "           --layers 3-6 --positions all --pooling tokens --out acts.safetensors";
}

inline int run_record(int argc, char** argv) {
  const std::string program = "steer record";
  Args args(argc, argv, record_usage(), 2);
  args.hint_on_error("see 'steer record --help'");
  const auto model_dir = args.required("model");
  const auto prompts_file = args.required("prompts");
  const auto layers_spec = args.value("layers", "all");
  const auto site_name_given = args.value("site", "resid_post");
  const auto positions_spec = args.value("positions", "last");
  const auto pooling_name = args.value("pooling", "mean");
  const bool chat = args.flag("chat");
  const auto batch_size = args.integer("batch-size", 8);
  const auto out = args.required("out");
  const bool quiet = args.flag("quiet");
  const auto model_given = model_arguments(args);
  args.finish();

  // Everything that needs no file and no model is checked first: a usage error (exit 2).
  const auto site = parse_option("site", "parse_site", [&] { return parse_site(site_name_given); });
  const auto positions = parse_option("positions", "Positions::parse",
                                      [&] { return Positions::parse(positions_spec); });
  usage_check(pooling_name == "mean" || pooling_name == "tokens", "--pooling: unknown pooling '",
              pooling_name, "'; expected mean or tokens");
  usage_check(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  check_layers_syntax(layers_spec);
  usage_check(out != "-", "--out -: steer record does not write to stdout; expected a file name "
              "ending in .safetensors");
  usage_check(ends_with(out, ".safetensors"), "--out: cannot write '", out,
              "': steer record writes safetensors only; expected a name ending in .safetensors "
              "(NumPy reads it with safetensors.numpy.load_file)");
  const auto load_options = model_options(model_given);
  const auto prompts = io::read_prompts(prompts_file);

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
  const auto activations = read_activations(model, prompts, read);

  io::Safetensors file;
  for (const auto& [layer, rows] : activations.layers) {
    file.tensors["activations." + std::to_string(layer)] = rows;
  }
  file.tensors["prompt_of_row"] = torch::tensor(activations.prompt_of_row, torch::kInt64);
  file.metadata = {{"steer.format", "activations"},
                   {"steer.model", detail::model_name(model)},
                   {"steer.d_model", std::to_string(model.d_model())},
                   {"steer.n_layers", std::to_string(model.n_layers())},
                   {"steer.layers", layer_ranges(layers)},
                   {"steer.site", site_name(site)},
                   {"steer.positions", positions.to_string()},
                   {"steer.pooling", pooling_name},
                   {"steer.chat", chat ? "true" : "false"},
                   {"steer.prompts", std::to_string(prompts.size())},
                   {"steer.rows", std::to_string(activations.rows())}};
  io::write_safetensors(out, file);
  std::cout << "recorded " << prompts.size() << " prompts (" << activations.rows() << " rows of "
            << model.d_model() << ") at " << site_name(site) << " of layers "
            << layer_ranges(layers) << ", positions " << positions.to_string() << "; wrote " << out
            << "\n";
  return 0;
}

}  // namespace steer::cli
