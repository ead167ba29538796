"""Safe, atomic checkpoints of a whole training run, and their exact restoration.

A checkpoint holds the model and optimiser, the reward normaliser's statistics, the level
sampler's state, the environments' simulator state, every RNG state, the run's config and the
counters, taken between two PPO updates. It is a plain-data tree (:mod:`heldout.trainer.tree`:
loading it executes nothing) written to a temporary file and renamed into place, so a run
killed at any moment keeps its previous checkpoint intact.
"""

from __future__ import annotations

import random
from collections import deque
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from heldout.cli import UsageError
from heldout.envs.base import LevelSpace
from heldout.trainer import config
from heldout.trainer.build import Run
from heldout.trainer.rundir import CHECKPOINT, CONFIG_FILE, RESUMABLE, config_differences
from heldout.trainer.tree import UnsafeFileError, load_tree, save_tree

FORMAT = "heldout-checkpoint-v3"
"""v3: the env reports replay flags and the sampler glue keeps no copy of the slots (v2 did)."""


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
        else {
            "mean": normalizer.ret_rms.mean,
            "var": normalizer.ret_rms.var,
            "count": normalizer.ret_rms.count,
            "returns": normalizer.returns.copy(),
        },
        "env": level_env.get_state(),
        "rng": rng_states(),
        **extra,
    }


def save(state: dict[str, Any], path: Path, level_space: LevelSpace | None = None) -> None:
    """Write a :func:`capture` state (levels in its text form of ``level_space``)."""
    save_tree(path, state, level_space)


def load(path: Path, level_space: LevelSpace | None = None) -> dict[str, Any]:
    """Read a checkpoint safely; a missing, damaged, foreign or unsafe one raises an error that says what to do."""
    if not Path(path).exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}; the run has not written one yet, start it afresh without --resume"
        )
    try:
        state = load_tree(path, level_space, what="checkpoint")
    except UnsafeFileError:
        raise
    except ValueError as err:
        raise ValueError(f"{err}; restore it from a copy or start the run afresh in a new --run-dir") from None
    found = state.get("format") if isinstance(state, dict) else None
    if isinstance(found, str) and found.startswith("heldout-checkpoint-") and found != FORMAT:
        raise ValueError(
            f"{path} was written by another heldout version ({found}; this one reads {FORMAT}); continue the "
            "run with the heldout version that wrote it, or start it afresh in a new --run-dir"
        )
    if found != FORMAT:
        raise ValueError(f"{path} is not a heldout checkpoint ({FORMAT}); give a run directory written by heldout train")
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
        normalizer.ret_rms.mean = saved["mean"]
        normalizer.ret_rms.var = saved["var"]
        normalizer.ret_rms.count = saved["count"]
        normalizer.returns = saved["returns"].copy()
    level_env.set_state(state["env"])
    set_rng_states(state["rng"])


# -- a run's checkpoint ---------------------------------------------------------------------------


def save_checkpoint(run: Run) -> None:
    """Write the run's state to ``RUN_DIR/checkpoints/latest.pt`` (atomically)."""
    extra = {
        "sampler": run.glue.state_dict(),
        "last_eval_step": run.last_eval_step,
        "pending": list(run.pending),
        "wall_time": run.wall_time_before + time.time() - run.started,
        "config": config.to_dict(run.cfg),
    }
    if run.partner is not None:
        extra["partner"] = run.partner.state_dict()
    if run.bonus is not None:
        extra["bonus"] = run.bonus.state_dict()
    state = capture(run.model, run.level_env, extra)
    save(state, run.run_dir / CHECKPOINT, run.level_env.level_space)


def load_checkpoint(run: Run) -> dict[str, Any]:
    """The run's checkpoint, read safely and checked against the run's config (writes nothing)."""
    run_dir = run.run_dir
    path = run_dir / CHECKPOINT
    state = load(path, run.level_env.level_space)
    differing = config_differences(state.get("config") or {}, run.cfg, ignore=RESUMABLE)
    if differing:
        raise UsageError(
            f"checkpoint {path} was written with other settings than {run_dir / CONFIG_FILE} "
            f"({'; '.join(differing[:4])}{'; ...' if len(differing) > 4 else ''}); "
            "put back the run's own config.yaml or the checkpoint that belongs to it"
        )
    return state


def restore_checkpoint(run: Run, state: dict[str, Any]) -> None:
    """Put the run back where ``state`` left it; a state that does not fit is a UsageError."""
    path = run.run_dir / CHECKPOINT
    try:
        run.glue.load_state_dict(state["sampler"])
        if run.partner is not None:
            run.partner.load_state_dict(state["partner"])
        if run.bonus is not None:
            run.bonus.load_state_dict(state["bonus"])
        restore(run.model, run.level_env, state)
    except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UsageError(f"checkpoint {path} does not fit this run ({detail}); start the run afresh in a new --run-dir") from None
    run.last_eval_step = state["last_eval_step"]
    run.pending = list(state.get("pending", []))  # checkpoints from before it was recorded: none
    run.wall_time_before = state["wall_time"]
