"""How a fitted generator's levels relate to the training levels (printed by ``heldout dred fit``).

For one decode rule, over ``batches`` generation batches (every grid decoded, before any check):

=====================  ===============================================================================
``levels``             grids decoded
``valid_fraction``     share that decode to a level and are solvable
``nearest_train``      mean Hamming distance (wall cells) of a grid's wall map to the nearest training level
``train_loo``          the same for each training level to the nearest *other* training level (leave-one-out):
                       the spread of the training set itself, for scale
``end_to_parent``      mean Hamming distance (wall cells) of the grids decoded at t = 0 and t = 1 to the
                       parent they interpolate from (0 for a model that reproduces its parents)
=====================  ===============================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from heldout.generators.generate import LevelGenerator
from heldout.generators.vae import DECODES, WALL


def wall_distances(grids: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(len(grids), len(reference)) counts of cells where one is a wall and the other is not."""
    a = (np.asarray(grids) == WALL).reshape(len(grids), -1)
    b = (np.asarray(reference) == WALL).reshape(len(reference), -1)
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def leave_one_out_distance(codes: np.ndarray) -> float:
    """Mean distance (wall cells) of each level to the nearest other one (NaN with fewer than 2)."""
    if len(codes) < 2:
        return float("nan")
    d = wall_distances(codes, codes).astype(np.float64)
    np.fill_diagonal(d, np.inf)
    return float(d.min(1).mean())


def measure(generator: LevelGenerator, decode: str, *, batches: int = 10, seed: int = 0) -> dict[str, float]:
    """The table of the module docstring for ``generator`` decoding with ``decode``."""
    rng = np.random.default_rng(seed)
    grids, parents, points = [], [], []
    for _ in range(batches):
        d = generator.decode_batch(rng, decode)
        grids.append(d.grids)
        parents.append(d.parents)
        points.append(d.points)
    g, par, t = np.concatenate(grids), np.concatenate(parents), np.concatenate(points)
    valid = 0
    for grid in g:
        level, solvable = generator.check(grid)
        valid += int(level is not None and solvable)
    train = generator.codes
    ends = np.flatnonzero((t == 0.0) | (t == 1.0))
    end_parent = np.where(t[ends] == 0.0, par[ends, 0], par[ends, 1])
    end_d = [int(wall_distances(g[i][None], train[p][None])[0, 0]) for i, p in zip(ends.tolist(), end_parent.tolist())]
    return {
        "levels": float(len(g)),
        "valid_fraction": valid / len(g),
        "nearest_train": float(wall_distances(g, train).min(1).mean()),
        "train_loo": leave_one_out_distance(train),
        "end_to_parent": float(np.mean(end_d)) if end_d else float("nan"),
    }


def measure_decodes(generator: LevelGenerator, *, batches: int = 10, seed: int = 0) -> dict[str, dict[str, float]]:
    """:func:`measure` for every decode rule (the same latents for each: the same seed)."""
    return {decode: measure(generator, decode, batches=batches, seed=seed) for decode in DECODES}


def report_lines(measured: dict[str, dict[str, float]], default: str) -> list[str]:
    """One line per decode rule, for ``heldout dred fit``."""
    lines = []
    width = max(len(k) for k in measured)
    for decode, m in measured.items():
        tag = " (default)" if decode == default else ""
        lines.append(
            f"generator, decode {decode:<{width}}{tag}: {m['valid_fraction']:.0%} of {int(m['levels'])} levels solvable; "
            f"wall cells to the nearest training level {m['nearest_train']:.1f} (training levels to each other: "
            f"{m['train_loo']:.1f}); interpolation ends (t=0, 1) to their parents {m['end_to_parent']:.1f}"
        )
    return lines


def as_plain(measured: dict[str, dict[str, float]]) -> dict[str, Any]:
    """JSON-able copy (for the model file's summary)."""
    return {k: {name: float(v) for name, v in m.items()} for k, m in measured.items()}
