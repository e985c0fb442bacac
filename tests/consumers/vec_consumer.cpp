// A program that uses only steer::vec (Eigen, no LibTorch): the mean difference of two small
// sets of activations, and the error a mismatched set gets.
#include <iostream>
#include <string>

#include <Eigen/Core>
#include <steer/vec/vec.hpp>

int main() {
  Eigen::MatrixXf positive(2, 3);
  positive << 1, 2, 3,
              3, 4, 5;
  Eigen::MatrixXf negative(1, 3);
  negative << 0, 1, 1;
  const Eigen::VectorXf direction = steer::vec::mean_difference(positive, negative);
  const Eigen::Vector3f expected(2, 2, 3);  // mean(positive) = (2, 3, 4)
  std::cout << "steer::vec mean difference: " << direction.transpose() << "\n";
  if (direction != expected) {
    std::cerr << "expected " << expected.transpose() << "\n";
    return 1;
  }

  try {
    steer::vec::mean_difference(positive, Eigen::MatrixXf::Ones(1, 4));
    std::cerr << "mean_difference accepted sets of d_model 3 and 4\n";
    return 1;
  } catch (const steer::Error& e) {
    const std::string message = e.what();
    std::cout << "mismatched sets: " << message << "\n";
    const std::string expected_start =
        "mean_difference: positive and negative must have the same d_model, got 3 and 4";
    return message.rfind(expected_start, 0) == 0 ? 0 : 1;
  }
}
