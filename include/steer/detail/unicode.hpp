// UTF-8 helpers for the tokenizer: validation, code point decoding, lossy conversion and the
// GPT-2 byte-to-unicode alphabet of byte-level BPE. Internal; users include steer/tokenizer.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace steer {
namespace detail {

/// Length of the valid UTF-8 sequence starting at `s[i]`, or 0 when the bytes there are not
/// valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid, as in
/// Rust's `str`). Also used to find the "maximal subpart" of an invalid sequence: see
/// utf8_lossy.
inline std::size_t utf8_valid_prefix(const std::string& s, std::size_t i, bool* complete) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const std::size_t n = s.size();
  const unsigned char b0 = byte(i);
  *complete = false;
  if (b0 < 0x80) {
    *complete = true;
    return 1;
  }
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2, hi = 0x9F;
  } else if (b0 == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3, hi = 0x8F;
  } else {
    return 1;  // not a lead byte: an invalid sequence of length 1
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= n) return k;
    const unsigned char b = byte(i + k);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return k;
  }
  *complete = true;
  return need + 1;
}

/// Byte offset of the first invalid UTF-8 byte in `s`, or std::string::npos when all is valid.
inline std::size_t utf8_find_invalid(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const std::size_t len = utf8_valid_prefix(s, i, &complete);
    if (!complete) return i;
    i += len;
  }
  return std::string::npos;
}

/// Bytes to text the way Rust's `String::from_utf8_lossy` does (and so Hugging Face's
/// decoders): each maximal invalid subpart becomes one U+FFFD.
inline std::string utf8_lossy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    bool complete = false;
    const std::size_t len = utf8_valid_prefix(s, i, &complete);
    if (complete) {
      out.append(s, i, len);
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += len;
  }
  return out;
}

/// Decodes the code point at `s[i]` of valid UTF-8 and advances `i` past it.
inline char32_t utf8_next(const std::string& s, std::size_t& i) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k])); };
  const char32_t b0 = b(i);
  if (b0 < 0x80) {
    i += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    const char32_t cp = ((b0 & 0x1F) << 6) | (b(i + 1) & 0x3F);
    i += 2;
    return cp;
  }
  if (b0 < 0xF0) {
    const char32_t cp = ((b0 & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
    i += 3;
    return cp;
  }
  const char32_t cp = ((b0 & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) |
                      (b(i + 3) & 0x3F);
  i += 4;
  return cp;
}

/// Appends the UTF-8 encoding of code point `cp` to `out`.
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Unicode White_Space, as Rust's `char::is_whitespace` (used for added tokens' lstrip/rstrip).
inline bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/// Python's `str.isspace` (what Jinja's `trim` strips in chat templates).
inline bool is_python_space(char32_t c) {
  return is_unicode_whitespace(c) || (c >= 0x1C && c <= 0x1F);
}

/// GPT-2's bytes_to_unicode: the code point that byte-level BPE writes for each byte.
/// Printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards.
inline const std::array<char32_t, 256>& byte_to_codepoint() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

/// Inverse of byte_to_codepoint: the byte for a code point below 324, or -1.
inline int codepoint_to_byte(char32_t cp) {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t{};
    t.fill(-1);
    const auto& fwd = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) t[fwd[static_cast<std::size_t>(b)]] = b;
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

}  // namespace detail
}  // namespace steer
