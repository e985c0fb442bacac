// Reading and writing safetensors files (tensors by name plus string metadata), checked:
// a truncated or malformed file is a steer::Error naming the file and what is wrong.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"

namespace steer::io {

/// The contents of one safetensors file.
struct Safetensors {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`, or an error listing the names the file has.
  const torch::Tensor& at(const std::string& name) const;
};

/// Reads a safetensors file into CPU tensors. Example:
/// `auto file = steer::io::read_safetensors("vectors.safetensors"); file.at("direction.12");`
Safetensors read_safetensors(const std::string& path);

/// Writes CPU or CUDA tensors (copied to the host, made contiguous) and metadata.
void write_safetensors(const std::string& path, const Safetensors& contents);

namespace detail {

struct SafetensorsDtype {
  const char* name;
  torch::ScalarType type;
};

inline const std::vector<SafetensorsDtype>& safetensors_dtypes() {
  static const std::vector<SafetensorsDtype> dtypes = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
      {"I16", torch::kInt16}, {"I8", torch::kInt8}, {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  return dtypes;
}

inline torch::ScalarType safetensors_type(const std::string& name, const std::string& path) {
  std::string known;
  for (const auto& d : safetensors_dtypes()) {
    if (name == d.name) return d.type;
    known += std::string(known.empty() ? "" : ", ") + d.name;
  }
  throw Error(steer::detail::concat("read_safetensors: ", path, " has dtype '", name,
                                    "'; steer reads ", known));
}

inline const char* safetensors_name(torch::ScalarType type) {
  for (const auto& d : safetensors_dtypes()) {
    if (d.type == type) return d.name;
  }
  throw Error(steer::detail::concat("write_safetensors: tensors of dtype ", type,
                                    " cannot be written"));
}

}  // namespace detail

inline const torch::Tensor& Safetensors::at(const std::string& name) const {
  auto found = tensors.find(name);
  if (found == tensors.end()) {
    std::string names;
    for (const auto& [key, value] : tensors) names += (names.empty() ? "" : ", ") + key;
    throw Error(steer::detail::concat("Safetensors: no tensor '", name, "' (the file has: ",
                                      names, ")"));
  }
  return found->second;
}

inline Safetensors read_safetensors(const std::string& path) {
  using steer::detail::concat;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  STEER_CHECK(in.good(), "read_safetensors: cannot open ", path);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  STEER_CHECK(file_size >= 8, "read_safetensors: ", path, " has ", file_size,
              " bytes; a safetensors file has at least the 8-byte header length");
  uint64_t header_size = 0;
  unsigned char size_bytes[8];
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | size_bytes[i];
  STEER_CHECK(header_size <= file_size - 8, "read_safetensors: ", path, " declares a ",
              header_size, "-byte header but has only ", file_size - 8,
              " bytes after the length (truncated or not safetensors?)");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(concat("read_safetensors: the header of ", path, " is not valid JSON: ", e.what()));
  }
  STEER_CHECK(json.is_object(), "read_safetensors: the header of ", path,
              " is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_size;
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  STEER_CHECK(in.good() || data_size == 0, "read_safetensors: could not read ", path);

  Safetensors contents;
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      STEER_CHECK(entry.is_object(), "read_safetensors: __metadata__ of ", path,
                  " is not an object");
      for (const auto& [key, value] : entry.items()) {
        STEER_CHECK(value.is_string(), "read_safetensors: metadata '", key, "' of ", path,
                    " is not a string");
        contents.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    STEER_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                    entry.contains("data_offsets") && entry["dtype"].is_string() &&
                    entry["shape"].is_array() && entry["data_offsets"].is_array() &&
                    entry["data_offsets"].size() == 2,
                "read_safetensors: tensor '", name, "' in ", path,
                " lacks dtype, shape or data_offsets");
    const auto type = detail::safetensors_type(entry["dtype"].get<std::string>(), path);
    std::vector<int64_t> shape;
    uint64_t count = 1;
    for (const auto& dim : entry["shape"]) {
      STEER_CHECK(dim.is_number_unsigned(), "read_safetensors: tensor '", name, "' in ", path,
                  " has a shape entry that is not a non-negative integer: ", dim.dump());
      // Cap by the file size before multiplying: a corrupt shape must not overflow the count
      // (which could then pass the size check) or allocate more than the file holds.
      const auto extent = dim.get<uint64_t>();
      STEER_CHECK(extent <= file_size && (extent == 0 || count <= file_size / extent),
                  "read_safetensors: tensor '", name, "' in ", path, " has shape ",
                  entry["shape"].dump(), " which holds more values than the file has bytes (",
                  file_size, "; corrupt header?)");
      shape.push_back(static_cast<int64_t>(extent));
      count *= extent;
    }
    const auto& offsets = entry["data_offsets"];
    STEER_CHECK(offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
                "read_safetensors: tensor '", name, "' in ", path, " has bad data_offsets");
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    const uint64_t expected = count * torch::elementSize(type);
    STEER_CHECK(begin <= end && end <= data_size && end - begin == expected,
                "read_safetensors: tensor '", name, "' in ", path, " has data_offsets [", begin,
                ", ", end, ") but its shape and dtype need ", expected, " bytes within ",
                data_size, " bytes of data (truncated file?)");
    auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
    if (expected > 0) std::memcpy(tensor.data_ptr(), data.data() + begin, expected);
    contents.tensors.emplace(name, std::move(tensor));
  }
  return contents;
}

inline void write_safetensors(const std::string& path, const Safetensors& contents) {
  nlohmann::json header = nlohmann::json::object();
  if (!contents.metadata.empty()) header["__metadata__"] = contents.metadata;
  std::vector<torch::Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : contents.tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", detail::safetensors_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  STEER_CHECK(out.good(), "write_safetensors: cannot open ", path, " for writing");
  const uint64_t size = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((size >> (8 * i)) & 0xff));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : host) {
    out.write(static_cast<const char*>(t.data_ptr()),
              static_cast<std::streamsize>(t.numel() * t.element_size()));
  }
  STEER_CHECK(out.good(), "write_safetensors: could not write ", path);
}

}  // namespace steer::io
