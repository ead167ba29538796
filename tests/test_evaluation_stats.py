"""Statistics of the report: intervals and the gap, checked by hand."""

import numpy as np
import pytest

from heldout.evaluation import episodes as evaluation, intervals
from heldout.envs import LevelSet


def test_proportions_of_one_episode_per_level_get_the_exact_interval():
    # Clopper-Pearson by hand: 0/20 -> [0, 1 - 0.025^(1/20)], 20/20 -> [0.025^(1/20), 1]
    none = evaluation.interval([0.0] * 20, range(20), proportion=True)
    every = evaluation.interval([1.0] * 20, range(20), proportion=True)
    assert (none["ci_low"], none["ci_high"]) == (0.0, pytest.approx(1 - 0.025 ** (1 / 20)))
    assert (every["ci_low"], every["ci_high"]) == (pytest.approx(0.025 ** (1 / 20)), 1.0)
    assert none["interval"] == every["interval"] == intervals.EXACT
    assert (every["levels"], every["episodes"]) == (20, 20)
    half = evaluation.interval([1.0, 0.0] * 10, range(20), proportion=True)
    assert (half["ci_low"], half["ci_high"]) == (pytest.approx(0.2719578), pytest.approx(0.7280422))


def test_clustered_episodes_give_a_wider_interval_than_independent_ones():
    clustered = evaluation.interval([1.0] * 10 + [0.0] * 10, ["a"] * 10 + ["b"] * 10, proportion=True)  # 10 on each of 2 levels
    spread = evaluation.interval([1.0, 0.0] * 10, range(20), proportion=True)  # 1 on each of 20 levels
    assert clustered["mean"] == spread["mean"] == 0.5
    assert clustered["interval"] == intervals.BOOTSTRAP and clustered["levels"] == 2
    assert clustered["ci_high"] - clustered["ci_low"] > spread["ci_high"] - spread["ci_low"]
    # two levels resampled: both "a", one of each, or both "b" -> pooled means 1, 0.5, 0
    assert (clustered["ci_low"], clustered["ci_high"]) == (0.0, 1.0)


def test_bootstrap_of_returns_stays_in_their_range_and_is_deterministic():
    rng = np.random.default_rng(0)
    returns = rng.uniform(2.0, 3.0, 60)
    levels = np.repeat(np.arange(12), 5)
    stats = evaluation.interval(returns, levels)
    assert 2.0 <= stats["ci_low"] < stats["mean"] < stats["ci_high"] <= 3.0
    assert stats == evaluation.interval(returns, levels)
    assert evaluation.interval([7.0], ["x"])["ci_low"] == evaluation.interval([7.0], ["x"])["ci_high"] == 7.0


def test_two_stage_resampling_draws_levels_then_episodes_within_them():
    # one level with all the mass: every resample is that level's episodes resampled
    means = intervals.bootstrap_means(np.array([0.0, 1.0, 1.0, 1.0]), np.zeros(4, int), 4000, np.random.default_rng(1))
    assert means.mean() == pytest.approx(0.75, abs=0.01)
    assert means.var() == pytest.approx(0.75 * 0.25 / 4, rel=0.1)  # the within-level binomial variance
    # levels of one episode each: the classic bootstrap of the mean
    means = intervals.bootstrap_means(np.array([0.0, 2.0]), np.arange(2), 4000, np.random.default_rng(1))
    assert set(np.unique(means)) == {0.0, 1.0, 2.0}


def test_gap_interval_accounts_for_both_sides():
    train, test = [1.0] * 8 + [0.0] * 8, [1.0, 0.0] * 8
    train_levels, test_levels = np.repeat(np.arange(4), 4), np.arange(16)
    gap = evaluation.difference(train, train_levels, test, test_levels)
    assert gap["mean"] == pytest.approx(0.0)
    assert gap["interval"] == intervals.BOOTSTRAP
    one_side = evaluation.interval(train, train_levels, proportion=True)
    other = evaluation.interval(test, test_levels, proportion=True)
    width = gap["ci_high"] - gap["ci_low"]
    assert width > one_side["ci_high"] - one_side["ci_low"] - 1e-9
    assert width > other["ci_high"] - other["ci_low"]
    assert -1.0 <= gap["ci_low"] < 0.0 < gap["ci_high"] <= 1.0


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


def test_returns_that_happen_to_be_0_or_1_are_not_treated_as_proportions():
    returns = evaluation.interval([0.0, 1.0, 0.0, 1.0], range(4))
    assert returns["interval"] == intervals.BOOTSTRAP
    assert evaluation.interval([0.0, 1.0, 0.0, 1.0], range(4), proportion=True)["interval"] == intervals.EXACT
