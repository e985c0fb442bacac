// Hooks on CUDA (label gpu; skipped without CUDA): steered and recorded results through the KV
// cache equal the CPU ones for every position selection, with async copies to pinned memory.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::Positions;
using steer::test::fixture_dir;
using steer::test::all_selections;
using steer::test::cached_logits;
using steer::test::kActivationTolerance;
using steer::test::kLogitTolerance;
using steer::test::max_logit_diff;
using steer::test::max_row_relative_diff;
using steer::test::tiny;
using steer::test::padded_batch;

namespace {

// ----------------------------------------------------------------------------- CUDA (label gpu)

TEST(HooksGpu, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  const auto cpu = steer::Model::load(tiny("llama"));
  const auto gpu = steer::Model::load(tiny("llama"), steer::ModelOptions().device(torch::kCUDA));
  const auto batch = padded_batch(cpu, {7, 4}, 11);
  const auto v = torch::randn({cpu.d_model()});
  for (const auto& [name, positions] : all_selections()) {
    SCOPED_TRACE(name);
    auto a = steer::hook(cpu, "resid_post.1", steer::Add(v, 2.0), positions);
    auto b = steer::hook(gpu, "resid_post.1", steer::Add(v, 2.0), positions);
    auto ra = steer::hook(cpu, "mlp_out.2", steer::Record(), positions);
    auto rb = steer::hook(gpu, "mlp_out.2", steer::Record(steer::RecordOptions().to_host(true)),
                          positions);
    const auto expected = cached_logits(cpu, batch.ids, batch.mask, 4);
    const auto got = cached_logits(gpu, batch.ids, batch.mask, 4);
    const auto real = batch.mask.to(torch::kBool);
    // float32 on both devices, summed in other orders: the float32 noise bounds of
    // model_support.hpp.
    EXPECT_LE(max_logit_diff(got.cpu().index({real}), expected.index({real})), kLogitTolerance);
    EXPECT_LE(max_row_relative_diff(rb->sequence(0), ra->sequence(0)), kActivationTolerance);
    EXPECT_TRUE(torch::equal(ra->positions(1), rb->positions(1)));
  }
}

}  // namespace
