"""What every exploration bonus does, and the running scale that normalises it."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


class Bonus:
    """An intrinsic reward over a batch of env slots.

    Per step the wrapper (:class:`heldout.bonuses.BonusVecEnv`) calls :meth:`reward` with the
    observations the actions were taken in, the actions and the observations they reached (an
    ended episode's last one, not the next episode's first), then :meth:`begin` for the slots
    whose episode ended, with the next episode's first observation. After each rollout it calls
    :meth:`learn` with the rollout's transitions (a bonus with networks trains them there).
    """

    learns = False
    """Whether :meth:`learn` trains anything (the wrapper keeps the rollout's transitions only then)."""

    def begin(self, slots: np.ndarray, obs: np.ndarray) -> None:
        """Episodes start in ``slots`` with first observations ``obs`` (one per slot)."""

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """The raw bonus (float64, one per slot) for reaching ``next_obs``; updates the bonus's memory."""
        raise NotImplementedError

    def learn(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> dict[str, float]:
        """Train on a rollout's transitions (flattened over steps and slots); the losses by name."""
        return {}

    def distinct_states(self) -> int | None:
        """How many distinct observations the counts hold over training (None: the bonus counts nothing)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def observation_key(obs: np.ndarray) -> int:
    """A 64-bit hash of one observation's bytes, shape and dtype (any array observation)."""
    array = np.ascontiguousarray(obs)
    digest = hashlib.blake2b(array.tobytes(), digest_size=8, person=f"{array.dtype.str}{array.shape}".encode()[:16])
    return int.from_bytes(digest.digest(), "little")


class RunningStd:
    """The standard deviation of every value seen so far (Chan et al.'s parallel update of count,
    mean and M2, as e3b's ``update_running_moments`` keeps it: no mean is subtracted when scaling).

    Values are scaled only once ``min_count`` have been seen: e3b's first normalisation divides a
    learner batch of 640 values (80 steps x 8) by their std, while a per-step update starts from one
    value per env slot, whose near-zero spread would blow the first bonuses up a thousandfold."""

    def __init__(self, min_count: int = 640) -> None:
        self.min_count = min_count
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = values.size
        if n == 0:
            return
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.m2 += batch_m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def scale(self, values: np.ndarray) -> np.ndarray:
        """``values`` divided by the running std (unchanged before ``min_count`` values, or while it is 0)."""
        std = self.std
        return values / std if std > 0 and self.count >= self.min_count else values

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), float(state["mean"]), float(state["m2"])
