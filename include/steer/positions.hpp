// Positions: which tokens of each sequence a hook acts on (all, last, explicit indices, a
// range, from k on, prompt only, generated only), counted in real tokens (see docs/positions.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "steer/call_layout.hpp"
#include "steer/error.hpp"

namespace steer {

/// A selection of token positions, shared by every hook class. Position p of a sequence is its
/// (p+1)-th real token: left padding never shifts it, and a decode step through the KV cache
/// sees its token at the same position as full recompute does.
/// "last" selects every token at the moment it is the newest one: the last prompt token, then
/// each generated token. A cached call sees it as its last column (the last prompt token at
/// prefill, the new token of a decode step); full recompute selects the last prompt token and
/// every token after it (with no prompt length given, the whole sequence is prompt, so only
/// its final token). Generation steers the same tokens either way.
/// "prompt" / "generated" split at the prompt length of the call (Model::logits' prompt_length
/// argument, or KvCache::prompt_length, which the prefill sets).
/// "last_prompt(n)" selects the last n tokens of each prompt (where Arditi et al. read the
/// refusal direction: the tokens after the instruction, e.g. the chat template's assistant header).
/// Every selection has a spec string (Positions::parse, to_string), for files and the command line:
///   all | last | prompt | generated | K: (from K) | A:B (A to B-1) | -N: (last N prompt tokens)
///   | -N (the N-th prompt token from the end, -1 the last) | I,J,... (explicit)
/// Example: `Positions::range(2, 5)` (positions 2, 3, 4), `Positions::from(10)`,
/// `Positions::at({0, 3})`, `Positions::last()`, `Positions::parse("-5:")`.
class Positions {
 public:
  enum class Kind { all, last, at, range, from, prompt, generated, last_prompt, prompt_from_end };

  static Positions all() { return Positions(Kind::all); }
  static Positions last() { return Positions(Kind::last); }
  /// Explicit positions (each >= 0).
  static Positions at(std::vector<int64_t> indices) {
    STEER_CHECK(!indices.empty(), "Positions::at: no positions given");
    for (auto i : indices) {
      STEER_CHECK(i >= 0, "Positions::at: position ", i,
                  " is negative; positions count real tokens from 0 (use Positions::last() for "
                  "the last token)");
    }
    Positions p(Kind::at);
    p.indices_ = std::move(indices);
    return p;
  }
  /// Positions begin .. end-1 (end exclusive).
  static Positions range(int64_t begin, int64_t end) {
    STEER_CHECK(begin >= 0 && begin < end, "Positions::range: expected 0 <= begin < end, got [",
                begin, ", ", end, ")");
    Positions p(Kind::range);
    p.begin_ = begin;
    p.end_ = end;
    return p;
  }
  /// Positions k, k+1, ... to the end of each sequence.
  static Positions from(int64_t k) {
    STEER_CHECK(k >= 0, "Positions::from: expected k >= 0, got ", k);
    Positions p(Kind::from);
    p.begin_ = k;
    return p;
  }
  /// The prompt's tokens only.
  static Positions prompt() { return Positions(Kind::prompt); }
  /// Generated tokens only (those after the prompt).
  static Positions generated() { return Positions(Kind::generated); }
  /// The last n tokens of each prompt (the whole prompt when it is shorter).
  static Positions last_prompt(int64_t n) {
    STEER_CHECK(n >= 1, "Positions::last_prompt: expected n >= 1, got ", n);
    Positions p(Kind::last_prompt);
    p.begin_ = n;
    return p;
  }
  /// The n-th prompt token counted from the end of each prompt: 1 is the last prompt token, 3
  /// the third from last (Python's index -3; where Arditi et al. name a candidate position).
  /// Selects nothing in a prompt shorter than n.
  static Positions prompt_from_end(int64_t n) {
    STEER_CHECK(n >= 1, "Positions::prompt_from_end: expected n >= 1 (1 = the last prompt "
                "token), got ", n);
    Positions p(Kind::prompt_from_end);
    p.begin_ = n;
    return p;
  }
  /// Parses a spec string (see the class comment); throws steer::Error naming the forms.
  static Positions parse(const std::string& spec);

  Kind kind() const { return kind_; }
  /// The first position this selection can select when it names one (at, range, from);
  /// nullopt for all, last, prompt, generated and last_prompt, which follow each sequence.
  std::optional<int64_t> first() const {
    switch (kind_) {
      case Kind::at: return *std::min_element(indices_.begin(), indices_.end());
      case Kind::range:
      case Kind::from: return begin_;
      default: return std::nullopt;
    }
  }
  /// The spec string: Positions::parse(p.to_string()) selects what p selects.
  std::string to_string() const {
    switch (kind_) {
      case Kind::all: return "all";
      case Kind::last: return "last";
      case Kind::prompt: return "prompt";
      case Kind::generated: return "generated";
      case Kind::from: return detail::concat(begin_, ":");
      case Kind::range: return detail::concat(begin_, ":", end_);
      case Kind::last_prompt: return detail::concat("-", begin_, ":");
      case Kind::prompt_from_end: return detail::concat("-", begin_);
      case Kind::at: {
        std::string s;
        for (size_t i = 0; i < indices_.size(); ++i) s += (i ? "," : "") + std::to_string(indices_[i]);
        return s;
      }
    }
    return "?";
  }

  /// [batch, tokens] bool on the mask's device: the selected tokens of this call. Returns an
  /// undefined tensor when every token of the call is selected (no padding, Kind::all), so
  /// callers can skip masking. `who` names the hook in errors.
  /// Throws when, in full recompute, explicit positions lie beyond the longest sequence.
  torch::Tensor select(const CallLayout& layout, const std::string& who) const {
    const auto t = layout.tokens();
    switch (kind_) {
      case Kind::all:
        if (!layout.padded()) return {};
        return layout.positions() >= 0;
      case Kind::last: {
        if (layout.full_sequence()) {
          return layout.positions() >= (layout.prompt_tokens() - 1).unsqueeze(1);
        }
        // Left padding: the last column is a real token of every sequence.
        const auto columns = torch::arange(
            t, torch::TensorOptions().dtype(torch::kInt64).device(layout.attention_mask().device()));
        return (columns == t - 1).unsqueeze(0).expand({layout.batch(), t});
      }
      case Kind::at: {
        check_inside(layout, who, *std::min_element(indices_.begin(), indices_.end()));
        const auto& pos = layout.positions();
        auto selected = torch::zeros_like(pos, torch::kBool);
        for (auto i : indices_) selected |= pos == i;  // scalar compares: no host copy
        return selected;
      }
      case Kind::range:
        check_inside(layout, who, begin_);
        return (layout.positions() >= begin_) & (layout.positions() < end_);
      case Kind::from:
        check_inside(layout, who, begin_);
        return layout.positions() >= begin_;
      case Kind::prompt:
        return (layout.positions() >= 0) &
               (layout.positions() < layout.prompt_tokens().unsqueeze(1));
      case Kind::generated:
        return layout.positions() >= layout.prompt_tokens().unsqueeze(1);
      case Kind::last_prompt: {
        const auto end = layout.prompt_tokens().unsqueeze(1);
        return (layout.positions() >= 0) & (layout.positions() >= end - begin_) &
               (layout.positions() < end);
      }
      case Kind::prompt_from_end:
        return (layout.positions() >= 0) &
               (layout.positions() == layout.prompt_tokens().unsqueeze(1) - begin_);
    }
    return {};
  }

 private:
  explicit Positions(Kind kind) : kind_(kind) {}

  void check_inside(const CallLayout& layout, const std::string& who, int64_t first) const {
    // Only full recompute sees whole sequences; a cached call may select tokens still to come.
    if (!layout.full_sequence()) return;
    STEER_CHECK(first < layout.longest(), who, ": position ", first,
                " is outside the sequence: the longest sequence of this call has ",
                layout.longest(), " tokens (positions 0 to ", layout.longest() - 1,
                ", counted without padding) (hint: positions count real tokens from 0; "
                "Positions::last() selects the last one)");
  }

  Kind kind_;
  std::vector<int64_t> indices_;
  int64_t begin_ = 0;  // also n of last_prompt and prompt_from_end
  int64_t end_ = 0;
};

namespace detail {
/// A non-negative decimal integer, or nullopt.
inline std::optional<int64_t> parse_count(const std::string& text) {
  if (text.empty() || text.size() > 12 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(text);
}
}  // namespace detail

inline Positions Positions::parse(const std::string& spec) {
  const auto fail = [&](const std::string& why) {
    return Error(detail::concat("Positions::parse: '", spec, "' ", why, "; expected all, last, "
                                "prompt, generated, K: (from K), A:B (A to B-1), -N: (last N "
                                "prompt tokens), -N (the N-th prompt token from the end) or "
                                "I,J,... (explicit positions, from 0)"));
  };
  if (spec == "all") return all();
  if (spec == "last") return last();
  if (spec == "prompt") return prompt();
  if (spec == "generated") return generated();
  const auto colon = spec.find(':');
  if (colon != std::string::npos) {
    const auto head = spec.substr(0, colon);
    const auto tail = spec.substr(colon + 1);
    if (!head.empty() && head[0] == '-') {
      const auto n = detail::parse_count(head.substr(1));
      if (!n || !tail.empty() || *n == 0) throw fail("is not a valid -N: (N >= 1)");
      return last_prompt(*n);
    }
    const auto begin = detail::parse_count(head);
    if (!begin) throw fail("has no valid start before ':'");
    if (tail.empty()) return from(*begin);
    const auto end = detail::parse_count(tail);
    if (!end || *end <= *begin) throw fail("is not a valid range A:B with A < B");
    return range(*begin, *end);
  }
  if (!spec.empty() && spec[0] == '-') {
    const auto n = detail::parse_count(spec.substr(1));
    if (!n || *n == 0) throw fail("is not a valid -N (N >= 1; -1 is the last prompt token)");
    return prompt_from_end(*n);
  }
  std::vector<int64_t> indices;
  size_t start = 0;
  while (start <= spec.size()) {
    const auto comma = std::min(spec.find(',', start), spec.size());
    const auto index = detail::parse_count(spec.substr(start, comma - start));
    if (!index) throw fail("is not a known form");
    indices.push_back(*index);
    start = comma + 1;
  }
  return at(std::move(indices));
}

}  // namespace steer
