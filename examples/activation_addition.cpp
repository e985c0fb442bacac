// Activation addition (ActAdd, Turner et al. 2023): the direction "Love" minus "Hate", read at
// one hook point, is added while the model continues a prompt. Shows the unsteered and steered
// continuations side by side with a behaviour score (positive vs negative next words) and a
// fluency score (perplexity on neutral text). With --sweep, runs layers x coefficients, writes
// a CSV (and a heat map PNG through tools/plot_sweep.py) and names the best cell.
// See docs/results.md, "Activation addition".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <steer/steer.hpp>

#include "args.hpp"
#include "example_support.hpp"
#include "prompt_batches.hpp"
#include "sentiment_score.hpp"

namespace {

const char* kUsage = R"(usage: activation_addition [options]
  --model DIR               exported model (default: the project's SmolLM2-135M-Instruct)
  --positive TEXT           positive text, may repeat (default: "Love")
  --negative TEXT           negative text, may repeat (default: "Hate")
  --pairs FILE              JSON list of [positive, negative] pairs instead of the texts
  --layer L                 layer the vector is read at and added to (default: 6)
  --site SITE               resid_pre, resid_mid, resid_post, attn_out, mlp_out (default: resid_pre)
  --positions SPEC          tokens read from each text (default: last)
  --at SPEC                 tokens the vector is added to while generating (default: all)
  --normalize MODE          typical (default): unit direction times the typical activation norm
                            at the layer, so the coefficient counts typical activation norms;
                            none: the mean difference as read; unit: norm 1;
                            activations: norm of the activations read (steer's
                            SteeringVector::normalized_to_activations)
  --coefficient C           multiplier of the normalized vector (default: 0.6)
  --prompt TEXT             prompt to continue (default: "I hate you because")
  --prompts FILE            continue every prompt of FILE instead (.json list, .jsonl, .txt:
                            one per line), in batches
  --batch-size N            prompts per generate call with --prompts (default: 8)
  --max-new-tokens N        tokens generated per continuation (default: 40)
  --temperature T           0 = greedy (default), > 0 samples with --seed (default: 0);
                            with --prompts, prompt i (from 0) is sampled with seed + i
  --json                    machine-readable results on stdout
sweep mode:
  --sweep                   run every layer x coefficient and score each cell
  --layers SPEC             layers of the sweep, e.g. 2-20 (default: all)
  --coefficients LIST       comma-separated (default: 0,0.25,0.5,1,2,4)
  --max-perplexity-ratio R  best cell: perplexity at most R x unsteered (default: 1.5)
  --csv FILE                write one row per cell: layer,coefficient,behaviour,perplexity
  --png FILE                draw the heat map with tools/plot_sweep.py (CSV next to it
                            unless --csv is given)
  --python EXE              Python with matplotlib (default: $STEER_PYTHON, else the
                            project's .venv))";

/// The example's --normalize names: the library's (none, unit, typical), and "activations"
/// for steer::Normalization::recorded (the norm of the activations the vector was read from).
steer::Normalization parse_normalize(const std::string& name) {
  if (name == "activations") return steer::Normalization::recorded;
  if (name == "none" || name == "unit" || name == "typical") return steer::parse_normalization(name);
  throw steer::Error("--normalize: unknown mode '" + name +
                     "'; expected typical, none, unit or activations");
}

/// The vector's direction at `layer`, normalized as `mode` says and times `coefficient`, added
/// at `positions` while the handle lives (typical norms are read from the reference texts).
steer::AppliedVector add_at(const steer::Model& model, const steer::SteeringVector& vector,
                            int64_t layer, steer::Normalization mode, double coefficient,
                            const steer::Positions& positions) {
  return steer::apply(model, vector,
                      steer::ApplyOptions()
                          .layers({layer})
                          .normalization(mode)
                          .coefficient(coefficient)
                          .positions(positions)
                          .reference_texts(sentiment::neutral_texts()));
}

struct Scores {
  double behaviour = 0, perplexity = 0;
};

Scores score(const steer::Model& model) {
  return {sentiment::behaviour_score(model), sentiment::fluency_perplexity(model)};
}

std::vector<double> parse_coefficients(const std::string& list) {
  std::vector<double> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    out.push_back(steer::cli::Args::parse_number("coefficients", item));
  }
  STEER_CHECK(!out.empty(), "--coefficients: expected a comma-separated list, got '", list, "'");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return steer::cli::run_main("activation_addition", [&] {
    steer::cli::Args args(argc, argv, kUsage);
    const auto model_dir = args.value("model", examples::default_model());
    auto positive = args.values("positive");
    auto negative = args.values("negative");
    const auto pairs_file = args.optional("pairs");
    const auto layer = args.integer("layer", 6);
    const auto site = steer::parse_site(args.value("site", "resid_pre"));
    const auto read_positions = steer::Positions::parse(args.value("positions", "last"));
    const auto add_positions = steer::Positions::parse(args.value("at", "all"));
    const auto normalize_name = args.value("normalize", "typical");
    const auto normalize = parse_normalize(normalize_name);
    const double coefficient = args.number("coefficient", 0.6);
    const auto prompt_given = args.optional("prompt");
    const auto prompts_file = args.optional("prompts");
    const auto batch_size = args.integer("batch-size", 8);
    const auto max_new_tokens = args.integer("max-new-tokens", 40);
    const double temperature = args.number("temperature", 0.0);
    const auto seed = args.integer("seed", 0);
    const bool json = args.flag("json");
    const bool sweep = args.flag("sweep");
    const auto layers_spec = args.value("layers", "all");
    const auto coefficients = parse_coefficients(args.value("coefficients", "0,0.25,0.5,1,2,4"));
    const double max_ratio = args.number("max-perplexity-ratio", 1.5);
    auto csv_path = args.optional("csv");
    const auto png_path = args.optional("png");
    const auto python = args.optional("python");
    args.finish();

    STEER_CHECK(!prompt_given || !prompts_file, "give either --prompt or --prompts, not both");
    STEER_CHECK(!sweep || !prompts_file, "--prompts: the sweep scores fixed prompts "
                "(sentiment_score.hpp); give --prompts without --sweep");
    STEER_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
    const auto prompts = prompts_file ? steer::io::read_prompts(*prompts_file)
                                      : std::vector<std::string>{prompt_given.value_or(
                                            "I hate you because")};
    const auto& prompt = prompts.front();
    if (pairs_file) {
      STEER_CHECK(positive.empty() && negative.empty(),
                  "give either --pairs or --positive/--negative, not both");
      for (const auto& [p, n] : steer::io::read_pairs(*pairs_file)) {
        positive.push_back(p);
        negative.push_back(n);
      }
    }
    if (positive.empty()) positive = {"Love"};
    if (negative.empty()) negative = {"Hate"};

    const auto model = steer::Model::load(model_dir);
    const auto layers = sweep ? steer::parse_layers(layers_spec, model.n_layers())
                              : std::vector<int64_t>{layer};
    const auto extraction = steer::extract(
        model, positive, negative,
        steer::ExtractOptions(steer::Method::mean_diff)
            .read(steer::ReadOptions().layers(layers).site(site).positions(read_positions)));
    const auto raw_norms = extraction.vector.norms();
    const auto unsteered = score(model);
    const auto contrast = examples::describe_texts(positive, negative);

    nlohmann::json out = {
        {"model", model_dir},
        {"positive", positive},
        {"negative", negative},
        {"site", steer::site_name(site)},
        {"positions", read_positions.to_string()},
        {"at", add_positions.to_string()},
        {"normalize", normalize_name},
        {"score_prompts", sentiment::score_prompts().size()},
        {"neutral_texts", sentiment::neutral_texts().size()},
        {"unsteered", {{"behaviour", unsteered.behaviour}, {"perplexity", unsteered.perplexity}}},
    };

    if (!sweep) {
      const steer::HookPoint point(site, layer);
      auto options = steer::GenerateOptions()
                         .max_new_tokens(max_new_tokens)
                         .temperature(temperature)
                         .stop_at_eos(false);
      // Greedy decoding has no seed (generate refuses one); sampling takes --seed (default 0).
      if (temperature > 0) options.seed(static_cast<uint64_t>(seed));
      // Every prompt in batches; sampled prompt i gets seed + i (prompt_batches.hpp), so the
      // texts do not depend on --batch-size.
      std::vector<std::vector<int64_t>> ids;
      for (const auto& p : prompts) ids.push_back(model.tokenizer().encode(p));
      const auto continuations = [&] {
        std::vector<std::string> texts;
        steer::cli::generate_in_batches(
            model, ids, batch_size, options,
            [&](int64_t, const std::vector<steer::Generation>& generations) {
              for (const auto& g : generations) texts.push_back(g.text);
            });
        return texts;
      };
      const auto plain_texts = continuations();
      std::vector<std::string> steered_texts;
      Scores steered;
      double normalized_norm = 0;
      {
        const auto add = add_at(model, extraction.vector, layer, normalize, coefficient,
                                add_positions);
        normalized_norm = add.normalized_norms().at(layer);
        steered_texts = continuations();
        steered = score(model);
      }
      const auto& plain = plain_texts.front();
      const auto& steered_text = steered_texts.front();
      if (json) {
        out["layer"] = layer;
        out["coefficient"] = coefficient;
        out["direction_norm"] = raw_norms.at(layer);
        out["normalized_norm"] = normalized_norm;
        out["added_norm"] = std::abs(coefficient) * normalized_norm;
        out["max_new_tokens"] = max_new_tokens;
        out["temperature"] = temperature;
        out["seed"] = seed;
        out["steered"] = {{"behaviour", steered.behaviour}, {"perplexity", steered.perplexity}};
        if (prompts_file) {
          out["prompts"] = nlohmann::json::array();
          for (size_t i = 0; i < prompts.size(); ++i) {
            out["prompts"].push_back(
                {{"prompt", prompts[i]},
                 {"seed", temperature > 0 ? nlohmann::json(steer::cli::prompt_seed(seed, i))
                                          : nlohmann::json(nullptr)},
                 {"unsteered", plain_texts[i]},
                 {"steered", steered_texts[i]}});
          }
        } else {
          out["prompt"] = prompt;
          out["unsteered"]["text"] = plain;
          out["steered"]["text"] = steered_text;
        }
        std::cout << out.dump(2) << "\n";
        return 0;
      }
      std::cout << std::fixed << std::setprecision(2)
                << "model       " << model_dir << " (" << model.n_layers() << " layers, d_model "
                << model.d_model() << ")\n"
                << "vector      " << contrast << ", mean difference at " << point.to_string()
                << ", positions " << read_positions.to_string() << "\n"
                << "            |direction| " << raw_norms.at(layer) << ", normalized ("
                << normalize_name << ") to " << normalized_norm
                << "; added: coefficient " << coefficient << " -> |added| "
                << std::abs(coefficient) * normalized_norm << ", at positions "
                << add_positions.to_string() << "\n"
                << "generation  " << max_new_tokens << " new tokens, "
                << (temperature == 0 ? std::string("greedy")
                                     : examples::text("temperature ", temperature,
                                                             ", seed ", seed))
                << "\n\n";
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (i > 0) std::cout << "\n";
        examples::print_side_by_side(std::cout, "unsteered", prompts[i] + plain_texts[i],
                                     examples::text("steered (coefficient ", coefficient, ")"),
                                     prompts[i] + steered_texts[i]);
      }
      std::cout << "\n                   unsteered   steered\n"
                << "behaviour score  " << std::setw(11) << unsteered.behaviour << std::setw(10)
                << steered.behaviour << "   log P(positive word) - log P(negative word), mean of "
                << sentiment::score_prompts().size() << " prompts\n"
                << "perplexity       " << std::setw(11) << unsteered.perplexity << std::setw(10)
                << steered.perplexity << "   on " << sentiment::neutral_texts().size()
                << " neutral sentences\n";
      return 0;
    }

    // Sweep: every layer x coefficient, scored with the vector added at that layer only.
    struct Cell {
      int64_t layer;
      double coefficient;
      Scores scores;
    };
    std::vector<Cell> cells;
    for (auto l : layers) {
      auto add = add_at(model, extraction.vector, l, normalize, 0.0, add_positions);
      for (auto c : coefficients) {
        add.set_coefficient(c);
        cells.push_back({l, c, score(model)});
      }
      if (!json) {
        std::cerr << "\rsweep: layer " << l << " of " << layers.front() << "-" << layers.back()
                  << " done" << std::flush;
      }
    }
    if (!json) std::cerr << "\n";

    const double bound = max_ratio * unsteered.perplexity;
    const Cell* best = nullptr;
    for (const auto& cell : cells) {
      if (cell.scores.perplexity <= bound &&
          (!best || cell.scores.behaviour > best->scores.behaviour)) {
        best = &cell;
      }
    }

    if (png_path && !csv_path) {
      csv_path = std::filesystem::path(*png_path).replace_extension(".csv").string();
    }
    if (csv_path) {
      std::ofstream csv(*csv_path);
      STEER_CHECK(csv.good(), "--csv: cannot write '", *csv_path, "'");
      csv << "layer,coefficient,behaviour,perplexity\n" << std::setprecision(9);
      for (const auto& cell : cells) {
        csv << cell.layer << "," << cell.coefficient << "," << cell.scores.behaviour << ","
            << cell.scores.perplexity << "\n";
      }
    }
    if (png_path) {
      examples::run_plot(python, "plot_sweep.py",
                         {*csv_path, "--out", *png_path, "--unsteered-behaviour",
                          examples::text(unsteered.behaviour), "--unsteered-perplexity",
                          examples::text(unsteered.perplexity), "--max-perplexity-ratio",
                          examples::text(max_ratio), "--title",
                          contrast + " at " + steer::site_name(site) + ", normalize " +
                              normalize_name});
    }

    if (json) {
      out["layers"] = layers;
      out["coefficients"] = coefficients;
      out["max_perplexity_ratio"] = max_ratio;
      out["cells"] = nlohmann::json::array();
      for (const auto& cell : cells) {
        out["cells"].push_back({{"layer", cell.layer},
                                {"coefficient", cell.coefficient},
                                {"behaviour", cell.scores.behaviour},
                                {"perplexity", cell.scores.perplexity}});
      }
      out["best"] = best ? nlohmann::json{{"layer", best->layer},
                                          {"coefficient", best->coefficient},
                                          {"behaviour", best->scores.behaviour},
                                          {"perplexity", best->scores.perplexity}}
                         : nlohmann::json(nullptr);
      if (csv_path) out["csv"] = *csv_path;
      if (png_path) out["png"] = *png_path;
      std::cout << out.dump(2) << "\n";
      return 0;
    }

    std::cout << std::fixed << std::setprecision(2) << "model       " << model_dir << "\n"
              << "vector      " << contrast << ", mean difference at " << steer::site_name(site)
              << ", positions " << read_positions.to_string() << ", normalize " << normalize_name
              << ", added at positions " << add_positions.to_string() << "\n"
              << "unsteered   behaviour " << unsteered.behaviour << ", perplexity "
              << unsteered.perplexity << "\n\n";
    const auto table = [&](const char* title, auto value) {
      std::cout << title << "\nlayer";
      for (auto c : coefficients) std::cout << " " << std::setw(9) << c;
      std::cout << "\n";
      for (size_t i = 0; i < cells.size(); i += coefficients.size()) {
        std::cout << std::setw(5) << cells[i].layer;
        for (size_t j = 0; j < coefficients.size(); ++j) {
          std::cout << " " << std::setw(9) << value(cells[i + j]);
        }
        std::cout << "\n";
      }
      std::cout << "\n";
    };
    table("behaviour score (log P(positive) - log P(negative)), columns: coefficient",
          [](const Cell& c) { return c.scores.behaviour; });
    table("perplexity on neutral text, columns: coefficient",
          [](const Cell& c) { return c.scores.perplexity; });
    if (best) {
      std::cout << "best        layer " << best->layer << ", coefficient " << best->coefficient
                << ": behaviour " << best->scores.behaviour << " (unsteered "
                << unsteered.behaviour << "), perplexity " << best->scores.perplexity
                << " (bound " << max_ratio << " x " << unsteered.perplexity << " = " << bound
                << ")\n";
    } else {
      std::cout << "best        no cell has perplexity within " << max_ratio << " x unsteered\n";
    }
    if (csv_path) std::cout << "csv         " << *csv_path << "\n";
    if (png_path) std::cout << "png         " << *png_path << "\n";
    return 0;
  });
}
