// Text generation: batched, left-padded prompts, greedy or sampled (temperature, top-k,
// top-p, seed), stop at end-of-sequence tokens or stop strings, streaming callback; through
// the model's KV cache (prefill once, then one position per step) or by full recompute.
// Model::generate (model.hpp) runs the loop defined here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"
#include "steer/model_config.hpp"

namespace steer {

/// One generated token, as the streaming callback receives it.
struct TokenEvent {
  int64_t sequence = 0;  ///< index of the prompt in the batch
  int64_t step = 0;      ///< 0 for the first generated token
  int64_t token = 0;     ///< its id
  std::string text;      ///< text that became complete with this token (may be "" mid-character)
};

/// How to generate. Greedy by default.
/// Example: `GenerateOptions().max_new_tokens(64).temperature(0.7).top_p(0.9).seed(1)`
struct GenerateOptions {
  /// Tokens to generate at most per prompt (> 0).
  TORCH_ARG(int64_t, max_new_tokens) = 32;
  /// 0 = greedy (argmax); > 0 divides the logits before sampling.
  TORCH_ARG(double, temperature) = 0.0;
  /// Sample among the k most likely tokens; 0 = no limit.
  TORCH_ARG(int64_t, top_k) = 0;
  /// Sample from the smallest set of tokens whose probability reaches top_p, in (0, 1].
  TORCH_ARG(double, top_p) = 1.0;
  /// Seed of the sampler (temperature > 0): the same seed, prompts and options give the same
  /// text. Unset: 0.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// One seed per prompt (temperature > 0; instead of `seed`): prompt b is sampled from its own
  /// generator seeded seeds[b], so its tokens do not depend on the other prompts of the batch,
  /// and a batch generates what each prompt generates alone with `seed(seeds[b])`.
  /// With `seed`, one generator draws for the whole batch in turn (a prompt's tokens then
  /// depend on its place in the batch). Example: `GenerateOptions().temperature(0.7).seeds({5, 6})`
  TORCH_ARG(std::vector<uint64_t>, seeds) = {};
  /// Stop a sequence at one of the model's end-of-sequence ids (steer.json `eos_ids`).
  TORCH_ARG(bool, stop_at_eos) = true;
  /// Further token ids that end a sequence (not part of the output).
  TORCH_ARG(std::vector<int64_t>, stop_tokens) = {};
  /// Strings that end a sequence; the text is cut before the first one. Needs the model's
  /// tokenizer.
  TORCH_ARG(std::vector<std::string>, stop_strings) = {};
  /// true: prefill once, then one position per step through the KV cache; false: recompute
  /// the whole sequence every step (for checks and comparisons). A model without a KV cache
  /// (traced export, module without steer.json: Model::has_kv_cache()) always recomputes.
  TORCH_ARG(bool, use_cache) = true;
  /// Called for every generated token, in order, sequence by sequence within a step.
  TORCH_ARG(std::function<void(const TokenEvent&)>, on_token) = nullptr;
};

/// What generation produced for one prompt.
struct Generation {
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> ids;  ///< generated ids, without the stop token
  std::string text;          ///< decoded `ids`, cut before a stop string ("" without a tokenizer)
  std::string stop_reason;   ///< "eos", "stop_token", "stop_string" or "max_new_tokens"
};

/// Token id lists of different lengths as one left-padded batch: ids [B, T] and an attention
/// mask with 0 over the padding. Example: `auto [ids, mask] = left_pad({{1, 2, 3}, {4}}, 0);`
inline std::pair<torch::Tensor, torch::Tensor> left_pad(
    const std::vector<std::vector<int64_t>>& lists, int64_t pad_id) {
  STEER_CHECK(!lists.empty(), "left_pad: the batch is empty");
  size_t longest = 0;
  for (size_t i = 0; i < lists.size(); ++i) {
    STEER_CHECK(!lists[i].empty(), "left_pad: sequence ", i, " of the batch has no token");
    longest = std::max(longest, lists[i].size());
  }
  const auto batch = static_cast<int64_t>(lists.size());
  auto ids = torch::full({batch, static_cast<int64_t>(longest)}, pad_id, torch::kInt64);
  auto mask = torch::zeros({batch, static_cast<int64_t>(longest)}, torch::kInt64);
  for (int64_t b = 0; b < batch; ++b) {
    const auto& list = lists[b];
    const auto offset = static_cast<int64_t>(longest - list.size());
    ids[b].slice(0, offset).copy_(torch::tensor(list, torch::kInt64));
    mask[b].slice(0, offset).fill_(1);
  }
  return {ids, mask};
}

/// Token id lists of equal length as one [B, T] tensor; a ragged batch is an error naming the
/// first sequence whose length differs (use left_pad for ragged batches).
inline torch::Tensor to_batch(const std::vector<std::vector<int64_t>>& lists) {
  STEER_CHECK(!lists.empty(), "to_batch: the batch is empty");
  for (size_t i = 1; i < lists.size(); ++i) {
    STEER_CHECK(lists[i].size() == lists[0].size(), "to_batch: ragged batch: sequence ", i,
                " has ", lists[i].size(), " tokens but sequence 0 has ", lists[0].size(),
                " (hint: left_pad() pads a ragged batch and gives its attention mask)");
  }
  STEER_CHECK(!lists[0].empty(), "to_batch: the sequences have no token");
  auto out = torch::empty({static_cast<int64_t>(lists.size()), static_cast<int64_t>(lists[0].size())},
                          torch::kInt64);
  for (size_t i = 0; i < lists.size(); ++i) out[i].copy_(torch::tensor(lists[i], torch::kInt64));
  return out;
}

namespace detail {

inline void check_generate_options(const GenerateOptions& o) {
  STEER_CHECK(o.max_new_tokens() > 0, "generate: max_new_tokens must be > 0, got ",
              o.max_new_tokens());
  STEER_CHECK(o.temperature() >= 0.0 && std::isfinite(o.temperature()),
              "generate: temperature must be >= 0 (0 = greedy), got ", o.temperature());
  STEER_CHECK(o.top_k() >= 0, "generate: top_k must be >= 0 (0 = no limit), got ", o.top_k());
  STEER_CHECK(o.top_p() > 0.0 && o.top_p() <= 1.0, "generate: top_p must be in (0, 1], got ",
              o.top_p());
  // Greedy decoding takes the argmax: a sampling option given with it would be ignored.
  if (o.temperature() == 0.0) {
    const char* given = o.top_k() != 0 ? "top_k" : o.top_p() != 1.0 ? "top_p"
                        : o.seed().has_value() ? "seed" : !o.seeds().empty() ? "seeds" : nullptr;
    STEER_CHECK(given == nullptr, "generate: ", given, " is set but temperature is 0 (greedy "
                "decoding ignores it; hint: set temperature > 0 to sample, e.g. 0.7)");
  }
  STEER_CHECK(!o.seed().has_value() || o.seeds().empty(), "generate: both seed and seeds are "
              "set; give seed (one generator for the batch) or seeds (one per prompt)");
  for (const auto& s : o.stop_strings()) {
    STEER_CHECK(!s.empty(), "generate: stop_strings must not contain an empty string");
  }
}

/// Next token of each row of `logits` [B, vocab] (float32, CPU) under the options.
inline torch::Tensor choose_tokens(torch::Tensor logits, const GenerateOptions& o,
                                   torch::Generator& generator) {
  if (o.temperature() == 0.0) return logits.argmax(-1);
  logits = logits / o.temperature();
  if (o.top_k() > 0 && o.top_k() < logits.size(-1)) {
    const auto kth = std::get<0>(logits.topk(o.top_k(), -1)).select(-1, o.top_k() - 1).unsqueeze(-1);
    logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
  }
  if (o.top_p() < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    const auto cumulative = sorted.softmax(-1).cumsum(-1);
    // Drop a token when the tokens before it already reach top_p (the first always stays).
    auto drop = (cumulative - sorted.softmax(-1)) >= o.top_p();
    sorted = sorted.masked_fill(drop, -std::numeric_limits<float>::infinity());
    logits = torch::full_like(logits, -std::numeric_limits<float>::infinity())
                 .scatter(-1, order, sorted);
  }
  return torch::multinomial(logits.softmax(-1), 1, /*replacement=*/false, generator).squeeze(-1);
}

/// Length of the longest prefix of `text` that ends on a complete character: a trailing
/// U+FFFD from an unfinished multi-byte token is held back until the next token completes it.
inline size_t complete_text_length(const std::string& text) {
  static const std::string replacement = "\xEF\xBF\xBD";
  if (text.size() >= 3 && text.compare(text.size() - 3, 3, replacement) == 0) return text.size() - 3;
  return text.size();
}

}  // namespace detail

namespace detail {

/// The generation loop over any model type with steer::Model's interface (tokenizer(),
/// has_tokenizer(), has_kv_cache(), config(), logits, make_cache, logits_cached).
template <typename ModelT>
std::vector<Generation> generate_batch(const ModelT& model,
                                       const std::vector<std::vector<int64_t>>& prompts,
                                       const GenerateOptions& options) {
  check_generate_options(options);
  STEER_CHECK(!prompts.empty(), "generate: no prompt given");
  for (size_t i = 0; i < prompts.size(); ++i) {
    STEER_CHECK(!prompts[i].empty(), "generate: prompt ", i, " has no token");
  }
  STEER_CHECK(options.stop_strings().empty() || model.has_tokenizer(),
              "generate: stop_strings need the model's tokenizer, but the model was loaded "
              "without one (hint: stop_tokens work on ids)");
  const auto& config = model.config();
  const int64_t pad_id = config.padding_id();
  auto padded = left_pad(prompts, pad_id);
  torch::Tensor ids = padded.first;
  torch::Tensor mask = padded.second;
  const auto batch = ids.size(0);
  const auto prompt_length = ids.size(1);
  const auto max_new = options.max_new_tokens();

  std::vector<int64_t> stop_ids = options.stop_tokens();
  const auto n_stop_tokens = stop_ids.size();
  if (options.stop_at_eos()) {
    stop_ids.insert(stop_ids.end(), config.eos_ids.begin(), config.eos_ids.end());
  }
  std::vector<Generation> out(batch);
  std::vector<bool> done(batch, false);
  std::vector<size_t> streamed(batch, 0);
  for (int64_t b = 0; b < batch; ++b) out[b].prompt_ids = prompts[b];
  // One generator for the batch, or one per prompt (GenerateOptions::seeds).
  const auto& seeds = options.seeds();
  STEER_CHECK(seeds.empty() || static_cast<int64_t>(seeds.size()) == batch, "generate: seeds "
              "has ", seeds.size(), " seeds for a batch of ", batch, " prompts; expected one "
              "per prompt");
  std::vector<torch::Generator> generators;
  for (const auto seed : seeds) generators.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  if (seeds.empty()) {
    generators.push_back(at::make_generator<at::CPUGeneratorImpl>(options.seed().value_or(0)));
  }
  const auto choose = [&](const torch::Tensor& logits) {
    if (generators.size() == 1) return choose_tokens(logits, options, generators.front());
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < batch; ++b) {
      rows.push_back(choose_tokens(logits.narrow(0, b, 1), options, generators[b]));
    }
    return torch::cat(rows);
  };

  const bool use_cache = options.use_cache() && model.has_kv_cache();
  decltype(model.make_cache(1, 1)) cache{};  // steer::KvCache, declared in model.hpp
  if (use_cache) cache = model.make_cache(batch, prompt_length + max_new);
  // Logits of the last position of every sequence after `new_ids` joined the batch.
  const auto last_logits = [&](const torch::Tensor& new_ids) {
    const auto all = use_cache ? model.logits_cached(new_ids, mask, cache)
                               : model.logits(ids, mask, prompt_length);
    return all.select(1, all.size(1) - 1).to(torch::kCPU, torch::kFloat32);
  };
  torch::Tensor next_logits = last_logits(ids);

  const auto finish = [&](int64_t b, const char* reason) {
    done[b] = true;
    out[b].stop_reason = reason;
  };
  for (int64_t step = 0; step < max_new; ++step) {
    const torch::Tensor chosen = choose(next_logits);
    const auto* chosen_ids = chosen.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      const auto token = chosen_ids[b];
      const auto stop = std::find(stop_ids.begin(), stop_ids.end(), token);
      if (stop != stop_ids.end()) {
        const bool own = static_cast<size_t>(stop - stop_ids.begin()) < n_stop_tokens;
        finish(b, own ? "stop_token" : "eos");
        continue;
      }
      auto& g = out[b];
      g.ids.push_back(token);
      if (model.has_tokenizer()) g.text = model.tokenizer().decode(g.ids);
      for (const auto& s : options.stop_strings()) {
        const auto at = g.text.find(s);
        if (at != std::string::npos) {
          g.text.resize(at);
          finish(b, "stop_string");
        }
      }
      if (options.on_token()) {
        const auto complete = done[b] ? g.text.size() : complete_text_length(g.text);
        TokenEvent event{b, step, token, ""};
        if (complete > streamed[b]) {
          event.text = g.text.substr(streamed[b], complete - streamed[b]);
          streamed[b] = complete;
        }
        options.on_token()(event);
      }
      if (!done[b] && step + 1 == max_new) finish(b, "max_new_tokens");
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    // Finished sequences keep receiving a token (their output is no longer read), so the
    // batch stays rectangular.
    const auto new_ids = chosen.unsqueeze(1);
    ids = torch::cat({ids, new_ids}, 1);
    mask = torch::cat({mask, torch::ones({batch, 1}, torch::kInt64)}, 1);
    next_logits = last_logits(new_ids);
  }
  return out;
}

}  // namespace detail

}  // namespace steer
