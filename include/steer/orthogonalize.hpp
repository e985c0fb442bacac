// Directional ablation of one direction from everything a model writes into its residual
// stream: as hooks on a loaded model (ablate_direction, in apply.hpp), or baked into the weights of a new
// model directory that needs no hooks at run time (orthogonalize). See docs/orthogonalize.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/arg.h>
#include <torch/script.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/apply.hpp"
#include "steer/architecture.hpp"
#include "steer/error.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"
#include "steer/steering_vector.hpp"

namespace steer {


/// Options of orthogonalize.
/// Example: `OrthogonalizeOptions().overwrite(true).metadata({{"layer", "12"}})`
struct OrthogonalizeOptions {
  /// Replace `out_dir` when it exists. Default: false (an existing out_dir is an error).
  TORCH_ARG(bool, overwrite) = false;
  /// Free-form notes recorded with the edit in the new steer.json (where the direction came
  /// from: layer, positions, prompts). Default: none.
  TORCH_ARG(StringMap, metadata) = {};
};

/// What orthogonalize wrote.
struct Orthogonalization {
  std::string directory;             ///< the new model directory
  std::vector<std::string> weights;  ///< parameters edited, e.g. "model.layers.3.mlp.down_proj.weight"
  /// The unembedding shared its weight with the embedding and now has its own, unedited copy.
  bool untied_unembedding = false;
};

namespace detail {

/// Projects r out of the d_model axis `axis` of parameter `name` of `owner` (in float64).
inline void project_out_parameter(const char* call, torch::jit::Module owner,
                                  const std::string& owner_path, const std::string& name,
                                  int64_t axis, const torch::Tensor& r,
                                  std::vector<std::string>& edited) {
  const auto full = owner_path + "." + name;
  STEER_CHECK(owner.hasattr(name) && owner.attr(name).isTensor(), call, ": module '",
              owner_path, "' has no tensor '", name, "'");
  auto w = owner.attr(name).toTensor();
  STEER_CHECK(axis < w.dim() && w.size(axis) == r.size(0), call, ": expected '", full,
              "' to have d_model=", r.size(0), " along dimension ", axis, ", got shape ",
              w.sizes(), " (hint: a model layout orthogonalize does not know?)");
  const auto w64 = w.to(torch::kFloat64);
  // Along the last axis: rows x -> x - (x.r) r. Along axis 0 of a matrix: W -> W - r (r^T W).
  const auto edited_w = axis == w.dim() - 1
                            ? w64 - torch::outer(w64.reshape({-1, r.size(0)}).matmul(r), r)
                                        .reshape(w64.sizes())
                            : w64 - torch::outer(r, r.matmul(w64));
  w.copy_(edited_w.to(w.scalar_type()));
  edited.push_back(full);
}

/// The bias of `owner`, when it has one (None for layers made with bias=False).
inline bool has_bias(const torch::jit::Module& owner) {
  return owner.hasattr("bias") && owner.attr("bias").isTensor();
}

}  // namespace detail

/// Writes a copy of the model directory `model_dir` to `out_dir` whose weights no longer write
/// `direction` into the residual stream: every embedding row e <- e - (e.r) r, and every
/// matrix that writes to the residual W <- W - r r^T W (with its bias), r = direction / |direction|.
/// Which matrices: the family's row of the architecture table (architecture.hpp): the token
/// embedding, a learned position embedding (GPT-2's wpe), and each attention's and MLP's
/// output projection (Llama: o_proj, down_proj; GPT-2: c_proj; GPT-NeoX: dense,
/// dense_4h_to_h); where a scaling norm follows them (Gemma 2, 3) along the direction scaled by
/// its weight, as ablate_direction does. A tied unembedding
/// gets its own unedited copy (steer.json then says tied_embeddings: false), so the model
/// computes exactly what ablate_direction's hooks compute on the original. The edit is recorded
/// in the new steer.json under "edits" (direction, weights, metadata); tokenizer.json is copied.
/// Throws steer::Error for a missing model directory, a direction of the wrong size, a zero or
/// non-finite direction, or an existing out_dir (unless overwrite). The directory is written
/// beside out_dir under another name first, then renamed: no half-written model is left at out_dir.
/// Example:
/// ```
/// steer::orthogonalize("models/smollm2-135m-instruct", refusal, "models/smollm2-abliterated");
/// auto edited = steer::Model::load("models/smollm2-abliterated");   // no hooks needed
/// ```
inline Orthogonalization orthogonalize(const std::string& model_dir,
                                       const torch::Tensor& direction, const std::string& out_dir,
                                       const OrthogonalizeOptions& options = {}) {
  namespace fs = std::filesystem;
  const char* call = "orthogonalize";
  STEER_CHECK(fs::is_directory(model_dir), call, ": model directory '", model_dir,
              "' does not exist (expected a directory with model.pt, tokenizer.json and "
              "steer.json, written by tools/export_model.py)");
  STEER_CHECK(!out_dir.empty(), call, ": out_dir is empty");
  STEER_CHECK(!fs::exists(out_dir) || !fs::equivalent(model_dir, out_dir), call, ": out_dir '",
              out_dir, "' is the model directory itself; write the edited model elsewhere");
  STEER_CHECK(options.overwrite() || !fs::exists(out_dir), call, ": '", out_dir,
              "' already exists (hint: choose a new directory, or pass "
              "OrthogonalizeOptions().overwrite(true) to replace it)");

  // The direction is checked against steer.json before the module is loaded.
  const auto name = fs::path(model_dir).lexically_normal().filename().string();
  const auto r = detail::unit_direction(
      call, direction, ModelConfig::from_file((fs::path(model_dir) / "steer.json").string()).d_model,
      name.empty() ? fs::path(model_dir).lexically_normal().parent_path().filename().string() : name);
  auto model = Model::load(model_dir, ModelOptions().instrument(false));
  const auto& c = model.config();

  torch::NoGradGuard no_grad;
  Orthogonalization out;
  out.directory = out_dir;
  // A tied unembedding keeps the original weight: it reads the residual stream, it does not
  // write to it, and hook-based ablation leaves it as it is.
  auto embedding = model.submodule(c.embedding_path);
  auto unembedding = model.submodule(c.unembedding_path);
  const auto e = embedding.attr("weight").toTensor();
  const auto u = unembedding.attr("weight").toTensor();
  if (e.data_ptr() == u.data_ptr()) {
    unembedding.setattr("weight", u.detach().clone());
    out.untied_unembedding = true;
  }

  const auto& arch = c.architecture();
  detail::project_out_parameter(call, embedding, c.embedding_path, "weight", /*axis=*/1, r,
                                out.weights);
  if (!arch.positions.empty()) {
    detail::project_out_parameter(call, model.submodule(arch.positions), arch.positions,
                                  "weight", /*axis=*/1, r, out.weights);
  }
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const auto& l = c.layers[i];
    for (const auto& [owner, writer] : {std::pair{l.attn, arch.attn_writer}, {l.mlp, arch.mlp_writer}}) {
      const auto path = owner + "." + writer.module;
      const auto d = detail::writer_direction(call, model, i, writer, r);
      auto linear = model.submodule(path);
      detail::project_out_parameter(call, linear, path, "weight", writer.axis, d, out.weights);
      if (detail::has_bias(linear)) {
        detail::project_out_parameter(call, linear, path, "bias", /*axis=*/0, d, out.weights);
      }
    }
  }

  // steer.json of the source, with the edit recorded.
  nlohmann::json config;
  {
    std::ifstream in(fs::path(model_dir) / "steer.json");
    config = nlohmann::json::parse(in);
  }
  if (out.untied_unembedding) config["tied_embeddings"] = false;
  nlohmann::json edit = {{"edit", "orthogonalize"},
                         {"source", fs::absolute(model_dir).lexically_normal().string()},
                         {"direction_norm", direction.detach().to(torch::kFloat64).norm().item<double>()},
                         {"unit_direction", std::vector<double>(r.data_ptr<double>(),
                                                                r.data_ptr<double>() + r.numel())},
                         {"weights", out.weights},
                         {"untied_unembedding", out.untied_unembedding},
                         {"metadata", options.metadata()}};
  if (!config.contains("edits") || !config["edits"].is_array()) config["edits"] = nlohmann::json::array();
  config["edits"].push_back(edit);

  // Write beside out_dir, then rename into place.
  const auto target = fs::path(out_dir);
  const auto staging = fs::path(out_dir + ".orthogonalize-partial");
  try {
    fs::remove_all(staging);
    fs::create_directories(staging);
    model.module().save((staging / c.module_file).string());
    fs::copy_file(fs::path(model_dir) / c.tokenizer_file, staging / c.tokenizer_file);
    std::ofstream json_out(staging / "steer.json");
    json_out << config.dump(2) << "\n";
    json_out.close();
    STEER_CHECK(json_out.good(), call, ": cannot write ", (staging / "steer.json").string());
    if (fs::exists(target)) fs::remove_all(target);
    fs::rename(staging, target);
  } catch (const c10::Error& e) {
    throw Error(detail::concat(call, ": cannot write the model to ", staging.string(), ": ",
                               detail::torch_message(e)));
  } catch (const fs::filesystem_error& e) {
    throw Error(detail::concat(call, ": cannot write the model directory ", out_dir, ": ",
                               e.what()));
  }
  return out;
}

}  // namespace steer
