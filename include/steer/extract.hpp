// Extraction: from a model and contrasting prompts to a steering vector per layer. Activations
// are read with Record hooks in batches, then one steer::vec method runs per layer
// (mean-diff, pca-diff, pca-center, logistic, lda; see docs/extraction.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/eigen_bridge.hpp"
#include "steer/error.hpp"
#include "steer/generate.hpp"
#include "steer/hook_point.hpp"
#include "steer/hooks.hpp"
#include "steer/steering.hpp"
#include "steer/model.hpp"
#include "steer/positions.hpp"
#include "steer/steering_vector.hpp"
#include "steer/vec/accumulator.hpp"
#include "steer/vec/difference.hpp"
#include "steer/vec/normalize.hpp"
#include "steer/vec/pca.hpp"
#include "steer/vec/probe.hpp"
#include "steer/vec/separation.hpp"

namespace steer {

/// How a direction is computed from the two sets of activations of one layer.
/// - mean_diff:  mean(positive) - mean(negative) (CAA, diff-in-means); keeps its natural norm.
/// - pca_diff:   first principal component of the paired differences (repeng, llama.cpp).
/// - pca_center: first principal component of the pair-centred activations (repeng).
/// - logistic:   weights of an L2-regularized logistic-regression probe.
/// - lda:        weights of linear discriminant analysis with shrinkage.
/// PCA and probe directions have unit norm and point from the negative to the positive set.
enum class Method { mean_diff, pca_diff, pca_center, logistic, lda };

/// "mean-diff", "pca-diff", "pca-center", "logistic", "lda".
inline const char* method_name(Method method) {
  switch (method) {
    case Method::mean_diff: return "mean-diff";
    case Method::pca_diff: return "pca-diff";
    case Method::pca_center: return "pca-center";
    case Method::logistic: return "logistic";
    case Method::lda: return "lda";
  }
  return "?";
}

/// The Method named by method_name(); throws listing the names.
inline Method parse_method(const std::string& name) {
  for (auto m : {Method::mean_diff, Method::pca_diff, Method::pca_center, Method::logistic,
                 Method::lda}) {
    if (name == method_name(m)) return m;
  }
  throw Error(detail::concat("parse_method: unknown method '", name,
                             "'; expected mean-diff, pca-diff, pca-center, logistic or lda"));
}

/// How the selected tokens of one prompt become rows: `mean`, one row per prompt (the mean over
/// its selected tokens); `tokens`, one row per selected token.
enum class Pooling { mean, tokens };

/// The layer sites (resid_pre, resid_mid, resid_post, attn_out, mlp_out) by name.
inline Site parse_site(const std::string& name) {
  for (auto s : {Site::resid_pre, Site::resid_mid, Site::resid_post, Site::attn_out,
                 Site::mlp_out}) {
    if (name == site_name(s)) return s;
  }
  throw Error(detail::concat("parse_site: unknown site '", name,
                             "'; expected resid_pre, resid_mid, resid_post, attn_out or mlp_out"));
}

/// Called after each batch with the prompts read so far and the total.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

/// Which activations read_activations records, and how.
/// Example: `ReadOptions().layers({4, 5, 6}).site(Site::resid_pre).positions(Positions::last())`
struct ReadOptions {
  /// Layers to read (0-based, any order, no repeats). Default: empty, every layer.
  TORCH_ARG(std::vector<int64_t>, layers) = {};
  /// Site of each layer. Default: resid_post (where llama.cpp and repeng apply vectors).
  TORCH_ARG(Site, site) = Site::resid_post;
  /// Tokens read in each prompt. Default: the last one.
  TORCH_ARG(Positions, positions) = Positions::last();
  /// One row per prompt (mean over the selected tokens) or one per token. Default: mean.
  TORCH_ARG(Pooling, pooling) = Pooling::mean;
  /// Prompts per forward pass; prompts of similar length are batched together. Default: 8.
  TORCH_ARG(int64_t, batch_size) = 8;
  /// Format each prompt as a user message of the model's chat template, followed by the
  /// assistant header (the "post-instruction" tokens). Default: false (text as given).
  TORCH_ARG(bool, chat) = false;
  /// Progress after each batch. Default: none.
  TORCH_ARG(ProgressCallback, progress) = nullptr;
};

/// Activations read from a model: per layer a float32 CPU tensor [rows, d_model], and the
/// prompt each row came from (rows of one prompt are adjacent, prompts in input order).
struct Activations {
  std::map<int64_t, torch::Tensor> layers;
  std::vector<int64_t> prompt_of_row;

  /// The rows of `layer`, or an error listing the layers read.
  const torch::Tensor& at(int64_t layer) const {
    auto found = layers.find(layer);
    if (found != layers.end()) return found->second;
    std::string have;
    for (const auto& entry : layers) have += (have.empty() ? "" : ", ") + std::to_string(entry.first);
    throw Error(detail::concat("Activations::at: layer ", layer, " was not read (layers read: ",
                               have, ")"));
  }
  int64_t rows() const { return static_cast<int64_t>(prompt_of_row.size()); }
};

/// Token ids of `prompt` as read_activations feeds it to the model (see ReadOptions::chat).
inline std::vector<int64_t> prompt_ids(const Model& model, const std::string& prompt, bool chat) {
  const auto& tok = model.tokenizer();
  if (!chat) return tok.encode(prompt);
  // The chat layout writes its own BOS where the format has one.
  return tok.encode(tok.apply_chat_template({{"user", prompt}}, /*add_generation_prompt=*/true),
                    /*add_special_tokens=*/false);
}

namespace detail {

inline std::vector<int64_t> checked_layers(const char* call, const Model& model,
                                           std::vector<int64_t> layers) {
  if (layers.empty()) {
    layers.resize(model.n_layers());
    std::iota(layers.begin(), layers.end(), 0);
  }
  auto sorted = layers;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    STEER_CHECK(sorted[i] >= 0 && sorted[i] < model.n_layers(), call, ": layer ", sorted[i],
                " is out of range; model '", model_name(model), "' has layers 0 to ",
                model.n_layers() - 1, " (inclusive)");
    STEER_CHECK(i == 0 || sorted[i] != sorted[i - 1], call, ": layer ", sorted[i],
                " is listed twice");
  }
  return sorted;
}

}  // namespace detail

namespace detail {

/// read_activations of prompts [begin, end): their rows in input order. prompt_of_row, the
/// prompt numbers in errors and the progress count from the start of `prompts`.
inline Activations read_range(const char* call, const Model& model,
                              const std::vector<std::string>& prompts, size_t begin, size_t end,
                              const std::vector<int64_t>& layers, const ReadOptions& options) {
  const size_t count = end - begin;
  std::vector<std::vector<int64_t>> ids(count);
  for (size_t i = 0; i < count; ++i) {
    ids[i] = prompt_ids(model, prompts[begin + i], options.chat());
    STEER_CHECK(!ids[i].empty(), call, ": prompt ", begin + i, " is empty (it has no token)");
  }
  // Similar lengths share a batch, so little of each forward pass is padding.
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });

  const auto pad = model.config().padding_id();
  // per_prompt[layer][prompt]: that prompt's rows [n, d_model].
  std::map<int64_t, std::vector<torch::Tensor>> per_prompt;
  for (auto layer : layers) per_prompt[layer].resize(count);
  const auto total = static_cast<int64_t>(count);
  for (int64_t start = 0; start < total; start += options.batch_size()) {
    const auto stop = std::min(total, start + options.batch_size());
    std::vector<std::vector<int64_t>> batch;
    for (auto i = start; i < stop; ++i) batch.push_back(ids[order[i]]);
    // The records belong to this call, not to the model: concurrent reads on one model, and
    // steering the caller applies with a SteeringGuard, stay apart.
    Steering reading(model);
    std::vector<Record*> records;
    for (auto layer : layers) {
      records.push_back(
          &reading.add(HookPoint(options.site(), layer), Record(), options.positions()));
    }
    auto [input, mask] = left_pad(batch, pad);
    {
      SteeringGuard guard(reading);
      model.logits(input, mask);
    }
    for (size_t l = 0; l < layers.size(); ++l) {
      for (auto i = start; i < stop; ++i) {
        auto rows = records[l]->sequence(i - start).to(torch::kCPU, torch::kFloat32);
        STEER_CHECK(rows.size(0) > 0, call, ": prompt ", begin + order[i], " (",
                    ids[order[i]].size(), " tokens) has no token at positions '",
                    options.positions().to_string(),
                    "' (hint: positions count the prompt's tokens from 0)");
        if (options.pooling() == Pooling::mean) rows = rows.mean(0, /*keepdim=*/true);
        per_prompt[layers[l]][order[i]] = rows;
      }
    }
    if (options.progress()) {
      options.progress()(static_cast<int64_t>(begin) + stop,
                         static_cast<int64_t>(prompts.size()));
    }
  }

  Activations out;
  for (auto layer : layers) out.layers[layer] = torch::cat(per_prompt[layer], 0).contiguous();
  const auto& first = per_prompt[layers.front()];
  for (size_t i = 0; i < first.size(); ++i) {
    out.prompt_of_row.insert(out.prompt_of_row.end(), first[i].size(0),
                             static_cast<int64_t>(begin + i));
  }
  return out;
}

inline void check_read_options(const char* call, const ReadOptions& options) {
  STEER_CHECK(options.site() != Site::module, call,
              ": site must be a layer site (resid_pre, resid_mid, resid_post, attn_out, mlp_out)");
  STEER_CHECK(options.batch_size() >= 1, call, ": batch_size must be >= 1, got ",
              options.batch_size());
}

}  // namespace detail

/// Runs `prompts` through `model` in batches and records the activations `options` select at
/// each layer. Throws when a prompt has no selected token (e.g. explicit positions beyond it).
/// Example:
/// ```
/// auto acts = steer::read_activations(model, {"I love you", "I hate you"},
///                                     steer::ReadOptions().layers({6}).site(steer::Site::resid_pre));
/// torch::Tensor rows = acts.at(6);  // [2, d_model]
/// ```
inline Activations read_activations(const Model& model, const std::vector<std::string>& prompts,
                                    const ReadOptions& options) {
  const char* call = "read_activations";
  STEER_CHECK(!prompts.empty(), call, ": no prompts given");
  detail::check_read_options(call, options);
  const auto layers = detail::checked_layers(call, model, options.layers());
  return detail::read_range(call, model, prompts, 0, prompts.size(), layers, options);
}

/// Prompts stream_activations reads (and holds the rows of) at a time: 16 batches.
inline int64_t stream_chunk_prompts(const ReadOptions& options) {
  return 16 * options.batch_size();
}

/// read_activations in streaming mode: reads `prompts` in chunks of stream_chunk_prompts()
/// prompts, in input order, and calls `on_chunk(chunk)` with the activations of each chunk
/// (its prompt_of_row counts from the first prompt of `prompts`). Only one chunk's rows are
/// held, so memory does not grow with the number of prompts. Prompts are sorted by length
/// within a chunk (read_activations sorts all of them), so a prompt may share its batch with
/// other prompts than in read_activations; its rows then differ by float32 rounding of the
/// padded forward pass only (with batch_size 1 they are the same rows).
/// Example:
/// ```
/// steer::vec::MeanAccumulator mean(model.d_model());
/// steer::stream_activations(model, prompts, steer::ReadOptions().layers({6}),
///     [&](const steer::Activations& chunk) { mean.add(steer::to_eigen_rows(chunk.at(6)).map); });
/// ```
inline void stream_activations(const Model& model, const std::vector<std::string>& prompts,
                               const ReadOptions& options,
                               const std::function<void(const Activations&)>& on_chunk) {
  const char* call = "stream_activations";
  STEER_CHECK(!prompts.empty(), call, ": no prompts given");
  detail::check_read_options(call, options);
  const auto layers = detail::checked_layers(call, model, options.layers());
  const auto chunk = static_cast<size_t>(stream_chunk_prompts(options));
  for (size_t begin = 0; begin < prompts.size(); begin += chunk) {
    const auto end = std::min(prompts.size(), begin + chunk);
    on_chunk(detail::read_range(call, model, prompts, begin, end, layers, options));
  }
}

/// How extract turns the activations into a vector.
/// Example: `ExtractOptions(Method::pca_diff).read(ReadOptions().layers({5, 6}))`
struct ExtractOptions {
  explicit ExtractOptions(Method method = Method::mean_diff) : method_(method) {}
  /// The method. Default: mean_diff.
  TORCH_ARG(Method, method);
  /// What is read: layers, site, positions, pooling, batch size, chat, progress.
  TORCH_ARG(ReadOptions, read) = {};
  /// pca_diff, pca_center: the PCA (only the first component becomes the direction).
  TORCH_ARG(vec::PcaOptions, pca) = {};
  /// logistic: regularization and stopping.
  TORCH_ARG(vec::LogisticOptions, logistic) = {};
  /// lda: shrinkage.
  TORCH_ARG(vec::LdaOptions, lda) = {};
  /// Return the activations read in Extraction::positive / negative. Default: false.
  TORCH_ARG(bool, keep_activations) = false;
  /// Keep only the statistics the method needs instead of every row, so memory does not grow
  /// with the number of prompts (docs/extraction.md, "Streaming"): mean_diff keeps two means,
  /// pca_diff and pca_center the d_model x d_model second moment of the paired differences.
  /// logistic and lda need the rows and are refused; Extraction::accuracy stays empty (it
  /// projects every row on the final direction); keep_activations is refused. Default: false.
  TORCH_ARG(bool, streaming) = false;
};

/// What extract produced.
struct Extraction {
  /// One direction per layer, with its origin (model, site, positions, method, the mean
  /// activation norm per layer for SteeringVector::normalized_to_activations).
  SteeringVector vector;
  /// Per layer, the direction read as a classifier on the rows it was made from (threshold at
  /// the midpoint of the projected set means): training accuracy, in [0, 1].
  LayerValues accuracy;
  /// pca_diff / pca_center: explained-variance ratio of the first component per layer.
  LayerValues explained_variance_ratio;
  /// The activations read (only with ExtractOptions::keep_activations).
  Activations positive, negative;
};

/// The direction of one layer from the two sets of rows ([N, d_model] float32 CPU tensors).
/// Returns the direction and fills `explained` for the PCA methods.
inline torch::Tensor direction_from(const torch::Tensor& positive, const torch::Tensor& negative,
                                    const ExtractOptions& options, double* explained = nullptr) {
  const auto p = to_eigen_rows(positive);
  const auto n = to_eigen_rows(negative);
  switch (options.method()) {
    case Method::mean_diff:
      return adopt_tensor(vec::mean_difference(p.map, n.map));
    case Method::pca_diff:
    case Method::pca_center: {
      const auto r = options.method() == Method::pca_diff ? vec::pca_diff(p.map, n.map, options.pca())
                                                          : vec::pca_center(p.map, n.map, options.pca());
      if (explained) *explained = r.explained_variance_ratio(0);
      return adopt_tensor(r.direction());
    }
    case Method::logistic:
      return adopt_tensor(vec::logistic_probe(p.map, n.map, options.logistic()).direction);
    case Method::lda:
      return adopt_tensor(vec::lda_probe(p.map, n.map, options.lda()).direction);
  }
  throw Error("direction_from: unknown method");
}

namespace detail {

/// The origin of an extracted vector: model, site, positions, method, activation norms and
/// what it was read from.
inline VectorOrigin extraction_origin(const Model& model, const ExtractOptions& options,
                                      size_t positive, size_t negative,
                                      const LayerValues& norms) {
  const auto& read = options.read();
  return VectorOrigin()
      .model(model_name(model))
      .architecture(model.config().hf_model_type)
      .n_layers(model.n_layers())
      .site(site_name(read.site()))
      .positions(read.positions().to_string())
      .method(method_name(options.method()))
      .activation_norms(norms)
      .metadata({{"positive_prompts", std::to_string(positive)},
                 {"negative_prompts", std::to_string(negative)},
                 {"pooling", read.pooling() == Pooling::mean ? "mean" : "tokens"},
                 {"chat", read.chat() ? "true" : "false"}});
}

/// extract with ExtractOptions::streaming: reads chunks of prompts and keeps per layer only
/// the statistics of the method (two MeanAccumulators; for the paired methods also a
/// CovarianceAccumulator of the paired differences). `report`: progress over both sets.
inline Extraction extract_streaming(const Model& model, const std::vector<std::string>& positive,
                                    const std::vector<std::string>& negative,
                                    const ExtractOptions& options,
                                    const ProgressCallback& report) {
  const char* call = "extract";
  const auto method = options.method();
  const bool paired = method == Method::pca_diff || method == Method::pca_center;
  STEER_CHECK(paired || method == Method::mean_diff, call, ": streaming keeps the statistics "
              "of mean-diff, pca-diff and pca-center, but ", method_name(method), " needs every "
              "row (", method == Method::logistic ? "each optimizer step reads all of them"
                                                  : "its classifier check reads all of them",
              ") (hint: extract without streaming, or with mean-diff)");
  STEER_CHECK(!options.keep_activations(), call, ": streaming keeps no activations, but "
              "keep_activations is set (hint: set one of streaming and keep_activations)");
  auto read = options.read();
  detail::check_read_options(call, read);
  const auto layers = checked_layers(call, model, read.layers());
  read.progress(nullptr);
  std::map<int64_t, vec::MeanAccumulator> positive_mean, negative_mean;
  std::map<int64_t, vec::CovarianceAccumulator> differences;
  for (const auto layer : layers) {
    positive_mean.emplace(layer, vec::MeanAccumulator(model.d_model()));
    negative_mean.emplace(layer, vec::MeanAccumulator(model.d_model()));
    if (paired) differences.emplace(layer, vec::CovarianceAccumulator(model.d_model()));
  }
  const auto add_means = [&](std::map<int64_t, vec::MeanAccumulator>& means,
                             const Activations& chunk) {
    for (const auto layer : layers) means.at(layer).add(to_eigen_rows(chunk.at(layer)).map);
  };
  const auto total = static_cast<int64_t>(positive.size() + negative.size());
  const auto chunk = static_cast<size_t>(stream_chunk_prompts(read));
  if (paired) {
    // Pair i needs both of its rows: each chunk reads the same pairs from both sets.
    for (size_t begin = 0; begin < positive.size(); begin += chunk) {
      const auto end = std::min(positive.size(), begin + chunk);
      const auto pos = read_range(call, model, positive, begin, end, layers, read);
      const auto neg = read_range(call, model, negative, begin, end, layers, read);
      STEER_CHECK(pos.rows() == neg.rows(), call, ": ", method_name(method), " pairs rows, but "
                  "positive prompts ", begin, " to ", end - 1, " gave ", pos.rows(),
                  " rows and the negative prompts ", neg.rows(), " (hint: with Pooling::tokens, "
                  "paired prompts must have as many selected tokens; use Pooling::mean)");
      add_means(positive_mean, pos);
      add_means(negative_mean, neg);
      for (const auto layer : layers) {
        differences.at(layer).add_differences(to_eigen_rows(pos.at(layer)).map,
                                              to_eigen_rows(neg.at(layer)).map);
      }
      if (report) report(2 * static_cast<int64_t>(end), total);
    }
  } else {
    int64_t offset = 0;
    for (const auto* set : {&positive, &negative}) {
      if (report) read.progress([&](int64_t done, int64_t) { report(offset + done, total); });
      stream_activations(model, *set, read, [&](const Activations& part) {
        add_means(set == &positive ? positive_mean : negative_mean, part);
      });
      offset += static_cast<int64_t>(set->size());
    }
  }

  LayerValues norms;
  for (const auto layer : layers) {
    auto both = positive_mean.at(layer);
    both.merge(negative_mean.at(layer));
    norms[layer] = both.mean_norm();
  }
  Extraction out;
  out.vector = SteeringVector(
      model.d_model(), extraction_origin(model, options, positive.size(), negative.size(), norms));
  for (const auto layer : layers) {
    if (!paired) {
      const Eigen::VectorXd difference =
          positive_mean.at(layer).mean() - negative_mean.at(layer).mean();
      out.vector.set(layer, adopt_tensor(Eigen::VectorXf(difference.cast<float>())));
      continue;
    }
    const auto r = method == Method::pca_diff ? vec::pca_diff(differences.at(layer), options.pca())
                                              : vec::pca_center(differences.at(layer), options.pca());
    out.explained_variance_ratio[layer] = r.explained_variance_ratio(0);
    out.vector.set(layer, adopt_tensor(r.direction()));
  }
  return out;
}

}  // namespace detail

/// Reads `positive` and `negative` prompts through `model` and makes one direction per layer
/// with `options.method()`, oriented from the negative to the positive set (the sets may
/// differ in size, except for pca_diff / pca_center, which pair row i with row i).
/// Example:
/// ```
/// auto x = steer::extract(model, {"Love"}, {"Hate"},
///     steer::ExtractOptions().read(steer::ReadOptions().layers({6}).site(steer::Site::resid_pre)));
/// auto h = steer::hook(model, "resid_pre.6", steer::Add(x.vector.at(6), /*coefficient=*/0.1));
/// ```
inline Extraction extract(const Model& model, const std::vector<std::string>& positive,
                          const std::vector<std::string>& negative,
                          const ExtractOptions& options = ExtractOptions()) {
  const char* call = "extract";
  STEER_CHECK(!positive.empty() && !negative.empty(), call,
              ": both prompt sets must be non-empty, got ", positive.size(), " positive and ",
              negative.size(), " negative prompts");
  const bool paired = options.method() == Method::pca_diff || options.method() == Method::pca_center;
  STEER_CHECK(!paired || positive.size() == negative.size(), call, ": ",
              method_name(options.method()), " pairs positive prompt i with negative prompt i, "
              "but got ", positive.size(), " positive and ", negative.size(),
              " negative prompts (hint: mean-diff, logistic and lda take sets of any size)");
  STEER_CHECK(!paired || options.pca().k() == 1, call, ": pca.k is ", options.pca().k(),
              ", but extract keeps one direction per layer (the first component), so the other "
              "components would be computed and dropped (hint: leave k at 1, or call "
              "vec::pca_diff / vec::pca_center on Extraction::positive / negative for more)");

  // One progress count over both sets.
  const auto total = static_cast<int64_t>(positive.size() + negative.size());
  auto read = options.read();
  const auto report = options.read().progress();
  if (options.streaming()) return detail::extract_streaming(model, positive, negative, options, report);
  if (report) read.progress([&](int64_t done, int64_t) { report(done, total); });
  auto pos = read_activations(model, positive, read);
  if (report) {
    const auto offset = static_cast<int64_t>(positive.size());
    read.progress([&, offset](int64_t done, int64_t) { report(offset + done, total); });
  }
  auto neg = read_activations(model, negative, read);
  STEER_CHECK(!paired || pos.rows() == neg.rows(), call, ": ", method_name(options.method()),
              " pairs rows, but the positive prompts gave ", pos.rows(),
              " rows and the negative prompts ", neg.rows(),
              " (hint: with Pooling::tokens, paired prompts must have as many selected tokens; "
              "use Pooling::mean)");

  LayerValues norms;
  for (const auto& [layer, rows] : pos.layers) {
    const auto both = torch::cat({rows, neg.at(layer)}, 0).to(torch::kFloat64);
    norms[layer] = both.norm(2, /*dim=*/1).mean().item<double>();
  }
  Extraction out;
  out.vector = SteeringVector(
      model.d_model(),
      detail::extraction_origin(model, options, positive.size(), negative.size(), norms));
  for (const auto& [layer, rows] : pos.layers) {
    double explained = 0.0;
    auto direction = direction_from(rows, neg.at(layer), options, &explained);
    if (paired) out.explained_variance_ratio[layer] = explained;
    out.accuracy[layer] = vec::separation(to_eigen_vector(direction).map,
                                          to_eigen_rows(rows).map,
                                          to_eigen_rows(neg.at(layer)).map)
                              .accuracy;
    out.vector.set(layer, direction);
  }
  if (options.keep_activations()) {
    out.positive = std::move(pos);
    out.negative = std::move(neg);
  }
  return out;
}

/// As extract, from (positive, negative) prompt pairs.
/// Example: `steer::extract(model, {{"Love", "Hate"}, {"Kind", "Cruel"}}, options)`
inline Extraction extract(const Model& model,
                          const std::vector<std::pair<std::string, std::string>>& pairs,
                          const ExtractOptions& options = ExtractOptions()) {
  std::vector<std::string> positive, negative;
  for (const auto& [p, n] : pairs) {
    positive.push_back(p);
    negative.push_back(n);
  }
  return extract(model, positive, negative, options);
}

}  // namespace steer
