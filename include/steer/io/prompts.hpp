// Prompt files: lists of prompts and of (positive, negative) pairs, as JSON or plain text,
// read with errors that name the file, the entry and the forms accepted.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "steer/error.hpp"

namespace steer::io {

namespace detail {

inline std::string read_text(const char* call, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STEER_CHECK(in.good(), call, ": cannot open '", path, "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline bool looks_like_json(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && (text[first] == '[' || text[first] == '{');
}

inline nlohmann::json parse_json(const char* call, const std::string& path, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(steer::detail::concat(call, ": '", path, "' is not valid JSON: ", e.what()));
  }
}

/// The prompt text of one JSON entry: a string, or an object with "instruction", "prompt" or
/// "text" (the refusal datasets use "instruction").
inline std::string prompt_of(const char* call, const std::string& path, const nlohmann::json& e,
                             size_t index) {
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object()) {
    for (const char* key : {"instruction", "prompt", "text"}) {
      if (e.contains(key) && e.at(key).is_string()) return e.at(key).get<std::string>();
    }
  }
  throw Error(steer::detail::concat(call, ": entry ", index, " of '", path, "' is ",
                                    e.dump().substr(0, 80), "; expected a string or an object "
                                    "with a string \"instruction\", \"prompt\" or \"text\""));
}

}  // namespace detail

/// Reads a list of prompts: a JSON list (of strings, or of objects with "instruction", "prompt"
/// or "text"), or else a text file with one prompt per non-empty line. Throws for a missing
/// file, malformed JSON, an entry of another shape or an empty list.
/// Example: `auto harmful = steer::io::read_prompts("../shared/data/refusal/harmful_val.json");`
inline std::vector<std::string> read_prompts(const std::string& path) {
  const char* call = "read_prompts";
  const auto text = detail::read_text(call, path);
  std::vector<std::string> prompts;
  if (detail::looks_like_json(text)) {
    const auto json = detail::parse_json(call, path, text);
    STEER_CHECK(json.is_array(), call, ": '", path, "' holds a JSON ", json.type_name(),
                "; expected a list of prompts");
    for (size_t i = 0; i < json.size(); ++i) {
      prompts.push_back(detail::prompt_of(call, path, json[i], i));
    }
  } else {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);
    }
  }
  STEER_CHECK(!prompts.empty(), call, ": '", path, "' holds no prompts");
  return prompts;
}

/// Reads (positive, negative) pairs: a JSON list of two-string lists `[["Love", "Hate"], ...]`
/// or of objects `{"positive": ..., "negative": ...}`.
/// Example: `auto pairs = steer::io::read_pairs("examples/data/love_hate.json");`
inline std::vector<std::pair<std::string, std::string>> read_pairs(const std::string& path) {
  const char* call = "read_pairs";
  const auto text = detail::read_text(call, path);
  const auto json = detail::parse_json(call, path, text);
  STEER_CHECK(json.is_array() && !json.empty(), call, ": '", path,
              "' must hold a non-empty JSON list of pairs");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < json.size(); ++i) {
    const auto& e = json[i];
    if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      pairs.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else if (e.is_object() && e.contains("positive") && e.contains("negative") &&
               e.at("positive").is_string() && e.at("negative").is_string()) {
      pairs.emplace_back(e.at("positive").get<std::string>(), e.at("negative").get<std::string>());
    } else {
      throw Error(steer::detail::concat(call, ": entry ", i, " of '", path, "' is ",
                                        e.dump().substr(0, 80), "; expected [\"positive\", "
                                        "\"negative\"] or {\"positive\": ..., \"negative\": ...}"));
    }
  }
  return pairs;
}

}  // namespace steer::io
