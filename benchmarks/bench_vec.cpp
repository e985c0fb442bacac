// Benchmarks of steer::vec on one thread: PCA top-1 of 256 x 4096 paired differences (exact
// and iterative) and streaming accumulation throughput (bytes of float32 input per second).
// Run: ./build/benchmarks/bench_vec --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <cstdint>
#include <random>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include "steer/vec/vec.hpp"

namespace {

// Seeded contrastive pairs: shared content, a planted concept direction with a per-pair
// strength, anisotropic noise (a decaying spectrum, as real activations have).
struct Pairs {
  Eigen::MatrixXf positive;
  Eigen::MatrixXf negative;
};

Pairs make_pairs(Eigen::Index n, Eigen::Index d, float signal, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Eigen::VectorXf direction(d);
  for (Eigen::Index j = 0; j < d; ++j) direction(j) = normal(rng);
  direction.normalize();
  Pairs pairs{Eigen::MatrixXf(n, d), Eigen::MatrixXf(n, d)};
  for (Eigen::Index i = 0; i < n; ++i) {
    const float strength = signal + normal(rng);
    for (Eigen::Index j = 0; j < d; ++j) {
      const float scale = 1.0f / std::sqrt(1.0f + static_cast<float>(j) / 64.0f);
      const float base = 3.0f * normal(rng);
      const float noise = 0.5f * scale * normal(rng);
      pairs.positive(i, j) = base + 0.5f * strength * direction(j) + noise;
      pairs.negative(i, j) = base - 0.5f * strength * direction(j) - noise;
    }
  }
  return pairs;
}

// signal 4: the concept dominates the differences (a typical steering contrast, 8 Lanczos
// steps); signal 0.5: its eigengap is small and Lanczos needs several times more steps.
void pca_top1(benchmark::State& state, steer::vec::PcaMethod method, float signal) {
  const Pairs pairs = make_pairs(256, 4096, signal, 42);
  const auto options = steer::vec::PcaOptions().k(1).method(method);
  int iterations = 0;
  for (auto _ : state) {
    const auto result = steer::vec::pca_diff(pairs.positive, pairs.negative, options);
    iterations = result.iterations;
    benchmark::DoNotOptimize(result.components.data());
  }
  state.counters["lanczos_steps"] = iterations;
}

void BM_PcaDiffTop1_Exact(benchmark::State& state) {
  pca_top1(state, steer::vec::PcaMethod::exact, 4.0f);
}
void BM_PcaDiffTop1_Iterative(benchmark::State& state) {
  pca_top1(state, steer::vec::PcaMethod::iterative, 4.0f);
}
void BM_PcaDiffTop1_Iterative_WeakSignal(benchmark::State& state) {
  pca_top1(state, steer::vec::PcaMethod::iterative, 0.5f);
}

Eigen::MatrixXf random_batch(Eigen::Index rows, Eigen::Index d) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Eigen::MatrixXf batch(rows, d);
  for (Eigen::Index i = 0; i < batch.size(); ++i) batch(i) = 2.0f + normal(rng);
  return batch;
}

void BM_MeanAccumulator(benchmark::State& state) {
  const Eigen::Index d = state.range(0);
  const Eigen::MatrixXf batch = random_batch(256, d);
  steer::vec::MeanAccumulator acc(d);
  for (auto _ : state) {
    acc.add(batch);
    benchmark::DoNotOptimize(acc.mean().data());
  }
  state.SetBytesProcessed(state.iterations() * batch.size() * static_cast<int64_t>(sizeof(float)));
}

void BM_CovarianceAccumulator(benchmark::State& state) {
  const Eigen::Index d = state.range(0);
  const Eigen::MatrixXf batch = random_batch(d >= 4096 ? 256 : 4096, d);
  steer::vec::CovarianceAccumulator acc(d);
  for (auto _ : state) {
    acc.add(batch);
    benchmark::DoNotOptimize(acc.count());
  }
  state.SetBytesProcessed(state.iterations() * batch.size() * static_cast<int64_t>(sizeof(float)));
}

}  // namespace

BENCHMARK(BM_PcaDiffTop1_Exact)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PcaDiffTop1_Iterative)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PcaDiffTop1_Iterative_WeakSignal)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MeanAccumulator)->Arg(576)->Arg(4096)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CovarianceAccumulator)->Arg(16)->Arg(64)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);  // one thread (Eigen parallelizes only with OpenMP anyway)
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("eigen", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                           std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                           std::to_string(EIGEN_MINOR_VERSION));
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
  benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
