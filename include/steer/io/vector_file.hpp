// Steering vectors in files: llama.cpp / repeng GGUF control vectors, and safetensors with
// steer's origin metadata. Layer numbering and keys: docs/file-formats.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/arg.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"
#include "steer/io/gguf.hpp"
#include "steer/io/safetensors.hpp"
#include "steer/steering_vector.hpp"

namespace steer::io {

/// How write_control_vector treats vectors llama.cpp would apply somewhere else, or reject.
/// Example: `ControlVectorOptions().allow_other_sites(true)`
struct ControlVectorOptions {
  /// Write a vector read at a hook point other than "resid_post". llama.cpp adds direction.N to
  /// the output of block N whatever the file says, so such a file steers at another place than
  /// the one it was read at. Default false: an error. The site is stored in `steer.site`.
  TORCH_ARG(bool, allow_other_sites) = false;
  /// Write a direction for layer 0. llama.cpp's loader refuses the whole file when it has
  /// direction.0 ("invalid (zero) direction tensor layer index"). Default false: an error.
  TORCH_ARG(bool, allow_layer_zero) = false;
};

/// Writes `vector` as a GGUF control vector in the format llama.cpp loads
/// (`--control-vector`) and repeng exports: `general.architecture = "controlvector"`,
/// `controlvector.model_hint` (the architecture, origin().architecture(), e.g. "llama"),
/// `controlvector.layer_count` (the number of directions, as repeng writes it), one F32 tensor
/// `direction.N` [d_model] per layer N, plus `steer.*` keys with the origin (the model's name
/// in `steer.model`). direction.N is the resid_post (output) of block N, blocks counted from 0.
/// Example: `steer::io::write_control_vector("happy.gguf", vector);`
void write_control_vector(const std::string& path, const SteeringVector& vector,
                          const ControlVectorOptions& options = {});

/// Reads a GGUF control vector (written by steer, repeng, llama.cpp's cvector-generator or the
/// Python gguf package). F32, F16 and BF16 directions come back as float32. Without `steer.*`
/// keys the site is "resid_post" (what llama.cpp applies) and n_layers is 0 (unknown).
SteeringVector read_control_vector(const std::string& path);

/// Writes `vector` as safetensors: tensors `direction.N` (float32 [d_model]) and the origin in
/// metadata keys `steer.*`. Example: `steer::io::write_vector_safetensors("v.safetensors", v);`
void write_vector_safetensors(const std::string& path, const SteeringVector& vector);

/// Reads a vector written by write_vector_safetensors (or any safetensors file whose tensors
/// are all `direction.N` [d_model]; missing `steer.*` keys take their defaults).
SteeringVector read_vector_safetensors(const std::string& path);

/// Reads either format: a name ending in .gguf must be a GGUF control vector, one ending in
/// .safetensors a safetensors vector; a file of another name is told by its first bytes. A
/// directory, an empty file or a mismatch is an error naming the file and what was expected.
SteeringVector read_steering_vector(const std::string& path);

/// Writes by extension: ".gguf" as a control vector (with `options`), ".safetensors" otherwise
/// an error.
void write_steering_vector(const std::string& path, const SteeringVector& vector,
                           const ControlVectorOptions& options = {});

// ----------------------------------------------------------------------------- implementation

namespace detail {

inline constexpr const char* kVectorFormatVersion = "1";

/// N of a tensor called "direction.N" (N: 1 to 9 decimal digits), or -1.
inline int64_t direction_layer(const std::string& name) {
  const std::string prefix = "direction.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const auto digits = name.substr(prefix.size());
  if (digits.empty() || digits.size() > 9) return -1;
  for (const char c : digits) {
    if (c < '0' || c > '9') return -1;
  }
  return std::stoll(digits);
}

inline std::string layer_list(const SteeringVector& v) {
  std::string out;
  for (const auto l : v.layers()) out += steer::detail::concat(out.empty() ? "" : ", ", l);
  return out;
}

/// Parses a decimal integer metadata value, or an error naming the key and the file.
inline int64_t metadata_int(const std::string& value, const std::string& key,
                            const std::string& call, const std::string& path) {
  bool ok = !value.empty() && value.size() <= 18;
  for (size_t i = 0; i < value.size() && ok; ++i) {
    ok = (value[i] >= '0' && value[i] <= '9') || (i == 0 && value[i] == '-' && value.size() > 1);
  }
  STEER_CHECK(ok, call, ": ", path, " has ", key, "='", value,
              "'; expected a decimal integer");
  return std::stoll(value);
}

/// The SteeringVector of a file's `direction.N` tensors (a map or a list of name-tensor
/// pairs); an error names the call and the file.
template <typename NamedTensors>
SteeringVector vector_from_directions(const std::string& call, const std::string& path,
                                      int64_t d_model, const VectorOrigin& origin,
                                      const NamedTensors& tensors) {
  try {
    SteeringVector out(d_model, origin);
    for (const auto& [name, tensor] : tensors) {
      const auto layer = direction_layer(name);
      STEER_CHECK(!out.has(layer), "two tensors name layer ", layer, " ('", name,
                  "' and another with leading zeros)");
      out.set(layer, tensor);
    }
    out.check("SteeringVector::check");
    return out;
  } catch (const Error& e) {
    throw Error(steer::detail::concat(call, ": ", path, ": ", e.what()));
  }
}

}  // namespace detail

inline void write_control_vector(const std::string& path, const SteeringVector& vector,
                                 const ControlVectorOptions& options) {
  using steer::detail::concat;
  const auto& origin = vector.origin();
  vector.check("write_control_vector");
  STEER_CHECK(!vector.empty(), "write_control_vector: the vector has no directions; llama.cpp "
              "refuses a control vector without direction tensors");
  STEER_CHECK(options.allow_other_sites() || origin.site() == "resid_post",
              "write_control_vector: the vector was read at hook point '", origin.site(),
              "' but llama.cpp adds direction.N to the output of block N (resid_post) (hint: "
              "ControlVectorOptions().allow_other_sites(true) writes it anyway, with the site "
              "in steer.site)");
  STEER_CHECK(options.allow_layer_zero() || !vector.has(0),
              "write_control_vector: the vector has a direction for layer 0, and llama.cpp's "
              "loader refuses a file with direction.0 (hint: vector.select_layers(1, ...), or "
              "ControlVectorOptions().allow_layer_zero(true) for readers other than llama.cpp)");
  STEER_CHECK(vector.size() <= 0xffffffffu && origin.n_layers() <= 0xffffffff,
              "write_control_vector: too many layers for uint32 counts");
  Gguf file;
  file.set("general.architecture", GgufValue::string("controlvector"));
  // The hint names the architecture, as repeng (the model's model_type) and llama.cpp do; the
  // model's own name goes to steer.model.
  file.set("controlvector.model_hint", GgufValue::string(origin.architecture()));
  file.set("controlvector.layer_count",
           GgufValue::uint32(static_cast<uint32_t>(vector.size())));
  file.set("steer.format_version", GgufValue::uint32(1));
  file.set("steer.model", GgufValue::string(origin.model()));
  file.set("steer.d_model", GgufValue::uint32(static_cast<uint32_t>(vector.d_model())));
  file.set("steer.n_layers", GgufValue::uint32(static_cast<uint32_t>(origin.n_layers())));
  file.set("steer.site", GgufValue::string(origin.site()));
  file.set("steer.positions", GgufValue::string(origin.positions()));
  file.set("steer.method", GgufValue::string(origin.method()));
  std::vector<GgufValue> norm_layers, norm_values;
  for (const auto& [layer, norm] : origin.activation_norms()) {
    norm_layers.push_back(GgufValue::int64(layer));
    norm_values.push_back(GgufValue::float64(norm));
  }
  file.set("steer.activation_norms.layers",
           GgufValue::array(GgufType::kInt64, std::move(norm_layers)));
  file.set("steer.activation_norms.values",
           GgufValue::array(GgufType::kFloat64, std::move(norm_values)));
  for (const auto& [key, value] : origin.metadata()) {
    file.set("steer.meta." + key, GgufValue::string(value));
  }
  for (const auto& [layer, direction] : vector.directions()) {
    file.tensors.emplace_back(concat("direction.", layer), direction);
  }
  write_gguf(path, file);
}

inline SteeringVector read_control_vector(const std::string& path) {
  using steer::detail::concat;
  const std::string call = "read_control_vector";
  const auto file = read_gguf(path);
  const auto* arch = file.find("general.architecture");
  STEER_CHECK(arch != nullptr && arch->type() == GgufType::kString &&
                  arch->as_string() == "controlvector",
              call, ": ", path, " is not a control vector: expected general.architecture = "
              "'controlvector', the file has ",
              arch == nullptr ? std::string("no general.architecture")
              : arch->type() == GgufType::kString ? "'" + arch->as_string() + "'"
                                                  : "a " + gguf_type_name(arch->type()),
              " (hint: a model GGUF is not a steering vector)");
  STEER_CHECK(!file.tensors.empty(), call, ": ", path, " has no direction tensors");
  auto string_key = [&](const std::string& key, const std::string& fallback) {
    const auto* v = file.find(key);
    return v == nullptr ? fallback : v->as_string(concat(call, ": ", path, ": ", key));
  };
  auto int_key = [&](const std::string& key, int64_t fallback) {
    const auto* v = file.find(key);
    return v == nullptr ? fallback : v->as_int(concat(call, ": ", path, ": ", key));
  };

  VectorOrigin origin;
  // controlvector.model_hint is the architecture (repeng, llama.cpp, steer since it writes
  // steer.model); steer files without steer.model put the model's directory name there.
  const auto hint = string_key("controlvector.model_hint", "");
  const bool older_steer = file.find("steer.format_version") != nullptr &&
                           file.find("steer.model") == nullptr;
  origin.architecture(older_steer ? "" : hint);
  origin.model(string_key("steer.model", hint));
  origin.n_layers(int_key("steer.n_layers", 0));
  origin.site(string_key("steer.site", "resid_post"));
  origin.positions(string_key("steer.positions", ""));
  origin.method(string_key("steer.method", ""));
  const auto* norm_layers = file.find("steer.activation_norms.layers");
  const auto* norm_values = file.find("steer.activation_norms.values");
  STEER_CHECK((norm_layers == nullptr) == (norm_values == nullptr), call, ": ", path,
              " has only one of steer.activation_norms.layers and .values");
  if (norm_layers != nullptr) {
    const auto& ls = norm_layers->as_array(concat(call, ": steer.activation_norms.layers"));
    const auto& vs = norm_values->as_array(concat(call, ": steer.activation_norms.values"));
    STEER_CHECK(ls.size() == vs.size(), call, ": ", path, " lists ", ls.size(),
                " activation-norm layers but ", vs.size(), " values");
    LayerValues norms;
    for (size_t i = 0; i < ls.size(); ++i) {
      norms[ls[i].as_int(call + ": steer.activation_norms.layers")] =
          vs[i].as_double(call + ": steer.activation_norms.values");
    }
    origin.activation_norms(norms);
  }
  StringMap metadata;
  const std::string meta = "steer.meta.";
  for (const auto& [key, value] : file.metadata) {
    if (key.compare(0, meta.size(), meta) == 0) {
      metadata[key.substr(meta.size())] = value.as_string(concat(call, ": ", path, ": ", key));
    }
  }
  origin.metadata(metadata);
  STEER_CHECK(origin.n_layers() >= 0, call, ": ", path, " has steer.n_layers=",
              origin.n_layers());

  const auto d_model = file.tensors.front().second.dim() == 1
                           ? file.tensors.front().second.size(0)
                           : int64_t{0};
  const auto* stored_d_model = file.find("steer.d_model");
  for (const auto& [name, tensor] : file.tensors) {
    STEER_CHECK(detail::direction_layer(name) >= 0, call, ": ", path, " has tensor '", name,
                "'; a control vector has only tensors direction.N (N = layer, from 0)");
    STEER_CHECK(tensor.dim() == 1 && tensor.size(0) == d_model && d_model > 0, call, ": ", path,
                ": tensor '", name, "' has shape ", tensor.sizes(), "; expected [", d_model,
                "] like '", file.tensors.front().first, "' (one d_model for all layers)");
  }
  if (stored_d_model != nullptr) {
    STEER_CHECK(stored_d_model->as_int(call + ": steer.d_model") == d_model, call, ": ", path,
                " says steer.d_model=", stored_d_model->as_int(), " but its directions have ",
                d_model, " values");
  }
  return detail::vector_from_directions(call, path, d_model, origin, file.tensors);
}

inline void write_vector_safetensors(const std::string& path, const SteeringVector& vector) {
  using steer::detail::concat;
  vector.check("write_vector_safetensors");
  const auto& origin = vector.origin();
  Safetensors file;
  file.metadata["steer.format"] = "steering-vector";
  file.metadata["steer.format_version"] = detail::kVectorFormatVersion;
  file.metadata["steer.model"] = origin.model();
  file.metadata["steer.architecture"] = origin.architecture();
  file.metadata["steer.d_model"] = std::to_string(vector.d_model());
  file.metadata["steer.n_layers"] = std::to_string(origin.n_layers());
  file.metadata["steer.site"] = origin.site();
  file.metadata["steer.positions"] = origin.positions();
  file.metadata["steer.method"] = origin.method();
  nlohmann::json norms = nlohmann::json::object();
  for (const auto& [layer, norm] : origin.activation_norms()) norms[std::to_string(layer)] = norm;
  file.metadata["steer.activation_norms"] = norms.dump();
  for (const auto& [key, value] : origin.metadata()) file.metadata["steer.meta." + key] = value;
  for (const auto& [layer, direction] : vector.directions()) {
    file.tensors[concat("direction.", layer)] = direction;
  }
  write_safetensors(path, file);
}

inline SteeringVector read_vector_safetensors(const std::string& path) {
  using steer::detail::concat;
  const std::string call = "read_vector_safetensors";
  const auto file = read_safetensors(path);
  const auto& meta = file.metadata;
  auto get = [&](const std::string& key, const std::string& fallback) {
    auto found = meta.find(key);
    return found == meta.end() ? fallback : found->second;
  };
  if (meta.count("steer.format")) {
    STEER_CHECK(get("steer.format", "") == "steering-vector", call, ": ", path,
                " has steer.format='", get("steer.format", ""), "'; expected 'steering-vector'");
    STEER_CHECK(get("steer.format_version", "") == detail::kVectorFormatVersion, call, ": ", path,
                " has steer.format_version='", get("steer.format_version", ""),
                "'; this steer reads version ", detail::kVectorFormatVersion,
                " (hint: written by a newer steer?)");
  }
  STEER_CHECK(!file.tensors.empty(), call, ": ", path, " has no direction tensors");
  VectorOrigin origin;
  origin.model(get("steer.model", ""));
  origin.architecture(get("steer.architecture", ""));
  origin.n_layers(meta.count("steer.n_layers")
                      ? detail::metadata_int(meta.at("steer.n_layers"), "steer.n_layers", call, path)
                      : 0);
  origin.site(get("steer.site", "resid_post"));
  origin.positions(get("steer.positions", ""));
  origin.method(get("steer.method", ""));
  if (meta.count("steer.activation_norms")) {
    nlohmann::json norms;
    try {
      norms = nlohmann::json::parse(meta.at("steer.activation_norms"));
    } catch (const nlohmann::json::exception& e) {
      throw Error(concat(call, ": ", path, ": steer.activation_norms is not JSON: ", e.what()));
    }
    STEER_CHECK(norms.is_object(), call, ": ", path,
                ": steer.activation_norms must be a JSON object {\"layer\": norm}");
    LayerValues values;
    for (const auto& [layer, norm] : norms.items()) {
      STEER_CHECK(norm.is_number(), call, ": ", path, ": steer.activation_norms of layer '",
                  layer, "' is not a number");
      values[detail::metadata_int(layer, "a layer of steer.activation_norms", call, path)] =
          norm.get<double>();
    }
    origin.activation_norms(values);
  }
  StringMap metadata;
  const std::string prefix = "steer.meta.";
  for (const auto& [key, value] : meta) {
    if (key.compare(0, prefix.size(), prefix) == 0) metadata[key.substr(prefix.size())] = value;
  }
  origin.metadata(metadata);

  const auto& [first_name, first] = *file.tensors.begin();
  const int64_t d_model = first.dim() == 1 ? first.size(0) : 0;
  for (const auto& [name, tensor] : file.tensors) {
    STEER_CHECK(detail::direction_layer(name) >= 0, call, ": ", path, " has tensor '", name,
                "'; a steering-vector file has only tensors direction.N (N = layer, from 0)");
    STEER_CHECK(tensor.dim() == 1 && tensor.size(0) == d_model && d_model > 0, call, ": ", path,
                ": tensor '", name, "' has shape ", tensor.sizes(), "; expected [", d_model,
                "] like '", first_name, "' (one d_model for all layers)");
  }
  if (meta.count("steer.d_model")) {
    const auto stored = detail::metadata_int(meta.at("steer.d_model"), "steer.d_model", call, path);
    STEER_CHECK(stored == d_model, call, ": ", path, " says steer.d_model=", stored,
                " but its directions have ", d_model, " values");
  }
  return detail::vector_from_directions(call, path, d_model, origin, file.tensors);
}

inline SteeringVector read_steering_vector(const std::string& path) {
  using steer::detail::concat;
  const std::string call = "read_steering_vector";
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool gguf_name = ends_with(".gguf"), safetensors_name = ends_with(".safetensors");
  const std::string expected = gguf_name          ? "expected a GGUF control vector"
                               : safetensors_name ? "expected a safetensors steering vector"
                                                  : "expected a steering vector (.gguf or "
                                                    ".safetensors)";
  std::error_code ignored;
  STEER_CHECK(!std::filesystem::is_directory(path, ignored), call, ": '", path,
              "' is a directory; ", expected);
  std::ifstream in(path, std::ios::binary);
  STEER_CHECK(in.good(), call, ": cannot open '", path, "'");
  char head[9] = {};
  in.read(head, sizeof head);
  const auto n = static_cast<size_t>(in.gcount());
  STEER_CHECK(n > 0, call, ": '", path, "' is empty (0 bytes); ", expected);
  const bool gguf_magic = n >= 4 && std::string(head, 4) == "GGUF";
  // safetensors: an 8-byte little-endian header length, then the JSON header.
  const bool safetensors_start = n == sizeof head && head[8] == '{';
  auto first_bytes = [&] {
    std::string hex;
    for (size_t i = 0; i < std::min<size_t>(n, 4); ++i) {
      const auto byte = static_cast<unsigned char>(head[i]);
      hex += concat(i ? " " : "", "0123456789abcdef"[byte >> 4], "0123456789abcdef"[byte & 15]);
    }
    return hex;
  };
  // The extension decides; a file of another name is told by its first bytes.
  if (gguf_name) {
    STEER_CHECK(gguf_magic, call, ": '", path, "' is not a GGUF file: it starts with bytes ",
                first_bytes(), ", not the magic 'GGUF'; ", expected);
    return read_control_vector(path);
  }
  if (safetensors_name) {
    STEER_CHECK(!gguf_magic, call, ": '", path, "' holds a GGUF file; ", expected,
                " (hint: rename it to .gguf)");
    return read_vector_safetensors(path);
  }
  if (gguf_magic) return read_control_vector(path);
  if (safetensors_start) return read_vector_safetensors(path);
  throw Error(concat(call, ": '", path, "' is neither GGUF (it would start with 'GGUF') nor "
                     "safetensors (a header length, then '{'); ", expected));
}

inline void write_steering_vector(const std::string& path, const SteeringVector& vector,
                                  const ControlVectorOptions& options) {
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".gguf")) return write_control_vector(path, vector, options);
  if (ends_with(".safetensors")) return write_vector_safetensors(path, vector);
  throw Error(steer::detail::concat("write_steering_vector: cannot tell the format of '", path,
                                    "' (expected a name ending in .gguf or .safetensors)"));
}

}  // namespace steer::io
