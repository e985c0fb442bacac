// SteeringVector: one direction per layer (float32 [d_model] tensors) plus where it came from
// (model, hook point, positions, method), with the arithmetic researchers do on vectors.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"

namespace steer {

class SteeringVector;
namespace detail {
inline SteeringVector combine(const SteeringVector& a, const SteeringVector& b, double sign,
                       const char* op);
}  // namespace detail

/// Per-layer numbers, keyed by layer (0-based).
using LayerValues = std::map<int64_t, double>;
/// Free-form string metadata.
using StringMap = std::map<std::string, std::string>;

/// Where a steering vector came from. Every field is optional; `site` defaults to
/// "resid_post" (the output of block `layer`, where llama.cpp and repeng apply control vectors).
/// Example: `VectorOrigin().model("smollm2-135m-instruct").n_layers(30).site("resid_post")
///               .positions("last").method("mean-diff")`
struct VectorOrigin {
  /// The model the vector was read from (a name, e.g. its directory's).
  TORCH_ARG(std::string, model) = "";
  /// The model's architecture as Hugging Face names it (`model_type`: "llama", "qwen2",
  /// "gemma2"): what a control vector's `controlvector.model_hint` says, as repeng and
  /// llama.cpp write it. "" when unknown. `steer generate` refuses a vector of another one.
  TORCH_ARG(std::string, architecture) = "";
  /// The model's number of layers; 0 when unknown (e.g. a control vector from elsewhere).
  TORCH_ARG(int64_t, n_layers) = 0;
  /// The hook point the activations were read at: "resid_pre", "resid_mid", "resid_post", ...
  TORCH_ARG(std::string, site) = "resid_post";
  /// Which token positions were read, as a spec string, e.g. "last", "all", "-3:".
  TORCH_ARG(std::string, positions) = "";
  /// How the directions were computed: "mean-diff", "pca-diff", "probe", ...
  TORCH_ARG(std::string, method) = "";
  /// The typical activation norm at each layer (mean L2 norm of the activations read), for
  /// SteeringVector::normalized_to_activations. Empty when not recorded.
  TORCH_ARG(LayerValues, activation_norms) = {};
  /// Anything else (dataset, prompt template, seed, ...).
  TORCH_ARG(StringMap, metadata) = {};
};

/// A set of per-layer directions (map layer -> float32 CPU tensor [d_model]) and its origin.
/// Every direction is checked on the way in: shape [d_model] (one d_model for all layers),
/// finite values, layer within 0 .. n_layers-1 when n_layers is known. Operations return new
/// vectors. Example:
/// ```
/// steer::SteeringVector v(/*d_model=*/576, steer::VectorOrigin().model("smollm2").n_layers(30));
/// v.set(/*layer=*/12, direction);
/// auto w = v.normalized().scaled(/*coefficient=*/4.0);
/// ```
class SteeringVector {
 public:
  SteeringVector() = default;
  /// An empty vector for a model with `d_model` columns.
  explicit SteeringVector(int64_t d_model, VectorOrigin origin = {});

  /// Sets the direction of `layer` (copied to a float32 CPU contiguous tensor [d_model]).
  void set(int64_t layer, const torch::Tensor& direction);
  /// The direction of `layer`, or an error listing the layers the vector has.
  const torch::Tensor& at(int64_t layer) const;
  bool has(int64_t layer) const { return directions_.count(layer) != 0; }
  /// The layers that have a direction, ascending.
  std::vector<int64_t> layers() const;
  const std::map<int64_t, torch::Tensor>& directions() const { return directions_; }
  size_t size() const { return directions_.size(); }
  bool empty() const { return directions_.empty(); }

  int64_t d_model() const { return d_model_; }
  const VectorOrigin& origin() const { return origin_; }
  /// The origin, to edit (e.g. add metadata); n_layers is checked again by check().
  VectorOrigin& origin() { return origin_; }

  /// The L2 norm of each layer's direction.
  LayerValues norms() const;

  /// Every direction times `coefficient` (finite).
  SteeringVector scaled(double coefficient) const;
  /// Every direction scaled to unit L2 norm; a zero direction is an error naming its layer.
  SteeringVector normalized() const;
  /// Every direction scaled to L2 norm `norm`.
  SteeringVector normalized_to(double norm) const;
  /// Each direction scaled to the activation norm recorded for its layer in the origin, so a
  /// coefficient means "this many typical activations" at every layer.
  SteeringVector normalized_to_activations() const;
  /// The layers first .. last (both inclusive); an error when none of them has a direction.
  SteeringVector select_layers(int64_t first, int64_t last) const;
  /// The listed layers; each must have a direction.
  SteeringVector select_layers(const std::vector<int64_t>& layers) const;

  /// Checks every invariant again (after editing origin()); throws steer::Error.
  void check(const std::string& call = "SteeringVector::check") const;

 private:
  friend SteeringVector detail::combine(const SteeringVector&, const SteeringVector&, double,
                                        const char*);
  /// Checks one direction without converting it (must already be float32 CPU [d_model]).
  void validate(int64_t layer, const torch::Tensor& direction, const std::string& call) const;
  /// A float32 CPU contiguous copy of `direction`, checked.
  torch::Tensor checked(int64_t layer, const torch::Tensor& direction,
                        const std::string& call) const;

  int64_t d_model_ = 0;
  VectorOrigin origin_;
  std::map<int64_t, torch::Tensor> directions_;
};

/// a + b, layer by layer (a layer that only one has is kept as it is). Both must have the same
/// d_model, model, site and n_layers (where both are known); the result has a's origin with
/// the methods and positions of both recorded, e.g. method "(mean-diff) + (pca-diff)".
SteeringVector operator+(const SteeringVector& a, const SteeringVector& b);
/// a - b, with the same checks as operator+.
SteeringVector operator-(const SteeringVector& a, const SteeringVector& b);
/// v.scaled(coefficient).
inline SteeringVector operator*(double coefficient, const SteeringVector& v) {
  return v.scaled(coefficient);
}
inline SteeringVector operator*(const SteeringVector& v, double coefficient) {
  return v.scaled(coefficient);
}

// ----------------------------------------------------------------------------- implementation

inline SteeringVector::SteeringVector(int64_t d_model, VectorOrigin origin)
    : d_model_(d_model), origin_(std::move(origin)) {
  STEER_CHECK(d_model > 0, "SteeringVector: expected d_model > 0, received ", d_model);
  STEER_CHECK(origin_.n_layers() >= 0, "SteeringVector: expected n_layers >= 0 (0: unknown), "
              "received ", origin_.n_layers());
}

inline void SteeringVector::validate(int64_t layer, const torch::Tensor& direction,
                                     const std::string& call) const {
  STEER_CHECK(d_model_ > 0, call, ": the vector has no d_model (hint: construct it with "
              "SteeringVector(d_model, origin))");
  STEER_CHECK(layer >= 0, call, ": layer ", layer, " is negative; layers count from 0");
  STEER_CHECK(origin_.n_layers() == 0 || layer < origin_.n_layers(), call, ": layer ", layer,
              " is outside 0 .. ", origin_.n_layers() - 1, " of model '", origin_.model(), "' (",
              origin_.n_layers(), " layers)");
  STEER_CHECK(direction.defined(), call, ": layer ", layer, " has an undefined tensor");
  STEER_CHECK(direction.dim() == 1 && direction.size(0) == d_model_, call, ": layer ", layer,
              " has shape ", direction.sizes(), " but the vector has d_model=", d_model_,
              " (hint: one direction per layer, shape [d_model]; vector from another model?)");
  STEER_CHECK(direction.is_floating_point(), call, ": layer ", layer, " has dtype ",
              direction.scalar_type(), "; expected a floating-point tensor");
  const auto finite = torch::isfinite(direction);
  if (!finite.all().item<bool>()) {
    const auto index = (~finite).nonzero()[0][0].item<int64_t>();
    throw Error(steer::detail::concat(call, ": layer ", layer, " has a non-finite value (",
                                      direction[index].item<double>(), ") at index ", index,
                                      " (hint: NaN from a zero-norm normalization, or an "
                                      "overflow?)"));
  }
}

inline torch::Tensor SteeringVector::checked(int64_t layer, const torch::Tensor& direction,
                                             const std::string& call) const {
  validate(layer, direction, call);
  auto t = direction.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (t.data_ptr() == direction.data_ptr()) t = t.clone();  // own the values
  validate(layer, t, call);  // float32 may overflow where float64 did not
  return t;
}

inline void SteeringVector::set(int64_t layer, const torch::Tensor& direction) {
  directions_[layer] = checked(layer, direction, "SteeringVector::set");
}

inline const torch::Tensor& SteeringVector::at(int64_t layer) const {
  auto found = directions_.find(layer);
  if (found == directions_.end()) {
    std::string have;
    for (const auto& [l, t] : directions_) have += steer::detail::concat(have.empty() ? "" : ", ", l);
    throw Error(steer::detail::concat("SteeringVector::at: no direction for layer ", layer,
                                      " (the vector has layers: ", have.empty() ? "none" : have,
                                      ")"));
  }
  return found->second;
}

inline std::vector<int64_t> SteeringVector::layers() const {
  std::vector<int64_t> out;
  for (const auto& [l, t] : directions_) out.push_back(l);
  return out;
}

inline LayerValues SteeringVector::norms() const {
  LayerValues out;
  for (const auto& [l, t] : directions_) out[l] = t.to(torch::kFloat64).norm().item<double>();
  return out;
}

inline void SteeringVector::check(const std::string& call) const {
  STEER_CHECK(d_model_ > 0, call, ": expected d_model > 0, the vector has ", d_model_);
  STEER_CHECK(origin_.n_layers() >= 0, call, ": expected n_layers >= 0 (0: unknown), the "
              "vector has ", origin_.n_layers());
  for (const auto& [l, t] : directions_) validate(l, t, call);
  for (const auto& [l, norm] : origin_.activation_norms()) {
    STEER_CHECK(std::isfinite(norm) && norm >= 0, call, ": the activation norm of layer ", l,
                " is ", norm, "; expected a finite non-negative number");
  }
}

inline SteeringVector SteeringVector::scaled(double coefficient) const {
  STEER_CHECK(std::isfinite(coefficient), "SteeringVector::scaled: expected a finite "
              "coefficient, received ", coefficient);
  SteeringVector out(d_model_, origin_);
  for (const auto& [l, t] : directions_) out.directions_[l] = t * coefficient;
  out.check("SteeringVector::scaled");  // a large coefficient can overflow float32
  return out;
}

inline SteeringVector SteeringVector::normalized_to(double norm) const {
  STEER_CHECK(std::isfinite(norm) && norm >= 0, "SteeringVector::normalized_to: expected a "
              "finite norm >= 0, received ", norm);
  SteeringVector out(d_model_, origin_);
  for (const auto& [l, t] : directions_) {
    const double n = t.to(torch::kFloat64).norm().item<double>();
    STEER_CHECK(n > 0, "SteeringVector::normalized_to: the direction of layer ", l,
                " is zero and has no direction to keep");
    out.directions_[l] = (t.to(torch::kFloat64) * (norm / n)).to(torch::kFloat32);
  }
  return out;
}

inline SteeringVector SteeringVector::normalized() const { return normalized_to(1.0); }

inline SteeringVector SteeringVector::normalized_to_activations() const {
  const auto& norms = origin_.activation_norms();
  SteeringVector out(d_model_, origin_);
  for (const auto& [l, t] : directions_) {
    auto found = norms.find(l);
    STEER_CHECK(found != norms.end(), "SteeringVector::normalized_to_activations: no "
                "activation norm recorded for layer ", l, " (", norms.size(),
                " layers have one; hint: set VectorOrigin::activation_norms when making the "
                "vector)");
    const double n = t.to(torch::kFloat64).norm().item<double>();
    STEER_CHECK(n > 0, "SteeringVector::normalized_to_activations: the direction of layer ", l,
                " is zero and has no direction to keep");
    out.directions_[l] = (t.to(torch::kFloat64) * (found->second / n)).to(torch::kFloat32);
  }
  return out;
}

inline SteeringVector SteeringVector::select_layers(int64_t first, int64_t last) const {
  STEER_CHECK(first <= last, "SteeringVector::select_layers: expected first <= last, received ",
              first, " .. ", last);
  SteeringVector out(d_model_, origin_);
  for (const auto& [l, t] : directions_) {
    if (l >= first && l <= last) out.directions_[l] = t;
  }
  if (out.empty()) {
    std::string have;
    for (const auto& [l, t] : directions_) have += steer::detail::concat(have.empty() ? "" : ", ", l);
    throw Error(steer::detail::concat("SteeringVector::select_layers: no direction in layers ",
                                      first, " .. ", last, " (inclusive; the vector has layers: ",
                                      have.empty() ? "none" : have, ")"));
  }
  return out;
}

inline SteeringVector SteeringVector::select_layers(const std::vector<int64_t>& layers) const {
  SteeringVector out(d_model_, origin_);
  for (const auto l : layers) {
    if (!has(l)) at(l);  // throws, listing the layers
    out.directions_[l] = directions_.at(l);
  }
  return out;
}

namespace detail {

inline SteeringVector combine(const SteeringVector& a, const SteeringVector& b, double sign,
                              const char* op) {
  const char* call = sign > 0 ? "SteeringVector operator+" : "SteeringVector operator-";
  STEER_CHECK(a.d_model() > 0 && b.d_model() > 0, call, ": both vectors need a d_model, "
              "received ", a.d_model(), " and ", b.d_model());
  STEER_CHECK(a.d_model() == b.d_model(), call, ": the vectors have d_model=", a.d_model(),
              " and d_model=", b.d_model(), " (hint: vectors from different models?)");
  const auto& oa = a.origin();
  const auto& ob = b.origin();
  STEER_CHECK(oa.model().empty() || ob.model().empty() || oa.model() == ob.model(), call,
              ": the vectors come from model '", oa.model(), "' and model '", ob.model(),
              "' (hint: set origin().model() when they are the same model under two names)");
  STEER_CHECK(oa.site() == ob.site(), call, ": the vectors were read at hook point '",
              oa.site(), "' and '", ob.site(), "'; adding them mixes two spaces");
  STEER_CHECK(oa.n_layers() == 0 || ob.n_layers() == 0 || oa.n_layers() == ob.n_layers(), call,
              ": the vectors come from models with ", oa.n_layers(), " and ", ob.n_layers(),
              " layers");
  STEER_CHECK(oa.architecture().empty() || ob.architecture().empty() ||
                  oa.architecture() == ob.architecture(),
              call, ": the vectors come from a '", oa.architecture(), "' and a '",
              ob.architecture(), "' model (hint: vectors from different architectures?)");
  VectorOrigin origin = oa;
  if (origin.model().empty()) origin.model(ob.model());
  if (origin.architecture().empty()) origin.architecture(ob.architecture());
  if (origin.n_layers() == 0) origin.n_layers(ob.n_layers());
  if (oa.method() != ob.method() || sign < 0) {
    origin.method(steer::detail::concat("(", oa.method(), ") ", op, " (", ob.method(), ")"));
  }
  if (oa.positions() != ob.positions()) {
    origin.positions(steer::detail::concat("(", oa.positions(), ") ", op, " (", ob.positions(), ")"));
  }
  SteeringVector out(a.d_model(), origin);
  out.directions_ = a.directions_;
  for (const auto& [l, t] : b.directions_) {
    auto found = out.directions_.find(l);
    if (found == out.directions_.end()) {
      out.directions_[l] = t * sign;
    } else {
      found->second = found->second + t * sign;
    }
  }
  out.check(call);
  return out;
}

}  // namespace detail

inline SteeringVector operator+(const SteeringVector& a, const SteeringVector& b) {
  return detail::combine(a, b, 1.0, "+");
}

inline SteeringVector operator-(const SteeringVector& a, const SteeringVector& b) {
  return detail::combine(a, b, -1.0, "-");
}

}  // namespace steer
