// The two metrics of the activation_addition example, shared with its tests: a behaviour score
// (how much more likely the model's next word is positive than negative after neutral-ish
// prompts) and a fluency score (perplexity on neutral sentences). Hooks attached to the model
// apply, so both measure the steered model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <steer/steer.hpp>

namespace sentiment {

/// Prompts after which the next word may go either way.
inline const std::vector<std::string>& score_prompts() {
  static const std::vector<std::string> prompts = {
      "I think you are",
      "My neighbour is a",
      "When I see him, I feel",
      "Honestly, the movie was",
      "The way she talks to people is",
      "Working with that team was",
      "Our new teacher seems",
      "After the meeting, everyone felt",
  };
  return prompts;
}

/// Continuation words: the score compares the first token of each (with its leading space).
inline const std::vector<std::string>& positive_words() {
  static const std::vector<std::string> words = {" love",  " kind",      " happy", " wonderful",
                                                 " great", " good",      " nice",  " friendly",
                                                 " calm",  " beautiful"};
  return words;
}
inline const std::vector<std::string>& negative_words() {
  static const std::vector<std::string> words = {" hate",  " angry",     " sad",  " terrible",
                                                 " awful", " bad",       " mean", " hostile",
                                                 " upset", " ugly"};
  return words;
}

/// Neutral sentences for the fluency score (perplexity of the steered model on them).
inline const std::vector<std::string>& neutral_texts() { return steer::reference_texts(); }

/// The distinct first tokens of `words`.
inline std::vector<int64_t> first_tokens(const steer::Tokenizer& tokenizer,
                                         const std::vector<std::string>& words) {
  std::vector<int64_t> ids;
  for (const auto& word : words) {
    const auto tokens = tokenizer.encode(word, /*add_special_tokens=*/false);
    STEER_CHECK(!tokens.empty(), "first_tokens: the word '", word, "' has no token");
    bool seen = false;
    for (auto id : ids) seen = seen || id == tokens.front();
    if (!seen) ids.push_back(tokens.front());
  }
  return ids;
}

/// Mean over `log_probs` rows [prompts, vocab] of
/// log P(next token in positive) - log P(next token in negative).
inline double score_from_log_probs(const torch::Tensor& log_probs,
                                   const std::vector<int64_t>& positive,
                                   const std::vector<int64_t>& negative) {
  const auto lp = log_probs.to(torch::kFloat64);
  const auto set = [&](const std::vector<int64_t>& ids) {
    return torch::logsumexp(lp.index_select(1, torch::tensor(ids, torch::kInt64)), 1);
  };
  return (set(positive) - set(negative)).mean().item<double>();
}

/// The behaviour score of the model as it is now (with whatever hooks are attached): the mean
/// over score_prompts() of the next-token log-probability of the positive words minus that of
/// the negative words. 0: indifferent; > 0: positive words more likely.
inline double behaviour_score(const steer::Model& model) {
  const auto& tokenizer = model.tokenizer();
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& p : score_prompts()) prompts.push_back(tokenizer.encode(p));
  return score_from_log_probs(steer::next_token_log_probs(model, prompts),
                              first_tokens(tokenizer, positive_words()),
                              first_tokens(tokenizer, negative_words()));
}

/// The fluency score: perplexity of the model as it is now on neutral_texts().
inline double fluency_perplexity(const steer::Model& model) {
  return steer::perplexity(model, neutral_texts());
}

}  // namespace sentiment
