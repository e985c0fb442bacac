// Chat formatting: the conversation layouts of the model families steer knows (ChatML, Llama 3,
// Llama 2, Mistral, Gemma, Phi-3), written out in C++ (no Jinja), and ChatFormat's parser from
// the names a model's steer.json uses. Layouts and sources: docs/model-directory.md.
#pragma once

#include <cstddef>
#include <optional>
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

/// The conversation layouts steer writes ({x | trim}: Python's str.strip()).
/// - chatml: `<|im_start|>{role}\n{content}<|im_end|>\n` per message; generation prompt
///   `<|im_start|>assistant\n` (SmolLM2, Qwen2, Qwen2.5, Qwen3 without thinking).
/// - llama3: `<|begin_of_text|>` once, then
///   `<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>` per message;
///   generation prompt `<|start_header_id|>assistant<|end_header_id|>\n\n` (Llama 3 Instruct).
/// - llama2: per user turn `<s>[INST] {content | trim} [/INST]`, per assistant turn
///   ` {content | trim} </s>`; a system message goes into the first user turn as
///   `<<SYS>>\n{system}\n<</SYS>>\n\n` (Llama 2 Chat). The layout has no generation prompt.
/// - mistral: `<s>` once, per user turn `[INST] {content}[/INST]`, per assistant turn
///   ` {content}</s>`; a system message goes before the last user turn's content, followed by
///   `\n\n` (Mistral 7B Instruct v0.3). No generation prompt.
/// - gemma: `<bos>` once, then `<start_of_turn>{user|model}\n{content | trim}<end_of_turn>\n`;
///   generation prompt `<start_of_turn>model\n`. Gemma has no system role: a system message
///   goes at the start of the first user turn, followed by `\n\n` (Gemma 3's convention).
/// - phi3: `<|{role}|>\n{content}<|end|>\n` per message; generation prompt `<|assistant|>\n`,
///   else `<|endoftext|>` at the end (Phi-3 mini instruct).
/// llama2, mistral and gemma need user and assistant turns to alternate, starting with the
/// user (after the optional system message), as their templates do.
enum class ChatFormat { chatml, llama3, llama2, mistral, gemma, phi3 };

/// Every ChatFormat, in declaration order.
inline const std::vector<ChatFormat>& all_chat_formats() {
  static const std::vector<ChatFormat> formats{ChatFormat::chatml,  ChatFormat::llama3,
                                               ChatFormat::llama2,  ChatFormat::mistral,
                                               ChatFormat::gemma,   ChatFormat::phi3};
  return formats;
}

/// The name parse_chat_format accepts for `format`.
inline std::string to_string(ChatFormat format) {
  switch (format) {
    case ChatFormat::chatml:
      return "chatml";
    case ChatFormat::llama3:
      return "llama3";
    case ChatFormat::llama2:
      return "llama2";
    case ChatFormat::mistral:
      return "mistral";
    case ChatFormat::gemma:
      return "gemma";
    case ChatFormat::phi3:
      return "phi3";
  }
  return "unknown";
}

/// A chat format's name ("chatml", "llama3", "llama2", "mistral", "gemma", "phi3") to
/// ChatFormat; any other name throws steer::Error.
inline ChatFormat parse_chat_format(const std::string& name) {
  std::string known;
  for (ChatFormat f : all_chat_formats()) {
    if (name == to_string(f)) return f;
    known += (known.empty() ? "'" : ", '") + to_string(f) + "'";
  }
  throw Error(detail::concat("parse_chat_format: unknown chat format '", name,
                             "'; expected one of ", known, " (hint: check the \"chat_format\" "
                             "field of the model's steer.json)"));
}

/// The added tokens a format writes, which the tokenizer must have as tokens.
inline std::vector<std::string> chat_format_tokens(ChatFormat format) {
  switch (format) {
    case ChatFormat::chatml:
      return {"<|im_start|>", "<|im_end|>"};
    case ChatFormat::llama3:
      return {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
    case ChatFormat::llama2:
    case ChatFormat::mistral:
      return {"<s>", "</s>"};
    case ChatFormat::gemma:
      return {"<bos>", "<start_of_turn>", "<end_of_turn>"};
    case ChatFormat::phi3:
      return {"<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"};
  }
  return {};
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

/// Splits off a leading system message: returns its content (if any) and the rest.
inline std::optional<std::string> take_system(const std::vector<ChatMessage>& all,
                                              std::vector<ChatMessage>& rest) {
  const bool has = !all.empty() && all.front().role == "system";
  rest.assign(all.begin() + (has ? 1 : 0), all.end());
  return has ? std::optional<std::string>(all.front().content) : std::nullopt;
}

/// Checks that `turns` alternate user, assistant, user, ... as the llama2, mistral and gemma
/// templates require.
inline void check_alternating(const std::vector<ChatMessage>& turns, ChatFormat format) {
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    STEER_CHECK(turns[i].role == expected, "apply_chat_template: chat format '", to_string(format),
                "' needs turns that alternate user/assistant/user/... after an optional first "
                "system message, but turn ", i, " (after the system message) has role '",
                turns[i].role, "' where '", expected, "' was expected");
  }
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
    case ChatFormat::llama2: {
      std::vector<ChatMessage> turns;
      const std::optional<std::string> system = detail::take_system(all, turns);
      detail::check_alternating(turns, options.format());
      STEER_CHECK(!system || !turns.empty(), "apply_chat_template: chat format 'llama2' writes "
                  "the system message into the first user turn, but there is none");
      for (std::size_t i = 0; i < turns.size(); ++i) {
        std::string content = turns[i].content;
        if (i == 0 && system) content = "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + content;
        out += i % 2 == 0 ? "<s>[INST] " + detail::python_strip(content) + " [/INST]"
                          : " " + detail::python_strip(content) + " </s>";
      }
      break;
    }
    case ChatFormat::mistral: {
      std::vector<ChatMessage> turns;
      const std::optional<std::string> system = detail::take_system(all, turns);
      detail::check_alternating(turns, options.format());
      // Mistral's template drops a system message when the last turn is the assistant's;
      // steer refuses rather than drop it silently.
      STEER_CHECK(!system || turns.size() % 2 == 1, "apply_chat_template: chat format 'mistral' "
                  "writes the system message into the last user turn, but the conversation "
                  "does not end with a user turn (hint: leave out the system message, or end "
                  "with the user's turn)");
      out += "<s>";
      for (std::size_t i = 0; i < turns.size(); ++i) {
        if (i % 2 == 1) {
          out += " " + turns[i].content + "</s>";
        } else if (i + 1 == turns.size() && system) {
          out += "[INST] " + *system + "\n\n" + turns[i].content + "[/INST]";
        } else {
          out += "[INST] " + turns[i].content + "[/INST]";
        }
      }
      break;
    }
    case ChatFormat::gemma: {
      std::vector<ChatMessage> turns;
      const std::optional<std::string> system = detail::take_system(all, turns);
      detail::check_alternating(turns, options.format());
      STEER_CHECK(!system || !turns.empty(), "apply_chat_template: chat format 'gemma' writes "
                  "the system message into the first user turn, but there is none");
      out += "<bos>";
      for (std::size_t i = 0; i < turns.size(); ++i) {
        out += std::string("<start_of_turn>") + (i % 2 == 0 ? "user" : "model") + "\n";
        if (i == 0 && system) out += *system + "\n\n";
        out += detail::python_strip(turns[i].content) + "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    }
    case ChatFormat::phi3:
      for (const ChatMessage& m : all) {
        STEER_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant",
                    "apply_chat_template: chat format 'phi3' knows the roles system, user and "
                    "assistant, not '", m.role, "'");
        out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      }
      out += add_generation_prompt ? "<|assistant|>\n" : "<|endoftext|>";
      break;
  }
  return out;
}

}  // namespace steer
