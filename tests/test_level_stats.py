"""Statistics of the levels played: features, 1-D Wasserstein distances, TensorBoard records."""

import numpy as np
import pytest
import torch

from heldout import envs
from heldout.envs.base import LevelSet
from heldout.envs.maze import parse_level
from heldout.trainer.level_stats import PlayedLevelStats, feature_table, reference_levels, wasserstein_1d

# 2x3 interiors: walls / 6 cells, shortest path in grid steps
OPEN = parse_level("#####\n#>.G#\n#...#\n#####")  # 0 walls, path 2
ONE = parse_level("#####\n#>..#\n#.#G#\n#####")  # 1 wall, path 3
TWO = parse_level("#####\n#>#.#\n#..G#\n#####")  # 1 wall, path 3 (around it)
SHUT = parse_level("#####\n#>#G#\n#.#.#\n#####")  # 2 walls, unsolvable


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([0.0, 1.0], [1.0, 0.0], 0.0),
        ([0.0], [1.0], 1.0),
        ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 1.0),  # a shift moves every unit of mass by 1
        ([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], 2 / 3),
        ([0.0, 2.0], [1.0], 1.0),
        ([0.0, 0.0, 0.0, 4.0], [0.0, 4.0], 1.0),  # |F_a - F_b| = 1/4 over [0, 4)
    ],
)
def test_wasserstein_1d_by_hand(a, b, expected):
    assert wasserstein_1d(a, b) == pytest.approx(expected)
    assert wasserstein_1d(b, a) == pytest.approx(expected)


def test_wasserstein_of_an_empty_sample_is_nan():
    assert np.isnan(wasserstein_1d([], [1.0]))


class EditsSampler:
    def level_features(self, level):
        return {"edits": 4.0} if level == ONE else {}


def test_statistics_of_played_levels_against_a_hand_made_training_set():
    space = envs.get("maze").level_space()
    assert space.features(TWO) == {"wall_density": pytest.approx(1 / 6), "shortest_path": 3.0}
    stats = PlayedLevelStats(space, [OPEN, ONE], EditsSampler())
    assert stats.enabled
    np.testing.assert_allclose(stats.reference["wall_density"], [0.0, 1 / 6])
    np.testing.assert_allclose(stats.reference["shortest_path"], [2.0, 3.0])
    stats.add([ONE, ONE, SHUT, OPEN])
    s = stats.summary()
    assert s["episodes"] == 4
    assert s["wall_density_mean"] == pytest.approx((1 / 6 + 1 / 6 + 2 / 6 + 0) / 4)
    # played densities {0, 1/6, 1/6, 1/3} against {0, 1/6}: F_a = 1/4, 3/4 and F_b = 1/2, 1 on
    # [0, 1/6) and [1/6, 1/3), so |F_a - F_b| = 1/4 on both intervals of width 1/6
    assert s["wall_density_w1"] == pytest.approx(2 * 0.25 / 6)
    # paths of the solvable ones {3, 3, 2} against {2, 3}: |1/3 - 1/2| = 1/6 on [2, 3)
    assert s["shortest_path_mean"] == pytest.approx(8 / 3)
    assert s["shortest_path_w1"] == pytest.approx(1 / 6)
    assert s["shortest_path_undefined_fraction"] == pytest.approx(1 / 4)
    assert s["edits_mean"] == 4.0 and "edits_w1" not in s  # only levels the sampler knows; no reference
    assert feature_table([{"a": 1.0}, {"b": 2.0}])["a"][1] != feature_table([{"a": 1.0}])["a"][0]  # NaN fill


def test_log_writes_scalars_histograms_and_the_reference_once_then_starts_afresh():
    space = envs.get("maze").level_space()
    stats = PlayedLevelStats(space, [OPEN, ONE])
    records = {}

    def record(tag, value, exclude=None):
        records[tag] = value

    stats.add([ONE, OPEN, SHUT], trained=[True, False, False])
    out = stats.log(record, with_trained=True)
    assert out["episodes"] == 3 and records["levels/episodes"] == 3
    assert records["levels_trained/episodes"] == 1 and records["levels_trained/wall_density_mean"] == pytest.approx(1 / 6)
    assert isinstance(records["levels/wall_density"], torch.Tensor) and len(records["levels/wall_density"]) == 3
    assert len(records["levels/shortest_path"]) == 2  # the unsolvable level has no path
    assert len(records["levels/train_set/wall_density"]) == 2
    records.clear()
    stats.add([OPEN])
    stats.log(record)
    assert records["levels/episodes"] == 1 and "levels/train_set/wall_density" not in records
    assert not any(tag.startswith("levels_trained/") for tag in records)
    records.clear()
    stats.log(record)
    assert records == {}  # nothing played since the last log


def test_families_without_features_log_nothing():
    stats = PlayedLevelStats(envs.get("procgen/coinrun").level_space(), [0, 1, 2])
    assert not stats.enabled
    stats.add([0, 1])
    assert stats.log(lambda *a, **k: pytest.fail("nothing to log")) == {}


def test_reference_levels_are_a_finite_set_or_reproducible_draws():
    assert reference_levels(LevelSet("t", levels=(3, 1))) == [3, 1]
    unbounded = LevelSet("r", draw=lambda rng: int(rng.integers(1000)))
    assert reference_levels(unbounded, size=5, seed=2) == reference_levels(unbounded, size=5, seed=2)
    assert len(reference_levels(unbounded, size=7)) == 7
