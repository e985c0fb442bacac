// Streaming, mergeable statistics of activations in float64: MeanAccumulator (count, mean,
// mean norm) and CovarianceAccumulator (count, mean, scatter matrix), merged with the
// parallel formulas of Chan, Golub and LeVeque so that any merge order equals one pass.
#pragma once

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "steer/error.hpp"
#include "steer/vec/detail/check.hpp"
#include "steer/vec/types.hpp"

namespace steer::vec {

/// Count, mean and mean L2 norm of a stream of d_model-vectors (one per row of each batch).
/// Cost: one pass over the batch, no d x d state, so it runs at memory speed.
/// Example:
/// `steer::vec::MeanAccumulator acc(/*d_model=*/576); acc.add(batch); acc.mean();`
class MeanAccumulator {
 public:
  explicit MeanAccumulator(Eigen::Index d_model) : d_(d_model) {
    STEER_CHECK(d_model >= 1, "MeanAccumulator: d_model must be >= 1, got ", d_model);
    mean_ = Eigen::VectorXd::Zero(d_model);
  }

  /// Adds every row of `batch` (N x d_model, finite). An empty batch (N = 0) adds nothing.
  void add(const RowsRef& batch) {
    STEER_CHECK(batch.cols() == d_, "MeanAccumulator::add: expected batches of d_model=", d_,
                " columns, got ", batch.rows(), " x ", batch.cols(),
                " (hint: one vector v is one row: pass v.transpose())");
    if (batch.rows() == 0) return;
    detail::check_rows("MeanAccumulator::add", "batch", batch);
    const double nb = static_cast<double>(batch.rows());
    Eigen::ArrayXd squares = Eigen::ArrayXd::Zero(batch.rows());
    Eigen::VectorXd batch_mean(d_);
    for (Eigen::Index j = 0; j < d_; ++j) {
      const auto column = batch.col(j).cast<double>().array();
      batch_mean(j) = column.sum() / nb;
      squares += column.square();
    }
    combine(nb, batch_mean, squares.sqrt().mean());
  }

  /// Adds the state of `other` (same d_model), as if its rows had been added here.
  void merge(const MeanAccumulator& other) {
    STEER_CHECK(other.d_ == d_, "MeanAccumulator::merge: expected d_model=", d_, ", got ",
                other.d_, " (hint: accumulators from different layers or models?)");
    if (other.count_ == 0) return;
    combine(static_cast<double>(other.count_), other.mean_, other.mean_norm_);
  }

  Eigen::Index d_model() const { return d_; }
  long long count() const { return count_; }
  /// Mean of the rows added so far (float64). Throws when nothing was added.
  const Eigen::VectorXd& mean() const {
    STEER_CHECK(count_ > 0, "MeanAccumulator::mean: no rows added yet (hint: call add first)");
    return mean_;
  }
  /// Mean L2 norm of the rows added so far: the typical activation norm.
  double mean_norm() const {
    STEER_CHECK(count_ > 0,
                "MeanAccumulator::mean_norm: no rows added yet (hint: call add first)");
    return mean_norm_;
  }

 private:
  void combine(double nb, const Eigen::VectorXd& batch_mean, double batch_mean_norm) {
    const double na = static_cast<double>(count_);
    const double n = na + nb;
    mean_ += (batch_mean - mean_) * (nb / n);
    mean_norm_ += (batch_mean_norm - mean_norm_) * (nb / n);
    count_ += static_cast<long long>(nb);
  }

  Eigen::Index d_;
  long long count_ = 0;
  Eigen::VectorXd mean_;
  double mean_norm_ = 0.0;
};

/// Count, mean and scatter matrix M2 = sum (x - mean)(x - mean)^T of a stream of rows, in
/// float64. Each batch is converted to float64 in blocks of `block_rows`, centred on its own
/// mean and added with a symmetric rank-k update (only the lower triangle is kept), then
/// merged by Chan et al.'s formula M2 = M2a + M2b + (na nb / n) (mb - ma)(mb - ma)^T.
/// Cost: d_model^2 / 2 multiply-adds per row: at d_model=4096 this is compute-bound far below
/// memory speed (see docs/performance.md); use MeanAccumulator when only means are needed.
/// Example:
/// `steer::vec::CovarianceAccumulator acc(/*d_model=*/64); acc.add(batch); acc.covariance();`
class CovarianceAccumulator {
 public:
  explicit CovarianceAccumulator(Eigen::Index d_model, Eigen::Index block_rows = 256)
      : d_(d_model), block_rows_(block_rows) {
    STEER_CHECK(d_model >= 1, "CovarianceAccumulator: d_model must be >= 1, got ", d_model);
    STEER_CHECK(block_rows >= 1, "CovarianceAccumulator: block_rows must be >= 1, got ",
                block_rows);
    mean_ = Eigen::VectorXd::Zero(d_model);
    scatter_ = Eigen::MatrixXd::Zero(d_model, d_model);
  }

  /// Adds every row of `batch` (N x d_model, finite). An empty batch (N = 0) adds nothing.
  void add(const RowsRef& batch) {
    STEER_CHECK(batch.cols() == d_, "CovarianceAccumulator::add: expected batches of d_model=",
                d_, " columns, got ", batch.rows(), " x ", batch.cols(),
                " (hint: one vector v is one row: pass v.transpose())");
    if (batch.rows() == 0) return;
    detail::check_rows("CovarianceAccumulator::add", "batch", batch);
    for (Eigen::Index start = 0; start < batch.rows(); start += block_rows_) {
      const Eigen::Index rows = std::min(block_rows_, batch.rows() - start);
      block_ = batch.middleRows(start, rows).cast<double>();
      add_block();
    }
  }

  /// Adds the paired differences `positive.row(i) - negative.row(i)`, formed in float64 (as
  /// vec::pca_diff forms them), so that the streamed pca_diff(accumulator) equals pca_diff of
  /// the rows within float64 rounding.
  /// Example: `diffs.add_differences(pos_batch, neg_batch); auto r = vec::pca_diff(diffs);`
  void add_differences(const RowsRef& positive, const RowsRef& negative) {
    STEER_CHECK(positive.cols() == d_ && negative.cols() == d_ &&
                    positive.rows() == negative.rows(),
                "CovarianceAccumulator::add_differences: expected two batches of the same "
                "number of rows and d_model=", d_, " columns, got ", positive.rows(), " x ",
                positive.cols(), " and ", negative.rows(), " x ", negative.cols(),
                " (hint: row i of each batch is one contrastive pair)");
    if (positive.rows() == 0) return;
    detail::check_rows("CovarianceAccumulator::add_differences", "positive", positive);
    detail::check_rows("CovarianceAccumulator::add_differences", "negative", negative);
    for (Eigen::Index start = 0; start < positive.rows(); start += block_rows_) {
      const Eigen::Index rows = std::min(block_rows_, positive.rows() - start);
      block_ = positive.middleRows(start, rows).cast<double>() -
               negative.middleRows(start, rows).cast<double>();
      add_block();
    }
  }

  /// Adds the state of `other` (same d_model), as if its rows had been added here.
  void merge(const CovarianceAccumulator& other) {
    STEER_CHECK(other.d_ == d_, "CovarianceAccumulator::merge: expected d_model=", d_, ", got ",
                other.d_, " (hint: accumulators from different layers or models?)");
    if (other.count_ == 0) return;
    scatter_.triangularView<Eigen::Lower>() += other.scatter_;
    combine_means(static_cast<double>(other.count_), other.mean_);
  }

  Eigen::Index d_model() const { return d_; }
  long long count() const { return count_; }
  /// Mean of the rows added so far (float64). Throws when nothing was added.
  const Eigen::VectorXd& mean() const {
    STEER_CHECK(count_ > 0,
                "CovarianceAccumulator::mean: no rows added yet (hint: call add first)");
    return mean_;
  }
  /// Full symmetric scatter matrix sum (x - mean)(x - mean)^T.
  Eigen::MatrixXd scatter() const {
    Eigen::MatrixXd full = scatter_.selfadjointView<Eigen::Lower>();
    return full;
  }
  /// Covariance scatter / (count - ddof); ddof = 1 (default) is NumPy's np.cov.
  Eigen::MatrixXd covariance(int ddof = 1) const {
    STEER_CHECK(ddof >= 0, "CovarianceAccumulator::covariance: ddof must be >= 0, got ", ddof);
    STEER_CHECK(count_ > ddof, "CovarianceAccumulator::covariance: needs more than ddof=", ddof,
                " rows, got ", count_, " (hint: add more rows, or pass ddof=0)");
    return scatter() / static_cast<double>(count_ - ddof);
  }

 private:
  // Adds the rows in block_ (float64): centred on their own mean, a rank-k update of the
  // scatter, then merged with Chan's formula.
  void add_block() {
    const Eigen::VectorXd block_mean = block_.colwise().mean().transpose();
    block_.rowwise() -= block_mean.transpose();
    scatter_.selfadjointView<Eigen::Lower>().rankUpdate(block_.transpose());
    combine_means(static_cast<double>(block_.rows()), block_mean);
  }

  // Updates count and mean with a block of nb rows of mean mb, adding Chan's correction
  // (na nb / n) delta delta^T to the scatter (the block's own scatter is added by the caller).
  void combine_means(double nb, const Eigen::VectorXd& mb) {
    const double na = static_cast<double>(count_);
    const double n = na + nb;
    if (count_ > 0) {
      const Eigen::VectorXd delta = mb - mean_;
      scatter_.selfadjointView<Eigen::Lower>().rankUpdate(delta, na * nb / n);
      mean_ += delta * (nb / n);
    } else {
      mean_ = mb;
    }
    count_ += static_cast<long long>(nb);
  }

  Eigen::Index d_;
  Eigen::Index block_rows_;
  long long count_ = 0;
  Eigen::VectorXd mean_;
  Eigen::MatrixXd scatter_;  // lower triangle holds M2
  Eigen::MatrixXd block_;    // reused float64 conversion buffer
};

}  // namespace steer::vec
