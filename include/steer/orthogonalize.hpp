// Directional ablation of one direction from everything a model writes into its residual
// stream: as hooks on a loaded model (ablate_direction), or baked into the weights of a new
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

#include "steer/architecture.hpp"
#include "steer/error.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"
#include "steer/steering_vector.hpp"

namespace steer {

namespace detail {

/// `direction` as a float64 CPU unit vector [d_model], or an error naming `call`.
inline torch::Tensor unit_direction(const char* call, const torch::Tensor& direction,
                                    int64_t d_model, const std::string& model) {
  STEER_CHECK(direction.defined() && direction.dim() == 1, call,
              ": direction must be 1-D [d_model], got ",
              direction.defined() ? direction.sizes() : c10::IntArrayRef{});
  STEER_CHECK(direction.size(0) == d_model, call, ": direction has d_model=", direction.size(0),
              " but model '", model, "' has ", d_model, " (hint: direction from another model?)");
  STEER_CHECK(direction.is_floating_point(), call, ": direction must be floating point, got ",
              direction.scalar_type());
  const auto r = direction.detach().to(torch::kCPU, torch::kFloat64);
  STEER_CHECK(torch::isfinite(r).all().item<bool>(), call,
              ": direction has NaN or infinite entries");
  const auto norm = r.norm().item<double>();
  STEER_CHECK(norm > 0, call, ": direction is zero; there is nothing to project out "
              "(hint: a mean difference of two identical prompt sets?)");
  return r / norm;
}

/// The direction to remove from the output of `writer` (of layer `layer`) so that what reaches
/// the residual stream has no component along the unit direction r: r itself, or, when a norm
/// with per-channel scale g sits between the writer and the stream (Gemma 2/3's post-norms),
/// the unit vector along g * r: x . (g * r) = 0 makes (g * x / rms(x)) . r = 0.
inline torch::Tensor writer_direction(const char* call, const Model& model, int64_t layer,
                                      const ResidualWriter& writer, const torch::Tensor& r) {
  if (writer.scale_norm.empty()) return r;
  const auto path = model.layer(layer).block + "." + writer.scale_norm;
  auto norm = model.submodule(path);
  STEER_CHECK(norm.hasattr("weight") && norm.attr("weight").isTensor(), call, ": norm '", path,
              "' has no weight tensor (family ", model.config().family, ")");
  const auto scale = norm.attr("weight").toTensor().detach().to(torch::kCPU, torch::kFloat64) +
                     writer.scale_offset;
  const auto scaled = scale * r;
  const auto length = scaled.norm().item<double>();
  STEER_CHECK(length > 0, call, ": the scale of norm '", path, "' is zero wherever the "
              "direction is not, so no output of that layer can carry the direction");
  return scaled / length;
}

}  // namespace detail

/// Directional ablation at every layer and position, as hooks: steer::Ablate(direction) at
/// resid_pre, attn_out and mlp_out of every layer (Arditi et al. 2024). The embedding output
/// (resid_pre.0) and every attention and MLP output lose their component along the direction,
/// so the residual stream never carries it; the resid_pre hooks of later layers then remove
/// only rounding error. In a family whose attention and MLP outputs pass a scaling norm before
/// the residual add (Gemma 2 and 3, architecture.hpp), attn_out and mlp_out lose the direction
/// scaled by that norm's weight instead, which is what keeps the norm's output free of it.
/// orthogonalize() makes the same model in its weights. The hooks stay attached while the
/// handles live.
/// Example:
/// ```
/// auto ablation = steer::ablate_direction(model, refusal);   // 3 * n_layers hooks
/// auto logits = model.logits(ids);                           // ablated
/// ablation.clear();                                          // detached
/// ```
inline std::vector<HookHandle<Ablate>> ablate_direction(const Model& model,
                                                        const torch::Tensor& direction) {
  const char* call = "ablate_direction";
  const auto r = detail::unit_direction(call, direction, model.d_model(), detail::model_name(model));
  const auto& arch = model.config().architecture();
  std::vector<HookHandle<Ablate>> handles;
  for (int64_t layer = 0; layer < model.n_layers(); ++layer) {
    handles.push_back(hook(model, HookPoint(Site::resid_pre, layer), Ablate(r), Positions::all()));
    handles.push_back(hook(model, HookPoint(Site::attn_out, layer),
                           Ablate(detail::writer_direction(call, model, layer, arch.attn_writer, r)),
                           Positions::all()));
    handles.push_back(hook(model, HookPoint(Site::mlp_out, layer),
                           Ablate(detail::writer_direction(call, model, layer, arch.mlp_writer, r)),
                           Positions::all()));
  }
  return handles;
}

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
