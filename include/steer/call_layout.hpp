// CallLayout: the token layout of one forward call (attention mask, tokens already in the KV
// cache, prompt length), from which hooks derive the absolute position of every token.
#pragma once

#include <cstdint>

#include <torch/types.h>
#include <torch/utils.h>

namespace steer {

/// The layout of the batch in one call of Model::logits or Model::logits_cached, as hooks see
/// it. The call's tokens are the last `tokens` columns of `attention_mask`
/// ([batch, past_length + tokens], 1 = token, 0 = left padding). Positions count the real
/// tokens of each sequence: position 0 is its first non-pad token, whatever the padding and
/// whether earlier tokens come from the KV cache. Derived tensors are computed on the mask's
/// device on first use and kept for the call (no host synchronisation).
class CallLayout {
 public:
  /// `prompt_columns`: how many leading columns of the mask are the prompt (-1: all of them).
  /// `longest`: real tokens of the longest sequence up to the end of this call (host value).
  /// `padded`: whether any mask entry is 0. `full_sequence`: true for full recompute.
  CallLayout(torch::Tensor attention_mask, int64_t past_length, int64_t tokens,
             int64_t prompt_columns, int64_t longest, bool padded, bool full_sequence)
      : mask_(std::move(attention_mask)),
        past_length_(past_length),
        tokens_(tokens),
        prompt_columns_(prompt_columns),
        longest_(longest),
        padded_(padded),
        full_sequence_(full_sequence) {}

  const torch::Tensor& attention_mask() const { return mask_; }
  int64_t batch() const { return mask_.size(0); }
  /// Tokens already in the KV cache before this call (0 for full recompute and prefill).
  int64_t past_length() const { return past_length_; }
  /// Tokens of this call (columns of the activations).
  int64_t tokens() const { return tokens_; }
  /// Leading mask columns that are the prompt; -1 when every column is prompt.
  int64_t prompt_columns() const { return prompt_columns_; }
  /// Real tokens of the longest sequence, up to and including this call.
  int64_t longest() const { return longest_; }
  bool padded() const { return padded_; }
  bool full_sequence() const { return full_sequence_; }

  /// [batch, tokens] int64: the absolute position of each token of this call; -1 at padding.
  const torch::Tensor& positions() const {
    if (!positions_.defined()) {
      const auto cumulative = mask_.cumsum(1) - 1;
      auto last = cumulative.slice(1, mask_.size(1) - tokens_);
      positions_ = last.masked_fill(mask_.slice(1, mask_.size(1) - tokens_) == 0, -1);
    }
    return positions_;
  }
  /// [batch] int64: left padding columns of each sequence (over the whole mask).
  torch::Tensor left_padding() const { return mask_.size(1) - mask_.sum(1); }
  /// [batch] int64: real prompt tokens of each sequence.
  const torch::Tensor& prompt_tokens() const {
    if (!prompt_tokens_.defined()) {
      const auto columns = prompt_columns_ < 0 ? mask_.size(1)
                                               : std::min(prompt_columns_, mask_.size(1));
      prompt_tokens_ = mask_.slice(1, 0, columns).sum(1);
    }
    return prompt_tokens_;
  }

 private:
  torch::Tensor mask_;
  int64_t past_length_;
  int64_t tokens_;
  int64_t prompt_columns_;
  int64_t longest_;
  bool padded_;
  bool full_sequence_;
  mutable torch::Tensor positions_;
  mutable torch::Tensor prompt_tokens_;
};

}  // namespace steer
