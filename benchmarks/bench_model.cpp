// Forward-pass cost of the default model on this machine: full-recompute prefill, and a
// cached decode step. The model directory comes from STEER_DEFAULT_MODEL or
// models/smollm2-135m-instruct (run from the repository root).
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>
#include <steer/steer.hpp>

namespace {

const steer::Model& default_model() {
  static const steer::Model model = [] {
    const char* dir = std::getenv("STEER_DEFAULT_MODEL");
    return steer::Model::load(dir ? dir : "models/smollm2-135m-instruct");
  }();
  return model;
}

torch::Tensor prompt(int64_t batch, int64_t length) {
  return torch::randint(0, default_model().vocab_size(), {batch, length},
                        torch::TensorOptions().dtype(torch::kInt64));
}

// Prefill of a [batch, 128] prompt by full recompute; counters in tokens/s.
void BM_Prefill128(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto ids = prompt(batch, 128);
  for (auto _ : state) benchmark::DoNotOptimize(default_model().logits(ids));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch * 128), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Prefill128)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// One cached decode step after a 128-token prefill; counters in tokens/s.
void BM_DecodeStep(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto& model = default_model();
  auto cache = model.make_cache(batch, 128 + 1);
  const auto mask = torch::ones({batch, 129}, torch::kInt64);
  model.logits_cached(prompt(batch, 128), mask.slice(1, 0, 128), cache);
  const auto next = prompt(batch, 1);
  for (auto _ : state) {
    cache.length = 128;
    benchmark::DoNotOptimize(model.logits_cached(next, mask, cache));
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
