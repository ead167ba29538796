"""The maze family's :class:`LevelSpace`: what samplers and generators may know of its levels."""

from __future__ import annotations

from typing import Any

import numpy as np

from heldout.envs.base import LevelSpace
from heldout.envs.maze import paths
from heldout.envs.maze.level import NUM_CELL_CODES, MazeLevel
from heldout.envs.maze.mutate import DEFAULT_EDITS, check_edits, mutate_level
from heldout.envs.maze.random_levels import (
    DEFAULT_MAX_WALLS,
    WALL_LAWS,
    check_wall_range,
    empty_level,
    random_level,
)
from heldout.envs.maze.render import DEFAULT_TILE, render_level
from heldout.envs.maze.text import format_level, parse_level


class MazeLevelSpace(LevelSpace):
    """Levels of the maze family: text form, pictures, array encoding, edits, solvability,
    generators and features.

    ``size`` is the interior side of the levels this space's generators work on (the shape
    of :meth:`encode` for those levels is ``(size, size)``; levels of other sizes still
    encode to their own shape). ``keep_solvable`` and ``edits`` (the edit operator, see
    :mod:`heldout.envs.maze.mutate`) configure :meth:`mutate`. ``walls`` (the wall law),
    ``min_walls``, ``max_walls`` and ``reject_unsolvable`` configure the ``random``
    generator (see :mod:`heldout.envs.maze.random_levels`).
    """

    family = "maze"
    generator_names = ("random", "empty")
    num_cell_codes = NUM_CELL_CODES
    """Categories of the array encoding: 0 floor, 1 wall, 2 goal, 3-6 agent facing east/south/west/north."""

    def __init__(
        self,
        size: int = 13,
        *,
        keep_solvable: bool = False,
        edits: str = DEFAULT_EDITS,
        tile: int = DEFAULT_TILE,
        walls: str = WALL_LAWS[0],
        min_walls: int = 0,
        max_walls: int = DEFAULT_MAX_WALLS,
        reject_unsolvable: bool = False,
    ) -> None:
        self.size = int(size)
        self.walls = walls
        self.min_walls, self.max_walls = int(min_walls), int(max_walls)  # checked by generate()
        self.reject_unsolvable = bool(reject_unsolvable)
        self.keep_solvable = bool(keep_solvable)
        self.edits = check_edits(edits)
        self.tile = int(tile)

    def __repr__(self) -> str:
        return (
            f"MazeLevelSpace(size={self.size}, keep_solvable={self.keep_solvable}, edits={self.edits}, "
            f"walls={self.walls} {self.min_walls}..{self.max_walls}, reject_unsolvable={self.reject_unsolvable})"
        )

    @property
    def encoding_shape(self) -> tuple[int, int]:
        """Shape of :meth:`encode` for levels of this space's size."""
        return self.size, self.size

    # -- text -----------------------------------------------------------------------------------
    def format(self, level: MazeLevel) -> str:
        return format_level(self.coerce(level))

    def parse(self, text: str) -> MazeLevel:
        return parse_level(text)

    def coerce(self, level: Any) -> MazeLevel:
        """A :class:`MazeLevel` from a level, its text form or its bytes."""
        if isinstance(level, MazeLevel):
            return level
        if isinstance(level, str):
            return parse_level(level)
        if isinstance(level, (bytes, bytearray)):
            return MazeLevel.from_bytes(bytes(level))
        raise TypeError(f"expected a MazeLevel, its text form (str) or its bytes, got {type(level).__name__}")

    # -- pictures -------------------------------------------------------------------------------
    def render(self, level: MazeLevel) -> np.ndarray:
        return render_level(self.coerce(level), tile=self.tile)

    # -- environment design ---------------------------------------------------------------------
    def encode(self, level: MazeLevel) -> np.ndarray:
        """(height, width) uint8 categorical cells: 0 floor, 1 wall, 2 goal, 3 + direction agent."""
        return self.coerce(level).to_array()

    def decode(self, array: np.ndarray) -> MazeLevel:
        """The level of an :meth:`encode` array (exactly one goal and one agent; errors say what is wrong)."""
        return MazeLevel.from_array(array)

    def mutate(
        self,
        level: MazeLevel,
        rng: np.random.Generator,
        num_edits: int = 1,
        *,
        keep_solvable: bool | None = None,
    ) -> MazeLevel:
        """``level`` after ``num_edits`` steps of the space's edit operator (``edits``: by default
        jaxued's, each step a no-op, a wall flip or a goal move).

        ``keep_solvable`` (default: the space's setting) never turns a solvable level unsolvable.
        """
        keep = self.keep_solvable if keep_solvable is None else keep_solvable
        return mutate_level(self.coerce(level), rng, num_edits, keep_solvable=keep, edits=self.edits)

    def generate(self, name: str, rng: np.random.Generator) -> MazeLevel:
        """A ``random`` (domain randomisation) or ``empty`` level of this space's size."""
        if name == "random":
            check_wall_range(self.size, self.min_walls, self.max_walls, self.walls)
            return random_level(
                rng, self.size, min_walls=self.min_walls, max_walls=self.max_walls, walls=self.walls,
                reject_unsolvable=self.reject_unsolvable,
            )
        if name == "empty":
            return empty_level(rng, self.size)
        raise ValueError(f"the maze has no level generator {name!r}; choose one of {', '.join(self.generator_names)}")

    def features(self, level: MazeLevel) -> dict[str, float]:
        """``wall_density`` (walls / interior cells) and ``shortest_path`` (grid steps from start
        to goal; NaN when the goal cannot be reached)."""
        level = self.coerce(level)
        steps = paths.shortest_path_length(level)
        return {
            "wall_density": level.num_walls / (level.height * level.width),
            "shortest_path": float("nan") if steps is None else float(steps),
        }

    def is_solvable(self, level: MazeLevel) -> bool:
        return paths.is_solvable(self.coerce(level))

    def shortest_path_length(self, level: MazeLevel) -> int | None:
        """Fewest grid steps from start to goal, None if unsolvable."""
        return paths.shortest_path_length(self.coerce(level))
