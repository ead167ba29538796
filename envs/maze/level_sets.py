"""The maze level sets, each reproducible from ``level_seed``.

* ``train``    ``num_train_levels`` (default 200) levels of the four training structure
               families (clutter, perfect, rooms, corridors), level i from family i mod 4.
* ``test``     ``num_test_levels`` (default 200) new levels of the same families, none equal
               in content to a training level.
* ``test_ood`` ``num_test_levels`` levels of the held-out families (caves, blocks, rings).
* ``named``    the hand-designed mazes of :mod:`heldout.envs.maze.named` (13x13, 21x21, 51x51).
* ``large``    ``num_test_levels`` levels of the training families on ``large_size`` grids
               (default 25x25).
* ``random``   unbounded: domain randomisation (random walls, start and goal; see
               :mod:`heldout.envs.maze.random_levels`), the generator of the UED baselines.
* ``empty``    unbounded: no walls, random start and goal (ACCEL's seed levels).

Level i of a set comes from its own random stream (set, ``level_seed``, i), so a set of 100
training levels is the first 100 of a set of 200. Duplicates (by content) are drawn again;
``notes`` says how many. ``metadata["families"]`` names the family of every level and
``metadata["names"]`` the named mazes.
"""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np

from heldout.envs.base import LevelSet
from heldout.envs.maze.generators import HELD_OUT_FAMILIES, TRAIN_FAMILIES, generate
from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.named import named_levels
from heldout.envs.maze.space import MazeLevelSpace

FINITE_SET_NAMES = ("train", "test", "test_ood", "named", "large")
GENERATED_SET_NAMES = ("random", "empty")
LEVEL_SET_NAMES = FINITE_SET_NAMES + GENERATED_SET_NAMES
_STREAM = {"train": 1, "test": 2, "test_ood": 3, "large": 4}
_MAX_REDRAWS = 1000


def _draw_levels(
    set_name: str, families: tuple[str, ...], count: int, size: int, level_seed: int, exclude: frozenset = frozenset()
) -> tuple[tuple[MazeLevel, ...], tuple[str, ...], int]:
    """``count`` distinct levels not in ``exclude``; returns (levels, their families, redraws)."""
    seen = set(exclude)
    levels, fams, redraws = [], [], 0
    for i in range(count):
        family = families[i % len(families)]
        for attempt in range(_MAX_REDRAWS):
            rng = np.random.default_rng([_STREAM[set_name], level_seed, i, attempt])
            level = generate(family, rng, size)
            if level not in seen:
                break
            redraws += 1
        else:
            raise RuntimeError(
                f"could not find a new {size}x{size} {family!r} level for {set_name!r} after {_MAX_REDRAWS} draws; "
                "ask for fewer levels or a larger size"
            )
        seen.add(level)
        levels.append(level)
        fams.append(family)
    return tuple(levels), tuple(fams), redraws


@lru_cache(maxsize=64)
def build_level_set(
    name: str, *, num_train_levels: int = 200, num_test_levels: int = 200, level_seed: int = 0, size: int = 13,
    large_size: int = 25,
) -> LevelSet:
    """The finite maze level set ``name`` (one of :data:`FINITE_SET_NAMES`); cached, level sets are immutable."""
    if name not in FINITE_SET_NAMES:
        raise ValueError(f"maze has no finite level set {name!r}; choose one of {', '.join(FINITE_SET_NAMES)}")
    for what, value in (("num_train_levels", num_train_levels), ("num_test_levels", num_test_levels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if not isinstance(level_seed, (int, np.integer)) or level_seed < 0:
        raise ValueError(f"level_seed must be a non-negative integer, got {level_seed!r}")
    if name == "named":
        levels = named_levels()
        return LevelSet(
            "named",
            levels=tuple(levels.values()),
            notes="hand-designed mazes: " + ", ".join(levels),
            metadata={"names": tuple(levels), "families": ("named",) * len(levels)},
        )
    if name == "train":
        levels, fams, redraws = _draw_levels("train", TRAIN_FAMILIES, num_train_levels, size, level_seed)
        notes = f"{num_train_levels} levels of {', '.join(TRAIN_FAMILIES)} ({size}x{size}, seed {level_seed})"
    elif name in ("test", "test_ood"):
        train = build_level_set(
            "train", num_train_levels=num_train_levels, level_seed=level_seed, size=size
        )
        families = TRAIN_FAMILIES if name == "test" else HELD_OUT_FAMILIES
        levels, fams, redraws = _draw_levels(
            name, families, num_test_levels, size, level_seed, exclude=frozenset(train.levels or ())
        )
        notes = (
            f"{num_test_levels} levels of {', '.join(families)} ({size}x{size}, seed {level_seed}), "
            f"disjoint by content from the {num_train_levels} training levels"
        )
    else:  # large
        levels, fams, redraws = _draw_levels("large", TRAIN_FAMILIES, num_test_levels, large_size, level_seed)
        notes = f"{num_test_levels} levels of {', '.join(TRAIN_FAMILIES)} ({large_size}x{large_size}, seed {level_seed})"
    notes += f"; {redraws} duplicate draws replaced" if redraws else ""
    return LevelSet(name, levels=levels, notes=notes, metadata={"families": fams, "size": levels[0].shape})


def _wall_note(space: MazeLevelSpace) -> str:
    if space.walls == "jaxued":
        return f"{space.max_walls} wall cells drawn with replacement (jaxued)"
    return f"{space.min_walls}..{space.max_walls} walls on distinct random cells"


def generated_level_set(name: str, space: MazeLevelSpace) -> LevelSet:
    """The unbounded set ``random`` or ``empty``: every draw is a new level from ``space``'s generator."""
    if name not in GENERATED_SET_NAMES:
        raise ValueError(f"maze has no generated level set {name!r}; choose one of {', '.join(GENERATED_SET_NAMES)}")
    n = space.size
    if name == "random":
        kept = "unsolvable draws redrawn" if space.reject_unsolvable else "unsolvable draws kept"
        notes = (
            f"domain randomisation: {n}x{n}, {_wall_note(space)}, "
            f"random start and goal; {kept}"
        )
    else:
        notes = f"{n}x{n} without walls, random start and goal"
    return LevelSet(name, draw=partial(space.generate, name), notes=notes, metadata={"size": (n, n)})


def split_by_size(level_set: LevelSet) -> dict[tuple[int, int], LevelSet]:
    """One level set per grid size (``"named-21x21"``...), for full-observation vec envs."""
    if not level_set.finite:
        raise ValueError(f"level set {level_set.name!r} is unbounded; only finite sets can be split by size")
    groups: dict[tuple[int, int], list[MazeLevel]] = {}
    for level in level_set:
        groups.setdefault(level.shape, []).append(level)
    return {
        shape: LevelSet(f"{level_set.name}-{shape[0]}x{shape[1]}", levels=tuple(levels), notes=level_set.notes)
        for shape, levels in groups.items()
    }


def grid_size_of(level_set: LevelSet) -> tuple[int, int] | None:
    """The largest (height, width) among a finite set's levels (None for an unbounded set)."""
    if not level_set.finite:
        return None
    shapes = [lv.shape for lv in level_set]
    return max(s[0] for s in shapes), max(s[1] for s in shapes)
