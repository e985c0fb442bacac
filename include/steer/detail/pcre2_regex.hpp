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

/// Rewrites an Oniguruma pattern (what Hugging Face `tokenizers` compiles, Ruby syntax) for
/// PCRE2. Most constructs of tokenizer.json patterns mean the same in both: `\p{L}`, `\p{N}`,
/// `(?i:'s|'t)`, `(?!...)`, `{1,3}`. Two escapes differ and are rewritten:
/// - `\s`: Oniguruma matches Unicode White_Space (TAB..CR, space, U+0085, Zs, U+2028/9);
///   PCRE2 with UCP also matches U+180E. `\s` becomes that explicit list (in or outside a
///   class) and `\S` outside a class its complement.
/// - `\h`/`\H`: Ruby's hex digit (PCRE2: horizontal space) becomes `[0-9a-fA-F]`,
///   `[^0-9a-fA-F]`.
/// `\S` and `\H` inside a class have no PCRE2 spelling and fail at load.
inline std::string onig_to_pcre2(const std::string& pattern, const std::string& context) {
  const std::string white_space =
      "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
      "\\x{202F}\\x{205F}\\x{3000}";
  std::string out;
  out.reserve(pattern.size() + 64);
  int class_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      if (e == 's') {
        out += class_depth > 0 ? white_space : "[" + white_space + "]";
      } else if (e == 'S') {
        STEER_CHECK(class_depth == 0, context, ": the pre-tokenizer regex '", pattern,
                    "' uses \\S inside a character class, which PCRE2 cannot express");
        out += "[^" + white_space + "]";
      } else if (e == 'h') {
        out += class_depth > 0 ? "0-9a-fA-F" : "[0-9a-fA-F]";
      } else if (e == 'H') {
        STEER_CHECK(class_depth == 0, context, ": the pre-tokenizer regex '", pattern,
                    "' uses \\H inside a character class, which PCRE2 cannot express");
        out += "[^0-9a-fA-F]";
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
