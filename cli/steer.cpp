// The steer command-line tool: extract, generate, record, tokenize, inspect, convert, help
// (see docs/cli.md).
// Every error is one line "steer <command>: error: ..." on stderr; the exit status is 2 for a
// usage error (the command line itself is wrong) and 1 for any other error.

#include <iostream>
#include <string>
#include <vector>

#include <steer/steer.hpp>
#include <torch/torch.h>

#include "args.hpp"
#include "extract_command.hpp"
#include "generate_command.hpp"
#include "inspect_command.hpp"
#include "record_command.hpp"
#include "tokenize_command.hpp"

namespace {

const char* overview() {
  return "usage: steer <command> [options]   (steer help <command> for its options)\n"
         "\n"
         "Activation steering of transformer language models.\n"
         "\n"
         "commands:\n"
         "  extract    contrasting prompts -> a steering vector per layer (.gguf, .safetensors)\n"
         "  generate   generate text with steering vectors added or directions ablated\n"
         "  record     write the activations of prompts at some layers (.safetensors)\n"
         "  tokenize   print the token ids of a text\n"
         "  inspect    print what a vector file holds (layers, norms, site, origin, model hint)\n"
         "  convert    write a vector file in the other format (.gguf <-> .safetensors)\n"
         "  help       this text; steer help <command>: the options of a command\n"
         "\n"
         "  -h, --help this text (steer <command> -h: the options of a command)\n"
         "  --version  steer's version\n"
         "\n"
         "Exit status: 0 success, 1 error (a file, a model, a computation), 2 usage error.\n"
         "Layers count from 0; a .gguf control vector's direction.N is added at resid_post.N,\n"
         "the output of block N, as llama.cpp and repeng do. See docs/cli.md.";
}

struct Command {
  const char* name;
  int (*run)(int, char**);
  std::string (*usage)();
};

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"extract", steer::cli::run_extract, steer::cli::extract_usage},
      {"generate", steer::cli::run_generate, steer::cli::generate_usage},
      {"record", steer::cli::run_record, steer::cli::record_usage},
      {"tokenize", steer::cli::run_tokenize, steer::cli::tokenize_usage},
      {"inspect", steer::cli::run_inspect, steer::cli::inspect_usage},
      {"convert", steer::cli::run_convert, steer::cli::convert_usage}};
  return all;
}

// The command called `name`, or a UsageError naming the closest one.
const Command& find_command(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& c : commands()) {
    if (name == c.name) return c;
    names.push_back(c.name);
  }
  const auto near = steer::cli::closest(name, names);
  throw steer::cli::UsageError(
      "unknown command '" + name + "'" +
      (near ? " (did you mean " + *near + "?)"
            : "; expected extract, generate, record, tokenize, inspect, convert or help (see 'steer --help')"));
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
  const std::string command = argc < 2 ? "" : argv[1];
  if (command == "--help" || command == "-h" || (command == "help" && argc == 2)) {
    std::cout << overview() << "\n";
    return 0;
  }
  if (command == "--version") {
    std::cout << "steer " << steer::version() << " (LibTorch " << TORCH_VERSION << ")\n";
    return 0;
  }
  if (command == "help") {
    return steer::cli::run_main("steer help", [&] {
      steer::cli::usage_check(argc == 3, "expected one command after help, got ", argc - 2,
                              " words (steer help <command>)");
      std::cout << find_command(argv[2]).usage() << "\n";
      return 0;
    });
  }
  const Command* found = nullptr;
  const int status = steer::cli::run_main("steer", [&] {
    steer::cli::usage_check(!command.empty(), "no command given; expected extract, generate, "
                            "record, tokenize, inspect, convert or help (see 'steer --help')");
    found = &find_command(command);
    return 0;
  });
  if (found == nullptr) return status;
  const auto program = "steer " + command;
  return steer::cli::run_main(program.c_str(), [&] {
    return without_torch_backtraces([&] { return found->run(argc, argv); });
  });
}
