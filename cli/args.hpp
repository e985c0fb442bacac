// Command-line arguments of the steer tool and the example programs: `--name value`,
// `--name=value`, boolean `--flag`, repeated options, short aliases (`-f`), `-h`/`--help`
// anywhere; every argument must be used, so a typo is an error that names the closest option.
// Usage errors are steer::cli::UsageError (exit status 2), everything else exits 1.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "steer/error.hpp"

namespace steer::cli {

/// A mistake in the command line itself (an unknown option, a missing or malformed value, a
/// missing required option, options that contradict each other), found before any file or
/// model is read. run_main exits with status 2 for it, as getopt and argparse programs do.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

/// Throws UsageError with the streamed message parts when `ok` is false:
/// `usage_check(top_p > 0, "--top-p must be in (0, 1], got ", top_p);`
template <typename... Parts>
void usage_check(bool ok, Parts&&... parts) {
  if (!ok) throw UsageError(detail::concat(std::forward<Parts>(parts)...));
}

/// The edit distance of `a` and `b` counting insertions, deletions, substitutions and swaps of
/// two adjacent characters (optimal string alignment): "modle" is 1 from "model".
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

/// The candidate closest to `word`, when it is close enough to be a likely typo (1 edit for
/// words of up to 4 characters, 2 beyond), or nullopt. Ties go to the first candidate.
inline std::optional<std::string> closest(const std::string& word,
                                          const std::vector<std::string>& candidates) {
  const size_t limit = word.size() <= 4 ? 1 : 2;
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const auto d = edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

/// Parsed lazily: each query consumes the words it reads; finish() prints the usage for
/// -h/--help (and exits 0) or throws a UsageError for the first problem.
///
/// A word is an option when it starts with "--", or with "-" and a letter (`-h`, `-f`); other
/// words (`x`, `-`, `-3`, `-2:`) are values. An option that takes a value takes the next word
/// only when that word is a value: `--prompt --help` is the error "--prompt needs a value"
/// (never the help, never the prompt "--help"); `--prompt=--help` gives that text as the value.
/// Errors of queries (a missing required option, a malformed number) are held until finish(),
/// so -h prints the help whatever else the command line holds.
/// Example:
/// ```
/// steer::cli::Args args(argc, argv, "usage: activation_addition [--model DIR] [--coefficient C]");
/// auto model = args.value("model", "models/smollm2-135m-instruct");
/// bool json = args.flag("json");
/// args.finish();
/// ```
class Args {
 public:
  /// `usage` is printed for -h or --help (then the program exits 0). Words from `first` on are
  /// read (2 for a subcommand: `steer generate ...`).
  Args(int argc, char** argv, std::string usage, int first = 1) : usage_(std::move(usage)) {
    aliases_['h'] = "help";
    for (int i = first; i < argc; ++i) {
      Word word;
      word.text = argv[i];
      const auto& t = word.text;
      if (t.size() > 2 && t.compare(0, 2, "--") == 0) {
        // --name=value is the same as --name value.
        const auto eq = t.find('=');
        word.option = t.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        if (eq != std::string::npos) word.joined = t.substr(eq + 1);
      } else if (t.size() >= 2 && t[0] == '-' && std::isalpha(static_cast<unsigned char>(t[1]))) {
        word.option = t;  // "-f", or an unknown "-model"; resolved through the aliases
      }
      words_.push_back(std::move(word));
    }
  }

  /// Errors end with " (<hint>)" on their one line instead of a newline and the usage, e.g.
  /// `args.hint_on_error("see 'steer extract --help'")`.
  Args& hint_on_error(std::string hint) {
    hint_ = std::move(hint);
    return *this;
  }

  /// `-<letter>` means `--<name>` (call before querying `name`): `args.alias('f', "prompt-file")`.
  /// `-h` means `--help` in every program.
  Args& alias(char letter, const std::string& name) {
    aliases_[letter] = name;
    return *this;
  }

  /// Whether --name was given (a boolean flag; it takes no value).
  bool flag(const std::string& name) {
    known_.insert(name);
    flags_.insert(name);
    bool found = false;
    for (auto& w : words_) {
      if (w.used || !is(w, name)) continue;
      w.used = true;
      found = true;
      if (w.joined) defer(detail::concat(shown(w), " takes no value, got '", w.text, "'"));
    }
    return found;
  }

  /// Every value given for --name, in order (an option that may repeat).
  std::vector<std::string> values(const std::string& name) {
    known_.insert(name);
    std::vector<std::string> out;
    for (size_t i = 0; i < words_.size(); ++i) {
      auto& w = words_[i];
      if (w.used || !is(w, name)) continue;
      w.used = true;
      if (w.joined) {
        out.push_back(*w.joined);
      } else if (i + 1 < words_.size() && !words_[i + 1].option && !words_[i + 1].used) {
        words_[i + 1].used = true;
        out.push_back(words_[i + 1].text);
      } else if (i + 1 < words_.size() && words_[i + 1].option) {
        const auto& next = words_[i + 1].text;
        missing_values_.push_back(detail::concat(
            shown(w), " needs a value, but the next word is the option ", next, " (write ",
            w.text.size() > 2 ? w.text : "--" + name, "=", next, " to give '", next,
            "' as the value)"));
      } else {
        missing_values_.push_back(detail::concat(shown(w), " needs a value (nothing follows it)"));
      }
    }
    return out;
  }

  /// The value of --name, or nullopt; an error when it is given twice.
  std::optional<std::string> optional(const std::string& name) {
    auto all = values(name);
    if (all.size() > 1) {
      defer(detail::concat("--", name, " is given ", all.size(), " times; expected once"));
    }
    if (all.empty()) return std::nullopt;
    return all.front();
  }
  std::string value(const std::string& name, const std::string& fallback) {
    return optional(name).value_or(fallback);
  }
  /// The value of --name; when it is missing, "" and finish() reports "--name is required".
  std::string required(const std::string& name) {
    auto v = optional(name);
    if (!v) defer(detail::concat("--", name, " is required"));
    return v.value_or("");
  }
  int64_t integer(const std::string& name, int64_t fallback) {
    const auto v = optional(name);
    if (!v) return fallback;
    try {
      return parse_integer(name, *v);
    } catch (const UsageError& e) {
      defer(e.what());
      return fallback;
    }
  }
  double number(const std::string& name, double fallback) {
    const auto v = optional(name);
    if (!v) return fallback;
    try {
      return parse_number(name, *v);
    } catch (const UsageError& e) {
      defer(e.what());
      return fallback;
    }
  }

  /// Arguments that are not options, in order (call after the option queries).
  std::vector<std::string> positional() {
    std::vector<std::string> out;
    for (auto& w : words_) {
      if (!w.used && !w.option) {
        w.used = true;
        out.push_back(w.text);
      }
    }
    return out;
  }

  /// Ends the parse, in this order: an option without its value is an error (even before -h:
  /// in `--prompt --help` the help may be meant as the prompt); -h or --help prints the usage
  /// and exits 0; then an unknown option (with the closest valid one), a stray word, and the
  /// first error held by a query are UsageErrors.
  void finish() {
    if (!missing_values_.empty()) throw UsageError(missing_values_.front() + suffix());
    for (const auto& w : words_) {
      if (!w.used && is(w, "help")) {
        std::cout << usage_ << "\n";
        std::exit(0);
      }
    }
    for (const auto& w : words_) {
      if (w.used || !w.option) continue;
      std::vector<std::string> names(known_.begin(), known_.end());
      auto typed = *w.option;
      typed.erase(0, typed.find_first_not_of('-'));
      if (const auto near = closest(typed, names)) {
        throw UsageError(
            detail::concat("unknown option ", w.text, " (did you mean --", *near, "?)"));
      }
      std::string known;
      for (const auto& k : known_) known += " --" + k;
      throw UsageError(
          detail::concat("unknown option ", w.text, "; this program takes:", known, suffix()));
    }
    for (size_t i = 0; i < words_.size(); ++i) {
      if (words_[i].used) continue;
      std::string after;
      if (i > 0 && words_[i - 1].option && flags_.count(name_of(words_[i - 1]))) {
        after = detail::concat(" after ", words_[i - 1].text, ", which takes no value");
      }
      throw UsageError(
          detail::concat("unexpected argument '", words_[i].text, "'", after, suffix()));
    }
    if (!errors_.empty()) throw UsageError(errors_.front() + suffix());
  }

  /// An integer option value, or a UsageError naming the option.
  static int64_t parse_integer(const std::string& name, const std::string& text) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    const bool whole = !text.empty() && end == text.c_str() + text.size() &&
                       !std::isspace(static_cast<unsigned char>(text[0]));
    usage_check(whole, "--", name, " expects an integer, got '", text, "'");
    usage_check(errno != ERANGE, "--", name, " expects an integer, got '", text,
                "', which is out of range");
    return static_cast<int64_t>(v);
  }
  /// A finite number option value, or a UsageError naming the option ('1e400', 'nan' and
  /// 'inf' are refused).
  static double parse_number(const std::string& name, const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    const bool whole = !text.empty() && end == text.c_str() + text.size() &&
                       !std::isspace(static_cast<unsigned char>(text[0]));
    usage_check(whole, "--", name, " expects a number, got '", text, "'");
    usage_check(std::isfinite(v), "--", name, " expects a finite number, got '", text, "'");
    return v;
  }

 private:
  struct Word {
    std::string text;
    std::optional<std::string> option;  // the option's name, without dashes and "=value"
    std::optional<std::string> joined;  // the value of --name=value
    bool used = false;
  };

  std::string name_of(const Word& w) const {
    if (!w.option) return "";
    const auto& o = *w.option;
    if (o.size() == 2 && o[0] == '-') {
      const auto alias = aliases_.find(o[1]);
      return alias == aliases_.end() ? o : alias->second;
    }
    return o;
  }
  bool is(const Word& w, const std::string& name) const { return w.option && name_of(w) == name; }
  static std::string shown(const Word& w) {
    return w.joined ? w.text.substr(0, w.text.find('=')) : w.text;
  }
  void defer(std::string message) { errors_.push_back(std::move(message)); }
  std::string suffix() const { return hint_.empty() ? "\n" + usage_ : " (" + hint_ + ")"; }

  std::string usage_;
  std::string hint_;
  std::vector<Word> words_;
  std::map<char, std::string> aliases_;
  std::set<std::string> known_;
  std::set<std::string> flags_;
  std::vector<std::string> missing_values_;
  std::vector<std::string> errors_;
};

/// Runs `body`, printing a steer::Error (or any exception) as "<program>: error: ..." and
/// returning exit status 2 for a UsageError and 1 for anything else instead of terminating.
template <class Body>
int run_main(const char* program, Body&& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace steer::cli
