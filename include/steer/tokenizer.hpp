// steer::Tokenizer: Hugging Face tokenizer.json (byte-level and SentencePiece-style BPE) in
// C++, torch-free: added tokens, normalizers, PCRE2 pre-tokenizer, BPE merges, post-processor
// template, decoders, and chat formatting. Supported features and failures: docs/tokenizer.md.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "steer/chat_template.hpp"
#include "steer/detail/bpe.hpp"
#include "steer/detail/normalize.hpp"
#include "steer/detail/pcre2_regex.hpp"
#include "steer/detail/unicode.hpp"
#include "steer/error.hpp"

namespace steer {

/// A BPE tokenizer read from a Hugging Face `tokenizer.json`: byte-level (GPT-2, SmolLM2,
/// Llama 3, Qwen2 with its NFC normalizer) or SentencePiece-style with `▁` for spaces and byte
/// fallback (Llama 2, Mistral, Gemma). `encode` gives the ids of
/// `tokenizers.Tokenizer.encode(text).ids`
/// (special tokens of the post-processor template included, as `add_special_tokens=True`,
/// the default there and in `transformers`' `tokenizer.encode`); `decode` gives
/// `tokenizers.Tokenizer.decode(ids)`.
///
/// Thread safety: all const members may be called from several threads at once (the word
/// cache is behind a shared mutex). Copies share the compiled regexes and the cache.
///
/// Example:
///   auto tok = steer::Tokenizer::from_file("models/smollm2/tokenizer.json");
///   std::vector<int64_t> ids = tok.encode("Hello world");   // {19556, 905}
///   std::string text = tok.decode(ids);                      // "Hello world"
class Tokenizer {
 public:
  /// Reads and checks a tokenizer.json. Throws steer::Error when the file is missing, is not
  /// JSON, or uses a model, normalizer, pre-tokenizer, decoder or post-processor that steer
  /// does not implement; the message names the file and the type.
  static Tokenizer from_file(const std::string& tokenizer_json_path) {
    std::ifstream in(tokenizer_json_path, std::ios::binary);
    STEER_CHECK(in.good(), "Tokenizer::from_file: cannot open '", tokenizer_json_path,
                "' (hint: pass the path of a Hugging Face tokenizer.json file)");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat("Tokenizer::from_file: '", tokenizer_json_path,
                                 "' is not valid JSON: ", e.what(),
                                 " (hint: a truncated download?)"));
    }
    return from_json(j, tokenizer_json_path);
  }

  /// As from_file, from parsed JSON; `source` names it in error messages.
  static Tokenizer from_json(const nlohmann::json& j, const std::string& source = "<json>") {
    Tokenizer t;
    t.source_ = source;
    try {
      t.load(j);
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat("Tokenizer::from_file: '", source,
                                 "' is not a tokenizer.json of the expected shape: ", e.what()));
    }
    return t;
  }

  /// Token ids of `text` (UTF-8). With `add_special_tokens` the post-processor's template
  /// adds its special tokens (e.g. Llama 3's `<|begin_of_text|>`; SmolLM2 adds none).
  /// Added tokens written in the text (e.g. `<|im_start|>`) always become their ids.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = true) const {
    const std::size_t bad = detail::utf8_find_invalid(text);
    STEER_CHECK(bad == std::string::npos, "Tokenizer::encode: text is not valid UTF-8 at byte ",
                bad, " (hint: convert the text to UTF-8 first)");
    std::vector<int64_t> body;
    body.reserve(text.size() / 3 + 4);
    // As tokenizers' AddedVocabulary::extract_and_normalize: added tokens that are not
    // normalized are split off the raw text, the pieces between are normalized one by one,
    // then the normalized added tokens are split off those.
    std::vector<Segment> raw, pieces;
    match_added(text, 0, text.size(), raw_, raw);
    Scratch scratch;
    for (const Segment& r : raw) {
      if (r.id >= 0) {
        body.push_back(r.id);
        continue;
      }
      if (r.end == r.begin) continue;
      const std::string normalized = normalize(text.substr(r.begin, r.end - r.begin));
      if (normalized.empty()) continue;
      pieces.clear();
      match_added(normalized, 0, normalized.size(), normalized_, pieces);
      for (const Segment& p : pieces) {
        if (p.id >= 0) {
          body.push_back(p.id);
        } else if (p.end > p.begin) {
          encode_text(normalized.substr(p.begin, p.end - p.begin), body, scratch,
                      /*at_text_start=*/r.begin == 0 && p.begin == 0);
        }
      }
    }
    if (!add_special_tokens || template_.empty()) return body;
    std::vector<int64_t> out;
    out.reserve(body.size() + 4);
    for (const TemplateItem& item : template_) {
      if (item.sequence) {
        out.insert(out.end(), body.begin(), body.end());
      } else {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    return out;
  }

  /// Text of `ids` through the tokenizer.json's decoder: ByteLevel (each token's bytes,
  /// invalid UTF-8 replaced by U+FFFD as Hugging Face does) or a chain of Replace,
  /// ByteFallback, Fuse, Strip and Metaspace steps. With `skip_special_tokens` the tokens
  /// marked special in added_tokens are left out. Throws steer::Error for an id outside the
  /// vocabulary.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const {
    const bool byte_level = decoders_.empty() && !no_decoder_;
    std::string bytes;
    std::vector<std::string> tokens;
    if (byte_level) {
      bytes.reserve(ids.size() * 4);
    } else {
      tokens.reserve(ids.size());
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      STEER_CHECK(is_known(id), "Tokenizer::decode: id ", id, " at position ", i,
                  " is not in the vocabulary of '", source_, "' (ids 0 to ", id_to_token_.size() - 1,
                  ", ", vocab_size(), " tokens) (hint: ids from another model?)");
      const auto k = static_cast<std::size_t>(id);
      if (skip_special_tokens && special_[k]) continue;
      if (byte_level) {
        bytes += token_bytes_[k];
      } else {
        tokens.push_back(id_to_token_[k]);
      }
    }
    if (byte_level) return detail::utf8_lossy(bytes);
    for (const DecodeStep& step : decoders_) apply_decoder(step, tokens);
    std::string text;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && no_decoder_) text += ' ';
      text += tokens[i];
    }
    return text;
  }

  /// Id of the token spelled `token` (added tokens first, then the BPE vocabulary, in its
  /// own spelling: byte-level "Ġthe", SentencePiece-style "▁the"). Throws steer::Error when
  /// there is none.
  int64_t token_to_id(const std::string& token) const {
    const std::optional<int64_t> id = find_token(token);
    STEER_CHECK(id.has_value(), "Tokenizer::token_to_id: no token '", token, "' in '", source_,
                "' (hint: BPE tokens are spelled byte-level, a leading space as 'Ġ')");
    return *id;
  }

  /// As token_to_id, or std::nullopt when the token does not exist.
  std::optional<int64_t> find_token(const std::string& token) const {
    const auto a = added_by_content_.find(token);
    if (a != added_by_content_.end()) return a->second;
    const auto v = vocab_.find(token);
    if (v != vocab_.end()) return v->second;
    return std::nullopt;
  }

  /// Spelling of token `id` (byte-level for BPE tokens). Throws steer::Error when unknown.
  std::string id_to_token(int64_t id) const {
    STEER_CHECK(is_known(id), "Tokenizer::id_to_token: id ", id, " is not in the vocabulary of '",
                source_, "' (ids 0 to ", id_to_token_.size() - 1, ")");
    return id_to_token_[static_cast<std::size_t>(id)];
  }

  /// Number of distinct tokens, added tokens included (`get_vocab_size(with_added_tokens=True)`).
  int64_t vocab_size() const { return vocab_size_; }

  /// Whether `id` is an added token marked special (e.g. `<|im_end|>`).
  bool is_special(int64_t id) const {
    return is_known(id) && special_[static_cast<std::size_t>(id)];
  }

  /// The file (or source name) this tokenizer was read from.
  const std::string& source() const { return source_; }

  /// Sets the layout apply_chat_template writes. Throws steer::Error when the vocabulary lacks
  /// the format's special tokens (the prompt would otherwise be encoded as plain text).
  Tokenizer& set_chat_template(const ChatTemplateOptions& options) {
    for (const std::string& token : chat_format_tokens(options.format())) {
      STEER_CHECK(added_by_content_.count(token) != 0, "Tokenizer::set_chat_template: chat format '",
                  to_string(options.format()), "' needs the added token '", token, "' but '",
                  source_, "' has none (hint: wrong chat_format for this model?)");
    }
    chat_ = options;
    return *this;
  }

  /// The conversation as one prompt string in the layout set by set_chat_template (compare
  /// `transformers`' `apply_chat_template(messages, tokenize=False)`). Encode it with
  /// `encode(prompt, /*add_special_tokens=*/false)` when the layout already writes the BOS.
  /// Example: `tok.set_chat_template(ChatTemplateOptions(ChatFormat::chatml));
  ///           tok.apply_chat_template({{"user", "Hi"}}, /*add_generation_prompt=*/true)`.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt) const {
    STEER_CHECK(chat_.has_value(), "Tokenizer::apply_chat_template: no chat format set for '",
                source_,
                "' (hint: call set_chat_template(ChatTemplateOptions(ChatFormat::chatml)) or load "
                "the model through its steer.json)");
    return format_chat(messages, *chat_, add_generation_prompt);
  }

 private:
  enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

  /// One pre-tokenizer step; ByteLevel (always the last step) is a split on the GPT-2 regex
  /// (when use_regex) after an optional prefix space; the byte mapping happens in BPE.
  enum class Prepend { never, first, always };

  struct PreStep {
    std::shared_ptr<detail::Pcre2Regex> regex;  // null: no split
    SplitBehavior behavior = SplitBehavior::isolated;
    bool invert = false;
    bool add_prefix_space = false;
    // Metaspace: spaces become `replacement`, which is prepended per `prepend`.
    bool metaspace = false;
    std::string replacement;
    Prepend prepend = Prepend::never;
  };

  /// One normalizer step (a Sequence is flattened).
  struct NormalizeStep {
    enum class Kind { nfc, nfd, replace, prepend, strip } kind;
    std::shared_ptr<detail::Pcre2Regex> pattern;  // replace
    std::string content;                          // replace, prepend
    bool strip_left = false, strip_right = false;
  };

  /// One decoder step (a Sequence is flattened), applied to the list of token strings.
  struct DecodeStep {
    enum class Kind { replace, byte_fallback, fuse, strip, metaspace, byte_level } kind;
    std::shared_ptr<detail::Pcre2Regex> pattern;  // replace
    std::string content;                          // replace; strip's and metaspace's character
    std::size_t start = 0, stop = 0;              // strip
    bool prepended = false;                       // metaspace: prepend_scheme is not never
  };

  struct AddedToken {
    std::string content;
    int64_t id;
    bool special, lstrip, rstrip, single_word, normalized;
    std::string match;  // what the text must hold: content, normalized when `normalized`
  };

  /// Leftmost-longest matcher over a set of added tokens (what Aho-Corasick with
  /// MatchKind::LeftmostLongest does in `tokenizers`).
  struct AddedMatcher {
    std::vector<std::size_t> tokens;                           // into added_, longest first
    std::array<std::vector<std::size_t>, 256> by_first_byte;   // into added_
  };

  struct Segment {
    std::size_t begin, end;
    int64_t id;  // -1: text to pre-tokenize
  };

  struct TemplateItem {
    bool sequence;
    std::vector<int64_t> ids;
  };

  struct Scratch {
    std::vector<std::string> pieces, next;
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> marked;
  };

  Tokenizer() = default;

  [[noreturn]] void unsupported(const std::string& what, const std::string& hint) const {
    throw Error(detail::concat("Tokenizer::from_file: '", source_, "': ", what,
                               " is not supported (hint: ", hint, ")"));
  }

  static std::string type_of(const nlohmann::json& j) {
    return j.is_object() && j.contains("type") && j["type"].is_string()
               ? j["type"].get<std::string>()
               : std::string("<no type>");
  }

  bool is_known(int64_t id) const {
    return id >= 0 && static_cast<std::size_t>(id) < id_to_token_.size() &&
           known_[static_cast<std::size_t>(id)];
  }

  void load(const nlohmann::json& j) {
    STEER_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(),
                "Tokenizer::from_file: '", source_,
                "' has no \"model\" object (hint: is this a Hugging Face tokenizer.json?)");
    // The pre-tokenizer decides the model's alphabet (bytes after a ByteLevel step, else
    // characters); the normalizer spells the normalized added tokens.
    load_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()));
    load_model(j["model"]);
    load_normalizer(j.value("normalizer", nlohmann::json()));
    load_added_tokens(j.value("added_tokens", nlohmann::json::array()));
    load_decoder(j.value("decoder", nlohmann::json()));
    load_post_processor(j.value("post_processor", nlohmann::json()));
    finish_tables();
  }

  void load_model(const nlohmann::json& m) {
    std::string type = type_of(m);
    if (type == "<no type>" && m.contains("merges")) type = "BPE";
    if (type != "BPE") {
      unsupported(detail::concat("model type '", type, "'"),
                  "steer reads BPE tokenizers, byte-level (GPT-2, Llama 3, Qwen2, SmolLM2) and "
                  "SentencePiece-style (Llama 2, Mistral, Gemma); Unigram and WordPiece models "
                  "are not implemented");
    }
    const bool byte_fallback = m.value("byte_fallback", false);
    if (byte_fallback && byte_level_) {
      unsupported("BPE with byte_fallback after a ByteLevel pre-tokenizer",
                  "byte_fallback belongs to SentencePiece-style BPE, whose pre-tokenizer is "
                  "Metaspace or none");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty()) {
        unsupported(detail::concat("BPE ", key, " '", m[key].get<std::string>(), "'"),
                    "only byte-level BPE without subword affixes is implemented");
      }
    }
    if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() != 0.0) {
      unsupported("BPE dropout", "dropout makes encoding random; remove it for inference");
    }
    ignore_merges_ = m.value("ignore_merges", false);

    STEER_CHECK(m.contains("vocab") && m["vocab"].is_object(), "Tokenizer::from_file: '", source_,
                "': model has no \"vocab\" object");
    for (const auto& item : m["vocab"].items()) {
      const int64_t id = item.value().get<int64_t>();
      STEER_CHECK(id >= 0, "Tokenizer::from_file: '", source_, "': token '", item.key(),
                  "' has negative id ", id);
      vocab_.emplace(item.key(), id);
    }

    std::array<int32_t, 256> byte_ids{};
    const auto& cps = detail::byte_to_codepoint();
    for (int b = 0; b < 256; ++b) {
      std::string s;
      if (byte_level_) {
        detail::utf8_append(s, cps[static_cast<std::size_t>(b)]);
      } else {
        s = byte_fallback_token(b);
      }
      byte_strings_[static_cast<std::size_t>(b)] = s;
      const auto it = vocab_.find(s);
      const bool usable = it != vocab_.end() && (byte_level_ || byte_fallback);
      byte_ids[static_cast<std::size_t>(b)] = usable ? static_cast<int32_t>(it->second) : -1;
    }

    std::unordered_map<uint64_t, detail::BytePairEncoder::Merge> merges;
    const nlohmann::json& list = m.value("merges", nlohmann::json::array());
    merges.reserve(list.size());
    for (std::size_t rank = 0; rank < list.size(); ++rank) {
      const nlohmann::json& item = list[rank];
      std::string a, b;
      if (item.is_string()) {
        const std::string s = item.get<std::string>();
        const std::size_t space = s.find(' ');
        STEER_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                    "Tokenizer::from_file: '", source_, "': merge ", rank, " '", s,
                    "' is not of the form 'a b'");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else {
        STEER_CHECK(item.is_array() && item.size() == 2, "Tokenizer::from_file: '", source_,
                    "': merge ", rank, " is neither \"a b\" nor [a, b]: ", item.dump());
        a = item[0].get<std::string>();
        b = item[1].get<std::string>();
      }
      const auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
      STEER_CHECK(ia != vocab_.end() && ib != vocab_.end() && ic != vocab_.end(),
                  "Tokenizer::from_file: '", source_, "': merge ", rank, " ('", a, "', '", b,
                  "') uses a token missing from the vocab");
      merges.emplace(detail::BytePairEncoder::pair_key(static_cast<int32_t>(ia->second),
                                                       static_cast<int32_t>(ib->second)),
                     detail::BytePairEncoder::Merge{static_cast<int32_t>(rank),
                                                    static_cast<int32_t>(ic->second)});
    }

    int32_t unk_id = -1;
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      const auto it = vocab_.find(m["unk_token"].get<std::string>());
      STEER_CHECK(it != vocab_.end(), "Tokenizer::from_file: '", source_, "': unk_token '",
                  m["unk_token"].get<std::string>(), "' is not in the vocab");
      unk_id = static_cast<int32_t>(it->second);
    }
    const bool fuse_unk = m.value("fuse_unk", false);
    if (byte_level_) {
      bpe_ = std::make_shared<detail::BytePairEncoder>(byte_ids, std::move(merges), unk_id,
                                                       fuse_unk);
      return;
    }
    std::unordered_map<std::string, int32_t> char_ids;
    for (const auto& v : vocab_) {
      std::size_t i = 0;
      if (detail::utf8_find_invalid(v.first) != std::string::npos || v.first.empty()) continue;
      detail::utf8_next(v.first, i);
      if (i == v.first.size()) char_ids.emplace(v.first, static_cast<int32_t>(v.second));
    }
    bpe_ = std::make_shared<detail::BytePairEncoder>(std::move(char_ids), byte_ids,
                                                     std::move(merges), unk_id, fuse_unk);
  }

  /// The vocabulary spelling of byte `b` under byte_fallback: "<0x0A>".
  static std::string byte_fallback_token(int b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
  }

  void load_added_tokens(const nlohmann::json& list) {
    STEER_CHECK(list.is_array(), "Tokenizer::from_file: '", source_,
                "': \"added_tokens\" is not a list");
    for (const nlohmann::json& t : list) {
      AddedToken a{t.at("content").get<std::string>(), t.at("id").get<int64_t>(),
                   t.value("special", false),     t.value("lstrip", false),
                   t.value("rstrip", false),      t.value("single_word", false),
                   t.value("normalized", !t.value("special", false)), std::string()};
      if (a.content.empty()) continue;
      STEER_CHECK(detail::utf8_find_invalid(a.content) == std::string::npos,
                  "Tokenizer::from_file: '", source_, "': added token ", a.id,
                  " is not valid UTF-8");
      a.match = a.normalized ? normalize(a.content) : a.content;
      added_by_content_[a.content] = a.id;
      added_.push_back(std::move(a));
    }
  }

  void load_normalizer(const nlohmann::json& n) {
    if (n.is_null()) return;
    const std::string type = type_of(n);
    const std::string context = "Tokenizer::from_file: '" + source_ + "'";
    NormalizeStep step{NormalizeStep::Kind::nfc, nullptr, std::string()};
    if (type == "Sequence") {
      for (const nlohmann::json& s : n.at("normalizers")) load_normalizer(s);
      return;
    } else if (type == "NFC") {
      step.kind = NormalizeStep::Kind::nfc;
    } else if (type == "NFD") {
      step.kind = NormalizeStep::Kind::nfd;
    } else if (type == "Replace") {
      step.kind = NormalizeStep::Kind::replace;
      step.pattern = pattern_of(n.at("pattern"), context);
      step.content = n.at("content").get<std::string>();
    } else if (type == "Prepend") {
      step.kind = NormalizeStep::Kind::prepend;
      step.content = n.at("prepend").get<std::string>();
    } else if (type == "Strip") {
      step.kind = NormalizeStep::Kind::strip;
      step.strip_left = n.value("strip_left", false);
      step.strip_right = n.value("strip_right", false);
    } else {
      unsupported(detail::concat("normalizer '", type, "'"),
                  "steer supports NFC, NFD, Replace, Prepend, Strip and Sequence of them");
    }
    normalizers_.push_back(std::move(step));
  }

  /// A Split/Replace pattern, {"String": "..."} or {"Regex": "..."} (Oniguruma syntax).
  static std::shared_ptr<detail::Pcre2Regex> pattern_of(const nlohmann::json& pattern,
                                                        const std::string& context) {
    if (pattern.contains("String")) {
      return std::make_shared<detail::Pcre2Regex>(pattern.at("String").get<std::string>(),
                                                  /*literal=*/true, context);
    }
    return std::make_shared<detail::Pcre2Regex>(
        detail::onig_to_pcre2(pattern.at("Regex").get<std::string>(), context), /*literal=*/false,
        context);
  }

  /// Every match of `pattern` in `text` replaced by `content`.
  static std::string replace_all(const std::string& text, const detail::Pcre2Regex& pattern,
                                 const std::string& content) {
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    pattern.find_all(text.data(), text.size(), matches);
    if (matches.empty()) return text;
    std::string out;
    std::size_t prev = 0;
    for (const auto& m : matches) {
      out.append(text, prev, m.first - prev);
      out += content;
      prev = m.second;
    }
    out.append(text, prev, std::string::npos);
    return out;
  }

  /// `text` with leading (`left`) and trailing (`right`) Unicode White_Space removed.
  static std::string strip_whitespace(const std::string& text, bool left, bool right) {
    std::size_t begin = 0, end = text.size();
    if (left) {
      while (begin < end) {
        std::size_t i = begin;
        if (!detail::is_unicode_whitespace(detail::utf8_next(text, i))) break;
        begin = i;
      }
    }
    if (right) {
      while (end > begin) {
        std::size_t p = end - 1;
        while (p > begin && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        std::size_t i = p;
        if (!detail::is_unicode_whitespace(detail::utf8_next(text, i))) break;
        end = p;
      }
    }
    return text.substr(begin, end - begin);
  }

  /// The normalizer's steps applied to `text` in order.
  std::string normalize(std::string text) const {
    for (const NormalizeStep& step : normalizers_) {
      switch (step.kind) {
        case NormalizeStep::Kind::nfc:
          text = detail::nfc(text);
          break;
        case NormalizeStep::Kind::nfd:
          text = detail::nfd(text);
          break;
        case NormalizeStep::Kind::replace:
          text = replace_all(text, *step.pattern, step.content);
          break;
        case NormalizeStep::Kind::prepend:
          if (!text.empty()) text.insert(0, step.content);
          break;
        case NormalizeStep::Kind::strip:
          text = strip_whitespace(text, step.strip_left, step.strip_right);
          break;
      }
    }
    return text;
  }

  void load_pre_tokenizer(const nlohmann::json& p) {
    std::vector<nlohmann::json> steps;
    if (type_of(p) == "Sequence") {
      for (const nlohmann::json& s : p.at("pretokenizers")) steps.push_back(s);
    } else if (!p.is_null()) {
      steps.push_back(p);
    }
    bool byte_level_last = false;
    const std::string context = "Tokenizer::from_file: '" + source_ + "'";
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const nlohmann::json& s = steps[i];
      const std::string type = type_of(s);
      STEER_CHECK(!byte_level_last, "Tokenizer::from_file: '", source_,
                  "': pre-tokenizer '", type, "' after ByteLevel is not supported (hint: "
                  "steer needs ByteLevel as the last pre-tokenizer)");
      PreStep step;
      if (type == "Metaspace") {
        STEER_CHECK(i == 0, "Tokenizer::from_file: '", source_,
                    "': pre-tokenizer 'Metaspace' is supported as the first step only (found at "
                    "step ", i, ")");
        step.metaspace = true;
        step.replacement = s.at("replacement").get<std::string>();
        std::size_t one = 0;
        STEER_CHECK(!step.replacement.empty() &&
                        (detail::utf8_next(step.replacement, one), one == step.replacement.size()),
                    "Tokenizer::from_file: '", source_, "': Metaspace replacement '",
                    step.replacement, "' is not one character");
        if (s.contains("prepend_scheme")) {
          const std::string scheme = s.at("prepend_scheme").get<std::string>();
          if (scheme == "always") {
            step.prepend = Prepend::always;
          } else if (scheme == "first") {
            step.prepend = Prepend::first;
          } else if (scheme == "never") {
            step.prepend = Prepend::never;
          } else {
            unsupported(detail::concat("Metaspace prepend_scheme '", scheme, "'"),
                        "expected always, first or never");
          }
        } else {  // files written before prepend_scheme existed
          step.prepend = s.value("add_prefix_space", true) ? Prepend::always : Prepend::never;
        }
        if (s.value("split", true)) {
          step.regex =
              std::make_shared<detail::Pcre2Regex>(step.replacement, /*literal=*/true, context);
          step.behavior = SplitBehavior::merged_with_next;
        }
      } else if (type == "ByteLevel") {
        step.add_prefix_space = s.value("add_prefix_space", false);
        if (s.value("use_regex", true)) {
          step.regex = std::make_shared<detail::Pcre2Regex>(
              detail::onig_to_pcre2(
                  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                  "Tokenizer::from_file: '" + source_ + "'"),
              /*literal=*/false, "Tokenizer::from_file: '" + source_ + "'");
        }
        byte_level_last = true;
      } else if (type == "Split") {
        step.regex = pattern_of(s.at("pattern"), context);
        step.behavior = parse_behavior(s.at("behavior").get<std::string>());
        step.invert = s.value("invert", false);
      } else if (type == "Digits") {
        // `char::is_numeric` is the general category N; contiguous digits form one match.
        step.regex = std::make_shared<detail::Pcre2Regex>(
            s.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+", /*literal=*/false,
            "Tokenizer::from_file: '" + source_ + "'");
      } else {
        unsupported(detail::concat("pre-tokenizer '", type, "'"),
                    "steer supports Metaspace, Split, Digits, ByteLevel and a Sequence of them "
                    "(Metaspace first, ByteLevel last)");
      }
      pre_steps_.push_back(std::move(step));
    }
    byte_level_ = byte_level_last;
  }

  SplitBehavior parse_behavior(const std::string& name) const {
    if (name == "Removed") return SplitBehavior::removed;
    if (name == "Isolated") return SplitBehavior::isolated;
    if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
    if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
    if (name == "Contiguous") return SplitBehavior::contiguous;
    unsupported(detail::concat("Split behavior '", name, "'"),
                "expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
  }

  /// Reads the decoder into decoders_; ByteLevel alone (or in a Sequence of one) leaves it
  /// empty, the fast path of decode.
  void load_decoder(const nlohmann::json& d) {
    if (d.is_null()) {
      no_decoder_ = true;  // tokens joined with spaces, as tokenizers does without a decoder
      return;
    }
    std::vector<nlohmann::json> steps;
    if (type_of(d) == "Sequence") {
      for (const nlohmann::json& s : d.at("decoders")) steps.push_back(s);
    } else {
      steps.push_back(d);
    }
    if (steps.size() == 1 && type_of(steps[0]) == "ByteLevel") return;
    const std::string context = "Tokenizer::from_file: '" + source_ + "'";
    for (const nlohmann::json& s : steps) {
      const std::string type = type_of(s);
      DecodeStep step{DecodeStep::Kind::fuse, nullptr, std::string()};
      if (type == "Replace") {
        step.kind = DecodeStep::Kind::replace;
        step.pattern = pattern_of(s.at("pattern"), context);
        step.content = s.at("content").get<std::string>();
      } else if (type == "ByteFallback") {
        step.kind = DecodeStep::Kind::byte_fallback;
      } else if (type == "Fuse") {
        step.kind = DecodeStep::Kind::fuse;
      } else if (type == "Strip") {
        step.kind = DecodeStep::Kind::strip;
        step.content = s.at("content").get<std::string>();
        step.start = s.value("start", std::size_t{0});
        step.stop = s.value("stop", std::size_t{0});
      } else if (type == "Metaspace") {
        step.kind = DecodeStep::Kind::metaspace;
        step.content = s.at("replacement").get<std::string>();
        step.prepended = s.contains("prepend_scheme")
                             ? s.at("prepend_scheme").get<std::string>() != "never"
                             : s.value("add_prefix_space", true);
      } else if (type == "ByteLevel") {
        step.kind = DecodeStep::Kind::byte_level;
      } else {
        unsupported(detail::concat("decoder '", type, "'"),
                    "steer supports ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and "
                    "a Sequence of them");
      }
      decoders_.push_back(std::move(step));
    }
  }

  /// One decoder step over the token strings (tokenizers' Decoder::decode_chain).
  void apply_decoder(const DecodeStep& step, std::vector<std::string>& tokens) const {
    switch (step.kind) {
      case DecodeStep::Kind::replace:
        for (std::string& t : tokens) t = replace_all(t, *step.pattern, step.content);
        break;
      case DecodeStep::Kind::byte_fallback: {
        // Runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one
        // U+FFFD per byte.
        std::vector<std::string> out;
        std::string run;
        std::size_t run_tokens = 0;
        const auto flush = [&] {
          if (run_tokens == 0) return;
          if (detail::utf8_find_invalid(run) == std::string::npos) {
            out.push_back(run);
          } else {
            for (std::size_t k = 0; k < run_tokens; ++k) out.emplace_back("\xEF\xBF\xBD");
          }
          run.clear();
          run_tokens = 0;
        };
        for (std::string& t : tokens) {
          const int byte = parse_byte_token(t);
          if (byte >= 0) {
            run.push_back(static_cast<char>(byte));
            ++run_tokens;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens.swap(out);
        break;
      }
      case DecodeStep::Kind::fuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, all);
        break;
      }
      case DecodeStep::Kind::strip:
        for (std::string& t : tokens) t = strip_chars(t, step.content, step.start, step.stop);
        break;
      case DecodeStep::Kind::metaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          // Every replacement character becomes a space, except in the first token when
          // the encoder prepends one: there they are dropped.
          const std::string space = i == 0 && step.prepended ? std::string() : std::string(" ");
          std::string out;
          std::size_t k = 0;
          const std::string& t = tokens[i];
          while (k < t.size()) {
            const std::size_t start = k;
            detail::utf8_next(t, k);
            if (t.compare(start, k - start, step.content) == 0) {
              out += space;
            } else {
              out.append(t, start, k - start);
            }
          }
          tokens[i] = out;
        }
        break;
      case DecodeStep::Kind::byte_level: {
        std::string bytes;
        for (const std::string& t : tokens) {
          std::string mapped;
          std::size_t k = 0;
          bool ok = true;
          while (k < t.size()) {
            const int b = detail::codepoint_to_byte(detail::utf8_next(t, k));
            if (b < 0) {
              ok = false;
              break;
            }
            mapped.push_back(static_cast<char>(b));
          }
          bytes += ok ? mapped : t;
        }
        tokens.assign(1, detail::utf8_lossy(bytes));
        break;
      }
    }
  }

  /// The byte of a token spelled "<0xNN>" (hex digits of either case), or -1.
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int value = 0;
    for (std::size_t k = 3; k < 5; ++k) {
      const char c = t[k];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }

  /// `t` without up to `start` leading and `stop` trailing copies of the character `c`.
  static std::string strip_chars(const std::string& t, const std::string& c, std::size_t start,
                                 std::size_t stop) {
    std::vector<std::size_t> bounds;  // start offsets of the characters, then t.size()
    for (std::size_t k = 0; k < t.size(); detail::utf8_next(t, k)) bounds.push_back(k);
    bounds.push_back(t.size());
    const std::size_t n = bounds.size() - 1;
    const auto is_c = [&](std::size_t i) {
      return t.compare(bounds[i], bounds[i + 1] - bounds[i], c) == 0;
    };
    std::size_t first = 0;
    while (first < start && first < n && is_c(first)) ++first;
    std::size_t last = n;
    for (std::size_t k = 0; k < stop && last > 0 && is_c(last - 1); ++k) --last;
    if (last < first) last = first;
    return t.substr(bounds[first], bounds[last] - bounds[first]);
  }

  void load_post_processor(const nlohmann::json& p) {
    if (p.is_null()) return;
    const std::string type = type_of(p);
    if (type == "ByteLevel") return;  // changes offsets only
    if (type == "Sequence") {
      for (const nlohmann::json& s : p.at("processors")) load_post_processor(s);
      return;
    }
    STEER_CHECK(template_.empty(), "Tokenizer::from_file: '", source_,
                "': more than one post-processor adds tokens; not supported");
    if (type == "TemplateProcessing") {
      const nlohmann::json& specials = p.value("special_tokens", nlohmann::json::object());
      for (const nlohmann::json& item : p.at("single")) {
        if (item.contains("Sequence")) {
          template_.push_back({true, {}});
        } else {
          const std::string name = item.at("SpecialToken").at("id").get<std::string>();
          STEER_CHECK(specials.contains(name), "Tokenizer::from_file: '", source_,
                      "': the post-processor template uses special token '", name,
                      "' missing from its special_tokens");
          template_.push_back({false, specials[name].at("ids").get<std::vector<int64_t>>()});
        }
      }
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      template_.push_back({false, {p.at("cls").at(1).get<int64_t>()}});
      template_.push_back({true, {}});
      template_.push_back({false, {p.at("sep").at(1).get<int64_t>()}});
    } else {
      unsupported(detail::concat("post-processor '", type, "'"),
                  "steer supports TemplateProcessing, ByteLevel, RobertaProcessing, "
                  "BertProcessing and Sequence of them");
    }
  }

  void finish_tables() {
    int64_t max_id = -1;
    for (const auto& v : vocab_) max_id = std::max(max_id, v.second);
    for (const AddedToken& a : added_) max_id = std::max(max_id, a.id);
    const auto n = static_cast<std::size_t>(max_id + 1);
    id_to_token_.assign(n, std::string());
    token_bytes_.assign(n, std::string());
    known_.assign(n, 0);
    special_.assign(n, 0);
    for (const auto& v : vocab_) {
      id_to_token_[static_cast<std::size_t>(v.second)] = v.first;
      known_[static_cast<std::size_t>(v.second)] = 1;
    }
    for (const AddedToken& a : added_) {
      // A normalized added token is spelled normalized, as tokenizers' id_to_token and decode
      // give it (e.g. "▁[INST]" under Llama 2's Prepend normalizer).
      id_to_token_[static_cast<std::size_t>(a.id)] = a.normalized ? a.match : a.content;
      known_[static_cast<std::size_t>(a.id)] = 1;
      special_[static_cast<std::size_t>(a.id)] = a.special ? 1 : 0;
    }
    vocab_size_ = 0;
    for (std::size_t id = 0; id < n; ++id) {
      if (!known_[id]) continue;
      ++vocab_size_;
      // ByteLevel decoder: a token whose characters all come from the byte alphabet gives
      // those bytes; any other token (e.g. "<|im_start|>" is in the alphabet, a token with a
      // real space is not) gives its own UTF-8 bytes.
      const std::string& token = id_to_token_[id];
      std::string bytes;
      bool mapped = true;
      std::size_t i = 0;
      while (i < token.size()) {
        const int b = detail::codepoint_to_byte(detail::utf8_next(token, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      token_bytes_[id] = mapped ? bytes : token;
    }
    // Added-token matchers: pass 1 on the raw text with tokens not normalized, pass 2 on the
    // normalized pieces between them with the normalized spelling of the others.
    for (std::size_t k = 0; k < added_.size(); ++k) {
      if (added_[k].match.empty()) continue;
      (added_[k].normalized ? normalized_ : raw_).tokens.push_back(k);
    }
    for (AddedMatcher* m : {&raw_, &normalized_}) {
      std::stable_sort(m->tokens.begin(), m->tokens.end(), [&](std::size_t x, std::size_t y) {
        return added_[x].match.size() > added_[y].match.size();
      });
      for (std::size_t k : m->tokens) {
        m->by_first_byte[static_cast<unsigned char>(added_[k].match[0])].push_back(k);
      }
    }
    // `\w` of Rust's regex crate, which decides single_word boundaries.
    word_char_ = std::make_shared<detail::Pcre2Regex>(
        "[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", /*literal=*/false,
        "Tokenizer::from_file: '" + source_ + "'");
  }

  /// Splits text[begin, end) at the added tokens of `m` (tokenizers' find_matches).
  void match_added(const std::string& text, std::size_t begin, std::size_t end,
                   const AddedMatcher& m, std::vector<Segment>& out) const {
    if (m.tokens.empty()) {
      out.push_back({begin, end, -1});
      return;
    }
    std::size_t start_offset = begin;
    std::size_t pos = begin;
    while (pos < end) {
      const AddedToken* found = nullptr;
      for (std::size_t k : m.by_first_byte[static_cast<unsigned char>(text[pos])]) {
        const std::string& c = added_[k].match;
        if (c.size() <= end - pos && std::memcmp(text.data() + pos, c.data(), c.size()) == 0) {
          found = &added_[k];
          break;
        }
      }
      if (found == nullptr) {
        ++pos;
        continue;
      }
      std::size_t start = pos, stop = pos + found->match.size();
      pos = stop;
      if (found->single_word) {
        const bool start_space = start == begin || !ends_with_word(text, begin, start);
        const bool stop_space = stop == end || !word_char_->matches_at(text.data(), end, stop);
        if (!start_space || !stop_space) continue;
      }
      if (found->lstrip) {
        std::size_t s = start;
        while (s > begin) {
          std::size_t p = s - 1;
          while (p > begin && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
          std::size_t q = p;
          if (!detail::is_unicode_whitespace(detail::utf8_next(text, q))) break;
          s = p;
        }
        start = std::max(s, start_offset);
      }
      if (found->rstrip) {
        while (stop < end) {
          std::size_t q = stop;
          if (!detail::is_unicode_whitespace(detail::utf8_next(text, q))) break;
          stop = q;
        }
      }
      if (start < start_offset) continue;  // overlaps a previous token's rstrip
      if (start_offset < start) out.push_back({start_offset, start, -1});
      out.push_back({start, stop, found->id});
      start_offset = stop;
      pos = std::max(pos, stop);
    }
    if (start_offset < end || start_offset == begin) out.push_back({start_offset, end, -1});
  }

  bool ends_with_word(const std::string& text, std::size_t begin, std::size_t at) const {
    std::size_t p = at - 1;
    while (p > begin && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
    return word_char_->matches_at(text.data(), at, p);
  }

  /// Applies one Split-like step to `piece`, appending the resulting pieces to `out`
  /// (tokenizers' NormalizedString::split with a SplitDelimiterBehavior).
  static void split_piece(const std::string& piece, const PreStep& step, Scratch& scratch,
                          std::vector<std::string>& out) {
    step.regex->find_all(piece.data(), piece.size(), scratch.matches);
    auto& marked = scratch.marked;
    marked.clear();
    std::size_t prev = 0;
    for (const auto& m : scratch.matches) {
      if (prev != m.first) marked.push_back({{prev, m.first}, step.invert});
      marked.push_back({m, !step.invert});
      prev = m.second;
    }
    if (prev != piece.size()) marked.push_back({{prev, piece.size()}, step.invert});

    const auto emit = [&](std::size_t b, std::size_t e) {
      if (e > b) out.emplace_back(piece, b, e - b);
    };
    switch (step.behavior) {
      case SplitBehavior::removed:
        for (const auto& m : marked) {
          if (!m.second) emit(m.first.first, m.first.second);
        }
        break;
      case SplitBehavior::isolated:
        for (const auto& m : marked) emit(m.first.first, m.first.second);
        break;
      case SplitBehavior::merged_with_previous: {
        std::vector<std::pair<std::size_t, std::size_t>> acc;
        bool previous_match = false;
        for (const auto& m : marked) {
          if (m.second && !previous_match && !acc.empty()) {
            acc.back().second = m.first.second;
          } else {
            acc.push_back(m.first);
          }
          previous_match = m.second;
        }
        for (const auto& r : acc) emit(r.first, r.second);
        break;
      }
      case SplitBehavior::merged_with_next: {
        std::vector<std::pair<std::size_t, std::size_t>> acc;
        bool previous_match = false;
        for (auto it = marked.rbegin(); it != marked.rend(); ++it) {
          if (it->second && !previous_match && !acc.empty()) {
            acc.back().first = it->first.first;
          } else {
            acc.push_back(it->first);
          }
          previous_match = it->second;
        }
        for (auto it = acc.rbegin(); it != acc.rend(); ++it) emit(it->first, it->second);
        break;
      }
      case SplitBehavior::contiguous: {
        std::vector<std::pair<std::size_t, std::size_t>> acc;
        bool previous_match = false;
        for (const auto& m : marked) {
          if (m.second == previous_match && !acc.empty()) {
            acc.back().second = m.first.second;
          } else {
            acc.push_back(m.first);
          }
          previous_match = m.second;
        }
        for (const auto& r : acc) emit(r.first, r.second);
        break;
      }
    }
  }

  /// Pre-tokenizes one normalized text segment and appends the BPE ids of its pieces.
  /// `at_text_start`: the segment starts the text (Metaspace's prepend_scheme "first").
  void encode_text(std::string segment, std::vector<int64_t>& out, Scratch& scratch,
                   bool at_text_start) const {
    auto& pieces = scratch.pieces;
    auto& next = scratch.next;
    pieces.clear();
    pieces.push_back(std::move(segment));
    for (const PreStep& step : pre_steps_) {
      next.clear();
      for (std::string& piece : pieces) {
        if (step.add_prefix_space && piece.compare(0, 1, " ") != 0) piece.insert(0, " ");
        if (step.metaspace) {
          // Metaspace is the first step: `piece` is the whole segment.
          piece = replace_all(piece, *space_, step.replacement);
          const bool starts = piece.compare(0, step.replacement.size(), step.replacement) == 0;
          if (!starts && (step.prepend == Prepend::always ||
                          (step.prepend == Prepend::first && at_text_start))) {
            piece.insert(0, step.replacement);
          }
        }
        if (step.regex) {
          split_piece(piece, step, scratch, next);
        } else {
          next.push_back(std::move(piece));
        }
      }
      pieces.swap(next);
    }
    for (const std::string& piece : pieces) {
      if (ignore_merges_) {
        std::string spelled;
        if (byte_level_) {
          for (char b : piece) spelled += byte_strings_[static_cast<unsigned char>(b)];
        } else {
          spelled = piece;
        }
        const auto it = vocab_.find(spelled);
        if (it != vocab_.end()) {
          out.push_back(it->second);
          continue;
        }
      }
      bpe_->encode(piece.data(), piece.size(), out);
    }
  }

  std::string source_;
  bool byte_level_ = false;  // a ByteLevel pre-tokenizer: the BPE alphabet is bytes
  std::vector<NormalizeStep> normalizers_;
  std::vector<DecodeStep> decoders_;  // empty with a ByteLevel decoder (or none, see no_decoder_)
  bool no_decoder_ = false;
  std::shared_ptr<detail::Pcre2Regex> space_ =
      std::make_shared<detail::Pcre2Regex>(" ", /*literal=*/true, "Tokenizer");
  std::unordered_map<std::string, int64_t> vocab_;
  std::array<std::string, 256> byte_strings_;
  bool ignore_merges_ = false;
  std::shared_ptr<detail::BytePairEncoder> bpe_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int64_t> added_by_content_;
  AddedMatcher raw_, normalized_;
  std::shared_ptr<detail::Pcre2Regex> word_char_;
  std::vector<PreStep> pre_steps_;
  std::vector<TemplateItem> template_;
  std::vector<std::string> id_to_token_;
  std::vector<std::string> token_bytes_;
  std::vector<char> known_, special_;
  int64_t vocab_size_ = 0;
  std::optional<ChatTemplateOptions> chat_;
};

}  // namespace steer
