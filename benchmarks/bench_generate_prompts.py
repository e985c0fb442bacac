#!/usr/bin/env python3
"""`steer generate --prompts` (one process, batches) against one `steer generate --prompt`
process per prompt, on the same prompts: wall time of each arm, prompts per second and their
ratio per round. The arms alternate within each round (batched first in even rounds, separate
first in odd ones) so a slow spell of a shared machine falls on both; the median ratio is the
figure reported in docs/performance.md. Prompts: the first N instructions of
../shared/data/refusal/harmless_val.json (a JSON list of {"instruction": ...}).

Example (from the repository root, after ./scripts/build.sh --target steer_cli):
  .venv/bin/python benchmarks/bench_generate_prompts.py --prompts 64 --batch-size 8 --rounds 3
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    config = torch.__config__.show()
    blas = "MKL" if "USE_MKL=ON" in config or "Intel(R) oneAPI Math Kernel" in config else "other"
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "blas": blas,
            "cuda": torch.cuda.is_available()}


def timed(command, env):
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steer", default=os.path.join(ROOT, "build/cli/steer"))
    parser.add_argument("--model", default=os.path.join(ROOT, "models/smollm2-135m-instruct"))
    parser.add_argument("--data", default=os.path.join(ROOT, "../shared/data/refusal/harmless_val.json"))
    parser.add_argument("--prompts", type=int, default=64, help="number of prompts (default 64)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both arms (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of every steer process (default 1)")
    args = parser.parse_args()

    with open(args.data) as f:
        prompts = [entry["instruction"] for entry in json.load(f)[: args.prompts]]
    assert len(prompts) == args.prompts, f"{args.data} has only {len(prompts)} prompts"
    work = tempfile.mkdtemp(prefix="bench_generate_prompts.")
    prompt_file = os.path.join(work, "prompts.json")
    with open(prompt_file, "w") as f:
        json.dump(prompts, f)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    common = ["--model", args.model, "--chat", "--max-new-tokens", str(args.max_new_tokens)]
    batched = [args.steer, "generate", "--prompts", prompt_file, "--batch-size",
               str(args.batch_size), "--quiet", "--out", os.path.join(work, "out.jsonl")] + common

    def separate():
        return sum(timed([args.steer, "generate", "--prompt", p, "--json"] + common, env)
                   for p in prompts)

    info = machine()
    print(json.dumps(dict(info, threads=args.threads, prompts=args.prompts,
                          batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          command=" ".join(batched))), flush=True)
    times = {"batched": [], "separate": []}
    for r in range(args.rounds):
        order = ["batched", "separate"] if r % 2 == 0 else ["separate", "batched"]
        for arm in order:
            seconds = timed(batched, env) if arm == "batched" else separate()
            times[arm].append(seconds)
            print(f"round {r}: {arm:8s} {seconds:8.1f} s  {args.prompts / seconds:6.2f} prompts/s",
                  flush=True)
        ratio = times["separate"][-1] / times["batched"][-1]
        print(f"round {r}: batched / separate prompts per second = {ratio:.2f}x", flush=True)
    ratios = [s / b for s, b in zip(times["separate"], times["batched"])]
    summary = {arm: {"median_s": statistics.median(t),
                     "prompts_per_s": args.prompts / statistics.median(t)}
               for arm, t in times.items()}
    summary["ratio_median"] = statistics.median(ratios)
    summary["ratios"] = ratios
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.exit(main())
