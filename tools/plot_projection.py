#!/usr/bin/env python3
"""Scatter plot of prompts' activations on two principal components, coloured by set, from the
CSV record_and_project writes (set,split,pc1,pc2); held-out prompts are drawn hollow.

    plot_projection.py POINTS.csv --out POINTS.png [--title TEXT] [--explained R1,R2]
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--out", required=True)
    parser.add_argument("--title", default="activations on two principal components")
    parser.add_argument("--explained", help="explained-variance ratios of PC1 and PC2, R1,R2")
    args = parser.parse_args()

    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"plot_projection.py: {args.csv} has no rows")
    explained = [float(x) for x in args.explained.split(",")] if args.explained else None

    fig, ax = plt.subplots(figsize=(6.5, 5.5), constrained_layout=True)
    colours = {"positive": "tab:blue", "negative": "tab:red"}
    for name in sorted({r["set"] for r in rows}, reverse=True):
        colour = colours.get(name, None)
        for split, filled in (("train", True), ("test", False)):
            points = [(float(r["pc1"]), float(r["pc2"])) for r in rows
                      if r["set"] == name and r["split"] == split]
            if not points:
                continue
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=36, label=f"{name} ({split}, {len(points)})",
                       facecolors=colour if filled else "none", edgecolors=colour)
    label = ["PC1", "PC2"]
    if explained:
        label = [f"PC{i + 1} ({100 * r:.1f}% of variance)" for i, r in enumerate(explained)]
    ax.set(xlabel=label[0], ylabel=label[1], title=args.title)
    ax.legend(fontsize=8)
    fig.savefig(args.out, dpi=110)
    print(f"plot_projection.py: wrote {args.out}")


if __name__ == "__main__":
    main()
