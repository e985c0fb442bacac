// steer::Error, the one exception type for user errors, and the check macro that builds it.
// Torch-free on purpose: the vector layer (steer::vec) uses it with Eigen alone.
#pragma once

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

}  // namespace detail
}  // namespace steer

/// Throws steer::Error with the streamed message parts when `cond` is false:
/// `STEER_CHECK(n > 0, "generate: max_new_tokens must be > 0, got ", n);`
#define STEER_CHECK(cond, ...)                                  \
  do {                                                          \
    if (!(cond)) {                                              \
      throw ::steer::Error(::steer::detail::concat(__VA_ARGS__)); \
    }                                                           \
  } while (false)
