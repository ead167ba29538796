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
from typing import Any

import numpy as np

from heldout.envs.base import Level, LevelSet, LevelSpace
from heldout.envs.procgen import backend, fingerprints
from heldout.envs.procgen.games import (
    MAX_SEED,
    PARTIAL_FIRST_FRAME,
    check_distribution_mode,
    check_game,
    fingerprint_proves_distinct,
)

LEVEL_SET_NAMES: tuple[str, ...] = ("train", "test", "full")
DEFAULT_NUM_TEST_LEVELS = 1000
MAX_NUM_TEST_LEVELS = 20_000
"""Most held-out seeds a test set may hold (each candidate's fingerprint takes milliseconds)."""
_CANDIDATE_CHUNK = 256
_MAX_CANDIDATE_FACTOR = 20  # give up when fewer than 1 in 20 candidates survive


class ProcgenLevelSpace(LevelSpace):
    """Procgen levels are int seeds in ``[0, 2**31 - 1)``; text form is the decimal seed."""

    def __init__(self, game: str, distribution_mode: str = "easy") -> None:
        self.game = check_game(game)
        self.distribution_mode = check_distribution_mode(distribution_mode)
        self.family = f"procgen/{game}"

    def format(self, level: Level) -> str:
        return str(self.coerce(level))

    def parse(self, text: str) -> int:
        try:
            seed = int(str(text).strip())
        except ValueError:
            raise ValueError(f"{self.family}: a level is an integer seed, got {text!r}") from None
        return self._check(seed)

    def coerce(self, level: Any) -> int:
        if isinstance(level, str):
            return self.parse(level)
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)):
            raise ValueError(f"{self.family}: a level is an integer seed, got {level!r}")
        return self._check(int(level))

    def _check(self, seed: int) -> int:
        if not 0 <= seed < MAX_SEED:
            raise ValueError(f"{self.family}: level seeds lie in [0, {MAX_SEED}), got {seed}")
        return seed

    def render(self, level: Level) -> np.ndarray:
        """The uncentred first frame of the level (the picture its fingerprint hashes)."""
        return backend.first_frame(self.game, self.coerce(level), self.distribution_mode, center_agent=False)


def train_set(num_train_levels: int) -> LevelSet:
    """Seeds ``0 .. num_train_levels - 1``."""
    n = _check_count("num_train_levels", num_train_levels)
    return LevelSet(
        "train",
        levels=tuple(range(n)),
        notes=f"seeds 0..{n - 1} (start_level=0, num_levels={n}: the published protocol)",
        metadata={"num_train_levels": n},
    )


def full_set() -> LevelSet:
    """The full distribution: seeds uniform in ``[0, 2**31 - 1)``."""
    return LevelSet(
        "full",
        draw=_draw_any_seed,
        notes=f"full distribution (num_levels=0): seeds uniform in [0, {MAX_SEED}), training seeds included",
    )


def _draw_any_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, MAX_SEED))


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
    train_prints = set(fingerprints.fingerprints(game, range(num_train), mode))
    kept: list[int] = []
    kept_prints: set[bytes] = set()
    dropped = repeats = 0
    candidates = _candidates(num_train, level_seed)
    examined = 0
    while len(kept) < num_test:
        if examined >= _MAX_CANDIDATE_FACTOR * num_test:
            raise RuntimeError(
                f"procgen/{game}: only {len(kept)} of {examined} candidates differ from the training levels; "
                f"ask for fewer test levels or fewer training levels"
            )
        chunk = [next(candidates) for _ in range(min(_CANDIDATE_CHUNK, num_test - len(kept)))]
        examined += len(chunk)
        for seed, fp in zip(chunk, fingerprints.fingerprints(game, chunk, mode)):
            if fp in train_prints:
                dropped += 1
                continue
            if fp in kept_prints:
                repeats += 1
                continue
            kept_prints.add(fp)
            kept.append(seed)
    proves = fingerprint_proves_distinct(game)
    scope = (
        "the uncentred first frame shows the whole level"
        if proves
        else f"the uncentred first frame does not show the whole level: {PARTIAL_FIRST_FRAME[game]}"
    )
    notes = (
        f"{num_test} held-out seeds >= {num_train} (order fixed by level_seed={level_seed}); "
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
        levels=tuple(kept),
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


def _candidates(low: int, level_seed: int):
    """Distinct seeds in ``[low, 2**31 - 1)`` in a pseudo-random order fixed by ``level_seed``."""
    rng = np.random.default_rng([level_seed, 0x7E57])
    seen: set[int] = set()
    while True:
        for seed in rng.integers(low, MAX_SEED, size=_CANDIDATE_CHUNK).tolist():
            if seed not in seen:
                seen.add(seed)
                yield seed


def _check_level_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"level_seed must be a non-negative integer, got {value!r}")
    return int(value)


def _check_count(name: str, value: Any, most: int = MAX_SEED - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > most:
        raise ValueError(f"{name} must be at most {most:,}, got {value:,}")
    return int(value)
