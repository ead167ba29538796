"""The ``maze`` environment family: options, level sets, single and vectorised envs.

Options (keyword arguments of ``make``, ``make_vec``, ``level_set`` and ``level_space``):

==================== ========= ==========================================================
``size``             13        interior side of generated levels (7..255)
``view_size``        5         side of the egocentric view (odd)
``max_steps``        None      time limit T of every level (None: 250, scaled for large grids)
``full_obs``         False     observe the whole (size, size) grid instead of the view
``num_train_levels`` 200       levels in ``train``
``num_test_levels``  200       levels in ``test``, ``test_ood`` and ``large``
``level_seed``       0         seed of every level set
``large_size``       25        interior side of the ``large`` set
``keep_solvable``    False     the level space's default for ``mutate``
``edits``            jaxued    the edit operator of ``mutate`` (ACCEL): ``jaxued`` (no-op, wall
                               flip or goal move, 1/3 each) or ``toggle`` (heldout's earlier
                               one); see :mod:`heldout.envs.maze.mutate`
``walls``            jaxued    wall law of a ``random`` (domain randomisation) level: ``jaxued``
                               (``max_walls`` cells with replacement) or ``uniform`` (a count
                               from ``min_walls`` to ``max_walls``, distinct cells); see
                               :mod:`heldout.envs.maze.random_levels`
``min_walls``        0         fewest walls of a ``random`` level (``walls: uniform`` only)
``max_walls``        25        wall draws (``jaxued``) or most walls (``uniform``) of a ``random``
                               level (at most size * size - 2)
``reject_unsolvable`` False    draw ``random`` levels again until the goal can be reached
``render_mode``      None      ``"rgb_array"`` (or ``"ansi"`` for the single env)
==================== ========= ==========================================================

Grid sizes: a vec env's grid is the largest level of its level set (or ``size``, if larger).
With partial views smaller levels share it (the ``named`` set plays in one 51x51 vec env);
with ``full_obs`` all levels must have one size (split a mixed set with
:func:`~heldout.envs.maze.level_sets.split_by_size`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from heldout.envs.base import EnvFamily, LevelSet
from heldout.envs.maze.editor import MazeEditorVecEnv
from heldout.envs.maze.level import MAX_SIDE, MazeLevel
from heldout.envs.maze.level_sets import (
    GENERATED_SET_NAMES,
    LEVEL_SET_NAMES,
    build_level_set,
    generated_level_set,
    grid_size_of,
)
from heldout.envs.maze.mutate import DEFAULT_EDITS, check_edits
from heldout.envs.maze.random_levels import DEFAULT_MAX_WALLS, WALL_LAWS, check_wall_range
from heldout.envs.maze.rules import check_max_steps, check_view_size
from heldout.envs.maze.single import MazeEnv
from heldout.envs.maze.space import MazeLevelSpace
from heldout.envs.maze.vec import MazeVecEnv

MIN_SIZE = 7
DEFAULT_SIZE = 13
MAX_LEVELS = 50_000
"""Most levels a generated set may hold (generation takes about 1.3 ms a level on one core)."""


@dataclass(frozen=True)
class MazeOptions:
    """The maze family's options, validated (see the module docstring)."""

    size: int | None = None
    view_size: int = 5
    max_steps: int | None = None
    full_obs: bool = False
    num_train_levels: int | None = None
    num_test_levels: int = 200
    level_seed: int = 0
    large_size: int = 25
    keep_solvable: bool = False
    edits: str = DEFAULT_EDITS
    walls: str = WALL_LAWS[0]
    min_walls: int = 0
    max_walls: int = DEFAULT_MAX_WALLS
    reject_unsolvable: bool = False
    render_mode: str | None = None

    @classmethod
    def from_kwargs(cls, **options: Any) -> "MazeOptions":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown maze option(s) {', '.join(unknown)}; the maze takes {', '.join(known)}")
        opts = cls(**options)
        for name in ("full_obs", "keep_solvable"):
            if not isinstance(getattr(opts, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {getattr(opts, name)!r}")
        for name, low in (("num_train_levels", 1), ("num_test_levels", 1), ("level_seed", 0)):
            value = getattr(opts, name)
            if value is None and name == "num_train_levels":
                continue
            high = 2**32 - 1 if name == "level_seed" else MAX_LEVELS
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high:,}, got {value!r}")
        if opts.render_mode is not None and not isinstance(opts.render_mode, str):
            raise ValueError(f"render_mode must be rgb_array, ansi or none, got {opts.render_mode!r}")
        for name in ("size", "large_size"):
            value = getattr(opts, name)
            if value is not None and not (isinstance(value, (int, np.integer)) and MIN_SIZE <= value <= MAX_SIDE):
                raise ValueError(f"{name} must be an integer from {MIN_SIZE} to {MAX_SIDE}, got {value!r}")
        check_view_size(opts.view_size)
        check_max_steps(opts.max_steps)
        check_wall_range(opts.generation_size, opts.min_walls, opts.max_walls, opts.walls)
        check_edits(opts.edits)
        return opts

    @property
    def generation_size(self) -> int:
        return DEFAULT_SIZE if self.size is None else int(self.size)


class MazeFamily(EnvFamily):
    """Parametric mazes for environment design (levels are wall maps, not seeds)."""

    name = "maze"
    description = "parametric grid mazes: 13x13 default, 5x5 egocentric view, 3 actions, solve rate"
    level_set_names = LEVEL_SET_NAMES
    score_unit = "solve rate"
    default_num_train_levels = 200

    # -- levels ---------------------------------------------------------------------------------
    def level_space(self, **options: Any) -> MazeLevelSpace:
        return self._space(MazeOptions.from_kwargs(**options))

    @staticmethod
    def _space(opts: MazeOptions) -> MazeLevelSpace:
        return MazeLevelSpace(
            opts.generation_size,
            keep_solvable=opts.keep_solvable,
            edits=opts.edits,
            walls=opts.walls,
            min_walls=opts.min_walls,
            max_walls=opts.max_walls,
            reject_unsolvable=opts.reject_unsolvable,
        )

    def level_set(
        self, name: str, *, num_train_levels: int | None = None, level_seed: int = 0, **options: Any
    ) -> LevelSet:
        self.check_level_set_name(name)
        opts = MazeOptions.from_kwargs(num_train_levels=num_train_levels, level_seed=level_seed, **options)
        if name in GENERATED_SET_NAMES:
            return generated_level_set(name, self._space(opts))
        return build_level_set(
            name,
            num_train_levels=opts.num_train_levels or self.default_num_train_levels,
            num_test_levels=opts.num_test_levels,
            level_seed=opts.level_seed,
            size=opts.generation_size,
            large_size=opts.large_size,
        )

    def _resolve(self, level_set: str | LevelSet, opts: MazeOptions) -> tuple[LevelSet, tuple[int, int]]:
        """The level set and the grid size an env for it needs."""
        if isinstance(level_set, str):
            lset = self.level_set(
                level_set,
                num_train_levels=opts.num_train_levels,
                level_seed=opts.level_seed,
                size=opts.size,
                num_test_levels=opts.num_test_levels,
                large_size=opts.large_size,
                edits=opts.edits,
                walls=opts.walls,
                min_walls=opts.min_walls,
                max_walls=opts.max_walls,
                reject_unsolvable=opts.reject_unsolvable,
            )
        elif isinstance(level_set, LevelSet):
            lset = level_set
            if lset.finite and not all(isinstance(lv, MazeLevel) for lv in lset):
                space = MazeLevelSpace()
                lset = LevelSet(lset.name, levels=tuple(space.coerce(lv) for lv in lset), notes=lset.notes,
                                metadata=dict(lset.metadata))
        else:
            raise TypeError(f"level_set is a level set name or a LevelSet, got {type(level_set).__name__}")
        shape = grid_size_of(lset) or (opts.generation_size, opts.generation_size)
        if opts.size is not None and not opts.full_obs:
            shape = (max(shape[0], opts.size), max(shape[1], opts.size))
        if opts.full_obs and lset.finite and len({lv.shape for lv in lset}) > 1:
            sizes = ", ".join(f"{h}x{w}" for h, w in sorted({lv.shape for lv in lset}))
            raise ValueError(
                f"level set {lset.name!r} mixes grid sizes ({sizes}) but full_obs=True needs one size: "
                "split it with heldout.envs.maze.split_by_size(level_set) and make one env per size, "
                "or use the egocentric view (full_obs=False)"
            )
        return lset, shape

    # -- environments ---------------------------------------------------------------------------
    def make(self, level_set: str | LevelSet = "train", **options: Any) -> MazeEnv:
        return MazeEnv(**self._env_kwargs(level_set, options))

    def make_vec(
        self, num_envs: int, level_set: str | LevelSet = "train", *, seed: int = 0, **options: Any
    ) -> MazeVecEnv:
        return MazeVecEnv(num_envs, seed=seed, **self._env_kwargs(level_set, options))

    def _env_kwargs(self, level_set: str | LevelSet, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments :class:`MazeEnv` and :class:`MazeVecEnv` share, from the options."""
        opts = MazeOptions.from_kwargs(**options)
        lset, shape = self._resolve(level_set, opts)
        return {
            "level_set": lset,
            "level_space": self._space(opts),
            "grid_size": shape,
            "view_size": opts.view_size,
            "max_steps": opts.max_steps,
            "full_obs": opts.full_obs,
            "render_mode": opts.render_mode,
        }

    # -- scores ---------------------------------------------------------------------------------
    def level_editor(self, num_envs: int, *, seed: int = 0, n_walls: int = 50, z_dim: int = 50, **options: Any) -> MazeEditorVecEnv:
        """PAIRED's editor (:mod:`heldout.envs.maze.editor`) over interiors of the ``size`` option."""
        opts = MazeOptions.from_kwargs(**options)
        return MazeEditorVecEnv(num_envs, size=opts.generation_size, n_walls=n_walls, z_dim=z_dim, seed=seed)

    def solved(self, returns: np.ndarray) -> np.ndarray:
        """An episode is solved when its return is above 0 (the goal was reached in time)."""
        return np.asarray(returns) > 0

    def normalise(self, returns: np.ndarray, **options: Any) -> np.ndarray:
        """The maze's normalised score is the solve rate: 1.0 per solved episode, else 0.0."""
        return self.solved(returns).astype(np.float64)
