// Instrumentation of a loaded TorchScript module: a custom JIT op `steer::tap` inserted into
// the forward graph of every submodule type before the first call, and the tables that route
// each tap (module object, kind) to the C++ hooks attached there. Internal to steer.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/operator.h>
#include <torch/script.h>

#include "steer/call_layout.hpp"
#include "steer/hook_point.hpp"

namespace steer::detail {

/// Which value of a module a tap sees.
enum TapKind : int64_t {
  kTapOutput = 0,  ///< the module's return value (every module type)
  kTapInput = 1,   ///< the first argument after self (block types: resid_pre)
  kTapMid = 2,     ///< the input of the MLP's pre-norm inside the block (resid_mid)
  kTapKinds = 3
};

/// One attached hook, type-erased. run() gets the activation and returns the new one.
class HookBase {
 public:
  explicit HookBase(HookPoint point) : point_(std::move(point)) {}
  virtual ~HookBase() = default;
  virtual torch::Tensor run(const torch::Tensor& x, const CallLayout& layout) = 0;
  /// "Add at resid_post.3", for messages.
  virtual const std::string& who() const = 0;
  /// The first position the hook's Positions can select, when they name one (at, range,
  /// from); nullopt for all, last, prompt, generated, last_prompt.
  virtual std::optional<int64_t> first_position() const = 0;
  const HookPoint& point() const { return point_; }
  std::atomic<bool> enabled{true};

 private:
  HookPoint point_;
};

using HookList = std::vector<std::shared_ptr<HookBase>>;

/// The hooks at one tap of one module object, in the order added. Readers take a snapshot of
/// the list; writers replace it (copy on write).
struct Slot {
  std::atomic<int> count{0};
  std::mutex mutex;
  std::shared_ptr<const HookList> hooks = std::make_shared<HookList>();

  std::shared_ptr<const HookList> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return hooks;
  }
};

/// Taps of one module object.
struct Instance {
  Slot slots[kTapKinds];
  bool has_tap[kTapKinds] = {false, false, false};
  /// A block whose mid norm reads the block input (attention and MLP in parallel): it has no
  /// resid_mid.
  bool parallel_residual = false;
  std::string path;  ///< its module path (the first one, when a module object has several)
};

class HookTable;

/// Hooks that belong to calls rather than to the model: a steer::Steering's content. A call
/// runs them when a SteeringGuard has put the set in this thread's CallState.
struct HookSet {
  const HookTable* table = nullptr;  ///< the model's taps the slots belong to
  std::string model;                 ///< the model's name, for messages
  std::unordered_map<const Slot*, HookList> by_slot;
  HookList in_order;  ///< every hook, in the order added
};

/// What a diagnostic re-run (after non-finite logits) found: the first tap whose value was
/// not finite, and the hooks that ran before it.
struct Diagnosis {
  std::string first;              ///< "module 'model.layers.3.mlp'" or a hook's who(), "" if none
  std::vector<std::string> hooks;  ///< who() of the hooks that ran before `first` was found
  bool by_hook = false;            ///< `first` is a hook's output, not a module's value
};

/// Process-wide map from module object to its taps (the op sees only the object), plus the
/// count of attached hooks in the whole process: with none attached, a tap costs one atomic load.
struct Registry {
  std::shared_mutex mutex;
  std::unordered_map<const c10::ivalue::Object*, Instance*> instances;
  std::atomic<int64_t> attached{0};
};

inline Registry& registry() {
  static Registry r;
  return r;
}

/// The call in progress on this thread (set by Model around each forward), and an error
/// thrown by a hook, kept so that Model rethrows it unchanged instead of the JIT's wrapper.
/// The hook sets of the SteeringGuards alive on this thread, outermost first, and a
/// Diagnosis being made (non-finite logits), if any.
struct CallState {
  const CallLayout* layout = nullptr;
  std::exception_ptr error;
  std::vector<const HookSet*> scoped;
  Diagnosis* diagnosis = nullptr;
};

inline CallState& call_state() {
  thread_local CallState state;
  return state;
}

/// Sets the call layout of this thread for the lifetime of the guard.
class CallGuard {
 public:
  explicit CallGuard(const CallLayout& layout) : previous_(call_state().layout) {
    call_state().layout = &layout;
    call_state().error = nullptr;
  }
  ~CallGuard() { call_state().layout = previous_; }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  const CallLayout* previous_;
};

/// Whether every element of x is finite (one host synchronisation; diagnosis only).
inline bool all_finite(const torch::Tensor& x) {
  return !x.is_floating_point() || torch::isfinite(x).all().item<bool>();
}

/// Runs `hooks` on x in order; in a diagnosis, notes the first hook whose output is not finite.
inline torch::Tensor run_hooks(const HookList& hooks, torch::Tensor x, const CallLayout& layout,
                               Diagnosis* diagnosis) {
  for (const auto& hook : hooks) {
    if (!hook->enabled.load(std::memory_order_relaxed)) continue;
    x = hook->run(x, layout);
    if (diagnosis != nullptr && diagnosis->first.empty()) {
      if (!all_finite(x)) {
        diagnosis->first = hook->who();
        diagnosis->by_hook = true;
      } else {
        diagnosis->hooks.push_back(hook->who());
      }
    }
  }
  return x;
}

/// Runs the hooks of one tap on x: the model's (attached with steer::hook), then those of the
/// hook sets of this thread's SteeringGuards, outermost first.
inline torch::Tensor run_tap(Instance& instance, int64_t kind, torch::Tensor x) {
  auto& state = call_state();
  std::optional<CallLayout> fallback;
  const CallLayout* layout = state.layout;
  if (layout == nullptr) {
    // Called outside Model (module() used directly): one unpadded sequence per row.
    const auto t = x.dim() >= 2 ? x.size(1) : 1;
    const auto b = x.dim() >= 2 ? x.size(0) : 1;
    fallback.emplace(torch::ones({b, t}, torch::TensorOptions().dtype(torch::kInt64)
                                             .device(x.device())),
                     0, t, -1, t, false, true);
    layout = &*fallback;
  }
  auto* diagnosis = state.diagnosis;
  if (diagnosis != nullptr && diagnosis->first.empty() && !all_finite(x)) {
    static const char* const where[kTapKinds] = {"the output of", "the input of",
                                                 "the MLP pre-norm input of"};
    diagnosis->first = concat(where[kind], " module '", instance.path, "'");
  }
  Slot& slot = instance.slots[kind];
  if (slot.count.load(std::memory_order_relaxed) > 0) {
    x = run_hooks(*slot.snapshot(), std::move(x), *layout, diagnosis);
  }
  for (const auto* set : state.scoped) {
    const auto found = set->by_slot.find(&slot);
    if (found != set->by_slot.end()) x = run_hooks(found->second, std::move(x), *layout, diagnosis);
  }
  return x;
}

/// The op: steer::tap(Any self, Tensor x, int kind) -> Tensor.
inline void tap_operation(torch::jit::Stack& stack) {
  auto& r = registry();
  auto& state = call_state();
  if (r.attached.load(std::memory_order_relaxed) == 0 && state.scoped.empty() &&
      state.diagnosis == nullptr) {
    torch::jit::drop(stack, 1);                         // kind
    auto x = torch::jit::pop(stack);                    // x
    stack.back() = std::move(x);                        // replaces self
    return;
  }
  const auto kind = stack.back().toInt();
  torch::Tensor x = stack[stack.size() - 2].toTensor();
  const auto* object = &stack[stack.size() - 3].toObjectRef();
  Instance* instance = nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(r.mutex);
    auto found = r.instances.find(object);
    if (found != r.instances.end()) instance = found->second;
  }
  if (instance != nullptr) {
    try {
      x = run_tap(*instance, kind, std::move(x));
    } catch (const Error&) {
      state.error = std::current_exception();
      throw;
    }
  }
  torch::jit::drop(stack, 3);
  torch::jit::push(stack, std::move(x));
}

inline c10::Symbol tap_symbol() {
  static const auto symbol = c10::Symbol::fromQualString("steer::tap");
  return symbol;
}

/// Registers steer::tap with the JIT once per process (lazily: no static registrar in a
/// header; a second copy of steer in another shared library finds it registered).
inline void register_tap() {
  static const bool registered = [] {
    if (torch::jit::getAllOperatorsFor(tap_symbol()).empty()) {
      torch::jit::registerOperator(torch::jit::Operator(
          "steer::tap(Any self, Tensor x, int kind) -> Tensor",
          [](torch::jit::Stack& stack) { tap_operation(stack); },
          c10::AliasAnalysisKind::CONSERVATIVE));
    }
    return true;
  }();
  (void)registered;
}

inline torch::jit::Node* make_tap(torch::jit::Graph& graph, torch::jit::Value* self,
                                  torch::jit::Value* value, int64_t kind) {
  auto* k = graph.insertConstant(kind);
  auto* node = graph.create(tap_symbol(), {self, value, k});
  node->output()->setType(value->type());
  graph.insertNode(node);
  return node;
}

/// Puts an output tap in front of the return of `graph`, whose returned value is `out`: on the
/// value itself when it is a Tensor; on element 0 when it is a tuple that starts with a Tensor
/// (Hugging Face attention modules return `(out, weights)`), the tuple rebuilt around the tap's
/// result. Returns false, changing nothing, for any other type.
inline bool tap_output(torch::jit::Graph& graph, torch::jit::Value* self, torch::jit::Value* out) {
  auto* ret = graph.return_node();
  torch::jit::WithInsertPoint guard(ret);
  if (out->type()->isSubtypeOf(*c10::TensorType::get())) {
    auto* tap = make_tap(graph, self, out, kTapOutput);
    ret->replaceInputWith(out, tap->output());
    return true;
  }
  const auto tuple = out->type()->cast<c10::TupleType>();
  if (!tuple || tuple->elements().empty() ||
      !tuple->elements()[0]->isSubtypeOf(*c10::TensorType::get())) {
    return false;
  }
  auto* unpack = graph.insertNode(graph.createTupleUnpack(out));
  std::vector<torch::jit::Value*> items(unpack->outputs().begin(), unpack->outputs().end());
  items[0] = make_tap(graph, self, items[0], kTapOutput)->output();
  // A named tuple keeps its type; a plain one is rebuilt from its elements' types.
  auto* rebuilt = graph.insertNode(graph.createTuple(items, tuple->schema() ? tuple : nullptr));
  ret->replaceInputWith(out, rebuilt->output());
  return true;
}

/// "forward", or "forward1", "forward2", ...: the names torch.jit.trace gives a submodule's
/// traced forward when the module already has a scripted one (from an @torch.jit.export method
/// of its parent, which the trace compiles along).
inline bool is_forward_name(const std::string& name) {
  return name.rfind("forward", 0) == 0 &&
         name.find_first_not_of("0123456789", 7) == std::string::npos;
}

/// What tap_forward placed in the forward graph(s) of one module type.
struct TypeTaps {
  bool taps[kTapKinds] = {false, false, false};
  bool parallel_residual = false;  ///< the mid norm reads the block input
};

/// Puts the taps into one forward graph of a module type: the output tap; for block types the
/// input tap (resid_pre) and, where the block calls its mid norm (`mid_norm`, the norm in front
/// of the MLP) on something other than its input, a tap on that call's input (resid_mid).
inline void tap_forward(torch::jit::Graph& graph, bool is_block, const std::string& mid_norm,
                        TypeTaps& placed) {
  auto* self = graph.inputs()[0];
  auto* ret = graph.return_node();
  if (ret->inputs().size() == 1 && tap_output(graph, self, ret->input(0))) {
    placed.taps[kTapOutput] = true;
  }
  if (!is_block) return;
  torch::jit::Value* block_input = nullptr;
  torch::jit::Value* tapped_input = nullptr;
  if (graph.inputs().size() >= 2 &&
      graph.inputs()[1]->type()->isSubtypeOf(*c10::TensorType::get())) {
    block_input = graph.inputs()[1];
    torch::jit::WithInsertPoint guard(graph.block()->nodes().front());
    auto* tap = make_tap(graph, self, block_input, kTapInput);
    block_input->replaceAllUsesAfterNodeWith(tap, tap->output());
    tapped_input = tap->output();
    placed.taps[kTapInput] = true;
  }
  if (mid_norm.empty()) return;
  for (auto* node : graph.nodes()) {
    if (node->kind() != c10::prim::CallMethod || node->inputs().size() < 2) continue;
    auto* owner = node->input(0)->node();
    if (owner->kind() != c10::prim::GetAttr || owner->input(0) != self) continue;
    if (owner->s(c10::attr::name) != mid_norm) continue;
    auto* mid = node->input(1);
    // A parallel-residual block (GPT-NeoX, Phi-2) normalises its input for the MLP: the input
    // is resid_pre, and a resid_mid tap there would be a silent stand-in for it.
    if (mid == block_input || mid == tapped_input) {
      placed.parallel_residual = true;
      break;
    }
    torch::jit::WithInsertPoint guard(node);
    auto* tap = make_tap(graph, self, mid, kTapMid);
    mid->replaceAllUsesAfterNodeWith(tap, tap->output());
    placed.taps[kTapMid] = true;
    break;
  }
}

/// The instrumented module objects of one loaded model, by path.
class HookTable {
 public:
  HookTable() = default;
  HookTable(const HookTable&) = delete;
  HookTable& operator=(const HookTable&) = delete;
  ~HookTable() {
    auto& r = registry();
    std::unique_lock<std::shared_mutex> lock(r.mutex);
    for (auto& [object, instance] : by_object_) {
      auto found = r.instances.find(object);
      if (found != r.instances.end() && found->second == instance.get()) r.instances.erase(found);
      for (auto& slot : instance->slots) r.attached -= slot.count.load();
    }
  }

  /// The taps of the module at `path`, or nullptr.
  Instance* find(const std::string& path) const {
    auto found = by_path_.find(path);
    return found == by_path_.end() ? nullptr : found->second;
  }
  const std::map<std::string, Instance*>& paths() const { return by_path_; }
  /// Every hook attached to this model's taps now.
  HookList attached() const {
    HookList all;
    for (const auto& [object, instance] : by_object_) {
      for (auto& slot : instance->slots) {
        if (slot.count.load() == 0) continue;
        const auto hooks = slot.snapshot();
        all.insert(all.end(), hooks->begin(), hooks->end());
      }
    }
    return all;
  }

  void add(const std::string& path, const c10::ivalue::Object* object,
           const bool taps[kTapKinds], bool parallel_residual) {
    auto& instance = by_object_[object];
    if (!instance) {
      instance = std::make_unique<Instance>();
      instance->path = path;
    }
    for (int k = 0; k < kTapKinds; ++k) instance->has_tap[k] = taps[k];
    instance->parallel_residual = parallel_residual;
    by_path_[path] = instance.get();
    auto& r = registry();
    std::unique_lock<std::shared_mutex> lock(r.mutex);
    r.instances[object] = instance.get();
  }

  static void attach(Slot& slot, std::shared_ptr<HookBase> hook) {
    std::lock_guard<std::mutex> lock(slot.mutex);
    auto next = std::make_shared<HookList>(*slot.hooks);
    next->push_back(std::move(hook));
    slot.hooks = std::move(next);
    slot.count.fetch_add(1);
    registry().attached.fetch_add(1);
  }
  static void detach(Slot& slot, const HookBase* hook) {
    std::lock_guard<std::mutex> lock(slot.mutex);
    auto next = std::make_shared<HookList>();
    for (const auto& h : *slot.hooks) {
      if (h.get() != hook) next->push_back(h);
    }
    if (next->size() == slot.hooks->size()) return;
    slot.hooks = std::move(next);
    slot.count.fetch_sub(1);
    registry().attached.fetch_sub(1);
  }

 private:
  std::map<const c10::ivalue::Object*, std::unique_ptr<Instance>> by_object_;
  std::map<std::string, Instance*> by_path_;
};

/// Edits the forward graph(s) of every submodule type of `module` (once per type, before the
/// first call; a traced module gives each instance its own type) and returns the table of its
/// module objects. Every module whose forward returns a Tensor, or a tuple whose element 0 is a
/// Tensor, gets an output tap; the block types of `layers` also get an input tap (resid_pre)
/// and, where the block calls its mid norm `mid_norm` (architecture.hpp) on the residual
/// stream after the attention, a tap on that call's input (resid_mid).
inline std::shared_ptr<HookTable> instrument(torch::jit::Module& module,
                                             const std::vector<LayerLayout>& layers,
                                             const std::string& mid_norm) {
  register_tap();
  std::set<std::string> block_paths;
  for (const auto& l : layers) block_paths.insert(l.block);

  std::map<const c10::ClassType*, TypeTaps> done;
  auto table = std::make_shared<HookTable>();

  for (const auto& named : module.named_modules()) {
    if (named.name.empty()) continue;  // the top module: its methods are the entry points
    const auto& sub = named.value;
    const auto* type = sub.type().get();
    const bool is_block = block_paths.count(named.name) > 0;
    auto it = done.find(type);
    if (it == done.end()) {
      TypeTaps placed;
      for (auto& method : sub.get_methods()) {
        if (!is_forward_name(method.name())) continue;
        auto& graph = *torch::jit::toGraphFunction(method.function()).graph();
        tap_forward(graph, is_block, mid_norm, placed);
      }
      it = done.emplace(type, placed).first;
    }
    TypeTaps placed = it->second;
    if (!is_block) placed.taps[kTapInput] = placed.taps[kTapMid] = placed.parallel_residual = false;
    table->add(named.name, sub._ivalue().get(), placed.taps, placed.parallel_residual);
  }
  return table;
}

}  // namespace steer::detail
