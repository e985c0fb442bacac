// HookPoint: where in a model a hook acts ("resid_post.12", "attn_out.3", or any module path
// such as "model.layers.3.mlp.down_proj"), and the discovery of a layer layout from module
// paths. Torch-free.
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "steer/error.hpp"
#include "steer/model_config.hpp"

namespace steer {

/// The named sites of layer L (TransformerLens names):
/// - resid_pre:  the input of block L (the residual stream before the block);
/// - resid_mid:  the residual stream after the attention residual add, i.e. the input of the
///               MLP's pre-norm (Llama `post_attention_layernorm`, GPT-2 `ln_2`);
/// - resid_post: the output of block L (= resid_pre of layer L+1);
/// - attn_out:   the output of the attention module (before the residual add);
/// - mlp_out:    the output of the MLP module (before the residual add);
/// - module:     the output of the module at `HookPoint::path`.
enum class Site { resid_pre, resid_mid, resid_post, attn_out, mlp_out, module };

inline const char* site_name(Site site) {
  switch (site) {
    case Site::resid_pre: return "resid_pre";
    case Site::resid_mid: return "resid_mid";
    case Site::resid_post: return "resid_post";
    case Site::attn_out: return "attn_out";
    case Site::mlp_out: return "mlp_out";
    case Site::module: return "module";
  }
  return "?";
}

/// A hook point: a site of a layer, or the output of a module path. Converts implicitly from
/// a string, so `hook(model, "resid_post.12", ...)` works.
/// Example: `HookPoint("resid_pre.0")`, `HookPoint(Site::mlp_out, 3)`,
/// `HookPoint::module("model.layers.3.mlp.down_proj")`.
struct HookPoint {
  Site site = Site::module;
  int64_t layer = -1;  ///< 0-based; -1 for Site::module
  std::string path;    ///< module path for Site::module, else empty

  HookPoint() = default;
  HookPoint(Site s, int64_t l) : site(s), layer(l) {
    STEER_CHECK(s != Site::module, "HookPoint: use HookPoint::module(path) for a module path");
    STEER_CHECK(l >= 0, "HookPoint: layer must be >= 0, got ", l);
  }
  /// Parses "<site>.<layer>" (site one of resid_pre, resid_mid, resid_post, attn_out,
  /// mlp_out) or else takes the text as a module path.
  HookPoint(const std::string& text) { *this = parse(text); }  // NOLINT: implicit on purpose
  HookPoint(const char* text) : HookPoint(std::string(text)) {}  // NOLINT

  static HookPoint module(std::string path) {
    STEER_CHECK(!path.empty(), "HookPoint::module: the module path is empty");
    HookPoint p;
    p.path = std::move(path);
    return p;
  }
  static HookPoint parse(const std::string& text);

  /// "resid_post.12" or the module path.
  std::string to_string() const {
    return site == Site::module ? path : detail::concat(site_name(site), ".", layer);
  }
  bool operator==(const HookPoint& o) const {
    return site == o.site && layer == o.layer && path == o.path;
  }
};

inline HookPoint HookPoint::parse(const std::string& text) {
  STEER_CHECK(!text.empty(), "HookPoint: empty hook point (expected e.g. 'resid_post.12' or a "
              "module path such as 'model.layers.3.mlp')");
  const auto dot = text.find('.');
  const auto head = text.substr(0, dot);
  for (Site s : {Site::resid_pre, Site::resid_mid, Site::resid_post, Site::attn_out,
                 Site::mlp_out}) {
    if (head != site_name(s)) continue;
    const auto tail = dot == std::string::npos ? std::string() : text.substr(dot + 1);
    const bool digits = !tail.empty() && tail.size() < 10 &&
                        tail.find_first_not_of("0123456789") == std::string::npos;
    STEER_CHECK(digits, "HookPoint: '", text, "' has no valid layer; expected '", head,
                ".<layer>' with a layer number counted from 0, e.g. '", head, ".3'");
    return HookPoint(s, std::stoll(tail));
  }
  return module(text);
}

/// Parses a layer list: "all", "A-B" (A to B, inclusive), "A" and comma-separated mixes such as
/// "0-3,7". Returns the layers ascending without repeats; each must be within 0 .. n_layers-1.
/// Example: `parse_layers("4-6,10", /*n_layers=*/30)` == {4, 5, 6, 10}.
inline std::vector<int64_t> parse_layers(const std::string& spec, int64_t n_layers) {
  const auto fail = [&](const std::string& why) {
    return Error(detail::concat("parse_layers: '", spec, "' ", why, "; expected all, A-B "
                                "(inclusive), A, or a comma-separated list such as 0-3,7, with "
                                "layers 0 to ", n_layers - 1));
  };
  std::vector<int64_t> layers;
  if (spec == "all") {
    for (int64_t l = 0; l < n_layers; ++l) layers.push_back(l);
    return layers;
  }
  const auto number = [&](const std::string& text) {
    if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) {
      throw fail("has '" + text + "' where a layer number belongs");
    }
    const auto l = std::stoll(text);
    if (l >= n_layers) throw fail(detail::concat("names layer ", l, ", out of range"));
    return static_cast<int64_t>(l);
  };
  size_t start = 0;
  while (start <= spec.size()) {
    const auto comma = std::min(spec.find(',', start), spec.size());
    const auto item = spec.substr(start, comma - start);
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      layers.push_back(number(item));
    } else {
      const auto a = number(item.substr(0, dash)), b = number(item.substr(dash + 1));
      if (b < a) throw fail("has the range '" + item + "' with its end before its start");
      for (auto l = a; l <= b; ++l) layers.push_back(l);
    }
    start = comma + 1;
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

/// A module naming scheme that steer recognises in models without steer.json.
struct KnownLayout {
  const char* family;     ///< "llama", "gpt2", "gpt-neox"
  const char* blocks;     ///< prefix of the numbered blocks, e.g. "model.layers."
  const char* attn;       ///< attention submodule of a block
  const char* mlp;        ///< MLP submodule of a block
  const char* embedding;  ///< token embedding: weight [vocab, d_model]
  const char* positions;  ///< learned position embedding (weight [max_positions, d_model]) or ""
};

/// GPT-2 `transformer.h.N.{attn,mlp}`, Llama / Mistral / Qwen2 `model.layers.N.{self_attn,mlp}`,
/// GPT-NeoX `gpt_neox.layers.N.{attention,mlp}`.
inline const std::vector<KnownLayout>& known_layouts() {
  static const std::vector<KnownLayout> layouts = {
      {"llama", "model.layers.", "self_attn", "mlp", "model.embed_tokens", ""},
      {"gpt2", "transformer.h.", "attn", "mlp", "transformer.wte", "transformer.wpe"},
      {"gpt-neox", "gpt_neox.layers.", "attention", "mlp", "gpt_neox.embed_in", ""},
  };
  return layouts;
}

/// The known layout whose blocks `layers` follow (as found by discover_layers), or nullptr.
inline const KnownLayout* layout_of(const std::vector<LayerLayout>& layers) {
  if (layers.empty()) return nullptr;
  for (const auto& known : known_layouts()) {
    if (layers.front().block.rfind(known.blocks, 0) == 0) return &known;
  }
  return nullptr;
}

/// The layer layout of a model found from its module paths alone, for modules exported
/// without steer.json (the layouts of known_layouts()).
/// Layers must be numbered 0 .. N-1 without gaps. Throws when no family fits.
/// Example: `auto layers = discover_layers(model.module_paths());`
inline std::vector<LayerLayout> discover_layers(const std::vector<std::string>& paths) {
  const std::set<std::string> all(paths.begin(), paths.end());
  for (const auto& f : known_layouts()) {
    std::vector<LayerLayout> layers;
    for (int64_t i = 0;; ++i) {
      const auto block = detail::concat(f.blocks, i);
      if (!all.count(block)) break;
      LayerLayout l{block, block + "." + f.attn, block + "." + f.mlp};
      STEER_CHECK(all.count(l.attn) && all.count(l.mlp), "discover_layers: block '", block,
                  "' looks like a ", f.family, " block but has no '", l.attn, "' or '", l.mlp,
                  "' submodule");
      layers.push_back(std::move(l));
    }
    if (layers.empty()) continue;
    // A numbered block past the contiguous run means a gap.
    const auto next = detail::concat(f.blocks, layers.size() + 1);
    STEER_CHECK(!all.count(next), "discover_layers: blocks '", f.blocks, "N' are not numbered 0 to ",
                layers.size(), " without gaps ('", next, "' exists but '", f.blocks, layers.size(),
                "' does not)");
    return layers;
  }
  throw Error(detail::concat(
      "discover_layers: no known layer layout among ", paths.size(),
      " module paths; expected blocks 'model.layers.N' (Llama, Mistral, Qwen2), "
      "'transformer.h.N' (GPT-2) or 'gpt_neox.layers.N' (GPT-NeoX), each with its attention "
      "and mlp submodules"));
}

/// The path of the pre-norm in front of the MLP of `block` (its input is resid_mid), or ""
/// when the block has none that steer knows (Llama `post_attention_layernorm`, GPT-2 `ln_2`).
inline const std::vector<std::string>& mid_norm_names() {
  static const std::vector<std::string> names = {"post_attention_layernorm", "ln_2"};
  return names;
}

}  // namespace steer
