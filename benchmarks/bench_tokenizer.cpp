// Tokenizer throughput: encode (warm and cold word cache) and decode on a few KB of mixed
// text with the default model's tokenizer ($STEER_DEFAULT_MODEL/tokenizer.json).
// Run: STEER_DEFAULT_MODEL=models/smollm2-135m-instruct ./bench_tokenizer
//      --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// bytes_per_second is input bytes of text (encode) or output bytes of text (decode).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "steer/tokenizer.hpp"

namespace {

std::string model_path() {
  const char* dir = std::getenv("STEER_DEFAULT_MODEL");
  return std::string(dir == nullptr ? "models/smollm2-135m-instruct" : dir) + "/tokenizer.json";
}

/// About 6 KB: English prose, code, numbers, accents, CJK, emoji and whitespace runs.
const std::string& mixed_text() {
  static const std::string text = [] {
    const std::vector<std::string> parts = {
        "Activation steering adds a vector to the residual stream of a transformer at one "
        "layer, shifting what the model writes next without changing its weights. ",
        "def steer(model, vector, layer=12, coefficient=4.0):\n    return model.add_hook("
        "layer, lambda h: h + coefficient * vector)\n\n",
        "In 2024, 1,234,567 tokens were processed at 3.14159 tokens/ms; ids 49152 and 65536. ",
        "Le café de l'école était très animé; naïve façade, Zürich, Ångström. ",
        "日本語のテキストと中文分词测试、한국어 문장도 포함됩니다。 ",
        "Emoji 😀👍🏽🎉 and symbols → ≠ ∞ … “quotes” don't I'LL we've. ",
        "   indented\twith\ttabs   \n\n\ttrailing spaces   \n",
    };
    std::string out;
    while (out.size() < 6000) {
      for (const std::string& p : parts) out += p;
    }
    return out;
  }();
  return text;
}

const steer::Tokenizer& tokenizer() {
  static const steer::Tokenizer tok = steer::Tokenizer::from_file(model_path());
  return tok;
}

void record_context() {
  static const bool done = [] {
    benchmark::AddCustomContext("tokenizer", model_path());
    benchmark::AddCustomContext("text_bytes", std::to_string(mixed_text().size()));
    char version[64] = {0};
    pcre2_config(PCRE2_CONFIG_VERSION, version);
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    benchmark::AddCustomContext("pcre2", std::string(version) + (jit ? " (JIT)" : " (no JIT)"));
    return true;
  }();
  (void)done;
}

/// Steady state: the word cache already holds every word of the text.
void BM_EncodeWarmCache(benchmark::State& state) {
  record_context();
  const auto& tok = tokenizer();
  const std::string& text = mixed_text();
  std::size_t n_ids = tok.encode(text).size();
  for (auto _ : state) {
    auto ids = tok.encode(text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["ids"] = static_cast<double>(n_ids);
}

/// Every word merged from scratch: copies of a tokenizer share its cache, so each iteration
/// loads a fresh one (and destroys the previous one) outside the timed region.
void BM_EncodeColdCache(benchmark::State& state) {
  record_context();
  const std::string& text = mixed_text();
  std::optional<steer::Tokenizer> tok;
  for (auto _ : state) {
    state.PauseTiming();
    tok.reset();
    tok.emplace(steer::Tokenizer::from_file(model_path()));
    state.ResumeTiming();
    auto ids = tok->encode(text);
    benchmark::DoNotOptimize(ids.data());
  }

  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Decode(benchmark::State& state) {
  record_context();
  const auto& tok = tokenizer();
  const auto ids = tok.encode(mixed_text());
  for (auto _ : state) {
    auto text = tok.decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mixed_text().size()));
}

}  // namespace

BENCHMARK(BM_EncodeWarmCache)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncodeColdCache)->Unit(benchmark::kMicrosecond)->Iterations(20);
BENCHMARK(BM_Decode)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
