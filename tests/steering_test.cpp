// Steering sets and threads: hooks that belong to a call (steer::Steering + SteeringGuard) act
// exactly as the same hooks attached to the model, only inside the guard and only on its
// thread; several threads with different steering share one loaded model and each gets its
// single-thread result; concurrent extractions and a shared Record stay correct.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <steer/steer.hpp>

#include "model_support.hpp"
#include "test_support.hpp"

using steer::Positions;
using steer::test::default_model_dir;
using steer::test::random_ids;
using steer::test::tiny;

namespace {

torch::Tensor random_vector(const steer::Model& model, int seed) {
  torch::manual_seed(seed);
  return torch::randn({model.d_model()});
}

TEST(Steering, EqualsTheSameHooksAttachedToTheModel) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto ids = random_ids(model, 2, 7, 1);
  const auto v = random_vector(model, 2);
  const auto r = random_vector(model, 3);
  torch::Tensor attached;
  {
    auto a = steer::hook(model, "resid_pre.1", steer::Add(v, 2.0), Positions::from(2));
    auto b = steer::hook(model, "mlp_out.0", steer::Ablate(r));
    attached = model.logits(ids);
  }
  steer::Steering steering(model);
  steering.add("resid_pre.1", steer::Add(v, 2.0), Positions::from(2));
  steering.add("mlp_out.0", steer::Ablate(r));
  EXPECT_EQ(steering.size(), 2u);
  const auto plain = model.logits(ids);
  torch::Tensor scoped;
  {
    steer::SteeringGuard guard(steering);
    scoped = model.logits(ids);
  }
  // The same ops on the same values: bit-identical.
  EXPECT_TRUE(torch::equal(scoped, attached));
  // The steering changes the logits (so the equality above is not plain == plain) ...
  EXPECT_GT((scoped - plain).abs().max().item<double>(), 1e-2);
  // ... and acts only inside the guard.
  EXPECT_TRUE(torch::equal(model.logits(ids), plain));
}

TEST(Steering, RunsAfterAttachedHooksAndGuardsNest) {
  const auto model = steer::Model::load(tiny("gpt2"));
  const auto ids = random_ids(model, 1, 5, 4);
  const auto v = random_vector(model, 5);
  const auto w = random_vector(model, 6);
  // Attached Add(v), then the outer guard's Add(w), then the inner guard's Record: the record
  // sees x + v + w, i.e. what a model-attached Record placed after both would see.
  auto add_v = steer::hook(model, "resid_post.0", steer::Add(v));
  auto add_w = steer::hook(model, "resid_post.0", steer::Add(w));
  auto reference = steer::hook(model, "resid_post.0", steer::Record());
  model.logits(ids);
  const auto expected = reference->sequence(0);
  add_w.detach();
  reference.detach();

  steer::Steering outer(model);
  outer.add("resid_post.0", steer::Add(w));
  steer::Steering inner(model);
  auto& record = inner.add("resid_post.0", steer::Record());
  {
    steer::SteeringGuard a(outer);
    steer::SteeringGuard b(inner);
    model.logits(ids);
  }
  EXPECT_TRUE(torch::equal(record.sequence(0), expected));
  EXPECT_EQ(record.calls(), 1);
}

TEST(Steering, GenerationUnderAGuardEqualsAttachedHooks) {
  const auto model = steer::Model::load(default_model_dir());
  const auto x = steer::extract(model, {"Love"}, {"Hate"},
                                steer::ExtractOptions().read(steer::ReadOptions().layers({6}).site(
                                    steer::Site::resid_pre)));
  const auto v = x.vector.at(6) / x.vector.at(6).norm() * 135.8;
  const auto options = steer::GenerateOptions().max_new_tokens(12);
  std::string attached;
  {
    auto add = steer::hook(model, "resid_pre.6", steer::Add(v, 0.6));
    attached = model.generate("I hate you because", options).text;
  }
  steer::Steering kind(model);
  kind.add("resid_pre.6", steer::Add(v, 0.6));
  std::string scoped;
  {
    steer::SteeringGuard guard(kind);
    scoped = model.generate("I hate you because", options).text;
  }
  EXPECT_EQ(scoped, attached);
  EXPECT_NE(scoped, model.generate("I hate you because", options).text);
}

TEST(Steering, Errors) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto other = steer::Model::load(tiny("gpt2"));
  steer::Steering steering(model);
  steering.add("resid_pre.0", steer::Add(random_vector(model, 1)));
  EXPECT_STEER_ERROR(steering.add("resid_pre.9", steer::Add(random_vector(model, 1))),
                     "Add at resid_pre.9: hook point 'resid_pre.9' has layer 9 but model "
                     "'tiny-llama' has layers 0 to 2");
  {
    steer::SteeringGuard guard(steering);
    EXPECT_STEER_ERROR(other.logits(random_ids(other, 1, 3, 1)),
                       "Model::logits: a SteeringGuard on this thread holds steering made for "
                       "model 'tiny-llama', but this call runs model",
                       "tiny-gpt2");
    EXPECT_STEER_ERROR(steering.add("resid_pre.1", steer::Add(random_vector(model, 1))),
                       "Steering::add: a SteeringGuard holding this Steering is alive");
  }
  // After the guard, adding works again and the other model runs.
  steering.add("resid_pre.1", steer::Add(random_vector(model, 1)));
  other.logits(random_ids(other, 1, 3, 1));
  const auto plain = steer::Model::load(tiny("llama"), steer::ModelOptions().instrument(false));
  EXPECT_STEER_ERROR(steer::Steering{plain}, "Steering: model 'tiny-llama' was loaded with "
                                             "ModelOptions().instrument(false)");
}

// ----------------------------------------------------------------------------- threads

/// Each thread's steering: none, +v, -v, ablation of v, +v from position 3 on.
steer::Steering make_steering(const steer::Model& model, int kind, const torch::Tensor& v) {
  steer::Steering s(model);
  switch (kind) {
    case 1: s.add("resid_pre.1", steer::Add(v, 4.0)); break;
    case 2: s.add("resid_pre.1", steer::Add(v, -4.0)); break;
    case 3: s.add("resid_post.0", steer::Ablate(v)); break;
    case 4: s.add("attn_out.1", steer::Add(v, 8.0), Positions::from(3)); break;
    default: break;
  }
  return s;
}

TEST(Threads, ConcurrentGenerationsWithDifferentSteeringEqualSingleThread) {
  const auto model = steer::Model::load(tiny("llama"));
  const auto v = random_vector(model, 11);
  constexpr int kKinds = 5;
  constexpr int kThreads = 5;
  constexpr int kRounds = 4;
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 33}, {7, 1}, {12, 40, 3}};
  auto options = steer::GenerateOptions().max_new_tokens(10).stop_at_eos(false);

  // References, one thread, one steering at a time; they must differ from each other, so a
  // thread that ran with the wrong steering is caught.
  std::vector<std::vector<steer::Generation>> expected;
  for (int kind = 0; kind < kKinds; ++kind) {
    const auto steering = make_steering(model, kind, v);
    steer::SteeringGuard guard(steering);
    expected.push_back(model.generate(prompts, options));
  }
  for (int a = 0; a < kKinds; ++a) {
    for (int b = a + 1; b < kKinds; ++b) {
      EXPECT_NE(expected[a][0].ids, expected[b][0].ids) << "steerings " << a << " and " << b;
    }
  }

  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int round = 0; round < kRounds; ++round) {
          const int kind = (t + round) % kKinds;
          const auto steering = make_steering(model, kind, v);
          steer::SteeringGuard guard(steering);
          // Alternate the cache and full recompute, which must agree as well.
          const auto out = model.generate(
              prompts, steer::GenerateOptions(options).use_cache(round % 2 == 0));
          for (size_t p = 0; p < prompts.size(); ++p) {
            if (out[p].ids != expected[kind][p].ids) ++mismatches;
          }
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
        ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Threads, ConcurrentExtractionsEqualSingleThread) {
  const auto model = steer::Model::load(tiny("gpt2"));
  const std::vector<std::vector<std::string>> sets = {
      {"a b c", "the cat", "one two three four"}, {"x", "hello there", "b c d"},
      {"zz top", "a a a a a", "to be"}, {"cat", "dog", "bird fish"}};
  const auto read = steer::ReadOptions().layers({0, 1}).batch_size(2);
  const auto options = steer::ExtractOptions().read(read);
  std::vector<steer::Extraction> expected;
  for (size_t i = 0; i < sets.size(); ++i) {
    expected.push_back(steer::extract(model, sets[i], sets[(i + 1) % sets.size()], options));
  }
  constexpr int kRounds = 3;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sets.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < kRounds; ++round) {
        try {
          const auto x = steer::extract(model, sets[i], sets[(i + 1) % sets.size()], options);
          for (int64_t layer : {0, 1}) {
            // Same prompts, same batches, same kernels: bit-identical to the reference.
            if (!torch::equal(x.vector.at(layer), expected[i].vector.at(layer))) ++mismatches;
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << i << ": " << e.what();
          ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Threads, AttachedRecordCountsEveryCallOfEveryThread) {
  const auto model = steer::Model::load(tiny("llama"));
  auto record = steer::hook(model, "resid_post.1", steer::Record(steer::RecordOptions().mean(true)));
  auto listing = steer::hook(model, "resid_post.0", steer::Record(), Positions::last());
  constexpr int kThreads = 4;
  constexpr int kCalls = 25;
  const auto ids = random_ids(model, 2, 5, 3);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) model.logits(ids);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(record->calls(), kThreads * kCalls);
  EXPECT_EQ(listing->calls(), kThreads * kCalls);
  // Every call saw the same ids, so every recorded row equals the single-call one.
  const auto rows = listing->sequence(1);
  ASSERT_EQ(rows.size(0), kThreads * kCalls);
  EXPECT_TRUE(torch::equal(rows, rows[0].unsqueeze(0).expand_as(rows)));
}

TEST(Threads, SetCoefficientWhileOtherThreadsRun) {
  // A coefficient changed while calls run is seen whole by each call: every call's logits
  // equal those of one of the two coefficients, never a mixture or a torn tensor.
  const auto model = steer::Model::load(tiny("llama"));
  const auto v = random_vector(model, 9);
  const auto ids = random_ids(model, 1, 4, 2);
  torch::Tensor at_one, at_two;
  {
    auto add = steer::hook(model, "resid_pre.1", steer::Add(v, 1.0));
    at_one = model.logits(ids);
    add->set_coefficient(2.0);
    at_two = model.logits(ids);
  }
  auto add = steer::hook(model, "resid_pre.1", steer::Add(v, 1.0));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, calls{0};
  std::thread caller([&] {
    while (!stop.load() || calls.load() < 20) {
      const auto logits = model.logits(ids);
      if (!torch::equal(logits, at_one) && !torch::equal(logits, at_two)) ++bad;
      ++calls;
    }
  });
  for (int i = 0; i < 200; ++i) add->set_coefficient(i % 2 ? 1.0 : 2.0);
  stop = true;
  caller.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
