"""Procgen levels (int seeds), their level space, and the ``train``, ``test`` and ``full`` sets.

* ``train``: seeds ``0 .. N-1`` (the published protocol: ``start_level=0, num_levels=N``).
* ``test``: a finite held-out set drawn from seeds ``>= N`` in a fixed pseudo-random order set
  by ``level_seed``; every candidate whose content fingerprint equals a training level's is
  dropped, so the set differs from ``train`` by content and not only by seed, and so is every
  candidate repeating a level already in the set (a held-out level counted twice would weigh
  twice), as training-set duplicates are.
* ``full``: the unbounded full distribution (``num_levels=0``), seeds uniform in
  ``[0, 2**31 - 1)``; it includes the training seeds, as in the published protocol.
"""

from __future__ import annotations

import time
from functools import lru_cache
import numpy as np

from heldout.envs import seeds
from heldout.envs.base import Level, LevelSet
from heldout.envs.seeds import SeedLevelSpace
from heldout.envs.procgen import backend, fingerprints
from heldout.envs.procgen.games import (
    PARTIAL_FIRST_FRAME,
    check_distribution_mode,
    check_game,
    fingerprint_proves_distinct,
)

LEVEL_SET_NAMES: tuple[str, ...] = ("train", "test", "full")
DEFAULT_NUM_TEST_LEVELS = 1000
_CANDIDATE_CHUNK = seeds.CANDIDATE_CHUNK
_candidates = seeds.candidate_seeds
_check_count = seeds.check_count
_check_level_seed = seeds.check_level_seed
MAX_NUM_TEST_LEVELS = 20_000
"""Most held-out seeds a test set may hold (each candidate's fingerprint takes milliseconds)."""


class ProcgenLevelSpace(SeedLevelSpace):
    """Procgen levels are int seeds in ``[0, 2**31 - 1)``; text form is the decimal seed."""

    def __init__(self, game: str, distribution_mode: str = "easy") -> None:
        self.game = check_game(game)
        super().__init__(f"procgen/{self.game}")
        self.distribution_mode = check_distribution_mode(distribution_mode)

    def render(self, level: Level) -> np.ndarray:
        """The uncentred first frame of the level (the picture its fingerprint hashes)."""
        return backend.first_frame(self.game, self.coerce(level), self.distribution_mode, center_agent=False)


def train_set(num_train_levels: int) -> LevelSet:
    """Seeds ``0 .. num_train_levels - 1``."""
    n = seeds.check_count("num_train_levels", num_train_levels)
    return seeds.train_set(n, f"start_level=0, num_levels={n}: the published protocol")


def full_set() -> LevelSet:
    """The full distribution: seeds uniform in ``[0, 2**31 - 1)``."""
    return seeds.full_set("full distribution (num_levels=0)")


def test_set(
    game: str,
    distribution_mode: str = "easy",
    *,
    num_train_levels: int = 200,
    num_test_levels: int = DEFAULT_NUM_TEST_LEVELS,
    level_seed: int = 0,
) -> LevelSet:
    """``num_test_levels`` held-out seeds whose fingerprints differ from every training level's.

    Candidates are drawn from ``[num_train_levels, 2**31 - 1)`` in an order fixed by
    ``level_seed`` (a larger set extends a smaller one). ``metadata`` records how many were
    dropped (``dropped``: duplicates of training levels; ``repeats_within_test``: repeats of a
    level already kept) and whether the fingerprint proves content distinctness for this game.
    """
    return _test_set(
        check_game(game),
        check_distribution_mode(distribution_mode),
        _check_count("num_train_levels", num_train_levels),
        _check_count("num_test_levels", num_test_levels, MAX_NUM_TEST_LEVELS),
        _check_level_seed(level_seed),
    )


@lru_cache(maxsize=64)
def _test_set(game: str, mode: str, num_train: int, num_test: int, level_seed: int) -> LevelSet:
    t0 = time.perf_counter()
    found = seeds.held_out_seeds(
        f"procgen/{game}",
        lambda batch: fingerprints.fingerprints(game, batch, mode),
        num_train,
        num_test,
        level_seed,
        chunk=_CANDIDATE_CHUNK,
    )
    kept, examined, dropped, repeats = found.seeds, found.examined, found.dropped, found.repeats
    proves = fingerprint_proves_distinct(game)
    scope = (
        "the uncentred first frame shows the whole level"
        if proves
        else f"the uncentred first frame does not show the whole level: {PARTIAL_FIRST_FRAME[game]}"
    )
    notes = (
        f"{len(kept)} held-out seeds >= {num_train} (order fixed by level_seed={level_seed}); "
        f"{dropped} of {examined} candidates dropped as content duplicates of a training level, "
        f"{repeats} as repeats of a level already in the set. "
        + (
            "The fingerprint proves every kept level differs from every training level."
            if proves
            else f"The fingerprint cannot prove content distinctness for {game}: {scope.split(': ', 1)[1]}; "
            "kept levels only differ from the training levels in their first frame."
        )
    )
    return LevelSet(
        "test",
        levels=kept,
        notes=notes,
        metadata={
            "game": game,
            "distribution_mode": mode,
            "num_train_levels": num_train,
            "num_test_levels": num_test,
            "level_seed": level_seed,
            "candidates": examined,
            "dropped": dropped,
            "repeats_within_test": repeats,
            "fingerprint": fingerprints.DESCRIPTION,
            "fingerprint_proves_distinct": proves,
            "fingerprint_scope": scope,
            "build_seconds": round(time.perf_counter() - t0, 3),
        },
    )
