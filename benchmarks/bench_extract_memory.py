#!/usr/bin/env python3
"""Peak memory (maximum resident set size, from /usr/bin/time) of `steer extract` over many
prompts, in memory and with --streaming, against the model's own footprint: the peak of
`steer generate` of one token (model loaded, one forward pass). Prompts: the first N of
../shared/data/refusal/harmless_train.json then harmless_val.json (25,057 in all), half as the positive set and half as the negative
set (the direction means nothing; the memory is what is measured). Every layer is read, mean
pooling, so in-memory extraction holds N x n_layers x d_model float32 rows.

Example (from the repository root, after ./scripts/build.sh --target steer_cli):
  .venv/bin/python benchmarks/bench_extract_memory.py --prompts 20000 --arms streaming memory
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_mb(command, env):
    """Runs `command` under /usr/bin/time; returns (peak RSS in MB, wall seconds)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name] + command, check=True,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        kilobytes = int(report.read().strip().splitlines()[-1])
    return kilobytes / 1024.0, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steer", default=os.path.join(ROOT, "build/cli/steer"))
    parser.add_argument("--model", default=os.path.join(ROOT, "models/smollm2-135m-instruct"))
    parser.add_argument("--data", nargs="+",
                        default=[os.path.join(ROOT, "../shared/data/refusal", name)
                                 for name in ("harmless_train.json", "harmless_val.json")])
    parser.add_argument("--prompts", type=int, default=20000, help="positive + negative prompts")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS (default 1)")
    parser.add_argument("--arms", nargs="+", default=["streaming", "memory"],
                        choices=["streaming", "memory"])
    args = parser.parse_args()

    prompts = []
    for path in args.data:
        with open(path) as f:
            prompts += [entry["instruction"] for entry in json.load(f)]
    prompts = prompts[: args.prompts]
    assert len(prompts) == args.prompts, f"{args.data} hold only {len(prompts)} prompts"
    work = tempfile.mkdtemp(prefix="bench_extract_memory.")
    half = len(prompts) // 2
    sets = {}
    for name, part in (("positive", prompts[:half]), ("negative", prompts[half:])):
        sets[name] = os.path.join(work, name + ".json")
        with open(sets[name], "w") as f:
            json.dump(part, f)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    baseline, _ = peak_mb([args.steer, "generate", "--model", args.model, "--prompt", "Hello",
                           "--max-new-tokens", "1"], env)
    print(json.dumps({"arm": "model footprint (generate 1 token)", "peak_mb": round(baseline, 1)}),
          flush=True)
    for arm in args.arms:
        command = [args.steer, "extract", "--model", args.model, "--positive", sets["positive"],
                   "--negative", sets["negative"], "--batch-size", str(args.batch_size),
                   "--out", os.path.join(work, arm + ".safetensors"), "--quiet"]
        if arm == "streaming":
            command.append("--streaming")
        peak, seconds = peak_mb(command, env)
        print(json.dumps({"arm": arm, "prompts": len(prompts), "peak_mb": round(peak, 1),
                          "ratio_to_model": round(peak / baseline, 3),
                          "seconds": round(seconds, 1), "prompts_per_s": round(len(prompts) / seconds, 1),
                          "command": " ".join(command)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
