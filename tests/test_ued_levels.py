"""The maze's unbounded level sets for environment design: random (domain randomisation) and empty."""

import numpy as np
import pytest

from heldout import envs
from heldout.envs.maze import MazeLevel, is_solvable, parse_level
from heldout.envs.maze.random_levels import empty_level, random_level


def draws(level_set, n, seed=0):
    rng = np.random.default_rng(seed)
    return [level_set.sample(rng) for _ in range(n)]


def test_random_draws_are_valid_levels_within_the_configured_wall_range():
    family = envs.get("maze")
    lset = family.level_set("random", walls="uniform", min_walls=10, max_walls=30)
    assert not lset.finite and "10..30 walls" in lset.notes and "unsolvable draws kept" in lset.notes
    levels = draws(lset, 400)
    walls = [lv.num_walls for lv in levels]
    assert all(isinstance(lv, MazeLevel) and lv.shape == (13, 13) for lv in levels)
    assert min(walls) == 10 and max(walls) == 30  # both ends of the range are drawn
    assert all(lv.goal != lv.start and not lv.wall_map[lv.goal] and not lv.wall_map[lv.start] for lv in levels)
    assert {lv.start_dir for lv in levels} == {0, 1, 2, 3}
    assert len(set(levels)) == len(levels)
    # reproducible from the generator state, and the same as the level space's generator
    assert draws(lset, 20, seed=3) == draws(lset, 20, seed=3)
    space = family.level_space(walls="uniform", min_walls=10, max_walls=30)
    rng = np.random.default_rng(0)
    assert [space.generate("random", rng) for _ in range(5)] == levels[:5]


def test_unsolvable_draws_are_kept_or_rejected_by_the_option():
    family = envs.get("maze")
    kept = draws(family.level_set("random", size=9, max_walls=50), 200)
    assert 0 < sum(not is_solvable(lv) for lv in kept) < 200
    rejected = draws(family.level_set("random", size=9, max_walls=50, reject_unsolvable=True), 200)
    assert all(is_solvable(lv) for lv in rejected)
    assert max(lv.num_walls for lv in rejected) > 25


def test_empty_levels_have_no_walls_and_take_the_size_option():
    levels = draws(envs.get("maze").level_set("empty", size=9), 100)
    assert all(lv.num_walls == 0 and lv.shape == (9, 9) for lv in levels)
    assert len({(lv.goal, lv.start) for lv in levels}) > 90
    assert empty_level(np.random.default_rng(1), 7).shape == (7, 7)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_walls": 168}, "max_walls must be an integer from 0 to 167 on a 13x13 maze"),
        ({"min_walls": -1}, "min_walls must be an integer from 0"),
        ({"min_walls": 30, "max_walls": 20}, "min_walls \\(30\\) is above max_walls \\(20\\)"),
        ({"min_walls": 5}, "min_walls=5 needs walls: uniform"),
        ({"walls": "dcd"}, "walls='dcd' is not a wall law; choose one of jaxued, uniform"),
    ],
)
def test_bad_wall_options_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        envs.get("maze").level_set("random", **options)


def test_a_vec_env_plays_an_unbounded_set():
    vec = envs.make_vec("maze", 3, level_set="random", seed=0)
    vec.reset()
    assert all(isinstance(lv, MazeLevel) for lv in vec.levels) and len(set(vec.levels)) == 3


def test_generate_and_features_of_the_level_space():
    space = envs.get("maze").level_space()
    assert space.generator_names == ("random", "empty")
    with pytest.raises(ValueError, match="no level generator 'mazes'; choose one of random, empty"):
        space.generate("mazes", np.random.default_rng(0))
    level = parse_level("#####\n#>..#\n#.#G#\n#####")
    assert space.features(level) == {"wall_density": pytest.approx(1 / 6), "shortest_path": 3.0}
    closed = parse_level("#####\n#>#G#\n#####")
    assert space.features(closed)["wall_density"] == pytest.approx(1 / 3)
    assert np.isnan(space.features(closed)["shortest_path"])
    assert envs.get("procgen/coinrun").level_space().features(3) == {}


def test_random_level_with_zero_walls_is_an_empty_room():
    level = random_level(np.random.default_rng(0), 7, min_walls=0, max_walls=0)
    assert level.num_walls == 0 and level.shape == (7, 7)


def _wall_counts(n=4000, **options):
    lset = envs.get("maze").level_set("random", **options)
    return np.array([lv.num_walls for lv in draws(lset, n)])


def test_default_dr_places_25_cells_with_replacement_as_jaxued():
    # jaxued util.py make_level_generator: 25 uniform draws with replacement over the 169 cells.
    # P(K distinct) = C(169, K) * S(25, K) * K! / 169^25 (S: Stirling numbers of the second kind).
    cells, draws_n = 169, 25
    expected_mean = cells * (1 - (1 - 1 / cells) ** draws_n)  # 23.31
    p_all_distinct = np.prod([(cells - i) / cells for i in range(draws_n)])  # 0.163
    # exactly one repeat: choose the pair C(25,2), 169*168*...*(169-23) ordered distinct values / 169^25
    p_one_repeat = draws_n * (draws_n - 1) / 2 * np.prod([(cells - i) / cells for i in range(draws_n - 1)]) / cells
    counts = _wall_counts()
    assert counts.max() == 25 and counts.min() >= 15  # P(< 15 distinct) is below 1e-6 a draw
    assert abs(counts.mean() - expected_mean) < 0.06  # sd of a count ~1.1, of the mean of 4000 ~0.02
    assert abs(np.mean(counts == 25) - p_all_distinct) < 0.02
    assert abs(np.mean(counts == 24) - p_one_repeat) < 0.025
    assert "25 wall cells drawn with replacement (jaxued)" in envs.get("maze").level_set("random").notes


def test_uniform_wall_law_keeps_the_earlier_uniform_count():
    counts = _wall_counts(walls="uniform")
    assert set(counts.tolist()) == set(range(26))  # U{0..25} on distinct cells
    assert abs(counts.mean() - 12.5) < 0.3  # sd of U{0..25} is 7.5: of the mean of 4000, 0.12
    assert all(abs(np.mean(counts == k) - 1 / 26) < 0.015 for k in (0, 12, 25))
