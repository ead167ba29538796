"""Maze levels: canonical form, byte/text/array round trips, parse errors, BFS."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heldout.envs.maze import MazeLevel, MazeLevelSpace, format_level, min_actions, parse_level, shortest_path_length
from heldout.envs.maze.paths import distance_map, is_solvable


@st.composite
def levels(draw, max_side: int = 12):
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(2 if h == 1 else 1, max_side))
    walls = np.array(draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), dtype=bool).reshape(h, w)
    cells = draw(st.lists(st.tuples(st.integers(0, h - 1), st.integers(0, w - 1)), min_size=2, max_size=2, unique=True))
    goal, start = cells
    walls[goal] = walls[start] = False
    return MazeLevel.from_walls(walls, goal, start, draw(st.integers(0, 3)))


SMALL = """\
#####
#>.G#
#.#.#
#####"""


# -- round trips ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(levels())
def test_bytes_round_trip(level):
    data = level.to_bytes()
    assert MazeLevel.from_bytes(data) == level
    assert len(data) == 8 + (level.height * level.width + 7) // 8


@settings(max_examples=200, deadline=None)
@given(levels())
def test_text_round_trip(level):
    text = format_level(level)
    assert parse_level(text) == level
    assert format_level(parse_level(text)) == text
    lines = text.split("\n")
    assert len(lines) == level.height + 2 and all(len(line) == level.width + 2 for line in lines)


@settings(max_examples=200, deadline=None)
@given(levels())
def test_array_round_trip(level):
    space = MazeLevelSpace()
    arr = space.encode(level)
    assert arr.shape == level.shape and arr.dtype == np.uint8
    assert space.decode(arr) == level


@settings(max_examples=50, deadline=None)
@given(levels())
def test_equal_levels_hash_equal_and_pickle(level):
    twin = MazeLevel.from_walls(np.array(level.wall_map), level.goal, level.start, level.start_dir)
    assert twin == level and hash(twin) == hash(level) and twin is not level
    assert pickle.loads(pickle.dumps(level)) == level


# -- the text form by hand ---------------------------------------------------------------------------
def test_parse_small_level_by_hand():
    level = parse_level(SMALL)
    assert level.shape == (2, 3)
    assert level.start == (0, 0) and level.start_dir == 0 and level.goal == (0, 2)
    assert level.wall_map.tolist() == [[False, False, False], [False, True, False]]
    assert level.to_array().tolist() == [[3, 0, 2], [0, 1, 0]]


def test_parse_tolerates_blank_lines_trailing_spaces_and_crlf():
    messy = "\n\n" + SMALL.replace("\n", "  \r\n") + "\n\n"
    assert parse_level(messy) == parse_level(SMALL)


def test_agent_characters_give_directions():
    for ch, d in zip(">v<^", range(4)):
        assert parse_level(SMALL.replace(">", ch)).start_dir == d


@pytest.mark.parametrize(
    "text, message",
    [
        (SMALL.replace("#.#.#", "#.x.#"), "line 3, column 3: unknown character 'x'"),
        (SMALL.replace("#####\n#>", "##.##\n#>", 1), "line 1, column 3: found '.' on the outer border"),
        (SMALL.replace("#.#.#", "..#.#"), "line 3, column 1: found '.' on the outer border"),
        (SMALL.replace("#.#.#", "#.#.##"), "line 3: row has 6 characters but line 1 has 5"),
        (SMALL.replace("#.#.#", "#G#.#"), "line 3, column 2: a second goal"),
        (SMALL.replace("#.#.#", "#.#^#"), "line 3, column 4: a second agent"),
        (SMALL.replace("G", "."), "no goal"),
        (SMALL.replace(">", "."), "no agent"),
        ("", "empty maze text"),
        ("##\n##", "at least 3x3"),
    ],
)
def test_malformed_text_is_rejected_with_its_position(text, message):
    with pytest.raises(ValueError) as err:
        parse_level(text)
    assert message in str(err.value)


def test_line_numbers_count_leading_blank_lines():
    with pytest.raises(ValueError, match="line 5, column 3"):
        parse_level("\n\n" + SMALL.replace("#.#.#", "#.?.#"))


def test_space_coerce_accepts_text_and_bytes_and_rejects_other_types():
    space = MazeLevelSpace()
    level = parse_level(SMALL)
    assert space.coerce(SMALL) == level and space.coerce(level.to_bytes()) == level and space.coerce(level) is level
    with pytest.raises(TypeError, match="MazeLevel"):
        space.coerce(42)


# -- validation --------------------------------------------------------------------------------------
def test_invalid_levels_are_rejected():
    walls = np.zeros((3, 3), dtype=bool)
    with pytest.raises(ValueError, match="same cell"):
        MazeLevel.from_walls(walls, (0, 0), (0, 0))
    with pytest.raises(ValueError, match="outside"):
        MazeLevel.from_walls(walls, (3, 0), (0, 0))
    with pytest.raises(ValueError, match="start_dir"):
        MazeLevel.from_walls(walls, (1, 1), (0, 0), 4)
    walls[1, 1] = True
    with pytest.raises(ValueError, match="goal cell .* is a wall"):
        MazeLevel.from_walls(walls, (1, 1), (0, 0))
    with pytest.raises(ValueError, match="packed bytes"):
        MazeLevel(3, 3, b"\x00", (0, 1), (0, 0))
    with pytest.raises(ValueError, match="trailing bits"):
        MazeLevel(3, 3, b"\x00\x01", (0, 1), (0, 0))  # 9 cells use 1 bit of the second byte
    with pytest.raises(ValueError, match="version"):
        MazeLevel.from_bytes(b"\x09" + parse_level(SMALL).to_bytes()[1:])


def test_decode_names_what_is_wrong():
    space = MazeLevelSpace()
    with pytest.raises(ValueError, match="exactly one goal"):
        space.decode(np.array([[3, 0], [0, 0]]))
    with pytest.raises(ValueError, match="exactly one agent"):
        space.decode(np.array([[2, 0], [0, 0]]))
    with pytest.raises(ValueError, match=r"cell \(0, 1\) has code 9"):
        space.decode(np.array([[2, 9], [3, 0]]))


def test_replace_edits_a_copy():
    level = parse_level(SMALL)
    moved = level.replace(goal=(1, 2))
    assert moved.goal == (1, 2) and level.goal == (0, 2)
    with pytest.raises(TypeError, match="unknown fields"):
        level.replace(colour="red")


# -- BFS ---------------------------------------------------------------------------------------------
def test_shortest_path_and_min_actions_by_hand():
    level = parse_level(SMALL)
    assert shortest_path_length(level) == 2  # east, east
    assert min_actions(level) == 2  # forward, forward
    behind = parse_level(SMALL.replace(">", "<"))
    assert min_actions(behind) == 4  # turn, turn, forward, forward
    detour = parse_level(
        """\
#######
#>#..G#
#.#.###
#.....#
#######"""
    )
    # down 2, right 2, up 2, right 2 = 8 steps; turns: R, L, L, R = 4
    assert shortest_path_length(detour) == 8
    assert min_actions(detour) == 12


def test_unsolvable_level():
    level = parse_level("#######\n#>.#.G#\n#######")
    assert shortest_path_length(level) is None and min_actions(level) is None
    assert not is_solvable(level) and not MazeLevelSpace().is_solvable(level)
    assert distance_map(level.wall_map, level.start).tolist() == [[0, 1, -1, -1, -1]]
