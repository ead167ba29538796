"""The text form of a maze level.

One row per line; ``#`` wall, ``.`` floor, ``G`` goal, ``>`` ``v`` ``<`` ``^`` the agent's
start facing east, south, west, north. **The outer wall is part of the text**: a 13x13
level is 15 lines of 15 characters whose first and last rows and columns are all ``#``.
Leading and trailing blank lines and trailing spaces are ignored. Errors name the line and
column (1-based, counted in the text as given).

>>> print(format_level(level))          # doctest: +SKIP
#####
#>.G#
#.#.#
#####
"""

from __future__ import annotations

import numpy as np

from heldout.envs.maze.level import AGENT_CHARS, MazeLevel

WALL_CHAR, FLOOR_CHAR, GOAL_CHAR = "#", ".", "G"
ALLOWED = WALL_CHAR + FLOOR_CHAR + GOAL_CHAR + AGENT_CHARS


def format_level(level: MazeLevel) -> str:
    """The text form of ``level``, outer wall included, without a trailing newline."""
    h, w = level.shape
    grid = np.full((h + 2, w + 2), WALL_CHAR, dtype="<U1")
    grid[1:-1, 1:-1] = np.where(level.wall_map, WALL_CHAR, FLOOR_CHAR)
    grid[level.goal[0] + 1, level.goal[1] + 1] = GOAL_CHAR
    grid[level.start[0] + 1, level.start[1] + 1] = AGENT_CHARS[level.start_dir]
    return "\n".join("".join(row) for row in grid)


def parse_level(text: str) -> MazeLevel:
    """The level whose text form is ``text``; a ``ValueError`` names the line and column of a problem."""
    if not isinstance(text, str):
        raise TypeError(f"a maze level's text form is a str, got {type(text).__name__}")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    numbered = [(i + 1, line.rstrip()) for i, line in enumerate(lines)]
    while numbered and not numbered[0][1]:
        numbered.pop(0)
    while numbered and not numbered[-1][1]:
        numbered.pop()
    if not numbered:
        raise ValueError("empty maze text: expected rows of # . G > v < ^ with the outer wall included")
    first_no, first = numbered[0]
    for no, line in numbered:
        if len(line) != len(first):
            raise ValueError(
                f"line {no}: row has {len(line)} characters but line {first_no} has {len(first)}; "
                "every row of a maze must be equally long"
            )
    if len(numbered) < 3 or len(first) < 3:
        raise ValueError(
            f"line {first_no}: a maze text is at least 3x3 (the outer wall around an interior of at "
            f"least one cell), got {len(numbered)}x{len(first)}"
        )

    goals: list[tuple[int, int, int, int]] = []  # (row, col, line, column) of each goal
    agents: list[tuple[int, int, int, int, int]] = []
    height, width = len(numbered) - 2, len(first) - 2
    walls = np.zeros((height, width), dtype=bool)
    for r, (no, line) in enumerate(numbered):
        for c, ch in enumerate(line):
            where = f"line {no}, column {c + 1}"
            if ch not in ALLOWED:
                raise ValueError(f"{where}: unknown character {ch!r}; use one of {' '.join(ALLOWED)}")
            on_border = r in (0, len(numbered) - 1) or c in (0, len(line) - 1)
            if on_border:
                if ch != WALL_CHAR:
                    raise ValueError(
                        f"{where}: found {ch!r} on the outer border; the text form includes the outer "
                        "wall, so the first and last rows and columns must be all '#'"
                    )
                continue
            if ch == WALL_CHAR:
                walls[r - 1, c - 1] = True
            elif ch == GOAL_CHAR:
                goals.append((r - 1, c - 1, no, c + 1))
            elif ch in AGENT_CHARS:
                agents.append((r - 1, c - 1, no, c + 1, AGENT_CHARS.index(ch)))
    if len(goals) != 1:
        if not goals:
            raise ValueError(f"line {first_no}: the maze has no goal 'G'; put exactly one")
        _, _, no, col = goals[1]
        raise ValueError(f"line {no}, column {col}: a second goal 'G' (the first is on line {goals[0][2]}); keep one")
    if len(agents) != 1:
        if not agents:
            raise ValueError(f"line {first_no}: the maze has no agent (one of > v < ^); put exactly one")
        _, _, no, col, _ = agents[1]
        raise ValueError(f"line {no}, column {col}: a second agent (the first is on line {agents[0][2]}); keep one")
    if height > 255 or width > 255:
        raise ValueError(f"line {first_no}: the interior is {height}x{width}; at most 255x255 is supported")
    gr, gc, _, _ = goals[0]
    sr, sc, _, _, d = agents[0]
    return MazeLevel.from_walls(walls, (gr, gc), (sr, sc), d)
