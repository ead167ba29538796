"""Samplers for environment design: dr and accel, and how samplers receive the level space."""

import pickle

import numpy as np
import pytest

from heldout import envs, level_samplers
from heldout.level_samplers import LevelSampler, registry


class IntSpace:
    """A level space over ints: an edit adds 1000, an empty level is below 100, a random one 100-199."""

    def mutate(self, level, rng, num_edits=1):
        return level + 1000 * num_edits + int(rng.integers(10))

    def generate(self, name, rng):
        assert name in ("empty", "random")
        return int(rng.integers(100)) + (100 if name == "random" else 0)


def maze_space():
    return envs.get("maze").level_space()


def differences(parent, child):
    """Edits needed at least to turn ``parent`` into ``child``: wall cells, goal, start."""
    walls = int((parent.wall_map != child.wall_map).sum())
    return walls + (parent.goal != child.goal) + ((parent.start, parent.start_dir) != (child.start, child.start_dir))


# -- dr --------------------------------------------------------------------------------------------
def test_dr_draws_a_fresh_generated_level_every_episode_and_never_replays():
    lset = envs.get("maze").level_set("random", walls="uniform", min_walls=5, max_walls=40)
    s = level_samplers.make("dr", lset, space=maze_space(), seed=0)
    draws = [s.sample_with_replay_flag() for _ in range(200)]
    assert not any(replayed for _, replayed in draws)
    assert all(5 <= lv.num_walls <= 40 for lv, _ in draws) and len({lv for lv, _ in draws}) == 200
    assert s.probabilities() == {} and s.diagnostics() == {"levels_generated": 200.0}
    s.update(draws[0][0], 0.5)
    assert s.level_scores() == {draws[0][0]: 0.5}


def test_dr_refuses_a_finite_set():
    with pytest.raises(ValueError, match="dr draws a new level for every episode.*--env.train_set random"):
        level_samplers.make("dr", [1, 2, 3])


# -- accel -----------------------------------------------------------------------------------------
def test_accel_defaults_are_jaxueds():
    # jaxued examples/maze_plr.py 875-887 (score pvl, the ACCEL paper's): replay 0.8, staleness 0.3,
    # temperature 0.3, minimum fill 0.5, buffer 4000, 5 edits; new levels from the DR generator
    s = level_samplers.make("accel", [0], space=IntSpace())
    assert (s.score_name, s.score_transform, s.temperature, s.staleness_coef) == ("positive_value_loss", "rank", 0.3, 0.3)
    assert (s.replay_schedule, s.replay_prob, s.num_edits, s.start) == ("fixed", 0.8, 5, "random")
    assert (s.min_fill_ratio, s.eviction) == (0.5, "weight")
    assert not s.trains_on_new_levels and not s.finite and s.capacity == 4000


def test_accel_children_differ_by_at_most_k_edits_and_keep_one_goal_and_one_start():
    space = maze_space()
    s = level_samplers.make("accel", envs.get("maze").level_set("random"), space=space, num_edits=3,
                            replay_prob=0.9, capacity=50, seed=1)  # fmt: skip
    rng = np.random.default_rng(0)
    last_replay = None
    children = 0
    for _ in range(400):
        level, replayed = s.sample_with_replay_flag()
        if last_replay is not None:  # a replay's child is queued, so it is the next draw
            assert not replayed
            parent, parent_edits = last_replay
            assert differences(parent, level) <= 3  # jaxued's steps may be no-ops: a child can equal its parent
            assert (level.start, level.start_dir) == (parent.start, parent.start_dir)
            if level != parent:  # a child equal to its parent keeps the parent's count
                assert s.level_features(level) == {"edits": parent_edits + 3}
            cells = space.encode(level)
            assert (cells == 2).sum() == 1 and (cells >= 3).sum() == 1
            children += 1
        last_replay = (level, s.level_features(level)["edits"]) if replayed else None
        s.update(level, float(rng.random()))
    assert children > 100
    assert s.diagnostics()["children_played"] == children


def test_accel_starts_from_random_or_empty_levels_or_the_training_set():
    s = level_samplers.make("accel", [7, 8], space=IntSpace(), seed=0)
    assert all(100 <= s.sample() < 200 for _ in range(5))  # the space's random levels
    e = level_samplers.make("accel", [7, 8], space=IntSpace(), start="empty", seed=0)
    assert all(0 <= e.sample() < 100 for _ in range(5))  # empty levels of the space: ints below 100
    t = level_samplers.make("accel", [7, 8], space=IntSpace(), start="train", seed=0)
    assert {t.sample() for _ in range(20)} == {7, 8}
    train = envs.get("maze").level_set("train")
    maze = level_samplers.make("accel", train, space=maze_space(), seed=0)
    assert np.mean([maze.sample().num_walls for _ in range(50)]) > 20  # DR: ~23.3 walls
    empty = level_samplers.make("accel", train, space=maze_space(), start="empty", seed=0)
    assert empty.sample().num_walls == 0


def fill(s, scores):
    """Draw one new level per score and score it; returns the levels."""
    levels = []
    for score in scores:
        level, replayed = s.sample_with_replay_flag()
        assert not replayed
        s.update(level, score)
        levels.append(level)
    return levels


def replay_then_child(s, child_score):
    """One replay (scored as before) and its child (scored ``child_score``); returns (parent, child)."""
    parent, replayed = s.sample_with_replay_flag()
    assert replayed
    s.update(parent, s.level_scores()[parent])
    child, replayed = s.sample_with_replay_flag()
    assert not replayed and 0 <= child - parent - 1000 * s.num_edits < 10  # IntSpace's edit of the parent
    s.update(child, child_score)
    return parent, child


def test_a_child_scored_below_the_lowest_weighted_member_is_not_inserted():
    s = level_samplers.make("accel", [0], space=IntSpace(), capacity=2, replay_prob=1.0, seed=0)
    s.replay_prob = 0.0
    kept = fill(s, [0.5, 0.6])
    s.replay_prob = 1.0
    _, child = replay_then_child(s, 0.1)
    assert child not in s.probabilities() and set(s.level_scores()) == set(kept)
    assert s.diagnostics()["children_played"] == 1 and s.diagnostics()["children_accepted"] == 0
    # a child that beats the lowest-weighted member replaces exactly that member
    weights = s.probabilities()
    lowest = min(weights, key=weights.get)
    _, child = replay_then_child(s, 0.9)
    assert child in s.probabilities() and lowest not in s.probabilities() and len(s.probabilities()) == 2
    assert s.diagnostics()["edits_accepted_fraction"] == 0.5
    assert s.level_features(child)["edits"] == 5 and s.level_features(lowest) == {}


def test_accel_evicts_the_lowest_weighted_not_the_lowest_scored():
    s = level_samplers.make("accel", [0], space=IntSpace(), capacity=3, replay_prob=0.0, staleness_coef=1.0, seed=0)
    old, mid, new = fill(s, [0.1, 0.5, 0.9])
    # with staleness only, the level sampled last (`new`) weighs least although `old` scores lowest
    weights = s.probabilities()
    assert min(weights, key=weights.get) == new
    s.replay_prob = 1.0
    _, child = replay_then_child(s, 0.95)
    assert child in s.probabilities() and old in s.probabilities()


def test_accel_state_dict_round_trip_gives_identical_future_samples():
    space = maze_space()
    lset = envs.get("maze").level_set("random")

    def drive(s, n, seed):
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            level, replayed = s.sample_with_replay_flag()
            s.update(level, float(rng.random()), max_return=float(rng.random()))
            out.append((level, replayed, s.level_features(level).get("edits")))
        return out

    a = level_samplers.make("accel", lset, space=space, capacity=16, seed=0)
    drive(a, 120, seed=1)
    level, _ = a.sample_with_replay_flag()  # one draw still out when the checkpoint is taken
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = level_samplers.make("accel", lset, space=space, capacity=16, seed=5)
    b.load_state_dict(state)
    assert b.probabilities() == a.probabilities() and b.diagnostics() == a.diagnostics()
    a.update(level, 0.3)
    b.update(level, 0.3)
    assert drive(a, 150, seed=2) == drive(b, 150, seed=2)
    assert a.diagnostics() == b.diagnostics() and a.diagnostics()["buffer_size"] == 16


def test_dr_state_dict_round_trip():
    lset = envs.get("maze").level_set("random")
    a = level_samplers.make("dr", lset, seed=0)
    for _ in range(10):
        a.update(a.sample(), 0.5)
    b = level_samplers.make("dr", lset, seed=3)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert [a.sample() for _ in range(5)] == [b.sample() for _ in range(5)]
    assert a.diagnostics() == b.diagnostics() == {"levels_generated": 15.0}


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "accel edits levels with the level family's mutation operator and needs its level space"),
        ({"space": IntSpace(), "start": "dr"}, "start='dr' is not accepted; choose one of random, empty, train"),
        ({"space": IntSpace(), "num_edits": 0}, "num_edits must be an integer >= 1"),
        ({"space": IntSpace(), "replay_schedule": "sequential"}, "replay_schedule='sequential' is not accepted; choose one of fixed, ramp"),
    ],
)
def test_bad_accel_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        level_samplers.make("accel", [1, 2], **params)


def test_accel_on_a_family_that_cannot_edit_levels_fails_at_once():
    space = envs.get("procgen/coinrun").level_space()
    with pytest.raises(ValueError, match="accel cannot run on this level family: .*cannot be edited"):
        level_samplers.make("accel", [1, 2], space=space, start="train")


# -- the registry hands out the level space ----------------------------------------------------------
def test_space_reaches_the_samplers_that_take_it_and_no_others():
    assert level_samplers.takes_space("accel") and not level_samplers.takes_space("plr")
    assert "space" not in level_samplers.parameters("accel")
    plr = level_samplers.make("plr", [1, 2, 3], space=IntSpace(), temperature=0.3)
    assert plr.temperature == 0.3
    seen = []

    class Spy(level_samplers.UniformSampler):
        def __init__(self, levels, *, space=None, seed=0):
            seen.append(space)
            super().__init__(levels, seed=seed)

    space = IntSpace()
    registry._SAMPLERS["spy"] = Spy
    try:
        level_samplers.make("spy", [1, 2], space=space)
        level_samplers.make("spy", [1, 2])
    finally:
        del registry._SAMPLERS["spy"]
    assert seen == [space, None]


def test_a_sampler_that_needs_a_finite_set_refuses_an_unbounded_one(monkeypatch):
    class FiniteOnly(level_samplers.UniformSampler):
        needs_finite_levels = True

    monkeypatch.setitem(registry._SAMPLERS, "finite_only", FiniteOnly)
    assert isinstance(level_samplers.make("finite_only", [1, 2]), LevelSampler)
    with pytest.raises(ValueError, match="'finite_only' needs a finite level set.*--env.train_set train.*accel, dr, paired, plr"):
        level_samplers.make("finite_only", lambda rng: 1)
