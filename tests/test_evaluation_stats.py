"""Statistics of the report: intervals and the gap, checked by hand."""

import math

import pytest

from heldout import evaluation
from heldout.envs import LevelSet


def test_interval_matches_hand_computation():
    stats = evaluation.interval([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sample std sqrt(5/3), standard error sqrt(5/3)/2
    half = 1.959963984540054 * math.sqrt(5 / 3) / 2
    assert stats["mean"] == pytest.approx(2.5)
    assert stats["ci_low"] == pytest.approx(2.5 - half)
    assert stats["ci_high"] == pytest.approx(2.5 + half)
    assert stats["episodes"] == 4


def test_single_episode_has_zero_width_interval():
    assert evaluation.interval([7.0]) == {"mean": 7.0, "ci_low": 7.0, "ci_high": 7.0, "episodes": 1}


def test_gap_is_difference_of_means_with_combined_standard_error():
    a, b = [10.0, 12.0], [4.0, 6.0, 8.0]
    gap = evaluation.difference(a, b)
    se = math.sqrt(2.0 / 2 + 4.0 / 3)  # var(a)=2, var(b)=4 (ddof=1)
    assert gap["mean"] == pytest.approx(11.0 - 6.0)
    assert gap["ci_high"] - gap["mean"] == pytest.approx(1.959963984540054 * se)


def test_plan_cycles_through_a_finite_set_in_a_seeded_order():
    levels = LevelSet("train", levels=(0, 1, 2, 3))
    plan = evaluation.plan_levels(levels, 10, seed=3)
    assert sorted(plan[:4]) == [0, 1, 2, 3]
    assert plan[4:8] == plan[:4] and plan[8:] == plan[:2]
    assert plan == evaluation.plan_levels(levels, 10, seed=3)


def test_plan_draws_from_an_unbounded_set_reproducibly():
    full = LevelSet("full", draw=lambda rng: int(rng.integers(1 << 30)))
    assert evaluation.plan_levels(full, 5, seed=1) == evaluation.plan_levels(full, 5, seed=1)
    assert len(set(evaluation.plan_levels(full, 50, seed=1))) > 45
