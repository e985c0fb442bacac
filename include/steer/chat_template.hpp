// Chat formatting: the ChatML and Llama 3 conversation layouts, written out in C++ (no Jinja),
// and ChatFormat's parser from the names a model's steer.json uses.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "steer/detail/unicode.hpp"
#include "steer/error.hpp"

namespace steer {

/// One turn of a conversation: `role` is "system", "user" or "assistant" (passed through as
/// is), `content` the text.
struct ChatMessage {
  std::string role;
  std::string content;
};

/// The conversation layouts steer writes.
/// - chatml: `<|im_start|>{role}\n{content}<|im_end|>\n` per message; generation prompt
///   `<|im_start|>assistant\n` (SmolLM2, Qwen2).
/// - llama3: `<|begin_of_text|>` once, then
///   `<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>` per message;
///   generation prompt `<|start_header_id|>assistant<|end_header_id|>\n\n` (Llama 3 Instruct).
enum class ChatFormat { chatml, llama3 };

/// "chatml" or "llama3" to ChatFormat; any other name throws steer::Error.
inline ChatFormat parse_chat_format(const std::string& name) {
  if (name == "chatml") return ChatFormat::chatml;
  if (name == "llama3") return ChatFormat::llama3;
  throw Error(detail::concat("parse_chat_format: unknown chat format '", name,
                             "'; expected one of 'chatml', 'llama3' (hint: check the "
                             "\"chat_format\" field of the model's steer.json)"));
}

/// The name parse_chat_format accepts for `format`.
inline std::string to_string(ChatFormat format) {
  switch (format) {
    case ChatFormat::chatml:
      return "chatml";
    case ChatFormat::llama3:
      return "llama3";
  }
  return "unknown";
}

/// How apply_chat_template lays out a conversation: the format, and the system message that
/// is inserted when the first message is not a system message (empty: none).
/// Example: `ChatTemplateOptions(ChatFormat::chatml).default_system_prompt(
///              "You are a helpful AI assistant named SmolLM, trained by Hugging Face")`
struct ChatTemplateOptions {
  explicit ChatTemplateOptions(ChatFormat format) : format_(format) {}

  ChatTemplateOptions& format(ChatFormat value) {
    format_ = value;
    return *this;
  }
  ChatTemplateOptions& default_system_prompt(std::string value) {
    default_system_prompt_ = std::move(value);
    return *this;
  }

  ChatFormat format() const { return format_; }
  const std::string& default_system_prompt() const { return default_system_prompt_; }

 private:
  ChatFormat format_;
  std::string default_system_prompt_;
};

namespace detail {

/// Python's `str.strip()`, which Jinja's `trim` filter calls.
inline std::string python_strip(const std::string& text) {
  std::size_t i = 0, begin = text.size(), end = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    const char32_t cp = utf8_next(text, i);
    if (!is_python_space(cp)) {
      if (begin == text.size()) begin = start;
      end = i;
    }
  }
  return begin >= end ? std::string() : text.substr(begin, end - begin);
}

}  // namespace detail

/// Writes `messages` as one prompt string in the layout of `options`; with
/// `add_generation_prompt` it ends with the header of an assistant turn. An empty conversation
/// gives only the generation prompt (or ""), as the Jinja templates do.
/// Example: `format_chat({{"user", "Hi"}}, ChatTemplateOptions(ChatFormat::chatml), true)`
///          == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n".
inline std::string format_chat(const std::vector<ChatMessage>& messages,
                               const ChatTemplateOptions& options, bool add_generation_prompt) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::size_t bad = detail::utf8_find_invalid(messages[i].content);
    STEER_CHECK(bad == std::string::npos, "apply_chat_template: message ", i,
                " has invalid UTF-8 at byte ", bad, " of its content (hint: pass UTF-8 text)");
  }
  std::vector<ChatMessage> all;
  all.reserve(messages.size() + 1);
  if (!messages.empty() && messages.front().role != "system" &&
      !options.default_system_prompt().empty()) {
    all.push_back({"system", options.default_system_prompt()});
  }
  all.insert(all.end(), messages.begin(), messages.end());

  std::string out;
  switch (options.format()) {
    case ChatFormat::chatml:
      for (const ChatMessage& m : all) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::llama3:
      if (!all.empty()) out += "<|begin_of_text|>";
      for (const ChatMessage& m : all) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" +
               detail::python_strip(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
  }
  return out;
}

}  // namespace steer
