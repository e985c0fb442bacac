// Scores: what steering experiments measure on a model's output distribution: next-token
// log-probabilities after prompts, the log-odds of a token set (e.g. refusal tokens), KL
// divergence between two runs, and perplexity on text. Hooks attached to the model apply.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"
#include "steer/generate.hpp"
#include "steer/model.hpp"

namespace steer {

/// [prompts, vocab] float32 CPU: log-softmax of the next-token logits after each prompt (the
/// logits at its last token), in batches of `batch_size` left-padded prompts.
/// Example: `auto lp = steer::next_token_log_probs(model, {ids_a, ids_b});`
inline torch::Tensor next_token_log_probs(const Model& model,
                                          const std::vector<std::vector<int64_t>>& prompts,
                                          int64_t batch_size = 8) {
  STEER_CHECK(!prompts.empty(), "next_token_log_probs: no prompts given");
  STEER_CHECK(batch_size >= 1, "next_token_log_probs: batch_size must be >= 1, got ", batch_size);
  const auto pad = model.config().padding_id();
  std::vector<torch::Tensor> parts;
  for (size_t start = 0; start < prompts.size(); start += batch_size) {
    const auto end = std::min(prompts.size(), start + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> batch(prompts.begin() + start, prompts.begin() + end);
    auto [ids, mask] = left_pad(batch, pad);
    auto logits = model.logits(ids, mask).select(1, -1);  // left padding: last column is real
    parts.push_back(torch::log_softmax(logits.to(torch::kCPU, torch::kFloat32), -1));
  }
  return torch::cat(parts, 0);
}

/// [prompts] float64: log(p / (1 - p)) with p the total probability of `token_ids` in each row
/// of `log_probs` [prompts, vocab] (Arditi et al.'s refusal score with the refusal tokens).
/// Example: `auto score = steer::token_set_log_odds(lp, {tok.token_to_id("I")});`
inline torch::Tensor token_set_log_odds(const torch::Tensor& log_probs,
                                        const std::vector<int64_t>& token_ids) {
  STEER_CHECK(log_probs.dim() == 2, "token_set_log_odds: expected log_probs [prompts, vocab], "
              "got shape ", log_probs.sizes());
  STEER_CHECK(!token_ids.empty(), "token_set_log_odds: no token ids given");
  for (auto id : token_ids) {
    STEER_CHECK(id >= 0 && id < log_probs.size(1), "token_set_log_odds: token id ", id,
                " is outside the vocabulary of ", log_probs.size(1), " tokens");
  }
  const auto index = torch::tensor(token_ids, torch::kInt64).to(log_probs.device());
  const auto lp = log_probs.to(torch::kFloat64).index_select(1, index);
  const auto log_p = torch::logsumexp(lp, 1);
  // log(1 - p) = log1p(-exp(log p)), clamped away from p = 1.
  const auto log_not_p = torch::log1p(-torch::exp(log_p).clamp_max(1.0 - 1e-12));
  return log_p - log_not_p;
}

/// [prompts] float64: KL(p || q) of each row, from log-probabilities [prompts, vocab]
/// (p: the reference run, q: the changed one).
inline torch::Tensor kl_divergence(const torch::Tensor& log_p, const torch::Tensor& log_q) {
  STEER_CHECK(log_p.dim() == 2 && log_p.sizes() == log_q.sizes(), "kl_divergence: expected two "
              "tensors [prompts, vocab] of one shape, got ", log_p.sizes(), " and ", log_q.sizes());
  const auto p = log_p.to(torch::kFloat64), q = log_q.to(torch::kFloat64);
  return (p.exp() * (p - q)).sum(1);
}

/// Perplexity of the model on `texts`: exp of the mean negative log-likelihood of every token
/// after the first of each text (tokens of all texts pooled), in batches of `batch_size`.
/// Example: `double ppl = steer::perplexity(model, {"The cat sat on the mat."});`
inline double perplexity(const Model& model, const std::vector<std::string>& texts,
                         int64_t batch_size = 8) {
  STEER_CHECK(!texts.empty(), "perplexity: no texts given");
  STEER_CHECK(batch_size >= 1, "perplexity: batch_size must be >= 1, got ", batch_size);
  const auto pad = model.config().padding_id();
  double nll = 0.0;
  int64_t count = 0;
  for (size_t start = 0; start < texts.size(); start += batch_size) {
    const auto end = std::min(texts.size(), start + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> batch;
    for (auto i = start; i < end; ++i) {
      batch.push_back(model.tokenizer().encode(texts[i]));
      STEER_CHECK(batch.back().size() >= 2, "perplexity: text ", i, " has ", batch.back().size(),
                  " tokens; at least 2 are needed (one to predict from, one to predict)");
    }
    auto [ids, mask] = left_pad(batch, pad);
    const auto logits = model.logits(ids, mask).to(torch::kCPU, torch::kFloat64);
    const auto lp = torch::log_softmax(logits.slice(1, 0, -1), -1);
    const auto target = ids.slice(1, 1).unsqueeze(-1);
    const auto token_lp = lp.gather(2, target).squeeze(-1);
    // A target counts when it and the token before it are real (not left padding).
    const auto real = (mask.slice(1, 1) * mask.slice(1, 0, -1)).to(torch::kFloat64);
    nll -= (token_lp * real).sum().item<double>();
    count += real.sum().item<int64_t>();
  }
  return std::exp(nll / static_cast<double>(count));
}

}  // namespace steer
