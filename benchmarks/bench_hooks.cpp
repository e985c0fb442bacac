// Cost of steer's hook layer on the default model, CPU: the same forward pass uninstrumented
// (ModelOptions().instrument(false)), instrumented with no hook attached, with one Add hook,
// with Add on every layer, and with Record of resid_post on every layer. Run the arms
// interleaved: --benchmark_enable_random_interleaving=true --benchmark_repetitions=N
// (see docs/performance.md, "Hook layer"). Two more arms: the instrumented model loaded with
// ModelOptions().check_finite(false) (the cost of the finiteness check is the difference to
// "no hook"), and Add on every layer through a steer::Steering under a SteeringGuard (per-call
// steering against the same hooks attached to the model).
// The cost of one hook call is below what the default model's forward pass resolves, so
// BM_TinyDecodeStep measures it where the forward is cheap: a tiny 3-layer Llama (d_model 64,
// STEER_TINY_MODEL, default build/tests/fixtures/tiny-llama, made by the test fixtures) with a
// hook at each of the 5 sites of every layer (15 calls per forward).
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <steer/steer.hpp>

namespace {

std::string model_dir() {
  const char* dir = std::getenv("STEER_DEFAULT_MODEL");
  return dir ? dir : "models/smollm2-135m-instruct";
}

const steer::Model& instrumented() {
  static const steer::Model model = steer::Model::load(model_dir());
  return model;
}
const steer::Model& unchecked() {
  static const steer::Model model =
      steer::Model::load(model_dir(), steer::ModelOptions().check_finite(false));
  return model;
}
const steer::Model& bare() {
  static const steer::Model model =
      steer::Model::load(model_dir(), steer::ModelOptions().instrument(false));
  return model;
}

enum Arm { kBare, kNoHook, kAddOne, kAddAll, kRecordAll, kUnchecked, kGuardAddAll };

// The hooks of an arm, attached for the benchmark's lifetime.
struct ArmHooks {
  std::vector<steer::HookHandle<steer::Add>> adds;
  std::vector<steer::HookHandle<steer::Record>> records;
  std::optional<steer::Steering> steering;  // kGuardAddAll: applied by a guard in the loop
  int64_t calls_per_forward = 0;

  ArmHooks(Arm arm, const steer::Model& model) {
    torch::manual_seed(0);
    const auto v = torch::randn({model.d_model()}) * 0.01;
    const auto n = model.n_layers();
    if (arm == kAddOne) adds.push_back(steer::hook(model, steer::HookPoint(steer::Site::resid_post, n / 2), steer::Add(v, 1.0)));
    for (int64_t l = 0; l < n; ++l) {
      if (arm == kAddAll) adds.push_back(steer::hook(model, steer::HookPoint(steer::Site::resid_post, l), steer::Add(v, 1.0)));
      if (arm == kGuardAddAll) {
        if (!steering) steering.emplace(model);
        steering->add(steer::HookPoint(steer::Site::resid_post, l), steer::Add(v, 1.0));
      }
      if (arm == kRecordAll) {
        records.push_back(steer::hook(model, steer::HookPoint(steer::Site::resid_post, l),
                                      steer::Record(), steer::Positions::last()));
      }
    }
    calls_per_forward = static_cast<int64_t>(adds.size() + records.size() +
                                             (steering ? steering->size() : 0));
  }

  void clear() {
    for (auto& r : records) r->clear();
  }
};

const steer::Model& model_for(Arm arm) {
  return arm == kBare ? bare() : arm == kUnchecked ? unchecked() : instrumented();
}

torch::Tensor prompt(int64_t batch, int64_t length) {
  torch::manual_seed(1);
  return torch::randint(0, instrumented().vocab_size(), {batch, length}, torch::kInt64);
}

void set_counters(benchmark::State& state, const ArmHooks& hooks) {
  state.counters["hook_calls"] = static_cast<double>(hooks.calls_per_forward);
}

// One cached decode step, batch 1, after a 128-token prefill.
void BM_DecodeStep(benchmark::State& state) {
  const auto arm = static_cast<Arm>(state.range(0));
  const auto& model = model_for(arm);
  ArmHooks hooks(arm, model);
  std::optional<steer::SteeringGuard> guard;
  if (hooks.steering) guard.emplace(*hooks.steering);
  auto cache = model.make_cache(1, 129);
  const auto mask = torch::ones({1, 129}, torch::kInt64);
  model.logits_cached(prompt(1, 128), mask.slice(1, 0, 128), cache);
  const auto next = prompt(1, 1);
  for (int i = 0; i < 3; ++i) {  // warm-up: the executor profiles and optimizes first
    cache.length = 128;
    model.logits_cached(next, mask, cache);
  }
  for (auto _ : state) {
    cache.length = 128;
    benchmark::DoNotOptimize(model.logits_cached(next, mask, cache));
    hooks.clear();
  }
  set_counters(state, hooks);
}

// Prefill of a [8, 128] prompt by full recompute.
void BM_Prefill8x128(benchmark::State& state) {
  const auto arm = static_cast<Arm>(state.range(0));
  const auto& model = model_for(arm);
  ArmHooks hooks(arm, model);
  std::optional<steer::SteeringGuard> guard;
  if (hooks.steering) guard.emplace(*hooks.steering);
  const auto ids = prompt(8, 128);
  model.logits(ids);  // warm-up
  hooks.clear();
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.logits(ids));
    hooks.clear();
  }
  set_counters(state, hooks);
}

std::string tiny_dir() {
  const char* dir = std::getenv("STEER_TINY_MODEL");
  return dir ? dir : "build/tests/fixtures/tiny-llama";
}

enum TinyArm { kTinyBare, kTinyNoHook, kTinyAdd, kTinyRecord, kTinyAblate };

// A decode step of the tiny model, batch 1, after 16 tokens; hooks at every site of every layer.
void BM_TinyDecodeStep(benchmark::State& state) {
  const auto arm = static_cast<TinyArm>(state.range(0));
  static const auto tiny = steer::Model::load(tiny_dir());
  static const auto tiny_bare = steer::Model::load(tiny_dir(), steer::ModelOptions().instrument(false));
  const auto& model = arm == kTinyBare ? tiny_bare : tiny;
  torch::manual_seed(0);
  const auto v = torch::randn({model.d_model()}) * 0.01;
  std::vector<steer::HookHandle<steer::Add>> adds;
  std::vector<steer::HookHandle<steer::Record>> records;
  std::vector<steer::HookHandle<steer::Ablate>> ablations;
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    for (auto site : {steer::Site::resid_pre, steer::Site::resid_mid, steer::Site::resid_post,
                      steer::Site::attn_out, steer::Site::mlp_out}) {
      const steer::HookPoint point(site, l);
      if (arm == kTinyAdd) adds.push_back(steer::hook(model, point, steer::Add(v, 1.0)));
      if (arm == kTinyRecord) records.push_back(steer::hook(model, point, steer::Record()));
      if (arm == kTinyAblate) ablations.push_back(steer::hook(model, point, steer::Ablate(v)));
    }
  }
  auto cache = model.make_cache(1, 17);
  const auto mask = torch::ones({1, 17}, torch::kInt64);
  const auto ids = torch::randint(0, model.vocab_size(), {1, 17}, torch::kInt64);
  model.logits_cached(ids.slice(1, 0, 16), mask.slice(1, 0, 16), cache);
  const auto next = ids.slice(1, 16);
  for (int i = 0; i < 5; ++i) {  // warm-up
    cache.length = 16;
    model.logits_cached(next, mask, cache);
  }
  for (auto _ : state) {
    cache.length = 16;
    benchmark::DoNotOptimize(model.logits_cached(next, mask, cache));
    for (auto& r : records) r->clear();
  }
  state.counters["hook_calls"] =
      static_cast<double>(adds.size() + records.size() + ablations.size());
}

void arms(benchmark::internal::Benchmark* b) {
  b->ArgName("arm");
  for (int arm : {kBare, kNoHook, kAddOne, kAddAll, kRecordAll, kUnchecked, kGuardAddAll}) {
    b->Arg(arm);
  }
}

BENCHMARK(BM_DecodeStep)->Apply(arms)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_TinyDecodeStep)
    ->ArgName("arm")
    ->DenseRange(kTinyBare, kTinyAblate)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->MinTime(0.5);
BENCHMARK(BM_Prefill8x128)->Apply(arms)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
