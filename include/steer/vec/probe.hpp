// Linear probes separating two sets of activations: L2-regularized logistic regression
// (Newton's method in float64, intercept included) and shrinkage LDA; each gives a direction.
#pragma once

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// A trained linear probe: score(x) = weights.x + intercept, > 0 for the positive set.
struct ProbeResult {
  /// weights / |weights| in float32: the steering direction, pointing to the positive set.
  Eigen::VectorXf direction;
  /// The unnormalized weights and intercept, float64.
  Eigen::VectorXd weights;
  double intercept = 0.0;
  /// Share of the training rows on the right side of score = 0.
  double train_accuracy = 0.0;
  /// Newton steps taken (0 for LDA, a closed form).
  int iterations = 0;
};

/// Options of logistic_probe.
/// Example: `steer::vec::LogisticOptions().lambda(0.1).max_iterations(50)`
class LogisticOptions {
 public:
  LogisticOptions() = default;

  /// L2 penalty: minimizes sum_i logloss_i + lambda / 2 |w|^2 (intercept not penalized).
  /// scikit-learn's LogisticRegression(C) is lambda = 1 / C. Must be > 0. Default 1.
  LogisticOptions& lambda(double value) { lambda_ = value; return *this; }
  double lambda() const { return lambda_; }

  /// Most Newton steps before steer::Error. Default 100.
  LogisticOptions& max_iterations(int value) { max_iterations_ = value; return *this; }
  int max_iterations() const { return max_iterations_; }

  /// Stop when the Newton decrement g^T H^-1 g / 2 <= tolerance * (1 + |objective|).
  /// Default 1e-12.
  LogisticOptions& tolerance(double value) { tolerance_ = value; return *this; }
  double tolerance() const { return tolerance_; }

 private:
  double lambda_ = 1.0;
  int max_iterations_ = 100;
  double tolerance_ = 1e-12;
};

/// Options of lda_probe.
/// Example: `steer::vec::LdaOptions().shrinkage(0.2)`
class LdaOptions {
 public:
  LdaOptions() = default;

  /// alpha in [0, 1]: covariance (1 - alpha) S + alpha (trace(S) / d) I, S the pooled
  /// within-class covariance (scikit-learn's LinearDiscriminantAnalysis(solver="lsqr",
  /// shrinkage=alpha)). Must be > 0 when N < d_model + 2 (S is then singular). Default 0.1.
  LdaOptions& shrinkage(double value) { shrinkage_ = value; return *this; }
  double shrinkage() const { return shrinkage_; }

 private:
  double shrinkage_ = 0.1;
};

namespace detail {

inline void check_two_sets(const char* call, const RowsRef& positive, const RowsRef& negative) {
  check_rows(call, "positive", positive);
  check_rows(call, "negative", negative);
  check_same_d(call, "positive", positive.cols(), "negative", negative.cols());
}

inline double log1p_exp(double z) {
  return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

inline void finish_probe(const char* call, const Eigen::MatrixXd& x, Eigen::Index n_positive,
                         ProbeResult& result) {
  const double length = result.weights.norm();
  STEER_CHECK(length > 0.0 && std::isfinite(length), call,
              ": expected non-zero finite weights, got |w|=", length,
              " (hint: are the positive and negative sets identical?)");
  result.direction = (result.weights / length).cast<float>();
  const Eigen::VectorXd score = (x * result.weights).array() + result.intercept;
  Eigen::Index correct = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    correct += (i < n_positive) == (score(i) > 0.0) ? 1 : 0;
  }
  result.train_accuracy = static_cast<double>(correct) / static_cast<double>(x.rows());
}

}  // namespace detail

/// L2-regularized logistic regression of positive (label 1) vs negative (label 0), fitted by
/// damped Newton in float64. When N < d_model the problem is solved exactly in the row space
/// of the data (the optimal w lies there), so a step costs O(N^3), not O(d^3).
/// Example: `auto probe = steer::vec::logistic_probe(pos, neg, LogisticOptions().lambda(1.0));`
inline ProbeResult logistic_probe(const RowsRef& positive, const RowsRef& negative,
                                  const LogisticOptions& options = LogisticOptions()) {
  const char* call = "logistic_probe";
  detail::check_two_sets(call, positive, negative);
  STEER_CHECK(options.lambda() > 0.0 && std::isfinite(options.lambda()), call,
              ": LogisticOptions::lambda must be > 0, got ", options.lambda(),
              " (hint: without a penalty separable sets have no finite optimum)");
  STEER_CHECK(options.max_iterations() >= 1, call,
              ": LogisticOptions::max_iterations must be >= 1, got ", options.max_iterations());
  const Eigen::Index np = positive.rows();
  const Eigen::Index n = np + negative.rows();
  const Eigen::Index d = positive.cols();
  Eigen::MatrixXd x(n, d);
  x.topRows(np) = positive.cast<double>();
  x.bottomRows(n - np) = negative.cast<double>();
  Eigen::VectorXd y = Eigen::VectorXd::Zero(n);
  y.head(np).setOnes();

  // Features z = X P with P^T P = I spanning the row space of X when N < d (P = I otherwise).
  Eigen::MatrixXd z;
  Eigen::MatrixXd p;
  const bool reduce = n < d;
  if (reduce) {
    Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
    g.selfadjointView<Eigen::Lower>().rankUpdate(x);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(g);
    STEER_CHECK(solver.info() == Eigen::Success, call,
                ": the eigensolver did not converge on the ", n, " x ", n, " Gram matrix");
    const Eigen::VectorXd& lam = solver.eigenvalues();
    const double cutoff = 1e-12 * std::max(lam(n - 1), 0.0);
    Eigen::Index r = 0;
    for (Eigen::Index i = 0; i < n; ++i) r += lam(i) > cutoff ? 1 : 0;
    STEER_CHECK(r > 0, call, ": all activations are zero (", n, " rows of d_model=", d, ")");
    const Eigen::MatrixXd u = solver.eigenvectors().rightCols(r);
    const Eigen::ArrayXd root = lam.tail(r).array().sqrt();
    z = u * root.matrix().asDiagonal();                           // X P = U sqrt(L)
    p = x.transpose() * (u * root.inverse().matrix().asDiagonal());  // P = X^T U L^-1/2
  }
  const Eigen::MatrixXd& features = reduce ? z : x;
  const Eigen::Index r = features.cols();

  // theta = [beta; b]; objective f = sum log(1 + e^s) - y s + lambda/2 |beta|^2, s = Z beta + b.
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(r + 1);
  auto objective = [&](const Eigen::VectorXd& t, Eigen::VectorXd* s_out) {
    const Eigen::VectorXd s = (features * t.head(r)).array() + t(r);
    double f = 0.5 * options.lambda() * t.head(r).squaredNorm();
    for (Eigen::Index i = 0; i < n; ++i) f += detail::log1p_exp(s(i)) - y(i) * s(i);
    if (s_out) *s_out = s;
    return f;
  };
  Eigen::VectorXd s;
  double f = objective(theta, &s);
  ProbeResult result;
  bool converged = false;
  double decrement = 0.0;
  for (int it = 1; it <= options.max_iterations(); ++it) {
    const Eigen::ArrayXd prob = 1.0 / (1.0 + (-s.array()).exp());
    const Eigen::VectorXd residual = (prob - y.array()).matrix();
    const Eigen::VectorXd weight = (prob * (1.0 - prob)).matrix();
    Eigen::VectorXd grad(r + 1);
    grad.head(r) = features.transpose() * residual + options.lambda() * theta.head(r);
    grad(r) = residual.sum();
    Eigen::MatrixXd hess(r + 1, r + 1);
    const Eigen::MatrixXd weighted = weight.asDiagonal() * features;
    hess.topLeftCorner(r, r).noalias() = features.transpose() * weighted;
    hess.topLeftCorner(r, r).diagonal().array() += options.lambda();
    hess.block(0, r, r, 1) = weighted.colwise().sum().transpose();
    hess.block(r, 0, 1, r) = hess.block(0, r, r, 1).transpose();
    hess(r, r) = weight.sum() + 1e-300;
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(hess);
    const Eigen::VectorXd step = ldlt.solve(grad);
    decrement = 0.5 * grad.dot(step);
    result.iterations = it;
    if (!(decrement > options.tolerance() * (1.0 + std::abs(f)))) {
      converged = std::isfinite(decrement);
      break;
    }
    // Backtracking line search (Armijo).
    double t = 1.0;
    Eigen::VectorXd candidate;
    Eigen::VectorXd s_candidate;
    double f_candidate = f;
    for (int ls = 0; ls < 60; ++ls) {
      candidate = theta - t * step;
      f_candidate = objective(candidate, &s_candidate);
      if (f_candidate <= f - 0.25 * t * 2.0 * decrement) break;
      t *= 0.5;
    }
    if (!(f_candidate < f)) {  // no progress possible at float64 resolution
      converged = decrement <= 1e-8 * (1.0 + std::abs(f));
      break;
    }
    theta = candidate;
    s = s_candidate;
    f = f_candidate;
  }
  STEER_CHECK(converged, call, ": Newton's method did not converge in max_iterations=",
              options.max_iterations(), ": expected Newton decrement <= ",
              options.tolerance(), " x (1 + |objective|), got ", decrement,
              " (hint: raise LogisticOptions::max_iterations or lambda)");
  result.weights = reduce ? Eigen::VectorXd(p * theta.head(r)) : Eigen::VectorXd(theta.head(r));
  result.intercept = theta(r);
  detail::finish_probe(call, x, np, result);
  return result;
}

/// Linear discriminant analysis with shrinkage: weights = Sigma^-1 (mean(positive) -
/// mean(negative)), Sigma = (1 - alpha) S + alpha (trace(S) / d) I, S the pooled (biased)
/// within-class covariance; intercept puts score 0 where the two Gaussian posteriors are equal
/// (priors from the set sizes), as scikit-learn. When N < d_model Sigma^-1 is applied through
/// the Woodbury identity on an N x N system.
/// Example: `Eigen::VectorXf v = steer::vec::lda_probe(pos, neg, LdaOptions().shrinkage(0.1)).direction;`
inline ProbeResult lda_probe(const RowsRef& positive, const RowsRef& negative,
                             const LdaOptions& options = LdaOptions()) {
  const char* call = "lda_probe";
  detail::check_two_sets(call, positive, negative);
  const double alpha = options.shrinkage();
  STEER_CHECK(alpha >= 0.0 && alpha <= 1.0, call,
              ": LdaOptions::shrinkage must be in [0, 1], got ", alpha);
  const Eigen::Index np = positive.rows();
  const Eigen::Index nn = negative.rows();
  const Eigen::Index n = np + nn;
  const Eigen::Index d = positive.cols();
  Eigen::MatrixXd x(n, d);
  x.topRows(np) = positive.cast<double>();
  x.bottomRows(nn) = negative.cast<double>();
  const Eigen::VectorXd mp = x.topRows(np).colwise().mean().transpose();
  const Eigen::VectorXd mn = x.bottomRows(nn).colwise().mean().transpose();
  const Eigen::VectorXd delta = mp - mn;

  Eigen::MatrixXd centred = x;  // rows centred on their class mean
  centred.topRows(np).rowwise() -= mp.transpose();
  centred.bottomRows(nn).rowwise() -= mn.transpose();
  const double c = (1.0 - alpha) / static_cast<double>(n);  // Sigma = c Y^T Y + gamma I
  const double gamma = alpha * centred.squaredNorm() / static_cast<double>(n) /
                       static_cast<double>(d);

  ProbeResult result;
  if (c == 0.0) {
    STEER_CHECK(gamma > 0.0, call, ": the within-class covariance is zero (every row equals its "
                "set's mean) (hint: use mean_difference)");
    result.weights = delta / gamma;
  } else if (n < d) {
    STEER_CHECK(gamma > 0.0, call, ": the within-class covariance of ", n,
                " rows in d_model=", d, " is singular: expected shrinkage > 0, got ", alpha,
                " (hint: LdaOptions().shrinkage(0.1))");
    // (gamma I + c Y^T Y)^-1 m = (m - Y^T (gamma/c I + Y Y^T)^-1 Y m) / gamma
    Eigen::MatrixXd small = Eigen::MatrixXd::Zero(n, n);
    small.selfadjointView<Eigen::Lower>().rankUpdate(centred);
    small.diagonal().array() += gamma / c;
    const Eigen::LLT<Eigen::MatrixXd> llt(small.selfadjointView<Eigen::Lower>());
    STEER_CHECK(llt.info() == Eigen::Success, call, ": the ", n, " x ", n,
                " Woodbury system is not positive definite (hint: raise shrinkage)");
    const Eigen::VectorXd ym = centred * delta;
    result.weights = (delta - centred.transpose() * llt.solve(ym)) / gamma;
  } else {
    Eigen::MatrixXd sigma = Eigen::MatrixXd::Zero(d, d);
    sigma.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose(), c);
    sigma.diagonal().array() += gamma;
    const Eigen::LLT<Eigen::MatrixXd> llt(sigma.selfadjointView<Eigen::Lower>());
    const Eigen::VectorXd pivots = llt.matrixLLT().diagonal();
    const double smallest_pivot = llt.info() == Eigen::Success ? pivots.minCoeff() : 0.0;
    const double largest_pivot = llt.info() == Eigen::Success ? pivots.maxCoeff() : 1.0;
    STEER_CHECK(llt.info() == Eigen::Success && smallest_pivot > 1e-7 * largest_pivot, call,
                ": the within-class covariance (d_model=", d, ", ", n,
                " rows) is singular or ill-conditioned: expected a positive definite matrix, "
                "got shrinkage ", alpha, " (hint: LdaOptions().shrinkage(0.1))");
    result.weights = llt.solve(delta);
  }
  result.intercept = -0.5 * result.weights.dot(mp + mn) +
                     std::log(static_cast<double>(np) / static_cast<double>(nn));
  detail::finish_probe(call, x, np, result);
  return result;
}

}  // namespace steer::vec
