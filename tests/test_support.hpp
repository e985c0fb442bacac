// Helpers shared by steer's tests: where fixtures and the default model are, error matching.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace steer::test {

/// A directory named by an environment variable that ctest sets (tests/CMakeLists.txt).
inline std::string env_dir(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || !std::filesystem::is_directory(value)) {
    ADD_FAILURE() << "environment variable " << name << " must name an existing directory, got '"
                  << (value ? value : "(unset)") << "' (run the tests through ctest)";
    return {};
  }
  return value;
}

/// Where the fixtures made at test time live (build/tests/fixtures).
inline std::string fixture_dir() { return env_dir("STEER_FIXTURE_DIR"); }

/// The default model's directory (./scripts/test.sh exports it).
inline std::string default_model_dir() { return env_dir("STEER_DEFAULT_MODEL"); }

}  // namespace steer::test

/// Expects `statement` to throw steer::Error whose message contains `fragment`.
#define EXPECT_STEER_ERROR(statement, fragment)                                        \
  do {                                                                                 \
    try {                                                                              \
      statement;                                                                       \
      ADD_FAILURE() << "expected steer::Error containing \"" << (fragment) << "\"";    \
    } catch (const ::steer::Error& e) {                                                \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)               \
          << "message: " << e.what() << "\nexpected to contain: " << (fragment);      \
    }                                                                                  \
  } while (false)
