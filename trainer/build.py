"""Every piece of a run, built from its config: level sets, envs, the agent, the level sampler."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.vec_env import VecEnv

from heldout import envs
from heldout.cli import UsageError
from heldout.agents.config import LinearDecay
from heldout.trainer import limits
from heldout.trainer.memory import keep_freed_memory
from heldout.trainer.config import TrainConfig, trainer_keys
from heldout.trainer.sampler_glue import SamplerGlue


@dataclass
class Run:
    """Everything a run is made of, built from its config, and where it stands."""

    cfg: TrainConfig
    model: Any
    """The agent (a stable-baselines3 on-policy algorithm) on ``env``."""
    glue: SamplerGlue
    """The level sampler and its glue to the rollouts (:mod:`heldout.trainer.sampler_glue`)."""
    family: envs.EnvFamily | None = None
    train_levels: envs.LevelSet | None = None
    test_sets: dict[str, envs.LevelSet] = field(default_factory=dict)
    """The held-out sets by name, in the order of ``env.test_levels`` (the first is ``test``)."""
    run_dir: Path | None = None
    last_eval_step: int = 0
    """The env step of the latest periodic evaluation."""
    pending: list[str] = field(default_factory=list)
    """The periodic evaluations (``"eval"``, ``"probe"``) a stop cut short at the checkpoint's step:
    a resume runs them first (:func:`heldout.trainer.evaluate.run_periodic`)."""
    started: float = 0.0
    wall_time_before: float = 0.0
    bonus: Any = None
    """The exploration bonus's env wrapper (:class:`heldout.bonuses.BonusVecEnv`) under the agent; None without one."""
    partner: Any = None
    """Players beside the agent that the loop drives after each rollout (PAIRED's adversary and
    antagonist, :class:`heldout.trainer.paired.PairedTeam`); None in most runs."""

    @property
    def env(self) -> VecEnv:
        """The training env (the level env under any wrappers, e.g. reward normalisation)."""
        return self.model.get_env()

    @property
    def level_env(self) -> envs.LevelVecEnv:
        return self.glue.level_env


def load_level_set(family: envs.EnvFamily, spec: str, cfg: TrainConfig) -> envs.LevelSet:
    """A named level set of the family or, for any other name, a level file."""
    options = dict(cfg.env.options)
    if spec in family.level_set_names:
        return family.level_set(
            spec, num_train_levels=cfg.env.num_train_levels, level_seed=cfg.env.level_seed, **options
        )
    if Path(spec).exists():
        space = family.level_space(**options)
        levels = space.read_levels(spec)
        check_solvable(space, levels, spec)
        return levels
    raise UsageError(
        f"{family.name} has no level set {spec!r} and no file of that name exists; "
        f"choose one of {', '.join(family.level_set_names)} or a level file"
    )


def load_test_sets(family: envs.EnvFamily, cfg: TrainConfig) -> dict[str, envs.LevelSet]:
    """The held-out sets of ``env.test_levels`` by name; two sets of one name are an error."""
    sets: dict[str, envs.LevelSet] = {}
    for spec in cfg.env.test_levels:
        level_set = load_level_set(family, spec, cfg)
        if level_set.name in sets:
            raise UsageError(f"--env.test_levels names the level set {level_set.name!r} twice; give each set once")
        sets[level_set.name] = level_set
    return sets


def check_solvable(space: envs.LevelSpace, levels: envs.LevelSet, source: str) -> None:
    """Refuse a level file holding levels nobody can solve (they would score 0 in silence)."""
    try:
        bad = [i + 1 for i, level in enumerate(levels.levels or ()) if not space.is_solvable(level)]
    except NotImplementedError:
        return  # the family cannot tell (Procgen levels are solvable by construction)
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
        raise UsageError(
            f"{source}: {len(bad)} of {len(levels)} levels cannot be solved (no path from start to goal: level "
            f"{shown}); they would score 0 whatever the agent does, so remove them from the file"
        )


def sampler_params(cfg: TrainConfig, run_dir: Path | None) -> dict[str, Any]:
    """The level sampler's parameters: the config's, and for one that needs a generator (DRED) that of the
    run's fitted model (see :mod:`heldout.trainer.dred`)."""
    from heldout.trainer import dred

    own = trainer_keys(cfg.sampler.name)  # the generator's settings (DRED's model, fit), not the sampler's
    params = {"seed": cfg.seed, **{k: v for k, v in cfg.sampler.params.items() if k not in own}}
    if "generator" in sampler_needs(cfg):  # a model of the training levels, fitted before training
        params["generator"] = dred.run_generator(cfg, run_dir)
    return params


def sampler_needs(cfg: TrainConfig) -> frozenset[str]:
    """What the trainer provides to the run's sampler (:func:`heldout.level_samplers.needs`:
    ``space``, ``generator``); UsageError for an unknown sampler."""
    from heldout import level_samplers

    if cfg.sampler.name not in level_samplers.names():
        raise UsageError(
            f"unknown level sampler {cfg.sampler.name!r}; choose one of {', '.join(level_samplers.names())}"
        )
    return level_samplers.needs(cfg.sampler.name)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: ``taskset``, cgroups' cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return max(1, os.cpu_count() or 1)


def prepare_process(cfg: TrainConfig) -> None:
    """The process-wide settings a training run wants: freed memory kept for reuse and the
    run's torch thread count (0: one per core the process may use, see :func:`usable_cores`)."""
    keep_freed_memory()
    torch.set_num_threads(cfg.torch_threads or usable_cores())


def apply_lr_schedule(model: Any, cfg: TrainConfig) -> None:
    """Give a PPO agent the run's learning-rate schedule (``ppo.lr_schedule``), over the run's
    ``steps`` (a resume with more steps stretches the remaining decay over them)."""
    if cfg.ppo.lr_schedule == "linear":
        model.lr_schedule = LinearDecay(cfg.ppo.lr, cfg.env.num_envs * cfg.ppo.n_steps, cfg.steps)


def build(cfg: TrainConfig, run_dir: Path | None = None) -> Run:
    """Every piece of a run from its config; checks names and values, writes nothing.

    ``run_dir``: the run's directory, where a sampler that needs a generator (DRED) finds the
    model fitted for the run (:func:`heldout.trainer.dred.prepare_run`)."""
    from heldout import agents, level_samplers

    try:
        family = envs.get(cfg.env.name)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    if cfg.agent not in agents.names():
        raise UsageError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(agents.names())}")
    limits.check_unused_sections(cfg, agents.sections(cfg.agent))
    limits.check_bonus(cfg, offline="dataset" in agents.needs(cfg.agent))
    limits.check_allocations(cfg)  # before any env or buffer is allocated
    sampler_needs(cfg)
    prepare_process(cfg)
    options = dict(cfg.env.options)
    train_levels = load_level_set(family, cfg.env.train_set, cfg)
    if cfg.probe.interval and not train_levels.finite:
        raise UsageError(
            f"--probe.interval needs a finite training set to tell its levels apart, but --env.train_set "
            f"{cfg.env.train_set} is unbounded; train on a level set of N levels, or leave the probe off"
        )
    test_sets = load_test_sets(family, cfg)
    level_env = family.make_vec(cfg.env.num_envs, train_levels, seed=cfg.seed, **options)
    env: VecEnv = cfg.ppo.reward_normalizer(level_env)
    bonus = with_bonus(cfg, env)
    env = bonus if bonus is not None else env
    settings = {section: getattr(cfg, section) for section in agents.sections(cfg.agent)}
    model = agents.make(
        cfg.agent, env, ppo=cfg.ppo, network=cfg.network, seed=cfg.seed, device=agents.resolve_device(cfg.device),
        **settings,
    )
    apply_lr_schedule(model, cfg)
    space = family.level_space(**options)
    team = paired_team(cfg, family, train_levels, model) if "designer" in sampler_needs(cfg) else None
    try:
        sampler = level_samplers.make(
            cfg.sampler.name, train_levels, space=space, designer=team, **sampler_params(cfg, run_dir)
        )
    except ValueError as err:
        raise UsageError(f"--sampler {cfg.sampler.name} with --env.train_set {cfg.env.train_set}: {err}") from None
    from heldout.trainer.level_stats import PlayedLevelStats, reference_levels

    # Drift is measured against the family's `train` set (whose distribution `test` shares), also
    # when the run trains on another set: DR and ACCEL on `random` should show their distance.
    reference = train_levels if cfg.env.train_set == "train" else load_level_set(family, "train", cfg)
    stats = PlayedLevelStats(space, reference_levels(reference, seed=cfg.env.level_seed), sampler)
    try:  # the sampler becomes the env's level source: its first reset already draws from it
        glue = SamplerGlue(
            sampler, model, level_stats=stats if stats.enabled else None,
            extrinsic_scores=bonus is not None and cfg.bonus.score_with == "extrinsic",
        )  # fmt: skip
    except TypeError as err:
        raise UsageError(f"--sampler {cfg.sampler.name} with --agent {cfg.agent}: {err}") from None
    if team is not None:
        team.attach(sampler)
    return Run(cfg, model, glue, family, train_levels, test_sets, run_dir, bonus=bonus, partner=team)


def with_bonus(cfg: TrainConfig, env: VecEnv) -> Any:
    """``env`` under the run's exploration bonus (:class:`heldout.bonuses.BonusVecEnv`, above the reward
    normaliser: that scales the extrinsic reward only), or None for ``--bonus none``."""
    from heldout import agents, bonuses

    if not cfg.bonus.enabled:
        return None
    try:
        bonus = bonuses.make(cfg.bonus, env, seed=cfg.seed + 7919, device=agents.resolve_device(cfg.device))
    except ValueError as err:
        raise UsageError(f"--bonus {cfg.bonus.name} on --env {cfg.env.name}: {err}") from None
    return bonuses.BonusVecEnv(env, bonus, coef=cfg.bonus.coef, normalize=cfg.bonus.normalize)


def paired_team(cfg: TrainConfig, family: envs.EnvFamily, train_levels: envs.LevelSet, model: Any) -> Any:
    """PAIRED's adversary (in the family's level editor) and antagonist (an agent of the run's type)."""
    from heldout import agents, level_samplers
    from heldout.trainer.adversary import Adversary, AdversaryConfig
    from heldout.trainer.paired import PairedTeam

    params = {**level_samplers.parameters(cfg.sampler.name), **cfg.sampler.params}
    options = dict(cfg.env.options)
    try:
        editor = family.level_editor(
            cfg.env.num_envs, seed=cfg.seed, n_walls=params["n_walls"], z_dim=params["z_dim"], **options
        )
    except NotImplementedError as err:
        raise UsageError(f"--sampler {cfg.sampler.name} needs a level editor: {err}; use --env maze") from None
    except ValueError as err:
        raise UsageError(f"--sampler {cfg.sampler.name}: {err}") from None
    try:
        adv_cfg = AdversaryConfig(
            lr=params["adversary_lr"], n_epochs=params["adversary_epochs"], ent_coef=params["adversary_entropy"],
            lr_schedule=params["adversary_lr_schedule"],
        )
    except ValueError as err:
        raise UsageError(f"--sampler {cfg.sampler.name}: {err}") from None
    updates = max(1, cfg.steps // (cfg.env.num_envs * cfg.ppo.n_steps))  # the run's updates: the decay's N
    adversary = Adversary(editor, adv_cfg, seed=cfg.seed, device=model.device, total_updates=updates)
    level_env = family.make_vec(cfg.env.num_envs, train_levels, seed=cfg.seed + 1, **options)
    settings = {section: getattr(cfg, section) for section in agents.sections(cfg.agent)}
    antagonist = agents.make(
        cfg.agent, cfg.ppo.reward_normalizer(level_env), ppo=cfg.ppo, network=cfg.network, seed=cfg.seed + 1,
        device=model.device, **settings,
    )  # fmt: skip
    apply_lr_schedule(antagonist, cfg)
    return PairedTeam(adversary, antagonist, level_env, regret_form=params["regret"])

