"""Episode scores from rollouts: segments, merging across rollout boundaries, zero scores.

Two rollouts of T=3 steps in E=2 slots, worked by hand:

slot 0, rollout 1: episode "a" (steps 0-1, ends), episode "b" starts at step 2 (cut)
slot 0, rollout 2: "b" goes on at steps 0-1 and ends, episode "c" (step 2) ends with the rollout
slot 1: one long episode "d" through both rollouts, still running at the end
"""

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from heldout.level_samplers import EpisodeScorer, scores

LEVELS_1 = [["a", "d"], ["a", "d"], ["b", "d"]]
LEVELS_2 = [["b", "d"], ["b", "d"], ["c", "d"]]
STARTS_1 = np.array([[1, 1], [0, 0], [1, 0]], dtype=np.float32)
STARTS_2 = np.array([[0, 0], [0, 0], [1, 0]], dtype=np.float32)
ADV_1 = np.array([[1.0, 0.0], [-3.0, 0.0], [2.0, 0.0]])
ADV_2 = np.array([[-4.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
REPLAYED_1 = np.array([[True, False], [True, False], [False, False]])
REPLAYED_2 = np.array([[False, False], [False, False], [True, False]])


def rollout(levels, starts, adv, replayed, last_dones, values=None, rewards=None, returns=None, last_values=(0.0, 0.0)):
    values = np.zeros((3, 2)) if values is None else np.asarray(values, dtype=float)
    return dict(
        levels=levels,
        replayed=replayed,
        rewards=np.zeros((3, 2)) if rewards is None else np.asarray(rewards, dtype=float),
        values=values,
        advantages=adv,
        returns=adv + values if returns is None else returns,
        episode_starts=starts,
        last_values=np.asarray(last_values),
        last_dones=np.asarray(last_dones),
    )


def test_value_l1_episodes_merged_across_the_boundary_and_zero_kept():
    scorer = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    first = scorer.process(**rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, last_dones=[False, False]))
    assert [(e.level, e.steps, e.replayed) for e in first] == [("a", 2, True)]
    assert first[0].score == pytest.approx((1 + 3) / 2)
    assert scorer.pending() == {0: ("b", 1), 1: ("d", 3)}

    second = scorer.process(**rollout(LEVELS_2, STARTS_2, ADV_2, REPLAYED_2, last_dones=[True, False]))
    # "b": parts scored 2 (1 step) and (4 + 1) / 2 = 2.5 (2 steps) -> one score, step-weighted: 7/3
    # (overwriting with the later part would give 2.5; scoring each part would give two updates)
    assert [(e.level, e.steps, e.replayed, e.complete) for e in second] == [("b", 3, False, True), ("c", 1, True, True)]
    assert second[0].score == pytest.approx(7 / 3)
    # "c" has advantage exactly 0: its score 0.0 is reported like any other
    assert second[1].score == 0.0
    assert scorer.pending() == {1: ("d", 6)}

    # "d" never ended; flushing scores what it has. Its first part scored exactly 0 and still
    # counts: (3 * 0 + 3 * 1) / 6 = 0.5 (dropping the zero part would give 1)
    flushed = scorer.flush()
    assert [(e.level, e.steps, e.complete) for e in flushed] == [("d", 6, False)]
    assert flushed[0].score == pytest.approx(0.5)
    assert scorer.pending() == {}


def test_one_step_td_bootstraps_a_cut_segment_and_uses_zero_after_a_done():
    scorer = EpisodeScorer("one_step_td", num_envs=2, gamma=0.5)
    rewards = [[1.0, 0.0], [2.0, 0.0], [4.0, 0.0]]
    values = [[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]
    out = scorer.process(
        **rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False], values=values, rewards=rewards, last_values=(10.0, 0.0))
    )
    # "a": steps 0-1, done after step 1: |1 + 0.5*1 - 0| = 1.5, |2 + 0.5*0 - 1| = 1 -> 1.25
    assert out[0].level == "a" and out[0].score == pytest.approx(1.25)
    # "b" (step 2) is cut: bootstrap V = 10 -> |4 + 5 - 3| = 6, carried with its one step
    out2 = scorer.process(**rollout(LEVELS_2, STARTS_2, np.zeros((3, 2)), REPLAYED_2, [True, False]))
    # rollout 2: "b" steps with r = V = 0 give TD error 0 -> (6 * 1 + 0 * 2) / 3 = 2
    assert out2[0].level == "b" and out2[0].score == pytest.approx(2.0)


def one_episode(rewards, values, score="max_mc", **kwargs):
    """One complete 3-step episode of level "a" in a 1-slot rollout."""
    scorer = EpisodeScorer(score, num_envs=1, gamma=0.99)
    col = lambda x: np.asarray(x, dtype=float).reshape(3, 1)  # noqa: E731
    return scorer.process(
        levels=[["a"]] * 3, replayed=np.ones((3, 1), bool), rewards=col(rewards), values=col(values),
        advantages=np.zeros((3, 1)), returns=np.full((3, 1), 99.0), episode_starts=col([1, 0, 0]),
        last_values=np.zeros(1), last_dones=np.ones(1, bool), **kwargs,
    )  # fmt: skip


def test_max_mc_r_max_is_the_achieved_return_not_an_overestimating_critic():
    # rewards 0, 0, 1 with V = 5 everywhere: the GAE lambda-returns (and the 99 in `returns`)
    # exceed anything the level allows; the achieved return is 1, so the score is 1 - 5 = -4
    (ep,) = one_episode([0, 0, 1], [5, 5, 5])
    assert ep.max_return == 1.0
    assert ep.score == pytest.approx(1.0 - 5.0)


def test_max_mc_with_step_penalties_records_the_episode_return():
    # rewards -1, -1, +1: the episode returned -1 (not the last step's return +1)
    (ep,) = one_episode([-1, -1, 1], [0.0, 0.5, 1.0])
    assert ep.max_return == -1.0
    assert ep.score == pytest.approx(-1.0 - 0.5)
    # a better return recorded earlier on the level is R_max; this episode still reports its own
    (ep,) = one_episode([-1, -1, 1], [0.0, 0.5, 1.0], max_return_of=lambda level: 2.0)
    assert ep.score == pytest.approx(2.0 - 0.5) and ep.max_return == -1.0


def test_max_mc_takes_the_given_episode_return_where_the_buffer_reward_holds_a_bootstrap():
    # the last buffer reward 3.0 holds a time-limit bootstrap; the env says the episode achieved 0.5
    returns = np.array([[np.nan], [np.nan], [0.5]])
    (ep,) = one_episode([0, 0, 3.0], [1, 1, 1], episode_returns=returns)
    assert ep.max_return == 0.5 and ep.score == pytest.approx(0.5 - 1.0)


def test_max_mc_over_rollouts_records_only_complete_episodes():
    scorer = EpisodeScorer("max_mc", num_envs=2, gamma=0.99)
    values_1 = [[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]]
    rewards_1 = [[0.0, 1.0], [5.0, 1.0], [1.0, 1.0]]
    out = scorer.process(
        **rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False], values=values_1, rewards=rewards_1),
        max_return_of=lambda level: 7.0 if level == "a" else None,
    )
    # "a" achieved 0 + 5 = 5; recorded 7 is better: 7 - mean(1, 3) = 5
    assert out[0].score == pytest.approx(5.0) and out[0].max_return == 5.0
    values_2 = [[4.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    rewards_2 = [[2.0, 1.0], [3.0, 1.0], [0.0, 1.0]]
    out2 = scorer.process(
        **rollout(LEVELS_2, STARTS_2, ADV_2, REPLAYED_2, [True, False], values=values_2, rewards=rewards_2),
        max_return_of=lambda level: None,
    )
    # "b": rewards 1 (rollout 1) + 2 + 3 = 6 achieved over both rollouts, values 2, 4, 0 -> 6 - 2 = 4
    assert out2[0].level == "b" and out2[0].max_return == 6.0
    assert out2[0].score == pytest.approx(scores.max_mc([2.0, 4.0, 0.0], 6.0)) == pytest.approx(4.0)
    # "d" never ended: it has no achieved return to record; with none known it scores its
    # return so far (6 x 1) minus its mean value 0
    (d,) = scorer.flush(lambda level: None)
    assert d.level == "d" and not d.complete and d.max_return is None and d.score == pytest.approx(6.0)


def test_distribution_scores_use_the_given_probabilities():
    scorer = EpisodeScorer("least_confidence", num_envs=2, gamma=0.99)
    probs = np.full((3, 2, 2), 0.5)
    probs[0, 0] = [0.9, 0.1]  # "a" step 0: 1 - 0.9 = 0.1 ; step 1: 0.5
    out = scorer.process(**rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False]), probs=probs)
    assert out[0].score == pytest.approx((0.1 + 0.5) / 2)
    with pytest.raises(ValueError, match="needs the policy's action probabilities"):
        scorer.process(**rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False]))


def test_state_dict_round_trip_continues_exactly():
    a = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    a.process(**rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False]))
    b = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    second = rollout(LEVELS_2, STARTS_2, ADV_2, REPLAYED_2, [True, False])
    assert a.process(**second) == b.process(**second)
    assert a.flush() == b.flush()


@dataclass(frozen=True)
class MazeLike:
    walls: bytes


def test_state_dict_keeps_dataclass_levels_as_levels():
    a, b = MazeLike(b"\x00"), MazeLike(b"\x01")
    scorer = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    levels = [[a, b], [a, b], [a, b]]
    scorer.process(**rollout(levels, np.array([[1, 1], [0, 0], [0, 0]]), ADV_1, REPLAYED_1, [False, False]))
    state = pickle.loads(pickle.dumps(scorer.state_dict()))
    restored = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    restored.load_state_dict(state)
    assert restored.pending() == {0: (a, 3), 1: (b, 3)}
    assert [e.level for e in restored.flush()] == [a, b]


def test_a_carried_episode_that_cannot_continue_is_scored_not_dropped():
    scorer = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    scorer.process(**rollout(LEVELS_1, STARTS_1, ADV_1, REPLAYED_1, [False, False]))
    # The next rollout says both slots start fresh episodes (e.g. the env was reset).
    starts = np.array([[1, 1], [0, 0], [0, 0]], dtype=np.float32)
    levels = [["e", "f"]] * 3
    out = scorer.process(**rollout(levels, starts, np.ones((3, 2)), REPLAYED_2, [True, True]))
    assert [(e.level, e.complete) for e in out] == [("b", False), ("e", True), ("d", False), ("f", True)]
    assert out[0].score == pytest.approx(2.0) and out[2].score == 0.0


def test_a_segment_with_two_levels_is_an_error():
    scorer = EpisodeScorer("value_l1", num_envs=2, gamma=0.99)
    bad = [["a", "d"], ["x", "d"], ["b", "d"]]
    with pytest.raises(ValueError, match="slot 0: steps 0..1 form one episode"):
        scorer.process(**rollout(bad, STARTS_1, ADV_1, REPLAYED_1, [False, False]))
