// Helpers for tests of orthogonalize: the check that a model's orthogonalized weights compute
// what hook-based ablation (steer::ablate_direction) computes on the original, for any family.
#pragma once

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/hooks.hpp>
#include <steer/orthogonalize.hpp>

#include "model_support.hpp"

namespace steer::test {

/// Max |a - b| over the real (unpadded) tokens of [batch, tokens, vocab] logits, relative to the
/// largest |b| there (the logit scale, as kLogitTolerance in model_support.hpp measures it).
inline double max_diff_on_tokens(const torch::Tensor& a, const torch::Tensor& b,
                                 const torch::Tensor& mask) {
  const auto real = mask.to(torch::kBool);
  const auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  return (x - y).abs().amax(-1).masked_select(real).max().item<double>() /
         y.abs().amax(-1).masked_select(real).max().item<double>();
}

// Orthogonalized weights against hooks: W - r (r^T W) is rounded once to float32 per weight where
// the hooks subtract (x.r) r from each activation at run time, so the two differ by float32 noise
// of the kind kLogitTolerance bounds (another order of the same sums, relative u per weight).
// Without the ablation the logits move by more than 10x that bound.
//
// The residual stream of the edited model has no component along the direction: what remains
// of |x.r| / |x| is rounding of the float32 sums that make x, a few u * sqrt(d_model) (u = 2^-24,
// d_model <= 64: ~1e-6); 1e-5 leaves 10x. A writer whose output passes a norm before the
// residual add (Gemma 2/3's post-norms) but were edited along r itself would leave ~0.1.
constexpr double kResidualAlongDirection = 1e-5;

/// Orthogonalizes `model_dir` along a seeded random direction into `out_dir` and compares the
/// new model's logits with hook-based ablation on the original, full recompute and through the
/// KV cache; checks the edit's record in steer.json and that no resid_post of the edited model
/// carries the direction.
inline void expect_orthogonalized_equals_ablation(const std::string& model_dir,
                                                  const std::string& out_dir) {
  namespace fs = std::filesystem;
  const auto name = fs::path(model_dir).filename().string();
  const auto model = steer::Model::load(model_dir);
  torch::manual_seed(7);
  const auto direction = torch::randn({model.d_model()});
  const auto edit = steer::orthogonalize(model_dir, direction, out_dir,
                                         steer::OrthogonalizeOptions().overwrite(true).metadata(
                                             {{"test", name}}));
  EXPECT_EQ(edit.untied_unembedding, model.config().tied_embeddings);
  // The embeddings, and each layer's two writers with their biases (the family's row).
  const auto& arch = model.config().architecture();
  int64_t expected_weights = arch.positions.empty() ? 1 : 2;
  for (int64_t i = 0; i < model.n_layers(); ++i) {
    for (const auto& path : {model.layer(i).attn + "." + arch.attn_writer.module,
                             model.layer(i).mlp + "." + arch.mlp_writer.module}) {
      const auto linear = model.submodule(path);
      expected_weights += linear.hasattr("bias") && linear.attr("bias").isTensor() ? 2 : 1;
    }
  }
  EXPECT_EQ(static_cast<int64_t>(edit.weights.size()), expected_weights);

  const auto edited = steer::Model::load(out_dir);
  EXPECT_FALSE(edited.config().tied_embeddings);
  std::ifstream in(fs::path(out_dir) / "steer.json");
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(config["family"], model.config().family);
  ASSERT_TRUE(config.contains("edits"));
  EXPECT_EQ(config["edits"].back()["edit"], "orthogonalize");
  EXPECT_EQ(config["edits"].back()["metadata"]["test"], name);
  EXPECT_EQ(config["edits"].back()["unit_direction"].size(), static_cast<size_t>(model.d_model()));
  // The edited embedding has no component along the direction.
  const auto r = direction / direction.norm();
  const auto embedding = edited.submodule(edited.config().embedding_path).attr("weight").toTensor();
  // Relative to each row: what remains is rounding, at most d_model * u = 3.8e-6 of |row| for
  // d_model <= 64 (u = 2^-24); a row left alone keeps ~1/sqrt(d_model) = 0.12 of it.
  // (A padding row may be all zeros: its projection is 0.)
  const auto row_norms = embedding.norm(2, 1).clamp_min(1e-30);
  EXPECT_LE((embedding.matmul(r).abs() / row_norms).max().item<double>(), 1e-5);

  const auto batch = padded_batch(model, {7, 4, 9}, /*seed=*/3);
  {
    std::vector<steer::HookHandle<steer::Record>> records;
    for (int64_t i = 0; i < edited.n_layers(); ++i) {
      records.push_back(steer::hook(edited, steer::HookPoint(steer::Site::resid_post, i),
                                    steer::Record()));
    }
    edited.logits(batch.ids, batch.mask);
    double along = 0;
    for (auto& record : records) {
      for (int64_t b = 0; b < batch.ids.size(0); ++b) {
        const auto x = record->sequence(b).to(torch::kFloat64);
        along = std::max(along, (x.matmul(r.to(torch::kFloat64)).abs() / x.norm(2, -1))
                                    .max().item<double>());
      }
    }
    std::cout << name << ": max |resid_post . r| / |resid_post| orthogonalized: " << along << "\n";
    EXPECT_LE(along, kResidualAlongDirection);
  }
  auto ablation = steer::ablate_direction(model, direction);
  EXPECT_EQ(static_cast<int64_t>(ablation.size()), 3 * model.n_layers());
  const auto hooked = model.logits(batch.ids, batch.mask);
  const auto baked = edited.logits(batch.ids, batch.mask);
  const auto full = max_diff_on_tokens(hooked, baked, batch.mask);
  const auto cached = max_diff_on_tokens(steer::test::cached_logits(model, batch.ids, batch.mask, 6),
                                         steer::test::cached_logits(edited, batch.ids, batch.mask, 6),
                                         batch.mask);
  std::cout << name << ": max |logit difference| / max |logit| orthogonalized vs hooks: " << full
            << " (full recompute), " << cached << " (KV cache)\n";
  EXPECT_LE(full, kLogitTolerance);
  EXPECT_LE(cached, kLogitTolerance);
  // And the ablation does change the model (the test is not vacuous).
  ablation.enable(false);
  EXPECT_GT(max_diff_on_tokens(model.logits(batch.ids, batch.mask), baked, batch.mask),
            10 * kLogitTolerance);
}

}  // namespace steer::test
