// The runtime on CUDA (label gpu; each test skips without a CUDA device): the default model's
// logits and greedy generation on the GPU in float32, float16 and bfloat16 against the CPU.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "model_support.hpp"

using steer::GenerateOptions;
using steer::test::default_model_dir;
using steer::test::kLogitTolerance;
using steer::test::max_logit_diff;

namespace {

const steer::Model& cpu_model() {
  static const steer::Model model = steer::Model::load(default_model_dir());
  return model;
}

}  // namespace

// Bounds on the logits of the default model on the GPU against float32 on the CPU, relative to the
// largest |logit| (about 30):
// - float32: cuBLAS sums in other orders than MKL (TF32 is off by default for matmul): float32
//   noise of the kind kLogitTolerance bounds (model_support.hpp).
// - float16 / bfloat16: every weight and every op's output is rounded to the dtype, unit
//   roundoff u = 2^-11 = 4.9e-4 (float16: 11 significant bits) or 2^-8 = 3.9e-3 (bfloat16: 8);
//   products accumulate in float32. About 25 roundings per layer over 30 layers, independent:
//   sqrt(750) * u = 27u of the logit scale, times up to 2 where norms and softmax amplify
//   (the tiny models on the CPU measure 3u to 16.5u against an estimate of 9u: model_test.cpp).
//   The bound is 64u: 0.031 (float16) and 0.25 (bfloat16). A weight left in float32, a wrong
//   cast of the rotary tables or an overflow gives errors of the order of the logits.
// - top-1: the most likely next token agrees wherever float32's gap between the first and the
//   second logit is more than twice the bound (each may move by the bound); "The capital of
//   France is" -> " Paris" has a gap of 2.5 nats (~0.08 of the scale): float16 must agree there,
//   bfloat16 need not. (Not yet run on a GPU: the bounds come from the derivation alone.)
double unit_roundoff(torch::Dtype dtype) {
  return dtype == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
}

// (top-1 - top-2) / max |logit| of a row of logits.
double top_gap(const torch::Tensor& row) {
  const auto top = std::get<0>(row.to(torch::kFloat64).topk(2));
  return (top[0] - top[1]).item<double>() / row.to(torch::kFloat64).abs().max().item<double>();
}

TEST(RuntimeGpu, LogitsInEachDtypeAgreeWithCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto& cpu = cpu_model();
  const std::vector<torch::Tensor> inputs = {
      torch::tensor({{1, 42, 314, 2718, 28}}, torch::kInt64),
      steer::to_batch({cpu.tokenizer().encode("The capital of France is")})};
  const auto gpu = steer::Model::load(default_model_dir(), steer::ModelOptions().device(torch::kCUDA));
  for (const auto& ids : inputs) {
    const auto expected = cpu.logits(ids);
    EXPECT_LE(max_logit_diff(gpu.logits(ids).cpu(), expected), kLogitTolerance);
  }
  for (const auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    const auto half = steer::Model::load(default_model_dir(),
                                         steer::ModelOptions().device(torch::kCUDA).dtype(dtype));
    const double bound = 64 * unit_roundoff(dtype);
    for (const auto& ids : inputs) {
      const auto expected = cpu.logits(ids);
      const auto got = half.logits(ids).cpu();
      EXPECT_EQ(got.scalar_type(), dtype);
      const auto diff = max_logit_diff(got, expected);
      EXPECT_LE(diff, bound);
      std::printf("[ dtype   ] %s: max |difference| / max |logit| vs float32 on the CPU %.3g = "
                  "%.1fu\n", c10::toString(dtype), diff, diff / unit_roundoff(dtype));
      const auto last = expected[0][-1];
      if (top_gap(last) > 2 * bound) {
        EXPECT_EQ(got[0][-1].argmax().item<int64_t>(), last.argmax().item<int64_t>());
      }
    }
  }
}

TEST(RuntimeGpu, GenerationInEachDtypeAgreesWithCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto options = GenerateOptions().max_new_tokens(16).stop_at_eos(false);
  const auto cpu = cpu_model().generate("The capital of France is", options);
  const auto gpu = steer::Model::load(default_model_dir(), steer::ModelOptions().device(torch::kCUDA));
  EXPECT_EQ(gpu.generate("The capital of France is", options).ids, cpu.ids);
  for (const auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    const auto half = steer::Model::load(default_model_dir(),
                                         steer::ModelOptions().device(torch::kCUDA).dtype(dtype));
    const auto a = half.generate("The capital of France is", options);
    const auto b = half.generate("The capital of France is", GenerateOptions(options).use_cache(false));
    EXPECT_EQ(a.ids.size(), 16u);
    EXPECT_EQ(a.ids.front(), cpu.ids.front());
    // Reduced precision: cache and recompute may part after a near tie; the first tokens agree.
    EXPECT_EQ(std::vector<int64_t>(a.ids.begin(), a.ids.begin() + 4),
              std::vector<int64_t>(b.ids.begin(), b.ids.begin() + 4));
  }
}
