"""Exploration bonuses: an intrinsic reward added to what the agent learns from.

>>> env = BonusVecEnv(venv, make(BonusConfig(name="product"), venv, seed=0))

Global bonuses remember all of training (:class:`GlobalCount`, :class:`RND`), episodic ones the
running episode (:class:`EpisodicCount`, :class:`E3B`); ``sum`` and ``product`` combine one of
each (Henaff et al. 2023). :class:`BonusVecEnv` adds the bonus to the rewards of the env it
wraps; evaluation never builds one. Values and sources: docs/fidelity.md, Exploration bonuses.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces

from heldout.agents.networks import is_symbol_grid, symbol_count
from heldout.bonuses.base import Bonus, RunningStd, observation_key
from heldout.bonuses.combine import Combined
from heldout.bonuses.config import NAMES, BonusConfig
from heldout.bonuses.counts import EpisodicCount, GlobalCount
from heldout.bonuses.e3b import E3B, rank_one_inverse_update
from heldout.bonuses.rnd import RND
from heldout.bonuses.wrapper import BonusVecEnv

__all__ = [
    "NAMES", "E3B", "RND", "Bonus", "BonusConfig", "BonusVecEnv", "Combined", "EpisodicCount", "GlobalCount",
    "RunningStd", "make", "observation_key", "rank_one_inverse_update",
]  # fmt: skip


def make(cfg: BonusConfig, venv, *, seed: int, device: str | th.device = "cpu") -> Bonus:
    """The bonus ``cfg.name`` for the env slots and spaces of ``venv``; ValueError (one line) for a
    bonus the env cannot take (E3B needs discrete actions, networks need an array observation)."""
    cfg.validate()
    if cfg.name == "none":
        raise ValueError("bonus 'none' adds nothing; build no bonus at all")
    if cfg.name in ("sum", "product"):
        parts = (_part(cfg, cfg.global_part, venv, seed, device), _part(cfg, cfg.episodic_part, venv, seed + 1, device))
        return Combined(*parts, cfg.name)
    return _part(cfg, cfg.name, venv, seed, device)


def _part(cfg: BonusConfig, name: str, venv, seed: int, device: str | th.device) -> Bonus:
    space, device = venv.observation_space, th.device(device)
    if name == "global_count":
        return GlobalCount()
    if name == "episodic_count":
        return EpisodicCount(venv.num_envs, cfg.episodic_form)
    if not isinstance(space, spaces.Box):
        raise ValueError(f"bonus {name} needs an array (Box) observation, got {space}")
    train = {"lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "max_grad_norm": cfg.max_grad_norm,
             "symbols": symbol_count(space) if is_symbol_grid(space) else 0}  # fmt: skip
    if name == "rnd":
        return RND(space.shape, out_dim=cfg.rnd_dim, hidden_dim=cfg.hidden_dim, seed=seed, device=device, **train)
    if not isinstance(venv.action_space, spaces.Discrete):
        raise ValueError(f"bonus e3b learns its embedding by predicting discrete actions, got {venv.action_space}")
    return E3B(space.shape, int(venv.action_space.n), venv.num_envs, ridge=cfg.ridge, embedding_dim=cfg.embedding_dim,
               hidden_dim=cfg.hidden_dim, seed=seed, device=device, **train)  # fmt: skip
