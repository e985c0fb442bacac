// A program outside steer's tree that uses the library as a user would: include the umbrella
// header, load a model directory, run it.
#include <iostream>

#include <steer/steer.hpp>

// consumer.cxx20 configures this program with CMAKE_CXX_STANDARD=20: it must compile as C++20.
#if defined(STEER_CONSUMER_CXX_STANDARD) && STEER_CONSUMER_CXX_STANDARD >= 20
static_assert(__cplusplus >= 202002L, "CMAKE_CXX_STANDARD=20 did not reach the compiler");
#endif

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer MODEL_DIR\n";
    return 2;
  }
  try {
    const auto model = steer::Model::load(argv[1]);
    const auto logits = model.logits(torch::tensor({{1, 2, 3}}, torch::kInt64));
    std::cout << "steer " << steer::version() << ": " << model.n_layers() << " layers, d_model "
              << model.d_model() << ", logits " << logits.sizes() << "\n";
    return logits.size(2) == model.vocab_size() ? 0 : 1;
  } catch (const steer::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
