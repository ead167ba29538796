"""Levels that are integer seeds: their level space, the ``train`` and ``full`` sets, and the
content-filtered held-out set.

Shared by every family whose environment builds level ``s`` from seed ``s`` (Procgen games,
seeded Gymnasium environments). Held-out seeds are filtered by *content*: a candidate whose
fingerprint (a digest of what the level looks like) equals a training level's is dropped,
because different seeds can make the same level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from heldout.envs.base import Level, LevelSet, LevelSpace

MAX_SEED = 2**31 - 1
"""Level seeds lie in [0, MAX_SEED) (Procgen's ``num_levels=0`` range; any Gymnasium seed fits)."""

CANDIDATE_CHUNK = 256
MAX_CANDIDATE_FACTOR = 20
"""Give up building a held-out set when fewer than 1 in 20 candidates survive."""
EMPTY_AFTER = 64
"""Call a held-out set empty when none of this many candidates survives."""


class SeedLevelSpace(LevelSpace):
    """Levels are int seeds in ``[0, 2**31 - 1)``; the text form is the decimal seed."""

    def __init__(self, family: str) -> None:
        self.family = family

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


def train_set(num_train_levels: int, notes: str = "") -> LevelSet:
    """Seeds ``0 .. num_train_levels - 1``."""
    n = check_count("num_train_levels", num_train_levels)
    return LevelSet(
        "train",
        levels=tuple(range(n)),
        notes=f"seeds 0..{n - 1}" + (f" ({notes})" if notes else ""),
        metadata={"num_train_levels": n},
    )


def full_set(notes: str = "") -> LevelSet:
    """The full distribution: seeds uniform in ``[0, 2**31 - 1)``."""
    return LevelSet(
        "full",
        draw=draw_any_seed,
        notes=(notes + ": " if notes else "") + f"seeds uniform in [0, {MAX_SEED}), training seeds included",
    )


def draw_any_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, MAX_SEED))


def candidate_seeds(low: int, level_seed: int) -> Iterator[int]:
    """Distinct seeds in ``[low, 2**31 - 1)`` in a pseudo-random order fixed by ``level_seed``."""
    rng = np.random.default_rng([level_seed, 0x7E57])
    seen: set[int] = set()
    while True:
        for seed in rng.integers(low, MAX_SEED, size=CANDIDATE_CHUNK).tolist():
            if seed not in seen:
                seen.add(seed)
                yield seed


@dataclass(frozen=True)
class HeldOut:
    """The outcome of filtering candidates: the kept seeds and what was examined."""

    seeds: tuple[int, ...]
    examined: int
    dropped: int
    repeats: int
    """Candidates dropped because their fingerprint equals an already kept seed's (repeated content within the set)."""


def held_out_seeds(
    family: str,
    fingerprints: Callable[[Sequence[int]], list[bytes]],
    num_train: int,
    num_test: int,
    level_seed: int,
    chunk: int = CANDIDATE_CHUNK,
) -> HeldOut:
    """``num_test`` seeds ``>= num_train`` whose fingerprints differ from every training seed's
    and from each other's.

    A family with fewer distinct levels than asked for (the candidates run out and keep repeating
    kept levels) gets the distinct ones found, fewer than ``num_test``; callers say so in notes.

    ``fingerprints(seeds)`` returns one digest per seed. Raises ``ValueError`` saying what to
    do when none of the first 64 candidates survives (the environment ignores the seed, or has
    no more distinct levels than the training set covers) or fewer than 1 in 20 survive overall.
    """
    train_prints = fingerprints(range(num_train))
    train_set_prints = set(train_prints)
    kept: list[int] = []
    kept_prints: set[bytes] = set()
    dropped = repeats = examined = 0
    candidates = candidate_seeds(num_train, level_seed)
    budget = max(MAX_CANDIDATE_FACTOR * num_test, EMPTY_AFTER)
    while len(kept) < num_test:
        if not kept and examined >= EMPTY_AFTER:
            raise ValueError(_empty_message(family, examined, num_train, len(train_set_prints)))
        if examined >= budget:
            if repeats and kept:  # the family has no more distinct levels: keep those it has
                break
            raise ValueError(
                f"{family}: only {len(kept)} of {examined} candidates differ from the training levels; "
                f"ask for fewer test levels or fewer training levels"
            )
        batch = [next(candidates) for _ in range(min(chunk, num_test - len(kept)))]
        examined += len(batch)
        for seed, fp in zip(batch, fingerprints(batch)):
            if fp in train_set_prints:
                dropped += 1
                continue
            if fp in kept_prints:  # the same content twice would weigh twice in the held-out score
                repeats += 1
                continue
            kept_prints.add(fp)
            kept.append(seed)
    return HeldOut(tuple(kept), examined, dropped, repeats)


def _empty_message(family: str, examined: int, num_train: int, distinct: int) -> str:
    if distinct == 1:
        why = (
            f"all {num_train} training seeds have the same fingerprint too: the environment seems to ignore "
            "reset(seed=...), and a seeded family needs one that builds its level from the seed"
        )
    else:
        why = (
            f"the {num_train} training seeds already cover every level seen ({distinct} distinct); "
            "train on fewer levels (--train-levels) or fingerprint more of the level"
        )
    return (
        f"{family}: the held-out set came out empty: all {examined} candidate seeds look like a training "
        f"level by their fingerprint; {why}"
    )


def check_level_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"level_seed must be a non-negative integer, got {value!r}")
    return int(value)


def check_count(name: str, value: Any, most: int = MAX_SEED - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > most:
        raise ValueError(f"{name} must be at most {most:,}, got {value:,}")
    return int(value)
