"""Structure families: random level generators, each yielding only solvable levels.

Every generator is ``generator(rng, height, width) -> MazeLevel``. It builds a wall map of
its structure, then puts the start on a random floor cell (random direction) and the goal
on a random floor cell reachable from it, so each level is solvable by construction (and
:func:`generate` checks it with a BFS).

Training families (the ``train`` and ``test`` level sets):

* ``clutter``   k single walls at random cells, k uniform in [0, 60] on 13x13 (scaled with
                the area): the "domain randomisation" baseline of the UED literature.
* ``perfect``   perfect mazes: a random spanning tree of the cells on even coordinates
                (randomised depth-first search), one path between any two cells.
* ``rooms``     recursive division into rooms of random size, one door in each dividing wall.
* ``corridors`` one-cell-wide straight corridors on the even rows and columns, each branching
                off an earlier one: a corridor network with loops.

Held-out families (the ``test_ood`` level set):

* ``caves``     cellular-automaton caves (random fill, smoothing), the largest cave kept.
* ``blocks``    an obstacle field of random 2x2 to 4x4 rectangular blocks.
* ``rings``     concentric rings of walls with random gaps and cross walls (a labyrinth).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.paths import distance_map

Generator = Callable[[np.random.Generator, int, int], MazeLevel]
WallMaker = Callable[[np.random.Generator, int, int], np.ndarray]

MIN_SIDE = 5
MAX_TRIES = 100


def place_start_and_goal(walls: np.ndarray, rng: np.random.Generator) -> MazeLevel | None:
    """A level on ``walls`` with a random start and a goal reachable from it; None if there is no room."""
    free = np.flatnonzero(~walls.ravel())
    if free.size < 2:
        return None
    w = walls.shape[1]
    start = int(free[rng.integers(free.size)])
    dist = distance_map(walls, (start // w, start % w)).ravel()
    reachable = np.flatnonzero(dist > 0)
    if reachable.size == 0:
        return None
    goal = int(reachable[rng.integers(reachable.size)])
    return MazeLevel.from_walls(walls, (goal // w, goal % w), (start // w, start % w), int(rng.integers(4)))


def _largest_region_only(walls: np.ndarray) -> np.ndarray:
    """Fill every floor region except the largest one with walls."""
    walls = walls.copy()
    unseen = ~walls
    best: np.ndarray | None = None
    while unseen.any():
        r, c = np.argwhere(unseen)[0]
        region = distance_map(walls, (int(r), int(c))) >= 0
        unseen &= ~region
        if best is None or region.sum() > best.sum():
            best = region
    if best is not None:
        walls |= ~best
    return walls


# -- wall makers --------------------------------------------------------------------------------
def clutter_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    max_walls = round(60 * h * w / 169)
    k = int(rng.integers(0, max_walls + 1))
    walls = np.zeros(h * w, dtype=bool)
    walls[rng.choice(h * w, size=min(k, h * w - 2), replace=False)] = True
    return walls.reshape(h, w)


def perfect_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Randomised depth-first search over the cells on even coordinates."""
    walls = np.ones((h, w), dtype=bool)
    ch, cw = (h + 1) // 2, (w + 1) // 2  # cells on even rows/columns
    visited = np.zeros((ch, cw), dtype=bool)
    start = (int(rng.integers(ch)), int(rng.integers(cw)))
    visited[start] = True
    walls[start[0] * 2, start[1] * 2] = False
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
            if 0 <= r + dr < ch and 0 <= c + dc < cw and not visited[r + dr, c + dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        visited[nr, nc] = True
        walls[nr * 2, nc * 2] = False
        walls[r + nr, c + nc] = False  # the cell between (2r, 2c) and (2nr, 2nc)
        stack.append((nr, nc))
    return walls


def rooms_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Recursive division: walls on odd coordinates, doors on even ones, so no door is ever blocked."""
    walls = np.zeros((h, w), dtype=bool)
    min_room = int(rng.integers(2, 5))  # rooms stop splitting below about twice this size

    def split(r0: int, r1: int, c0: int, c1: int) -> None:  # inclusive bounds of open cells
        height, width = r1 - r0 + 1, c1 - c0 + 1
        can_rows = [r for r in range(r0 + 1, r1) if r % 2 == 1 and r - r0 >= min_room and r1 - r >= min_room]
        can_cols = [c for c in range(c0 + 1, c1) if c % 2 == 1 and c - c0 >= min_room and c1 - c >= min_room]
        if not can_rows and not can_cols:
            return
        horizontal = bool(can_rows) and (not can_cols or height > width or (height == width and rng.random() < 0.5))
        if horizontal:
            r = can_rows[int(rng.integers(len(can_rows)))]
            walls[r, c0 : c1 + 1] = True
            doors = [c for c in range(c0, c1 + 1) if c % 2 == 0]
            walls[r, doors[int(rng.integers(len(doors)))]] = False
            split(r0, r - 1, c0, c1)
            split(r + 1, r1, c0, c1)
        else:
            c = can_cols[int(rng.integers(len(can_cols)))]
            walls[r0 : r1 + 1, c] = True
            doors = [r for r in range(r0, r1 + 1) if r % 2 == 0]
            walls[doors[int(rng.integers(len(doors)))], c] = False
            split(r0, r1, c0, c - 1)
            split(r0, r1, c + 1, c1)

    split(0, h - 1, 0, w - 1)
    return walls


def corridor_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One-cell-wide corridors along even rows and columns, each branching off an earlier one
    (a network with loops, unlike a perfect maze), carved until 25%..45% of the grid is open."""
    walls = np.ones((h, w), dtype=bool)
    walls[2 * int(rng.integers((h + 1) // 2)), 2 * int(rng.integers((w + 1) // 2))] = False
    target = rng.uniform(0.25, 0.45) * h * w
    max_len = max(2, max(h, w) // 3)  # in lattice steps of two cells
    for _ in range(20 * h * w):
        if (~walls).sum() >= target:
            break
        junctions = np.argwhere(~walls[::2, ::2]) * 2
        r, c = junctions[int(rng.integers(len(junctions)))]
        dr, dc = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
        for _step in range(int(rng.integers(1, max_len + 1))):
            if not (0 <= r + 2 * dr < h and 0 <= c + 2 * dc < w):
                break
            walls[r + dr, c + dc] = walls[r + 2 * dr, c + 2 * dc] = False
            r, c = r + 2 * dr, c + 2 * dc
    return walls


def cave_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random fill then four rounds of the 4-5 smoothing rule (outside counts as rock)."""
    walls = rng.random((h, w)) < 0.45
    for _ in range(4):
        padded = np.pad(walls, 1, constant_values=True).astype(np.int8)
        around = sum(
            padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
        )  # includes the cell itself
        walls = around >= 5
    walls = _largest_region_only(walls)
    if (~walls).sum() < 0.25 * h * w:  # too little cave: let the caller draw again
        walls[:] = True
    return walls


def block_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random rectangular blocks (2..4 cells a side) until 15%..35% of the grid is covered."""
    walls = np.zeros((h, w), dtype=bool)
    target = rng.uniform(0.15, 0.35) * h * w
    for _ in range(h * w):
        if walls.sum() >= target:
            break
        bh, bw = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        r, c = int(rng.integers(0, max(1, h - bh + 1))), int(rng.integers(0, max(1, w - bw + 1)))
        walls[r : r + bh, c : c + bw] = True
    return walls


def ring_walls(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Concentric rectangular rings on odd offsets, 1-2 gaps each, random cross walls between them."""
    walls = np.zeros((h, w), dtype=bool)
    k = 1
    while h - 1 - k > k + 1 and w - 1 - k > k + 1:
        r0, r1, c0, c1 = k, h - 1 - k, k, w - 1 - k
        ring = (
            [(r0, c) for c in range(c0, c1 + 1)]
            + [(r, c1) for r in range(r0 + 1, r1 + 1)]
            + [(r1, c) for c in range(c1 - 1, c0 - 1, -1)]
            + [(r, c0) for r in range(r1 - 1, r0, -1)]
        )
        for cell in ring:
            walls[cell] = True
        corners = {(r0, c0), (r0, c1), (r1, c0), (r1, c1)}
        sides = [cell for cell in ring if cell not in corners]
        for i in rng.choice(len(sides), size=int(rng.integers(1, 3)), replace=False):
            walls[sides[int(i)]] = False
        # cross walls in the corridor just outside this ring (offset k - 1), away from its gaps
        corridor = (
            [(k - 1, c) for c in range(k - 1, w - k + 1)]
            + [(r, w - k) for r in range(k, h - k + 1)]
            + [(h - k, c) for c in range(w - k - 1, k - 2, -1)]
            + [(r, k - 1) for r in range(h - k - 1, k - 1, -1)]
        )
        for i in rng.choice(len(corridor), size=int(rng.integers(0, 3)), replace=False):
            walls[corridor[int(i)]] = True
        k += 2
    return walls


def _from_walls(make_walls: WallMaker, name: str) -> Generator:
    def generator(rng: np.random.Generator, height: int, width: int) -> MazeLevel:
        if height < MIN_SIDE or width < MIN_SIDE:
            raise ValueError(f"the {name!r} generator needs at least {MIN_SIDE}x{MIN_SIDE}, got {height}x{width}")
        for _ in range(MAX_TRIES):
            level = place_start_and_goal(make_walls(rng, height, width), rng)
            if level is not None:
                return level
        raise RuntimeError(f"the {name!r} generator found no solvable {height}x{width} level in {MAX_TRIES} tries")

    generator.__name__ = f"generate_{name}"
    generator.__doc__ = f"A random solvable level of the {name!r} structure family."
    return generator


GENERATORS: dict[str, Generator] = {
    "clutter": _from_walls(clutter_walls, "clutter"),
    "perfect": _from_walls(perfect_walls, "perfect"),
    "rooms": _from_walls(rooms_walls, "rooms"),
    "corridors": _from_walls(corridor_walls, "corridors"),
    "caves": _from_walls(cave_walls, "caves"),
    "blocks": _from_walls(block_walls, "blocks"),
    "rings": _from_walls(ring_walls, "rings"),
}
TRAIN_FAMILIES = ("clutter", "perfect", "rooms", "corridors")
HELD_OUT_FAMILIES = ("caves", "blocks", "rings")


def generate(family: str, rng: np.random.Generator, height: int = 13, width: int | None = None) -> MazeLevel:
    """A random solvable level of the structure ``family`` (see :data:`GENERATORS`)."""
    if family not in GENERATORS:
        raise KeyError(f"unknown maze structure family {family!r}; choose one of {', '.join(GENERATORS)}")
    return GENERATORS[family](rng, height, height if width is None else width)
