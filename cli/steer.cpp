// The steer command-line tool: extract, generate, record, tokenize (see docs/cli.md).
// Every error is one line "steer <command>: error: ..." on stderr and exit status 1.

#include <iostream>
#include <string>

#include <steer/steer.hpp>
#include <torch/torch.h>

#include "args.hpp"
#include "extract_command.hpp"
#include "generate_command.hpp"
#include "record_command.hpp"
#include "tokenize_command.hpp"

namespace {

const char* overview() {
  return "usage: steer <command> [options]   (steer <command> --help for its options)\n"
         "\n"
         "Activation steering of transformer language models.\n"
         "\n"
         "commands:\n"
         "  extract    contrasting prompts -> a steering vector per layer (.gguf, .safetensors)\n"
         "  generate   generate text with steering vectors added or directions ablated\n"
         "  record     write the activations of prompts at some layers (.safetensors)\n"
         "  tokenize   print the token ids of a text\n"
         "\n"
         "  --help     this text\n"
         "  --version  steer's version\n"
         "\n"
         "Layers count from 0; a .gguf control vector's direction.N is added at resid_post.N,\n"
         "the output of block N, as llama.cpp and repeng do. See docs/cli.md.";
}

// A LibTorch error as one steer::Error line (its first line, without the C++ backtrace).
template <class Command>
int without_torch_backtraces(Command&& command) {
  try {
    return command();
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    message = message.substr(0, message.find('\n'));
    throw steer::Error("LibTorch: " + message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "steer: error: no command given; expected extract, generate, record or tokenize "
                 "(see 'steer --help')\n";
    return 1;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << overview() << "\n";
    return 0;
  }
  if (command == "--version") {
    std::cout << "steer " << steer::version() << " (LibTorch " << TORCH_VERSION << ")\n";
    return 0;
  }
  int (*run)(int, char**) = nullptr;
  if (command == "extract") run = steer::cli::run_extract;
  if (command == "generate") run = steer::cli::run_generate;
  if (command == "record") run = steer::cli::run_record;
  if (command == "tokenize") run = steer::cli::run_tokenize;
  if (run == nullptr) {
    std::cerr << "steer: error: unknown command '" << command
              << "'; expected extract, generate, record or tokenize (see 'steer --help')\n";
    return 1;
  }
  const auto program = "steer " + command;
  return steer::cli::run_main(
      program.c_str(), [&] { return without_torch_backtraces([&] { return run(argc, argv); }); });
}
