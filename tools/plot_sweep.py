#!/usr/bin/env python3
"""Heat maps of an activation_addition sweep: behaviour score and perplexity per layer and
coefficient, from the CSV the example writes (layer,coefficient,behaviour,perplexity).

    plot_sweep.py SWEEP.csv --out SWEEP.png [--unsteered-behaviour B] [--unsteered-perplexity P]
                  [--max-perplexity-ratio R] [--title TEXT]

Cells whose perplexity exceeds R x the unsteered perplexity are hatched in the behaviour map;
the best remaining cell (highest behaviour score) is outlined.
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_sweep(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"plot_sweep.py: {path} has no rows")
    layers = sorted({int(r["layer"]) for r in rows})
    coefficients = sorted({float(r["coefficient"]) for r in rows})
    behaviour = np.full((len(layers), len(coefficients)), np.nan)
    perplexity = np.full_like(behaviour, np.nan)
    for r in rows:
        i = layers.index(int(r["layer"]))
        j = coefficients.index(float(r["coefficient"]))
        behaviour[i, j] = float(r["behaviour"])
        perplexity[i, j] = float(r["perplexity"])
    return layers, coefficients, behaviour, perplexity


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--out", required=True)
    parser.add_argument("--unsteered-behaviour", type=float)
    parser.add_argument("--unsteered-perplexity", type=float)
    parser.add_argument("--max-perplexity-ratio", type=float, default=1.5)
    parser.add_argument("--title", default="activation addition sweep")
    args = parser.parse_args()

    layers, coefficients, behaviour, perplexity = read_sweep(args.csv)
    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.5, 0.28 * len(layers) + 1.8)),
                             constrained_layout=True)
    extent_labels = dict(xticks=range(len(coefficients)),
                         xticklabels=[f"{c:g}" for c in coefficients],
                         yticks=range(len(layers)), yticklabels=layers,
                         xlabel="coefficient", ylabel="layer")

    # Behaviour: diverging map centred on the unsteered score.
    centre = args.unsteered_behaviour if args.unsteered_behaviour is not None else 0.0
    spread = np.nanmax(np.abs(behaviour - centre)) or 1.0
    image = axes[0].imshow(behaviour, cmap="RdBu", vmin=centre - spread, vmax=centre + spread,
                           aspect="auto", origin="lower")
    fig.colorbar(image, ax=axes[0], label="log P(positive) - log P(negative)")
    title = "behaviour score"
    if args.unsteered_behaviour is not None:
        title += f" (unsteered {args.unsteered_behaviour:.2f})"
    axes[0].set(title=title, **extent_labels)

    # Perplexity on a log scale.
    image = axes[1].imshow(np.log10(perplexity), cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=axes[1], label="log10 perplexity")
    title = "perplexity on neutral text"
    if args.unsteered_perplexity is not None:
        title += f" (unsteered {args.unsteered_perplexity:.1f})"
    axes[1].set(title=title, **extent_labels)

    # Values in the cells, when there are few enough to read.
    if behaviour.size <= 300:
        for (i, j), value in np.ndenumerate(behaviour):
            dark = abs(value - centre) > 0.6 * spread
            axes[0].text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                         color="white" if dark else "black")
        for (i, j), value in np.ndenumerate(perplexity):
            axes[1].text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                         color="white" if value < np.nanmedian(perplexity) else "black")

    note = ""
    if args.unsteered_perplexity is not None:
        bound = args.max_perplexity_ratio * args.unsteered_perplexity
        allowed = perplexity <= bound
        for i, j in zip(*np.where(~allowed)):
            axes[0].add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                            edgecolor="0.4", linewidth=0))
        note = f"hatched: perplexity > {args.max_perplexity_ratio:g} x unsteered ({bound:.1f})"
        if allowed.any():
            masked = np.where(allowed, behaviour, -np.inf)
            i, j = np.unravel_index(np.argmax(masked), masked.shape)
            for ax in axes:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                           edgecolor="black", linewidth=2))
            note += (f"; outlined: best within the bound, layer {layers[i]},"
                     f" coefficient {coefficients[j]:g}")
    if note:
        fig.supxlabel(note, fontsize=9)

    fig.suptitle(args.title)
    fig.savefig(args.out, dpi=110)
    print(f"plot_sweep.py: wrote {args.out}")


if __name__ == "__main__":
    main()
