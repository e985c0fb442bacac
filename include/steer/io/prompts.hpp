// Prompt files: lists of prompts and of (positive, negative) pairs, as JSON, JSON Lines or text
// with one prompt per line (llama.cpp's cvector-generator files), told apart by extension.
// Errors name the file, the entry and the forms accepted. Formats: docs/file-formats.md.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "steer/error.hpp"

namespace steer::io {

/// How read_prompts and read_pairs parse a file.
enum class PromptFormat {
  by_extension,  ///< .json: json, .jsonl: jsonl, .txt: text (see read_prompts for other names)
  json,          ///< one JSON list
  jsonl,         ///< JSON Lines: one JSON value per non-blank line
  text,          ///< one prompt per line, llama.cpp's escapes (\n, \t, \\, ...) unescaped
};

namespace detail {

inline std::string read_text(const char* call, const std::string& path) {
  std::error_code ignored;
  STEER_CHECK(!std::filesystem::is_directory(path, ignored), call, ": '", path,
              "' is a directory; expected a prompt file (.json, .jsonl or .txt)");
  std::ifstream in(path, std::ios::binary);
  STEER_CHECK(in.good(), call, ": cannot open '", path, "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  STEER_CHECK(!in.bad(), call, ": could not read '", path, "'");
  return buffer.str();
}

inline bool has_extension(const std::string& path, const std::string& extension) {
  return path.size() >= extension.size() &&
         path.compare(path.size() - extension.size(), extension.size(), extension) == 0;
}

inline nlohmann::json parse_json(const char* call, const std::string& where,
                                 const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(steer::detail::concat(call, ": ", where, " is not valid JSON: ", e.what()));
  }
}

/// `line` with llama.cpp's escapes replaced, as its cvector-generator reads positive.txt and
/// negative.txt (common's string_process_escapes): \n \r \t \' \" \\ and \xHH (two hex
/// digits); any other backslash, and a backslash at the end, stay as they are.
inline std::string unescape_line(const std::string& line) {
  const auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\' || i + 1 == line.size()) {
      out += line[i];
      continue;
    }
    const char c = line[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default:
        if (c == 'x' && i + 2 < line.size() && hex(line[i + 1]) && hex(line[i + 2])) {
          out += static_cast<char>(std::strtol(line.substr(i + 1, 2).c_str(), nullptr, 16));
          i += 2;
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

/// The lines of `text` that hold something other than blanks, each with its 1-based number and
/// without a trailing '\r' (files with CRLF line ends).
inline std::vector<std::pair<size_t, std::string>> non_blank_lines(const std::string& text) {
  std::vector<std::pair<size_t, std::string>> out;
  std::istringstream lines(text);
  size_t number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) out.emplace_back(number, line);
  }
  return out;
}

/// The prompt text of one JSON entry: a string, or an object with "instruction", "prompt" or
/// "text" (the refusal datasets use "instruction").
inline std::string prompt_of(const char* call, const std::string& where, const nlohmann::json& e) {
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object()) {
    for (const char* key : {"instruction", "prompt", "text"}) {
      if (e.contains(key) && e.at(key).is_string()) return e.at(key).get<std::string>();
    }
  }
  throw Error(steer::detail::concat(call, ": ", where, " is ", e.dump().substr(0, 80),
                                    "; expected a string or an object with a string "
                                    "\"instruction\", \"prompt\" or \"text\""));
}

/// One (positive, negative) pair of a JSON entry.
inline std::pair<std::string, std::string> pair_of(const char* call, const std::string& where,
                                                   const nlohmann::json& e) {
  if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
    return {e[0].get<std::string>(), e[1].get<std::string>()};
  }
  if (e.is_object() && e.contains("positive") && e.contains("negative") &&
      e.at("positive").is_string() && e.at("negative").is_string()) {
    return {e.at("positive").get<std::string>(), e.at("negative").get<std::string>()};
  }
  throw Error(steer::detail::concat(call, ": ", where, " is ", e.dump().substr(0, 80),
                                    "; expected [\"positive\", \"negative\"] or {\"positive\": "
                                    "..., \"negative\": ...}"));
}

/// The entries of a JSON list file or of a JSON Lines file, each with where it is
/// ("entry 3 of 'f.json'", "line 4 of 'f.jsonl'"), converted by `convert`.
template <class Convert>
auto json_entries(const char* call, const std::string& path, const std::string& text,
                  bool lines, const char* what, Convert&& convert) {
  using Entry = decltype(convert(std::string(), nlohmann::json()));
  std::vector<Entry> out;
  if (!lines) {
    const auto json = parse_json(call, "'" + path + "'", text);
    STEER_CHECK(json.is_array(), call, ": '", path, "' holds a JSON ", json.type_name(),
                "; expected a list of ", what);
    for (size_t i = 0; i < json.size(); ++i) {
      out.push_back(convert(steer::detail::concat("entry ", i, " of '", path, "'"), json[i]));
    }
    return out;
  }
  for (const auto& [number, line] : non_blank_lines(text)) {
    const auto where = steer::detail::concat("line ", number, " of '", path, "'");
    out.push_back(convert(where, parse_json(call, where, line)));
  }
  return out;
}

}  // namespace detail

/// Reads a list of prompts. The format comes from `format`, or from the name:
/// - `.json`: a JSON list of strings, or of objects with "instruction", "prompt" or "text";
/// - `.jsonl`: one such string or object per line (blank lines skipped);
/// - `.txt`: one prompt per line, read as llama.cpp's cvector-generator reads positive.txt:
///   blank lines skipped, a trailing '\r' dropped, escapes such as `\n` unescaped
///   (detail::unescape_line). A line may start with '[' (`[INST] Act like ... [/INST]`).
/// - any other name: text as for `.txt`, but a file that starts with '[' or '{' is an error
///   naming the choices (its content could be JSON, JSON Lines or text).
/// Throws for a missing file, malformed JSON, an entry of another shape or no prompts.
/// Example: `auto harmful = steer::io::read_prompts("../shared/data/refusal/harmful_val.json");`
inline std::vector<std::string> read_prompts(const std::string& path,
                                             PromptFormat format = PromptFormat::by_extension) {
  const char* call = "read_prompts";
  const auto text = detail::read_text(call, path);
  if (format == PromptFormat::by_extension) {
    if (detail::has_extension(path, ".json")) format = PromptFormat::json;
    if (detail::has_extension(path, ".jsonl")) format = PromptFormat::jsonl;
    if (detail::has_extension(path, ".txt")) format = PromptFormat::text;
  }
  if (format == PromptFormat::by_extension) {
    const auto first = text.find_first_not_of(" \t\r\n");
    STEER_CHECK(first == std::string::npos || (text[first] != '[' && text[first] != '{'), call,
                ": cannot tell whether '", path, "' holds JSON, JSON Lines or text lines: it "
                "starts with '", text[first], "' and its name ends in none of .json, .jsonl, .txt "
                "(hint: rename it, or pass PromptFormat::json, jsonl or text)");
    format = PromptFormat::text;
  }
  std::vector<std::string> prompts;
  if (format == PromptFormat::text) {
    for (const auto& [number, line] : detail::non_blank_lines(text)) {
      prompts.push_back(detail::unescape_line(line));
    }
  } else {
    prompts = detail::json_entries(call, path, text, format == PromptFormat::jsonl, "prompts",
                                   [&](const std::string& where, const nlohmann::json& e) {
                                     return detail::prompt_of(call, where, e);
                                   });
  }
  STEER_CHECK(!prompts.empty(), call, ": '", path, "' holds no prompts");
  return prompts;
}

/// Reads (positive, negative) pairs: from `.jsonl` one pair per line, from any other name a
/// JSON list; each pair is `["Love", "Hate"]` or `{"positive": ..., "negative": ...}`. A `.txt`
/// file (or PromptFormat::text) is an error: text prompt files hold one set each (llama.cpp's
/// positive.txt and negative.txt), read with read_prompts.
/// Example: `auto pairs = steer::io::read_pairs("examples/data/love_hate.json");`
inline std::vector<std::pair<std::string, std::string>> read_pairs(
    const std::string& path, PromptFormat format = PromptFormat::by_extension) {
  const char* call = "read_pairs";
  if (format == PromptFormat::by_extension) {
    format = detail::has_extension(path, ".jsonl") ? PromptFormat::jsonl
             : detail::has_extension(path, ".txt") ? PromptFormat::text
                                                   : PromptFormat::json;
  }
  STEER_CHECK(format != PromptFormat::text, call, ": '", path, "' is read as text, but pairs "
              "are a JSON list (.json) or JSON Lines (.jsonl) (hint: one prompt per line goes in "
              "two files, read with read_prompts: steer extract --positive and --negative)");
  const auto text = detail::read_text(call, path);
  auto pairs = detail::json_entries(call, path, text, format == PromptFormat::jsonl, "pairs",
                                    [&](const std::string& where, const nlohmann::json& e) {
                                      return detail::pair_of(call, where, e);
                                    });
  STEER_CHECK(!pairs.empty(), call, ": '", path, "' must hold a non-empty list of pairs");
  return pairs;
}

}  // namespace steer::io
