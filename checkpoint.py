"""Atomic checkpoints of a whole training run, and their exact restoration.

A checkpoint holds the model and optimiser, the reward normaliser's statistics, the level
sampler's state, the environments' simulator state, every RNG state and the counters, taken
between two PPO updates. It is written to a temporary file and renamed into place, so a run
killed at any moment keeps its previous checkpoint intact.
"""

from __future__ import annotations

import os
from collections import deque
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

FORMAT = "heldout-checkpoint-v1"


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def find_vec_normalize(env: VecEnv) -> VecNormalize | None:
    while env is not None:
        if isinstance(env, VecNormalize):
            return env
        env = getattr(env, "venv", None)
    return None


def rng_states() -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def capture(model, level_env, extra: dict[str, Any]) -> dict[str, Any]:
    """The run's state between two updates (see :func:`restore`)."""
    normalizer = find_vec_normalize(model.get_env())
    return {
        "format": FORMAT,
        "num_timesteps": model.num_timesteps,
        "n_updates": model._n_updates,
        "episode_num": model._episode_num,
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "agent": model.agent_state_dict(),
        "last_obs": model._last_obs,
        "last_episode_starts": model._last_episode_starts,
        "last_original_obs": getattr(model, "_last_original_obs", None),
        "ep_info_buffer": list(model.ep_info_buffer or []),
        "reward_normalizer": None
        if normalizer is None
        else {"ret_rms": normalizer.ret_rms, "returns": normalizer.returns.copy()},
        "env": level_env.get_state(),
        "rng": rng_states(),
        **extra,
    }


def save(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint; a missing or damaged one raises an error that says what to do."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; the run has not written one yet, start it afresh without --resume"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds for a truncated or foreign file
        raise ValueError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); "
            "restore it from a copy or start the run afresh in a new --run-dir"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a heldout checkpoint ({FORMAT}); point --resume at a heldout run directory")
    return state


def restore(model, level_env, state: dict[str, Any]) -> None:
    """Put ``model`` and its env back exactly as :func:`capture` found them (RNG last)."""
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.load_agent_state_dict(state.get("agent", {}))
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model._episode_num = state["episode_num"]
    model._last_obs = state["last_obs"]
    model._last_episode_starts = state["last_episode_starts"]
    if state["last_original_obs"] is not None:
        model._last_original_obs = state["last_original_obs"]

    model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=100)
    model.ep_success_buffer = deque(maxlen=100)
    normalizer = find_vec_normalize(model.get_env())
    saved = state["reward_normalizer"]
    if (normalizer is None) != (saved is None):
        raise ValueError("checkpoint and config disagree on reward normalisation; resume with the run's own config")
    if normalizer is not None:
        normalizer.ret_rms = saved["ret_rms"]
        normalizer.returns = saved["returns"].copy()
    level_env.set_state(state["env"])
    set_rng_states(state["rng"])
