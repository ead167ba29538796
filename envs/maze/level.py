"""A maze level: wall map, goal cell, start cell and start direction.

Coordinates are ``(row, column)`` in the level's *interior*, 0-based; the outer wall around
the interior is implicit (it is never stored and cannot be edited). Directions follow
minigrid: 0 east (``>``), 1 south (``v``), 2 west (``<``), 3 north (``^``).

A :class:`MazeLevel` is frozen, hashable and canonical: two levels are equal exactly when
they have the same size, walls, goal, start and direction. The wall map is stored as
packed bits (row-major, most significant bit first, unused trailing bits zero), so the
level is small and its hash is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

MAX_SIDE = 255
"""Largest interior height or width (the byte encoding stores each side in one byte)."""

DIRECTION_VECTORS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (0, -1), (-1, 0))
"""(row step, column step) of directions 0 east, 1 south, 2 west, 3 north."""

AGENT_CHARS = ">v<^"
"""Text character of the agent facing direction 0, 1, 2, 3."""

_BYTES_VERSION = 1
_HEADER = 8  # version, height, width, goal row, goal col, start row, start col, direction

# Cell codes of the categorical array encoding (see MazeLevel.to_array).
FLOOR, WALL, GOAL = 0, 1, 2
AGENT = 3
"""Agent codes are ``AGENT + direction`` (3..6)."""
NUM_CELL_CODES = 7
_FIELDS = ("height", "width", "walls", "goal", "start", "start_dir")


def _cell(value: object, what: str) -> tuple[int, int]:
    try:
        row, col = value  # type: ignore[misc]
        return int(row), int(col)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (row, column) pair, got {value!r}") from None


@dataclass(frozen=True)
class MazeLevel:
    """One maze level. Build it with :meth:`from_walls` (or parse its text form).

    ``walls`` holds the packed wall bits; use :attr:`wall_map` for a boolean array.
    """

    height: int
    width: int
    walls: bytes
    goal: tuple[int, int]
    start: tuple[int, int]
    start_dir: int = 0

    def __post_init__(self) -> None:
        h, w = int(self.height), int(self.width)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "width", w)
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or h * w < 2:
            raise ValueError(
                f"a maze interior must be between 1 and {MAX_SIDE} cells on each side with at least "
                f"2 cells, got {h}x{w}"
            )
        if not isinstance(self.walls, bytes):
            object.__setattr__(self, "walls", bytes(self.walls))
        nbytes = (h * w + 7) // 8
        if len(self.walls) != nbytes:
            raise ValueError(
                f"walls of a {h}x{w} maze are {nbytes} packed bytes, got {len(self.walls)}; "
                "use MazeLevel.from_walls(array, ...) to build a level from a boolean array"
            )
        spare = nbytes * 8 - h * w
        if spare and self.walls[-1] & ((1 << spare) - 1):
            raise ValueError("the unused trailing bits of the packed walls must be zero (canonical form)")
        goal, start = _cell(self.goal, "goal"), _cell(self.start, "start")
        object.__setattr__(self, "goal", goal)
        object.__setattr__(self, "start", start)
        for name, (r, c) in (("goal", goal), ("start", start)):
            if not (0 <= r < h and 0 <= c < w):
                raise ValueError(f"{name} {r, c} is outside the {h}x{w} interior")
        if goal == start:
            raise ValueError(f"goal and start are the same cell {goal}; put them on different cells")
        d = int(self.start_dir)
        if not 0 <= d <= 3:
            raise ValueError(f"start_dir must be 0 (east), 1 (south), 2 (west) or 3 (north), got {self.start_dir!r}")
        object.__setattr__(self, "start_dir", d)
        walls = self.wall_map
        for name, (r, c) in (("goal", goal), ("start", start)):
            if walls[r, c]:
                raise ValueError(f"the {name} cell {r, c} is a wall; goal and start must be on floor cells")

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_walls(
        cls, walls: np.ndarray, goal: tuple[int, int], start: tuple[int, int], start_dir: int = 0
    ) -> "MazeLevel":
        """A level from a boolean (height, width) wall array (True = wall) of the interior."""
        arr = np.asarray(walls)
        if arr.ndim != 2:
            raise ValueError(f"walls must be a 2-D (height, width) array, got shape {arr.shape}")
        packed = np.packbits(arr.astype(bool).ravel()).tobytes()
        return cls(arr.shape[0], arr.shape[1], packed, goal, start, start_dir)

    # -- views ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the interior."""
        return self.height, self.width

    @cached_property
    def wall_map(self) -> np.ndarray:
        """Read-only boolean (height, width) array, True where a wall is."""
        bits = np.unpackbits(np.frombuffer(self.walls, dtype=np.uint8), count=self.height * self.width)
        arr = bits.astype(bool).reshape(self.height, self.width)
        arr.flags.writeable = False
        return arr

    @property
    def num_walls(self) -> int:
        return int(self.wall_map.sum())

    def replace(self, **changes: object) -> "MazeLevel":
        """A copy with some of ``walls`` (a boolean array), ``goal``, ``start``, ``start_dir`` changed."""
        walls = changes.pop("walls", self.wall_map)
        unknown = set(changes) - {"goal", "start", "start_dir"}
        if unknown:
            raise TypeError(f"replace() got unknown fields {sorted(unknown)}; use walls, goal, start, start_dir")
        return MazeLevel.from_walls(
            np.asarray(walls),
            changes.get("goal", self.goal),  # type: ignore[arg-type]
            changes.get("start", self.start),  # type: ignore[arg-type]
            changes.get("start_dir", self.start_dir),  # type: ignore[arg-type]
        )

    def __getstate__(self) -> dict[str, object]:
        # Pickle the fields only, not the cached wall array.
        return {name: getattr(self, name) for name in _FIELDS}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name in _FIELDS:
            object.__setattr__(self, name, state[name])

    def __repr__(self) -> str:
        return (
            f"MazeLevel({self.height}x{self.width}, walls={self.num_walls}, goal={self.goal}, "
            f"start={self.start}, start_dir={self.start_dir})"
        )

    def __str__(self) -> str:
        from heldout.envs.maze.text import format_level

        return format_level(self)

    # -- byte encoding ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Compact canonical bytes: an 8-byte header then the packed walls."""
        header = bytes(
            [_BYTES_VERSION, self.height, self.width, *self.goal, *self.start, self.start_dir]
        )
        return header + self.walls

    @classmethod
    def from_bytes(cls, data: bytes) -> "MazeLevel":
        """The level written by :meth:`to_bytes`."""
        data = bytes(data)
        if len(data) < _HEADER:
            raise ValueError(f"maze level bytes are at least {_HEADER} long, got {len(data)}")
        version, h, w, gr, gc, sr, sc, d = data[:_HEADER]
        if version != _BYTES_VERSION:
            raise ValueError(f"unknown maze level encoding version {version}; this library reads version {_BYTES_VERSION}")
        return cls(h, w, data[_HEADER:], (gr, gc), (sr, sc), d)

    # -- categorical array encoding ------------------------------------------------------------
    def to_array(self) -> np.ndarray:
        """(height, width) uint8 cell codes: 0 floor, 1 wall, 2 goal, 3 + direction the agent."""
        arr = self.wall_map.astype(np.uint8)  # FLOOR 0 / WALL 1
        arr[self.goal] = GOAL
        arr[self.start] = AGENT + self.start_dir
        return arr

    @classmethod
    def from_array(cls, array: np.ndarray) -> "MazeLevel":
        """The level whose :meth:`to_array` is ``array``; errors name the offending cells."""
        arr = np.asarray(array)
        if arr.ndim != 2:
            raise ValueError(f"a maze array is 2-D (height, width), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.equal(np.mod(arr, 1), 0)):
                raise ValueError("a maze array holds integer cell codes 0..6")
            arr = arr.astype(np.int64)
        bad = np.argwhere((arr < 0) | (arr >= NUM_CELL_CODES))
        if bad.size:
            r, c = bad[0]
            raise ValueError(f"cell {int(r), int(c)} has code {arr[r, c]}; codes are 0 floor, 1 wall, 2 goal, 3-6 agent")
        goals = np.argwhere(arr == GOAL)
        agents = np.argwhere(arr >= AGENT)
        if len(goals) != 1:
            raise ValueError(f"a maze array needs exactly one goal (code 2), found {len(goals)}")
        if len(agents) != 1:
            raise ValueError(f"a maze array needs exactly one agent (codes 3-6), found {len(agents)}")
        (gr, gc), (sr, sc) = goals[0], agents[0]
        return cls.from_walls(arr == WALL, (gr, gc), (sr, sc), int(arr[sr, sc]) - AGENT)
