// steer::vec compiles and links with Eigen alone: this target links only Steer::vec, each
// vec header is also compiled alone in its own translation unit (vec_header_*.cpp, made by
// CMake), and no vec header names a LibTorch header.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "steer/vec/vec.hpp"

#if defined(TORCH_API) || defined(C10_MACROS_MACROS_H_) || defined(AT_ERROR)
#error "steer/vec/vec.hpp pulled in LibTorch"
#endif

int vec_header_translation_units();  // defined by the generated one-header TUs

TEST(VecTorchFree, EveryHeaderCompilesAloneAndIsOdrSafe) {
  EXPECT_EQ(vec_header_translation_units(), STEER_VEC_HEADER_COUNT);
}

TEST(VecTorchFree, NoHeaderIncludesTorch) {
  for (const char* header : {STEER_VEC_HEADERS, "detail/check.hpp"}) {
    std::ifstream file(std::string(STEER_SOURCE_DIR) + "/include/steer/vec/" + header);
    ASSERT_TRUE(file) << header;
    std::string line;
    int lines = 0;
    while (std::getline(file, line)) {
      ++lines;
      if (line.find("#include") == std::string::npos) continue;
      for (const char* banned : {"torch", "ATen", "c10/", "steer/steer.hpp"}) {
        EXPECT_EQ(line.find(banned), std::string::npos) << header << ": " << line;
      }
    }
    EXPECT_GT(lines, 5) << header;
  }
}
