// Test-only reader of the reference arrays written by fixtures/make_vec_fixtures.py:
// manifest.json names each raw little-endian row-major array's file, dtype and shape.
#pragma once

#include "test_support.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace vec_test {

inline std::string fixture_dir() {
  return steer::test::fixture_dir() + "/vec";
}

template <typename Scalar>
inline Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> load(const std::string& name) {
  const std::string dir = fixture_dir();
  std::ifstream manifest_file(dir + "/manifest.json");
  if (!manifest_file) throw std::runtime_error("cannot open " + dir + "/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
  const auto& entry = manifest.at(name);
  const std::string dtype = entry.at("dtype");
  const std::string expected = sizeof(Scalar) == 4 ? "float32" : "float64";
  if (dtype != expected) throw std::runtime_error(name + " is " + dtype + ", not " + expected);
  const std::vector<long> shape = entry.at("shape").get<std::vector<long>>();
  const long rows = shape.at(0);
  const long cols = shape.size() > 1 ? shape.at(1) : 1;
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> data(rows, cols);
  std::ifstream file(dir + "/" + entry.at("file").get<std::string>(), std::ios::binary);
  file.read(reinterpret_cast<char*>(data.data()),
            static_cast<std::streamsize>(sizeof(Scalar) * rows * cols));
  if (!file) throw std::runtime_error("short read of " + name);
  return data;
}

inline Eigen::MatrixXf load_f(const std::string& name) { return load<float>(name); }
inline Eigen::MatrixXd load_d(const std::string& name) { return load<double>(name); }
inline Eigen::VectorXd load_vd(const std::string& name) {
  Eigen::MatrixXd m = load<double>(name);
  return Eigen::Map<Eigen::VectorXd>(m.data(), m.size());
}
inline double load_scalar(const std::string& name) { return load<double>(name)(0, 0); }

/// |cos| between two vectors of any scalar type.
template <typename A, typename B>
inline double abs_cos(const A& a, const B& b) {
  const Eigen::VectorXd ad = a.template cast<double>();
  const Eigen::VectorXd bd = b.template cast<double>();
  return std::abs(ad.dot(bd)) / (ad.norm() * bd.norm());
}

}  // namespace vec_test

