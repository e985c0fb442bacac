// What the steer tool's subcommands share: model options, option parsing with the option's
// name in the error, --layers, text read from a file or stdin, vectors checked against a
// model, progress lines, layer lists as text.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"

namespace steer::cli {

/// Runs `parse` on the value of an option; a steer::Error becomes "--<name>: <message>", without
/// the library call's own "call: " prefix when it names `call`. The error thrown is a
/// UsageError (exit 2) by default; `parse_option<Error>` for values checked against a file or
/// model (exit 1).
/// Example: `auto site = parse_option("site", "parse_site", [&] { return parse_site(text); });`
template <class Thrown = UsageError, class Parse>
auto parse_option(const std::string& name, const std::string& call, Parse&& parse) {
  try {
    return parse();
  } catch (const Error& e) {
    std::string message = e.what();
    const auto prefix = call + ": ";
    if (!call.empty() && message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
    throw Thrown("--" + name + ": " + message);
  }
}

/// JSON objects keep their keys in the order written.
using Json = nlohmann::ordered_json;

/// JSON as printed by --json: one line, invalid UTF-8 (a token cut mid-character) replaced.
inline std::string to_text(const Json& json) {
  return json.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The text of --device and --dtype, the options every subcommand that loads a model takes;
/// read before Args::finish, parsed by model_options after it.
struct ModelArguments {
  std::string device, dtype;
};
inline ModelArguments model_arguments(Args& args) {
  return {args.value("device", "cpu"), args.value("dtype", "float32")};
}
inline ModelOptions model_options(const ModelArguments& given) {
  ModelOptions options;
  options.device(parse_option("device", "parse_device", [&] { return parse_device(given.device); }));
  options.dtype(parse_option("dtype", "parse_dtype", [&] { return parse_dtype(given.dtype); }));
  return options;
}

/// The help lines of --device and --dtype.
inline const char* model_options_help() {
  return "  --device D          cpu (default), cuda or cuda:N\n"
         "  --dtype T           float32 (default), float16 or bfloat16\n";
}

/// --layers SPEC before the model loads: only its characters (a usage error); the layer numbers
/// are checked against the model by layers_of.
inline void check_layers_syntax(const std::string& spec) {
  usage_check(spec == "all" ||
                  (!spec.empty() && spec.find_first_not_of("0123456789,-") == std::string::npos),
              "--layers: '", spec, "' is not a layer list; expected all, A-B (inclusive), A, or a "
              "comma-separated list such as 0-3,7");
}
/// The layers of --layers SPEC in `model` (an error, exit 1, for a layer the model lacks).
inline std::vector<int64_t> layers_of(const std::string& spec, const Model& model) {
  return parse_option<Error>("layers", "parse_layers",
                             [&] { return parse_layers(spec, model.n_layers()); });
}

/// The text of a file, or of stdin when `path` is "-", with one trailing newline removed (as
/// llama.cpp's -f does: a file written by `echo` gives the text without its newline). `option`
/// names the option in errors: "--prompt-file: cannot open 'p.txt'".
inline std::string read_text_argument(const std::string& option, const std::string& path) {
  const auto shown = path == "-" ? std::string("stdin") : "'" + path + "'";
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    STEER_CHECK(!std::cin.bad(), "--", option, ": could not read stdin");
  } else {
    std::error_code ignored;
    STEER_CHECK(!std::filesystem::is_directory(path, ignored), "--", option, ": '", path,
                "' is a directory; expected a text file");
    std::ifstream in(path, std::ios::binary);
    STEER_CHECK(in.good(), "--", option, ": cannot open '", path, "'");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    STEER_CHECK(!in.bad(), "--", option, ": could not read '", path, "'");
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  STEER_CHECK(!text.empty(), "--", option, ": ", shown, " is empty; expected the text");
  return text;
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

/// Checks that `vector`, read from `file`, fits `model`: its architecture (a control vector's
/// model_hint) when the file names one, its d_model, its n_layers when the file records it, its
/// layers and its site. Returns the site.
inline Site check_vector_fits(const SteeringVector& vector, const std::string& file,
                              const Model& model) {
  const auto name = detail::model_name(model);
  const auto& architecture = vector.origin().architecture();
  STEER_CHECK(architecture.empty() || architecture == model.config().hf_model_type, "vector '",
              file, "' was written for a '", architecture, "' model but model '", name,
              "' is a '", model.config().hf_model_type, "' (hint: vector from another model?)");
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
