// Two translation units (this one and odr_test_second_unit.cpp) include steer.hpp and link into
// one program: header-only libraries break here first (non-inline definitions, static state).
#include <gtest/gtest.h>
#include <steer/steer.hpp>

std::string version_from_second_unit();
std::string error_from_second_unit();

TEST(Odr, TwoTranslationUnitsShareOneLibrary) {
  EXPECT_EQ(version_from_second_unit(), steer::version());
  EXPECT_EQ(error_from_second_unit(), "parse_dtype: unknown dtype 'x'; expected float32, float16 or bfloat16");
  EXPECT_EQ(steer::parse_dtype("fp16"), torch::kFloat16);
}
