// Command-line arguments of the steer tool and the example programs: `--name value`,
// `--name=value`, boolean `--flag`, repeated options; every argument must be used, so a typo
// is an error that lists the options the program takes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "steer/error.hpp"

namespace steer::cli {

/// Parsed lazily: each query consumes the tokens it reads; finish() rejects the rest.
/// Example:
/// ```
/// steer::cli::Args args(argc, argv, "usage: activation_addition [--model DIR] [--coefficient C]");
/// auto model = args.value("model", "models/smollm2-135m-instruct");
/// bool json = args.flag("json");
/// args.finish();
/// ```
class Args {
 public:
  /// `usage` is printed for --help (then the program exits 0).
  Args(int argc, char** argv, std::string usage, int first = 1) : usage_(std::move(usage)) {
    for (int i = first; i < argc; ++i) {
      std::string token = argv[i];
      // --name=value is the same as --name value.
      const auto eq = token.find('=');
      if (token.rfind("--", 0) == 0 && eq != std::string::npos) {
        tokens_.push_back(token.substr(0, eq));
        tokens_.push_back(token.substr(eq + 1));
        joined_.insert(tokens_.size() - 2);
      } else {
        tokens_.push_back(token);
      }
    }
    used_.assign(tokens_.size(), false);
    if (flag("help") || flag("h")) {
      std::cout << usage_ << "\n";
      std::exit(0);
    }
  }

  /// Errors end with " (<hint>)" on their one line instead of a newline and the usage, e.g.
  /// `args.hint_on_error("see 'steer extract --help'")`.
  Args& hint_on_error(std::string hint) {
    hint_ = std::move(hint);
    return *this;
  }

  /// Whether --name was given (a boolean flag; it takes no value).
  bool flag(const std::string& name) {
    known_.insert(name);
    bool found = false;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (!used_[i] && tokens_[i] == "--" + name) {
        STEER_CHECK(!joined_.count(i), "--", name, " takes no value", suffix());
        used_[i] = true;
        found = true;
      }
    }
    return found;
  }

  /// Every value given for --name, in order (an option that may repeat).
  std::vector<std::string> values(const std::string& name) {
    known_.insert(name);
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (used_[i] || tokens_[i] != "--" + name) continue;
      STEER_CHECK(i + 1 < tokens_.size(), "--", name, " needs a value", suffix());
      used_[i] = used_[i + 1] = true;
      out.push_back(tokens_[i + 1]);
    }
    return out;
  }

  /// The value of --name, or nullopt; an error when it is given twice.
  std::optional<std::string> optional(const std::string& name) {
    auto all = values(name);
    STEER_CHECK(all.size() <= 1, "--", name, " is given ", all.size(), " times; expected once");
    if (all.empty()) return std::nullopt;
    return all.front();
  }
  std::string value(const std::string& name, const std::string& fallback) {
    return optional(name).value_or(fallback);
  }
  std::string required(const std::string& name) {
    auto v = optional(name);
    STEER_CHECK(v.has_value(), "--", name, " is required", suffix());
    return *v;
  }
  int64_t integer(const std::string& name, int64_t fallback) {
    auto v = optional(name);
    return v ? parse_integer(name, *v) : fallback;
  }
  double number(const std::string& name, double fallback) {
    auto v = optional(name);
    return v ? parse_number(name, *v) : fallback;
  }

  /// Arguments that are not options, in order (call after the option queries).
  std::vector<std::string> positional() {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (!used_[i] && tokens_[i].rfind("--", 0) != 0) {
        used_[i] = true;
        out.push_back(tokens_[i]);
      }
    }
    return out;
  }

  /// Throws when an argument was not used (an unknown option or a stray value).
  void finish() const {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (used_[i]) continue;
      std::string known;
      for (const auto& k : known_) {
        if (k != "help" && k != "h") known += " --" + k;
      }
      throw Error(detail::concat("unknown argument '", tokens_[i], "'; this program takes:", known,
                                 suffix()));
    }
  }

  static int64_t parse_integer(const std::string& name, const std::string& text) {
    size_t end = 0;
    int64_t v = 0;
    try {
      v = std::stoll(text, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    STEER_CHECK(!text.empty() && end == text.size(), "--", name, " expects an integer, got '",
                text, "'");
    return v;
  }
  static double parse_number(const std::string& name, const std::string& text) {
    size_t end = 0;
    double v = 0;
    try {
      v = std::stod(text, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    STEER_CHECK(!text.empty() && end == text.size(), "--", name, " expects a number, got '", text,
                "'");
    return v;
  }

 private:
  std::string suffix() const { return hint_.empty() ? "\n" + usage_ : " (" + hint_ + ")"; }

  std::string usage_;
  std::string hint_;
  std::vector<std::string> tokens_;
  std::vector<bool> used_;
  std::set<size_t> joined_;
  std::set<std::string> known_;
};

/// Runs `body`, printing a steer::Error (or any exception) as "<program>: error: ..." and
/// returning exit status 1 instead of terminating.
template <class Body>
int run_main(const char* program, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace steer::cli
