"""The dred level sampler: grounding, the mixed distribution by hand, eviction, the rollout
plan (warm-up, then replay and proposal rollouts in turn), checkpoints."""

import subprocess
import sys

import numpy as np
import pytest

from heldout import level_samplers
from heldout.level_samplers import DREDSampler


class Scripted:
    """A generator that hands out the given levels in order (then numbered new ones)."""

    def __init__(self, *levels):
        self.levels = list(levels)
        self.calls = 0

    def __call__(self, rng, n):
        self.calls += 1
        out, self.levels = self.levels[:n], self.levels[n:]
        return out


def random_generator(rng, n):
    return [f"g{int(x)}" for x in rng.integers(10**9, size=n)]


def play(s, level, score, ret, replayed):
    """Check the draw, then report its episode as the callback would: return first, score at rollout end."""
    drawn, was_replayed = s.sample_with_replay_flag()
    assert (drawn, was_replayed) == (level, replayed)
    s.record_return(drawn, ret)
    s.update(drawn, score)


def built_by_hand(capacity=4000, **params):
    """Training a (score 0.2, never solved) and b (0.5, solved); g1 generated (0.3, solved);
    g2 generated (0.9, never solved). Draws: a, b, g1, g2 -> episode count 4."""
    # seed 2 draws the unseen training levels in the order a, b
    s = DREDSampler(
        ["a", "b"], generator=Scripted("g1", "g2"), generation_batch=1, capacity=capacity, seed=2, proposals="coin",
        **params,
    )  # fmt: skip
    s.replay_prob = 1.0
    play(s, "a", 0.2, 0.0, True)
    play(s, "b", 0.5, 0.8, True)
    s.replay_prob = 0.0
    play(s, "g1", 0.3, 0.5, False)
    play(s, "g2", 0.9, 0.0, False)
    return s


def test_a_generated_level_with_zero_grounded_score_never_enters():
    s = built_by_hand()
    assert "g1" in s.probabilities() and "g2" not in s.probabilities()
    assert s.generated_levels() == ["g1"]
    # A high value loss does not help a level the agent never got a return on.
    with pytest.raises(ValueError, match="not held"):
        s.update("g2", 5.0)
    assert s.diagnostics()["proposed"] == 2 and s.diagnostics()["accepted"] == 1


# By hand, rho = 0.3, with a buffer of C slots (a, b, g1 held; C - 3 empty):
#   P_S  (rank, beta 0.1) over training (a 0.2, b 0.5): b 1, a (1/2)^10 -> b 1024/1025, a 1/1025
#   P_S' (rank, beta 1)   over all C slots, S' = (a 0, b 0.5, g1 0.3, 0 ...): b rank 1, g1 rank 2,
#        then the zeros, the later slot first: the C - 3 empty slots, a last (rank C);
#        kept on a, b, g1 and renormalised: (1/C, 1, 1/2) / (3/2 + 1/C)
#   P_C  (power, 1)       over training, staleness c - C = (a 4-1, b 4-2) -> a 3/5, b 2/5
P_S = {"a": 1 / 1025, "b": 1024 / 1025, "g1": 0.0}
P_C = {"a": 3 / 5, "b": 2 / 5, "g1": 0.0}


def p_grounded(c):
    z = 1.5 + 1 / c
    return {"a": (1 / c) / z, "b": 1 / z, "g1": 0.5 / z}


@pytest.mark.parametrize("capacity", [6, 4000])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_distribution_is_the_formula_by_hand(eta, capacity):
    s = built_by_hand(capacity)
    s.set_progress(eta)  # eta_start 0 -> eta_end 1
    assert s.eta == eta
    p_g = p_grounded(capacity)
    expected = {lv: 0.7 * (eta * p_g[lv] + (1 - eta) * P_S[lv]) + 0.3 * P_C[lv] for lv in P_S}
    got = s.probabilities()
    assert set(got) == {"a", "b", "g1"}
    for lv, p in expected.items():
        assert got[lv] == pytest.approx(p, rel=1e-12)
    assert s.diagnostics()["generated_mass"] == pytest.approx(expected["g1"])
    if capacity == 6:  # the numbers written out: P_S' = a 1/10, b 3/5, g1 3/10
        assert (p_g["a"], p_g["b"], p_g["g1"]) == pytest.approx((1 / 10, 3 / 5, 3 / 10))


def test_eta_follows_progress_between_its_ends():
    s = DREDSampler(["a", "b"], generator=random_generator, eta_start=0.2, eta_end=0.6)
    assert s.eta == pytest.approx(0.2)
    s.set_progress(0.5)
    assert s.eta == pytest.approx(0.4)
    s.set_progress(3.0)
    assert s.eta == pytest.approx(0.6)


def test_a_full_buffer_takes_a_new_level_whose_grounded_score_is_at_least_the_evicted_one_s():
    s = built_by_hand(capacity=3)  # a, b and one generated slot (g1, grounded score 0.3)
    s._generator = Scripted("g3", "g4", "g5")
    play(s, "g3", 0.1, 1.0, False)  # 0.1 < 0.3: stays out
    assert s.generated_levels() == ["g1"]
    play(s, "g4", 0.3, 1.0, False)  # 0.3 >= 0.3: replaces g1 (published: ties enter)
    assert s.generated_levels() == ["g4"]
    assert set(s.probabilities()) == {"a", "b", "g4"}  # training levels never leave
    old = built_by_hand(capacity=3, eviction="score")
    old._generator = Scripted("g4")
    play(old, "g4", 0.3, 1.0, False)  # the old rule: strictly higher only
    assert old.generated_levels() == ["g1"]


def test_eviction_takes_the_lowest_replay_weight_not_the_lowest_grounded_score():
    # Two generated slots: g1 (0.3) then g5 (0.2). At eta 0 no generated level has replay weight
    # (P_S and P_C cover the training levels), so the lowest weight is the first: g1.
    for eviction, evicted in (("weight", "g1"), ("score", "g5")):
        s = built_by_hand(capacity=4, eviction=eviction)
        s._generator = Scripted("g5", "g6")
        play(s, "g5", 0.2, 1.0, False)
        assert s.generated_levels() == ["g1", "g5"]
        play(s, "g6", 0.35, 1.0, False)
        assert evicted not in s.generated_levels() and "g6" in s.generated_levels(), eviction


def test_replays_cover_training_levels_first_and_proposals_take_no_gradient():
    s = DREDSampler(list(range(5)), generator=random_generator, proposals="coin", replay_prob=1.0, seed=1)
    first = [s.sample_with_replay_flag() for _ in range(5)]
    assert sorted(lv for lv, _ in first) == list(range(5)) and all(r for _, r in first)
    assert not s.trains_on_new_levels
    s.replay_prob = 0.0
    level, replayed = s.sample_with_replay_flag()
    assert isinstance(level, str) and not replayed


def test_a_generator_that_returns_nothing_falls_back_to_replay():
    s = DREDSampler(["a", "b"], generator=Scripted(), proposals="coin", replay_prob=0.0)
    level, replayed = s.sample_with_replay_flag()
    assert level in ("a", "b") and replayed


def rollout(s, n):
    """Plan a rollout of n slots; (kind, [(level, replayed)] of each slot's first draw)."""
    kind = s.begin_rollout(n)
    return kind, [s.sample_for_slot(k) for k in range(n)]


def test_the_plan_warms_up_on_every_training_level_then_alternates_replay_and_proposal_rollouts():
    s = DREDSampler(list(range(5)), generator=random_generator, seed=4)
    assert s.plans_rollouts and s.sample_for_slot(0) == (0, False)  # before any plan: a placeholder
    kind, first = rollout(s, 3)
    assert kind == "warmup" and len({lv for lv, _ in first}) == 3 and not any(r for _, r in first)
    assert [s.sample_for_slot(k) for k in range(3)] == first  # an ended episode plays its level again
    kind, second = rollout(s, 3)
    covered = {lv for lv, _ in first} | {lv for lv, _ in second}
    assert kind == "warmup" and covered == set(range(5)) and not any(r for _, r in second)
    for lv in range(5):
        s.update(lv, 0.1 * lv)
    kinds = []
    for _ in range(4):
        kind, draws = rollout(s, 3)
        kinds.append(kind)
        if kind == "replay":  # every episode a draw from P, trained on
            assert all(r and lv in range(5) for lv, r in draws)
        else:  # one new generated level per slot, again and again, no gradient
            assert len({lv for lv, _ in draws}) == 3 and all(isinstance(lv, str) and not r for lv, r in draws)
            assert [s.sample_for_slot(k) for k in range(3)] == draws
            for lv, _ in draws:
                for _ in range(2):
                    s.update(lv, 0.5)  # never solved: not grounded, never held
    assert kinds == ["replay", "proposal", "replay", "proposal"]
    assert s.generated_levels() == [] and s.diagnostics()["proposed"] == 6


def test_a_proposal_s_first_finished_episode_decides_and_its_later_episodes_follow():
    s = DREDSampler(["a", "b"], generator=Scripted("g", "h"), generation_batch=2, seed=0)
    for _ in range(2):  # warm-up (both levels), then a replay rollout
        kind, draws = rollout(s, 2)
        for lv, _ in draws:
            s.update(lv, 0.1)
    kind, draws = rollout(s, 2)
    assert kind == "proposal" and [lv for lv, _ in draws] == ["g", "h"]
    s.sample_for_slot(0), s.sample_for_slot(1)  # each slot's second episode
    s.record_return("g", 1.0)  # g: solved first, then not
    s.record_return("g", 0.0)
    s.record_return("h", 0.0)  # h: not solved first, then solved
    s.record_return("h", 1.0)
    s.update("g", 0.4)
    s.update("h", 0.5)
    assert s.generated_levels() == ["g"] and s.level_scores()["g"] == 0.4
    s.update("g", 0.2)  # its second episode updates the held level
    s.update("h", 0.9)  # a rejected proposal's later episode: ignored, not an error
    assert s.generated_levels() == ["g"] and s.level_scores()["g"] == 0.2
    with pytest.raises(ValueError, match="not held"):
        s.update("h", 0.9)  # no episode of h is under way any more


def test_checkpoint_round_trip_continues_identically():
    s = DREDSampler(list(range(6)), generator=random_generator, generation_batch=4, seed=3)
    rng = np.random.default_rng(0)

    def run(sampler, rollouts):
        out = []
        for _ in range(rollouts):
            sampler.begin_rollout(3)
            for k in (0, 1, 2, 0, 1):
                level, replayed = sampler.sample_for_slot(k)
                sampler.record_return(level, float(rng.random() < 0.5))
                sampler.update(level, float(rng.random()))
                out.append((level, replayed))
        return out

    run(s, 9)
    s.set_progress(0.4)
    state = s.state_dict()
    rng_state = rng.bit_generator.state
    after = run(s, 6)
    restored = DREDSampler(list(range(6)), generator=random_generator, generation_batch=4, seed=99)
    restored.load_state_dict(state)
    rng.bit_generator.state = rng_state
    assert run(restored, 6) == after
    assert restored.probabilities() == s.probabilities() and restored.eta == s.eta
    other = DREDSampler(list(range(7)), generator=random_generator)
    with pytest.raises(ValueError, match="different training set"):
        other.load_state_dict(state)


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "needs a generator"),
        ({"generator": random_generator, "capacity": 2}, "capacity must be an integer above"),
        ({"generator": random_generator, "staleness_support": "all"}, "staleness_support"),
        ({"generator": random_generator, "eta_end": 2}, "eta_end"),
        ({"generator": random_generator, "grounded_temperature": 0}, "grounded_temperature"),
        ({"generator": random_generator, "proposals": "flip"}, "proposals"),
        ({"generator": random_generator, "replay_prob": 0.3}, "replay_prob applies only to proposals='coin'"),
        ({"generator": random_generator, "eviction": "oldest"}, "eviction"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        level_samplers.make("dred", ["a", "b"], **params)


def test_the_sampler_imports_neither_torch_nor_envs():
    code = "import sys, heldout.level_samplers.dred; print(any(m == 'torch' or m.startswith('heldout.envs') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
