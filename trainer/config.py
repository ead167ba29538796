"""The training configuration: one tree of dataclasses, every setting visible in one place.

A config is built in three layers: a preset (``procgen`` or ``maze``), then an optional YAML
file (``--config my.yaml``), then command-line overrides (``--ppo.lr 3e-4``, ``--env coinrun``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from decimal import Decimal, InvalidOperation
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heldout import level_samplers
from heldout.bonuses.config import BonusConfig
from heldout.agents import AugmentConfig, DrACConfig, NetworkConfig, OfflineConfig, PPOConfig, UCBConfig
from heldout.trainer.dred import TRAINER_KEYS
from heldout.userfiles import read_text


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EnvConfig:
    name: str = field(default="maze", metadata=_help("environment family (see `heldout envs`)"))
    num_train_levels: int = field(default=200, metadata=_help("how many training levels"))
    level_seed: int = field(default=0, metadata=_help("seed that builds the level sets"))
    num_envs: int = field(default=64, metadata=_help("parallel environments for training"))
    train_set: str = field(
        default="train",
        metadata=_help("level set to train on: a set name (finite, or unbounded such as maze's random) or a level file"),
    )
    test_levels: tuple[str, ...] = field(
        default=("test",),
        metadata=_help("held-out level sets for evaluation, comma-separated: set names or level files"),
    )
    options: dict = field(
        default_factory=dict,
        metadata=_help("family options as a YAML mapping, e.g. '{distribution_mode: hard}'"),
    )


@dataclass
class SamplerConfig:
    name: str = field(default="uniform", metadata=_help("level sampler (uniform, plr, robust_plr, ...)"))
    params: dict = field(
        default_factory=dict,
        metadata=_help("sampler parameters as a YAML mapping, e.g. '{score: value_l1}', or a flag each (listed below)"),
    )

    def validate(self, family: str | None = None) -> None:
        """Refuse an unknown sampler, a parameter it does not take and a value of the wrong type
        (ValueError, one line); the values are typed as the sampler's constructor declares them
        (``"0.3"`` from a flag becomes 0.3), as every other setting is when read. Ranges are the
        constructor's to check. On env family ``family``, the sampler's defaults for that family
        (its ``family_defaults``) join ``params`` where no value is given, so the saved config
        says what the run used."""
        try:
            specs = level_samplers.specs(self.name)
        except KeyError as err:
            raise ValueError(f"{err.args[0]}; choose one with --sampler NAME") from None
        trainer = trainer_keys(self.name)
        unknown = sorted(set(self.params) - set(specs) - trainer)
        if unknown:
            raise ValueError(
                f"level sampler {self.name!r} takes no parameter {unknown[0]!r}; it takes "
                f"{', '.join([*specs, *sorted(trainer)])} (see `heldout train --help`)"
            )
        self.params = {
            key: value if key in trainer else _sampler_value(self.name, specs[key], value)
            for key, value in self.params.items()
        }
        if family is not None:
            for key, value in level_samplers.registry.family_defaults(self.name, family).items():
                self.params.setdefault(key, value)


def trainer_keys(sampler: str) -> frozenset[str]:
    """The keys of ``sampler.params`` that the trainer takes instead of the sampler: for a sampler
    that needs a ``generator``, DRED's ``model`` and ``fit`` (see :mod:`heldout.trainer.dred`)."""
    return frozenset(TRAINER_KEYS if "generator" in level_samplers.needs(sampler) else ())


def _sampler_value(sampler: str, spec: level_samplers.Parameter, value: Any) -> Any:
    """``value`` as the type of sampler parameter ``spec``; ValueError naming the parameter and its type."""
    try:
        return parse_value(value, spec.kind, f"sampler.{spec.name}")
    except ValueError as err:
        raise ValueError(f"{err}; {sampler}'s {spec.name} takes a {type_name(spec.kind)}") from None


@dataclass
class EvalConfig:
    interval: int = field(default=0, metadata=_help("evaluate every N env steps during training (0: never)"))
    episodes: int = field(default=50, metadata=_help("episodes per level set in a periodic evaluation"))
    final_episodes: int = field(default=200, metadata=_help("episodes per level set in the final evaluation"))
    num_envs: int = field(default=16, metadata=_help("parallel environments for evaluation"))
    deterministic: bool = field(default=False, metadata=_help("greedy actions instead of sampling"))


@dataclass
class ProbeConfig:
    interval: int = field(
        default=0, metadata=_help("level-identity probe every N env steps and at the end (0: never)")
    )
    steps: int = field(default=64, metadata=_help("steps played on each training level per probe"))
    fit: str = field(
        default="calibrated",
        metadata=_help("calibrated: weight decay and temperature chosen on held-out steps, scored on others; "
                       "fixed: the earlier probe (weight decay 1e-3, no calibration)"),
    )  # fmt: skip


MAX_STEPS = 10**12
"""More environment steps than any run takes (25M is the Procgen protocol)."""


@dataclass
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: str = field(default="ppo", metadata=_help("agent (see heldout.agents.names())"))
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    drac: DrACConfig = field(default_factory=DrACConfig)
    ucb: UCBConfig = field(default_factory=UCBConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    bonus: BonusConfig = field(default_factory=BonusConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    steps: int = field(default=1_000_000, metadata=_help("total environment steps"))
    seed: int = field(default=0, metadata=_help("random seed of the run"))
    device: str = field(default="auto", metadata=_help("torch device: auto (CUDA when present), cpu, cuda"))
    checkpoint_interval: int = field(
        default=1, metadata=_help("write a checkpoint every N PPO updates (0: only at the end)")
    )
    torch_threads: int = field(default=0, metadata=_help("torch CPU threads (0: one per CPU core this process may use)"))

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and what is accepted."""
        checks = [
            (0 < self.steps <= MAX_STEPS, "steps", f"a positive number of environment steps, at most {MAX_STEPS:.0e}"),
            (0 <= self.seed < 2**32, "seed", "a whole number from 0 to 2^32 - 1"),
            (self.env.level_seed >= 0, "env.level_seed", "0 or a positive whole number"),
            (self.env.num_envs > 0, "env.num_envs", "at least 1"),
            (self.env.num_train_levels > 0, "env.num_train_levels", "at least 1"),
            (len(self.env.test_levels) > 0, "env.test_levels", "at least one level set"),
            (self.eval.interval >= 0, "eval.interval", "0 (never) or a positive number of steps"),
            (self.eval.episodes > 0, "eval.episodes", "at least 1"),
            (self.eval.final_episodes > 0, "eval.final_episodes", "at least 1"),
            (self.eval.num_envs > 0, "eval.num_envs", "at least 1"),
            (self.probe.interval >= 0, "probe.interval", "0 (never) or a positive number of steps"),
            (self.probe.fit in ("calibrated", "fixed"), "probe.fit", "calibrated (default) or fixed"),
            (self.probe.steps >= (2 if self.probe.fit == "fixed" else 3), "probe.steps",
             "at least 3 (steps that fit the probe, choose its regularisation, score it; 2 with --probe.fit fixed)"),
            (self.checkpoint_interval >= 0, "checkpoint_interval", "0 or a positive number of updates"),
            (self.torch_threads >= 0, "torch_threads", "0 (default) or a positive thread count"),
        ]
        for ok, name, accepted in checks:
            if not ok:
                raise ValueError(f"bad value {name}={get_field(self, name)!r}: it must be {accepted}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"bad value device={self.device!r}: use auto, cpu, cuda or cuda:N")
        self.ppo.validate()
        for section in (self.augment, self.drac, self.ucb, self.offline, self.bonus):
            section.validate()
        self.sampler.validate(family=family_name(self.env.name))


# -- presets -----------------------------------------------------------------------------------


def _procgen_preset() -> TrainConfig:
    """The published PPO baseline for Procgen (REFERENCE.md section 2; docs/fidelity.md, PPO): PPOConfig's
    defaults are that PPO (the PLR / auto-drac code), value loss and advantage normalisation included."""
    cfg = TrainConfig()
    cfg.ppo = PPOConfig(value_loss="published", advantage_scope="rollout", reward_norm_gamma=0.99)
    cfg.env = EnvConfig(name="procgen/coinrun", num_envs=64, options={"distribution_mode": "easy"})
    cfg.steps = 25_000_000
    cfg.eval = EvalConfig(interval=1_000_000, episodes=50, final_episodes=100, num_envs=32)
    cfg.checkpoint_interval = 10
    return cfg


def _maze_preset() -> TrainConfig:
    """A small maze run that learns on 2 CPU cores in minutes: the README's main job.

    25 training levels (the maze family's default train set holds 200) let a newcomer watch the
    agent overfit within minutes: the generalisation gap shows up clearly, not as noise.
    """
    cfg = TrainConfig()
    cfg.env = EnvConfig(name="maze", num_envs=32, num_train_levels=25, test_levels=("test", "test_ood", "named"))
    # heldout's own quick maze setting (no published recipe behind it): it keeps the stable-baselines3
    # loss form its results were measured with (docs/fidelity.md, PPO)
    cfg.ppo = dataclasses.replace(
        PPOConfig(), lr=5e-4, n_steps=128, n_epochs=4, n_minibatches=4, gamma=0.99, ent_coef=0.01,
        value_loss="sb3", advantage_scope="minibatch", reward_norm_gamma=None,
    )  # fmt: skip
    cfg.steps = 2_000_000
    cfg.eval = EvalConfig(interval=250_000, episodes=100, final_episodes=400, num_envs=32)
    cfg.checkpoint_interval = 10
    cfg.torch_threads = 1  # the maze network is tiny: one thread beats two (and never thrashes)
    return cfg


def _maze_lstm_preset() -> TrainConfig:
    """The maze preset with the recurrent agent (``ppo_lstm``, LSTM of 256) in about the same
    wall-clock time: an LSTM update costs about twice a plain one, so half the steps."""
    cfg = _maze_preset()
    cfg.agent = "ppo_lstm"
    cfg.steps = 1_000_000
    return cfg


def _paired_preset() -> TrainConfig:
    """PAIRED on mazes with jaxued's student settings (``examples/maze_paired.py`` ~712-723): the
    recurrent agent (LSTM 256), 32 envs x 256 steps, lr 1e-4 decaying linearly to 0, 5 epochs, one minibatch, gamma 0.995,
    GAE lambda 0.98, entropy 1e-3, no reward normalisation; 1.5M protagonist steps (the maze
    benchmark's budget). The adversary's settings are the ``paired`` sampler's defaults."""
    cfg = _maze_preset()
    cfg.agent = "ppo_lstm"
    cfg.env.train_set = "random"
    cfg.sampler = SamplerConfig(name="paired")
    cfg.ppo = dataclasses.replace(
        PPOConfig(), lr=1e-4, lr_schedule="linear", n_steps=256, n_epochs=5, n_minibatches=1, gamma=0.995, gae_lambda=0.98,
        ent_coef=1e-3, clip_range=0.2, vf_coef=0.5, max_grad_norm=0.5, normalize_reward=False,
    )  # fmt: skip
    cfg.network = dataclasses.replace(cfg.network, lstm_hidden_size=256)
    cfg.steps = 1_500_000
    cfg.torch_threads = 0  # torch's default (every core): the adversary's large matrices use them (1.7x on a 2-core AMD EPYC VM)
    return cfg


def _small_preset() -> TrainConfig:
    """The maze preset's small, quick PPO for any other family (MiniGrid, ``gym:<id>``, plug-ins),
    evaluated on the one held-out set every family has: ``test``."""
    cfg = _maze_preset()
    cfg.env.test_levels = ("test",)
    return cfg


PRESETS = {
    "maze": _maze_preset, "maze_lstm": _maze_lstm_preset, "paired": _paired_preset, "procgen": _procgen_preset,
    "small": _small_preset,
}  # fmt: skip


def family_name(env_name: str) -> str | None:
    """The registered family name of ``env_name`` (``coinrun`` -> ``procgen/coinrun``); None if unknown
    (the run's build reports it)."""
    from heldout import envs

    try:
        return envs.get(env_name).name
    except KeyError:
        return None


def preset_for_env(env_name: str) -> str:
    """The preset that suits an environment family: ``procgen`` for Procgen games (also named
    by their short name or Gymnasium id), ``maze`` for mazes (and unknown names, reported when
    the run is built), else ``small``."""
    env_name = family_name(env_name)
    if env_name is None:
        return "maze"  # an unknown name is reported, with suggestions, when the run is built
    if env_name.startswith("procgen/"):
        return "procgen"
    return "maze" if env_name == "maze" else "small"


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()


# -- walking the tree --------------------------------------------------------------------------


def leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, type, dataclasses.Field]]:
    """Every leaf setting as (dotted name, type, field), depth first."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        name = prefix + f.name
        if dataclasses.is_dataclass(kind):
            out.extend(leaf_fields(kind, name + "."))
        else:
            out.append((name, kind, f))
    return out


def get_field(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def set_field(cfg: Any, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        cfg = getattr(cfg, part)
    setattr(cfg, last, value)


def type_name(kind: Any) -> str:
    """A short name for a field's type, for ``--help``: ``float``, ``float|none``, ``tuple``."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if args and len(args) < len(typing.get_args(kind)):
        return f"{type_name(args[0])}|none"
    return getattr(typing.get_origin(kind) or kind, "__name__", "value")


def parse_value(text: Any, kind: Any, name: str) -> Any:
    """Convert a CLI string (or a YAML value) to the field's type; ValueError names the field."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text is None or (isinstance(text, str) and text.lower() in ("none", "null")):
            return None
        return parse_value(text, args[0], name)  # its error already names the field
    try:
        if kind is bool:
            if isinstance(text, bool):
                return text
            lowered = str(text).lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            return whole_number(text)
        if kind is float:
            if isinstance(text, bool):
                raise ValueError("expected a number")
            value = float(text)
            if not math.isfinite(value):
                raise ValueError("expected a finite number")
            return value
        if kind is str:
            return str(text)
        if kind is dict or origin is dict:
            value = yaml.safe_load(text) if isinstance(text, str) else text
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise ValueError("expected a YAML mapping such as '{key: value}'")
            return value
        if origin is tuple or kind is tuple:
            items = text.split(",") if isinstance(text, str) else list(text)
            inner = (typing.get_args(kind) or (str,))[0]
            return tuple(parse_value(i, inner, name) for i in items if str(i).strip() != "")
    except (TypeError, ValueError, yaml.YAMLError) as err:
        problem = yaml_problem(err) if isinstance(err, yaml.YAMLError) else err
        raise ValueError(f"bad value for {name}: {text!r} ({problem})") from None
    return text


MAX_DIGITS = 18


def whole_number(text: Any) -> int:
    """An int from ``4000``, ``"4000"``, ``"4e3"`` or ``4000.0``; ValueError for fractions, overflow, bools."""
    if isinstance(text, bool):
        raise ValueError("expected a whole number, not true/false")
    if isinstance(text, int):
        return text
    try:
        number = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError("expected a whole number") from None
    if not number.is_finite() or number.adjusted() >= MAX_DIGITS:
        raise ValueError(f"expected a whole number below 10^{MAX_DIGITS}")
    if number != number.to_integral_value():
        raise ValueError("expected a whole number, not a fraction")
    return int(number)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (tuples become lists): for YAML files and reports."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


SAMPLER_PARAM = "sampler."
"""``sampler.KEY`` (any key but ``name`` and ``params``) is the sampler parameter ``KEY``: the
flag ``--sampler.temperature 0.3``, or ``sampler: {name: plr, temperature: 0.3}`` in YAML."""


def apply_mapping(cfg: TrainConfig, data: dict[str, Any], source: str) -> None:
    """Overlay a mapping (from YAML, nested or dotted; or the command line's settings) onto
    ``cfg``; unknown keys are errors. Sampler parameters written as ``sampler.KEY`` join
    ``sampler.params`` and win over the same key there (:meth:`SamplerConfig.validate` checks them)."""
    known = {name: kind for name, kind, _ in leaf_fields(TrainConfig)}
    sampler_params: dict[str, Any] = {}

    def walk(mapping: dict[str, Any], prefix: str) -> None:
        for key, value in mapping.items():
            name = prefix + str(key)
            if name in known:
                set_field(cfg, name, parse_value(value, known[name], name))
            elif name.startswith(SAMPLER_PARAM):
                sampler_params[name.removeprefix(SAMPLER_PARAM)] = value
            elif any(k.startswith(name + ".") for k in known):
                if not isinstance(value, dict):
                    first = next(k for k in known if k.startswith(name + ".")).split(".")[-1]
                    raise ValueError(
                        f"{source}: {name} is a section of settings, not a value; write it as a mapping, "
                        f"e.g. '{name}: {{{first}: ...}}'"
                    )
                walk(value, name + ".")
            else:
                raise ValueError(f"{source}: unknown setting {name!r}; see `heldout train --help`")

    walk(data, "")
    if sampler_params:
        cfg.sampler.params = {**cfg.sampler.params, **sampler_params}


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = read_text(path, "config file")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path} is not valid YAML ({yaml_problem(err)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings")
    return data


def save_yaml(cfg: TrainConfig, path: str | Path) -> None:
    from heldout import safe_write

    safe_write.replace_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """A config from :func:`to_dict`'s output (e.g. a run's saved ``config.yaml``)."""
    cfg = TrainConfig()
    apply_mapping(cfg, data, "saved config")
    return cfg
