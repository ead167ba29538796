"""Checks before anything is allocated: settings that size memory (envs, steps per rollout, evaluation
episodes, level counts) against limits and an estimate of the memory they need, and settings of a
part the run does not use (``--augment`` with ``--agent ppo``). Each error names the setting, the
estimate and the limit."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from heldout.cli import UsageError

MAX_ENVS = 4096
"""Parallel environments (training or evaluation): beyond this, building them alone takes minutes and GBs."""
MAX_EPISODES = 100_000
"""Episodes per level set in one evaluation."""
MAX_LEVELS = 1_000_000
"""Training levels of a generated set."""
OBS_BYTES = {"procgen": 64 * 64 * 3}
"""Bytes of one observation per env family (the rollout buffer stores it as float32)."""
DEFAULT_OBS_BYTES = 16 * 16 * 3


def machine_memory() -> int:
    """The machine's physical memory in bytes (a large number where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def rollout_bytes(cfg: Any) -> int:
    """An estimate of the rollout buffer's memory: observations (float32) plus six float32 columns per step."""
    obs = OBS_BYTES.get(cfg.env.name.split("/")[0], DEFAULT_OBS_BYTES)
    return cfg.ppo.n_steps * cfg.env.num_envs * (obs * 4 + 6 * 4)


def check_allocations(cfg: Any, memory: int | None = None) -> None:
    """Raise UsageError for a setting that would allocate beyond its limit or half the machine's memory."""
    counts = [
        ("env.num_envs", cfg.env.num_envs, MAX_ENVS),
        ("eval.num_envs", cfg.eval.num_envs, MAX_ENVS),
        ("eval.episodes", cfg.eval.episodes, MAX_EPISODES),
        ("eval.final_episodes", cfg.eval.final_episodes, MAX_EPISODES),
        ("env.num_train_levels", cfg.env.num_train_levels, MAX_LEVELS),
    ]
    for name, value, limit in counts:
        if value > limit:
            raise UsageError(f"--{name} {value:,} is more than heldout allows ({limit:,}); choose at most {limit:,}")
    need, have = rollout_bytes(cfg), (memory if memory is not None else machine_memory()) // 2
    if need > have:
        raise UsageError(
            f"--ppo.n_steps {cfg.ppo.n_steps:,} x --env.num_envs {cfg.env.num_envs:,} needs a rollout buffer of about "
            f"{need / 2**30:.1f} GiB, more than half this machine's memory ({have / 2**30:.1f} GiB); choose fewer"
        )


def check_unused_sections(cfg: Any, used: tuple[str, ...]) -> None:
    """Refuse settings of an agent part (``augment``, ``drac``, ``ucb``) that the chosen agent never reads."""
    from heldout.trainer.config import TrainConfig

    defaults = TrainConfig()
    for section in ("augment", "drac", "ucb"):
        if section not in used and asdict(getattr(cfg, section)) != asdict(getattr(defaults, section)):
            raise UsageError(
                f"--{section}.* settings are given, but --agent {cfg.agent} does not use them; leave them out, "
                f"or choose an agent that reads them"
            )


def check_bonus(cfg: Any, offline: bool) -> None:
    """Refuse ``--bonus.*`` settings without a bonus, and a bonus for an agent that learns from a dataset."""
    from heldout.trainer.config import TrainConfig

    if cfg.bonus.name == "none" and asdict(cfg.bonus) != asdict(TrainConfig().bonus):
        raise UsageError("--bonus.* settings are given, but no --bonus; choose one (e.g. --bonus product) or leave them out")
    if cfg.bonus.name != "none" and offline:
        raise UsageError(f"--bonus {cfg.bonus.name} rewards exploration, but --agent {cfg.agent} learns from a dataset; leave it out")
