// Record and project: reads the residual stream after every layer for two prompt sets
// (positive and negative statements by default), splits each set into training and held-out
// prompts with a fixed seed, and reports per layer how well the mean-difference direction of
// the training prompts separates the held-out ones. Then projects the activations of one layer
// on their first two principal components (a PNG through tools/plot_projection.py).
// See docs/results.md, "Separation per layer".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "example_support.hpp"

namespace {

const char* kUsage = R"(usage: record_and_project [options]
  --model DIR           exported model (default: the project's SmolLM2-135M-Instruct)
  --positive FILE       prompts of the positive set (default: examples/data/sentiment_positive.json)
  --negative FILE       prompts of the negative set (default: examples/data/sentiment_negative.json)
  --site SITE           where each layer is read (default: resid_post)
  --positions SPEC      tokens read from each prompt, averaged (default: last)
  --max-prompts N       use only the first N prompts of each set (default: all)
  --test-fraction F     share of each set held out (default: 0.5)
  --seed S              seed of the train/test split (default: 0)
  --layer L             layer of the PCA projection (default: the best held-out accuracy)
  --csv FILE            write the projected points: set,split,pc1,pc2
  --png FILE            draw them with tools/plot_projection.py (CSV next to it unless --csv)
  --python EXE          Python with matplotlib (default: $STEER_PYTHON, else the project's .venv)
  --json                machine-readable results on stdout)";

/// The rows of `t` listed in `index`.
torch::Tensor rows_of(const torch::Tensor& t, const std::vector<size_t>& index) {
  std::vector<int64_t> i(index.begin(), index.end());
  return t.index_select(0, torch::tensor(i, torch::kInt64)).contiguous();
}

/// One set split into training and held-out prompts.
struct Split {
  std::vector<size_t> train, test;
};

Split split(size_t n, double test_fraction, uint64_t seed) {
  const auto order = examples::permutation(n, seed);
  auto n_test = static_cast<size_t>(std::lround(test_fraction * static_cast<double>(n)));
  n_test = std::clamp<size_t>(n_test, 1, n - 1);
  Split s;
  s.test.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_test));
  s.train.assign(order.begin() + static_cast<std::ptrdiff_t>(n_test), order.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

struct LayerResult {
  int64_t layer = 0;
  double train_accuracy = 0, test_accuracy = 0;
  double test_d = 0;          // Cohen's d of the held-out projections
  double direction_norm = 0;  // |mean(train positive) - mean(train negative)|
};

/// Cohen's d of two sets of projections: mean difference over the pooled standard deviation.
double cohens_d(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const auto variance = [](const Eigen::VectorXd& x) {
    return x.size() > 1 ? (x.array() - x.mean()).square().sum() / static_cast<double>(x.size() - 1)
                        : 0.0;
  };
  const double pooled = std::sqrt(0.5 * (variance(a) + variance(b)));
  return pooled > 0 ? (a.mean() - b.mean()) / pooled : 0.0;
}

LayerResult evaluate(int64_t layer, const torch::Tensor& positive, const torch::Tensor& negative,
                     const Split& pos, const Split& neg) {
  const auto train_p = steer::to_eigen_rows(rows_of(positive, pos.train));
  const auto train_n = steer::to_eigen_rows(rows_of(negative, neg.train));
  const auto test_p = steer::to_eigen_rows(rows_of(positive, pos.test));
  const auto test_n = steer::to_eigen_rows(rows_of(negative, neg.test));
  const Eigen::VectorXf direction = steer::vec::mean_difference(train_p.map, train_n.map);
  const auto fit = steer::vec::separation(direction, train_p.map, train_n.map);
  LayerResult r;
  r.layer = layer;
  r.train_accuracy = fit.accuracy;
  r.test_accuracy = steer::vec::accuracy_at(direction, fit.threshold, test_p.map, test_n.map);
  const Eigen::VectorXd d = direction.cast<double>();
  r.test_d = cohens_d(test_p.map.cast<double>() * d, test_n.map.cast<double>() * d);
  r.direction_norm = d.norm();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  return steer::cli::run_main("record_and_project", [&] {
    steer::cli::Args args(argc, argv, kUsage);
    const auto model_dir = args.value("model", examples::default_model());
    const auto positive_file =
        args.value("positive", examples::data_file("sentiment_positive.json"));
    const auto negative_file =
        args.value("negative", examples::data_file("sentiment_negative.json"));
    const auto site = steer::parse_site(args.value("site", "resid_post"));
    const auto positions = steer::Positions::parse(args.value("positions", "last"));
    const auto max_prompts = args.integer("max-prompts", 0);
    const double test_fraction = args.number("test-fraction", 0.5);
    const auto seed = static_cast<uint64_t>(args.integer("seed", 0));
    const auto chosen_layer = args.optional("layer");
    auto csv_path = args.optional("csv");
    const auto png_path = args.optional("png");
    const auto python = args.optional("python");
    const bool json = args.flag("json");
    args.finish();
    STEER_CHECK(test_fraction > 0 && test_fraction < 1, "--test-fraction must be in (0, 1), got ",
                test_fraction);

    auto positive = steer::io::read_prompts(positive_file);
    auto negative = steer::io::read_prompts(negative_file);
    STEER_CHECK(max_prompts >= 0, "--max-prompts must be >= 0 (0: all), got ", max_prompts);
    if (max_prompts > 0) {
      positive.resize(std::min(positive.size(), static_cast<size_t>(max_prompts)));
      negative.resize(std::min(negative.size(), static_cast<size_t>(max_prompts)));
    }
    STEER_CHECK(positive.size() >= 2 && negative.size() >= 2, "record_and_project: each set needs "
                "at least 2 prompts (one to train on, one to hold out), got ", positive.size(),
                " positive and ", negative.size(), " negative");
    const auto model = steer::Model::load(model_dir);

    // Every layer, one row per prompt (the mean over the selected tokens).
    const auto read = steer::ReadOptions().site(site).positions(positions);
    const auto pos_acts = steer::read_activations(model, positive, read);
    const auto neg_acts = steer::read_activations(model, negative, read);
    const auto pos_split = split(positive.size(), test_fraction, seed);
    const auto neg_split = split(negative.size(), test_fraction, seed + 1);

    std::vector<LayerResult> results;
    for (int64_t layer = 0; layer < model.n_layers(); ++layer) {
      results.push_back(
          evaluate(layer, pos_acts.at(layer), neg_acts.at(layer), pos_split, neg_split));
    }
    // Best: highest held-out accuracy, then larger held-out d, then the earlier layer.
    const auto best = *std::max_element(results.begin(), results.end(),
        [](const LayerResult& a, const LayerResult& b) {
          if (a.test_accuracy != b.test_accuracy) return a.test_accuracy < b.test_accuracy;
          if (a.test_d != b.test_d) return a.test_d < b.test_d;
          return a.layer > b.layer;
        });
    const int64_t layer = chosen_layer ? steer::cli::Args::parse_integer("layer", *chosen_layer)
                                       : best.layer;
    STEER_CHECK(layer >= 0 && layer < model.n_layers(), "--layer ", layer,
                " is out of range; the model has layers 0 to ", model.n_layers() - 1,
                " (inclusive)");

    // PCA (2 components, centred) of both sets together at the chosen layer.
    const auto all = torch::cat({pos_acts.at(layer), neg_acts.at(layer)}, 0).contiguous();
    const auto rows = steer::to_eigen_rows(all);
    const auto pca = steer::vec::pca(rows.map, steer::vec::PcaOptions().k(2).center(true));
    const Eigen::MatrixXd centred =
        rows.map.cast<double>().rowwise() - pca.mean.transpose();
    Eigen::MatrixXd points = centred * pca.components.cast<double>().transpose();  // [N, 2]
    // Each axis pointing from the negative set's mean to the positive set's (positive to the
    // right and up), so the picture is the same on every run and model.
    const auto n_pos = static_cast<Eigen::Index>(positive.size());
    for (Eigen::Index k = 0; k < points.cols(); ++k) {
      const double pos_mean = points.col(k).head(n_pos).mean();
      const double neg_mean = points.col(k).tail(points.rows() - n_pos).mean();
      if (pos_mean < neg_mean) points.col(k) *= -1.0;
    }
    std::vector<bool> held_out(all.size(0), false);
    for (auto i : pos_split.test) held_out[i] = true;
    for (auto i : neg_split.test) held_out[positive.size() + i] = true;

    if (png_path && !csv_path) {
      csv_path = std::filesystem::path(*png_path).replace_extension(".csv").string();
    }
    if (csv_path) {
      std::ofstream csv(*csv_path);
      STEER_CHECK(csv.good(), "--csv: cannot write '", *csv_path, "'");
      csv << "set,split,pc1,pc2\n" << std::setprecision(9);
      for (Eigen::Index i = 0; i < points.rows(); ++i) {
        csv << (i < n_pos ? "positive" : "negative") << ","
            << (held_out[i] ? "test" : "train") << "," << points(i, 0) << "," << points(i, 1)
            << "\n";
      }
    }
    const std::string where = examples::text(steer::site_name(site), ".", layer);
    if (png_path) {
      const auto stem = [](const std::string& path) {
        return std::filesystem::path(path).stem().string();
      };
      const auto title = examples::text(stem(positive_file), " vs ", stem(negative_file), " at ",
                                        where);
      examples::run_plot(python, "plot_projection.py",
                         {*csv_path, "--out", *png_path, "--title", title, "--explained",
                          examples::text(pca.explained_variance_ratio(0), ",",
                                         pca.explained_variance_ratio(1))});
    }

    if (json) {
      nlohmann::json out = {
          {"model", model_dir},
          {"positive", positive_file},
          {"negative", negative_file},
          {"site", steer::site_name(site)},
          {"positions", positions.to_string()},
          {"seed", seed},
          {"train", {{"positive", pos_split.train.size()}, {"negative", neg_split.train.size()}}},
          {"test", {{"positive", pos_split.test.size()}, {"negative", neg_split.test.size()}}},
          {"best_layer", best.layer},
          {"layer", layer},
          {"explained_variance_ratio",
           {pca.explained_variance_ratio(0), pca.explained_variance_ratio(1)}},
      };
      out["layers"] = nlohmann::json::array();
      for (const auto& r : results) {
        out["layers"].push_back({{"layer", r.layer},
                                 {"train_accuracy", r.train_accuracy},
                                 {"test_accuracy", r.test_accuracy},
                                 {"test_d", r.test_d},
                                 {"direction_norm", r.direction_norm}});
      }
      if (csv_path) out["csv"] = *csv_path;
      if (png_path) out["png"] = *png_path;
      std::cout << out.dump(2) << "\n";
      return 0;
    }

    std::cout << std::fixed << std::setprecision(2) << "model      " << model_dir << "\n"
              << "sets       " << positive.size() << " positive (" << positive_file << ")\n"
              << "           " << negative.size() << " negative (" << negative_file << ")\n"
              << "read       " << steer::site_name(site) << " of every layer, positions "
              << positions.to_string() << "\n"
              << "split      seed " << seed << ": train " << pos_split.train.size() << " + "
              << neg_split.train.size() << ", held out " << pos_split.test.size() << " + "
              << neg_split.test.size() << "\n\n"
              << "direction: mean(train positive) - mean(train negative); threshold: midpoint of "
                 "the projected training means\n"
              << "layer  train acc  held-out acc  held-out d  |direction|\n";
    for (const auto& r : results) {
      std::cout << std::setw(5) << r.layer << std::setw(11) << r.train_accuracy << std::setw(14)
                << r.test_accuracy << std::setw(12) << r.test_d << std::setw(13)
                << r.direction_norm << (r.layer == best.layer ? "  <- best" : "") << "\n";
    }
    std::cout << "\nbest layer " << best.layer << ": held-out accuracy " << best.test_accuracy
              << ", d " << best.test_d << "\n"
              << "PCA at " << where << " (2 components, centred, all " << all.size(0)
              << " prompts): explained variance " << pca.explained_variance_ratio(0) << ", "
              << pca.explained_variance_ratio(1) << "\n";
    if (csv_path) std::cout << "csv        " << *csv_path << "\n";
    if (png_path) std::cout << "png        " << *png_path << "\n";
    return 0;
  });
}
