// Small helpers the example programs share: where the project's default model, data and plot
// scripts are, text formatting (two columns side by side), and running a plot script.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <steer/error.hpp>

#ifndef STEER_EXAMPLES_SOURCE_DIR
#error "examples/CMakeLists.txt defines STEER_EXAMPLES_SOURCE_DIR (the project's root)"
#endif

namespace examples {

/// The project's root directory (where models/, tools/ and examples/data/ are).
inline std::string source_dir() { return STEER_EXAMPLES_SOURCE_DIR; }

/// The default model, exported by ./scripts/export_default_model.sh.
inline std::string default_model() { return source_dir() + "/models/smollm2-135m-instruct"; }

/// A file shipped in examples/data/.
inline std::string data_file(const std::string& name) {
  return source_dir() + "/examples/data/" + name;
}

/// Streams all arguments into one string: `text("layer ", 6)`.
template <class... Parts>
std::string text(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// `"Love" - "Hate"`, or `3 positive - 3 negative texts` for longer sets.
inline std::string describe_texts(const std::vector<std::string>& positive,
                                  const std::vector<std::string>& negative) {
  if (positive.size() == 1 && negative.size() == 1) {
    return "\"" + positive[0] + "\" - \"" + negative[0] + "\"";
  }
  return text(positive.size(), " positive - ", negative.size(), " negative texts");
}

/// `body` broken into lines of at most `width` bytes at spaces (a longer word gets its own line).
inline std::vector<std::string> wrap(const std::string& body, size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(body);
  std::string line;
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

/// Two texts in two columns under their titles.
inline void print_side_by_side(std::ostream& out, const std::string& left_title,
                               const std::string& left, const std::string& right_title,
                               const std::string& right, size_t width = 46) {
  auto a = wrap(left, width), b = wrap(right, width);
  a.insert(a.begin(), {left_title, std::string(width, '-')});
  b.insert(b.begin(), {right_title, std::string(width, '-')});
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string l = i < a.size() ? a[i] : "";
    const std::string r = i < b.size() ? b[i] : "";
    out << l << std::string(width - std::min(width, l.size()), ' ') << " | " << r << "\n";
  }
}

/// `s` in single quotes for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs tools/<script> with `arguments` under `python` (default: $STEER_PYTHON, else the
/// project's .venv/bin/python, else python3); throws when it fails.
inline void run_plot(const std::optional<std::string>& python, const std::string& script,
                     const std::vector<std::string>& arguments) {
  std::string exe;
  if (python) {
    exe = *python;
  } else if (const char* env = std::getenv("STEER_PYTHON")) {
    exe = env;
  } else if (std::filesystem::exists(source_dir() + "/.venv/bin/python")) {
    exe = source_dir() + "/.venv/bin/python";
  } else {
    exe = "python3";
  }
  std::string command = shell_quote(exe) + " " + shell_quote(source_dir() + "/tools/" + script);
  for (const auto& a : arguments) command += " " + shell_quote(a);
  // The script's messages go to stderr so that --json output on stdout stays clean.
  command += " 1>&2";
  const int status = std::system(command.c_str());
  STEER_CHECK(status == 0, "plotting failed: `", command, "` exited with status ", status,
              " (hint: the plot scripts need matplotlib: .venv/bin/pip install -r "
              "tools/requirements-plot.txt, or give --python)");
}

/// A seeded permutation of 0 .. n-1 (Fisher-Yates on std::mt19937_64, whose output the C++
/// standard fixes, so the split is the same with every standard library).
inline std::vector<size_t> permutation(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

}  // namespace examples
