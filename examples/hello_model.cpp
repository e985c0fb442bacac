// The first example: load a model directory, print its layout, show the top next tokens of
// one forward pass over a prompt, and answer a chat question (streamed token by token).
//
//   hello_model MODEL_DIR [PROMPT] [--chat QUESTION] [--device cpu|cuda]
//               [--dtype float32|float16|bfloat16]
#include <iomanip>
#include <iostream>
#include <string>

#include <steer/steer.hpp>

int main(int argc, char** argv) {
  std::string directory, prompt = "The capital of France is";
  std::string question = "What is the capital of France?";
  steer::ModelOptions options;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--device" && i + 1 < argc) {
        options.device(steer::parse_device(argv[++i]));
      } else if (arg == "--chat" && i + 1 < argc) {
        question = argv[++i];
      } else if (arg == "--dtype" && i + 1 < argc) {
        options.dtype(steer::parse_dtype(argv[++i]));
      } else if (directory.empty()) {
        directory = arg;
      } else {
        prompt = arg;
      }
    }
    if (directory.empty()) {
      std::cerr << "usage: hello_model MODEL_DIR [PROMPT] [--chat QUESTION] [--device D] [--dtype T]\n";
      return 2;
    }
    const auto model = steer::Model::load(directory, options);
    const auto& config = model.config();
    std::cout << "model      " << directory << "\n"
              << "family     " << config.family << " (" << config.hf_model_type << ")\n"
              << "layers     " << model.n_layers() << ", d_model " << model.d_model() << ", heads "
              << config.n_heads << " (kv " << config.n_kv_heads << "), vocab "
              << model.vocab_size() << "\n"
              << "device     " << model.device() << ", dtype " << model.dtype() << "\n"
              << "layer 0    block " << model.layer(0).block << ", attention "
              << model.layer(0).attn << ", MLP " << model.layer(0).mlp << "\n\n";

    const auto& tokenizer = model.tokenizer();
    const auto ids = tokenizer.encode(prompt);
    const auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    const auto logits = model.logits(input)[0][-1].to(torch::kFloat32).cpu();
    const auto probabilities = logits.softmax(0);
    const auto top = probabilities.topk(5);
    std::cout << "prompt     \"" << prompt << "\" (" << ids.size() << " tokens)\n"
              << "top next tokens:\n";
    for (int64_t k = 0; k < 5; ++k) {
      const auto id = std::get<1>(top)[k].item<int64_t>();
      std::cout << "  " << std::setw(6) << id << "  p=" << std::fixed << std::setprecision(3)
                << std::get<0>(top)[k].item<float>() << "  \"" << tokenizer.decode({id})
                << "\"\n";
    }

    if (config.chat_format != "none") {
      const auto chat = tokenizer.apply_chat_template({{"user", question}},
                                                      /*add_generation_prompt=*/true);
      std::cout << "\nuser       " << question << "\nassistant  " << std::flush;
      const auto answer = model.generate(
          chat, steer::GenerateOptions().max_new_tokens(96).on_token(
                    [](const steer::TokenEvent& e) { std::cout << e.text << std::flush; }));
      std::cout << "\n           (" << answer.ids.size() << " tokens, stopped by "
                << answer.stop_reason << ")\n";
    }
    return 0;
  } catch (const steer::Error& e) {
    std::cerr << "hello_model: " << e.what() << "\n";
    return 1;
  }
}
