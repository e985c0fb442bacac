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

#include "steer/architecture.hpp"
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

/// The discoverable architecture row (architecture.hpp) whose blocks `layers` follow, as found
/// by discover_layers: of the rows with these block, attention and MLP paths, the one with the
/// most of its norms (mid_norm, the writers' scale norms) in block 0 (Gemma 2's sandwich norms
/// over Llama's single post-attention norm). nullptr when none fits.
inline const Architecture* layout_of(const std::vector<LayerLayout>& layers,
                                     const std::set<std::string>& paths) {
  if (layers.empty()) return nullptr;
  const auto& first = layers.front();
  const Architecture* best = nullptr;
  int best_score = -1;
  for (const auto& a : architectures()) {
    if (!a.discoverable || first.block.rfind(a.blocks, 0) != 0) continue;
    if (first.attn != first.block + "." + a.attn || first.mlp != first.block + "." + a.mlp) continue;
    int score = 0;
    for (const auto& norm : {a.mid_norm, a.attn_writer.scale_norm, a.mlp_writer.scale_norm}) {
      score += !norm.empty() && paths.count(first.block + "." + norm) ? 1 : 0;
    }
    if (score > best_score) best = &a, best_score = score;
  }
  return best;
}

/// The layer layout of a model found from its module paths alone, for modules exported
/// without steer.json: the blocks, attention and MLP of a discoverable row of architectures().
/// Layers must be numbered 0 .. N-1 without gaps. Throws when no family fits.
/// Example: `auto layers = discover_layers(model.module_paths());`
inline std::vector<LayerLayout> discover_layers(const std::vector<std::string>& paths) {
  const std::set<std::string> all(paths.begin(), paths.end());
  std::string expected;
  std::set<std::string> tried;
  for (const auto& f : architectures()) {
    if (!f.discoverable || !tried.insert(f.blocks + " " + f.attn + " " + f.mlp).second) continue;
    std::string families;
    for (const auto& same : architectures()) {
      if (same.discoverable && same.blocks == f.blocks) {
        families += (families.empty() ? "" : ", ") + same.family;
      }
    }
    expected += detail::concat(expected.empty() ? "" : ", ", "'", f.blocks, "N' (", families,
                               ")");
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
      " module paths; expected blocks ", expected, ", each with its attention and mlp "
      "submodules"));
}

}  // namespace steer
