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

// Bounds of the tests that compare float32 forward passes of one model computed two ways
// (steer against transformers, batched against alone, traced against scripted, KV cache against
// full recompute, orthogonalized weights against hooks), as max over rows of |difference| / |row|
// for activations and max |difference| / max |reference logit| for logits. Derivation and
// measurements: docs/reliability.md, "Numeric tolerances". In short: a float32 dot product of
// length n summed in another order (another BLAS or ATen kernel, batch or padding) moves by about
// u * sqrt(n) of its size, u = 2^-24 = 6e-8: 2.3e-6 for the MLP's n = 1536; independent over 30
// layers that adds up to sqrt(30) * 2.3e-6 = 1.3e-5. Measured on the default model against
// transformers on the native (AVX2) kernels, with steer on ATen's scalar ("default") kernels:
// up to 5.6e-6 per activation row and 7.6e-6 of the largest logit (through the KV cache).
//
// Activations: 18x the measurement, 8x the estimate. A row of the layer after, of the position
// before, or the input of a norm instead of its output differs by 0.2 to 1.
constexpr double kActivationTolerance = 1e-4;
// Logits: 13x the measurement, 8x the estimate. (An absolute 1e-4, the bound before, is 3e-6 of
// the default model's logit scale of 35: ATen's default kernels exceed it: 2.3e-4.) A missing
// final norm, the logit row of another position or a vector added at the wrong site moves
// logits by 0.1 to 1 of their scale. Tests that check a change happened ask for 10x this bound.
constexpr double kLogitTolerance = 1e-4;

/// max |a - b| in float64 on the CPU; expects equal shapes.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64))
      .abs()
      .max()
      .item<double>();
}

/// max over rows of |a_i - b_i| / |b_i|, rows along the last dimension, in float64 on the CPU:
/// the error of each activation vector relative to its own size. Activations (resid_pre,
/// attn_out, ...) carry float32 rounding proportional to their norm, and a few dimensions of
/// the residual stream are far larger than the rest, so neither an absolute bound nor one
/// relative to the largest entry measures every row fairly.
inline double max_row_relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  const auto x = a.to(torch::kCPU, torch::kFloat64), y = b.to(torch::kCPU, torch::kFloat64);
  return ((x - y).norm(2, -1) / y.norm(2, -1)).max().item<double>();
}

/// max |a - b| / max |b|: the error of logits relative to their scale (see kLogitTolerance).
inline double max_logit_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return max_abs_diff(a, b) / b.to(torch::kCPU, torch::kFloat64).abs().max().item<double>();
}

/// The tiny random model of a family ("llama" or "gpt2") made by the tiny_models fixture.
inline std::string tiny(const std::string& family) { return fixture_dir() + "/tiny-" + family; }

/// [batch, length] token ids drawn uniformly from the model's vocabulary with seed `seed`.
inline torch::Tensor random_ids(const steer::Model& model, int64_t batch, int64_t length,
                                int seed) {
  torch::manual_seed(seed);
  return torch::randint(0, model.vocab_size(), {batch, length}, torch::kInt64);
}

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
