// Principal components of contrastive activations: pca_diff (PCA of paired differences),
// pca_center (PCA of pair-centred activations) and plain pca, exact or iterative, each
// component oriented so that the mean difference projects positively on it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "steer/error.hpp"
#include "steer/vec/accumulator.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// How PCA finds its components.
/// - `exact`: symmetric eigensolver on the Gram matrix X X^T (N < d) or on X^T X (N >= d).
/// - `iterative`: Lanczos with full re-orthogonalization on the same operator, from a seeded
///   start vector; stops when every top-k Ritz pair has residual <= tolerance * largest
///   eigenvalue. Assumes the top-k eigenvalues are distinct (exact handles any spectrum).
/// - `automatic`: `exact` when min(N, d) <= 64 or k > min(N, d) / 4, otherwise `iterative`.
enum class PcaMethod { automatic, exact, iterative };

/// Options of pca, pca_diff and pca_center.
/// Example: `steer::vec::PcaOptions().k(3).center(true).method(steer::vec::PcaMethod::exact)`
class PcaOptions {
 public:
  PcaOptions() = default;

  /// Number of components, 1 <= k <= rank of the data. Default 1.
  PcaOptions& k(int value) { k_ = value; return *this; }
  int k() const { return k_; }

  /// Subtract the column mean of the rows before the decomposition. Default false: the
  /// components are those of the second moment, so a consistent mean difference stays in the
  /// data and dominates the first component (see docs/vectors.md, "Centring").
  PcaOptions& center(bool value) { center_ = value; return *this; }
  bool center() const { return center_; }

  PcaOptions& method(PcaMethod value) { method_ = value; return *this; }
  PcaMethod method() const { return method_; }

  /// Iterative method: most Lanczos steps before steer::Error. Default 300.
  PcaOptions& max_iterations(int value) { max_iterations_ = value; return *this; }
  int max_iterations() const { return max_iterations_; }

  /// Iterative method: stop when each Ritz residual |X^T X v - l v| <= tolerance * l_max.
  /// Default 1e-9 (angle error ~ tolerance * l_max / eigengap).
  PcaOptions& tolerance(double value) { tolerance_ = value; return *this; }
  double tolerance() const { return tolerance_; }

  /// Iterative method: seed of the start vector (std::mt19937_64, portable). Default 0x5eed.
  PcaOptions& seed(std::uint64_t value) { seed_ = value; return *this; }
  std::uint64_t seed() const { return seed_; }

 private:
  int k_ = 1;
  bool center_ = false;
  PcaMethod method_ = PcaMethod::automatic;
  int max_iterations_ = 300;
  double tolerance_ = 1e-9;
  std::uint64_t seed_ = 0x5eed;
};

/// Top-k principal components.
struct PcaResult {
  /// k x d_model, unit rows in decreasing order of variance, each oriented so that the mean
  /// difference (for pca: the mean row) has a positive projection on it.
  Eigen::MatrixXf components;
  /// Eigenvalues of the covariance (centred: sum of squares / (N - 1), as NumPy and
  /// scikit-learn) or of the second moment (uncentred: sum of squares / N).
  Eigen::VectorXd explained_variance;
  /// Eigenvalue / trace: the share of the total (centred or uncentred) sum of squares.
  Eigen::VectorXd explained_variance_ratio;
  /// The column mean subtracted before the decomposition (zeros when center is false).
  Eigen::VectorXd mean;
  /// The method used (never automatic) and, for iterative, the Lanczos steps taken.
  PcaMethod method = PcaMethod::exact;
  int iterations = 0;

  /// The first component as a vector.
  Eigen::VectorXf direction() const { return components.row(0).transpose(); }
};

namespace detail {

/// Eigenvalues of X^T X below this fraction of the largest count as zero (rank deficiency).
inline constexpr double kPcaRankTolerance = 1e-10;

/// Uniform in [-1, 1) from the raw 64-bit output: identical on every standard library.
inline double uniform_pm1(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-52 - 1.0;
}

/// Top-k eigenpairs (descending) of the symmetric operator u -> X (X^T u) (gram) or
/// u -> X^T (X u), by Lanczos with full re-orthogonalization. Returns the Ritz values and the
/// Ritz vectors (columns) in the operator's space, and the number of steps.
inline int lanczos_top(const char* call, const Eigen::MatrixXd& x, bool gram, int k,
                       const PcaOptions& options, double scale, Eigen::VectorXd& values,
                       Eigen::MatrixXd& vectors) {
  const Eigen::Index m = gram ? x.rows() : x.cols();
  const Eigen::Index max_steps = std::min<Eigen::Index>(m, options.max_iterations());
  std::mt19937_64 rng(options.seed());
  Eigen::MatrixXd basis(m, max_steps);
  std::vector<double> alpha;
  std::vector<double> beta;  // beta[j] couples basis j and j + 1
  Eigen::VectorXd w(m);
  Eigen::VectorXd tmp(gram ? x.cols() : x.rows());

  auto random_start = [&](Eigen::Index j) {
    // A seeded random unit vector orthogonal to basis columns 0..j-1.
    for (int attempt = 0; attempt < 8; ++attempt) {
      for (Eigen::Index i = 0; i < m; ++i) w(i) = uniform_pm1(rng);
      for (int pass = 0; pass < 2 && j > 0; ++pass) {
        const Eigen::VectorXd c = basis.leftCols(j).transpose() * w;
        w.noalias() -= basis.leftCols(j) * c;
      }
      const double length = w.norm();
      if (length > 1e-8) {
        basis.col(j) = w / length;
        return;
      }
    }
    throw Error(steer::detail::concat(call, ": internal error: no random start vector "
                                      "orthogonal to ", j, " Lanczos vectors in dimension ", m));
  };

  random_start(0);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> tri;
  const double breakdown = 1e-12 * scale;
  double worst_residual = 0.0;
  for (Eigen::Index j = 0; j < max_steps; ++j) {
    if (gram) {
      tmp.noalias() = x.transpose() * basis.col(j);
      w.noalias() = x * tmp;
    } else {
      tmp.noalias() = x * basis.col(j);
      w.noalias() = x.transpose() * tmp;
    }
    // Full orthogonalization against every basis vector, twice ("twice is enough").
    double a = 0.0;
    for (int pass = 0; pass < 2; ++pass) {
      const Eigen::VectorXd c = basis.leftCols(j + 1).transpose() * w;
      w.noalias() -= basis.leftCols(j + 1) * c;
      a += c(j);
    }
    alpha.push_back(a);
    const double b = w.norm();
    const Eigen::Index size = j + 1;
    const bool exhausted = size == m;
    const bool broke_down = b <= breakdown;

    if (size >= k && (!broke_down || exhausted)) {
      Eigen::VectorXd diag = Eigen::Map<const Eigen::VectorXd>(alpha.data(), size);
      Eigen::VectorXd sub = size > 1 ? Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(
                                           beta.data(), size - 1))
                                     : Eigen::VectorXd();
      tri.computeFromTridiagonal(diag, sub, Eigen::ComputeEigenvectors);
      const Eigen::VectorXd& theta = tri.eigenvalues();  // ascending
      const double top = std::max(theta(size - 1), 0.0);
      worst_residual = 0.0;
      for (int i = 0; i < k; ++i) {
        const double residual = b * std::abs(tri.eigenvectors()(size - 1, size - 1 - i));
        worst_residual = std::max(worst_residual, residual);
      }
      if (exhausted || worst_residual <= options.tolerance() * top) {
        values.resize(k);
        Eigen::MatrixXd s(size, k);
        for (int i = 0; i < k; ++i) {
          values(i) = theta(size - 1 - i);
          s.col(i) = tri.eigenvectors().col(size - 1 - i);
        }
        vectors = basis.leftCols(size) * s;
        return static_cast<int>(size);
      }
    }
    if (j + 1 == max_steps) break;
    if (broke_down) {
      // Invariant subspace found: restart with a new direction (decoupled block of T).
      beta.push_back(0.0);
      random_start(j + 1);
    } else {
      beta.push_back(b);
      basis.col(j + 1) = w / b;
    }
  }
  throw Error(steer::detail::concat(
      call, ": iterative PCA did not converge in max_iterations=", options.max_iterations(),
      " Lanczos steps: expected Ritz residuals <= tolerance=", options.tolerance(),
      " of the largest eigenvalue, got ", worst_residual,
      " (hint: raise PcaOptions::max_iterations, or use PcaMethod::exact; near-equal top "
      "eigenvalues converge slowly and make the components ill-defined)"));
}

/// Fills `result`'s components, explained variance and ratio from the top eigenpairs of the
/// (centred or uncentred) second moment: `values` (descending) and `directions` (d x k columns,
/// any norm), `total` its trace, `dof` the divisor of the variance. Refuses a k beyond the
/// numerical rank; orients each component so that `orient` projects positively on it.
inline void finish_components(const char* call, PcaResult& result, const Eigen::VectorXd& values,
                              const Eigen::MatrixXd& directions, double total, double dof,
                              const Eigen::VectorXd& orient, bool centred) {
  const auto k = static_cast<int>(values.size());
  const Eigen::Index d = directions.rows();
  const double largest = values(0);
  for (int i = 0; i < k; ++i) {
    STEER_CHECK(values(i) > kPcaRankTolerance * largest, call, ": k=", k,
                " exceeds the numerical rank of the ", (centred ? "centred " : ""),
                "data: expected component ", i, " to have an eigenvalue above ",
                kPcaRankTolerance, " of the largest (", largest, "), got ", values(i),
                " (hint: lower k; the data spans only ", i, " direction", (i == 1 ? "" : "s"),
                ")");
  }

  result.components.resize(k, d);
  result.explained_variance.resize(k);
  result.explained_variance_ratio.resize(k);
  const double orient_norm = orient.norm();
  for (int i = 0; i < k; ++i) {
    Eigen::VectorXd v = directions.col(i);
    v.normalize();
    const double projection = v.dot(orient);
    if (std::abs(projection) > 1e-12 * orient_norm) {
      if (projection < 0.0) v = -v;
    } else {
      // Mean difference orthogonal to the component: make its largest entry positive.
      Eigen::Index at = 0;
      v.cwiseAbs().maxCoeff(&at);
      if (v(at) < 0.0) v = -v;
    }
    result.components.row(i) = v.cast<float>().transpose();
    result.explained_variance(i) = values(i) / dof;
    result.explained_variance_ratio(i) = values(i) / total;
  }
}

/// PCA of rows given only through their d x d second moment `moment` (sum of x x^T over the
/// `n` rows; the scatter about the mean when options.center()), by the exact symmetric
/// eigensolver: the streaming form of pca_rows, for rows that were never kept.
inline PcaResult pca_moment(const char* call, const Eigen::MatrixXd& moment, Eigen::Index n,
                            const Eigen::VectorXd& orient, const Eigen::VectorXd& mean,
                            const PcaOptions& options) {
  const Eigen::Index d = moment.rows();
  const int k = options.k();
  STEER_CHECK(options.method() != PcaMethod::iterative, call, ": PcaMethod::iterative works "
              "on the rows, but streamed rows are summarized by their ", d, " x ", d,
              " second moment, which is solved exactly (hint: leave PcaOptions::method at "
              "automatic or exact)");
  const Eigen::Index max_rank = std::min(options.center() ? n - 1 : n, d);
  STEER_CHECK(k >= 1 && k <= max_rank, call, ": k must be in [1, ", max_rank, "] for ", n,
              (options.center() ? " centred" : ""), " rows of d_model=", d, ", got k=", k);
  const double total = moment.trace();
  STEER_CHECK(total > 0.0, call, ": the ", (options.center() ? "centred " : ""),
              "data is all zeros (", n, " rows of d_model=", d,
              "), so it has no principal components (hint: identical positive and negative "
              "activations?)");
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(moment);
  STEER_CHECK(solver.info() == Eigen::Success, call, ": the symmetric eigensolver did not "
              "converge on the ", d, " x ", d, " matrix");
  Eigen::VectorXd values(k);
  Eigen::MatrixXd vectors(d, k);
  for (int i = 0; i < k; ++i) {
    values(i) = solver.eigenvalues()(d - 1 - i);
    vectors.col(i) = solver.eigenvectors().col(d - 1 - i);
  }
  PcaResult result;
  result.mean = options.center() ? mean : Eigen::VectorXd(Eigen::VectorXd::Zero(d));
  result.method = PcaMethod::exact;
  const double dof = options.center() ? static_cast<double>(n - 1) : static_cast<double>(n);
  finish_components(call, result, values, vectors, total, dof, orient, options.center());
  return result;
}

/// PCA of the rows of `x` (float64, consumed), components oriented by `orient`.
inline PcaResult pca_rows(const char* call, Eigen::MatrixXd x, const Eigen::VectorXd& orient,
                          const PcaOptions& options) {
  const Eigen::Index n = x.rows();
  const Eigen::Index d = x.cols();
  const int k = options.k();
  STEER_CHECK(options.tolerance() > 0.0 && options.tolerance() < 1.0, call,
              ": PcaOptions::tolerance must be in (0, 1), got ", options.tolerance());
  STEER_CHECK(options.max_iterations() >= 1, call,
              ": PcaOptions::max_iterations must be >= 1, got ", options.max_iterations());
  const Eigen::Index max_rank = std::min(options.center() ? n - 1 : n, d);
  STEER_CHECK(k >= 1 && k <= max_rank, call, ": k must be in [1, ", max_rank,
              "] for ", n, (options.center() ? " centred" : ""), " rows of d_model=", d,
              ", got k=", k,
              (options.center() ? " (hint: centring removes one degree of freedom: rank <= N - 1)"
                                : " (hint: the rank of N rows is at most min(N, d_model))"));

  PcaResult result;
  result.mean = Eigen::VectorXd::Zero(d);
  if (options.center()) {
    result.mean = x.colwise().mean().transpose();
    x.rowwise() -= result.mean.transpose();
  }
  const double total = x.squaredNorm();
  STEER_CHECK(total > 0.0, call, ": the ", (options.center() ? "centred " : ""),
              "data is all zeros (", n, " rows of d_model=", d,
              "), so it has no principal components (hint: identical positive and negative "
              "activations?)");

  const bool gram = n < d;
  PcaMethod method = options.method();
  if (method == PcaMethod::automatic) {
    const Eigen::Index m = std::min(n, d);
    method = (m <= 64 || k > m / 4) ? PcaMethod::exact : PcaMethod::iterative;
  }
  result.method = method;

  Eigen::VectorXd values;
  Eigen::MatrixXd vectors;  // columns in the operator's space (R^N for gram, else R^d)
  if (method == PcaMethod::exact) {
    const Eigen::Index m = gram ? n : d;
    Eigen::MatrixXd g = Eigen::MatrixXd::Zero(m, m);
    if (gram) {
      g.selfadjointView<Eigen::Lower>().rankUpdate(x);
    } else {
      g.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(g);
    STEER_CHECK(solver.info() == Eigen::Success, call,
                ": the symmetric eigensolver did not converge on the ", m, " x ", m,
                " matrix (hint: try PcaMethod::iterative)");
    values.resize(k);
    vectors.resize(m, k);
    for (int i = 0; i < k; ++i) {
      values(i) = solver.eigenvalues()(m - 1 - i);
      vectors.col(i) = solver.eigenvectors().col(m - 1 - i);
    }
  } else {
    result.iterations = lanczos_top(call, x, gram, k, options, total, values, vectors);
  }

  const double dof = options.center() ? static_cast<double>(n - 1) : static_cast<double>(n);
  Eigen::MatrixXd directions(d, k);
  for (int i = 0; i < k; ++i) {
    directions.col(i) = gram ? Eigen::VectorXd(x.transpose() * vectors.col(i))
                             : Eigen::VectorXd(vectors.col(i));
  }
  finish_components(call, result, values, directions, total, dof, orient, options.center());
  return result;
}

}  // namespace detail

/// PCA of the rows of `rows`; components oriented so that the mean row projects positively.
/// Example: `auto r = steer::vec::pca(x, steer::vec::PcaOptions().k(2).center(true));`
inline PcaResult pca(const RowsRef& rows, const PcaOptions& options = PcaOptions()) {
  detail::check_rows("pca", "rows", rows);
  Eigen::MatrixXd x = rows.cast<double>();
  const Eigen::VectorXd orient = x.colwise().mean().transpose();
  return detail::pca_rows("pca", std::move(x), orient, options);
}

/// PCA of the paired differences `positive.row(i) - negative.row(i)` (repeng's and llama.cpp's
/// pca_diff). Not centred unless `options.center(true)`; components oriented so that the mean
/// difference projects positively.
/// Example: `Eigen::VectorXf v = steer::vec::pca_diff(pos, neg).direction();`
inline PcaResult pca_diff(const RowsRef& positive, const RowsRef& negative,
                          const PcaOptions& options = PcaOptions()) {
  detail::check_rows("pca_diff", "positive", positive);
  detail::check_rows("pca_diff", "negative", negative);
  detail::check_same_d("pca_diff", "positive", positive.cols(), "negative", negative.cols());
  STEER_CHECK(positive.rows() == negative.rows(),
              "pca_diff: positive and negative must hold the same number of pairs, got ",
              positive.rows(), " and ", negative.rows(),
              " rows (hint: row i of each set is one contrastive pair)");
  Eigen::MatrixXd x = positive.cast<double>() - negative.cast<double>();
  const Eigen::VectorXd orient = x.colwise().mean().transpose();
  return detail::pca_rows("pca_diff", std::move(x), orient, options);
}

/// PCA of the 2N pair-centred activations `positive.row(i) - c_i` and `negative.row(i) - c_i`,
/// c_i the pair's mean (repeng's pca_center). These rows are +-(p_i - n_i)/2, so the
/// components equal those of uncentred pca_diff (explained_variance is 1/4 of it; rows already
/// have mean zero, so `center` changes only the N - 1 vs N divisor). Oriented by the mean
/// difference.
inline PcaResult pca_center(const RowsRef& positive, const RowsRef& negative,
                            const PcaOptions& options = PcaOptions()) {
  detail::check_rows("pca_center", "positive", positive);
  detail::check_rows("pca_center", "negative", negative);
  detail::check_same_d("pca_center", "positive", positive.cols(), "negative", negative.cols());
  STEER_CHECK(positive.rows() == negative.rows(),
              "pca_center: positive and negative must hold the same number of pairs, got ",
              positive.rows(), " and ", negative.rows(),
              " rows (hint: row i of each set is one contrastive pair)");
  const Eigen::Index n = positive.rows();
  const Eigen::MatrixXd p = positive.cast<double>();
  const Eigen::MatrixXd q = negative.cast<double>();
  const Eigen::MatrixXd centre = 0.5 * (p + q);
  Eigen::MatrixXd x(2 * n, positive.cols());
  x.topRows(n) = p - centre;
  x.bottomRows(n) = q - centre;
  const Eigen::VectorXd orient = (p - q).colwise().mean().transpose();
  return detail::pca_rows("pca_center", std::move(x), orient, options);
}

/// pca_diff from the paired differences streamed into a CovarianceAccumulator (rows
/// `positive_i - negative_i`, added batch by batch, merged across processes), so the rows need
/// not be kept: the d x d second moment (uncentred: scatter + N mean mean^T) is decomposed by
/// the exact eigensolver. Equals pca_diff of the rows within float64 rounding.
/// Example: `acc.add(pos_batch - neg_batch); auto r = steer::vec::pca_diff(acc);`
inline PcaResult pca_diff(const CovarianceAccumulator& differences,
                          const PcaOptions& options = PcaOptions()) {
  const auto n = static_cast<Eigen::Index>(differences.count());
  STEER_CHECK(n > 0, "pca_diff: the accumulator holds no differences (hint: add rows first)");
  const Eigen::VectorXd& mean = differences.mean();
  Eigen::MatrixXd moment = differences.scatter();
  if (!options.center()) moment.noalias() += static_cast<double>(n) * mean * mean.transpose();
  return detail::pca_moment("pca_diff", moment, n, mean, mean, options);
}

/// pca_center from streamed paired differences (see pca_diff above): its 2N rows
/// +-(positive_i - negative_i) / 2 have second moment M / 2 (M that of the differences) and
/// mean zero, so the components equal pca_diff's. Equals pca_center of the rows within
/// float64 rounding.
inline PcaResult pca_center(const CovarianceAccumulator& differences,
                            const PcaOptions& options = PcaOptions()) {
  const auto n = static_cast<Eigen::Index>(differences.count());
  STEER_CHECK(n > 0, "pca_center: the accumulator holds no differences (hint: add rows first)");
  const Eigen::VectorXd& mean = differences.mean();
  Eigen::MatrixXd moment = differences.scatter();
  moment.noalias() += static_cast<double>(n) * mean * mean.transpose();
  moment *= 0.5;
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(mean.size());
  return detail::pca_moment("pca_center", moment, 2 * n, mean, zero, options);
}

}  // namespace steer::vec
