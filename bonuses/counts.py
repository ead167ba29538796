"""Count bonuses over a hash of the observation: global (counts over training) and episodic
(counts reset each episode)."""

from __future__ import annotations

from typing import Any

import numpy as np

from heldout.bonuses.base import Bonus, observation_key


def _to_arrays(counts: dict[int, int]) -> dict[str, np.ndarray]:
    keys = np.fromiter(counts.keys(), dtype=np.uint64, count=len(counts))
    return {"keys": keys, "counts": np.fromiter(counts.values(), dtype=np.int64, count=len(counts))}


def _from_arrays(state: dict[str, np.ndarray]) -> dict[int, int]:
    return dict(zip(np.asarray(state["keys"]).tolist(), np.asarray(state["counts"]).tolist()))


class GlobalCount(Bonus):
    """1 / sqrt(N(s)), N counting every visit of the observation since training began (the
    reached observation included, and each episode's first one)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def _visit(self, obs: np.ndarray) -> int:
        key = observation_key(obs)
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        return n

    def begin(self, slots: np.ndarray, obs: np.ndarray) -> None:
        for o in obs:
            self._visit(o)

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        return np.array([1.0 / np.sqrt(self._visit(o)) for o in next_obs])

    def distinct_states(self) -> int:
        return len(self.counts)

    def state_dict(self) -> dict[str, Any]:
        return _to_arrays(self.counts)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = _from_arrays(state)


class EpisodicCount(Bonus):
    """1 / sqrt(N_e(s)) (``inverse_sqrt``) or 1 on the episode's first visit of s, else 0
    (``first_visit``: e3b's count.py), N_e counting the visits in the slot's episode so far."""

    def __init__(self, num_envs: int, form: str = "inverse_sqrt") -> None:
        self.form = form
        self.episodes: list[dict[int, int]] = [{} for _ in range(num_envs)]
        self.seen: set[int] = set()

    def _visit(self, slot: int, obs: np.ndarray) -> int:
        key = observation_key(obs)
        self.seen.add(key)
        n = self.episodes[slot].get(key, 0) + 1
        self.episodes[slot][key] = n
        return n

    def begin(self, slots: np.ndarray, obs: np.ndarray) -> None:
        for slot, o in zip(np.asarray(slots).tolist(), obs):
            self.episodes[slot] = {}
            self._visit(slot, o)

    def reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        counts = np.array([self._visit(e, o) for e, o in enumerate(next_obs)], dtype=np.float64)
        return (counts == 1).astype(np.float64) if self.form == "first_visit" else 1.0 / np.sqrt(counts)

    def distinct_states(self) -> int:
        return len(self.seen)

    def state_dict(self) -> dict[str, Any]:
        return {
            "episodes": [_to_arrays(ep) for ep in self.episodes],
            "seen": np.array(sorted(self.seen), dtype=np.uint64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["episodes"]) != len(self.episodes):
            raise ValueError(f"the bonus state holds {len(state['episodes'])} env slots, the run {len(self.episodes)}")
        self.episodes = [_from_arrays(ep) for ep in state["episodes"]]
        self.seen = set(np.asarray(state["seen"]).tolist())
