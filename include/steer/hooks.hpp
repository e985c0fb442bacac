// Hooks: the hook template, its actions (Record, Add, Ablate, Lambda) and the RAII handle that
// keeps a hook attached to a hook point of a Model (see docs/hooks.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/call_layout.hpp"
#include "steer/detail/instrument.hpp"
#include "steer/error.hpp"
#include "steer/hook_point.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"

namespace steer {

/// What a hook sees besides the activation: the hook point, the layout of the call (absolute
/// positions, left padding, tokens in the KV cache) and the tokens its Positions select.
class HookContext {
 public:
  HookContext(const HookPoint& point, const CallLayout& layout, const Positions& positions,
              const std::string& who)
      : point_(point), layout_(layout), positions_(positions), who_(who) {}

  const HookPoint& point() const { return point_; }
  const CallLayout& layout() const { return layout_; }
  /// Tokens already in the KV cache before this call (0 for full recompute and prefill).
  int64_t past_length() const { return layout_.past_length(); }
  /// [batch, tokens] int64: absolute position of each token of this call, -1 at padding.
  const torch::Tensor& positions() const { return layout_.positions(); }
  /// [batch] int64: left padding of each sequence.
  torch::Tensor left_padding() const { return layout_.left_padding(); }
  /// [batch, tokens] bool: the tokens the hook's Positions select; an undefined tensor when
  /// every token of the call is selected (no padding, Positions::all()).
  const torch::Tensor& selected() const {
    if (!selected_done_) {
      selected_ = positions_.select(layout_, who_);
      selected_done_ = true;
    }
    return selected_;
  }
  /// "Add at resid_post.3": the hook, for error messages.
  const std::string& who() const { return who_; }

 private:
  const HookPoint& point_;
  const CallLayout& layout_;
  const Positions& positions_;
  const std::string& who_;
  mutable torch::Tensor selected_;
  mutable bool selected_done_ = false;
};

/// What an action learns when it is attached to a model.
struct HookTarget {
  HookPoint point;
  /// Width of the activation: d_model at layer sites, -1 (known at the first call) at module paths.
  int64_t width = -1;
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  std::string model;  ///< the model's name (its directory's name), for messages
  /// "layer 12" or "module 'model.layers.3.mlp.down_proj'", for messages.
  std::string where() const {
    return point.site == Site::module ? "module '" + point.path + "'"
                                      : detail::concat("layer ", point.layer);
  }
};

namespace detail {

/// Checks a steering vector (1-D, finite) and returns it as float64 on the CPU.
inline torch::Tensor checked_vector(const char* who, const torch::Tensor& v, const char* what) {
  STEER_CHECK(v.defined() && v.dim() == 1 && v.numel() > 0, who, ": ", what,
              " must be 1-D [d_model], got ", v.defined() ? v.sizes() : c10::IntArrayRef{});
  STEER_CHECK(v.is_floating_point(), who, ": ", what, " must be floating point, got ",
              v.scalar_type());
  auto cpu = v.detach().to(torch::kCPU, torch::kFloat64);
  const auto bad = (~torch::isfinite(cpu)).nonzero();
  STEER_CHECK(bad.size(0) == 0, who, ": ", what, " has ", bad.size(0),
              " NaN or infinite entries (first at index ", bad.size(0) ? bad[0][0].item<int64_t>() : 0,
              ") (hint: a mean over zero samples, or a division by a zero norm?)");
  return cpu;
}

inline void check_width(const char* who, int64_t width, const HookTarget& target) {
  if (target.width < 0) return;
  STEER_CHECK(width == target.width, who, ": vector has d_model=", width, " but ", target.where(),
              " of model '", target.model, "' has ", target.width,
              " (hint: vector from another model?)");
}

inline void check_runtime_width(const std::string& who, const torch::Tensor& x, int64_t width) {
  STEER_CHECK(x.dim() >= 1 && x.size(-1) == width, who, ": vector has d_model=", width,
              " but the activation has shape ", x.sizes(), " (hint: a vector for another module?)");
}

inline torch::Tensor as_weight(const torch::Tensor& selected, const torch::Tensor& x) {
  return selected.unsqueeze(-1).to(x.scalar_type());
}

/// A mutex that actions can hold and still be moved into a hook: a moved or copied action
/// gets a fresh, unlocked mutex (actions are moved before their first call, never during one).
class ActionMutex {
 public:
  ActionMutex() = default;
  ActionMutex(const ActionMutex&) {}
  ActionMutex& operator=(const ActionMutex&) { return *this; }
  std::mutex& get() const { return mutex_; }

 private:
  mutable std::mutex mutex_;
};

/// `coefficient * vector` cast to the model's dtype; throws when it does not fit (a vector
/// finite in float64 whose scaled values overflow float32 / float16 / bfloat16 to infinity).
inline torch::Tensor scaled_vector(const std::string& who, const torch::Tensor& vector,
                                   double coefficient, torch::Device device, torch::Dtype dtype) {
  auto scaled = (vector * coefficient).to(dtype);
  if (!torch::isfinite(scaled).all().item<bool>()) {
    throw Error(concat(who, ": coefficient ", coefficient, " times the vector (largest |entry| ",
                       vector.abs().max().item<double>(), ") overflows ", dtype,
                       " (hint: a coefficient meant for a unit vector, or a vector scaled twice?)"));
  }
  return scaled.to(device);
}

}  // namespace detail

// ----------------------------------------------------------------------------- actions

/// Adds `coefficient * vector` to the activation at the selected positions.
/// Thread-safe: calls on several threads may run it while another sets the coefficient.
/// At its first call it warns (steer::warn) when |coefficient * vector| is over 100 times the
/// mean norm of the activation it is added to: the model's output is then noise.
/// Example: `steer::hook(model, "resid_post.12", steer::Add(v, /*coefficient=*/4.0))`
class Add {
 public:
  static constexpr const char* kName = "Add";
  /// |c v| over this many mean activation norms gets a warning at the first call.
  static constexpr double kWarnRatio = 100.0;

  explicit Add(const torch::Tensor& vector, double coefficient = 1.0)
      : vector_(detail::checked_vector(kName, vector, "vector")), coefficient_(coefficient) {
    check_coefficient(kName, coefficient);
  }

  void prepare(const HookTarget& target) {
    detail::check_width(kName, vector_.size(0), target);
    device_ = target.device;
    dtype_ = target.dtype;
    who_ = std::string(kName) + " at " + target.point.to_string();
    scaled_ = detail::scaled_vector(who_, vector_, coefficient_, device_, dtype_);
  }
  /// Changes the coefficient (one device copy now; none per call). Throws for a coefficient
  /// that is not finite or whose product with the vector overflows the model's dtype.
  void set_coefficient(double coefficient) {
    check_coefficient("Add::set_coefficient", coefficient);
    std::lock_guard<std::mutex> lock(mutex_.get());
    if (scaled_.defined()) scaled_ = detail::scaled_vector(who_, vector_, coefficient, device_, dtype_);
    coefficient_ = coefficient;
    warned_ = false;
  }
  double coefficient() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return coefficient_;
  }
  /// Replaces the vector (same width; finite), keeping the coefficient. Like set_coefficient,
  /// safe while other threads run the model: each call sees the old or the new vector whole.
  void set_vector(const torch::Tensor& vector) {
    auto checked = detail::checked_vector("Add::set_vector", vector, "vector");
    std::lock_guard<std::mutex> lock(mutex_.get());
    STEER_CHECK(checked.size(0) == vector_.size(0), who_, ": set_vector: the hook adds a vector "
                "of d_model=", vector_.size(0), "; the new one has d_model=", checked.size(0));
    if (scaled_.defined()) scaled_ = detail::scaled_vector(who_, checked, coefficient_, device_, dtype_);
    vector_ = std::move(checked);
    warned_ = false;
  }
  /// The vector (float64, CPU), as given.
  torch::Tensor vector() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return vector_;
  }

  torch::Tensor operator()(const torch::Tensor& x, const HookContext& ctx) const {
    torch::Tensor scaled;
    bool check_norm = false;
    {
      std::lock_guard<std::mutex> lock(mutex_.get());
      scaled = scaled_;
      check_norm = !warned_;
      warned_ = true;
    }
    detail::check_runtime_width(ctx.who(), x, scaled.size(0));
    if (check_norm) warn_if_huge(x, ctx, scaled);
    const auto& selected = ctx.selected();
    if (!selected.defined()) return x + scaled;
    return torch::addcmul(x, detail::as_weight(selected, x), scaled);
  }

 private:
  static void check_coefficient(const char* who, double coefficient) {
    STEER_CHECK(std::isfinite(coefficient), who, ": coefficient must be finite, got ",
                coefficient);
  }
  void warn_if_huge(const torch::Tensor& x, const HookContext& ctx,
                    const torch::Tensor& scaled) const {
    const double added = scaled.to(torch::kFloat64).norm().item<double>();
    const double typical = x.detach().to(torch::kFloat32).norm(2, -1).mean().item<double>();
    if (std::isfinite(typical) && added > kWarnRatio * typical) {
      steer::warn(detail::concat(ctx.who(), ": |coefficient x vector| = ", added, " is ",
                                 added / std::max(typical, 1e-30),
                                 " times the mean activation norm there (", typical,
                                 "); the model will likely produce noise (hint: a coefficient "
                                 "meant for a unit vector, or a vector scaled twice?)"));
    }
  }

  torch::Tensor vector_;  // float64, CPU
  double coefficient_;
  torch::Tensor scaled_;  // on the model's device and dtype
  torch::Device device_ = torch::kCPU;
  torch::Dtype dtype_ = torch::kFloat32;
  std::string who_ = kName;
  detail::ActionMutex mutex_;
  mutable bool warned_ = false;
};

/// Directional ablation: removes the component of the activation along each direction,
/// `x - sum_i (x . r_i) r_i` over an orthonormal basis r_i of the directions given (they are
/// normalized and, when several, orthonormalized). With `values`, sets the projection on each
/// (unit, orthogonal) direction to values[i] instead of 0: `x - sum_i (x . r_i - values[i]) r_i`.
/// Example: `steer::hook(model, "resid_pre.5", steer::Ablate(refusal_direction))`
class Ablate {
 public:
  static constexpr const char* kName = "Ablate";
  /// directions: [d_model] or [k, d_model].
  explicit Ablate(const torch::Tensor& directions, std::vector<double> values = {})
      : basis_(orthonormal_basis(kName, directions, values)), values_(std::move(values)) {}

  void prepare(const HookTarget& target) {
    detail::check_width(kName, basis_.size(1), target);
    target_ = target;
    prepared_ = true;
    state_ = on_device(basis_);
  }

  /// Replaces the directions (the same number of them and the same width, the same values),
  /// with the checks of the constructor. Safe while other threads run the model: each call
  /// uses the old or the new basis whole.
  void set_directions(const torch::Tensor& directions) {
    auto basis = orthonormal_basis("Ablate::set_directions", directions, values_);
    std::lock_guard<std::mutex> lock(mutex_.get());
    STEER_CHECK(basis.sizes() == basis_.sizes(), "Ablate::set_directions: the hook removes ",
                basis_.size(0), " direction(s) of d_model=", basis_.size(1), "; the new ones are ",
                basis.size(0), " of d_model=", basis.size(1));
    auto state = prepared_ ? on_device(basis) : nullptr;
    basis_ = std::move(basis);
    state_ = std::move(state);
  }

  /// [k, d_model] float64 orthonormal basis actually used.
  torch::Tensor basis() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return basis_;
  }

  torch::Tensor operator()(const torch::Tensor& x, const HookContext& ctx) const {
    std::shared_ptr<const State> state;
    {
      std::lock_guard<std::mutex> lock(mutex_.get());
      state = state_;
    }
    detail::check_runtime_width(ctx.who(), x, state->basis.size(1));
    auto projection = torch::matmul(x, state->basis_t);  // [..., k]
    if (state->values.defined()) projection = projection - state->values;
    auto delta = torch::matmul(projection, state->basis);
    const auto& selected = ctx.selected();
    if (selected.defined()) delta = delta * detail::as_weight(selected, x);
    return x - delta;
  }

 private:
  /// The basis and values on the model's device and dtype.
  struct State {
    torch::Tensor basis, basis_t, values;
  };

  std::shared_ptr<const State> on_device(const torch::Tensor& basis) const {
    auto state = std::make_shared<State>();
    state->basis = basis.to(target_.device, target_.dtype);
    state->basis_t = state->basis.t().contiguous();
    if (!values_.empty()) {
      state->values = torch::tensor(values_, torch::kFloat64).to(target_.device, target_.dtype);
    }
    return state;
  }

  /// The directions, normalized and (when several, without values) orthonormalized by QR.
  static torch::Tensor orthonormal_basis(const char* who, const torch::Tensor& directions,
                                         const std::vector<double>& values) {
    STEER_CHECK(directions.defined() && (directions.dim() == 1 || directions.dim() == 2) &&
                    directions.numel() > 0,
                who, ": directions must be [d_model] or [k, d_model], got ",
                directions.defined() ? directions.sizes() : c10::IntArrayRef{});
    auto rows = directions.dim() == 1 ? directions.unsqueeze(0) : directions;
    std::vector<torch::Tensor> checked;
    for (int64_t i = 0; i < rows.size(0); ++i) {
      auto r = detail::checked_vector(who, rows[i], "direction");
      const auto norm = r.norm().item<double>();
      STEER_CHECK(norm > 0, who, ": direction ", i, " is zero");
      checked.push_back(r / norm);
    }
    auto unit = torch::stack(checked);  // [k, d] float64
    if (unit.size(0) > 1) {
      if (!values.empty()) {
        const auto gram = unit.matmul(unit.t()) - torch::eye(unit.size(0), unit.options());
        STEER_CHECK(gram.abs().max().item<double>() < 1e-6,
                    who, ": setting projections to values needs orthogonal directions; the ",
                    unit.size(0), " directions given overlap (largest |cosine| ",
                    gram.abs().max().item<double>(), ")");
      } else {
        auto [q, r] = torch::linalg_qr(unit.t());  // q [d, k], r [k, k]
        // |r_ii| is the distance of unit direction i from the span of the ones before it. A
        // combination of other directions computed in float32 (bfloat16) keeps a residue of
        // about 1e-7 (4e-3) from rounding; below 1e-3 (0.06 degrees) a direction is taken as
        // dependent, since QR would otherwise remove a direction made of rounding noise.
        const auto diagonal = r.diagonal().abs();
        const auto smallest = diagonal.min().item<double>();
        STEER_CHECK(smallest > 1e-3, who, ": the ", unit.size(0),
                    " directions are linearly dependent (direction ",
                    diagonal.argmin().item<int64_t>(), " lies in the span of the ones before it; "
                    "|r_ii| = ", smallest, "), so the subspace to remove is ambiguous (hint: drop "
                    "the redundant direction, or orthonormalize them with vec::orthonormalize)");
        unit = q.t().contiguous();
      }
    }
    STEER_CHECK(values.empty() || static_cast<int64_t>(values.size()) == unit.size(0),
                who, ": ", unit.size(0), " directions but ", values.size(), " values");
    for (auto v : values) STEER_CHECK(std::isfinite(v), who, ": value ", v, " is not finite");
    return unit;
  }

  torch::Tensor basis_;  // float64 CPU
  std::vector<double> values_;
  HookTarget target_;
  bool prepared_ = false;
  std::shared_ptr<const State> state_;
  detail::ActionMutex mutex_;
};

/// Options of Record.
/// Example: `RecordOptions().mean(true)` (keep only the mean over the selected positions).
struct RecordOptions {
  /// Keep a running sum per sequence (float32, on the device) instead of every activation;
  /// results through Record::mean(). Default: false.
  TORCH_ARG(bool, mean) = false;
  /// On CUDA, copy each activation asynchronously to pinned host memory instead of keeping a
  /// device copy; the accessors synchronise. Default: false.
  TORCH_ARG(bool, to_host) = false;
};

/// Records the activation at the selected positions, per sequence of the batch, across calls
/// (a prefill and its decode steps add up). Returns the activation unchanged.
/// Example: `auto rec = steer::hook(model, "resid_post.3", steer::Record(), Positions::last());
///           model.logits(ids); torch::Tensor a = rec->sequence(0);  // [n, d_model]`
class Record {
 public:
  static constexpr const char* kName = "Record";
  explicit Record(RecordOptions options = {}) : options_(options) {
    STEER_CHECK(!(options.mean() && options.to_host()), "Record: RecordOptions().mean(true) keeps "
                "running sums on the device, so to_host(true) has nothing to copy (hint: use "
                "one of the two)");
  }

  void prepare(const HookTarget& target) {
    STEER_CHECK(!options_.to_host() || target.device.is_cuda(), "Record at ",
                target.point.to_string(), ": RecordOptions().to_host(true) copies CUDA "
                "activations to host memory, but model '", target.model, "' runs on ",
                target.device, " (hint: drop to_host; CPU activations are on the host already)");
  }

  /// Thread-safe: calls on several threads append under a lock (their order is the order
  /// they arrive in; each must have the same batch size).
  torch::Tensor operator()(const torch::Tensor& x, const HookContext& ctx) {
    const auto& selected = ctx.selected();
    std::lock_guard<std::mutex> lock(mutex_.get());
    if (options_.mean()) {
      auto values = x.to(torch::kFloat32);
      torch::Tensor count;
      if (selected.defined()) {
        values = values * selected.unsqueeze(-1).to(torch::kFloat32);
        count = selected.sum(1).to(torch::kFloat32);
      } else {
        count = torch::full({x.size(0)}, static_cast<double>(x.size(1)),
                            values.options());
      }
      auto sum = values.sum(1);
      if (!sum_.defined()) {
        sum_ = sum;
        count_ = count;
      } else {
        STEER_CHECK(sum_.size(0) == sum.size(0), ctx.who(), ": batch changed from ",
                    sum_.size(0), " to ", sum.size(0), " between calls (hint: clear() first)");
        sum_ += sum;
        count_ += count;
      }
      ++calls_;
      return x;
    }
    Chunk chunk;
    if (options_.to_host() && x.is_cuda()) {
      chunk.values = torch::empty(x.sizes(), x.options().device(torch::kCPU).pinned_memory(true));
      chunk.values.copy_(x, /*non_blocking=*/true);
      pending_host_copies_ = true;
    } else {
      chunk.values = x.clone();
    }
    chunk.positions = ctx.positions();
    chunk.selected = selected.defined() ? selected : ctx.positions() >= 0;
    if (!chunks_.empty()) {
      STEER_CHECK(chunks_.front().values.size(0) == x.size(0), ctx.who(), ": batch changed from ",
                  chunks_.front().values.size(0), " to ", x.size(0),
                  " between calls (hint: clear() first)");
    }
    chunks_.push_back(std::move(chunk));
    ++calls_;
    return x;
  }

  /// Calls recorded since the last clear().
  int64_t calls() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return calls_;
  }
  /// Sequences in the recorded batch (0 before the first call).
  int64_t batch() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return batch_unlocked();
  }
  /// [n, width]: the selected activations of sequence `b`, in call and position order.
  torch::Tensor sequence(int64_t b) const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    return sequence_unlocked(b);
  }
  /// [n] int64: the positions of sequence(b)'s rows.
  torch::Tensor positions(int64_t b) const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    check_sequence("Record::positions", b);
    std::vector<torch::Tensor> parts;
    for (const auto& c : chunks_) parts.push_back(c.positions[b].index({c.selected[b]}));
    return torch::cat(parts, 0);
  }
  /// [batch, width] float32: the mean over each sequence's selected positions.
  torch::Tensor mean() const {
    std::lock_guard<std::mutex> lock(mutex_.get());
    STEER_CHECK(calls_ > 0, "Record::mean: nothing recorded yet");
    if (options_.mean()) return sum_ / count_.unsqueeze(1);
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < batch_unlocked(); ++b) {
      rows.push_back(sequence_unlocked(b).to(torch::kFloat32).mean(0));
    }
    return torch::stack(rows);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_.get());
    chunks_.clear();
    sum_ = count_ = torch::Tensor();
    calls_ = 0;
  }

 private:
  struct Chunk {
    torch::Tensor values;     // [B, t, width]
    torch::Tensor positions;  // [B, t]
    torch::Tensor selected;   // [B, t] bool
  };
  int64_t batch_unlocked() const {
    if (options_.mean()) return sum_.defined() ? sum_.size(0) : 0;
    return chunks_.empty() ? 0 : chunks_.front().values.size(0);
  }
  torch::Tensor sequence_unlocked(int64_t b) const {
    check_sequence("Record::sequence", b);
    std::vector<torch::Tensor> parts;
    for (const auto& c : chunks_) {
      parts.push_back(c.values[b].index({c.selected[b].to(c.values.device())}));
    }
    return torch::cat(parts, 0);
  }
  void check_sequence(const char* call, int64_t b) const {
    STEER_CHECK(!options_.mean(), call, ": this Record keeps only means (RecordOptions().mean(true)); "
                "use mean()");
    STEER_CHECK(calls_ > 0, call, ": nothing recorded yet");
    STEER_CHECK(b >= 0 && b < batch_unlocked(), call, ": sequence ", b,
                " is out of range; the batch has ", batch_unlocked(), " sequences");
    if (pending_host_copies_ && torch::cuda::is_available()) torch::cuda::synchronize();
  }

  RecordOptions options_;
  std::vector<Chunk> chunks_;
  torch::Tensor sum_, count_;
  int64_t calls_ = 0;
  bool pending_host_copies_ = false;
  detail::ActionMutex mutex_;
};

/// Any callable `(const torch::Tensor& x, const HookContext& ctx) -> torch::Tensor`; its result
/// replaces the activation (same shape). It sees every token of the call; ctx.selected() gives
/// the tokens of the hook's Positions. steer calls it from every thread that runs the model:
/// a function with state of its own must guard it.
/// Example: `steer::hook(model, "mlp_out.2", steer::Lambda([](auto& x, auto&) { return x * 0.5; }))`
class Lambda {
 public:
  static constexpr const char* kName = "Lambda";
  using Function = std::function<torch::Tensor(const torch::Tensor&, const HookContext&)>;
  explicit Lambda(Function function) : function_(std::move(function)) {
    STEER_CHECK(static_cast<bool>(function_), "Lambda: empty function");
  }
  void prepare(const HookTarget&) {}
  torch::Tensor operator()(const torch::Tensor& x, const HookContext& ctx) const {
    auto y = function_(x, ctx);
    STEER_CHECK(y.defined() && y.sizes() == x.sizes(), ctx.who(),
                ": the function returned shape ",
                y.defined() ? y.sizes() : c10::IntArrayRef{}, " for an activation of shape ",
                x.sizes(), " (expected the same shape)");
    return y;
  }

 private:
  Function function_;
};

// ----------------------------------------------------------------------------- hook, handle

/// An action attached at a hook point with its positions. Made by steer::hook().
template <class Action>
class Hook final : public detail::HookBase {
 public:
  Hook(HookPoint point, Action action, Positions positions)
      : HookBase(point),
        action_(std::move(action)),
        positions_(std::move(positions)),
        who_(std::string(Action::kName) + " at " + point.to_string()) {}

  torch::Tensor run(const torch::Tensor& x, const CallLayout& layout) override {
    const HookContext ctx(point(), layout, positions_, who_);
    return action_(x, ctx);
  }
  const std::string& who() const override { return who_; }
  std::optional<int64_t> first_position() const override { return positions_.first(); }
  Action& action() { return action_; }
  const Positions& positions() const { return positions_; }

 private:
  Action action_;
  Positions positions_;
  std::string who_;
};

/// Keeps a hook attached; detaches it when destroyed. Move-only. `enable(false)` switches the
/// hook off without detaching (no re-instrumentation either way). `->` reaches the action,
/// e.g. `record->sequence(0)`.
template <class Action>
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::shared_ptr<Hook<Action>> hook, detail::Slot* slot,
             std::weak_ptr<detail::HookTable> table)
      : hook_(std::move(hook)), slot_(slot), table_(std::move(table)) {}
  HookHandle(HookHandle&& other) noexcept { *this = std::move(other); }
  HookHandle& operator=(HookHandle&& other) noexcept {
    if (this != &other) {
      detach();
      hook_ = std::move(other.hook_);
      slot_ = other.slot_;
      table_ = std::move(other.table_);
      other.slot_ = nullptr;
    }
    return *this;
  }
  HookHandle(const HookHandle&) = delete;
  HookHandle& operator=(const HookHandle&) = delete;
  ~HookHandle() { detach(); }

  /// Switches the hook on or off; it stays in its place in the order of hooks.
  void enable(bool on) {
    if (hook_) hook_->enabled.store(on);
  }
  bool enabled() const { return hook_ && hook_->enabled.load(); }
  /// Removes the hook from its hook point (also done by the destructor). The action stays
  /// readable through the handle.
  void detach() {
    if (slot_ == nullptr) return;
    if (auto table = table_.lock()) detail::HookTable::detach(*slot_, hook_.get());
    slot_ = nullptr;
  }
  bool attached() const { return slot_ != nullptr && !table_.expired(); }

  const HookPoint& point() const { return hook_->point(); }
  Action& action() { return hook_->action(); }
  Action* operator->() { return &hook_->action(); }
  const Action* operator->() const { return &hook_->action(); }

 private:
  std::shared_ptr<Hook<Action>> hook_;
  detail::Slot* slot_ = nullptr;
  std::weak_ptr<detail::HookTable> table_;
};

namespace detail {

/// The model's name for messages: its directory's name, or "<directory>/<file>" for a model
/// loaded from a .pt file.
inline std::string model_name(const Model& model) {
  auto path = std::filesystem::path(model.directory());
  if (path.filename().empty()) path = path.parent_path();
  if (std::filesystem::is_regular_file(path)) {
    return (path.parent_path().filename() / path.filename()).string();
  }
  return path.filename().string();
}

/// The slot and activation width of a hook point of `model`; throws naming the valid ones.
inline std::pair<Slot*, int64_t> resolve(const Model& model, const HookPoint& point,
                                         const std::string& who) {
  const auto name = model_name(model);
  auto* table = model.hook_table();
  STEER_CHECK(table != nullptr, who, ": model '", name,
              "' was loaded with ModelOptions().instrument(false), so it has no hook points "
              "(hint: load it with the default instrument(true))");
  const auto n = model.n_layers();
  if (point.site != Site::module) {
    STEER_CHECK(point.layer >= 0 && point.layer < n, who, ": hook point '", point.to_string(),
                "' has layer ", point.layer, " but model '", name, "' has layers 0 to ", n - 1,
                " (inclusive)");
    const auto& l = model.config().layers[point.layer];
    std::string path = l.block;
    int64_t kind = kTapOutput;
    switch (point.site) {
      case Site::resid_pre: kind = kTapInput; break;
      case Site::resid_mid: kind = kTapMid; break;
      case Site::attn_out: path = l.attn; break;
      case Site::mlp_out: path = l.mlp; break;
      default: break;
    }
    auto* instance = table->find(path);
    const auto& family = model.config().family;
    STEER_CHECK(point.site != Site::resid_mid || instance == nullptr ||
                    !instance->parallel_residual,
                who, ": hook point '", point.to_string(), "' does not exist in model '", name,
                "' (family ", family, "): its blocks are parallel-residual (attention and MLP "
                "both read the block input), so no residual stream lies between them (hint: "
                "resid_pre.", point.layer, " is what both read)");
    STEER_CHECK(instance != nullptr && instance->has_tap[kind], who, ": hook point '",
                point.to_string(), "' is not available in model '", name, "': module '", path,
                "' has no tap there",
                point.site == Site::resid_mid
                    ? detail::concat(" (resid_mid needs the block to call its pre-MLP norm '",
                                     model.config().architecture().mid_norm, "' (family ",
                                     family, ") on the residual stream)")
                    : std::string(" (its forward returns neither a Tensor nor a tuple whose "
                                  "element 0 is a Tensor)"));
    return {&instance->slots[kind], model.d_model()};
  }
  auto* instance = table->find(point.path);
  if (instance == nullptr || !instance->has_tap[kTapOutput]) {
    // List the paths sharing the longest prefix with the one asked for.
    std::string close;
    auto prefix = point.path;
    while (close.empty() && !prefix.empty()) {
      const auto dot = prefix.rfind('.');
      prefix = dot == std::string::npos ? "" : prefix.substr(0, dot);
      int listed = 0;
      for (const auto& [p, i] : table->paths()) {
        if (i->has_tap[kTapOutput] && p.rfind(prefix, 0) == 0 && listed++ < 8) {
          close += (close.empty() ? "" : ", ") + p;
        }
      }
    }
    throw Error(concat(who, ": '", point.path, "' is neither a hook point (resid_pre.L, "
                       "resid_mid.L, resid_post.L, attn_out.L, mlp_out.L with L from 0 to ",
                       n - 1, ") nor a hookable module path of model '", name,
                       "' (module paths include: ", close, ")"));
  }
  return {&instance->slots[kTapOutput], -1};
}

}  // namespace detail

namespace detail {

/// A hook of `action` at `point` of `model`, resolved and prepared (vectors cast to the model's
/// device and dtype), with the slot it belongs in; attached to nothing yet.
template <class Action>
std::pair<std::shared_ptr<Hook<Action>>, Slot*> make_hook(const Model& model,
                                                          const HookPoint& point, Action action,
                                                          Positions positions) {
  const std::string who = std::string(Action::kName) + " at " + point.to_string();
  auto [slot, width] = resolve(model, point, who);
  HookTarget target{point, width, model.device(), model.dtype(), model_name(model)};
  action.prepare(target);
  return {std::make_shared<Hook<Action>>(point, std::move(action), std::move(positions)), slot};
}

}  // namespace detail

/// Attaches `action` at `point` of `model` for the tokens `positions` selects, after any hooks
/// already there (hooks on one point run in the order added). The action is prepared once
/// (vectors cast to the model's device and dtype). The handle detaches it when destroyed.
/// A hook attached to the model acts in every call of the model, on every thread; for
/// steering that belongs to one call or thread, see steer::Steering (steering.hpp).
/// Example:
///   auto h = steer::hook(model, "resid_post.12", steer::Add(v, 4.0), steer::Positions::from(5));
template <class Action>
HookHandle<Action> hook(const Model& model, const HookPoint& point, Action action,
                        Positions positions = Positions::all()) {
  auto [h, slot] = detail::make_hook(model, point, std::move(action), std::move(positions));
  detail::HookTable::attach(*slot, h);
  return HookHandle<Action>(std::move(h), slot, model.hook_table_owner());
}

}  // namespace steer
