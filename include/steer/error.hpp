// steer::Error, the one exception type for user errors, and the check macro that builds it.
// Torch-free on purpose: the vector layer (steer::vec) uses it with Eigen alone.
#pragma once

#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace steer {

/// Thrown for every user error: bad arguments, missing or corrupt files, a vector from another
/// model. The message names the call, what was expected, what was received and, where it
/// helps, a hint, e.g.
/// `Model::load: steer.json says d_model=576 but the embedding has 768 columns (file: ...)`.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

template <typename... Parts>
inline std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// The warning handler and its lock (function-local statics: one per process).
struct WarningState {
  std::mutex mutex;
  std::function<void(const std::string&)> handler;
};
inline WarningState& warning_state() {
  static WarningState state;
  return state;
}

}  // namespace detail

/// Replaces where steer's warnings go (default: one line "steer: warning: ..." on stderr);
/// an empty function restores the default. Returns the previous handler.
/// Example: `steer::set_warning_handler([&](const std::string& m) { log.push_back(m); });`
inline std::function<void(const std::string&)> set_warning_handler(
    std::function<void(const std::string&)> handler) {
  auto& state = detail::warning_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  std::swap(state.handler, handler);
  return handler;
}

/// Reports something that is allowed but probably wrong (e.g. a steering vector thousands of
/// times the activations it is added to). Thread-safe.
inline void warn(const std::string& message) {
  auto& state = detail::warning_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.handler) {
    state.handler(message);
  } else {
    std::cerr << "steer: warning: " << message << std::endl;
  }
}

}  // namespace steer

/// Throws steer::Error with the streamed message parts when `cond` is false:
/// `STEER_CHECK(n > 0, "generate: max_new_tokens must be > 0, got ", n);`
#define STEER_CHECK(cond, ...)                                  \
  do {                                                          \
    if (!(cond)) {                                              \
      throw ::steer::Error(::steer::detail::concat(__VA_ARGS__)); \
    }                                                           \
  } while (false)
