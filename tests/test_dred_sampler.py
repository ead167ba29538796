"""The dred level sampler: grounding, the mixed distribution by hand, eviction, checkpoints."""

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


def built_by_hand(capacity=4000):
    """Training a (score 0.2, never solved) and b (0.5, solved); g1 generated (0.3, solved);
    g2 generated (0.9, never solved). Draws: a, b, g1, g2 -> episode count 4."""
    # seed 2 draws the unseen training levels in the order a, b
    s = DREDSampler(["a", "b"], generator=Scripted("g1", "g2"), generation_batch=1, capacity=capacity, seed=2)
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


# By hand, rho = 0.3:
#   P_S  (rank, beta 0.1) over training (a 0.2, b 0.5): b 1, a (1/2)^10 -> b 1024/1025, a 1/1025
#   P_S' (rank, beta 1)   over buffer S' = (a 0, b 0.5, g1 0.3): 1/3, 1, 1/2 -> a 2/11, b 6/11, g1 3/11
#   P_C  (power, 1)       over training, staleness c - C = (a 4-1, b 4-2) -> a 3/5, b 2/5
P_S = {"a": 1 / 1025, "b": 1024 / 1025, "g1": 0.0}
P_G = {"a": 2 / 11, "b": 6 / 11, "g1": 3 / 11}
P_C = {"a": 3 / 5, "b": 2 / 5, "g1": 0.0}


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_distribution_is_the_formula_by_hand(eta):
    s = built_by_hand()
    s.set_progress(eta)  # eta_start 0 -> eta_end 1
    assert s.eta == eta
    expected = {lv: 0.7 * (eta * P_G[lv] + (1 - eta) * P_S[lv]) + 0.3 * P_C[lv] for lv in P_S}
    got = s.probabilities()
    assert set(got) == {"a", "b", "g1"}
    for lv, p in expected.items():
        assert got[lv] == pytest.approx(p, rel=1e-12)
    assert s.diagnostics()["generated_mass"] == pytest.approx(expected["g1"])


def test_eta_follows_progress_between_its_ends():
    s = DREDSampler(["a", "b"], generator=random_generator, eta_start=0.2, eta_end=0.6)
    assert s.eta == pytest.approx(0.2)
    s.set_progress(0.5)
    assert s.eta == pytest.approx(0.4)
    s.set_progress(3.0)
    assert s.eta == pytest.approx(0.6)


def test_a_full_buffer_evicts_the_lowest_grounded_generated_level_only_for_a_higher_one():
    s = built_by_hand(capacity=3)  # a, b and one generated slot (g1, grounded score 0.3)
    s._generator = Scripted("g3", "g4")
    play(s, "g3", 0.1, 1.0, False)  # 0.1 < 0.3: stays out
    assert s.generated_levels() == ["g1"]
    play(s, "g4", 0.6, 1.0, False)  # 0.6 > 0.3: replaces g1
    assert s.generated_levels() == ["g4"]
    assert set(s.probabilities()) == {"a", "b", "g4"}  # training levels never leave


def test_replays_cover_training_levels_first_and_proposals_take_no_gradient():
    s = DREDSampler(list(range(5)), generator=random_generator, replay_prob=1.0, seed=1)
    first = [s.sample_with_replay_flag() for _ in range(5)]
    assert sorted(lv for lv, _ in first) == list(range(5)) and all(r for _, r in first)
    assert not s.trains_on_new_levels
    s.replay_prob = 0.0
    level, replayed = s.sample_with_replay_flag()
    assert isinstance(level, str) and not replayed


def test_a_generator_that_returns_nothing_falls_back_to_replay():
    s = DREDSampler(["a", "b"], generator=Scripted(), replay_prob=0.0)
    level, replayed = s.sample_with_replay_flag()
    assert level in ("a", "b") and replayed


def test_checkpoint_round_trip_continues_identically():
    s = DREDSampler(list(range(6)), generator=random_generator, generation_batch=4, seed=3)
    rng = np.random.default_rng(0)

    def run(sampler, steps):
        out = []
        for _ in range(steps):
            level, replayed = sampler.sample_with_replay_flag()
            sampler.record_return(level, float(rng.random() < 0.5))
            sampler.update(level, float(rng.random()))
            out.append((level, replayed))
        return out

    run(s, 40)
    s.set_progress(0.4)
    state = s.state_dict()
    rng_state = rng.bit_generator.state
    after = run(s, 30)
    restored = DREDSampler(list(range(6)), generator=random_generator, generation_batch=4, seed=99)
    restored.load_state_dict(state)
    rng.bit_generator.state = rng_state
    assert run(restored, 30) == after
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
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        level_samplers.make("dred", ["a", "b"], **params)


def test_the_sampler_imports_neither_torch_nor_envs():
    code = "import sys, heldout.level_samplers.dred; print(any(m == 'torch' or m.startswith('heldout.envs') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
