// `steer inspect`: what a steering-vector file (.gguf or .safetensors) holds, and
// `steer convert`: the same vector written in the other format.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "common.hpp"

namespace steer::cli {

inline std::string inspect_usage() {
  return "usage: steer inspect FILE [--json]\n"
         "\n"
         "Prints what a steering-vector file holds: its format, the model it was made for (the\n"
         "GGUF model hint), d_model, the site, positions and method it was read with, its\n"
         "metadata, and each layer's direction norm (and the activation norm recorded there).\n"
         "\n"
         "  FILE        a .gguf control vector (steer, repeng, llama.cpp) or a .safetensors\n"
         "              vector (steer)\n"
         "  --json      print one JSON object instead of the table\n"
         "  -h, --help  this text\n"
         "\n"
         "example: steer inspect love.gguf";
}

inline std::string convert_usage() {
  return "usage: steer convert IN OUT [--allow-other-sites] [--allow-layer-zero]\n"
         "\n"
         "Writes the steering vector of IN to OUT in the format OUT's name says (.gguf or\n"
         ".safetensors): the same directions (float32) and the same origin (model, site,\n"
         "positions, method, activation norms, metadata).\n"
         "\n"
         "  --allow-other-sites  write a .gguf of a vector read at another site than resid_post\n"
         "                       (llama.cpp would apply it at resid_post all the same)\n"
         "  --allow-layer-zero   write a .gguf with a direction for layer 0 (llama.cpp's loader\n"
         "                       refuses such a file)\n"
         "  -h, --help           this text\n"
         "\n"
         "example: steer convert refusal.safetensors refusal.gguf --allow-other-sites";
}

/// The format of a vector file, as read_steering_vector tells it (by name, else by magic).
inline std::string vector_file_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return std::string(magic, 4) == "GGUF" ? "gguf" : "safetensors";
}

inline Json describe_vector(const std::string& path, const SteeringVector& v) {
  const auto& o = v.origin();
  Json layers = Json::array();
  for (const auto& [layer, norm] : v.norms()) {
    Json entry = {{"layer", layer}, {"norm", norm}};
    const auto found = o.activation_norms().find(layer);
    if (found != o.activation_norms().end()) entry["activation_norm"] = found->second;
    layers.push_back(entry);
  }
  Json j = {{"file", path},
            {"format", vector_file_format(path)},
            {"bytes", std::filesystem::file_size(path)},
            {"model", o.model()},
            {"n_layers", o.n_layers()},
            {"d_model", v.d_model()},
            {"site", o.site()},
            {"positions", o.positions()},
            {"method", o.method()},
            {"metadata", o.metadata()},
            {"layers", layers}};
  if (j["format"] == "gguf") {
    const auto file = io::read_gguf(path);
    const auto* architecture = file.find("general.architecture");
    if (architecture != nullptr && architecture->type() == io::GgufType::kString) {
      j["gguf_architecture"] = architecture->as_string("general.architecture");
    }
  }
  return j;
}

inline int run_inspect(int argc, char** argv) {
  Args args(argc, argv, inspect_usage(), 2);
  args.hint_on_error("see 'steer inspect --help'");
  const bool json = args.flag("json");
  const auto files = args.positional();
  args.finish();
  usage_check(files.size() == 1, files.empty() ? "give the vector file to inspect"
                                               : "give one vector file, got " +
                                                     std::to_string(files.size()));
  const auto& path = files.front();
  const auto vector = io::read_steering_vector(path);
  const auto j = describe_vector(path, vector);
  if (json) {
    std::cout << to_text(j) << "\n";
    return 0;
  }
  const auto text = [](const Json& value) {
    const auto s = value.get<std::string>();
    return s.empty() ? std::string("(not recorded)") : s;
  };
  std::cout << "file       " << path << " (" << j["format"].get<std::string>() << ", "
            << j["bytes"].get<uint64_t>() << " bytes)\n"
            << "model      " << text(j["model"])
            << (vector.origin().n_layers() > 0
                    ? detail::concat(" (", vector.origin().n_layers(), " layers)")
                    : std::string(" (number of layers not recorded)"))
            << "\n"
            << "d_model    " << vector.d_model() << "\n"
            << "site       " << j["site"].get<std::string>() << "\n"
            << "positions  " << text(j["positions"]) << "\n"
            << "method     " << text(j["method"]) << "\n";
  for (const auto& [key, value] : vector.origin().metadata()) {
    std::cout << "metadata   " << key << " = " << value << "\n";
  }
  std::cout << "layers     " << vector.size() << ": " << layer_ranges(vector.layers()) << "\n\n"
            << "layer        norm  activation norm\n";
  for (const auto& entry : j["layers"]) {
    std::ostringstream line;
    line << std::setw(5) << entry["layer"].get<int64_t>() << std::setw(12) << std::setprecision(6)
         << entry["norm"].get<double>();
    if (entry.contains("activation_norm")) {
      line << std::setw(17) << entry["activation_norm"].get<double>();
    }
    std::cout << line.str() << "\n";
  }
  return 0;
}

inline int run_convert(int argc, char** argv) {
  Args args(argc, argv, convert_usage(), 2);
  args.hint_on_error("see 'steer convert --help'");
  const bool allow_other_sites = args.flag("allow-other-sites");
  const bool allow_layer_zero = args.flag("allow-layer-zero");
  const auto files = args.positional();
  args.finish();
  usage_check(files.size() == 2, "give the input and the output file (steer convert IN OUT), got ",
              files.size(), files.size() == 1 ? " file" : " files");
  const auto& in = files[0];
  const auto& out = files[1];
  const bool gguf = ends_with(out, ".gguf");
  usage_check(gguf || ends_with(out, ".safetensors"), "cannot tell the format of '", out,
              "' (expected a name ending in .gguf or .safetensors)");
  std::error_code ignored;
  usage_check(!std::filesystem::equivalent(in, out, ignored), "IN and OUT are the same file '",
              out, "'");
  usage_check(gguf || (!allow_other_sites && !allow_layer_zero),
              "--allow-other-sites and --allow-layer-zero are about .gguf files; '", out,
              "' is safetensors, which takes any site and layer");
  const auto vector = io::read_steering_vector(in);
  io::write_steering_vector(out, vector,
                            io::ControlVectorOptions()
                                .allow_other_sites(allow_other_sites)
                                .allow_layer_zero(allow_layer_zero));
  std::cout << "wrote " << out << " (" << (gguf ? "gguf" : "safetensors") << ", "
            << layer_ranges(vector.layers()) << ", d_model " << vector.d_model() << ", site "
            << vector.origin().site() << ")\n";
  return 0;
}

}  // namespace steer::cli
