// Extraction: activations read in padded batches against transformers run prompt by prompt, and
// the directions of every method against NumPy / scikit-learn (reference made at test time by
// tests/fixtures/make_extract_fixtures.py), on the default model; origin, progress and errors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::ExtractOptions;
using steer::Method;
using steer::Pooling;
using steer::Positions;
using steer::ReadOptions;
using steer::Site;
using steer::test::default_model_dir;
using steer::test::fixture_dir;

namespace {

const std::vector<int64_t> kLayers = {2, 9, 20};

struct Reference {
  steer::io::Safetensors file;
  std::vector<std::string> positive, negative;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.file = steer::io::read_safetensors(fixture_dir() + "/extract.safetensors");
    r.positive = nlohmann::json::parse(r.file.metadata.at("positive")).get<std::vector<std::string>>();
    r.negative = nlohmann::json::parse(r.file.metadata.at("negative")).get<std::vector<std::string>>();
    return r;
  }();
  return ref;
}

const steer::Model& model() {
  static const auto m = steer::Model::load(default_model_dir());
  return m;
}

ReadOptions read_options() {
  return ReadOptions().layers(kLayers).site(Site::resid_pre).chat(true).batch_size(4);
}

// Bounds (derivations and measurements in docs/reliability.md, "Numeric tolerances").
//
// A row of resid_pre at layer L went through L blocks of float32 matrix products of length
// d_model = 576 and 1536 (the MLP). Summed in another order (left padding, batch size, another
// CPU's BLAS or ATen kernels), a product of length n moves by about u * sqrt(n) of its size
// (u = 2^-24 = 6e-8): 2.3e-6 for n = 1536; independent over up to 21 blocks, sqrt(21) * 2.3e-6
// = 1e-5. Measured, row by row: 1.3e-6 for a left-padded batch against one prompt alone, 2.1e-6
// for ATen's scalar ("default") against its AVX2 kernels. The bound takes 10x on the estimate.
// What it must catch is 2600x larger: a row read one layer late differs by 0.26 (layer 3 for 2),
// one position early by 1.0.
constexpr double kRowTolerance = 1e-4;
// mean(P) - mean(N) moves by at most mean |dP_i| + mean |dN_i| <= 2 * kRowTolerance * (mean row
// norm), so the mean difference is compared relative to the norm of the activations, not to its
// own (much smaller) entries: at layer 2 it is 1.2% of the activation norm, and an elementwise
// bound of 1e-5 relative to it failed on a Sapphire Rapids CPU and for ATen's default kernels
// (2e-5, measured with transformers batched against alone). Measured: 5e-7. Must catch: the mean
// difference one layer late differs by 0.011 of the activation norm, one position early by 0.025.
constexpr double kMeanDiffTolerance = 2 * kRowTolerance;

// Largest row error relative to the row (see max_row_relative_diff).
using steer::test::max_row_relative_diff;

// |a - b| / scale, in float64.
double norm_diff(const torch::Tensor& a, const torch::Tensor& b, double scale) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>() / scale;
}

// Mean row norm of the reference's "last" rows of both sets at `layer`: the activation scale.
double activation_scale(int64_t layer) {
  const auto& ref = reference();
  const auto rows = torch::cat({ref.file.at("rows.positive.last." + std::to_string(layer)),
                                ref.file.at("rows.negative.last." + std::to_string(layer))})
                        .to(torch::kFloat64);
  return rows.norm(2, 1).mean().item<double>();
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}

// Batches of 4 (left padding) against transformers one prompt at a time, for each selection.
TEST(Extract, ReadActivationsMatchesTransformers) {
  const auto& ref = reference();
  struct Case {
    const char* name;
    Positions positions;
    Pooling pooling;
    int64_t rows_per_prompt;
  };
  const Case cases[] = {{"last", Positions::last(), Pooling::mean, 1},
                        {"tail", Positions::last_prompt(3), Pooling::mean, 1},
                        {"tokens", Positions::parse("-3:"), Pooling::tokens, 3}};
  double worst = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (const auto* set : {"positive", "negative"}) {
      const auto& prompts = std::string(set) == "positive" ? ref.positive : ref.negative;
      const auto acts = steer::read_activations(
          model(), prompts, read_options().positions(c.positions).pooling(c.pooling));
      ASSERT_EQ(acts.rows(), static_cast<int64_t>(prompts.size()) * c.rows_per_prompt);
      EXPECT_EQ(acts.prompt_of_row.back(), static_cast<int64_t>(prompts.size()) - 1);
      for (auto layer : kLayers) {
        const auto expected = ref.file.at(std::string("rows.") + set + "." + c.name + "." +
                                          std::to_string(layer));
        ASSERT_EQ(acts.at(layer).sizes(), expected.sizes());
        const auto diff = max_row_relative_diff(acts.at(layer), expected);
        EXPECT_LE(diff, kRowTolerance) << set << " layer " << layer;
        worst = std::max(worst, diff);
      }
    }
  }
  std::printf("[ rows    ] max row |difference| / |row| vs transformers: %.3g (bound %.0e)\n",
              worst, kRowTolerance);
}

// Largest angle between steer's unit direction and the reference's, in radians: 1e-3 for every
// method (1 - cos = 5e-7). PCA and LDA are closed forms of the rows, logistic regression an
// optimum both sides reach to far better than this (scikit-learn's L-BFGS at tol 1e-12, steer's
// Newton steps); the rows' float32 noise turns a direction by that noise times the ratio of
// the activation norm to the separating signal (20-80x here). Measured: at most 3.4e-5 rad
// (LDA at layer 2 under ATen's default kernels, 1.7e-5 for logistic regression), 30x below
// the bound. A direction read one layer late is 0.7 rad away, one position early 1.4 rad.
constexpr double kMaxAngle = 1e-3;

TEST(Extract, EveryMethodMatchesNumpyAndScikitLearn) {
  const auto& ref = reference();
  struct Case {
    Method method;
    const char* name;
  };
  for (auto c : {Case{Method::mean_diff, "mean_diff"}, Case{Method::pca_diff, "pca_diff"},
                 Case{Method::pca_center, "pca_center"}, Case{Method::logistic, "logistic"},
                 Case{Method::lda, "lda"}}) {
    SCOPED_TRACE(c.name);
    auto options = ExtractOptions(c.method).read(read_options()).keep_activations(true);
    options.logistic().lambda(std::stod(ref.file.metadata.at("logistic_lambda")));
    options.lda().shrinkage(std::stod(ref.file.metadata.at("lda_shrinkage")));
    const auto x = steer::extract(model(), ref.positive, ref.negative, options);
    EXPECT_EQ(x.vector.layers(), kLayers);
    for (auto layer : kLayers) {
      const auto key = std::string(c.name) + "." + std::to_string(layer);
      const auto expected = ref.file.at(key);
      const auto& got = x.vector.at(layer);
      const double angle = std::acos(std::min(1.0, cosine(got, expected)));
      if (c.method == Method::mean_diff) {
        const auto diff = norm_diff(got, expected, activation_scale(layer));
        EXPECT_LE(diff, kMeanDiffTolerance) << "layer " << layer;
        std::printf("[ vector  ] mean_diff layer %lld: |difference| / activation norm %.3g "
                    "(bound %.0e)\n", static_cast<long long>(layer), diff, kMeanDiffTolerance);
      } else {
        // Same sign (oriented by the mean difference / towards the positive set), unit norm.
        EXPECT_LE(angle, kMaxAngle) << "layer " << layer;  // same sign: angle < pi/2
        std::printf("[ vector  ] %s layer %lld: angle to the reference %.3g rad (bound %.0e)\n",
                    c.name, static_cast<long long>(layer), angle, kMaxAngle);
        // A float32 vector normalized in float32: its norm is 1 within ~u * sqrt(d_model) =
        // 1.4e-6 (sum of 576 squares); the bound takes 7x. An unnormalized direction is off
        // by its whole norm.
        EXPECT_NEAR(got.norm().item<double>(), 1.0, 1e-5);
      }
      // The training accuracy, recomputed with NumPy from the reference direction: a count of
      // 12 rows, compared exactly, except for rows that lie so close to the threshold that the
      // differences measured here could move them across: steer's direction is `angle` away,
      // its rows `row_error` (relative), and the threshold, a mean of projections, moves by as
      // much again. The fixture gives each row's distance to the threshold in that unit. With
      // the differences measured on x86-64 CPUs no row is that close and the count is exact.
      const auto distance = ref.file.at("accuracy_distance." + key);
      const double row_error = std::max(
          max_row_relative_diff(x.positive.at(layer), ref.file.at("rows.positive.last." +
                                                                  std::to_string(layer))),
          max_row_relative_diff(x.negative.at(layer), ref.file.at("rows.negative.last." +
                                                                  std::to_string(layer))));
      const auto uncertain = (distance < 2 * (angle + row_error)).sum().item<int64_t>();
      if (uncertain > 0) {
        std::printf("[ accuracy] %s layer %lld: %lld rows within reach of float32 noise\n",
                    c.name, static_cast<long long>(layer), static_cast<long long>(uncertain));
      }
      EXPECT_NEAR(x.accuracy.at(layer), ref.file.at("accuracy." + key).item<double>(),
                  static_cast<double>(uncertain) / static_cast<double>(distance.numel()))
          << "layer " << layer;
    }
    const bool pca = c.method == Method::pca_diff || c.method == Method::pca_center;
    EXPECT_EQ(x.explained_variance_ratio.size(), pca ? kLayers.size() : 0u);
  }
}

TEST(Extract, OriginRecordsWhereTheVectorCameFrom) {
  const auto& ref = reference();
  const auto x = steer::extract(
      model(), ref.positive, ref.negative,
      ExtractOptions(Method::pca_diff)
          .read(read_options().positions(Positions::last_prompt(3)))
          .keep_activations(true));
  const auto& o = x.vector.origin();
  EXPECT_EQ(o.model(), "smollm2-135m-instruct");
  EXPECT_EQ(o.n_layers(), 30);
  EXPECT_EQ(o.site(), "resid_pre");
  EXPECT_EQ(o.positions(), "-3:");
  EXPECT_EQ(o.method(), "pca-diff");
  EXPECT_EQ(o.metadata().at("chat"), "true");
  EXPECT_EQ(o.metadata().at("positive_prompts"), "6");
  for (auto layer : kLayers) {
    // The mean activation norm over both sets, as normalized_to_activations uses it.
    const auto both = torch::cat({x.positive.at(layer), x.negative.at(layer)}).to(torch::kFloat64);
    // Both in float64 from the same float32 rows (12 norms of 576 squares): equal to ~1e-15
    // relative whatever the order of the sums; 1e-12 catches any float32 step or another set.
    const double norm = both.norm(2, 1).mean().item<double>();
    EXPECT_NEAR(o.activation_norms().at(layer), norm, 1e-12 * norm);
    // A float32 vector rescaled to that norm: its own norm, summed in float32 over 576 squares,
    // is off by ~u * sqrt(576) = 1.4e-6 relative; 1e-5 leaves 7x and catches any other scale.
    EXPECT_NEAR(x.vector.normalized_to_activations().at(layer).norm().item<double>(), norm,
                1e-5 * norm);
  }
}

TEST(Extract, PairsEqualSetsAndProgressCountsEveryPrompt) {
  const auto& ref = reference();
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < ref.positive.size(); ++i) pairs.emplace_back(ref.positive[i], ref.negative[i]);
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  const auto a = steer::extract(model(), pairs,
                                ExtractOptions().read(read_options().progress(progress)));
  const auto b = steer::extract(model(), ref.positive, ref.negative,
                                ExtractOptions().read(read_options().batch_size(5)));
  for (auto layer : kLayers) {
    // Different batch sizes pad differently; the activations agree to float32 noise, so the
    // mean differences agree within kMeanDiffTolerance of the activation norm (as above).
    EXPECT_LE(norm_diff(a.vector.at(layer), b.vector.at(layer), activation_scale(layer)),
              kMeanDiffTolerance);
  }
  // 6 + 6 prompts in batches of 4: 4, 6 for the positive set, then 10, 12.
  const std::vector<std::pair<int64_t, int64_t>> expected = {{4, 12}, {6, 12}, {10, 12}, {12, 12}};
  EXPECT_EQ(calls, expected);
}

TEST(Extract, MeanDiffSteersTowardsThePositiveSet) {
  // The direction read as a classifier separates the training prompts at a middle layer.
  const auto& ref = reference();
  const auto x = steer::extract(model(), ref.positive, ref.negative,
                                ExtractOptions().read(read_options()));
  EXPECT_EQ(x.accuracy.at(9), 1.0);
  const auto acts = steer::read_activations(model(), ref.positive, read_options().layers({9}));
  const auto projection = acts.at(9).matmul(x.vector.at(9)).mean().item<double>();
  const auto acts_neg = steer::read_activations(model(), ref.negative, read_options().layers({9}));
  EXPECT_GT(projection, acts_neg.at(9).matmul(x.vector.at(9)).mean().item<double>());
}

// Prompts "I love <w>" / "I hate <w>" of one token length, so that sorting by length keeps
// them in input order and streaming (sorted within chunks) forms the batches read_activations
// forms (sorted overall): both read the same float32 rows, and only the accumulation differs.
std::pair<std::vector<std::string>, std::vector<std::string>> equal_length_sets(size_t n) {
  const std::vector<std::string> words = {
      "cats", "dogs", "music", "summer", "winter", "coffee", "tea", "books", "rain", "snow",
      "cars", "trains", "cities", "mountains", "rivers", "flowers", "birds", "horses", "pizza",
      "bread", "chocolate", "football", "movies", "games", "school", "work", "people",
      "children", "money", "art", "science", "history", "water", "fire", "wind", "night",
      "morning", "food", "sports", "computers", "phones", "animals", "trees", "the sea"};
  const auto& tokenizer = model().tokenizer();
  const auto length = tokenizer.encode("I love cats").size();
  std::vector<std::string> positive, negative;
  for (const auto& w : words) {
    if (positive.size() == n) break;
    if (tokenizer.encode("I love " + w).size() != length ||
        tokenizer.encode("I hate " + w).size() != length) {
      continue;
    }
    positive.push_back("I love " + w);
    negative.push_back("I hate " + w);
  }
  EXPECT_EQ(positive.size(), n) << "too few words of one token";
  return {positive, negative};
}

// Streaming keeps two means (mean_diff) or the second moment of the paired differences
// (pca_diff, pca_center) per layer. On the same rows (see equal_length_sets; 34 prompts per set
// in batches of 2 make chunks of 32 and 2 prompts) it equals the in-memory extraction within
// float64 rounding: both accumulate the same float32 rows in float64 and round the result to
// float32 once, so entries differ by at most one float32 rounding step (2^-23 relative; 2^-22
// allowed). PCA: two float64 eigensolvers (34 x 34 Gram, 576 x 576 moment) of the same data;
// their eigenvectors differ by ~1e-16 x (largest eigenvalue / gap), orders below the float32
// rounding of the unit direction's entries (<= 3e-8 for entries below 0.5), so 1e-7.
TEST(Extract, StreamingEqualsInMemoryWithinFloat64Rounding) {
  const auto [positive, negative] = equal_length_sets(34);
  const auto read = ReadOptions().layers({2, 9}).site(Site::resid_pre).batch_size(2);
  ASSERT_EQ(steer::stream_chunk_prompts(read), 32);
  const auto entries_within = [](const torch::Tensor& a, const torch::Tensor& b, double ulps) {
    const auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
    return ((x - y).abs() <= x.abs() * (ulps * std::ldexp(1.0, -23)) + 1e-30).all().item<bool>();
  };
  for (const auto& r : {read, ReadOptions(read).positions(Positions::all()).pooling(Pooling::tokens)}) {
    std::vector<std::pair<int64_t, int64_t>> calls;
    const auto progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
    const auto memory = steer::extract(model(), positive, negative, ExtractOptions().read(r));
    const auto streamed = steer::extract(model(), positive, negative,
                                         ExtractOptions().read(ReadOptions(r).progress(progress))
                                             .streaming(true));
    EXPECT_TRUE(streamed.accuracy.empty()) << "accuracy needs every row";
    for (const auto layer : {2, 9}) {
      EXPECT_TRUE(entries_within(streamed.vector.at(layer), memory.vector.at(layer), 2.0))
          << layer << " " << r.positions().to_string();
      // Mean row norm over both sets, in float64 from the same rows: 1e-12 relative.
      const double norm = memory.vector.origin().activation_norms().at(layer);
      EXPECT_NEAR(streamed.vector.origin().activation_norms().at(layer), norm, 1e-12 * norm);
    }
    EXPECT_EQ(streamed.vector.origin().metadata(), memory.vector.origin().metadata());
    // Chunks of 32 prompts, each reported after its batches: 34 positives, then 34 negatives.
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls.back(), std::make_pair(int64_t{68}, int64_t{68}));
    EXPECT_EQ(calls[16], std::make_pair(int64_t{34}, int64_t{68}));
  }
  for (const auto method : {Method::pca_diff, Method::pca_center}) {
    const auto options = ExtractOptions(method).read(read).pca(steer::vec::PcaOptions().method(
        steer::vec::PcaMethod::exact));
    const auto memory = steer::extract(model(), positive, negative, options);
    const auto streamed = steer::extract(model(), positive, negative,
                                         ExtractOptions(options).streaming(true));
    for (const auto layer : {2, 9}) {
      const auto difference = (streamed.vector.at(layer) - memory.vector.at(layer)).abs();
      EXPECT_LE(difference.max().item<double>(), 1e-7) << steer::method_name(method) << " " << layer;
      EXPECT_NEAR(streamed.explained_variance_ratio.at(layer),
                  memory.explained_variance_ratio.at(layer), 1e-12);
    }
  }
  EXPECT_STEER_ERROR(steer::extract(model(), positive, negative,
                                    ExtractOptions(Method::logistic).read(read).streaming(true)),
                     "extract: streaming keeps the statistics of mean-diff, pca-diff and "
                     "pca-center, but logistic needs every row");
  EXPECT_STEER_ERROR(steer::extract(model(), positive, negative,
                                    ExtractOptions().read(read).streaming(true)
                                        .keep_activations(true)),
                     "extract: streaming keeps no activations, but keep_activations is set");
}

// stream_activations hands over chunks whose rows, concatenated, are read_activations' rows
// (the same batches here: equal lengths), with prompt_of_row counting from the first prompt.
TEST(Extract, StreamActivationsChunksAreTheRowsOfReadActivations) {
  const auto [positive, negative] = equal_length_sets(34);
  const auto read = ReadOptions().layers({4}).batch_size(2).positions(Positions::all())
                        .pooling(Pooling::tokens);
  const auto whole = steer::read_activations(model(), positive, read);
  std::vector<torch::Tensor> rows;
  std::vector<int64_t> prompt_of_row;
  size_t chunks = 0;
  steer::stream_activations(model(), positive, read, [&](const steer::Activations& chunk) {
    ++chunks;
    rows.push_back(chunk.at(4));
    prompt_of_row.insert(prompt_of_row.end(), chunk.prompt_of_row.begin(),
                         chunk.prompt_of_row.end());
  });
  EXPECT_EQ(chunks, 2u);
  EXPECT_TRUE(torch::equal(torch::cat(rows), whole.at(4)));
  EXPECT_EQ(prompt_of_row, whole.prompt_of_row);
  EXPECT_STEER_ERROR(steer::stream_activations(model(), {"Hi", ""}, ReadOptions().layers({1}),
                                               [](const steer::Activations&) {}),
                     "stream_activations: prompt 1 is empty");
}

TEST(Extract, BadInputGivesClearErrors) {
  const auto& ref = reference();
  EXPECT_STEER_ERROR(steer::extract(model(), ref.positive, {}, ExtractOptions()),
                     "extract: both prompt sets must be non-empty, got 6 positive and 0 negative");
  EXPECT_STEER_ERROR(
      steer::extract(model(), ref.positive, {ref.negative[0]}, ExtractOptions(Method::pca_diff)),
      "extract: pca-diff pairs positive prompt i with negative prompt i, but got 6 positive and "
      "1 negative prompts");
  EXPECT_STEER_ERROR(steer::read_activations(model(), ref.positive, ReadOptions().layers({30})),
                     "read_activations: layer 30 is out of range; model 'smollm2-135m-instruct' "
                     "has layers 0 to 29 (inclusive)");
  EXPECT_STEER_ERROR(steer::read_activations(model(), ref.positive, ReadOptions().layers({3, 3})),
                     "read_activations: layer 3 is listed twice");
  EXPECT_STEER_ERROR(steer::read_activations(model(), {"Hi", ""}, ReadOptions().layers({1})),
                     "read_activations: prompt 1 is empty");
  EXPECT_STEER_ERROR(
      steer::read_activations(model(), {"A much longer prompt than the other", "Hi"},
                              ReadOptions().layers({1}).positions(Positions::at({3}))),
      "read_activations: prompt 1 (1 tokens) has no token at positions '3'");
  EXPECT_STEER_ERROR(steer::read_activations(model(), {"Hi"}, ReadOptions().batch_size(0)),
                     "read_activations: batch_size must be >= 1, got 0");
  EXPECT_STEER_ERROR(steer::parse_method("pca"), "parse_method: unknown method 'pca'",
                     "expected mean-diff, pca-diff, pca-center, logistic or lda");
  EXPECT_STEER_ERROR(steer::parse_site("resid"), "parse_site: unknown site 'resid'");
  EXPECT_STEER_ERROR(steer::Activations().at(4), "Activations::at: layer 4 was not read");
}

}  // namespace
