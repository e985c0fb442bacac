// Steering: a set of hooks that belongs to calls instead of to the model, and the guard that
// applies it to the calls of one thread. Concurrent requests with different steering can share
// one loaded model this way (see docs/hooks.md, "Threads").
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "steer/detail/instrument.hpp"
#include "steer/error.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"

namespace steer {

/// Hooks made for one model but attached to nothing: they act only in the calls of the model
/// (logits, logits_cached, generate, read_activations, extract, scores) that a SteeringGuard
/// holding this Steering encloses, on the guard's thread. Hooks on one point run in the order
/// added, after the hooks attached to the model with steer::hook.
/// One Steering may be used by several threads at once (each with its own guard): Add and
/// Ablate only read their state, Record appends under a lock.
/// Example:
/// ```
/// steer::Steering kind(model);
/// kind.add("resid_pre.6", steer::Add(v, /*coefficient=*/4.0));
/// auto& rec = kind.add("resid_post.3", steer::Record(), steer::Positions::last());
/// {
///   steer::SteeringGuard guard(kind);            // this thread's calls, until the scope ends
///   model.generate("I hate you because");
/// }
/// rec.sequence(0);
/// ```
class Steering {
 public:
  /// An empty set for `model`; throws for a model loaded with ModelOptions().instrument(false).
  explicit Steering(const Model& model) : set_(std::make_shared<detail::HookSet>()) {
    STEER_CHECK(model.hook_table() != nullptr, "Steering: model '", detail::model_name(model),
                "' was loaded with ModelOptions().instrument(false), so it has no hook points "
                "(hint: load it with the default instrument(true))");
    set_->table = model.hook_table();
    set_->model = detail::model_name(model);
    table_owner_ = model.hook_table_owner();
    model_ = std::make_shared<Model>(model);
  }

  /// Adds `action` at `point` for the tokens `positions` selects and returns the action (for a
  /// Record's results, or Add::set_coefficient), valid as long as this Steering. Adding while
  /// a guard holding this Steering is alive on some thread is not allowed (it throws).
  template <class Action>
  Action& add(const HookPoint& point, Action action, Positions positions = Positions::all()) {
    STEER_CHECK(guards_.use_count() == 1, "Steering::add: a SteeringGuard holding this "
                "Steering is alive; add every hook before the guard is made");
    auto [hook, slot] = detail::make_hook(*model_, point, std::move(action), std::move(positions));
    set_->by_slot[slot].push_back(hook);
    set_->in_order.push_back(hook);
    return hook->action();
  }

  /// Hooks added.
  size_t size() const { return set_->in_order.size(); }
  bool empty() const { return set_->in_order.empty(); }
  /// The model's name (its directory's name), as in messages.
  const std::string& model() const { return set_->model; }

  /// For SteeringGuard.
  const detail::HookSet& hook_set() const { return *set_; }
  /// A token counting the live guards that hold this Steering.
  std::shared_ptr<void> guard_token() const { return guards_; }

 private:
  std::shared_ptr<detail::HookSet> set_;
  std::weak_ptr<detail::HookTable> table_owner_;
  std::shared_ptr<Model> model_;  // a handle (copies share the module), for make_hook
  std::shared_ptr<void> guards_ = std::make_shared<int>(0);
};

/// Applies a Steering to every model call made on this thread while the guard lives (like
/// torch::NoGradGuard). Guards nest: the hooks of every live guard run, outermost first. A
/// call of another model than the Steering's throws. Not movable: it belongs to its scope.
/// Example: `{ steer::SteeringGuard guard(kind); model.generate(prompt); }`
class SteeringGuard {
 public:
  explicit SteeringGuard(const Steering& steering)
      : set_(&steering.hook_set()), token_(steering.guard_token()) {
    detail::call_state().scoped.push_back(set_);
  }
  ~SteeringGuard() {
    auto& scoped = detail::call_state().scoped;
    // Guards end in reverse order of their making on one thread (they are scoped objects).
    if (!scoped.empty() && scoped.back() == set_) scoped.pop_back();
  }
  SteeringGuard(const SteeringGuard&) = delete;
  SteeringGuard& operator=(const SteeringGuard&) = delete;

 private:
  const detail::HookSet* set_;
  std::shared_ptr<void> token_;
};

}  // namespace steer
