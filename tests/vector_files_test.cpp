// GGUF (steer::io::read_gguf / write_gguf) and steering-vector files: control vectors in the
// llama.cpp / repeng format and safetensors with steer's metadata. Files written by the Python
// gguf package are read here; a file written here is read by Python (fixture.vector_files_check).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <steer/io/gguf.hpp>
#include <steer/io/vector_file.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;
using steer::SteeringVector;
using steer::VectorOrigin;
using steer::io::GgufType;
using steer::io::GgufValue;
using steer::test::fixture_dir;

namespace {

std::string vectors_dir() { return fixture_dir() + "/vectors"; }

std::string scratch(const std::string& name) {
  const auto dir = fs::path(fixture_dir()) / "vector-scratch";
  fs::create_directories(dir);
  return (dir / name).string();
}

nlohmann::json expected() {
  std::ifstream in(vectors_dir() + "/expected.json");
  return nlohmann::json::parse(in);
}

torch::Tensor floats(const nlohmann::json& values) {
  return torch::tensor(values.get<std::vector<float>>());
}

SteeringVector sample_vector() {
  SteeringVector v(/*d_model=*/6, VectorOrigin().model("smollm2-135m-instruct")
                                      .architecture("llama").n_layers(30)
                                      .positions("last").method("mean-diff")
                                      .activation_norms({{3, 12.5}, {17, 80.25}})
                                      .metadata({{"dataset", "happy/sad"}, {"seed", "7"}}));
  torch::manual_seed(3);
  for (const int64_t layer : {3, 10, 17}) v.set(layer, torch::randn({6}));
  return v;
}

void expect_same(const SteeringVector& a, const SteeringVector& b) {
  EXPECT_EQ(a.d_model(), b.d_model());
  ASSERT_EQ(a.layers(), b.layers());
  for (const auto l : a.layers()) EXPECT_TRUE(torch::equal(a.at(l), b.at(l))) << "layer " << l;
  EXPECT_EQ(a.origin().model(), b.origin().model());
  EXPECT_EQ(a.origin().architecture(), b.origin().architecture());
  EXPECT_EQ(a.origin().n_layers(), b.origin().n_layers());
  EXPECT_EQ(a.origin().site(), b.origin().site());
  EXPECT_EQ(a.origin().positions(), b.origin().positions());
  EXPECT_EQ(a.origin().method(), b.origin().method());
  EXPECT_EQ(a.origin().activation_norms(), b.origin().activation_norms());
  EXPECT_EQ(a.origin().metadata(), b.origin().metadata());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(Gguf, ReadsEveryValueTypeWrittenByPython) {
  const auto file = steer::io::read_gguf(vectors_dir() + "/all-types.gguf");
  EXPECT_EQ(file.version, 3u);
  EXPECT_EQ(file.at("general.architecture").as_string(), "test");
  EXPECT_EQ(file.at("t.u8").type(), GgufType::kUint8);
  EXPECT_EQ(file.at("t.u8").as_int(), 200);
  EXPECT_EQ(file.at("t.i8").as_int(), -100);
  EXPECT_EQ(file.at("t.u16").as_int(), 60000);
  EXPECT_EQ(file.at("t.i16").as_int(), -30000);
  EXPECT_EQ(file.at("t.u32").as_int(), 4000000000LL);
  EXPECT_EQ(file.at("t.i32").as_int(), -2000000000LL);
  EXPECT_EQ(file.at("t.f32").type(), GgufType::kFloat32);
  EXPECT_EQ(file.at("t.f32").as_double(), 1.5);
  EXPECT_TRUE(file.at("t.bool").as_bool());
  EXPECT_EQ(file.at("t.str").as_string(), "h\xc3\xa9llo");
  EXPECT_EQ(file.at("t.u64").as_uint(), (uint64_t{1} << 63) + 5);
  EXPECT_STEER_ERROR(file.at("t.u64").as_int("t.u64"), "t.u64: the uint64 value",
                     "does not fit in int64");
  EXPECT_EQ(file.at("t.i64").as_int(), -(int64_t{1} << 40));
  EXPECT_EQ(file.at("t.f64").as_double(), 0.1);
  const auto& ints = file.at("t.ints").as_array();
  EXPECT_EQ(file.at("t.ints").element_type(), GgufType::kInt32);
  ASSERT_EQ(ints.size(), 3u);
  EXPECT_EQ(ints[2].as_int(), 3);
  const auto& strs = file.at("t.strs").as_array();
  ASSERT_EQ(strs.size(), 3u);
  EXPECT_EQ(strs[1].as_string(), "bc");
  EXPECT_EQ(strs[2].as_string(), "");
  const auto& nested = file.at("t.nested").as_array();
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested[0].as_array()[1].as_int(), 2);
  EXPECT_EQ(nested[1].as_array()[0].as_int(), 3);
  EXPECT_STEER_ERROR(file.at("t.str").as_int("t.str"), "t.str: expected an integer, the value "
                     "has type string");
  EXPECT_STEER_ERROR(file.at("missing"), "no metadata key 'missing'", "general.architecture");

  // GGUF dims are reversed torch dims: the NumPy [3, 4] matrix comes back as [3, 4].
  const auto ref = expected()["all_types"];
  const auto& matrix = file.tensor("matrix");
  ASSERT_EQ(matrix.sizes(), (std::vector<int64_t>{3, 4}));
  std::vector<float> flat;
  for (const auto& row : ref["matrix"]) {
    for (const auto& x : row) flat.push_back(x.get<float>());
  }
  EXPECT_TRUE(torch::equal(matrix, torch::tensor(flat).reshape({3, 4}))) << matrix;
  EXPECT_EQ(matrix[1][2].item<float>(), ref["matrix"][1][2].get<float>());
  EXPECT_EQ(file.tensor("half").scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(file.tensor("half").to(torch::kFloat32), floats(ref["half"])));
}

TEST(Gguf, RoundTripKeepsTypesValuesAndTensors) {
  steer::io::Gguf file;
  file.set("general.architecture", GgufValue::string("anything"));
  file.set("a.u8", GgufValue::uint8(255));
  file.set("a.i16", GgufValue::int16(-7));
  file.set("a.u64", GgufValue::uint64(~uint64_t{0}));
  file.set("a.f32", GgufValue::float32(0.25f));
  file.set("a.bool", GgufValue::boolean(false));
  file.set("a.arr", GgufValue::array(GgufType::kArray,
                                     {GgufValue::array(GgufType::kString, {GgufValue::string("x")}),
                                      GgufValue::array(GgufType::kString, {})}));
  file.set("general.alignment", GgufValue::uint32(64));
  file.tensors.emplace_back("m", torch::randn({2, 3, 5}));
  file.tensors.emplace_back("h", torch::randn({7}).to(torch::kFloat16));
  file.tensors.emplace_back("b", torch::randn({3}).to(torch::kBFloat16));
  const auto path = scratch("roundtrip.gguf");
  steer::io::write_gguf(path, file);
  const auto back = steer::io::read_gguf(path);
  ASSERT_EQ(back.metadata.size(), file.metadata.size());
  for (size_t i = 0; i < file.metadata.size(); ++i) {
    EXPECT_EQ(back.metadata[i].first, file.metadata[i].first);
    EXPECT_TRUE(back.metadata[i].second == file.metadata[i].second) << file.metadata[i].first;
  }
  EXPECT_EQ(back.alignment(), 64u);
  for (const auto& [name, tensor] : file.tensors) {
    EXPECT_EQ(back.tensor(name).scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.tensor(name), tensor)) << name;
  }
  EXPECT_STEER_ERROR(GgufValue::array(GgufType::kInt32, {GgufValue::uint32(1)}),
                     "expected elements of type int32 but element 0 has type uint32");
  file.set("general.alignment", GgufValue::uint32(24));
  EXPECT_STEER_ERROR(steer::io::write_gguf(path, file), "general.alignment must be a power of two");
  file.set("general.alignment", GgufValue::uint32(32));
  file.tensors.emplace_back("i", torch::arange(3));
  EXPECT_STEER_ERROR(steer::io::write_gguf(path, file), "tensor 'i' has dtype Long",
                     "steer writes float32, float16 and bfloat16");
  file.tensors.back() = {std::string(64, 'n'), torch::zeros({1})};
  EXPECT_STEER_ERROR(steer::io::write_gguf(path, file), "has 64 bytes; GGUF (ggml) names have 1 to 63");
}

TEST(Gguf, DamagedFilesAreClearErrors) {
  const auto good = read_bytes(vectors_dir() + "/repeng.gguf");
  const auto path = scratch("damaged.gguf");
  write_bytes(path, good.substr(0, good.size() - 10));
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "tensor 'direction.5' needs bytes",
                     "truncated file?");
  write_bytes(path, good.substr(0, 100));
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "is truncated or corrupt");
  auto bad = good;
  bad[0] = 'X';
  write_bytes(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "does not start with the magic 'GGUF'");
  bad = good;
  bad[4] = 1;  // version 1
  write_bytes(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "has GGUF version 1; steer reads versions 2 and 3");
  bad = good;
  bad[15] = 0x7f;  // tensor count ~ 2^62
  write_bytes(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "tensors but its 512 bytes can hold at most",
                     "(corrupt count?)");
  bad = good;
  bad[24 + 7] = 0x40;  // the first key's length ~ 2^62
  write_bytes(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_gguf(path), "metadata key 0 (a string of");
  EXPECT_STEER_ERROR(steer::io::read_gguf(scratch("does-not-exist.gguf")), "read_gguf: cannot open");
}

TEST(ControlVector, ReadsTheRepengExportFromPython) {
  const auto ref = expected()["repeng"];
  const auto v = steer::io::read_control_vector(vectors_dir() + "/repeng.gguf");
  EXPECT_EQ(v.origin().model(), "llama");
  EXPECT_EQ(v.origin().architecture(), "llama");  // repeng's hint: the model_type
  EXPECT_EQ(v.origin().site(), "resid_post");  // what llama.cpp applies
  EXPECT_EQ(v.origin().n_layers(), 0);         // unknown: repeng does not record it
  EXPECT_EQ(v.d_model(), 16);
  EXPECT_EQ(v.layers(), (std::vector<int64_t>{1, 2, 5}));
  for (const auto& [layer, values] : ref["directions"].items()) {
    EXPECT_TRUE(torch::equal(v.at(std::stoll(layer)), floats(values))) << "layer " << layer;
  }
  const auto f16 = steer::io::read_control_vector(vectors_dir() + "/cvec-f16.gguf");
  EXPECT_EQ(f16.origin().model(), "gpt2");
  EXPECT_EQ(f16.at(4).scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(f16.at(4), floats(expected()["cvec_f16"]["directions"]["4"])));
  EXPECT_STEER_ERROR(steer::io::read_control_vector(vectors_dir() + "/all-types.gguf"),
                     "is not a control vector: expected general.architecture = 'controlvector', "
                     "the file has 'test'");
}

TEST(ControlVector, RoundTripKeepsDirectionsAndOrigin) {
  const auto v = sample_vector();
  const auto path = scratch("sample.gguf");
  steer::io::write_control_vector(path, v);
  expect_same(steer::io::read_control_vector(path), v);
  expect_same(steer::io::read_steering_vector(path), v);
  const auto file = steer::io::read_gguf(path);
  EXPECT_EQ(file.at("general.architecture").as_string(), "controlvector");
  EXPECT_EQ(file.at("controlvector.model_hint").as_string(), "llama");
  EXPECT_EQ(file.at("steer.model").as_string(), "smollm2-135m-instruct");
  EXPECT_EQ(file.at("controlvector.layer_count").type(), GgufType::kUint32);
  EXPECT_EQ(file.at("controlvector.layer_count").as_int(), 3);  // number of directions (repeng)
  EXPECT_EQ(file.tensor("direction.17").sizes(), (std::vector<int64_t>{6}));
  EXPECT_EQ(file.at("steer.site").as_string(), "resid_post");
  // A file of a steer before steer.model: its hint was the model's directory name, which is
  // no architecture.
  auto older = file;
  older.set("controlvector.model_hint", GgufValue::string("smollm2-135m-instruct"));
  older.metadata.erase(std::remove_if(older.metadata.begin(), older.metadata.end(),
                                      [](const auto& kv) { return kv.first == "steer.model"; }),
                       older.metadata.end());
  steer::io::write_gguf(scratch("older.gguf"), older);
  const auto read_older = steer::io::read_control_vector(scratch("older.gguf"));
  EXPECT_EQ(read_older.origin().model(), "smollm2-135m-instruct");
  EXPECT_EQ(read_older.origin().architecture(), "");
}

TEST(ControlVector, RefusesWhatLlamaCppWouldMisapply) {
  auto v = sample_vector();
  v.set(0, torch::ones({6}));
  const auto path = scratch("refused.gguf");
  EXPECT_STEER_ERROR(steer::io::write_control_vector(path, v),
                     "has a direction for layer 0, and llama.cpp's loader refuses a file with "
                     "direction.0");
  steer::io::write_control_vector(path, v, steer::io::ControlVectorOptions().allow_layer_zero(true));
  EXPECT_TRUE(torch::equal(steer::io::read_control_vector(path).at(0), torch::ones({6})));

  auto pre = sample_vector();
  pre.origin().site("resid_pre");
  EXPECT_STEER_ERROR(steer::io::write_control_vector(path, pre),
                     "was read at hook point 'resid_pre' but llama.cpp adds direction.N to the "
                     "output of block N (resid_post)", "allow_other_sites(true)");
  steer::io::write_control_vector(path, pre, steer::io::ControlVectorOptions().allow_other_sites(true));
  EXPECT_EQ(steer::io::read_control_vector(path).origin().site(), "resid_pre");
  EXPECT_STEER_ERROR(steer::io::write_control_vector(path, SteeringVector(6)), "has no directions");
}

TEST(ControlVector, RefusesFilesThatAreNotControlVectors) {
  const auto path = scratch("not-a-cvec.gguf");
  steer::io::Gguf file;
  file.set("general.architecture", GgufValue::string("controlvector"));
  file.tensors.emplace_back("direction.2", torch::ones({4}));
  file.tensors.emplace_back("token_embd.weight", torch::ones({4}));
  steer::io::write_gguf(path, file);
  EXPECT_STEER_ERROR(steer::io::read_control_vector(path), "has tensor 'token_embd.weight'",
                     "only tensors direction.N");
  file.tensors.back() = {"direction.3", torch::ones({5})};
  steer::io::write_gguf(path, file);
  EXPECT_STEER_ERROR(steer::io::read_control_vector(path), "tensor 'direction.3' has shape [5]; "
                     "expected [4] like 'direction.2'");
  file.tensors.back() = {"direction.3", torch::tensor({1.0f, NAN, 0.0f, 0.0f})};
  steer::io::write_gguf(path, file);
  EXPECT_STEER_ERROR(steer::io::read_control_vector(path), "layer 3 has a non-finite value (nan) "
                     "at index 1");
  file.tensors.back() = {"direction.02", torch::ones({4})};
  steer::io::write_gguf(path, file);
  EXPECT_STEER_ERROR(steer::io::read_control_vector(path), "two tensors name layer 2",
                     "'direction.02'");
}

TEST(VectorSafetensors, RoundTripKeepsDirectionsAndOrigin) {
  auto v = sample_vector();
  v.origin().site("resid_pre");  // any site: safetensors is steer's own format
  v.set(0, torch::zeros({6}));
  const auto path = scratch("sample.safetensors");
  steer::io::write_steering_vector(path, v);
  expect_same(steer::io::read_vector_safetensors(path), v);
  expect_same(steer::io::read_steering_vector(path), v);
  const auto raw = steer::io::read_safetensors(path);
  EXPECT_EQ(raw.metadata.at("steer.format"), "steering-vector");
  EXPECT_EQ(raw.metadata.at("steer.n_layers"), "30");
  EXPECT_EQ(raw.metadata.at("steer.meta.dataset"), "happy/sad");
  EXPECT_EQ(raw.metadata.at("steer.activation_norms"), R"({"17":80.25,"3":12.5})");
  EXPECT_TRUE(torch::equal(raw.at("direction.10"), v.at(10)));

  steer::io::Safetensors bad = raw;
  bad.metadata["steer.n_layers"] = "thirty";
  steer::io::write_safetensors(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_vector_safetensors(path),
                     "has steer.n_layers='thirty'; expected a decimal integer");
  bad = raw;
  bad.metadata["steer.n_layers"] = "12";
  steer::io::write_safetensors(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_vector_safetensors(path), "layer 17 is outside 0 .. 11");
  bad = raw;
  bad.metadata["steer.format_version"] = "2";
  steer::io::write_safetensors(path, bad);
  EXPECT_STEER_ERROR(steer::io::read_vector_safetensors(path), "steer.format_version='2'",
                     "written by a newer steer?");
  EXPECT_STEER_ERROR(steer::io::write_steering_vector(scratch("v.pt"), v),
                     "cannot tell the format of");
}

// Run by ctest as fixture step vector_files.write_for_python (STEER_WRITE_FOR_PYTHON set), then
// tests/fixtures/make_vector_fixtures.py check reads the file with gguf.GGUFReader.
TEST(ControlVector, WritesAFileForPython) {
  const char* out = std::getenv("STEER_WRITE_FOR_PYTHON");
  if (out == nullptr) GTEST_SKIP() << "run by ctest's vector_files.write_for_python step";
  const auto v = sample_vector();
  steer::io::write_control_vector(std::string(out) + "/steer-written.gguf", v);
  nlohmann::json expect;
  expect["metadata"] = {{"general.architecture", "controlvector"},
                        {"controlvector.model_hint", "llama"},
                        {"steer.model", "smollm2-135m-instruct"},
                        {"controlvector.layer_count", 3},
                        {"steer.site", "resid_post"},
                        {"steer.method", "mean-diff"},
                        {"steer.n_layers", 30}};
  expect["types"] = {{"controlvector.model_hint", "STRING"}, {"controlvector.layer_count", "UINT32"}};
  for (const auto l : v.layers()) {
    const auto t = v.at(l);
    expect["directions"]["direction." + std::to_string(l)] =
        std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  std::ofstream(std::string(out) + "/steer-written.json") << expect.dump(1);
}
