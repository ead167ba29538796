"""Level scores on a synthetic episode with known rewards and values (numbers worked by hand)."""

import math

import numpy as np
import pytest

from heldout.level_samplers import scores

# One 3-step episode: rewards r, values V, gamma 0.9, lambda 0.5, terminal after the last step.
R = [0.0, 0.0, 1.0]
V = [0.9, 0.4, 0.8]
GAMMA, LAM = 0.9, 0.5
# delta_0 = 0 + 0.9*0.4 - 0.9 = -0.54 ; delta_1 = 0 + 0.9*0.8 - 0.4 = 0.32 ; delta_2 = 1 + 0 - 0.8 = 0.2
# A_2 = 0.2 ; A_1 = 0.32 + 0.45*0.2 = 0.41 ; A_0 = -0.54 + 0.45*0.41 = -0.3555
ADV = [-0.3555, 0.41, 0.2]


def test_compute_gae_by_hand():
    np.testing.assert_allclose(scores.compute_gae(R, V, 0.0, GAMMA, LAM), ADV, atol=1e-12)


def test_advantage_scores_by_hand():
    assert scores.value_l1(ADV) == pytest.approx((0.3555 + 0.41 + 0.2) / 3)
    assert scores.positive_value_loss(ADV) == pytest.approx((0.0 + 0.41 + 0.2) / 3)
    assert scores.gae(ADV) == pytest.approx((-0.3555 + 0.41 + 0.2) / 3)  # signed


def test_max_mc_by_hand():
    # mean(R_max - V) = 2 - (0.9 + 0.4 + 0.8) / 3 = 1.3
    assert scores.max_mc(V, 2.0) == pytest.approx(1.3)


def test_one_step_td_by_hand_terminal_and_bootstrapped():
    # |delta| = 0.54, 0.32, 0.2 with V(terminal) = 0
    assert scores.one_step_td(R, V, 0.0, GAMMA) == pytest.approx((0.54 + 0.32 + 0.2) / 3)
    # cut by a rollout: V(s_3) = 0.5 -> delta_2 = 1 + 0.45 - 0.8 = 0.65
    assert scores.one_step_td(R, V, 0.5, GAMMA) == pytest.approx((0.54 + 0.32 + 0.65) / 3)


def test_one_step_td_sign_and_gamma_are_right():
    # Values that satisfy V_t = r_t + gamma V_{t+1} exactly have zero TD error; a version with
    # the sign flipped or gamma left out would not.
    gamma = 0.5
    rewards = [1.0, 2.0, 4.0]
    values = [1.0 + 0.5 * (2.0 + 0.5 * 4.0), 2.0 + 0.5 * 4.0, 4.0]
    assert scores.one_step_td(rewards, values, 0.0, gamma) == 0.0
    # And one step of known error: r=1, V_t=0, V_{t+1}=2, gamma 0.5 -> |1 + 1 - 0| = 2 (not |1 + 0 - 2| = 1)
    assert scores.one_step_td([1.0], [0.0], 2.0, 0.5) == pytest.approx(2.0)


PROBS = [[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]


def test_distribution_scores_by_hand():
    h0 = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    h1 = -(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05))
    assert scores.policy_entropy(PROBS) == pytest.approx((h0 + h1) / 2 / math.log(3))
    assert scores.least_confidence(PROBS) == pytest.approx(((1 - 0.5) + (1 - 0.9)) / 2)
    assert scores.min_margin(PROBS) == pytest.approx(1 - ((0.5 - 0.3) + (0.9 - 0.05)) / 2)


def test_policy_entropy_is_per_step_and_handles_zero_probabilities():
    # Step 1 uniform over 2 of 4 actions (entropy log 2), step 2 deterministic (entropy 0).
    probs = [[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    assert scores.policy_entropy(probs) == pytest.approx(math.log(2) / 2 / math.log(4))
    assert scores.policy_entropy([[1.0]]) == 0.0
    assert scores.min_margin([[1.0], [1.0]]) == 0.0


def test_softmax_and_dispatcher():
    p = scores.softmax([[0.0, math.log(3.0)]])
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    assert scores.score("value_l1", advantages=ADV) == scores.value_l1(ADV)
    assert scores.score("one_step_td", rewards=R, values=V, next_value=0.0, gamma=GAMMA) == scores.one_step_td(R, V, 0.0, GAMMA)
    assert scores.score("min_margin", probs=PROBS) == scores.min_margin(PROBS)
    assert scores.score("max_mc", values=V, max_return=2.0) == pytest.approx(1.3)


def test_the_table_says_what_each_score_needs_and_which_is_an_episode_score():
    needs = {name: row.needs for name, row in scores.SCORES.items()}
    assert needs == {
        "value_l1": ("advantages",),
        "positive_value_loss": ("advantages",),
        "gae": ("advantages",),
        "max_mc": ("values", "max_return"),
        "one_step_td": ("rewards", "values", "next_value", "gamma"),
        "policy_entropy": ("probs",),
        "least_confidence": ("probs",),
        "min_margin": ("probs",),
    }
    assert [name for name, row in scores.SCORES.items() if not row.per_segment] == ["max_mc"]
    assert scores.SCORES["min_margin"].function is scores.min_margin
    # max_mc of an episode from its totals: 2 - (0.9 + 0.4 + 0.8) / 3 = 1.3, as from its values
    assert scores.SCORES["max_mc"].episode(2.1, 3, 2.0) == pytest.approx(1.3)


def test_scores_do_not_write_to_their_inputs():
    adv = np.array(ADV)
    vals = np.array(V)
    probs = np.array(PROBS)
    before = (adv.copy(), vals.copy(), probs.copy())
    for name in scores.SCORE_NAMES:
        scores.score(name, rewards=R, values=vals, advantages=adv, next_value=0.0, gamma=GAMMA, probs=probs, max_return=1.0)
    for a, b in zip((adv, vals, probs), before):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown score 'value_l2'.*value_l1"):
        scores.score("value_l2", advantages=ADV)
    with pytest.raises(ValueError, match="needs next_value, gamma"):
        scores.score("one_step_td", rewards=R, values=V)
    with pytest.raises(ValueError, match="needs probs"):
        scores.score("policy_entropy")
    with pytest.raises(ValueError, match="non-empty 1-D"):
        scores.value_l1([])
    with pytest.raises(ValueError, match="shape \\(steps, actions\\)"):
        scores.least_confidence([0.5, 0.5])
