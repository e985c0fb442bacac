// Activation addition in a few lines: the "Love" minus "Hate" direction, read at the residual
// stream before layer 6, added while the model continues "I hate you because".
// (The full experiment, with sweeps and scores, is the activation_addition example to come.)
//
//   love_hate MODEL_DIR [LAYER] [COEFFICIENT]
#include <iostream>
#include <string>

#include <steer/steer.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: love_hate MODEL_DIR [LAYER] [COEFFICIENT]\n";
    return 2;
  }
  try {
    const auto model = steer::Model::load(argv[1]);
    const int64_t layer = argc > 2 ? std::stoll(argv[2]) : 6;
    // "Love" and "Hate" are single tokens at position 0, where SmolLM2's residual stream has a
    // very large norm (|direction| is about 780 at layer 6): a small coefficient goes far.
    const double coefficient = argc > 3 ? std::stod(argv[3]) : 0.1;
    const steer::HookPoint point(steer::Site::resid_pre, layer);

    // Record the last token's activation for "Love" and for "Hate" in one batch.
    auto record = steer::hook(model, point, steer::Record(), steer::Positions::last());
    const auto& tokenizer = model.tokenizer();
    const auto [ids, mask] = steer::left_pad({tokenizer.encode("Love"), tokenizer.encode("Hate")},
                                             model.config().pad.id);
    model.logits(ids, mask);
    const auto activations = record->mean();  // [2, d_model]
    record.detach();
    const auto direction = activations[0] - activations[1];

    const auto options = steer::GenerateOptions().max_new_tokens(30).stop_at_eos(false);
    const std::string prompt = "I hate you because";
    std::cout << "unsteered: " << prompt << model.generate(prompt, options).text << "\n";
    auto add = steer::hook(model, point, steer::Add(direction, coefficient));
    std::cout << "steered:   " << prompt << model.generate(prompt, options).text << "\n"
              << "(Love - Hate at " << point.to_string() << ", coefficient " << coefficient
              << ", |direction| = " << direction.norm().item<double>() << ")\n";
    return 0;
  } catch (const steer::Error& e) {
    std::cerr << "love_hate: " << e.what() << "\n";
    return 1;
  }
}
