// ModelConfig: the contents of a model directory's steer.json (see docs/model-directory.md).
// Torch-free: parsing and validating the file needs nlohmann-json alone.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "steer/architecture.hpp"
#include "steer/chat_template.hpp"
#include "steer/error.hpp"

namespace steer {

/// Module paths of one transformer block, e.g. {"model.layers.3", "model.layers.3.self_attn",
/// "model.layers.3.mlp"}.
struct LayerLayout {
  std::string block;
  std::string attn;
  std::string mlp;
};

/// A special token: its text and id; `id == -1` when the model has none.
struct SpecialToken {
  std::string text;
  int64_t id = -1;
};

/// What steer.json says about a model. Layers are numbered from 0 to n_layers - 1.
struct ModelConfig {
  static constexpr int kFormatVersion = 1;

  int format_version = 0;
  std::string family;         ///< a row of architectures(): "llama", "qwen2", "gemma2", "gpt2", ...
  std::string hf_model_type;  ///< Hugging Face model_type, e.g. "llama", "qwen2"
  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  ///< 0 when the model sets no limit
  bool tied_embeddings = false;
  std::string module_file;     ///< relative to the model directory, "model.pt"
  /// Whether the module has `forward_cached` (a KV cache): steer.json `methods` names it.
  /// false for traced exports and for modules loaded without steer.json.
  bool kv_cache = true;
  std::string tokenizer_file;  ///< relative to the model directory, "tokenizer.json"
  std::string chat_format;     ///< a ChatFormat's name (chat_template.hpp) or "none"
  std::string chat_template;   ///< the Hugging Face Jinja template, for reference
  /// The system message the template inserts when a conversation has none ("" if none).
  std::string chat_default_system_prompt;
  SpecialToken bos, eos, pad, unk;
  std::vector<int64_t> eos_ids;  ///< every id that ends generation
  std::string embedding_path, final_norm_path, unembedding_path;
  std::vector<LayerLayout> layers;

  /// The id that left padding uses: the pad token's, or 0 when the model has none (padding is
  /// masked out, so any id serves).
  int64_t padding_id() const { return pad.id >= 0 ? pad.id : 0; }
  /// The family's row of the architecture table (architecture.hpp).
  const Architecture& architecture() const { return steer::architecture(family, "ModelConfig"); }

  /// Parses and validates steer.json. Throws steer::Error naming the file and the field.
  static ModelConfig from_file(const std::string& path);
  static ModelConfig from_json(const nlohmann::json& json, const std::string& path);
};

namespace detail {

/// Reads field `key` of `json` as T, or throws naming the file, the field and the type found.
template <typename T>
T require_field(const nlohmann::json& json, const char* key, const std::string& path) {
  STEER_CHECK(json.is_object() && json.contains(key), "ModelConfig: ", path,
              " has no field '", key, "' (hint: re-export the model with tools/export_model.py)");
  try {
    return json.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(concat("ModelConfig: field '", key, "' of ", path, " has the wrong type: ",
                       json.at(key).type_name(), " (value ", json.at(key).dump(), ")"));
  }
}

inline SpecialToken special_token(const nlohmann::json& tokens, const char* key,
                                  const std::string& path) {
  if (!tokens.contains(key) || tokens.at(key).is_null()) return {};
  const auto& entry = tokens.at(key);
  return {require_field<std::string>(entry, "text", path),
          require_field<int64_t>(entry, "id", path)};
}

}  // namespace detail

inline ModelConfig ModelConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  STEER_CHECK(in.good(), "ModelConfig: cannot open ", path,
              " (expected the steer.json of a model directory written by tools/export_model.py)");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(detail::concat("ModelConfig: ", path, " is not valid JSON: ", e.what()));
  }
  return from_json(json, path);
}

inline ModelConfig ModelConfig::from_json(const nlohmann::json& json, const std::string& path) {
  using detail::require_field;
  ModelConfig c;
  c.format_version = require_field<int>(json, "format_version", path);
  STEER_CHECK(c.format_version == kFormatVersion, "ModelConfig: ", path, " has format_version ",
              c.format_version, " but this steer reads version ", kFormatVersion,
              " (hint: re-export the model with this steer's tools/export_model.py)");
  c.family = require_field<std::string>(json, "family", path);
  bool known = false;
  for (const auto& a : architectures()) known = known || a.family == c.family;
  STEER_CHECK(known, "ModelConfig: ", path, " has family '", c.family, "'; steer knows ",
              family_names(), " (hint: a model exported by a newer steer?)");
  c.hf_model_type = require_field<std::string>(json, "hf_model_type", path);
  c.n_layers = require_field<int64_t>(json, "n_layers", path);
  c.d_model = require_field<int64_t>(json, "d_model", path);
  c.n_heads = require_field<int64_t>(json, "n_heads", path);
  c.n_kv_heads = require_field<int64_t>(json, "n_kv_heads", path);
  c.head_dim = require_field<int64_t>(json, "head_dim", path);
  c.vocab_size = require_field<int64_t>(json, "vocab_size", path);
  for (auto [name, value] : {std::pair{"n_layers", c.n_layers}, {"d_model", c.d_model},
                             {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads},
                             {"head_dim", c.head_dim}, {"vocab_size", c.vocab_size}}) {
    STEER_CHECK(value > 0, "ModelConfig: ", path, " has ", name, "=", value,
                "; expected a positive number");
  }
  if (json.contains("max_positions") && !json.at("max_positions").is_null()) {
    c.max_positions = require_field<int64_t>(json, "max_positions", path);
  }
  c.tied_embeddings = require_field<bool>(json, "tied_embeddings", path);
  c.module_file = require_field<std::string>(json, "module", path);
  c.tokenizer_file = require_field<std::string>(json, "tokenizer", path);
  // Exports before traced ones existed all had forward_cached; `methods` was informative.
  if (json.contains("methods")) {
    const auto methods = require_field<nlohmann::json>(json, "methods", path);
    STEER_CHECK(methods.is_object() && methods.contains("forward"), "ModelConfig: ", path,
                " has field 'methods' without 'forward' (value ", methods.dump(), ")");
    c.kv_cache = methods.contains("forward_cached");
  }
  c.chat_format = require_field<std::string>(json, "chat_format", path);
  if (c.chat_format != "none") {
    try {
      parse_chat_format(c.chat_format);
    } catch (const Error&) {
      std::string known;
      for (ChatFormat f : all_chat_formats()) known += "'" + to_string(f) + "', ";
      throw Error(detail::concat("ModelConfig: ", path, " has chat_format '", c.chat_format,
                                 "'; steer knows ", known, "and 'none'"));
    }
  }
  if (json.contains("chat_template") && json.at("chat_template").is_string()) {
    c.chat_template = json.at("chat_template").get<std::string>();
  }
  if (json.contains("chat_default_system_prompt") &&
      json.at("chat_default_system_prompt").is_string()) {
    c.chat_default_system_prompt = json.at("chat_default_system_prompt").get<std::string>();
  }
  const auto tokens = require_field<nlohmann::json>(json, "special_tokens", path);
  c.bos = detail::special_token(tokens, "bos", path);
  c.eos = detail::special_token(tokens, "eos", path);
  c.pad = detail::special_token(tokens, "pad", path);
  c.unk = detail::special_token(tokens, "unk", path);
  c.eos_ids = require_field<std::vector<int64_t>>(tokens, "eos_ids", path);
  const auto paths = require_field<nlohmann::json>(json, "paths", path);
  c.embedding_path = require_field<std::string>(paths, "embedding", path);
  c.final_norm_path = require_field<std::string>(paths, "final_norm", path);
  c.unembedding_path = require_field<std::string>(paths, "unembedding", path);
  const auto layers = require_field<nlohmann::json>(json, "layers", path);
  STEER_CHECK(layers.is_array() && static_cast<int64_t>(layers.size()) == c.n_layers,
              "ModelConfig: ", path, " says n_layers=", c.n_layers, " but lists ",
              layers.is_array() ? layers.size() : 0, " layers");
  for (const auto& layer : layers) {
    c.layers.push_back({require_field<std::string>(layer, "block", path),
                        require_field<std::string>(layer, "attn", path),
                        require_field<std::string>(layer, "mlp", path)});
  }
  return c;
}

}  // namespace steer
