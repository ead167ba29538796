"""The plots of ``heldout compare`` (matplotlib, no display needed): scores over steps with
interval bands, the final gap per method, the probability-of-improvement matrices and the
performance profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from heldout.safe_write import replace_with

    replace_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)
    return path


def curves(result: dict[str, Any], path: Path) -> Path:
    """One panel per column (train, each held-out set): IQM over steps, 95% band per method."""
    plt = _pyplot()
    columns = ["train", *result["held_out_sets"]]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False, sharey=True)
    for ax, column in zip(axes[0], columns):
        for method, curve in result["curves"].get(column, {}).items():
            steps = np.array(curve["steps"]) / 1e6
            (line,) = ax.plot(steps, curve["iqm"], label=method)
            ax.fill_between(steps, curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.2)
        ax.set_title(column)
        ax.set_xlabel("env steps (M)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{result['score_unit']} (IQM over seeds)")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize="small", loc="best")
    return _save(fig, path)


def gaps(result: dict[str, Any], path: Path) -> Path:
    """Final gap (train minus each held-out set) per method: IQM with 95% interval bars."""
    plt = _pyplot()
    sets = result["held_out_sets"]
    methods = list(result["methods"])
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(methods) * max(1, len(sets)) / 2, 3.6))
    width = 0.8 / max(1, len(sets))
    x = np.arange(len(methods))
    for i, s in enumerate(sets):
        stats = [result["methods"][m].get(f"gap {s}") for m in methods]
        iqm = np.array([st["iqm"] if st else np.nan for st in stats])
        low = np.array([st["iqm"] - st["ci_low"] if st else 0 for st in stats])
        high = np.array([st["ci_high"] - st["iqm"] if st else 0 for st in stats])
        ax.bar(x + (i - (len(sets) - 1) / 2) * width, iqm, width, yerr=[low, high], capsize=3, label=f"gap {s}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, methods, rotation=30, ha="right")
    ax.set_ylabel(f"train minus held-out {result['score_unit']}")
    ax.set_title("generalisation gap (lower is better)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def improvement(result: dict[str, Any], path: Path) -> Path:
    """P(row method beats column method) on each held-out set, as annotated heatmaps."""
    plt = _pyplot()
    matrices = result["probability_of_improvement"]
    fig, axes = plt.subplots(1, max(1, len(matrices)), figsize=(1.6 + 4.4 * max(1, len(matrices)), 4.2), squeeze=False)
    for k, (ax, (s, matrix)) in enumerate(zip(axes[0], matrices.items())):
        methods = list(matrix)
        grid = np.array([[0.5 if x == y else matrix[x][y]["p"] for y in methods] for x in methods])
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu")
        for i in range(len(methods)):
            for j in range(len(methods)):
                ax.text(j, i, "-" if i == j else f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
        ax.set_yticks(range(len(methods)), methods if k == 0 else [])
        ax.set_title(f"P(row > column) on {s}")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    return _save(fig, path)


def profiles(result: dict[str, Any], path: Path) -> Path:
    """One panel per held-out set: the fraction of runs scoring above each threshold, 95% band per
    method (rliable's performance profiles)."""
    plt = _pyplot()
    sets = list(result["profiles"])
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(4.2 * max(1, len(sets)), 3.4), squeeze=False, sharey=True)
    for ax, s in zip(axes[0], sets):
        taus = result["profiles"][s]["tau"]
        for method, curve in result["profiles"][s]["methods"].items():
            (line,) = ax.plot(taus, curve["fraction"], label=method)
            ax.fill_between(taus, curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.2)
        ax.set_title(s)
        ax.set_xlabel(f"{result['score_unit']} threshold")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of runs above")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize="small", loc="best")
    return _save(fig, path)


def write_all(result: dict[str, Any], out: Path) -> list[Path]:
    return [curves(result, out / "curves.png"), gaps(result, out / "gaps.png"), improvement(result, out / "improvement.png"),
            profiles(result, out / "profiles.png")]  # fmt: skip
