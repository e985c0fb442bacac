// `steer generate --prompts FILE`: every prompt of a file generated in batches (left-padded,
// Model::generate) and written as JSON Lines, one object per prompt in file order, with
// progress on stderr.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "common.hpp"

namespace steer::cli {

/// The seed prompt `index` (from 0, in file order) of a --prompts run is sampled with:
/// --seed plus its index. Each prompt draws from its own generator (GenerateOptions::seeds),
/// so prompt i samples what `steer generate --prompt P_i --seed S+i` samples, whatever the
/// batch size.
inline uint64_t prompt_seed(uint64_t seed, size_t index) { return seed + index; }

/// One line of output: the prompt, what was generated and how (`settings`: the steering and
/// sampling settings shared by every prompt of the run), and the seed the prompt was sampled
/// with (null when greedy).
inline Json generation_record(const std::string& prompt, bool chat, const Generation& generation,
                              const Json& settings, std::optional<uint64_t> seed) {
  Json out = {{"prompt", prompt},
              {"chat", chat},
              {"prompt_tokens", generation.prompt_ids},
              {"text", generation.text},
              {"tokens", generation.ids},
              {"stop_reason", generation.stop_reason}};
  for (const auto& [key, value] : settings.items()) out[key] = value;
  out["seed"] = seed ? Json(*seed) : Json(nullptr);
  return out;
}

/// How a --prompts run goes. Example: `PromptBatches("prompts.txt").batch_size(8).out("-")`
struct PromptBatches {
  explicit PromptBatches(std::string file) : file_(std::move(file)) {}
  TORCH_ARG(std::string, file);
  TORCH_ARG(int64_t, batch_size) = 8;
  TORCH_ARG(bool, chat) = false;
  /// Where the JSON Lines go: a file name, or "-" for stdout.
  TORCH_ARG(std::string, out) = "-";
  TORCH_ARG(bool, quiet) = false;
};

/// The prompts of `run.file()`, read before the model loads so that a bad file fails fast.
inline std::vector<std::string> read_prompt_file(const PromptBatches& run) {
  return parse_option<Error>("prompts", "read_prompts",
                             [&] { return io::read_prompts(run.file()); });
}

/// The output stream of `run`: stdout, or the file opened (and truncated) now, before the model
/// loads, so that an unwritable path fails fast.
inline std::ofstream open_output(const PromptBatches& run) {
  std::ofstream file;
  if (run.out() == "-") return file;
  file.open(run.out(), std::ios::binary | std::ios::trunc);
  STEER_CHECK(file.good(), "--out: cannot write '", run.out(), "'");
  return file;
}

/// Generates the prompts `ids` with `options` (hooks already attached to `model`),
/// `batch_size` prompts per Model::generate call, in order, and calls
/// `on_batch(begin, generations)` after each batch (`begin`: index of its first prompt).
/// Sampling gives prompt i its own seed, prompt_seed(options.seed(), i) (unset: 0).
template <class OnBatch>
void generate_in_batches(const Model& model, const std::vector<std::vector<int64_t>>& ids,
                         int64_t batch_size, const GenerateOptions& options, OnBatch&& on_batch) {
  const bool sampling = options.temperature() > 0.0;
  const auto total = static_cast<int64_t>(ids.size());
  for (int64_t begin = 0; begin < total; begin += batch_size) {
    const auto end = std::min(total, begin + batch_size);
    const std::vector<std::vector<int64_t>> batch(ids.begin() + begin, ids.begin() + end);
    auto batch_options = GenerateOptions(options).on_token(nullptr);
    if (sampling) {
      std::vector<uint64_t> seeds;
      for (auto i = begin; i < end; ++i) seeds.push_back(prompt_seed(options.seed().value_or(0), i));
      batch_options.seed(std::nullopt).seeds(seeds);
    }
    on_batch(begin, model.generate(batch, batch_options));
  }
}

/// Generates every prompt with `options` (hooks already attached to `model`) in batches and
/// writes one JSON line per prompt, in file order, after each batch, with progress on stderr.
inline void generate_prompt_batches(const Model& model, const std::vector<std::string>& prompts,
                                    const PromptBatches& run, const GenerateOptions& options,
                                    const Json& settings, std::ofstream& file) {
  std::ostream& out = run.out() == "-" ? std::cout : file;
  // Every prompt is tokenized and checked first: a bad one fails before any generation.
  std::vector<std::vector<int64_t>> ids;
  const auto max_positions = model.config().max_positions;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ids.push_back(prompt_ids(model, prompts[i], run.chat()));
    STEER_CHECK(!ids.back().empty(), "--prompts: prompt ", i, " of '", run.file(),
                "' is empty (it has no token)");
    const auto needed = static_cast<int64_t>(ids.back().size()) + options.max_new_tokens();
    STEER_CHECK(max_positions <= 0 || needed <= max_positions, "--prompts: prompt ", i, " of '",
                run.file(), "' has ", ids.back().size(), " tokens; with --max-new-tokens ",
                options.max_new_tokens(), " that is ", needed, " positions, beyond the model's ",
                max_positions);
  }
  const bool sampling = options.temperature() > 0.0;
  const auto total = static_cast<int64_t>(prompts.size());
  const auto progress = run.quiet() ? ProgressCallback()
                                    : progress_printer("steer generate", "generated");
  generate_in_batches(
      model, ids, run.batch_size(), options,
      [&](int64_t begin, const std::vector<Generation>& generations) {
        for (size_t j = 0; j < generations.size(); ++j) {
          const auto i = begin + static_cast<int64_t>(j);
          const auto seed = sampling ? std::optional<uint64_t>(prompt_seed(
                                           options.seed().value_or(0), static_cast<size_t>(i)))
                                     : std::nullopt;
          out << to_text(generation_record(prompts[i], run.chat(), generations[j], settings, seed))
              << "\n";
        }
        out.flush();
        STEER_CHECK(out.good(), "--out: could not write '", run.out(), "'");
        if (progress) progress(begin + static_cast<int64_t>(generations.size()), total);
      });
}

}  // namespace steer::cli
