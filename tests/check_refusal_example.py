#!/usr/bin/env python3
"""Runs the refusal_direction example (the command after --) and checks its JSON output.

    check_refusal_example.py --data DIR -- refusal_direction ARGS... --json

Exits 77 (ctest: skipped) when the data directory does not exist, 1 when the program fails or
its JSON lacks an expected key, 0 otherwise.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

EXPECTED = {
    "model": None, "config": None, "refusal_tokens": None, "refusal_token_ids": None,
    "refusal_phrases": None,
    "baseline": ["harmful_refusal_score", "harmless_refusal_score"],
    "candidates": None, "checked": None,
    "selected": ["layer", "position", "ablation_score", "steering_score", "kl"],
    "selection": None,
    "refusal_rates": ["harmful", "harmless"],
    "orthogonalized": ["max_abs_logit_diff", "identical_answers", "weights_edited"],
    "samples": None, "seconds": ["total"],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not Path(args.data).is_dir():
        print(f"skipped: the refusal data directory {args.data} does not exist "
              "(set the CMake cache variable STEER_DATA_DIR)")
        return 77
    run = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        print(f"refusal_direction exited with {run.returncode}")
        return 1
    result = json.loads(run.stdout)
    missing = [key for key in EXPECTED if key not in result]
    missing += [f"{key}.{sub}" for key, subs in EXPECTED.items() if subs and key in result
                for sub in subs if sub not in result[key]]
    rates = result.get("refusal_rates", {})
    for path in (("harmful", "before"), ("harmful", "ablation"), ("harmful", "orthogonalized"),
                 ("harmless", "before"), ("harmless", "addition")):
        if path[1] not in rates.get(path[0], {}):
            missing.append("refusal_rates." + ".".join(path))
    if missing:
        print("missing keys: " + ", ".join(missing))
        return 1
    print(json.dumps({k: result[k] for k in ("selected", "refusal_rates", "orthogonalized",
                                              "seconds")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
