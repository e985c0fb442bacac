// A compiled PCRE2 regular expression (UTF, UCP, JIT when available) and a translator from the
// Oniguruma syntax of Hugging Face tokenizer.json patterns. Internal to the tokenizer.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "steer/error.hpp"

namespace steer {
namespace detail {

/// Rewrites an Oniguruma pattern (what Hugging Face `tokenizers` compiles) for PCRE2.
/// Oniguruma's `\s` in UTF-8 mode also matches U+0085 (NEL); PCRE2's `\s` with UCP does not,
/// so `\s` becomes `[\s\x{85}]` outside a class and `\s\x{85}` inside one, and `\S` outside
/// a class becomes `[^\s\x{85}]`. `\p{L}`, `\p{N}`, `(?i:...)` and `(?!...)` need no change.
/// `\S` inside a class is left as it is (NEL then differs; no known tokenizer writes it).
inline std::string onig_to_pcre2(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  int class_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      if (e == 's') {
        out += class_depth > 0 ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && class_depth == 0) {
        out += "[^\\s\\x{85}]";
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      ++i;
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out.push_back(c);
  }
  return out;
}

/// One compiled pattern. Immutable after construction, so one instance may be shared by
/// threads; each find_all call uses its own match data.
class Pcre2Regex {
 public:
  /// Compiles `pattern` (PCRE2 syntax) with UTF and UCP; `literal` matches the text as is.
  /// `context` names the caller in error messages.
  Pcre2Regex(const std::string& pattern, bool literal, const std::string& context)
      : pattern_(pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // PCRE2_LITERAL admits no UCP (which only changes the meaning of escapes anyway).
    const uint32_t options = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP);
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &error_code, &error_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(error_code, buffer, sizeof(buffer));
      throw Error(concat(context, ": cannot compile the pre-tokenizer regex '", pattern,
                         "' with PCRE2 at offset ", error_offset, ": ",
                         reinterpret_cast<const char*>(buffer),
                         " (hint: the pattern uses Oniguruma syntax that PCRE2 lacks)"));
    }
    code_.reset(code, [](pcre2_code* p) { pcre2_code_free(p); });
    // JIT is an optimisation only: without it pcre2_match interprets the pattern.
    jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }

  const std::string& pattern() const { return pattern_; }
  bool jit() const { return jit_; }

  /// Whether the pattern matches at byte `offset` of `text[0, size)` (anchored there).
  bool matches_at(const char* text, std::size_t size, std::size_t offset) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr),
        [](pcre2_match_data* p) { pcre2_match_data_free(p); });
    STEER_CHECK(data != nullptr, "Tokenizer::encode: out of memory allocating PCRE2 match data");
    const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text), size, offset,
                               PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, data.get(), nullptr);
    STEER_CHECK(rc >= 0 || rc == PCRE2_ERROR_NOMATCH, "Tokenizer::encode: PCRE2 match of '",
                pattern_, "' failed with error code ", rc);
    return rc >= 0;
  }

  /// Byte ranges [begin, end) of the successive non-overlapping matches in `text[0, size)`,
  /// leftmost first; empty matches are skipped. `text` must be valid UTF-8.
  void find_all(const char* text, std::size_t size,
                std::vector<std::pair<std::size_t, std::size_t>>& matches) const {
    matches.clear();
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr),
        [](pcre2_match_data* p) { pcre2_match_data_free(p); });
    STEER_CHECK(data != nullptr, "Tokenizer::encode: out of memory allocating PCRE2 match data");
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text);
    std::size_t offset = 0;
    while (offset <= size) {
      const int rc = pcre2_match(code_.get(), subject, size, offset, PCRE2_NO_UTF_CHECK,
                                 data.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      STEER_CHECK(rc >= 0, "Tokenizer::encode: PCRE2 match of '", pattern_,
                  "' failed with error code ", rc);
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
      const std::size_t begin = ovector[0], end = ovector[1];
      if (end > begin) {
        matches.emplace_back(begin, end);
        offset = end;
      } else {
        // Empty match: step over one UTF-8 character.
        if (begin >= size) break;
        offset = begin + 1;
        while (offset < size && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
      }
    }
  }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_code> code_;
  bool jit_ = false;
};

}  // namespace detail
}  // namespace steer
