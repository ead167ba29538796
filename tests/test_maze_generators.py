"""Maze structure families, level sets, named mazes and the mutation operator."""

import numpy as np
import pytest

from heldout import envs
from heldout.envs.maze import (
    GENERATORS,
    HELD_OUT_FAMILIES,
    TRAIN_FAMILIES,
    MazeLevel,
    MazeLevelSpace,
    generate,
    is_solvable,
    named_level,
    named_levels,
    shortest_path_length,
    split_by_size,
)


# -- generators ------------------------------------------------------------------------------------
def test_at_least_six_families_split_into_train_and_held_out():
    assert len(GENERATORS) >= 6
    assert len(TRAIN_FAMILIES) == 4 and set(TRAIN_FAMILIES).isdisjoint(HELD_OUT_FAMILIES)
    assert set(TRAIN_FAMILIES) | set(HELD_OUT_FAMILIES) == set(GENERATORS)


@pytest.mark.parametrize("family", sorted(GENERATORS))
@pytest.mark.parametrize("size", [7, 13, 20])
def test_every_generator_yields_only_solvable_levels(family, size):
    levels = [generate(family, np.random.default_rng([size, i]), size) for i in range(30)]
    assert all(lv.shape == (size, size) for lv in levels)
    assert all(is_solvable(lv) for lv in levels)
    assert len(set(levels)) >= 25  # varied, not one level over and over
    assert np.mean([lv.num_walls for lv in levels]) > 0


@pytest.mark.parametrize("family", sorted(GENERATORS))
def test_generators_are_deterministic_given_the_rng(family):
    a = generate(family, np.random.default_rng(7), 11, 15)
    b = generate(family, np.random.default_rng(7), 11, 15)
    assert a == b and a.shape == (11, 15)


def test_generator_errors():
    with pytest.raises(KeyError, match="unknown maze structure family 'spiral'"):
        generate("spiral", np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 5x5"):
        generate("perfect", np.random.default_rng(0), 3)


def test_perfect_mazes_have_exactly_one_path_between_cells():
    level = generate("perfect", np.random.default_rng(1), 13)
    free = int((~level.wall_map).sum())
    walls = level.wall_map
    edges = int((~walls[:, 1:] & ~walls[:, :-1]).sum() + (~walls[1:, :] & ~walls[:-1, :]).sum())
    assert edges == free - 1  # a connected graph with n - 1 edges is a tree


# -- level sets ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sets():
    family = envs.get("maze")
    return {
        name: family.level_set(name, num_train_levels=120, num_test_levels=60)
        for name in family.level_set_names
        if name not in ("random", "empty")  # unbounded: tests/test_ued_levels.py
    }


def test_level_set_names_and_sizes(sets):
    assert envs.get("maze").level_set_names == ("train", "test", "test_ood", "named", "large", "random", "empty")
    assert set(sets) == {"train", "test", "test_ood", "named", "large"}
    assert len(sets["train"]) == 120 and len(sets["test"]) == 60 and len(sets["test_ood"]) == 60
    assert {lv.shape for lv in sets["train"]} == {(13, 13)}
    assert {lv.shape for lv in sets["large"]} == {(25, 25)}
    assert {lv.shape for lv in sets["named"]} == {(13, 13), (21, 21), (51, 51)}


def test_level_sets_are_disjoint_by_content_and_free_of_duplicates(sets):
    train = set(sets["train"])
    for name in ("test", "test_ood", "large"):
        assert train.isdisjoint(sets[name]), name
        assert len(set(sets[name])) == len(sets[name]), name
    assert len(train) == len(sets["train"])
    assert set(sets["test"]).isdisjoint(sets["test_ood"])


def test_level_sets_use_their_families_and_are_solvable(sets):
    assert set(sets["train"].metadata["families"]) == set(TRAIN_FAMILIES)
    assert set(sets["test"].metadata["families"]) == set(TRAIN_FAMILIES)
    assert set(sets["test_ood"].metadata["families"]) == set(HELD_OUT_FAMILIES)
    for name, level_set in sets.items():
        assert all(is_solvable(lv) for lv in level_set), name


def test_level_sets_are_reproducible_from_the_seed():
    family = envs.get("maze")
    a = family.level_set("train", num_train_levels=40, level_seed=3)
    b = envs.level_set("maze", "train", num_train_levels=80, level_seed=3)
    c = family.level_set("train", num_train_levels=40, level_seed=4)
    assert a.levels == b.levels[:40]  # level i does not depend on the set's length
    assert set(a).isdisjoint(c)
    assert family.level_set("train", num_train_levels=40, level_seed=3, size=9).levels[0].shape == (9, 9)


def test_draws_that_collide_with_excluded_levels_are_redrawn():
    from heldout.envs.maze.level_sets import _draw_levels

    first, _, redraws = _draw_levels("train", TRAIN_FAMILIES, 20, 9, level_seed=0)
    assert redraws == 0
    # the same random streams again, excluding what they gave: every first draw collides
    again, fams, redraws = _draw_levels("train", TRAIN_FAMILIES, 20, 9, level_seed=0, exclude=frozenset(first))
    assert redraws == 20 and set(first).isdisjoint(again) and len(set(again)) == 20
    assert fams == tuple(TRAIN_FAMILIES[i % 4] for i in range(20))


def test_level_set_option_errors():
    family = envs.get("maze")
    with pytest.raises(ValueError, match="no level set 'validation'"):
        family.level_set("validation")
    with pytest.raises(ValueError, match="size must be an integer from 7"):
        family.level_set("train", size=5)
    with pytest.raises(ValueError, match="level_seed must be a whole number from 0"):
        family.level_set("train", level_seed=-1)


def test_level_sets_save_and_load(tmp_path, sets):
    space = MazeLevelSpace()
    for name in ("train", "named"):
        path = tmp_path / f"{name}.txt"
        space.write_levels(list(sets[name]), path)
        loaded = space.read_levels(path)
        assert loaded.levels == sets[name].levels and loaded.name == name


def test_read_levels_reports_the_level_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("#####\n#>.G#\n#####\n\n#####\n#>.x#\n#####\n")
    with pytest.raises(ValueError, match="level 2: line 2, column 4: unknown character 'x'"):
        MazeLevelSpace().read_levels(path)


def test_named_mazes_and_split_by_size(sets):
    names = sets["named"].metadata["names"]
    assert names == ("sixteen_rooms", "labyrinth", "long_corridor", "perfect_maze_21", "perfect_maze_51")
    lengths = {name: shortest_path_length(named_level(name)) for name in names}
    assert lengths == {
        "sixteen_rooms": 24, "labyrinth": 48, "long_corridor": 96, "perfect_maze_21": 112, "perfect_maze_51": 456,
    }
    groups = split_by_size(sets["named"])
    assert {shape: len(s) for shape, s in groups.items()} == {(13, 13): 3, (21, 21): 1, (51, 51): 1}
    assert groups[(51, 51)].levels == (named_levels()["perfect_maze_51"],)
    with pytest.raises(KeyError, match="choose one of"):
        named_level("sixteenrooms")


# -- mutation --------------------------------------------------------------------------------------
def _differences(a, b) -> int:
    return int((a.wall_map != b.wall_map).sum() + (a.goal != b.goal) + (a.start != b.start))


def test_mutate_makes_at_most_num_edits_changes_and_is_deterministic():
    space = MazeLevelSpace()
    level = generate("rooms", np.random.default_rng(0), 13)
    assert space.mutate(level, np.random.default_rng(0), 0) == level
    for k in (1, 3, 5):
        for seed in range(20):
            child = space.mutate(level, np.random.default_rng(seed), k)
            assert child == space.mutate(level, np.random.default_rng(seed), k)
            assert _differences(level, child) <= k
    children = {space.mutate(level, np.random.default_rng(s), 1) for s in range(50)}
    assert len(children) > 20
    assert any(c.goal != level.goal for c in children) and all(c.start == level.start for c in children)
    toggled = {MazeLevelSpace(edits="toggle").mutate(level, np.random.default_rng(s), 1) for s in range(50)}
    assert any(c.start != level.start for c in toggled)


def _children(edits, num_edits, n=3000):
    space = MazeLevelSpace(edits=edits)
    parent = MazeLevel.from_walls(np.zeros((13, 13), dtype=bool), (12, 12), (0, 0), 1)
    rng = np.random.default_rng(0)
    return parent, [space.mutate(parent, rng, num_edits) for _ in range(n)]


def test_default_edit_step_is_jaxueds_noop_flip_or_goal_move():
    # jaxued make_level_mutator_minimax: each step NO_OP, FLIP_WALL or MOVE_GOAL with 1/3 each;
    # a flip never touches the start or goal cell, a goal move always leaves the goal's cell.
    parent, children = _children("jaxued", 1)
    walls = np.array([int((c.wall_map != parent.wall_map).sum()) for c in children])
    moved = np.array([c.goal != parent.goal for c in children])
    assert all((c.start, c.start_dir) == (parent.start, parent.start_dir) for c in children)
    assert set(walls.tolist()) <= {0, 1} and not (walls.astype(bool) & moved).any()
    for frequency in (np.mean((walls == 0) & ~moved), np.mean(walls == 1), np.mean(moved)):
        assert abs(frequency - 1 / 3) < 0.03  # sd of a frequency of 3000 draws: 0.009
    assert not any(c.wall_map[parent.goal] or c.wall_map[parent.start] for c in children)


def test_five_jaxued_steps_flip_five_thirds_walls_and_never_move_the_start():
    parent, children = _children("jaxued", 5, n=2000)
    walls = np.array([int((c.wall_map != parent.wall_map).sum()) for c in children])
    assert all(c.start == parent.start and c.start_dir == parent.start_dir for c in children)
    assert all(_differences(parent, c) <= 5 for c in children)
    # flips per child ~ Binomial(5, 1/3): mean 5/3 (two flips of one cell cancel: under 0.02 less)
    assert abs(walls.mean() - 5 / 3) < 0.08  # sd of the mean of 2000: 0.024
    # the goal stays only when none of the 5 steps moves it: (2/3)^5
    assert abs(np.mean([c.goal == parent.goal for c in children]) - (2 / 3) ** 5) < 0.03


def test_toggle_operator_keeps_heldouts_earlier_weights():
    # 0.8 wall toggle, 0.1 goal move, 0.1 start move a step: the start moves in 1 - 0.9^5 of children
    parent, children = _children("toggle", 5, n=2000)
    started = np.mean([c.start != parent.start for c in children])
    assert abs(started - (1 - 0.9**5)) < 0.035  # sd 0.011; a move back onto its own cell is 1/167
    walls = np.array([int((c.wall_map != parent.wall_map).sum()) for c in children])
    assert abs(walls.mean() - 4.0) < 0.12  # 5 x 0.8 toggles (cancelling pairs: about 0.05 less)
    with pytest.raises(ValueError, match="edits='swap' is not an edit operator; choose one of jaxued, toggle"):
        MazeLevelSpace(edits="swap")


def test_mutate_keep_solvable_never_breaks_solvability():
    space = MazeLevelSpace(keep_solvable=True)
    free = MazeLevelSpace()
    rng = np.random.default_rng(0)
    broke = 0
    for i in range(40):
        level = generate("perfect", np.random.default_rng(i), 13)  # one wall off the path breaks it
        assert is_solvable(space.mutate(level, rng, 5))
        assert is_solvable(free.mutate(level, rng, 5, keep_solvable=True))
        broke += not is_solvable(free.mutate(level, rng, 5))
    assert broke > 0  # without the option, edits do break perfect mazes


def test_mutate_accepts_text_and_checks_arguments():
    space = MazeLevelSpace()
    child = space.mutate("#####\n#>.G#\n#...#\n#####", np.random.default_rng(0), 2)
    assert child.shape == (2, 3)
    with pytest.raises(ValueError, match="num_edits"):
        space.mutate(child, np.random.default_rng(0), -1)
