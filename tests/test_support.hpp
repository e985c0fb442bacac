// Helpers shared by steer's tests: where fixtures and the default model are, error matching.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include "steer/error.hpp"

namespace steer::test {

/// A directory that tests/CMakeLists.txt names; fails the test when it does not exist.
inline std::string existing_dir(const char* what, const char* path) {
  if (!std::filesystem::is_directory(path)) {
    ADD_FAILURE() << what << " '" << path << "' does not exist (run the tests through ctest, "
                  << "which makes the fixtures first, after ./scripts/export_default_model.sh)";
  }
  return path;
}

/// Where the fixtures made at test time live (build/tests/fixtures).
inline std::string fixture_dir() { return existing_dir("fixture directory", STEER_TEST_FIXTURE_DIR); }

/// The default model's directory (./scripts/test.sh exports it).
inline std::string default_model_dir() {
  return existing_dir("default model directory", STEER_TEST_DEFAULT_MODEL);
}

/// A path `name` in the directory `subdir` of the fixture directory (created if needed), for
/// files a test writes.
inline std::string scratch_path(const std::string& subdir, const std::string& name) {
  const auto dir = std::filesystem::path(fixture_dir()) / subdir;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace steer::test

/// Expects `statement` to throw steer::Error whose message contains every listed fragment
/// (string literals or std::string).
#define EXPECT_STEER_ERROR(statement, ...)                                              \
  do {                                                                                  \
    try {                                                                               \
      statement;                                                                        \
      ADD_FAILURE() << "expected steer::Error from " #statement;                        \
    } catch (const ::steer::Error& error) {                                             \
      const std::string message = error.what();                                         \
      for (const std::string& fragment : std::initializer_list<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(message.find(fragment), std::string::npos)                            \
            << "message: " << message << "\nmissing: " << fragment;                     \
      }                                                                                 \
    }                                                                                   \
  } while (false)
