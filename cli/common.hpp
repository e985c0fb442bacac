// What the steer tool's subcommands share: model options, option parsing with the option's
// name in the error, vectors checked against a model, progress lines, layer lists as text.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"

namespace steer::cli {

/// Runs `parse` on the value of an option; a steer::Error becomes "--<name>: <message>", without
/// the library call's own "call: " prefix when it names `call`.
/// Example: `auto site = parse_option("site", "parse_site", [&] { return parse_site(text); });`
template <class Parse>
auto parse_option(const std::string& name, const std::string& call, Parse&& parse) {
  try {
    return parse();
  } catch (const Error& e) {
    std::string message = e.what();
    const auto prefix = call + ": ";
    if (!call.empty() && message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
    throw Error("--" + name + ": " + message);
  }
}

/// JSON objects keep their keys in the order written.
using Json = nlohmann::ordered_json;

/// JSON as printed by --json: one line, invalid UTF-8 (a token cut mid-character) replaced.
inline std::string to_text(const Json& json) {
  return json.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

/// --device and --dtype, the options every subcommand that loads a model takes.
inline ModelOptions model_options(Args& args) {
  const auto device = args.value("device", "cpu");
  const auto dtype = args.value("dtype", "float32");
  ModelOptions options;
  options.device(parse_option("device", "parse_device", [&] { return parse_device(device); }));
  options.dtype(parse_option("dtype", "parse_dtype", [&] { return parse_dtype(dtype); }));
  return options;
}

/// The help lines of --device and --dtype.
inline const char* model_options_help() {
  return "  --device D          cpu (default), cuda or cuda:N\n"
         "  --dtype T           float32 (default), float16 or bfloat16\n";
}

/// "3-6", "0,2,5-7": a sorted layer list in the form parse_layers reads.
inline std::string layer_ranges(const std::vector<int64_t>& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(layers[i]);
    if (j > i) out += "-" + std::to_string(layers[j]);
    i = j + 1;
  }
  return out;
}

/// Prints "<program>: read 16/64 prompts" on stderr after each batch: on one rewritten line
/// when stderr is a terminal, one line per batch otherwise.
inline ProgressCallback progress_printer(std::string program) {
  const bool terminal = isatty(fileno(stderr)) != 0;
  return [program = std::move(program), terminal](int64_t done, int64_t total) {
    std::cerr << (terminal ? "\r" : "") << program << ": read " << done << "/" << total
              << " prompts" << (terminal && done < total ? "" : "\n") << std::flush;
  };
}

/// Checks that `vector`, read from `file`, fits `model`: its d_model, its n_layers when the
/// file records it, its layers and its site. Returns the site.
inline Site check_vector_fits(const SteeringVector& vector, const std::string& file,
                              const Model& model) {
  const auto name = detail::model_name(model);
  STEER_CHECK(vector.d_model() == model.d_model(), "vector '", file,
              "' has d_model=", vector.d_model(), " but model '", name,
              "' has d_model=", model.d_model(), " (hint: vector from another model?)");
  const auto n_layers = vector.origin().n_layers();
  STEER_CHECK(n_layers == 0 || n_layers == model.n_layers(), "vector '", file, "' was made for a ",
              "model with ", n_layers, " layers but model '", name, "' has ", model.n_layers(),
              " (hint: vector from another model?)");
  for (const auto layer : vector.layers()) {
    STEER_CHECK(layer < model.n_layers(), "vector '", file, "' has a direction for layer ", layer,
                " but model '", name, "' has layers 0 to ", model.n_layers() - 1,
                " (inclusive) (hint: vector from another model?)");
  }
  const auto& site = vector.origin().site();
  try {
    return parse_site(site);
  } catch (const Error&) {
    throw Error(detail::concat("vector '", file, "' was read at site '", site,
                               "'; steer generate applies vectors at resid_pre, resid_mid, "
                               "resid_post, attn_out or mlp_out"));
  }
}

}  // namespace steer::cli
