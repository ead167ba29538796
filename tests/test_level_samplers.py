"""Level samplers: distributions worked by hand, replay decisions, buffers, checkpoints, errors."""

import itertools
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

from heldout import level_samplers
from heldout.level_samplers import transforms

SCORES = {"a": 0.2, "b": 0.5, "c": 0.1}

# P_S over (a, b, c) for scores (0.2, 0.5, 0.1), by hand:
#   rank, temperature 0.5: ranks (2, 1, 3) -> (1/2)^2, 1, (1/3)^2 = 1/4, 1, 1/9; sum 49/36
#   power, temperature 0.5: 0.2^2, 0.5^2, 0.1^2 = 0.04, 0.25, 0.01; sum 0.3
#   softmax, temperature 0.5: e^0.4, e^1, e^0.2 normalised
#   eps_greedy, epsilon 0.1: 0.1/3 everywhere, + 0.9 on b
#   constant: 1/3 each
_SOFT = [math.exp(0.4), math.exp(1.0), math.exp(0.2)]
EXPECTED_P_S = {
    "rank": [9 / 49, 36 / 49, 4 / 49],
    "power": [2 / 15, 5 / 6, 1 / 30],
    "softmax": [x / sum(_SOFT) for x in _SOFT],
    "eps_greedy": [1 / 30, 0.9 + 1 / 30, 1 / 30],
    "constant": [1 / 3, 1 / 3, 1 / 3],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_P_S))
def test_each_transform_by_hand(name):
    values = np.array([0.2, 0.5, 0.1])
    got = transforms.apply(name, values, temperature=0.5, epsilon=0.1)
    np.testing.assert_allclose(got, EXPECTED_P_S[name], rtol=1e-12)
    np.testing.assert_array_equal(values, [0.2, 0.5, 0.1])  # input untouched


def test_rank_is_a_power_of_one_over_rank_and_ties_keep_order():
    # temperature 1: 1/rank -> (1/2, 1, 1/3) / (11/6)
    np.testing.assert_allclose(transforms.rank_weights([0.2, 0.5, 0.1], 1.0), [3 / 11, 6 / 11, 2 / 11])
    # ties: the earlier entry gets the better rank
    np.testing.assert_allclose(transforms.rank_weights([1.0, 1.0], 1.0), [2 / 3, 1 / 3])


def test_all_zero_weights_fall_back_to_uniform():
    np.testing.assert_allclose(transforms.power_weights([0.0, -1.0, 0.0], 1.0), [1 / 3] * 3)


def fill(sampler, scores=SCORES):
    """Draw every level once (sequential schedule) and score it; returns the draw order."""
    order = []
    for _ in range(len(scores)):
        level, replayed = sampler.sample_with_replay_flag()
        assert not replayed
        sampler.update(level, scores[level])
        order.append(level)
    return order


@pytest.mark.parametrize("staleness_coef", [0.0, 0.1])
@pytest.mark.parametrize("name", sorted(EXPECTED_P_S))
def test_replay_distribution_by_hand_with_and_without_staleness(name, staleness_coef):
    s = level_samplers.make(
        "plr",
        ["a", "b", "c"],
        score_transform=name,
        temperature=0.5,
        eps_greedy_epsilon=0.1,
        staleness_coef=staleness_coef,
        replay_schedule="sequential",
        seed=3,
    )
    order = fill(s)
    assert sorted(order) == ["a", "b", "c"]
    # Three episodes sampled: staleness 2, 1, 0 in draw order; power transform, temperature 1
    assert s.staleness() == {order[0]: 2, order[1]: 1, order[2]: 0}
    p_c = {order[0]: 2 / 3, order[1]: 1 / 3, order[2]: 0.0}
    p_s = dict(zip("abc", EXPECTED_P_S[name]))
    expected = {lv: (1 - staleness_coef) * p_s[lv] + staleness_coef * p_c[lv] for lv in "abc"}
    got = s.probabilities()
    assert got.keys() == expected.keys()
    for lv in "abc":
        assert got[lv] == pytest.approx(expected[lv], rel=1e-12)


def test_staleness_transform_and_temperature_apply_to_staleness():
    s = level_samplers.make(
        "plr", ["a", "b", "c"], score_transform="constant", staleness_coef=1.0,
        staleness_transform="power", staleness_temperature=0.5, replay_schedule="sequential",
    )
    order = fill(s)
    # staleness 2, 1, 0 squared: 4, 1, 0 -> 4/5, 1/5, 0
    assert s.probabilities() == pytest.approx({order[0]: 0.8, order[1]: 0.2, order[2]: 0.0})


def test_replays_follow_the_replay_distribution():
    s = level_samplers.make("plr", ["a", "b", "c"], temperature=0.5, staleness_coef=0.0, replay_schedule="sequential", seed=0)
    fill(s)
    draws = [s.sample_with_replay_flag() for _ in range(20000)]
    assert all(replayed for _, replayed in draws)
    counts = {lv: sum(1 for d, _ in draws if d == lv) / len(draws) for lv in "abc"}
    for lv, p in zip("abc", EXPECTED_P_S["rank"]):
        assert counts[lv] == pytest.approx(p, abs=0.015)


def test_sampling_changes_staleness_but_probabilities_change_nothing():
    for name in transforms.TRANSFORMS:
        s = level_samplers.make("plr", ["a", "b", "c"], score_transform=name, replay_schedule="sequential")
        fill(s)
        before = s.state_dict()
        for _ in range(3):
            s.probabilities()
        after = s.state_dict()
        for key in ("scores", "seen", "last_sampled", "max_returns"):
            np.testing.assert_array_equal(before[key], after[key])
        assert before["rng"] == after["rng"]
        assert s.level_scores() == SCORES  # no transform wrote to the stored scores


def test_sequential_draws_unseen_levels_until_all_are_seen():
    s = level_samplers.make("plr", range(5), replay_schedule="sequential", seed=1)
    first = [s.sample_with_replay_flag() for _ in range(5)]
    for level, _ in first:
        s.update(level, 1.0)
    assert sorted(lv for lv, _ in first) == [0, 1, 2, 3, 4]  # each unseen level once
    assert not any(r for _, r in first)
    assert all(r for _, r in (s.sample_with_replay_flag() for _ in range(50)))


def test_proportionate_replays_with_the_seen_fraction():
    s = level_samplers.make("plr", range(4), seed=2)
    assert s.replay_schedule == "proportionate"
    assert not s.sample_with_replay_flag()[1]  # nothing seen: never replay
    s.update(0, 1.0)  # 1 of 4 seen
    flags = [s.sample_with_replay_flag()[1] for _ in range(4000)]
    assert np.mean(flags) == pytest.approx(0.25, abs=0.03)
    for lv in range(4):
        s.update(lv, 1.0)
    assert all(s.sample_with_replay_flag()[1] for _ in range(100))  # all seen: always replay


def test_min_fill_ratio_holds_replay_back():
    s = level_samplers.make("plr", range(4), min_fill_ratio=0.5, seed=2)
    s.update(0, 1.0)
    assert not any(s.sample_with_replay_flag()[1] for _ in range(200))
    s.update(1, 1.0)
    assert any(s.sample_with_replay_flag()[1] for _ in range(200))


def test_fixed_replay_probability_on_an_unbounded_space():
    s = level_samplers.make("plr", lambda rng: int(rng.integers(1_000_000)), replay_prob=0.3, seed=4)
    assert s.replay_schedule == "fixed" and not s.finite
    flags = []
    for _ in range(4000):
        level, replayed = s.sample_with_replay_flag()
        s.update(level, 1.0)
        flags.append(replayed)
    assert np.mean(flags) == pytest.approx(0.3, abs=0.03)


def test_robust_plr_defaults():
    s = level_samplers.make("robust_plr", range(10), seed=5)
    assert s.trains_on_new_levels is False
    assert (s.replay_schedule, s.replay_prob, s.score_name) == ("fixed", 0.5, "value_l1")
    assert level_samplers.make("plr", range(10)).trains_on_new_levels is True
    flags = []
    for _ in range(4000):
        level, replayed = s.sample_with_replay_flag()
        s.update(level, 1.0)
        flags.append(replayed)
    assert np.mean(flags[20:]) == pytest.approx(0.5, abs=0.03)


def test_fixed_schedule_on_a_finite_set_prefers_unseen_new_levels():
    s = level_samplers.make("robust_plr", range(3), replay_prob=0.0, seed=0)
    new = [s.sample_with_replay_flag() for _ in range(3)]
    for lv, _ in new:
        s.update(lv, 1.0)
    assert sorted(lv for lv, _ in new) == [0, 1, 2]
    # all seen: a "new" draw is uniform over the whole set, still not a replay
    later = [s.sample_with_replay_flag() for _ in range(300)]
    assert not any(r for _, r in later) and {lv for lv, _ in later} == {0, 1, 2}


def test_score_ema_and_first_score():
    s = level_samplers.make("plr", ["a", "b"], score_ema_alpha=0.5)
    s.update("a", 1.0)
    assert s.level_scores() == {"a": 1.0}  # the first score is stored as is
    s.update("a", 3.0)
    assert s.level_scores() == {"a": 2.0}  # 0.5 * 1 + 0.5 * 3
    s.update("b", 0.0)  # an exact zero is a score
    assert s.level_scores() == {"a": 2.0, "b": 0.0} and s.num_seen == 2


def test_max_return_is_the_highest_recorded():
    s = level_samplers.make("plr", ["a"], score="max_mc")
    assert s.max_return("a") is None
    s.update("a", 0.5, max_return=3.0)
    s.update("a", 0.5, max_return=2.0)
    assert s.max_return("a") == 3.0


def test_unbounded_buffer_inserts_and_evicts_by_score():
    counter = itertools.count()
    s = level_samplers.make("plr", lambda rng: next(counter), capacity=2, replay_prob=0.0)
    l0, l1, l2 = (s.sample() for _ in range(3))
    s.update(l0, 1.0)
    s.update(l1, 2.0)
    s.update(l2, 0.5)  # lower than every held score: not inserted
    assert s.level_scores() == {l0: 1.0, l1: 2.0}
    l3 = s.sample()
    s.update(l3, 3.0)  # evicts the lowest (l0)
    assert s.level_scores() == {l1: 2.0, l3: 3.0}
    assert s.probabilities().keys() == {l1, l3}
    with pytest.raises(ValueError, match="not held by this sampler"):
        s.update(l0, 5.0)  # evicted and not handed out since


def test_update_for_an_unknown_level_is_an_error():
    s = level_samplers.make("plr", ["a", "b"])
    with pytest.raises(ValueError, match="level 'z' is not held by this sampler"):
        s.update("z", 1.0)
    with pytest.raises(ValueError, match="must be finite"):
        s.update("a", float("nan"))


def drive(sampler, steps, start=0):
    out = []
    for i in range(start, start + steps):
        level, replayed = sampler.sample_with_replay_flag()
        sampler.update(level, ((hash(level) % 7) + i % 5) / 10.0, max_return=float(i % 3))
        out.append((level, replayed))
    return out


@pytest.mark.parametrize(
    "name, levels, params",
    [
        ("plr", list(range(20)), {}),
        ("plr", list(range(20)), {"score_transform": "softmax", "replay_schedule": "sequential"}),
        ("robust_plr", "unbounded", {"capacity": 8}),
        ("uniform", list(range(20)), {}),
        ("uniform", "unbounded", {"capacity": 8}),
    ],
)
def test_state_dict_round_trip_gives_identical_future_samples(name, levels, params):
    def make(seed):
        lv = (lambda rng: int(rng.integers(50))) if levels == "unbounded" else levels
        return level_samplers.make(name, lv, seed=seed, **params)

    a = make(seed=0)
    drive(a, 30)
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = make(seed=99)
    b.load_state_dict(state)
    assert b.probabilities() == a.probabilities()
    assert drive(a, 40, start=30) == drive(b, 40, start=30)
    assert a.level_scores() == b.level_scores()


def test_state_dict_is_a_copy():
    s = level_samplers.make("plr", ["a", "b", "c"], replay_schedule="sequential")
    fill(s)
    state = s.state_dict()
    state["scores"][:] = 99.0
    assert s.level_scores() == SCORES


def test_loading_a_state_for_other_levels_is_an_error():
    state = level_samplers.make("plr", ["a", "b"]).state_dict()
    with pytest.raises(ValueError, match="different level set"):
        level_samplers.make("plr", ["a", "c"]).load_state_dict(state)
    with pytest.raises(ValueError, match="from sampler 'plr', not 'robust_plr'"):
        level_samplers.make("robust_plr", ["a", "b"]).load_state_dict(state)


def test_uniform_sampler():
    s = level_samplers.make("uniform", ["a", "b", "c", "d"], seed=0)
    assert s.probabilities() == {lv: 0.25 for lv in "abcd"}
    draws = [s.sample_with_replay_flag() for _ in range(4000)]
    assert not any(r for _, r in draws)
    for lv in "abcd":
        assert sum(1 for d, _ in draws if d == lv) / 4000 == pytest.approx(0.25, abs=0.03)
    s.update("a", 0.0)
    assert s.level_scores() == {"a": 0.0} and s.num_seen == 1
    with pytest.raises(ValueError, match="not held"):
        s.update("z", 1.0)
    unbounded = level_samplers.make("uniform", lambda rng: int(rng.integers(10**9)))
    assert unbounded.probabilities() == {}
    with pytest.raises(ValueError, match="never handed out"):
        unbounded.update(-1, 1.0)


def test_names_and_unknown_name():
    assert level_samplers.names() == ["accel", "dr", "dred", "paired", "plr", "repaired", "robust_plr", "uniform"]
    with pytest.raises(KeyError) as err:
        level_samplers.make("plrr", range(3))
    assert "unknown level sampler 'plrr'" in str(err.value) and "Did you mean 'plr'" in str(err.value)
    assert "Available: accel, dr, dred, paired, plr, repaired, robust_plr, uniform" in str(err.value)


UNBOUNDED = lambda rng: 0  # noqa: E731


@pytest.mark.parametrize(
    "levels, params, message",
    [
        (range(3), {"score": "value_l2"}, "unknown score 'value_l2'; choose one of gae, least_confidence"),
        (range(3), {"score_transform": "max"}, "score_transform='max' is not accepted; choose one of constant, eps_greedy, power, rank, softmax"),
        (range(3), {"staleness_transform": "linear"}, "staleness_transform='linear' is not accepted; choose one of"),
        (range(3), {"temperature": 0}, "temperature must be a finite number > 0, got 0"),
        (range(3), {"temperature": -0.1}, "temperature must be a finite number > 0"),
        (range(3), {"staleness_temperature": 0.0}, "staleness_temperature must be a finite number > 0"),
        (range(3), {"staleness_coef": 1.5}, "staleness_coef must be in \\[0, 1\\], got 1.5"),
        (range(3), {"staleness_coef": -0.1}, "staleness_coef must be in \\[0, 1\\]"),
        (range(3), {"score_ema_alpha": 0.0}, "score_ema_alpha must be in \\(0, 1\\]"),
        (range(3), {"eps_greedy_epsilon": 2}, "eps_greedy_epsilon must be in \\[0, 1\\]"),
        (range(3), {"replay_schedule": "always"}, "replay_schedule='always' is not accepted; choose one of fixed, proportionate, sequential"),
        (range(3), {"replay_prob": 1.2}, "replay_prob must be in \\[0, 1\\]"),
        (range(3), {"replay_prob": 0.5, "replay_schedule": "sequential"}, "replay_prob applies only to replay_schedule='fixed'"),
        (range(3), {"capacity": 10}, "capacity applies only to an unbounded level space"),
        (range(3), {"rho": 0.1}, "no parameter 'rho'; accepted: score, score_transform, temperature"),
        ([], {}, "levels is empty"),
        ([1, 2, 1], {}, "contains 1 more than once"),
        ("abc", {}, "levels must be a finite, ordered sequence"),
        ([[1, 2]], {}, "levels must be hashable"),
        (UNBOUNDED, {"replay_schedule": "sequential"}, "needs a finite level set"),
        (UNBOUNDED, {"capacity": 0}, "capacity must be an integer >= 1"),
    ],
)
def test_bad_parameters_name_the_parameter_and_the_accepted_values(levels, params, message):
    with pytest.raises(ValueError, match=message):
        level_samplers.make("plr", levels, **params)


class _AddOne:
    """The least level space accel takes: an edit adds one, the empty level is 0."""

    def mutate(self, level, rng, num_edits=1):
        return level + num_edits

    def generate(self, name, rng):
        return 0


@pytest.mark.parametrize(
    "name, levels, params",
    [
        ("uniform", range(3), {}),
        ("dr", UNBOUNDED, {}),
        ("plr", range(3), {}),
        ("robust_plr", range(3), {}),
        ("accel", range(3), {"space": _AddOne()}),
        ("dred", range(3), {"generator": lambda rng, n: [0] * n}),
    ],
)
def test_every_sampler_and_the_scorer_refuse_an_unknown_score_with_one_message(name, levels, params):
    message = (
        "unknown score 'value_l2'; choose one of gae, least_confidence, max_mc, min_margin, "
        "one_step_td, policy_entropy, positive_value_loss, value_l1"
    )
    with pytest.raises(ValueError) as from_sampler:
        level_samplers.make(name, levels, score="value_l2", **params)
    with pytest.raises(ValueError) as from_scorer:
        level_samplers.EpisodeScorer("value_l2", num_envs=1, gamma=0.9)
    assert str(from_sampler.value) == str(from_scorer.value) == message


def test_level_samplers_import_neither_torch_nor_envs_nor_agents():
    code = (
        "import sys, heldout.level_samplers as ls; ls.make('plr', range(3)).sample();"
        "bad = [m for m in ('torch', 'heldout.envs', 'heldout.agents', 'stable_baselines3') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_level_set_object_is_accepted_as_levels():
    from heldout.envs.base import LevelSet

    finite = level_samplers.make("plr", LevelSet("train", levels=(3, 1, 2)))
    assert finite.finite and list(finite.probabilities()) == [3, 1, 2]
    unbounded = level_samplers.make("robust_plr", LevelSet("test", draw=lambda rng: int(rng.integers(100))))
    assert not unbounded.finite and 0 <= unbounded.sample() < 100


# -- typed parameters, and the keywords the trainer provides ------------------------------------------
def test_specs_type_default_and_help_come_from_the_signature_and_the_docstring():
    plr = level_samplers.specs("plr")
    assert list(plr) == [
        "score", "score_transform", "temperature", "staleness_coef", "staleness_transform", "staleness_temperature",
        "eps_greedy_epsilon", "score_ema_alpha", "replay_schedule", "replay_prob", "min_fill_ratio", "capacity", "eviction",
        "seed",
    ]  # fmt: skip
    assert plr["temperature"] == level_samplers.Parameter(
        "temperature", float, 0.1, "the score transform's temperature (beta), > 0."
    )
    assert (plr["capacity"].kind, plr["capacity"].default) == (int | None, None)
    # the docstring's "(default 4000)" says what None means; "(default power)" repeats the signature
    assert plr["capacity"].help == "buffer size for an unbounded level space (default 4000)."
    assert plr["staleness_transform"].help == "the transform applied to staleness."
    # an entry spanning lines ("score_ema_alpha: ... \n    A level's first score ...") is one line
    assert plr["score_ema_alpha"].help.endswith("1 replaces. A level's first score is always stored as is.")


def test_a_help_that_refers_to_a_base_class_takes_the_base_class_entry():
    accel = level_samplers.specs("accel")
    assert accel["num_edits"] == level_samplers.Parameter("num_edits", int, 5, "edit steps per child.")
    # ACCEL's "temperature, ..., replay_prob, ...: as for PLRSampler" -> PLR's own entries
    assert accel["temperature"].help == "the score transform's temperature (beta), > 0."
    assert (accel["replay_prob"].kind, accel["replay_prob"].default) == (float, 0.8)
    assert accel["replay_prob"].help == "the replay probability of the fixed schedule, the cap of ramp."  # no "(default 0.5)"
    assert level_samplers.specs("dred")["temperature"].help == "P_S over the training levels (rank, 0.1)."
    robust, plr = level_samplers.specs("robust_plr"), level_samplers.specs("plr")
    assert {k: (p.kind, p.default, p.help) for k, p in robust.items()} == {
        k: (p.kind, p.default, p.help) for k, p in plr.items()
    }  # the same constructor; only robust_plr's maze defaults differ (its own family_defaults)
    assert robust["temperature"].by_family == {"maze": 0.3} and plr["temperature"].by_family == {}


def test_needs_names_the_keywords_the_trainer_provides():
    assert level_samplers.PROVIDED == ("space", "generator", "designer")
    assert {name: level_samplers.needs(name) for name in level_samplers.names()} == {
        "accel": {"space"},
        "dr": frozenset(),
        "dred": {"generator", "space"},
        "paired": {"designer", "space"},
        "plr": frozenset(),
        "repaired": {"designer", "space"},
        "robust_plr": frozenset(),
        "uniform": frozenset(),
    }
    assert "generator" not in level_samplers.parameters("dred") and "space" not in level_samplers.parameters("dred")
    assert level_samplers.takes_space("dred") and not level_samplers.takes_space("dr")


def test_make_hands_the_generator_to_the_samplers_that_take_it_only():
    def generator(rng, n):
        return ["new"] * n

    dred = level_samplers.make("dred", ["a", "b"], generator=generator, seed=1)
    assert dred._generator is generator
    plr = level_samplers.make("plr", ["a", "b"], generator=generator, temperature=0.3)
    assert plr.temperature == 0.3


# -- eviction and the replay gate (jaxued level_sampler.py 96-108, 375-404; dcd 606-619) ---------------
def _filled(scores, **params):
    """A Robust PLR buffer of ints 0, 1, ... sampled and scored in order (no replay while filling)."""
    draws = iter(range(10_000))
    s = level_samplers.make("robust_plr", lambda rng: next(draws), replay_prob=0.0, **params)
    for score in scores:
        level, replayed = s.sample_with_replay_flag()
        assert not replayed
        s.update(level, score)
    return s


def test_eviction_by_replay_weight_keeps_a_stale_low_scorer():
    # Levels 0, 1, 2 scored 0.1, 0.5, 0.9, placed at episodes 1, 2, 3; level 3 is drawn at episode 4.
    # Staleness 3, 2, 1 -> P_C = (3, 2, 1) / 6. Rank, temperature 1: h = (1/3, 1/2, 1) / (11/6).
    # P = 0.5 P_S + 0.5 P_C = (0.341, 0.303, 0.356): level 1 weighs least although level 0 scores least.
    p_s = np.array([1 / 3, 1 / 2, 1]) / (11 / 6)
    p_c = np.array([3, 2, 1]) / 6
    expected = 0.5 * p_s + 0.5 * p_c
    assert np.argmin(expected) == 1
    params = {"capacity": 3, "temperature": 1.0, "staleness_coef": 0.5, "min_fill_ratio": 0.0}
    by_weight = _filled([0.1, 0.5, 0.9], eviction="weight", **params)
    level, _ = by_weight.sample_with_replay_flag()
    weights = by_weight.probabilities()
    assert [weights[i] for i in (0, 1, 2)] == pytest.approx(expected)
    by_weight.update(level, 0.6)  # above level 1's 0.5: it replaces level 1
    assert set(by_weight.level_scores()) == {0, 2, 3}
    by_score = _filled([0.1, 0.5, 0.9], eviction="score", **params)
    by_score.update(by_score.sample(), 0.6)  # the earlier rule: the lowest score (level 0) goes
    assert set(by_score.level_scores()) == {1, 2, 3}


def test_a_new_level_must_beat_the_lowest_weighted_score_strictly():
    params = {"capacity": 3, "temperature": 1.0, "staleness_coef": 0.5, "min_fill_ratio": 0.0, "eviction": "weight"}
    s = _filled([0.1, 0.5, 0.9], **params)
    s.update(s.sample(), 0.5)  # ties level 1's score: jaxued replaces only when old < new
    assert set(s.level_scores()) == {0, 1, 2}
    with pytest.raises(ValueError, match="eviction='oldest' is not accepted; choose one of score, weight"):
        level_samplers.make("plr", range(3), eviction="oldest")


def _replay_rate(s, n=3000):
    return np.mean([s.sample_with_replay_flag()[1] for _ in range(n)])


@pytest.mark.parametrize("scored, fixed, ramp", [(4, 0.0, 0.4), (5, 0.8, 0.5), (10, 0.8, 0.8)])
def test_replay_waits_for_the_minimum_fill_then_fixed_or_ramped(scored, fixed, ramp):
    # fixed (jaxued): replay 0.8 once fill >= 0.5; ramp (dcd): min(fill, 0.8), here with no minimum fill
    s = _filled([0.5] * scored, capacity=10, min_fill_ratio=0.5)
    s.replay_prob = 0.8
    assert abs(_replay_rate(s) - fixed) < 0.03  # sd of a rate of 3000 draws: under 0.01
    r = _filled([0.5] * scored, capacity=10, replay_schedule="ramp", min_fill_ratio=0.0)
    r.replay_prob = 0.8
    assert abs(_replay_rate(r) - ramp) < 0.03
