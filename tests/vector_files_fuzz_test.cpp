// Seeded mutation fuzzing of steer's file readers (GGUF, control vectors, safetensors, vector
// safetensors): every damaged file must read or throw steer::Error, never crash, hang, allocate
// from a bogus count or throw anything else. Figures and history: docs/file-formats.md.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <gtest/gtest.h>
#include <steer/io/gguf.hpp>
#include <steer/io/safetensors.hpp>
#include <steer/io/vector_file.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;
using steer::test::fixture_dir;
using steer::test::read_bytes;
using steer::test::write_bytes;

namespace {

std::string scratch(const std::string& name) {
  return steer::test::scratch_path("vector-fuzz", name);
}

/// One random mutation of `bytes`; `what` says which, for the failure message.
std::string mutate(std::string bytes, std::mt19937_64& rng, std::string& what) {
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  const auto kind = pick(5);
  if (kind == 0) {  // flip 1 to 4 bits
    const auto flips = 1 + pick(4);
    what = "bit flips at";
    for (uint64_t i = 0; i < flips && !bytes.empty(); ++i) {
      const auto at = pick(bytes.size());
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(8)));
      what += " " + std::to_string(at);
    }
  } else if (kind == 1) {  // truncate
    const auto keep = pick(bytes.size() + 1);
    what = "truncated to " + std::to_string(keep);
    bytes.resize(keep);
  } else if (kind == 2) {  // overwrite a 4- or 8-byte field with a length-like value
    const uint64_t sizes[] = {0, 1, 3, 7, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
                              uint64_t{1} << 32, uint64_t{1} << 62, ~uint64_t{0},
                              ~uint64_t{0} - 7, bytes.size(), bytes.size() + 1, bytes.size() * 4,
                              rng()};
    const auto value = sizes[pick(std::size(sizes))];
    const auto width = pick(2) ? 8 : 4;
    if (bytes.size() >= static_cast<size_t>(width)) {
      const auto at = pick(bytes.size() - width + 1);
      std::memcpy(bytes.data() + at, &value, width);
      what = "field of " + std::to_string(width) + " bytes at " + std::to_string(at) + " set to " +
             std::to_string(value);
    }
  } else if (kind == 3) {  // insert random bytes
    const auto at = pick(bytes.size() + 1);
    std::string insert(1 + pick(16), '\0');
    for (auto& c : insert) c = static_cast<char>(pick(256));
    bytes.insert(at, insert);
    what = std::to_string(insert.size()) + " bytes inserted at " + std::to_string(at);
  } else {  // delete a run of bytes
    const auto at = pick(bytes.size() + 1);
    const auto n = 1 + pick(16);
    bytes.erase(at, n);
    what = std::to_string(n) + " bytes deleted at " + std::to_string(at);
  }
  return bytes;
}

struct Tally {
  int read = 0, refused = 0;
};

/// Applies `count` seeded mutations to `seed_file` and runs `reader` on each damaged copy.
Tally fuzz(const std::string& seed_file, uint64_t seed, int count,
           const std::function<void(const std::string&)>& reader) {
  const auto original = read_bytes(seed_file);
  EXPECT_FALSE(original.empty()) << seed_file;
  reader(seed_file);  // the undamaged file reads
  std::mt19937_64 rng(seed);
  const auto path = scratch("mutant" + fs::path(seed_file).extension().string());
  Tally tally;
  for (int i = 0; i < count; ++i) {
    std::string what;
    auto bytes = mutate(original, rng, what);
    // Some mutations apply twice, to reach past the first check.
    if (i % 3 == 0) {
      std::string more;
      bytes = mutate(bytes, rng, more);
      what += "; " + more;
    }
    write_bytes(path, bytes);
    try {
      reader(path);
      ++tally.read;
    } catch (const steer::Error& e) {
      ++tally.refused;
      EXPECT_GT(std::strlen(e.what()), 20u);
    } catch (const std::exception& e) {
      ADD_FAILURE() << seed_file << " mutation " << i << " (" << what
                    << ") threw a non-steer exception: " << e.what();
    }
  }
  std::cout << fs::path(seed_file).filename().string() << ": " << count << " mutations, "
            << tally.read << " read, " << tally.refused << " refused with steer::Error\n";
  return tally;
}

int mutations() {
  const char* env = std::getenv("STEER_FUZZ_MUTATIONS");
  return env != nullptr ? std::atoi(env) : 4000;
}

steer::SteeringVector sample_vector() {
  steer::SteeringVector v(8, steer::VectorOrigin().model("m").n_layers(12).positions("last")
                                 .method("mean-diff").activation_norms({{2, 3.0}})
                                 .metadata({{"k", "v"}}));
  torch::manual_seed(0);
  for (const int64_t layer : {1, 2, 7}) v.set(layer, torch::randn({8}));
  return v;
}

}  // namespace

TEST(VectorFilesFuzz, GgufReadersNeverCrash) {
  const auto cvec = scratch("seed.gguf");
  steer::io::write_control_vector(cvec, sample_vector());
  const auto read_gguf = [](const std::string& p) { steer::io::read_gguf(p); };
  const auto read_cvec = [](const std::string& p) { steer::io::read_control_vector(p); };
  const int n = mutations();
  auto a = fuzz(cvec, 1, n, read_cvec);
  auto b = fuzz(fixture_dir() + "/vectors/repeng.gguf", 2, n, read_cvec);
  auto c = fuzz(fixture_dir() + "/vectors/all-types.gguf", 3, n, read_gguf);
  auto d = fuzz(fixture_dir() + "/vectors/cvec-f16.gguf", 4, n, read_gguf);
  // The mutations must reach both outcomes, or the fuzzer tests nothing.
  for (const auto& t : {a, b, c, d}) {
    EXPECT_GT(t.refused, n / 4);
    EXPECT_GT(t.read, 0);
  }
}

TEST(VectorFilesFuzz, SafetensorsReadersNeverCrash) {
  const auto file = scratch("seed.safetensors");
  steer::io::write_vector_safetensors(file, sample_vector());
  const auto read_st = [](const std::string& p) { steer::io::read_safetensors(p); };
  const auto read_vec = [](const std::string& p) { steer::io::read_vector_safetensors(p); };
  const int n = mutations();
  auto a = fuzz(file, 5, n, read_vec);
  auto b = fuzz(file, 6, n, read_st);
  for (const auto& t : {a, b}) {
    EXPECT_GT(t.refused, n / 4);
    EXPECT_GT(t.read, 0);
  }
}

// Found by reading the reader, not by the fuzzer (random mutations rarely make 20-digit numbers):
// a safetensors shape whose element count overflows uint64 (or exceeds int64) passed the size
// check and reached torch::empty. Now the shape is capped by the file size first.
TEST(VectorFilesFuzz, SafetensorsShapesCannotOverflow) {
  const auto path = scratch("overflow.safetensors");
  for (const std::string shape : {"[4294967296, 4294967296]", "[18446744073709551615]",
                                  "[0, 18446744073709551615]", "[3, 1000000000000]"}) {
    std::string header = R"({"x":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    const uint64_t size = header.size();
    std::memcpy(bytes.data(), &size, 8);
    write_bytes(path, bytes + header);
    EXPECT_STEER_ERROR(steer::io::read_safetensors(path), "has shape " + shape.substr(0, 3),
                       "holds more values than the file has bytes");
  }
}
