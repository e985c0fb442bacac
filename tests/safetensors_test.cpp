// steer::io safetensors: round trip, a file written by the Python safetensors package, and
// damaged files.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <steer/io/safetensors.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;
using steer::test::fixture_dir;
using steer::test::read_bytes;
using steer::test::write_bytes;

namespace {

std::string scratch(const std::string& name) {
  return steer::test::scratch_path("safetensors-scratch", name);
}

}  // namespace

TEST(Safetensors, RoundTripKeepsValuesDtypesAndMetadata) {
  steer::io::Safetensors contents;
  contents.tensors["a"] = torch::randn({3, 5});
  contents.tensors["b.half"] = torch::randn({7}).to(torch::kFloat16);
  contents.tensors["c.bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  contents.tensors["ids"] = torch::arange(10, torch::kInt64);
  contents.tensors["empty"] = torch::zeros({0, 4});
  contents.metadata["steer.layer"] = "12";
  const auto path = scratch("roundtrip.safetensors");
  steer::io::write_safetensors(path, contents);
  const auto back = steer::io::read_safetensors(path);
  ASSERT_EQ(back.tensors.size(), contents.tensors.size());
  for (const auto& [name, tensor] : contents.tensors) {
    EXPECT_EQ(back.at(name).scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.at(name), tensor)) << name;
  }
  EXPECT_EQ(back.metadata.at("steer.layer"), "12");
}

TEST(Safetensors, ReadsTheReferenceWrittenByPython) {
  // make_model_fixtures.py writes its reference with the Python safetensors package.
  const auto file = steer::io::read_safetensors(fixture_dir() + "/tiny-llama-reference.safetensors");
  EXPECT_EQ(file.metadata.at("lengths"), "1,4,13,30");
  EXPECT_EQ(file.at("ids.4").scalar_type(), torch::kInt64);
  EXPECT_EQ(file.at("logits.13").sizes(), (std::vector<int64_t>{2, 13, file.at("logits.13").size(2)}));
  EXPECT_STEER_ERROR(file.at("logits.99"), "no tensor 'logits.99' (the file has: cached_logits.1");
}

TEST(Safetensors, DamagedFilesGiveClearErrors) {
  steer::io::Safetensors contents;
  contents.tensors["x"] = torch::randn({16});
  const auto good = scratch("good.safetensors");
  steer::io::write_safetensors(good, contents);
  const auto bytes = read_bytes(good);
  const auto bad = scratch("bad.safetensors");

  EXPECT_STEER_ERROR(steer::io::read_safetensors(scratch("absent.safetensors")), "cannot open");
  write_bytes(bad, bytes.substr(0, 5));
  EXPECT_STEER_ERROR(steer::io::read_safetensors(bad), "has 5 bytes");
  write_bytes(bad, bytes.substr(0, 20));
  EXPECT_STEER_ERROR(steer::io::read_safetensors(bad), "-byte header but has only 12 bytes");
  write_bytes(bad, bytes.substr(0, bytes.size() - 4));
  EXPECT_STEER_ERROR(steer::io::read_safetensors(bad), "need 64 bytes within 60 bytes of data");
  auto garbled = bytes;
  garbled[9] = '!';
  write_bytes(bad, garbled);
  EXPECT_STEER_ERROR(steer::io::read_safetensors(bad), "is not valid JSON");
  auto renamed = bytes;
  const auto at = renamed.find("F32");
  renamed.replace(at, 3, "Q4K");
  write_bytes(bad, renamed);
  EXPECT_STEER_ERROR(steer::io::read_safetensors(bad), "has dtype 'Q4K'; steer reads F64");
}
