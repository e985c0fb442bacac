// Model: a steer model directory (TorchScript module + steer.json), or any TorchScript causal
// LM whose layers steer recognises, loaded into LibTorch on a chosen device and dtype, with
// checked forward passes by full recompute or through a KV cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/call_layout.hpp"
#include "steer/detail/instrument.hpp"
#include "steer/error.hpp"
#include "steer/generate.hpp"
#include "steer/hook_point.hpp"
#include "steer/model_config.hpp"
#include "steer/tokenizer.hpp"

namespace steer {

/// Where and in which precision a model runs.
/// Example: `ModelOptions().device(torch::kCUDA).dtype(torch::kBFloat16)`
struct ModelOptions {
  /// CPU or CUDA device. Default: CPU.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// float32, float16 or bfloat16. Default: float32.
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
  /// Insert steer's hook taps into the module at load (see docs/hooks.md). Without them no
  /// hook can be attached; the switch exists to measure their cost. Default: true.
  TORCH_ARG(bool, instrument) = true;
  /// Check every call's logits at real tokens (not padding) for NaN and infinity, and throw
  /// naming the module or hook that first produced them (found by re-running the call with
  /// every tap checked). Costs one pass over the logits and a host synchronisation per call
  /// (docs/performance.md). Default: true.
  TORCH_ARG(bool, check_finite) = true;
};

/// Parses "float32" / "fp32", "float16" / "fp16" / "half", "bfloat16" / "bf16".
torch::Dtype parse_dtype(const std::string& name);
/// Parses "cpu", "cuda", "cuda:N".
torch::Device parse_device(const std::string& name);

/// The key and value cache of a batch, written in place by Model::logits_cached.
/// `k` and `v` have shape [n_layers, batch, n_kv_heads, capacity, head_dim]; positions
/// 0 .. length-1 are filled.
struct KvCache {
  torch::Tensor k;
  torch::Tensor v;
  int64_t length = 0;
  /// Leading columns (cached and new tokens, padding included) that are the prompt, for
  /// Positions::prompt() / generated(). -1 until the first call on the cache (the prefill)
  /// sets it to that call's token count; set it before the prefill to choose otherwise.
  int64_t prompt_length = -1;

  int64_t batch() const { return k.size(1); }
  int64_t capacity() const { return k.size(3); }
};

/// A loaded model. Copies share the same TorchScript module (it is a handle).
class Model {
 public:
  /// Loads a model directory written by tools/export_model.py (model.pt, tokenizer.json,
  /// steer.json) and checks that steer.json and the module agree. A directory without
  /// steer.json (model.pt, optionally tokenizer.json) or a .pt file is loaded as a TorchScript
  /// module of one's own: layers found by their module names (discover_layers), d_model and the
  /// vocabulary from the embedding, full recompute only (docs/model-directory.md).
  /// Example: `auto model = steer::Model::load("models/smollm2-135m-instruct");`
  static Model load(const std::string& path, const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  /// The path given to load(): a model directory or a .pt file.
  const std::string& directory() const { return directory_; }
  int64_t n_layers() const { return config_.n_layers; }
  int64_t d_model() const { return config_.d_model; }
  int64_t vocab_size() const { return config_.vocab_size; }
  torch::Device device() const { return options_.device(); }
  /// The model's tokenizer (tokenizer.json), with the chat format of steer.json set when the
  /// model has one. Throws for a model loaded without one (see has_tokenizer()).
  const Tokenizer& tokenizer() const;
  /// false only for a TorchScript module loaded without steer.json and without tokenizer.json.
  bool has_tokenizer() const { return tokenizer_.has_value(); }
  /// Whether the module has a KV cache method (forward_cached): false for traced exports and
  /// modules loaded without steer.json, which run by full recompute only.
  bool has_kv_cache() const { return config_.kv_cache; }
  torch::Dtype dtype() const { return options_.dtype(); }

  /// Module paths of layer `layer` (0-based); throws for a layer outside 0 .. n_layers-1.
  const LayerLayout& layer(int64_t layer) const;
  /// The submodule at a dotted path, e.g. "model.layers.3.mlp"; throws listing close paths.
  torch::jit::Module submodule(const std::string& path) const;
  /// Every submodule path of the TorchScript module, in module order.
  const std::vector<std::string>& module_paths() const { return module_paths_; }
  /// The TorchScript module itself (for the hook layer and for advanced use).
  torch::jit::Module& module() { return module_; }
  /// The hook taps of this model (for steer's hook layer, steer/hooks.hpp); nullptr when the
  /// model was loaded with ModelOptions().instrument(false).
  detail::HookTable* hook_table() const { return hooks_.get(); }
  /// Shared ownership of the hook taps, so that hook handles can outlive a Model copy.
  std::weak_ptr<detail::HookTable> hook_table_owner() const { return hooks_; }

  /// Logits [B, T, vocab] for token ids [B, T] (int64) by full recompute. attention_mask
  /// [B, T] marks real tokens with 1 and left padding with 0 (default: all ones).
  /// prompt_length: how many leading columns are the prompt, for hooks with
  /// Positions::prompt() / generated() (default -1: every column is prompt).
  torch::Tensor logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                       int64_t prompt_length = -1) const;

  /// An empty cache for `batch` sequences of up to `capacity` tokens, on the model's device.
  /// Throws for a model without a KV cache (has_kv_cache()).
  KvCache make_cache(int64_t batch, int64_t capacity) const;

  /// Logits [B, t, vocab] of the t new tokens `input_ids` [B, t] appended to what `cache`
  /// holds; attention_mask [B, cache.length + t] covers cached and new tokens. Advances
  /// cache.length by t. A prefill is the first call on an empty cache, a decode step a call
  /// with t = 1.
  torch::Tensor logits_cached(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              KvCache& cache) const;

  /// Generates a continuation of each prompt (see generate.hpp): a batch is left-padded and
  /// runs together; by full recompute for a model without a KV cache. Example:
  /// `model.generate("I hate you because", GenerateOptions().max_new_tokens(20)).text`
  Generation generate(const std::string& prompt, const GenerateOptions& options = {}) const;
  std::vector<Generation> generate(const std::vector<std::string>& prompts,
                                   const GenerateOptions& options = {}) const;
  /// As above, from token ids (a ragged batch is padded).
  std::vector<Generation> generate(const std::vector<std::vector<int64_t>>& prompts,
                                   const GenerateOptions& options = {}) const;

 private:
  Model() = default;
  void check_ids(const char* call, const torch::Tensor& ids) const;
  torch::Tensor checked_mask(const char* call, const torch::Tensor& mask, int64_t batch,
                             int64_t length, int64_t* longest = nullptr) const;
  torch::Tensor run(const char* call, const std::string& method,
                    std::vector<torch::jit::IValue> inputs, const CallLayout& layout) const;
  void check_finite_logits(const char* call, const std::string& method,
                           const std::vector<torch::jit::IValue>& inputs,
                           const CallLayout& layout, const torch::Tensor& logits) const;
  void check_kv_cache(const char* call) const;
  void check_positions_reachable(int64_t longest) const;

  ModelConfig config_;
  ModelOptions options_;
  std::string directory_;
  std::optional<Tokenizer> tokenizer_;  // set once load() returns, unless loaded without one
  bool forward_takes_mask_ = true;      // forward(ids, mask), else forward(ids)
  mutable torch::jit::Module module_;
  std::map<std::string, torch::jit::Module> submodules_;
  std::vector<std::string> module_paths_;
  std::shared_ptr<detail::HookTable> hooks_;
};

// ----------------------------------------------------------------------------- implementation

namespace detail {

/// The message of a LibTorch error without its C++ backtrace.
inline std::string torch_message(const c10::Error& e) {
  std::string message = e.what_without_backtrace();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace detail

inline torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return torch::kFloat32;
  if (name == "float16" || name == "fp16" || name == "half") return torch::kFloat16;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw Error(detail::concat("parse_dtype: unknown dtype '", name,
                             "'; expected float32, float16 or bfloat16"));
}

inline torch::Device parse_device(const std::string& name) {
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    throw Error(detail::concat("parse_device: unknown device '", name,
                               "'; expected cpu, cuda or cuda:N"));
  }
}

namespace detail {

/// A ModelConfig for a TorchScript module loaded without steer.json: layers discovered from
/// the module paths, d_model and vocab_size from the embedding weight, max_positions from a
/// learned position embedding where the layout has one. No chat format, no special tokens.
inline ModelConfig discovered_config(const torch::jit::Module& module,
                                     const std::vector<std::string>& paths,
                                     const std::string& module_path) {
  ModelConfig c;
  c.format_version = ModelConfig::kFormatVersion;
  try {
    c.layers = discover_layers(paths);
  } catch (const Error& e) {
    throw Error(concat("Model::load: ", module_path, " has no steer.json and ", e.what(),
                       " (hint: export the model with tools/export_model.py, which writes "
                       "steer.json with its layout)"));
  }
  const std::set<std::string> all(paths.begin(), paths.end());
  const auto* layout = layout_of(c.layers, all);
  STEER_CHECK(layout != nullptr, "Model::load: ", module_path, " has blocks '",
              c.layers.front().block, "' of no discoverable family (", family_names(), ")");
  c.family = layout->family;
  c.hf_model_type = c.family;
  c.n_layers = static_cast<int64_t>(c.layers.size());
  const auto weight_of = [&](const std::string& path) -> torch::Tensor {
    if (!all.count(path)) return {};
    for (const auto& named : module.named_modules()) {
      if (named.name == path && named.value.hasattr("weight")) {
        const auto weight = named.value.attr("weight");
        if (weight.isTensor() && weight.toTensor().dim() == 2) return weight.toTensor();
      }
    }
    return {};
  };
  if (auto weight = weight_of(layout->embedding); weight.defined()) {
    c.embedding_path = layout->embedding;
    c.vocab_size = weight.size(0);
    c.d_model = weight.size(1);
  }
  STEER_CHECK(!c.embedding_path.empty(), "Model::load: ", module_path,
              " has no steer.json and no token embedding '", layout->embedding,
              "' with a 2-D weight (the ", layout->family, " layout's; needed for d_model and "
              "the vocabulary size; hint: export the model with tools/export_model.py)");
  if (!layout->positions.empty()) {
    if (auto weight = weight_of(layout->positions); weight.defined()) c.max_positions = weight.size(0);
  }
  if (all.count(layout->final_norm)) c.final_norm_path = layout->final_norm;
  if (all.count(layout->unembedding)) c.unembedding_path = layout->unembedding;
  c.module_file = module_path;
  c.chat_format = "none";
  c.kv_cache = false;
  return c;
}

/// Whether argument `i` of a schema (0 is self) takes a Tensor, possibly optional.
inline bool takes_tensor(const c10::FunctionSchema& schema, size_t i) {
  return i < schema.arguments().size() &&
         schema.arguments()[i].type()->isSubtypeOf(*c10::OptionalType::ofTensor());
}

}  // namespace detail

inline Model Model::load(const std::string& path, const ModelOptions& options) {
  namespace fs = std::filesystem;
  const bool is_file = fs::is_regular_file(path);
  STEER_CHECK(is_file || fs::is_directory(path), "Model::load: '", path,
              "' is neither a directory nor a file (expected a model directory with model.pt, "
              "tokenizer.json and steer.json, written by tools/export_model.py, or a "
              "TorchScript .pt file)");
  const auto dtype = options.dtype();
  STEER_CHECK(dtype == torch::kFloat32 || dtype == torch::kFloat16 || dtype == torch::kBFloat16,
              "Model::load: dtype ", dtype, " is not supported; expected float32, float16 or "
              "bfloat16");
  const auto device = options.device();
  STEER_CHECK(device.is_cpu() || device.is_cuda(), "Model::load: device ", device,
              " is not supported; expected cpu or cuda");
  if (device.is_cuda()) {
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    STEER_CHECK(count > 0, "Model::load: device ", device,
                " requested but CUDA is not available on this machine (0 CUDA devices)");
    STEER_CHECK(!device.has_index() || device.index() < count, "Model::load: device ", device,
                " requested but this machine has ", count, " CUDA device(s)");
  }

  Model model;
  model.directory_ = path;
  model.options_ = options;
  const auto config_path = (fs::path(path) / "steer.json").string();
  // With steer.json: a steer model directory. Without: a TorchScript module of one's own.
  const bool described = !is_file && fs::is_regular_file(config_path);
  std::string module_path;
  std::string tokenizer_path;
  if (described) {
    model.config_ = ModelConfig::from_file(config_path);
    tokenizer_path = (fs::path(path) / model.config_.tokenizer_file).string();
    STEER_CHECK(fs::is_regular_file(tokenizer_path), "Model::load: ", tokenizer_path,
                " is missing (steer.json names it as the tokenizer)");
    module_path = (fs::path(path) / model.config_.module_file).string();
    STEER_CHECK(fs::is_regular_file(module_path), "Model::load: ", module_path,
                " is missing (steer.json names it as the TorchScript module)");
  } else {
    module_path = is_file ? path : (fs::path(path) / "model.pt").string();
    STEER_CHECK(fs::is_regular_file(module_path), "Model::load: '", path,
                "' has neither steer.json nor model.pt (expected a model directory written by "
                "tools/export_model.py, or a directory with a TorchScript model.pt; see "
                "docs/model-directory.md)");
    const auto candidate = (fs::path(path) / "tokenizer.json").string();
    if (!is_file && fs::is_regular_file(candidate)) tokenizer_path = candidate;
  }

  try {
    model.module_ = torch::jit::load(module_path, torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    throw Error(detail::concat("Model::load: cannot load the TorchScript module ", module_path,
                               ": ", detail::torch_message(e),
                               " (hint: corrupt or truncated file? re-export the model)"));
  }
  model.module_.eval();
  if (options.check_finite()) {
    // A corrupted weight would otherwise load and turn every logit into NaN. One pass over
    // the weights (about 0.1 s for the default model).
    for (const auto& p : model.module_.named_parameters(/*recurse=*/true)) {
      if (!p.value.is_floating_point()) continue;
      const auto bad = (~torch::isfinite(p.value)).sum().item<int64_t>();
      STEER_CHECK(bad == 0, "Model::load: parameter '", p.name, "' holds ", bad,
                  " NaN or infinite values (file: ", module_path, "; hint: the file is corrupted, "
                  "re-export the model; ModelOptions().check_finite(false) loads it anyway)");
    }
  }
  for (const auto& named : model.module_.named_modules()) {
    if (named.name.empty()) continue;
    model.submodules_.emplace(named.name, named.value);
    model.module_paths_.push_back(named.name);
  }
  if (!described) {
    model.config_ = detail::discovered_config(model.module_, model.module_paths_, module_path);
  }
  const auto& c = model.config_;

  if (!tokenizer_path.empty()) {
    model.tokenizer_ = Tokenizer::from_file(tokenizer_path);
    STEER_CHECK(model.tokenizer_->vocab_size() <= c.vocab_size, "Model::load: the tokenizer ",
                tokenizer_path, " has ", model.tokenizer_->vocab_size(),
                " tokens but the model's vocabulary has ", c.vocab_size,
                " (hint: tokenizer.json from another model?)");
    if (c.chat_format != "none") {
      model.tokenizer_->set_chat_template(
          ChatTemplateOptions(parse_chat_format(c.chat_format))
              .default_system_prompt(c.chat_default_system_prompt));
    }
  }

  // Taps go in before the first forward call: the executor ignores later graph edits.
  if (options.instrument()) {
    model.hooks_ = detail::instrument(model.module_, c.layers, c.architecture().mid_norm);
  }

  const char* expected_module = described
      ? " (expected a module written by tools/export_model.py; see docs/model-directory.md)"
      : " (expected a TorchScript causal LM; see docs/model-directory.md)";
  STEER_CHECK(model.module_.find_method("forward").has_value(), "Model::load: ", module_path,
              " has no method 'forward'", expected_module);
  if (c.kv_cache) {
    STEER_CHECK(model.module_.find_method("forward_cached").has_value(), "Model::load: ",
                module_path, " has no method 'forward_cached' although steer.json lists it in "
                "'methods'", expected_module);
  }
  // forward(input_ids) or forward(input_ids, attention_mask); further arguments need defaults.
  const auto& schema = model.module_.get_method("forward").function().getSchema();
  const auto n_arguments = schema.arguments().size();
  model.forward_takes_mask_ = detail::takes_tensor(schema, 2);
  bool callable = detail::takes_tensor(schema, 1);
  for (size_t i = model.forward_takes_mask_ ? 3 : 2; i < n_arguments; ++i) {
    callable = callable && schema.arguments()[i].default_value().has_value();
  }
  STEER_CHECK(callable, "Model::load: ", module_path, " has ", schema,
              "; expected forward(input_ids) or forward(input_ids, attention_mask), any further "
              "argument optional", expected_module);

  // steer.json must describe the module: every layer path exists, no layer is left out, the
  // embedding has [vocab_size, d_model].
  const auto mismatch = [&](const std::string& what) {
    return detail::concat("Model::load: steer.json disagrees with ", module_path, ": ", what);
  };
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const auto& l = c.layers[i];
    for (const auto& p : {l.block, l.attn, l.mlp}) {
      STEER_CHECK(model.submodules_.count(p), mismatch(detail::concat(
                      "layer ", i, " path '", p, "' is not a submodule of the module")));
    }
  }
  const auto& first_block = c.layers.front().block;
  const auto list_path = first_block.substr(0, first_block.rfind('.'));
  STEER_CHECK(model.submodules_.count(list_path), mismatch("no module list '" + list_path + "'"));
  const auto blocks = model.submodules_.at(list_path).children().size();
  STEER_CHECK(static_cast<int64_t>(blocks) == c.n_layers,
              mismatch(detail::concat("n_layers=", c.n_layers, " but '", list_path, "' holds ",
                                      blocks, " blocks")));
  STEER_CHECK(model.submodules_.count(c.embedding_path),
              mismatch("no embedding module '" + c.embedding_path + "'"));
  const auto embedding = model.submodules_.at(c.embedding_path).attr("weight").toTensor();
  STEER_CHECK(embedding.dim() == 2 && embedding.size(0) == c.vocab_size &&
                  embedding.size(1) == c.d_model,
              mismatch(detail::concat("vocab_size=", c.vocab_size, ", d_model=", c.d_model,
                                      " but the embedding weight has shape ", embedding.sizes())));

  try {
    model.module_.to(device, dtype);
  } catch (const c10::Error& e) {
    throw Error(detail::concat("Model::load: cannot move the model to ", device, " as ", dtype,
                               ": ", detail::torch_message(e)));
  }
  return model;
}

inline const Tokenizer& Model::tokenizer() const {
  STEER_CHECK(tokenizer_.has_value(), "Model::tokenizer: model '", directory_,
              "' has no tokenizer (a TorchScript module loaded without steer.json and without "
              "tokenizer.json; hint: put the model's tokenizer.json next to its model.pt, or "
              "pass token ids)");
  return *tokenizer_;
}

inline const LayerLayout& Model::layer(int64_t layer) const {
  STEER_CHECK(layer >= 0 && layer < config_.n_layers, "Model::layer: layer ", layer,
              " is out of range; this model has layers 0 to ", config_.n_layers - 1,
              " (inclusive)");
  return config_.layers[layer];
}

inline torch::jit::Module Model::submodule(const std::string& path) const {
  auto found = submodules_.find(path);
  if (found != submodules_.end()) return found->second;
  // List the paths that share the longest prefix with the one asked for.
  std::string close;
  auto prefix = path;
  while (close.empty() && !prefix.empty()) {
    const auto dot = prefix.rfind('.');
    prefix = dot == std::string::npos ? "" : prefix.substr(0, dot);
    int listed = 0;
    for (const auto& p : module_paths_) {
      if (p.rfind(prefix, 0) == 0 && listed++ < 12) close += (close.empty() ? "" : ", ") + p;
    }
  }
  throw Error(detail::concat("Model::submodule: '", path, "' is not a submodule of ",
                             directory_, " (paths there include: ", close, ")"));
}

inline void Model::check_ids(const char* call, const torch::Tensor& ids) const {
  STEER_CHECK(ids.defined() && ids.dim() == 2 && ids.size(0) > 0 && ids.size(1) > 0, call,
              ": input_ids must have shape [batch, tokens] with both > 0, got ",
              ids.defined() ? ids.sizes() : c10::IntArrayRef{});
  STEER_CHECK(ids.scalar_type() == torch::kInt64, call, ": input_ids must be int64, got ",
              ids.scalar_type());
  const auto low = ids.min().item<int64_t>();
  const auto high = ids.max().item<int64_t>();
  STEER_CHECK(low >= 0 && high < config_.vocab_size, call, ": token id ",
              low < 0 ? low : high, " is outside the vocabulary [0, ", config_.vocab_size,
              ") of ", directory_);
}

inline torch::Tensor Model::checked_mask(const char* call, const torch::Tensor& mask,
                                         int64_t batch, int64_t length,
                                         int64_t* longest_out) const {
  const auto check_positions = [&](int64_t longest) {
    STEER_CHECK(config_.max_positions <= 0 || longest <= config_.max_positions, call,
                ": a sequence has ", longest, " tokens but the model has positions for ",
                config_.max_positions);
    if (longest_out != nullptr) *longest_out = longest;
  };
  if (!mask.defined()) {
    check_positions(length);
    return torch::ones({batch, length}, torch::TensorOptions().dtype(torch::kInt64).device(device()));
  }
  STEER_CHECK(mask.dim() == 2 && mask.size(0) == batch && mask.size(1) == length, call,
              ": attention_mask must have shape [", batch, ", ", length, "], got ", mask.sizes());
  const auto as_long = mask.to(torch::kInt64);
  STEER_CHECK(((as_long == 0) | (as_long == 1)).all().item<bool>(), call,
              ": attention_mask must hold only 0 (padding) and 1 (token)");
  STEER_CHECK((as_long.sum(1) > 0).all().item<bool>(), call,
              ": a sequence of the batch has no token (its attention_mask row is all 0)");
  check_positions(as_long.sum(1).max().item<int64_t>());
  return as_long.to(device());
}

namespace detail {

/// Runs `method` of `module` and returns its output; a hook's steer::Error comes out unchanged,
/// any other failure as a steer::Error naming `call`.
inline torch::jit::IValue invoke(torch::jit::Module& module, const char* call,
                                 const std::string& method,
                                 std::vector<torch::jit::IValue> inputs) {
  try {
    return module.get_method(method)(std::move(inputs));
  } catch (const std::exception& e) {
    // A hook's steer::Error reaches here wrapped by the interpreter: rethrow the original.
    if (auto error = call_state().error) {
      call_state().error = nullptr;
      std::rethrow_exception(error);
    }
    const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
    throw Error(concat(call, ": the model failed: ",
                       torch_error ? torch_message(*torch_error) : e.what()));
  }
}

/// Sets a Diagnosis on this thread for the lifetime of the guard.
class DiagnosisGuard {
 public:
  explicit DiagnosisGuard(Diagnosis& diagnosis) { call_state().diagnosis = &diagnosis; }
  ~DiagnosisGuard() { call_state().diagnosis = nullptr; }
  DiagnosisGuard(const DiagnosisGuard&) = delete;
  DiagnosisGuard& operator=(const DiagnosisGuard&) = delete;
};

}  // namespace detail

inline torch::Tensor Model::run(const char* call, const std::string& method,
                               std::vector<torch::jit::IValue> inputs,
                               const CallLayout& layout) const {
  c10::InferenceMode guard;
  for (const auto* set : detail::call_state().scoped) {
    STEER_CHECK(set->table == hooks_.get(), call, ": a SteeringGuard on this thread holds "
                "steering made for model '", set->model, "', but this call runs model '",
                directory_, "' (hint: make the Steering from the model it steers, or end the "
                "guard's scope before calling another model)");
  }
  detail::CallGuard call_guard(layout);
  const auto kept_inputs = options_.check_finite() ? inputs : std::vector<torch::jit::IValue>{};
  const auto out = detail::invoke(module_, call, method, std::move(inputs));
  // Logits as a Tensor, as element 0 of a tuple or list (Hugging Face models traced with
  // return_dict=False), or as "logits" of a dict.
  torch::jit::IValue logits;
  if (out.isTensor()) {
    logits = out;
  } else if (out.isTuple() && !out.toTupleRef().elements().empty()) {
    logits = out.toTupleRef().elements()[0];
  } else if (out.isList() && !out.toListRef().empty()) {
    logits = out.toListRef()[0];
  } else if (out.isGenericDict() && out.toGenericDict().contains("logits")) {
    logits = out.toGenericDict().at("logits");
  }
  const auto batch = layout.batch();
  const auto tokens = layout.tokens();
  STEER_CHECK(logits.isTensor() && logits.toTensor().dim() == 3 &&
                  logits.toTensor().size(0) == batch && logits.toTensor().size(1) == tokens,
              call, ": the model's ", method, " returned ",
              logits.isTensor() ? detail::concat("a tensor of shape ", logits.toTensor().sizes())
                                : out.tagKind(),
              "; expected logits [", batch, ", ", tokens, ", vocab] as a Tensor, as element 0 "
              "of a tuple or list, or as 'logits' of a dict");
  auto result = logits.toTensor();
  if (options_.check_finite()) check_finite_logits(call, method, kept_inputs, layout, result);
  return result;
}

inline void Model::check_finite_logits(const char* call, const std::string& method,
                                       const std::vector<torch::jit::IValue>& inputs,
                                       const CallLayout& layout,
                                       const torch::Tensor& logits) const {
  // Padding columns may hold anything (a fully masked attention row); only real tokens count.
  const auto& mask = layout.attention_mask();
  const auto real = mask.slice(1, mask.size(1) - layout.tokens()) != 0;  // [B, t]
  const auto finite = torch::isfinite(logits).all(-1);                      // [B, t]
  if ((finite | ~real.to(finite.device())).all().item<bool>()) return;
  const auto bad_rows = (~finite & real.to(finite.device())).sum().item<int64_t>();
  // Find where the values first stop being finite: the same call again, every tap checked.
  detail::Diagnosis diagnosis;
  {
    detail::DiagnosisGuard diagnosing(diagnosis);
    try {
      (void)detail::invoke(module_, call, method, inputs);
    } catch (const Error&) {
      // The first failure was not an exception; whatever the re-run throws says less.
    }
  }
  std::string source = "the LM head or final norm (every tapped value was finite)";
  if (!diagnosis.first.empty()) source = diagnosis.first;
  std::string hooks = "no hook ran before it";
  if (!diagnosis.hooks.empty()) {
    hooks = "hooks that ran before it: ";
    for (size_t i = 0; i < diagnosis.hooks.size() && i < 4; ++i) {
      hooks += (i ? ", " : "") + diagnosis.hooks[i];
    }
    if (diagnosis.hooks.size() > 4) hooks += detail::concat(" and ", diagnosis.hooks.size() - 4, " more");
  }
  const bool by_hook = diagnosis.by_hook;
  throw Error(detail::concat(
      call, ": the logits of ", bad_rows, " token(s) hold NaN or infinity; the first non-finite "
      "values came from ", source, "; ", hooks, " (hint: ",
      by_hook ? "that hook's vector or coefficient is too large for the model's dtype"
      : diagnosis.hooks.empty()
          ? "the model's weights may hold NaN or infinity; re-export or check model.pt"
          : "activations grown too large by the hooks before it overflow there",
      "; ModelOptions().check_finite(false) turns this check off)"));
}

inline void Model::check_kv_cache(const char* call) const {
  STEER_CHECK(config_.kv_cache, call, ": model '", directory_, "' has no KV cache method "
              "(forward_cached): a traced export or a module loaded without steer.json runs by "
              "full recompute only (hint: use Model::logits; generate falls back to full "
              "recompute by itself)");
}

inline torch::Tensor Model::logits(const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask,
                                   int64_t prompt_length) const {
  const char* call = "Model::logits";
  check_ids(call, input_ids);
  const auto t = input_ids.size(1);
  int64_t longest = t;
  auto mask = checked_mask(call, attention_mask, input_ids.size(0), t, &longest);
  const bool padded = attention_mask.defined() && mask.sum().item<int64_t>() != mask.numel();
  STEER_CHECK(forward_takes_mask_ || !padded, call, ": model '", directory_,
              "' has forward(input_ids) without an attention mask, so it cannot run a "
              "left-padded batch (hint: run each sequence alone)");
  const CallLayout layout(mask, /*past_length=*/0, t, prompt_length, longest, padded,
                          /*full_sequence=*/true);
  std::vector<torch::jit::IValue> inputs = {input_ids.to(device())};
  if (forward_takes_mask_) inputs.emplace_back(mask);
  return run(call, "forward", std::move(inputs), layout);
}

inline KvCache Model::make_cache(int64_t batch, int64_t capacity) const {
  check_kv_cache("Model::make_cache");
  STEER_CHECK(batch > 0 && capacity > 0, "Model::make_cache: batch and capacity must be > 0, got ",
              batch, " and ", capacity);
  if (config_.max_positions > 0) {
    STEER_CHECK(capacity <= config_.max_positions, "Model::make_cache: capacity ", capacity,
                " exceeds the model's ", config_.max_positions, " positions");
  }
  c10::InferenceMode guard;
  const auto options = torch::TensorOptions().dtype(dtype()).device(device());
  const std::vector<int64_t> shape = {config_.n_layers, batch, config_.n_kv_heads, capacity,
                                      config_.head_dim};
  return {torch::zeros(shape, options), torch::zeros(shape, options), 0};
}

inline torch::Tensor Model::logits_cached(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask,
                                          KvCache& cache) const {
  const char* call = "Model::logits_cached";
  check_kv_cache(call);
  check_ids(call, input_ids);
  STEER_CHECK(cache.k.defined(), call, ": the cache is empty; make it with Model::make_cache");
  const auto t = input_ids.size(1);
  STEER_CHECK(input_ids.size(0) == cache.batch(), call, ": input_ids has batch ",
              input_ids.size(0), " but the cache was made for batch ", cache.batch());
  STEER_CHECK(cache.length + t <= cache.capacity(), call, ": ", t, " new tokens after ",
              cache.length, " cached ones exceed the cache capacity ", cache.capacity());
  int64_t longest = cache.length + t;
  auto mask = checked_mask(call, attention_mask, input_ids.size(0), cache.length + t, &longest);
  if (cache.prompt_length < 0) cache.prompt_length = cache.length + t;
  const bool padded = attention_mask.defined() && mask.sum().item<int64_t>() != mask.numel();
  const CallLayout layout(mask, cache.length, t, cache.prompt_length, longest, padded,
                          /*full_sequence=*/false);
  auto logits = run(call, "forward_cached",
                    {input_ids.to(device()), mask, cache.k, cache.v, cache.length}, layout);
  cache.length += t;
  return logits;
}

inline void Model::check_positions_reachable(int64_t longest) const {
  const auto check = [&](const detail::HookBase& hook) {
    const auto first = hook.first_position();
    if (!first || !hook.enabled.load()) return;
    STEER_CHECK(*first < longest, "generate: ", hook.who(), " acts from position ", *first,
                " on, but no sequence of this generation gets past position ", longest - 1,
                " (longest prompt plus max_new_tokens), so it would never act (hint: positions "
                "count real tokens from 0, the prompt's included)");
  };
  if (hooks_) {
    for (const auto& hook : hooks_->attached()) check(*hook);
  }
  for (const auto* set : detail::call_state().scoped) {
    for (const auto& hook : set->in_order) check(*hook);
  }
}

inline std::vector<Generation> Model::generate(const std::vector<std::vector<int64_t>>& prompts,
                                               const GenerateOptions& options) const {
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  if (options.max_new_tokens() > 0) {
    check_positions_reachable(static_cast<int64_t>(longest) + options.max_new_tokens());
  }
  return detail::generate_batch(*this, prompts, options);
}

inline std::vector<Generation> Model::generate(const std::vector<std::string>& prompts,
                                               const GenerateOptions& options) const {
  STEER_CHECK(has_tokenizer(), "generate: text prompts need the model's tokenizer, but model '",
              directory_, "' was loaded without one (no steer.json, no tokenizer.json; hint: "
              "put the model's tokenizer.json next to its model.pt, or generate from token ids)");
  std::vector<std::vector<int64_t>> lists;
  for (size_t i = 0; i < prompts.size(); ++i) {
    lists.push_back(tokenizer_->encode(prompts[i]));
    STEER_CHECK(!lists.back().empty(), "generate: prompt ", i, " is empty (it has no token)");
  }
  return generate(lists, options);
}

inline Generation Model::generate(const std::string& prompt, const GenerateOptions& options) const {
  return generate(std::vector<std::string>{prompt}, options).front();
}

}  // namespace steer
