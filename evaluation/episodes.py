"""Evaluation on a level set, and the statistics of the generalisation gap.

Episodes are planned before they are played: episode k plays a fixed level (the set's levels
in a seeded order, cycled; or draws from an unbounded set), and only planned episodes count,
so short episodes are not over-represented. Scores come with 95% intervals that respect that
episodes are clustered by level (:mod:`heldout.intervals`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from heldout.evaluation import intervals
from heldout.envs import EnvFamily, Level, LevelSet

@dataclass
class Episodes:
    """The outcome of an evaluation: one entry per episode."""

    level_set: str
    levels: list[Level]
    returns: np.ndarray
    lengths: np.ndarray


def plan_levels(level_set: LevelSet, episodes: int, seed: int) -> list[Level]:
    """Which level each of ``episodes`` evaluation episodes plays (reproducible from ``seed``)."""
    rng = np.random.default_rng(seed)
    if not level_set.finite:
        return [level_set.sample(rng) for _ in range(episodes)]
    order = [level_set.levels[i] for i in rng.permutation(len(level_set))]
    return [order[k % len(order)] for k in range(episodes)]


def run_episodes(
    model,
    family: EnvFamily,
    level_set: LevelSet,
    episodes: int,
    *,
    num_envs: int = 16,
    deterministic: bool = False,
    seed: int = 0,
    env_options: dict | None = None,
) -> Episodes:
    """Play ``episodes`` planned episodes of ``level_set`` with ``model``'s policy.

    A recurrent policy (``ppo_lstm``) carries its hidden state from step to step, reset in
    each slot where an episode starts. Runs under forked torch RNGs (CPU and CUDA) seeded with
    ``seed``: evaluating never changes the random stream of the training it interrupts, and the
    same model gives the same result.
    """
    plan = plan_levels(level_set, episodes, seed)
    queue = deque(enumerate(plan))
    num_envs = max(1, min(num_envs, episodes))
    vec = family.make_vec(num_envs, level_set, seed=seed, **(env_options or {}))
    current: list[int | None] = [None] * num_envs  # planned episode index each slot is playing

    def next_level(slot: int) -> Level:
        if queue:
            index, level = queue.popleft()
            current[slot] = index
            return level
        current[slot] = None  # filler episode: played but not counted
        return plan[0]

    vec.set_level_source(next_level)
    returns = np.full(episodes, np.nan)
    lengths = np.zeros(episodes, dtype=np.int64)
    done_count = 0
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []):
        torch.manual_seed(seed)
        obs = vec.reset()
        state, starts = None, np.ones(num_envs, dtype=bool)  # a recurrent policy's memory, reset at starts
        while done_count < episodes:
            playing = list(current)
            actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=deterministic)
            obs, _, dones, infos = vec.step(actions)
            starts = dones
            for slot in np.flatnonzero(dones).tolist():
                index = playing[slot]
                if index is not None:
                    returns[index] = infos[slot]["episode"]["r"]
                    lengths[index] = infos[slot]["episode"]["l"]
                    done_count += 1
    vec.close()
    return Episodes(level_set.name, plan, returns, lengths)


# -- statistics -----------------------------------------------------------------------------------


def interval(values: Sequence[float] | np.ndarray, levels: Sequence[Level], proportion: bool = False) -> dict[str, Any]:
    """Mean and 95% interval of episodes that played ``levels`` (:func:`intervals.level_interval`;
    ``proportion`` for solve rates)."""
    return intervals.level_interval(values, intervals.cluster_ids(levels), proportion)


def is_proportion(family: EnvFamily, unit: str) -> bool:
    """Whether ``unit`` (a key of :func:`scores`) counts successes: a solve rate."""
    return unit == "solve_rate" or (unit == "score" and family.score_unit == "solve rate")


def difference(
    a: Sequence[float] | np.ndarray, a_levels: Sequence[Level], b: Sequence[float] | np.ndarray, b_levels: Sequence[Level]
) -> dict[str, Any]:
    """Mean of ``a`` minus mean of ``b`` with a 95% interval (:func:`intervals.gap_interval`)."""
    return intervals.gap_interval(
        np.asarray(a), intervals.cluster_ids(a_levels), np.asarray(b), intervals.cluster_ids(b_levels)
    )


def scores(family: EnvFamily, episodes: Episodes, env_options: dict | None = None) -> dict[str, np.ndarray]:
    """Per-episode scores in every unit the family defines: the headline unit first."""
    out: dict[str, np.ndarray] = {}
    solved = family.solved(episodes.returns)
    if family.score_unit == "solve rate" and solved is not None:
        out["score"] = solved.astype(np.float64)
    else:
        out["score"] = episodes.returns
    out["return"] = episodes.returns
    normalised = family.normalise(episodes.returns, **(env_options or {}))
    if normalised is not None and family.score_unit == "return":
        out["normalised"] = np.asarray(normalised, dtype=np.float64)
    if solved is not None:
        out["solve_rate"] = solved.astype(np.float64)
    return out


def summarise(family: EnvFamily, train: Episodes, test: Episodes, env_options: dict | None = None) -> dict[str, dict]:
    """``train``, ``test`` and ``gap`` (train minus test): mean and 95% interval in the
    family's score unit, with the raw return and, where defined, the normalised score beside."""
    s_train, s_test = scores(family, train, env_options), scores(family, test, env_options)
    result: dict[str, dict] = {}
    for unit in ("score", "return", "normalised", "solve_rate"):
        if unit not in s_train or (unit == "solve_rate" and family.score_unit == "solve rate"):
            continue
        binary = is_proportion(family, unit)
        stats = {
            "train": interval(s_train[unit], train.levels, binary),
            "test": interval(s_test[unit], test.levels, binary),
            "gap": difference(s_train[unit], train.levels, s_test[unit], test.levels),
        }
        for part, value in stats.items():
            if unit == "score":
                result[part] = value
            else:
                result[part][unit] = value
    return result


def per_level(family: EnvFamily, episodes: Episodes, names: dict[Level, str], env_options: dict | None = None) -> dict[str, dict]:
    """Score of every named level (mean and 95% interval over its episodes), in ``names``' order."""
    values = scores(family, episodes, env_options)["score"]
    out: dict[str, dict] = {}
    for level, name in names.items():
        mine = [v for lv, v in zip(episodes.levels, values) if lv == level]
        if mine:
            out[name] = interval(mine, [level] * len(mine), is_proportion(family, "score"))
    return out


def summarise_sets(
    family: EnvFamily,
    train: Episodes,
    tests: dict[str, Episodes],
    level_sets: dict[str, LevelSet],
    env_options: dict | None = None,
) -> dict[str, dict]:
    """:func:`summarise` against the first held-out set (``train``, ``test``, ``gap``), and
    ``test_sets``: per held-out set its ``score`` and its ``gap`` (train minus that set) and,
    for a set that names its levels (``metadata["names"]``), ``per_level`` scores."""
    summaries = {name: summarise(family, train, episodes, env_options) for name, episodes in tests.items()}
    result = dict(summaries[next(iter(tests))])  # the first set's, bootstrapped once
    result["test_sets"] = {}
    for name, episodes in tests.items():
        both = summaries[name]
        entry: dict[str, dict] = {"score": both["test"], "gap": both["gap"]}
        level_names = level_sets[name].metadata.get("names") if level_sets[name].finite else None
        if level_names:
            named = dict(zip(level_sets[name].levels, level_names))
            entry["per_level"] = per_level(family, episodes, named, env_options)
        result["test_sets"][name] = entry
    return result
