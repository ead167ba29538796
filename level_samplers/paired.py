"""PAIRED's regret estimate (numpy only): what the level-designing adversary is rewarded with.

Per env slot, over the episodes that *ended* in one rollout of that slot's level:

    regret = max(antagonist returns) - mean(protagonist returns)

with the max starting from 0 and the mean 0 when no episode ended (jaxued
``examples/maze_paired.py`` ~551-559 through ``utils.accumulate_rollout_stats``,
DramaCow/jaxued@0f8f128). dcd (``envs/runners/adversarial_runner.py``
``_compute_env_return`` ~637-641, facebookresearch/dcd@72991be) clips the same difference
at 0 (``form="dcd"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REGRET_FORMS = ("jaxued", "dcd")


def regret(
    protagonist_returns: Sequence[Sequence[float]],
    antagonist_returns: Sequence[Sequence[float]],
    *,
    form: str = "jaxued",
) -> np.ndarray:
    """The regret of each slot, from each slot's finished episode returns of both students."""
    if form not in REGRET_FORMS:
        raise ValueError(f"regret form {form!r} is not one of {', '.join(REGRET_FORMS)}")
    if len(protagonist_returns) != len(antagonist_returns):
        raise ValueError(
            f"protagonist returns cover {len(protagonist_returns)} slots, antagonist returns {len(antagonist_returns)}"
        )
    out = np.empty(len(protagonist_returns), dtype=np.float64)
    for slot, (pro, ant) in enumerate(zip(protagonist_returns, antagonist_returns)):
        best = max([0.0, *map(float, ant)])
        mean = float(np.mean(pro)) if len(pro) else 0.0
        out[slot] = best - mean
    return np.maximum(out, 0.0) if form == "dcd" else out


def adversary_rewards(regrets: np.ndarray, episode_steps: int) -> np.ndarray:
    """(episode_steps, slots) rewards of the adversary's one design episode per slot: 0 at every
    step and the slot's regret at the last (jaxued ~555: ``zeros.at[-1].set(est_regret)``)."""
    regrets = np.asarray(regrets, dtype=np.float64).reshape(-1)
    rewards = np.zeros((int(episode_steps), regrets.size), dtype=np.float32)
    rewards[-1] = regrets
    return rewards
