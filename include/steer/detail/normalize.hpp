// Unicode canonical normalization (NFC and NFD, UAX #15) over UTF-8, on the tables of
// detail/unicode_tables.hpp. Internal to steer::Tokenizer's NFC/NFD normalizers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "steer/detail/unicode.hpp"
#include "steer/detail/unicode_tables.hpp"

namespace steer {
namespace detail {

/// Canonical combining class of `cp` (0 for starters and unassigned code points).
inline uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = std::end(kCombiningClasses);
  const auto* it =
      std::upper_bound(std::begin(kCombiningClasses), end, cp,
                       [](char32_t c, const CombiningClassRange& r) { return c < r.first; });
  if (it == std::begin(kCombiningClasses)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

// Hangul syllables are composed arithmetically (Unicode 3.12).
inline constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161;
inline constexpr char32_t kHangulT = 0x11A7;
inline constexpr char32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
inline constexpr char32_t kHangulNCount = kHangulVCount * kHangulTCount;
inline constexpr char32_t kHangulSCount = kHangulLCount * kHangulNCount;

/// Appends the full canonical decomposition of `cp` to `out` (not yet canonically ordered).
inline void decompose_canonical(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kHangulS && cp < kHangulS + kHangulSCount) {
    const char32_t s = cp - kHangulS;
    out.push_back(kHangulL + s / kHangulNCount);
    out.push_back(kHangulV + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount != 0) out.push_back(kHangulT + s % kHangulTCount);
    return;
  }
  const auto* end = std::end(kDecompositions);
  const auto* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose_canonical(it->first, out);
  if (it->second != 0) decompose_canonical(it->second, out);
}

/// The primary composite of the pair (`first`, `second`), or 0 when there is none.
inline char32_t compose_pair(char32_t first, char32_t second) {
  if (first >= kHangulL && first < kHangulL + kHangulLCount && second >= kHangulV &&
      second < kHangulV + kHangulVCount) {
    return kHangulS + ((first - kHangulL) * kHangulVCount + (second - kHangulV)) * kHangulTCount;
  }
  const bool lv_syllable = first >= kHangulS && first < kHangulS + kHangulSCount &&
                           (first - kHangulS) % kHangulTCount == 0;
  if (lv_syllable && second > kHangulT && second < kHangulT + kHangulTCount) {
    return first + (second - kHangulT);
  }
  const auto* end = std::end(kCompositions);
  const auto* it = std::lower_bound(
      std::begin(kCompositions), end, std::make_pair(first, second),
      [](const Composition& c, const std::pair<char32_t, char32_t>& key) {
        return c.first != key.first ? c.first < key.first : c.second < key.second;
      });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

/// NFD of the code points of `text`, canonically ordered (stable sort of each run of
/// non-starters by combining class).
inline std::vector<char32_t> canonical_decomposition(const std::string& text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) decompose_canonical(utf8_next(text, i), cps);
  std::size_t run = 0;
  while (run < cps.size()) {
    if (combining_class(cps[run]) == 0) {
      ++run;
      continue;
    }
    std::size_t stop = run;
    while (stop < cps.size() && combining_class(cps[stop]) != 0) ++stop;
    const auto first = cps.begin() + static_cast<std::ptrdiff_t>(run);
    const auto last = cps.begin() + static_cast<std::ptrdiff_t>(stop);
    std::stable_sort(first, last, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    run = stop;
  }
  return cps;
}

/// Whether every code point of `text` is below U+0300, which makes it NFC already (no
/// combining mark follows; not NFD: Latin-1 letters like 'é' decompose).
inline bool below_combining_marks(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    // U+0300 is 0xCC 0x80: lead bytes up to 0xCB encode code points below it.
    if (b >= 0xCC && (b & 0xC0) != 0x80) return false;
  }
  return true;
}

/// NFD of valid UTF-8 `text`.
inline std::string nfd(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : canonical_decomposition(text)) utf8_append(out, cp);
  return out;
}

/// NFC of valid UTF-8 `text`: canonical decomposition, then canonical composition, where a
/// character composes with the last starter unless a character between them blocks it.
inline std::string nfc(const std::string& text) {
  if (below_combining_marks(text)) return text;
  const std::vector<char32_t> cps = canonical_decomposition(text);
  std::vector<char32_t> out;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;  // index in `out` of the last starter
  uint8_t last_class = 0;       // combining class of out.back()
  for (char32_t cp : cps) {
    const uint8_t cc = combining_class(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      if (adjacent || (last_class != 0 && last_class < cc)) {
        const char32_t composite = compose_pair(out[static_cast<std::size_t>(starter)], cp);
        if (composite != 0) {
          out[static_cast<std::size_t>(starter)] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    out.push_back(cp);
    last_class = cc;
  }
  std::string result;
  result.reserve(text.size());
  for (char32_t cp : out) utf8_append(result, cp);
  return result;
}

}  // namespace detail
}  // namespace steer
