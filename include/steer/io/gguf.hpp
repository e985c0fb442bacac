// GGUF files (llama.cpp's container, versions 2 and 3): a checked reader and writer for metadata
// of every GGUF value type and for F32, F16 and BF16 tensors. Meant for small files such as
// control vectors: the reader reads the whole file into memory. Little-endian files only.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>
#include <torch/utils.h>

#include "steer/error.hpp"

namespace steer::io {

/// The GGUF metadata value types, with their numbers in the file.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

/// "uint8", ..., "float64"; "type N" for a number that is not a GGUF type.
inline std::string gguf_type_name(GgufType type) {
  static const char* const names[] = {"uint8",  "int8",   "uint16", "int16", "uint32",
                                      "int32",  "float32", "bool",  "string", "array",
                                      "uint64", "int64",  "float64"};
  const auto n = static_cast<uint32_t>(type);
  return n < 13 ? names[n] : steer::detail::concat("type ", n);
}

/// One GGUF metadata value: a number, bool or string, or an array of values of one type.
/// Example: `GgufValue::uint32(24)`, `GgufValue::array(GgufType::kString, {GgufValue::string("a")})`
class GgufValue {
 public:
  GgufValue() = default;  ///< uint32 0

  static GgufValue uint8(uint8_t v) { return unsigned_of(GgufType::kUint8, v); }
  static GgufValue int8(int8_t v) { return signed_of(GgufType::kInt8, v); }
  static GgufValue uint16(uint16_t v) { return unsigned_of(GgufType::kUint16, v); }
  static GgufValue int16(int16_t v) { return signed_of(GgufType::kInt16, v); }
  static GgufValue uint32(uint32_t v) { return unsigned_of(GgufType::kUint32, v); }
  static GgufValue int32(int32_t v) { return signed_of(GgufType::kInt32, v); }
  static GgufValue uint64(uint64_t v) { return unsigned_of(GgufType::kUint64, v); }
  static GgufValue int64(int64_t v) { return signed_of(GgufType::kInt64, v); }
  static GgufValue float32(float v) { return float_of(GgufType::kFloat32, v); }
  static GgufValue float64(double v) { return float_of(GgufType::kFloat64, v); }
  static GgufValue boolean(bool v) { return unsigned_of(GgufType::kBool, v ? 1 : 0); }
  static GgufValue string(std::string v) {
    GgufValue out;
    out.type_ = GgufType::kString;
    out.string_ = std::move(v);
    return out;
  }
  /// An array whose elements all have type `element_type` (checked).
  static GgufValue array(GgufType element_type, std::vector<GgufValue> elements);

  GgufType type() const { return type_; }
  /// The element type of an array.
  GgufType element_type() const { return element_type_; }

  /// The value of any integer type; `what` names the value in the error message.
  int64_t as_int(const std::string& what = "GgufValue") const;
  /// The value of an unsigned integer type (or a non-negative signed one), as uint64.
  uint64_t as_uint(const std::string& what = "GgufValue") const;
  /// The value of any integer or float type, as double.
  double as_double(const std::string& what = "GgufValue") const;
  bool as_bool(const std::string& what = "GgufValue") const;
  const std::string& as_string(const std::string& what = "GgufValue") const;
  const std::vector<GgufValue>& as_array(const std::string& what = "GgufValue") const;

  bool operator==(const GgufValue& other) const {
    return type_ == other.type_ && unsigned_ == other.unsigned_ && signed_ == other.signed_ &&
           (float_ == other.float_ || (float_ != float_ && other.float_ != other.float_)) &&
           string_ == other.string_ && element_type_ == other.element_type_ &&
           array_ == other.array_;
  }
  bool operator!=(const GgufValue& other) const { return !(*this == other); }

 private:
  static GgufValue unsigned_of(GgufType type, uint64_t v) {
    GgufValue out;
    out.type_ = type;
    out.unsigned_ = v;
    return out;
  }
  static GgufValue signed_of(GgufType type, int64_t v) {
    GgufValue out;
    out.type_ = type;
    out.signed_ = v;
    return out;
  }
  static GgufValue float_of(GgufType type, double v) {
    GgufValue out;
    out.type_ = type;
    out.float_ = v;
    return out;
  }
  bool is_unsigned() const {
    return type_ == GgufType::kUint8 || type_ == GgufType::kUint16 ||
           type_ == GgufType::kUint32 || type_ == GgufType::kUint64;
  }
  bool is_signed() const {
    return type_ == GgufType::kInt8 || type_ == GgufType::kInt16 || type_ == GgufType::kInt32 ||
           type_ == GgufType::kInt64;
  }

  GgufType type_ = GgufType::kUint32;
  uint64_t unsigned_ = 0;  // unsigned integers and bool
  int64_t signed_ = 0;     // signed integers
  double float_ = 0;       // float32 and float64
  std::string string_;
  GgufType element_type_ = GgufType::kUint8;
  std::vector<GgufValue> array_;
};

/// The contents of a GGUF file: metadata and tensors, both in file order. A tensor's torch
/// shape is the GGUF dims reversed (GGUF lists the fastest-varying dimension first), so a
/// row-major torch tensor [rows, cols] is stored with dims {cols, rows}; 1-D tensors agree.
struct Gguf {
  uint32_t version = 3;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;

  /// The value of `key`, or nullptr.
  const GgufValue* find(const std::string& key) const {
    for (const auto& [k, v] : metadata) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  /// The value of `key`, or an error listing the keys the file has.
  const GgufValue& at(const std::string& key) const;
  /// The tensor called `name`, or an error listing the names.
  const torch::Tensor& tensor(const std::string& name) const;
  /// Sets `key` (replacing an existing value in place, else appending).
  void set(const std::string& key, GgufValue value) {
    for (auto& [k, v] : metadata) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
    metadata.emplace_back(key, std::move(value));
  }
  /// `general.alignment` (uint32, a power of two), 32 when the file does not set it.
  uint64_t alignment(const std::string& call = "Gguf::alignment") const;
};

/// Reads a GGUF file; every count, length and offset is checked against the file size, so a
/// damaged file is a steer::Error, never a crash or a huge allocation. Example:
/// `auto file = steer::io::read_gguf("v.gguf"); file.at("general.architecture").as_string();`
Gguf read_gguf(const std::string& path);

/// Writes a GGUF file (F32, F16 or BF16 tensors, moved to the CPU and made contiguous).
void write_gguf(const std::string& path, const Gguf& contents);

// ----------------------------------------------------------------------------- implementation

inline GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> elements) {
  for (size_t i = 0; i < elements.size(); ++i) {
    STEER_CHECK(elements[i].type() == element_type, "GgufValue::array: expected elements of type ",
                gguf_type_name(element_type), " but element ", i, " has type ",
                gguf_type_name(elements[i].type()));
  }
  GgufValue out;
  out.type_ = GgufType::kArray;
  out.element_type_ = element_type;
  out.array_ = std::move(elements);
  return out;
}

inline int64_t GgufValue::as_int(const std::string& what) const {
  if (is_signed()) return signed_;
  STEER_CHECK(is_unsigned(), what, ": expected an integer, the value has type ",
              gguf_type_name(type_));
  STEER_CHECK(unsigned_ <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), what,
              ": the uint64 value ", unsigned_, " does not fit in int64");
  return static_cast<int64_t>(unsigned_);
}

inline uint64_t GgufValue::as_uint(const std::string& what) const {
  if (is_unsigned()) return unsigned_;
  STEER_CHECK(is_signed(), what, ": expected an integer, the value has type ",
              gguf_type_name(type_));
  STEER_CHECK(signed_ >= 0, what, ": expected a non-negative integer, the value is ", signed_);
  return static_cast<uint64_t>(signed_);
}

inline double GgufValue::as_double(const std::string& what) const {
  if (type_ == GgufType::kFloat32 || type_ == GgufType::kFloat64) return float_;
  if (is_signed()) return static_cast<double>(signed_);
  STEER_CHECK(is_unsigned(), what, ": expected a number, the value has type ",
              gguf_type_name(type_));
  return static_cast<double>(unsigned_);
}

inline bool GgufValue::as_bool(const std::string& what) const {
  STEER_CHECK(type_ == GgufType::kBool, what, ": expected a bool, the value has type ",
              gguf_type_name(type_));
  return unsigned_ != 0;
}

inline const std::string& GgufValue::as_string(const std::string& what) const {
  STEER_CHECK(type_ == GgufType::kString, what, ": expected a string, the value has type ",
              gguf_type_name(type_));
  return string_;
}

inline const std::vector<GgufValue>& GgufValue::as_array(const std::string& what) const {
  STEER_CHECK(type_ == GgufType::kArray, what, ": expected an array, the value has type ",
              gguf_type_name(type_));
  return array_;
}

inline const GgufValue& Gguf::at(const std::string& key) const {
  if (const auto* value = find(key)) return *value;
  std::string keys;
  for (const auto& [k, v] : metadata) keys += (keys.empty() ? "" : ", ") + k;
  throw Error(steer::detail::concat("Gguf: no metadata key '", key, "' (the file has: ", keys,
                                    ")"));
}

inline const torch::Tensor& Gguf::tensor(const std::string& name) const {
  std::string names;
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
    names += (names.empty() ? "" : ", ") + n;
  }
  throw Error(steer::detail::concat("Gguf: no tensor '", name, "' (the file has: ", names, ")"));
}

inline uint64_t Gguf::alignment(const std::string& call) const {
  const auto* value = find("general.alignment");
  if (value == nullptr) return 32;
  STEER_CHECK(value->type() == GgufType::kUint32, call,
              ": general.alignment must be a uint32, it has type ",
              gguf_type_name(value->type()));
  const auto a = static_cast<uint64_t>(value->as_int());
  STEER_CHECK(a != 0 && (a & (a - 1)) == 0, call,
              ": general.alignment must be a power of two, it is ", a);
  return a;
}

namespace detail {

/// ggml tensor types steer reads and writes.
struct GgmlType {
  uint32_t id;
  const char* name;
  torch::ScalarType dtype;
};

inline const std::vector<GgmlType>& ggml_types() {
  static const std::vector<GgmlType> types = {
      {0, "F32", torch::kFloat32}, {1, "F16", torch::kFloat16}, {30, "BF16", torch::kBFloat16}};
  return types;
}

/// Reads little-endian values from a byte string, every read checked against its end.
class GgufCursor {
 public:
  GgufCursor(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  void need(uint64_t n, const std::string& what) const {
    STEER_CHECK(n <= remaining(), "read_gguf: ", path_, " is truncated or corrupt: ", what,
                " needs ", n, " bytes at offset ", pos_, " but the file has ", bytes_.size(),
                " bytes");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string string(const std::string& what) {
    const auto length = read<uint64_t>(what + " (length)");
    need(length, steer::detail::concat(what, " (a string of ", length, " bytes)"));
    std::string out = bytes_.substr(pos_, length);
    pos_ += length;
    return out;
  }

 private:
  const std::string& bytes_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

/// The fewest bytes one value of `type` takes in a file (to cap counts by the file size).
inline uint64_t gguf_min_size(GgufType type) {
  switch (type) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kArray: return 12;
    default: return 8;  // 64-bit numbers, string length
  }
}

inline GgufType gguf_type_from(uint32_t raw, const std::string& what, const std::string& path) {
  STEER_CHECK(raw <= 12, "read_gguf: ", path, ": ", what, " has value type ", raw,
              "; GGUF value types are 0 to 12 (corrupt file?)");
  return static_cast<GgufType>(raw);
}

inline GgufValue read_gguf_value(GgufCursor& in, GgufType type, const std::string& what,
                                 const std::string& path, int depth) {
  switch (type) {
    case GgufType::kUint8: return GgufValue::uint8(in.read<uint8_t>(what));
    case GgufType::kInt8: return GgufValue::int8(in.read<int8_t>(what));
    case GgufType::kUint16: return GgufValue::uint16(in.read<uint16_t>(what));
    case GgufType::kInt16: return GgufValue::int16(in.read<int16_t>(what));
    case GgufType::kUint32: return GgufValue::uint32(in.read<uint32_t>(what));
    case GgufType::kInt32: return GgufValue::int32(in.read<int32_t>(what));
    case GgufType::kUint64: return GgufValue::uint64(in.read<uint64_t>(what));
    case GgufType::kInt64: return GgufValue::int64(in.read<int64_t>(what));
    case GgufType::kFloat32: return GgufValue::float32(in.read<float>(what));
    case GgufType::kFloat64: return GgufValue::float64(in.read<double>(what));
    case GgufType::kBool: {
      const auto b = in.read<uint8_t>(what);
      STEER_CHECK(b <= 1, "read_gguf: ", path, ": ", what, " is a bool stored as ",
                  static_cast<int>(b), "; expected 0 or 1 (corrupt file?)");
      return GgufValue::boolean(b != 0);
    }
    case GgufType::kString: return GgufValue::string(in.string(what));
    case GgufType::kArray: {
      STEER_CHECK(depth < 8, "read_gguf: ", path, ": ", what,
                  " nests arrays more than 8 deep (corrupt file?)");
      const auto element = gguf_type_from(in.read<uint32_t>(what + " (array type)"),
                                          what + " (array)", path);
      const auto count = in.read<uint64_t>(what + " (array length)");
      const auto most = in.remaining() / gguf_min_size(element);
      STEER_CHECK(count <= most, "read_gguf: ", path, ": ", what, " declares an array of ", count,
                  " ", gguf_type_name(element), " values but the ", in.remaining(),
                  " bytes left can hold at most ", most, " (truncated or corrupt file?)");
      std::vector<GgufValue> elements;
      elements.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        elements.push_back(read_gguf_value(in, element, what, path, depth + 1));
      }
      return GgufValue::array(element, std::move(elements));
    }
  }
  throw Error(steer::detail::concat("read_gguf: ", path, ": ", what, " has an unknown type"));
}

inline void write_gguf_value(std::string& out, const GgufValue& v);

template <typename T>
void gguf_put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

inline void gguf_put_string(std::string& out, const std::string& s) {
  gguf_put<uint64_t>(out, s.size());
  out += s;
}

inline void write_gguf_value(std::string& out, const GgufValue& v) {
  switch (v.type()) {
    case GgufType::kUint8: gguf_put<uint8_t>(out, static_cast<uint8_t>(v.as_int())); break;
    case GgufType::kInt8: gguf_put<int8_t>(out, static_cast<int8_t>(v.as_int())); break;
    case GgufType::kUint16: gguf_put<uint16_t>(out, static_cast<uint16_t>(v.as_int())); break;
    case GgufType::kInt16: gguf_put<int16_t>(out, static_cast<int16_t>(v.as_int())); break;
    case GgufType::kUint32: gguf_put<uint32_t>(out, static_cast<uint32_t>(v.as_int())); break;
    case GgufType::kInt32: gguf_put<int32_t>(out, static_cast<int32_t>(v.as_int())); break;
    case GgufType::kUint64: gguf_put<uint64_t>(out, v.as_uint()); break;
    case GgufType::kInt64: gguf_put<int64_t>(out, v.as_int()); break;
    case GgufType::kFloat32: gguf_put<float>(out, static_cast<float>(v.as_double())); break;
    case GgufType::kFloat64: gguf_put<double>(out, v.as_double()); break;
    case GgufType::kBool: gguf_put<uint8_t>(out, v.as_bool() ? 1 : 0); break;
    case GgufType::kString: gguf_put_string(out, v.as_string()); break;
    case GgufType::kArray:
      gguf_put<uint32_t>(out, static_cast<uint32_t>(v.element_type()));
      gguf_put<uint64_t>(out, v.as_array().size());
      for (const auto& e : v.as_array()) write_gguf_value(out, e);
      break;
  }
}

inline uint64_t gguf_align(uint64_t offset, uint64_t alignment) {
  return offset + (alignment - offset % alignment) % alignment;
}

}  // namespace detail

inline Gguf read_gguf(const std::string& path) {
  using steer::detail::concat;
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  STEER_CHECK(file.good(), "read_gguf: cannot open ", path);
  const auto size = static_cast<std::streamoff>(file.tellg());
  STEER_CHECK(size >= 0, "read_gguf: cannot read the size of ", path);
  std::string bytes(static_cast<size_t>(size), '\0');
  file.seekg(0);
  file.read(bytes.data(), size);
  STEER_CHECK(file.good() || size == 0, "read_gguf: could not read ", path);

  detail::GgufCursor in(bytes, path);
  STEER_CHECK(bytes.size() >= 4 && bytes.compare(0, 4, "GGUF") == 0, "read_gguf: ", path,
              " does not start with the magic 'GGUF' (not a GGUF file?)");
  in.read<uint32_t>("magic");
  Gguf out;
  out.version = in.read<uint32_t>("the version");
  STEER_CHECK(out.version != 0x02000000u && out.version != 0x03000000u, "read_gguf: ", path,
              " is a big-endian GGUF file; steer reads little-endian files");
  STEER_CHECK(out.version == 2 || out.version == 3, "read_gguf: ", path, " has GGUF version ",
              out.version, "; steer reads versions 2 and 3");
  const auto n_tensors = in.read<uint64_t>("the tensor count");
  const auto n_kv = in.read<uint64_t>("the metadata count");
  // Each entry takes at least its minimal size: counts beyond what the file can hold are corrupt.
  STEER_CHECK(n_kv <= in.remaining() / 13, "read_gguf: ", path, " declares ", n_kv,
              " metadata entries but its ", bytes.size(), " bytes can hold at most ",
              in.remaining() / 13, " (corrupt count?)");
  STEER_CHECK(n_tensors <= in.remaining() / 24, "read_gguf: ", path, " declares ", n_tensors,
              " tensors but its ", bytes.size(), " bytes can hold at most ",
              in.remaining() / 24, " (corrupt count?)");

  out.metadata.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const auto key = in.string(concat("metadata key ", i));
    STEER_CHECK(out.find(key) == nullptr, "read_gguf: ", path, " has metadata key '", key,
                "' twice");
    const auto what = concat("metadata '", key, "'");
    const auto type = detail::gguf_type_from(in.read<uint32_t>(what + " (type)"), what, path);
    out.metadata.emplace_back(key, detail::read_gguf_value(in, type, what, path, 0));
  }
  const auto alignment = out.alignment(concat("read_gguf: ", path));

  struct Info {
    std::string name;
    std::vector<int64_t> shape;  // torch order
    torch::ScalarType dtype;
    uint64_t offset;
    uint64_t bytes;
  };
  std::vector<Info> infos;
  infos.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info info;
    info.name = in.string(concat("tensor name ", i));
    for (const auto& other : infos) {
      STEER_CHECK(other.name != info.name, "read_gguf: ", path, " has tensor '", info.name,
                  "' twice");
    }
    const auto what = concat("tensor '", info.name, "'");
    const auto n_dims = in.read<uint32_t>(what + " (dimension count)");
    STEER_CHECK(n_dims >= 1 && n_dims <= 4, "read_gguf: ", path, ": ", what, " has ", n_dims,
                " dimensions; GGUF tensors have 1 to 4 (corrupt file?)");
    uint64_t elements = 1;
    std::vector<int64_t> dims;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = in.read<uint64_t>(what + " (dimension)");
      STEER_CHECK(dim <= bytes.size() && (dim == 0 || elements <= bytes.size() / dim),
                  "read_gguf: ", path, ": ", what, " has dimension ", dim,
                  " which makes it larger than the whole file (", bytes.size(),
                  " bytes; corrupt file?)");
      elements *= dim;
      dims.push_back(static_cast<int64_t>(dim));
    }
    info.shape.assign(dims.rbegin(), dims.rend());
    const auto type = in.read<uint32_t>(what + " (type)");
    const detail::GgmlType* ggml = nullptr;
    for (const auto& t : detail::ggml_types()) {
      if (t.id == type) ggml = &t;
    }
    STEER_CHECK(ggml != nullptr, "read_gguf: ", path, ": ", what, " has ggml type ", type,
                "; steer reads F32 (0), F16 (1) and BF16 (30) tensors (hint: dequantize it)");
    info.dtype = ggml->dtype;
    info.bytes = elements * torch::elementSize(info.dtype);
    info.offset = in.read<uint64_t>(what + " (offset)");
    STEER_CHECK(info.offset % alignment == 0, "read_gguf: ", path, ": ", what, " has offset ",
                info.offset, " which is not a multiple of the alignment ", alignment);
    infos.push_back(std::move(info));
  }

  if (!infos.empty()) {
    const uint64_t data_start = detail::gguf_align(in.position(), alignment);
    STEER_CHECK(data_start <= bytes.size(), "read_gguf: ", path,
                " is truncated: its tensor data should start at offset ", data_start,
                " but the file has ", bytes.size(), " bytes");
    const uint64_t data_size = bytes.size() - data_start;
    for (const auto& info : infos) {
      STEER_CHECK(info.offset <= data_size && info.bytes <= data_size - info.offset,
                  "read_gguf: ", path, ": tensor '", info.name, "' needs bytes [", info.offset,
                  ", ", info.offset + info.bytes, ") of the data section but it has ",
                  data_size, " bytes (truncated file?)");
      auto tensor = torch::empty(info.shape, torch::TensorOptions().dtype(info.dtype));
      if (info.bytes > 0) {
        std::memcpy(tensor.data_ptr(), bytes.data() + data_start + info.offset, info.bytes);
      }
      out.tensors.emplace_back(info.name, std::move(tensor));
    }
  }
  return out;
}

inline void write_gguf(const std::string& path, const Gguf& contents) {
  using steer::detail::concat;
  STEER_CHECK(contents.version == 2 || contents.version == 3, "write_gguf: ", path,
              ": version ", contents.version, " requested; steer writes GGUF versions 2 and 3");
  const auto alignment = contents.alignment("write_gguf");
  std::string out;
  out += "GGUF";
  detail::gguf_put<uint32_t>(out, contents.version);
  detail::gguf_put<uint64_t>(out, contents.tensors.size());
  detail::gguf_put<uint64_t>(out, contents.metadata.size());
  for (size_t i = 0; i < contents.metadata.size(); ++i) {
    const auto& [key, value] = contents.metadata[i];
    STEER_CHECK(!key.empty(), "write_gguf: metadata entry ", i, " has an empty key");
    for (size_t j = 0; j < i; ++j) {
      STEER_CHECK(contents.metadata[j].first != key, "write_gguf: metadata key '", key,
                  "' appears twice");
    }
    detail::gguf_put_string(out, key);
    detail::gguf_put<uint32_t>(out, static_cast<uint32_t>(value.type()));
    detail::write_gguf_value(out, value);
  }
  std::vector<torch::Tensor> host;
  uint64_t offset = 0;
  for (size_t i = 0; i < contents.tensors.size(); ++i) {
    const auto& [name, tensor] = contents.tensors[i];
    STEER_CHECK(!name.empty() && name.size() < 64, "write_gguf: tensor name '", name, "' has ",
                name.size(), " bytes; GGUF (ggml) names have 1 to 63");
    for (size_t j = 0; j < i; ++j) {
      STEER_CHECK(contents.tensors[j].first != name, "write_gguf: tensor '", name,
                  "' appears twice");
    }
    STEER_CHECK(tensor.defined() && tensor.dim() >= 1 && tensor.dim() <= 4, "write_gguf: tensor '",
                name, "' must have 1 to 4 dimensions, it has shape ",
                tensor.defined() ? concat(tensor.sizes()) : std::string("(undefined)"));
    const detail::GgmlType* ggml = nullptr;
    for (const auto& t : detail::ggml_types()) {
      if (t.dtype == tensor.scalar_type()) ggml = &t;
    }
    STEER_CHECK(ggml != nullptr, "write_gguf: tensor '", name, "' has dtype ",
                tensor.scalar_type(),
                "; steer writes float32, float16 and bfloat16 (hint: .to(torch::kFloat32))");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    detail::gguf_put_string(out, name);
    detail::gguf_put<uint32_t>(out, static_cast<uint32_t>(t.dim()));
    for (int64_t d = t.dim() - 1; d >= 0; --d) detail::gguf_put<uint64_t>(out, t.size(d));
    detail::gguf_put<uint32_t>(out, ggml->id);
    detail::gguf_put<uint64_t>(out, offset);
    offset = detail::gguf_align(offset + t.numel() * t.element_size(), alignment);
    host.push_back(std::move(t));
  }
  if (!host.empty()) out.append(detail::gguf_align(out.size(), alignment) - out.size(), '\0');
  for (const auto& t : host) {
    const auto bytes = static_cast<uint64_t>(t.numel() * t.element_size());
    out.append(static_cast<const char*>(t.data_ptr()), bytes);
    out.append(detail::gguf_align(bytes, alignment) - bytes, '\0');
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  STEER_CHECK(file.good(), "write_gguf: cannot open ", path, " for writing");
  file.write(out.data(), static_cast<std::streamsize>(out.size()));
  STEER_CHECK(file.good(), "write_gguf: could not write ", path);
}

}  // namespace steer::io
