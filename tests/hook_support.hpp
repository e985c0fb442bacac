// Helpers for hook tests: checks of recorded activations and steered logits against a reference
// file of tests/fixtures/make_hook_fixtures.py's format (made with transformers and Python hooks).
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <steer/hooks.hpp>
#include <steer/io/safetensors.hpp>

#include "model_support.hpp"

namespace steer::test {

/// The hook sites of every layer, in TransformerLens order.
inline const char* const kSites[] = {"resid_pre", "resid_mid", "resid_post", "attn_out",
                                     "mlp_out"};

/// The sites a reference file records (its metadata "sites": "resid_pre,attn_out,..."; all of
/// kSites when it has none; a parallel-residual model has no resid_mid).
inline std::vector<std::string> reference_sites(const steer::io::Safetensors& ref) {
  const auto found = ref.metadata.find("sites");
  if (found == ref.metadata.end()) return {std::begin(kSites), std::end(kSites)};
  std::vector<std::string> out;
  std::stringstream list(found->second);
  for (std::string item; std::getline(list, item, ',');) out.push_back(item);
  return out;
}

/// The layers a reference file records (its metadata "layers": "0,1,2").
inline std::vector<int64_t> reference_layers(const steer::io::Safetensors& ref) {
  std::vector<int64_t> out;
  std::stringstream list(ref.metadata.at("layers"));
  for (std::string item; std::getline(list, item, ',');) out.push_back(std::stoll(item));
  return out;
}

/// Records every site of the reference layers in one forward pass and compares with the
/// reference (`record.<site>.<L>` within kActivationTolerance of each row, `logits` within
/// kLogitTolerance of their scale; model_support.hpp).
inline void expect_records_match(const std::string& model_dir, const std::string& ref_file) {
  const auto model = steer::Model::load(model_dir);
  const auto ref = steer::io::read_safetensors(ref_file);
  const auto& ids = ref.at("ids");
  std::vector<std::pair<std::string, steer::HookHandle<steer::Record>>> records;
  for (auto layer : reference_layers(ref)) {
    for (const auto& site : reference_sites(ref)) {
      const auto name = site + "." + std::to_string(layer);
      records.emplace_back(name, steer::hook(model, name, steer::Record()));
    }
  }
  const auto logits = model.logits(ids);
  EXPECT_LE(max_logit_diff(logits, ref.at("logits")), kLogitTolerance);
  double worst = 0;
  for (auto& [name, record] : records) {
    SCOPED_TRACE(name);
    ASSERT_EQ(record->calls(), 1);
    const auto expected = ref.at("record." + name);
    for (int64_t b = 0; b < ids.size(0); ++b) {
      const auto diff = max_row_relative_diff(record->sequence(b), expected[b]);
      EXPECT_LE(diff, kActivationTolerance) << name << " sequence " << b;
      worst = std::max(worst, diff);
    }
    EXPECT_TRUE(torch::equal(record->positions(0), torch::arange(ids.size(1))));
  }
  ::testing::Test::RecordProperty("max_row_relative_diff", std::to_string(worst));
  std::printf("[ record  ] %s: max row |difference| / |row| vs transformers %.3g\n",
              std::filesystem::path(ref_file).stem().string().c_str(), worst);
}

/// Add at each site of the reference's steer layer equals the reference's logits with the same
/// addition made by a Python hook (`add.<site>.<L>`), within kLogitTolerance of their scale.
inline void expect_add_matches(const std::string& model_dir, const std::string& ref_file) {
  const auto model = steer::Model::load(model_dir);
  const auto ref = steer::io::read_safetensors(ref_file);
  const auto layer = ref.metadata.at("steer_layer");
  const double c = std::stod(ref.metadata.at("coefficient"));
  for (const auto& site : reference_sites(ref)) {
    const auto name = site + "." + layer;
    SCOPED_TRACE(name);
    auto handle = steer::hook(model, name, steer::Add(ref.at("vector"), c));
    const auto diff = max_logit_diff(model.logits(ref.at("ids")), ref.at("add." + name));
    EXPECT_LE(diff, kLogitTolerance);
    std::printf("[ add     ] %s %s: max |logit difference| / max |logit| vs transformers %.3g\n",
                std::filesystem::path(ref_file).stem().string().c_str(), name.c_str(), diff);
  }
  EXPECT_LE(max_logit_diff(model.logits(ref.at("ids")), ref.at("logits")), kLogitTolerance);
}

}  // namespace steer::test
