// apply: a whole SteeringVector (one direction per layer) put on a model in one call, as one
// group of hooks behind one handle; and ablate_direction, the directional ablation of one
// direction at every layer and site (Arditi et al. 2024). See docs/hooks.md, "Whole vectors".
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/architecture.hpp"
#include "steer/error.hpp"
#include "steer/extract.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/io/vector_file.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"
#include "steer/steering_vector.hpp"

namespace steer {

/// What apply does with each layer's direction: add `coefficient * direction`, or remove the
/// activation's component along it (steer::Ablate).
enum class Operation { add, ablate };

/// How apply scales each layer's direction before the coefficient:
/// - none:     as stored (llama.cpp and repeng apply control vectors this way);
/// - unit:     to L2 norm 1, so the coefficient is the norm added;
/// - typical:  to the mean activation norm at that layer and site over the tokens of reference
///             texts (measured when applied), so the coefficient counts typical activations;
/// - recorded: to the activation norm recorded in the vector's origin (activation_norms, which
///             extract fills), the same idea measured on the extraction prompts.
enum class Normalization { none, unit, typical, recorded };

inline const char* normalization_name(Normalization n) {
  switch (n) {
    case Normalization::none: return "none";
    case Normalization::unit: return "unit";
    case Normalization::typical: return "typical";
    case Normalization::recorded: return "recorded";
  }
  return "?";
}

/// "none", "unit", "typical" or "recorded"; throws naming the four.
inline Normalization parse_normalization(const std::string& name) {
  for (auto n : {Normalization::none, Normalization::unit, Normalization::typical,
                 Normalization::recorded}) {
    if (name == normalization_name(n)) return n;
  }
  throw Error(detail::concat("parse_normalization: unknown normalization '", name,
                             "'; expected none, unit, typical or recorded"));
}

/// Six plain declarative sentences with no sentiment, topic or instruction in common: the
/// default reference for Normalization::typical (and the examples' fluency texts).
inline const std::vector<std::string>& reference_texts() {
  static const std::vector<std::string> texts = {
      "The train leaves the station at seven in the morning and arrives in the city two hours "
      "later.",
      "Water boils at one hundred degrees Celsius at sea level, and at a lower temperature in "
      "the mountains.",
      "The library is open from Monday to Saturday, and books can be borrowed for three weeks.",
      "To make tea, heat the water, pour it over the leaves and wait for a few minutes.",
      "The committee will publish its report on the budget at the end of the month.",
      "Most plants need light, water and nutrients from the soil in order to grow.",
  };
  return texts;
}

/// Layers first .. last, both inclusive; last = -1 means the model's last layer.
struct LayerRange {
  int64_t first = 0;
  int64_t last = -1;
};

/// Options of apply.
/// Example: `ApplyOptions().coefficient(4).layer_range({10, 20}).normalization(Normalization::typical)`
struct ApplyOptions {
  /// Add (default) or ablate each layer's direction.
  TORCH_ARG(Operation, operation) = Operation::add;
  /// Multiplier of each (normalized) direction; Operation::ablate takes none (must stay 1).
  TORCH_ARG(double, coefficient) = 1.0;
  /// The layers to steer; each must have a direction in the vector. Default: empty, every
  /// layer of the vector (or those in layer_range).
  TORCH_ARG(std::vector<int64_t>, layers) = {};
  /// The tokens steered. Default: all (as llama.cpp and repeng do).
  TORCH_ARG(Positions, positions) = Positions::all();
  /// How each direction is scaled before the coefficient. Default: none.
  TORCH_ARG(Normalization, normalization) = Normalization::none;
  /// Texts for Normalization::typical. Default: empty, reference_texts().
  TORCH_ARG(std::vector<std::string>, reference_texts) = {};
  /// The site at each layer. Default: "", the site in the vector's origin.
  TORCH_ARG(std::string, site) = "";

 public:
  /// Steer the vector's layers within this range (at least one), e.g. `layer_range({10, 20})`.
  /// Not with layers().
  ApplyOptions& layer_range(LayerRange range) {
    layer_range_ = range;
    return *this;
  }
  const std::optional<LayerRange>& layer_range() const { return layer_range_; }

 private:
  std::optional<LayerRange> layer_range_;
};

namespace detail {

/// "layers 2, 5, 7" or "no layer", for messages.
inline std::string layer_list(const std::vector<int64_t>& layers) {
  std::string out;
  for (auto l : layers) out += concat(out.empty() ? "layers " : ", ", l);
  return out.empty() ? "no layer" : out;
}

}  // namespace detail

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

class AppliedVector;
AppliedVector apply(const Model& model, const SteeringVector& vector,
                    const ApplyOptions& options = {});
AppliedVector ablate_direction(const Model& model, const torch::Tensor& direction,
                               const LayerRange& layers = {});

/// The hooks that apply or ablate_direction attached, as one group: detach, switch on and
/// off, change the coefficient, swap the vector, without touching the hooks one by one.
/// Detaches its hooks when destroyed. Move-only. Changing the coefficient or the vector is
/// safe while other threads run the model (each hook sees the old or the new value whole;
/// a call running at that moment may see some layers old and some new).
/// Example:
/// ```
/// auto love = steer::apply(model, v, steer::ApplyOptions().coefficient(4).layer_range({6, 9}));
/// model.generate("I hate you because");
/// love.set_coefficient(8);      // the same hooks, a stronger push
/// love.set_vector(other);       // other directions for the same layers
/// love.detach();
/// ```
class AppliedVector {
 public:
  AppliedVector() = default;
  AppliedVector(AppliedVector&&) noexcept = default;
  AppliedVector& operator=(AppliedVector&&) noexcept = default;

  /// Switches every hook of the group on or off (they keep their places).
  void enable(bool on) {
    for (auto& h : adds_) h.enable(on);
    for (auto& h : ablates_) h.enable(on);
  }
  bool enabled() const {
    return adds_.empty() ? !ablates_.empty() && ablates_[0].enabled() : adds_[0].enabled();
  }
  /// Removes every hook of the group (the destructor does it too).
  void detach() {
    for (auto& h : adds_) h.detach();
    for (auto& h : ablates_) h.detach();
  }
  bool attached() const {
    return adds_.empty() ? !ablates_.empty() && ablates_[0].attached() : adds_[0].attached();
  }

  /// Hooks in the group.
  size_t size() const { return adds_.size() + ablates_.size(); }
  /// The hook points, in the order attached.
  std::vector<HookPoint> points() const {
    std::vector<HookPoint> out;
    for (const auto& h : adds_) out.push_back(h.point());
    for (const auto& h : ablates_) out.push_back(h.point());
    return out;
  }
  Operation operation() const { return operation_; }
  Normalization normalization() const { return normalization_; }
  /// The layers of the vector whose direction is applied, ascending (ablate_direction of a
  /// tensor: empty, one direction for every hook).
  const std::vector<int64_t>& layers() const { return layers_; }
  /// The norm each layer's direction had after normalization, before the coefficient.
  const LayerValues& normalized_norms() const { return normalized_norms_; }

  double coefficient() const { return coefficient_; }
  /// A new coefficient for every Add hook of the group; an ablation has none (error).
  void set_coefficient(double coefficient) {
    STEER_CHECK(operation_ == Operation::add, "AppliedVector::set_coefficient: the group "
                "ablates directions, which takes no coefficient");
    STEER_CHECK(std::isfinite(coefficient), "AppliedVector::set_coefficient: expected a finite "
                "coefficient, received ", coefficient);
    for (auto& h : adds_) h->set_coefficient(coefficient);
    coefficient_ = coefficient;
  }

  /// New directions for the same layers (the group's normalization is applied again; typical
  /// norms measured at apply are kept). `vector` must have every layer of layers() and the
  /// model's d_model. Everything is checked before any hook changes.
  void set_vector(const SteeringVector& vector) {
    const char* call = "AppliedVector::set_vector";
    STEER_CHECK(!layers_.empty(), call, ": the group ablates one direction given as a tensor; "
                "use set_direction");
    STEER_CHECK(vector.d_model() == d_model_, call, ": the vector has d_model=", vector.d_model(),
                " but model '", model_, "' has d_model=", d_model_);
    std::map<int64_t, torch::Tensor> directions;
    for (const auto layer : layers_) {
      STEER_CHECK(vector.has(layer), call, ": the group steers layer ", layer,
                  " but the new vector has no direction there (it has ", detail::layer_list(vector.layers()),
                  ")");
      directions[layer] = normalized(call, vector, layer);
    }
    for (size_t i = 0; i < adds_.size(); ++i) adds_[i]->set_vector(directions.at(add_layer_[i]));
    for (size_t i = 0; i < ablates_.size(); ++i) {
      ablates_[i]->set_directions(directions.at(ablate_layer_[i]));
    }
    for (const auto& [layer, d] : directions) {
      normalized_norms_[layer] = d.to(torch::kFloat64).norm().item<double>();
    }
  }

  /// A new direction for every hook of a group with one direction (ablate_direction, or an
  /// apply of a one-layer vector).
  void set_direction(const torch::Tensor& direction) {
    const char* call = "AppliedVector::set_direction";
    STEER_CHECK(layers_.size() <= 1, call, ": the group applies ", layers_.size(),
                " layers' directions; use set_vector");
    if (!layers_.empty()) {
      SteeringVector one(d_model_, VectorOrigin().activation_norms(recorded_));
      one.set(layers_[0], direction);
      set_vector(one);
      return;
    }
    const auto unit = detail::unit_direction(call, direction, d_model_, model_);
    std::vector<torch::Tensor> directions;
    for (size_t i = 0; i < ablates_.size(); ++i) directions.push_back(per_hook_[i](unit));
    for (size_t i = 0; i < ablates_.size(); ++i) ablates_[i]->set_directions(directions[i]);
  }

 private:
  friend AppliedVector apply(const Model&, const SteeringVector&, const ApplyOptions&);
  friend AppliedVector ablate_direction(const Model&, const torch::Tensor&, const LayerRange&);

  /// The direction of `layer` scaled as normalization_ says.
  torch::Tensor normalized(const char* call, const SteeringVector& vector, int64_t layer) const {
    const auto& d = vector.at(layer);
    if (normalization_ == Normalization::none) return d;
    const double norm = d.to(torch::kFloat64).norm().item<double>();
    STEER_CHECK(norm > 0, call, ": the direction of layer ", layer, " is zero; normalization '",
                normalization_name(normalization_), "' needs a direction to keep");
    double target = 1.0;
    if (normalization_ == Normalization::typical) target = typical_.at(layer);
    if (normalization_ == Normalization::recorded) {
      const auto& recorded = vector.origin().activation_norms();
      auto found = recorded.find(layer);
      STEER_CHECK(found != recorded.end(), call, ": normalization 'recorded' needs the "
                  "activation norm of layer ", layer, " in the vector's origin, which has ",
                  recorded.size(), " (hint: vectors from steer extract record them; else use "
                  "'typical')");
      target = found->second;
    }
    return (d.to(torch::kFloat64) * (target / norm)).to(torch::kFloat32);
  }

  std::string model_;
  int64_t d_model_ = 0;
  Operation operation_ = Operation::add;
  Normalization normalization_ = Normalization::none;
  double coefficient_ = 1.0;
  std::vector<int64_t> layers_;
  LayerValues typical_, recorded_, normalized_norms_;
  std::vector<HookHandle<Add>> adds_;
  std::vector<HookHandle<Ablate>> ablates_;
  std::vector<int64_t> add_layer_, ablate_layer_;  // the vector layer each hook applies
  // ablate_direction: the direction each hook removes, from the unit direction.
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> per_hook_;
};

namespace detail {

/// Checks that `vector` fits `model` (its architecture when the origin names one, e.g. a
/// control vector's model_hint; d_model, number of layers, layers in range) and returns the
/// site in its origin as a layer site. `what` names the vector in messages.
inline Site check_vector_fits(const SteeringVector& vector, const Model& model,
                              const std::string& what) {
  const auto name = model_name(model);
  const auto& architecture = vector.origin().architecture();
  STEER_CHECK(architecture.empty() || architecture == model.config().hf_model_type, what,
              " was written for a '", architecture, "' model but model '", name, "' is a '",
              model.config().hf_model_type, "' (hint: vector from another model?)");
  STEER_CHECK(vector.d_model() == model.d_model(), what, " has d_model=", vector.d_model(),
              " but model '", name, "' has d_model=", model.d_model(),
              " (hint: vector from another model?)");
  const auto n_layers = vector.origin().n_layers();
  STEER_CHECK(n_layers == 0 || n_layers == model.n_layers(), what, " was made for a model with ",
              n_layers, " layers but model '", name, "' has ", model.n_layers(),
              " (hint: vector from another model?)");
  for (const auto layer : vector.layers()) {
    STEER_CHECK(layer < model.n_layers(), what, " has a direction for layer ", layer,
                " but model '", name, "' has layers 0 to ", model.n_layers() - 1,
                " (inclusive) (hint: vector from another model?)");
  }
  const auto& site = vector.origin().site();
  try {
    return parse_site(site);
  } catch (const Error&) {
    throw Error(concat(what, " was read at site '", site, "'; vectors apply at resid_pre, "
                       "resid_mid, resid_post, attn_out or mlp_out"));
  }
}

/// `range` with last = -1 resolved, checked against the model.
inline LayerRange checked_range(const char* call, const LayerRange& range, const Model& model) {
  LayerRange r = range;
  if (r.last == -1) r.last = model.n_layers() - 1;
  STEER_CHECK(r.first >= 0 && r.first <= r.last && r.last < model.n_layers(), call,
              ": layer range ", range.first, " .. ", range.last, " is not within 0 .. ",
              model.n_layers() - 1, " of model '", model_name(model), "' (first <= last; last "
              "-1 means the last layer)");
  return r;
}

/// The mean L2 norm of the activations at `site` of each of `layers` over the tokens of
/// `texts`, leaving out position 0: the first token's residual norm is one or two orders of
/// magnitude larger than any other's in many models (an attention sink).
inline LayerValues typical_norms(const char* call, const Model& model,
                                 const std::vector<int64_t>& layers, Site site,
                                 const std::vector<std::string>& texts) {
  const auto acts = read_activations(
      model, texts,
      ReadOptions().layers(layers).site(site).positions(Positions::from(1)).pooling(Pooling::tokens));
  LayerValues norms;
  for (auto layer : layers) {
    const double norm = acts.at(layer).to(torch::kFloat64).norm(2, /*dim=*/1).mean().item<double>();
    STEER_CHECK(std::isfinite(norm) && norm > 0, call, ": the typical activation norm at ",
                site_name(site), ".", layer, " is ", norm, " (reference texts of one token?)");
    norms[layer] = norm;
  }
  return norms;
}

}  // namespace detail

/// Applies a whole SteeringVector to `model`: for each chosen layer, steer::Add of its
/// (normalized) direction times the coefficient, or steer::Ablate of it, at the vector's site
/// (or options.site), for the tokens options.positions selects. One handle for the group.
/// Throws, before attaching anything, for a vector that does not fit the model (d_model,
/// layers, site), layers it lacks, an empty selection, or options that the operation would
/// ignore (a coefficient or a normalization with ablate).
/// Example:
/// ```
/// auto v = steer::io::read_steering_vector("love.gguf");
/// auto h = steer::apply(model, v, steer::ApplyOptions().coefficient(4));  // as llama.cpp
/// auto text = model.generate("I hate you because").front().text;
/// ```
inline AppliedVector apply(const Model& model, const SteeringVector& vector,
                           const ApplyOptions& options) {
  const char* call = "apply";
  STEER_CHECK(!vector.empty(), call, ": the vector has no direction");
  Site site = detail::check_vector_fits(vector, model, "apply: the vector");
  if (!options.site().empty()) {
    try {
      site = parse_site(options.site());
    } catch (const Error& e) {
      throw Error(detail::concat(call, ": ", e.what()));
    }
  }
  STEER_CHECK(std::isfinite(options.coefficient()), call, ": expected a finite coefficient, "
              "received ", options.coefficient());
  if (options.operation() == Operation::ablate) {
    STEER_CHECK(options.coefficient() == 1.0, call, ": ablation removes the component along "
                "each direction and takes no coefficient (received ", options.coefficient(), ")");
    STEER_CHECK(options.normalization() == Normalization::none, call, ": ablation uses unit "
                "directions, so normalization '", normalization_name(options.normalization()),
                "' would change nothing (leave it none)");
  }
  STEER_CHECK(options.layers().empty() || !options.layer_range(), call,
              ": give layers or layer_range, not both");

  std::vector<int64_t> layers;
  if (!options.layers().empty()) {
    for (const auto layer : options.layers()) {
      STEER_CHECK(vector.has(layer), call, ": layer ", layer, " has no direction in the vector "
                  "(it has ", detail::layer_list(vector.layers()), ")");
      STEER_CHECK(std::find(layers.begin(), layers.end(), layer) == layers.end(), call,
                  ": layer ", layer, " is given twice");
      layers.push_back(layer);
    }
    std::sort(layers.begin(), layers.end());
  } else if (options.layer_range()) {
    const auto range = detail::checked_range(call, *options.layer_range(), model);
    for (const auto layer : vector.layers()) {
      if (layer >= range.first && layer <= range.last) layers.push_back(layer);
    }
    STEER_CHECK(!layers.empty(), call, ": the vector has no direction in layers ", range.first,
                " .. ", range.last, " (it has ", detail::layer_list(vector.layers()), ")");
  } else {
    layers = vector.layers();
  }

  AppliedVector out;
  out.model_ = detail::model_name(model);
  out.d_model_ = model.d_model();
  out.operation_ = options.operation();
  out.normalization_ = options.normalization();
  out.coefficient_ = options.coefficient();
  out.layers_ = layers;
  out.recorded_ = vector.origin().activation_norms();
  if (options.normalization() == Normalization::typical) {
    const auto& texts =
        options.reference_texts().empty() ? reference_texts() : options.reference_texts();
    out.typical_ = detail::typical_norms(call, model, layers, site, texts);
  }
  std::map<int64_t, torch::Tensor> directions;
  for (const auto layer : layers) {
    directions[layer] = out.normalized(call, vector, layer);
    out.normalized_norms_[layer] = directions[layer].to(torch::kFloat64).norm().item<double>();
  }
  for (const auto layer : layers) {
    const HookPoint point(site, layer);
    if (options.operation() == Operation::add) {
      out.adds_.push_back(
          hook(model, point, Add(directions.at(layer), options.coefficient()), options.positions()));
      out.add_layer_.push_back(layer);
    } else {
      out.ablates_.push_back(hook(model, point, Ablate(directions.at(layer)), options.positions()));
      out.ablate_layer_.push_back(layer);
    }
  }
  return out;
}


/// Directional ablation at every layer of `layers` (default: all) and every position, as hooks:
/// steer::Ablate(direction) at resid_pre, attn_out and mlp_out of each layer (Arditi et al.
/// 2024). The embedding output (resid_pre.0) and every attention and MLP output lose their
/// component along the direction, so the residual stream never carries it; the resid_pre
/// hooks of later layers then remove only rounding error. In a family whose attention and MLP
/// outputs pass a scaling norm before the residual add (Gemma 2 and 3, architecture.hpp),
/// attn_out and mlp_out lose the direction scaled by that norm's weight instead, which is what
/// keeps the norm's output free of it. orthogonalize() makes the same model in its weights. The
/// hooks stay attached while the handle lives.
/// Example:
/// ```
/// auto ablation = steer::ablate_direction(model, refusal);   // 3 * n_layers hooks
/// auto logits = model.logits(ids);                           // ablated
/// ablation.detach();
/// ```
inline AppliedVector ablate_direction(const Model& model, const torch::Tensor& direction,
                                      const LayerRange& layers) {
  const char* call = "ablate_direction";
  const auto unit = detail::unit_direction(call, direction, model.d_model(), detail::model_name(model));
  STEER_CHECK(model.hook_table() != nullptr, call, ": model '", detail::model_name(model),
              "' was loaded with ModelOptions().instrument(false), so it has no hook points");
  const auto range = detail::checked_range(call, layers, model);
  AppliedVector out;
  out.model_ = detail::model_name(model);
  out.d_model_ = model.d_model();
  out.operation_ = Operation::ablate;
  // The direction each hook removes, from the unit direction r (also for set_direction).
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> per_hook;
  const auto& arch = model.config().architecture();
  for (int64_t layer = range.first; layer <= range.last; ++layer) {
    per_hook.push_back([](const torch::Tensor& r) { return r; });
    for (const auto* writer : {&arch.attn_writer, &arch.mlp_writer}) {
      per_hook.push_back([model, layer, writer = *writer](const torch::Tensor& r) {
        return detail::writer_direction("ablate_direction", model, layer, writer, r);
      });
    }
    for (auto site : {Site::resid_pre, Site::attn_out, Site::mlp_out}) {
      const auto& of = per_hook[out.ablates_.size()];
      out.ablates_.push_back(hook(model, HookPoint(site, layer), Ablate(of(unit)), Positions::all()));
      out.ablate_layer_.push_back(-1);
    }
  }
  out.per_hook_ = std::move(per_hook);
  return out;
}

/// ablate_direction of the direction of `vector` at `layer` (optional when the vector has one
/// direction, e.g. a file saved by examples/refusal_direction --save-direction).
inline AppliedVector ablate_direction(const Model& model, const SteeringVector& vector,
                                      std::optional<int64_t> layer, const LayerRange& layers = {}) {
  const char* call = "ablate_direction";
  STEER_CHECK(!vector.empty(), call, ": the vector has no direction");
  STEER_CHECK(layer || vector.size() == 1, call, ": the vector has ", vector.size(),
              " directions (", detail::layer_list(vector.layers()),
              "); say which one to ablate (e.g. FILE:", vector.layers().front(), ")");
  const int64_t source = layer ? *layer : vector.layers().front();
  STEER_CHECK(vector.has(source), call, ": the vector has no direction for layer ", source,
              " (it has ", detail::layer_list(vector.layers()), ")");
  detail::check_vector_fits(vector, model, "ablate_direction: the vector");
  return ablate_direction(model, vector.at(source), layers);
}

/// ablate_direction of a direction file (.gguf or .safetensors, io::read_steering_vector).
inline AppliedVector ablate_direction(const Model& model, const std::string& file,
                                      std::optional<int64_t> layer = std::nullopt,
                                      const LayerRange& layers = {}) {
  return ablate_direction(model, io::read_steering_vector(file), layer, layers);
}

}  // namespace steer
