// Helpers for tests that run models (they link LibTorch): tensor comparison, tiny model
// directories, left-padded batches. Torch-free helpers are in test_support.hpp.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <steer/model.hpp>
#include <steer/positions.hpp>

#include "test_support.hpp"

namespace steer::test {

/// max |a - b| in float64 on the CPU; expects equal shapes.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64))
      .abs()
      .max()
      .item<double>();
}

/// The tiny random model of a family ("llama" or "gpt2") made by the tiny_models fixture.
inline std::string tiny(const std::string& family) { return fixture_dir() + "/tiny-" + family; }

/// Random sequences of different lengths in one left-padded batch.
struct PaddedBatch {
  torch::Tensor ids, mask;
  std::vector<torch::Tensor> alone;  ///< each sequence without padding, [1, n]
};

inline PaddedBatch padded_batch(const steer::Model& model, std::vector<int64_t> lengths, int seed) {
  torch::manual_seed(seed);
  const auto longest = *std::max_element(lengths.begin(), lengths.end());
  PaddedBatch batch;
  batch.ids = torch::zeros({static_cast<int64_t>(lengths.size()), longest}, torch::kInt64);
  batch.mask = torch::zeros_like(batch.ids);
  for (size_t i = 0; i < lengths.size(); ++i) {
    const auto seq = torch::randint(0, model.vocab_size(), {1, lengths[i]}, torch::kInt64);
    batch.ids[i].slice(0, longest - lengths[i]).copy_(seq[0]);
    batch.mask[i].slice(0, longest - lengths[i]).fill_(1);
    batch.alone.push_back(seq);
  }
  return batch;
}

/// One position selection of each kind, with its name, for tests that cover them all.
inline std::vector<std::pair<std::string, Positions>> all_selections() {
  return {{"all", Positions::all()},         {"last", Positions::last()},
          {"at", Positions::at({0, 2, 5})},  {"range", Positions::range(1, 3)},
          {"from", Positions::from(2)},      {"prompt", Positions::prompt()},
          {"generated", Positions::generated()}, {"last_prompt", Positions::last_prompt(2)}};
}

/// Logits of `ids` through the KV cache: a prefill of the first `prompt` columns, then one
/// token per step (as generation runs), concatenated to [batch, tokens, vocab].
inline torch::Tensor cached_logits(const steer::Model& model, const torch::Tensor& ids,
                                   const torch::Tensor& mask, int64_t prompt) {
  auto cache = model.make_cache(ids.size(0), ids.size(1));
  std::vector<torch::Tensor> pieces = {
      model.logits_cached(ids.slice(1, 0, prompt), mask.slice(1, 0, prompt), cache)};
  for (int64_t i = prompt; i < ids.size(1); ++i) {
    pieces.push_back(model.logits_cached(ids.slice(1, i, i + 1), mask.slice(1, 0, i + 1), cache));
  }
  EXPECT_EQ(cache.length, ids.size(1));
  return torch::cat(pieces, 1);
}

}  // namespace steer::test
