// Architecture: what steer knows about each model family, one row per family: where its
// blocks, attention, MLP, embeddings and norms are, which hook sites its blocks have, and
// which weights write into the residual stream (for orthogonalize). Torch-free.
// Adding a family: a row here, a row in tools/architectures.py and its module class in
// tools/steer_modules.py (docs/model-directory.md, "Adding a family").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "steer/error.hpp"

namespace steer {

/// A linear layer whose output is added to the residual stream, for orthogonalize.
struct ResidualWriter {
  /// The layer, relative to the attention or MLP module, e.g. "o_proj", "c_proj".
  std::string module;
  /// The d_model axis of its weight: 0 for nn.Linear ([d_model, in]), 1 for GPT-2's Conv1D
  /// ([in, d_model]). A bias, when the layer has one, is [d_model].
  int64_t axis = 0;
  /// A norm between the layer and the residual add, relative to the block, or "" when the
  /// output is added as it is. Gemma 2 and 3 normalise each attention and MLP output again
  /// (sandwich norms): the stream gets `(scale_offset + w) * x / rms(x)`, so removing a
  /// direction r from what reaches the stream means removing `(scale_offset + w) * r` from x.
  std::string scale_norm;
  /// The norm multiplies by scale_offset + weight: 1 for Gemma's `(1 + w)` RMSNorm.
  double scale_offset = 0.0;
};

/// One model family. Paths are module paths of the exported (or traced) module; `attn`,
/// `mlp` and `mid_norm` are relative to a block.
struct Architecture {
  std::string family;       ///< steer.json "family", e.g. "llama", "gemma2"
  std::string examples;     ///< checkpoints of the family, for messages and docs
  std::string blocks;       ///< prefix of the numbered blocks, e.g. "model.layers."
  std::string attn;         ///< attention submodule of a block
  std::string mlp;          ///< MLP submodule of a block
  std::string embedding;    ///< token embedding: weight [vocab, d_model]
  std::string positions;    ///< learned position embedding (weight [max_positions, d_model]) or ""
  std::string final_norm;   ///< the norm before the unembedding
  std::string unembedding;  ///< the LM head: weight [vocab, d_model]
  /// The norm in front of the MLP, whose input is resid_mid (the residual stream after the
  /// attention's add). A parallel-residual block also calls it, on the block input: there is
  /// no resid_mid then, and the hook layer sees that from the graph (docs/hooks.md).
  std::string mid_norm;
  ResidualWriter attn_writer;  ///< the attention's output projection
  ResidualWriter mlp_writer;   ///< the MLP's output projection
  /// Tried by discover_layers for modules loaded without steer.json: of the rows whose
  /// blocks fit, the one with the most of its norms (mid_norm, scale norms) present wins.
  bool discoverable = false;
};

/// The table: every family steer exports and runs (tools/architectures.py has the export side).
inline const std::vector<Architecture>& architectures() {
  const auto llama_like = [](const char* family, const char* examples, bool discoverable) {
    return Architecture{family, examples, "model.layers.", "self_attn", "mlp",
                        "model.embed_tokens", "", "model.norm", "lm_head",
                        "post_attention_layernorm", {"o_proj", 0, "", 0.0},
                        {"down_proj", 0, "", 0.0}, discoverable};
  };
  const auto sandwich = [](const char* family, const char* examples, bool discoverable) {
    return Architecture{family, examples, "model.layers.", "self_attn", "mlp",
                        "model.embed_tokens", "", "model.norm", "lm_head",
                        "pre_feedforward_layernorm",
                        {"o_proj", 0, "post_attention_layernorm", 1.0},
                        {"down_proj", 0, "post_feedforward_layernorm", 1.0}, discoverable};
  };
  static const std::vector<Architecture> table = {
      llama_like("llama", "Llama 2, Llama 3, SmolLM2, Yi", /*discoverable=*/true),
      llama_like("mistral", "Mistral 7B", false),
      llama_like("qwen2", "Qwen 1.5, Qwen2, Qwen2.5", false),
      llama_like("qwen3", "Qwen3", false),
      llama_like("gemma", "Gemma", false),
      sandwich("gemma2", "Gemma 2", /*discoverable=*/true),
      sandwich("gemma3", "Gemma 3", false),
      llama_like("phi3", "Phi-3", false),
      {"gpt2", "GPT-2, GPT-2-XL", "transformer.h.", "attn", "mlp", "transformer.wte",
       "transformer.wpe", "transformer.ln_f", "lm_head", "ln_2", {"c_proj", 1, "", 0.0},
       {"c_proj", 1, "", 0.0}, true},
      {"gpt_neox", "Pythia, GPT-NeoX", "gpt_neox.layers.", "attention", "mlp",
       "gpt_neox.embed_in", "", "gpt_neox.final_layer_norm", "lm_head",
       "post_attention_layernorm", {"dense", 0, "", 0.0}, {"dense_4h_to_h", 0, "", 0.0}, true},
  };
  return table;
}

/// "llama, mistral, ...": the families of the table, for messages.
inline std::string family_names() {
  std::string names;
  for (const auto& a : architectures()) names += (names.empty() ? "" : ", ") + a.family;
  return names;
}

/// The row of `family`, or an error naming `who` and the families steer knows.
/// Example: `architecture("qwen2").mid_norm == "post_attention_layernorm"`
inline const Architecture& architecture(const std::string& family, const std::string& who = "architecture") {
  for (const auto& a : architectures()) {
    if (a.family == family) return a;
  }
  throw Error(detail::concat(who, ": unknown model family '", family, "'; steer knows ",
                             family_names(), " (hint: re-export the model with this steer's "
                             "tools/export_model.py)"));
}

}  // namespace steer
