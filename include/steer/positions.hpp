// Positions: which tokens of each sequence a hook acts on (all, last, explicit indices, a
// range, from k on, prompt only, generated only), counted in real tokens (see docs/positions.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

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
/// Example: `Positions::range(2, 5)` (positions 2, 3, 4), `Positions::from(10)`,
/// `Positions::at({0, 3})`, `Positions::last()`.
class Positions {
 public:
  enum class Kind { all, last, at, range, from, prompt, generated };

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

  Kind kind() const { return kind_; }
  std::string to_string() const {
    switch (kind_) {
      case Kind::all: return "all";
      case Kind::last: return "last";
      case Kind::prompt: return "prompt";
      case Kind::generated: return "generated";
      case Kind::from: return detail::concat("from ", begin_);
      case Kind::range: return detail::concat("[", begin_, ", ", end_, ")");
      case Kind::at: {
        std::string s = "at {";
        for (size_t i = 0; i < indices_.size(); ++i) s += (i ? ", " : "") + std::to_string(indices_[i]);
        return s + "}";
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
  int64_t begin_ = 0;
  int64_t end_ = 0;
};

}  // namespace steer
