// The runtime's speed on the default model (issue "Runtime"): prefill tokens/s of 128-token
// prompts, one decode step through the KV cache against the full recompute that replaces it
// at the 128th generated token, and the generation loop against the bare decode steps it
// drives. Run from the repository root (see docs/performance.md for the command):
//   build/benchmarks/bench_generate --benchmark_repetitions=5 \
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>
#include <steer/steer.hpp>

namespace {

constexpr int64_t kPrompt = 128;
constexpr int64_t kGenerated = 128;
constexpr int64_t kLoopTokens = 32;

const steer::Model& default_model() {
  static const steer::Model model = [] {
    const char* dir = std::getenv("STEER_DEFAULT_MODEL");
    auto m = steer::Model::load(dir ? dir : "models/smollm2-135m-instruct");
    m.logits(torch::ones({1, 8}, torch::kInt64));  // first calls profile the graph
    m.logits(torch::ones({1, 8}, torch::kInt64));
    return m;
  }();
  return model;
}

torch::Tensor random_ids(int64_t batch, int64_t length) {
  torch::manual_seed(batch * 1000 + length);
  return torch::randint(0, default_model().vocab_size(), {batch, length}, torch::kInt64);
}

void tokens_per_second(benchmark::State& state, int64_t tokens) {
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

// Prefill: logits of a [batch, 128] prompt.
void BM_Prefill(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto ids = random_ids(batch, kPrompt);
  for (auto _ : state) benchmark::DoNotOptimize(default_model().logits(ids));
  tokens_per_second(state, batch * kPrompt);
}
BENCHMARK(BM_Prefill)->ArgName("batch")->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// The 128th generated token through the cache: one position after 255 cached ones.
void BM_DecodeCached(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto& model = default_model();
  const auto total = kPrompt + kGenerated;
  auto cache = model.make_cache(batch, total);
  const auto mask = torch::ones({batch, total}, torch::kInt64);
  model.logits_cached(random_ids(batch, total - 1), mask.slice(1, 0, total - 1), cache);
  const auto next = random_ids(batch, 1);
  for (auto _ : state) {
    cache.length = total - 1;
    benchmark::DoNotOptimize(model.logits_cached(next, mask, cache));
  }
  tokens_per_second(state, batch);
}
BENCHMARK(BM_DecodeCached)->ArgName("batch")->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// The 128th generated token by full recompute: the whole 256-token sequence again.
void BM_DecodeRecompute(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto ids = random_ids(batch, kPrompt + kGenerated);
  for (auto _ : state) benchmark::DoNotOptimize(default_model().logits(ids));
  tokens_per_second(state, batch);
}
BENCHMARK(BM_DecodeRecompute)->ArgName("batch")->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// model.generate: 32 greedy tokens after a 128-token prompt (prefill included).
void BM_GenerateLoop(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto ids = random_ids(batch, kPrompt);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < batch; ++b) {
    prompts.emplace_back(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + kPrompt);
  }
  const auto options = steer::GenerateOptions().max_new_tokens(kLoopTokens).stop_at_eos(false);
  for (auto _ : state) benchmark::DoNotOptimize(default_model().generate(prompts, options));
  tokens_per_second(state, batch * kLoopTokens);
}
BENCHMARK(BM_GenerateLoop)->ArgName("batch")->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same work without the loop: prefill, then 31 bare cached steps with argmax, no sampling
// options, stop checks or text decoding. BM_GenerateLoop / BM_BareSteps is the loop's cost.
void BM_BareSteps(benchmark::State& state) {
  const auto batch = state.range(0);
  const auto& model = default_model();
  const auto ids = random_ids(batch, kPrompt);
  const auto mask = torch::ones({batch, kPrompt + kLoopTokens}, torch::kInt64);
  for (auto _ : state) {
    auto cache = model.make_cache(batch, kPrompt + kLoopTokens);
    auto logits = model.logits_cached(ids, mask.slice(1, 0, kPrompt), cache);
    for (int64_t step = 1; step < kLoopTokens; ++step) {
      const auto next = logits.select(1, logits.size(1) - 1).argmax(-1, /*keepdim=*/true);
      logits = model.logits_cached(next, mask.slice(1, 0, kPrompt + step), cache);
    }
    benchmark::DoNotOptimize(logits);
  }
  tokens_per_second(state, batch * kLoopTokens);
}
BENCHMARK(BM_BareSteps)->ArgName("batch")->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
