"""Hyperparameters of the PPO agent and its network, as plain dataclasses.

Defaults are the published PPO baseline for Procgen (REFERENCE.md section 2). Every field
carries a one-line ``help`` in its metadata; the trainer's ``--help`` prints it. The number of
parallel environments belongs to the trainer, so the minibatch size is derived here from it:
``batch_size = n_envs * n_steps / n_minibatches``.

This module deliberately avoids ``from __future__ import annotations`` so that
``dataclasses.fields(...)[i].type`` holds real types for the trainer's argument parser.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

NETWORKS = ("auto", "impala", "maze", "glyphs", "mlp")
PRECISIONS = ("fp32", "bf16")
GEOMETRIES = ("euclidean", "hyperbolic")
VALUE_LOSSES = ("published", "sb3")
ADVANTAGE_SCOPES = ("rollout", "minibatch")
LR_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class LinearDecay:
    """stable-baselines3 learning-rate schedule (a function of the progress remaining ``p``) that
    gives ``lr * (1 - k / N)`` at update ``k = 0..N-1``, jaxued's per-update linear decay.

    sb3 computes ``p = 1 - steps / total`` after the rollout of update ``k``, i.e. with
    ``steps = (k + 1) * rollout``; adding back one rollout's share recovers ``1 - k / N``
    (``N = total / rollout``). Values are clipped to ``[0, lr]``.
    """

    lr: float
    rollout: int
    total: int

    def __call__(self, progress_remaining: float) -> float:
        return self.lr * min(1.0, max(0.0, progress_remaining + self.rollout / self.total))


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _fail(owner: str, name: str, value: Any, need: str) -> None:
    raise ValueError(f"{owner}.{name} must be {need}, got {value!r}")


def _check_number(owner: str, name: str, value: Any, *, low: float, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> None:
    """Raise ValueError unless ``value`` is a real number in the given interval."""
    lo, hi = ("(" if low_open else "["), (")" if high_open or high == math.inf else "]")
    need = f"a number in {lo}{low:g}, {high:g}{hi}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(owner, name, value, need)
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        _fail(owner, name, value, need)


def _check_int(owner: str, name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(owner, name, value, f"an integer >= {low}")


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(owner, name, value, f"one of {' | '.join(choices)}")


def _check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(owner, name, value, "true or false")


@dataclass
class PPOConfig:
    """Every PPO hyperparameter; defaults are the published Procgen baseline."""

    lr: float = field(default=5e-4, metadata=_help("Adam learning rate (its schedule: lr_schedule)"))
    lr_schedule: str = field(
        default="constant",
        metadata=_help(
            "constant (the Procgen recipes) or linear: lr * (1 - k / N) at update k = 0..N-1 of a run of N updates "
            "(jaxued's maze recipes, optax linear_schedule)"
        ),
    )
    adam_eps: float = field(default=1e-5, metadata=_help("Adam epsilon"))
    n_steps: int = field(default=256, metadata=_help("steps per environment in each rollout"))
    n_epochs: int = field(default=3, metadata=_help("passes over each rollout per update"))
    n_minibatches: int = field(
        default=8, metadata=_help("minibatches per epoch; batch size = n_envs * n_steps / n_minibatches")
    )
    gamma: float = field(default=0.999, metadata=_help("discount factor"))
    gae_lambda: float = field(default=0.95, metadata=_help("GAE lambda (bias/variance trade-off of advantages)"))
    ent_coef: float = field(default=0.01, metadata=_help("weight of the entropy bonus in the loss"))
    vf_coef: float = field(default=0.5, metadata=_help("weight of the value loss in the loss"))
    value_loss: str = field(
        default="published",
        metadata=_help(
            "value loss form: published (PLR / auto-drac, after baselines ppo2: 0.5 * mean(max((R - V)^2, "
            "(R - V_clip)^2))) or sb3 (stable-baselines3: mean((R - V_clip)^2)); both times vf_coef"
        ),
    )
    clip_range: float = field(default=0.2, metadata=_help("PPO policy ratio clipping epsilon"))
    clip_range_vf: Optional[float] = field(
        default=0.2, metadata=_help("value clipping around the old value (reward-scale dependent); none disables it")
    )
    max_grad_norm: float = field(default=0.5, metadata=_help("global gradient-norm clipping threshold"))
    normalize_advantage: bool = field(
        default=True, metadata=_help("normalise advantages (over the unmasked samples; where: advantage_scope)")
    )
    advantage_scope: str = field(
        default="rollout",
        metadata=_help(
            "where advantages are normalised: rollout (published: once over the whole rollout, eps 1e-5) or "
            "minibatch (stable-baselines3: per minibatch, eps 1e-8)"
        ),
    )
    normalize_reward: bool = field(
        default=True, metadata=_help("scale rewards by a running std of the discounted return (VecNormalize)")
    )
    reward_norm_gamma: Optional[float] = field(
        default=0.99,
        metadata=_help(
            "discount of the return whose running std scales rewards (0.99: baselines' VecNormalize default, "
            "as published); none: ppo.gamma"
        ),
    )
    target_kl: Optional[float] = field(
        default=None, metadata=_help("stop an update's epochs early once approx. KL > 1.5 * target_kl; none: never")
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with a bad value."""
        o = "ppo"
        # upper bounds: beyond them a setting has no sane meaning (an lr of 1e10 only diverges)
        _check_number(o, "lr", self.lr, low=0, low_open=True, high=1)
        _check_choice(o, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_number(o, "adam_eps", self.adam_eps, low=0, low_open=True, high=1)
        _check_int(o, "n_steps", self.n_steps, low=1)
        _check_int(o, "n_epochs", self.n_epochs, low=1)
        _check_int(o, "n_minibatches", self.n_minibatches, low=1)
        _check_number(o, "gamma", self.gamma, low=0, high=1)
        _check_number(o, "gae_lambda", self.gae_lambda, low=0, high=1)
        _check_number(o, "ent_coef", self.ent_coef, low=0, high=1)
        _check_number(o, "vf_coef", self.vf_coef, low=0, high=10)
        _check_choice(o, "value_loss", self.value_loss, VALUE_LOSSES)
        _check_choice(o, "advantage_scope", self.advantage_scope, ADVANTAGE_SCOPES)
        _check_number(o, "clip_range", self.clip_range, low=0, low_open=True, high=1)
        if self.clip_range_vf is not None:
            _check_number(o, "clip_range_vf", self.clip_range_vf, low=0, low_open=True)
        _check_number(o, "max_grad_norm", self.max_grad_norm, low=0, low_open=True)
        _check_bool(o, "normalize_advantage", self.normalize_advantage)
        _check_bool(o, "normalize_reward", self.normalize_reward)
        if self.reward_norm_gamma is not None:
            _check_number(o, "reward_norm_gamma", self.reward_norm_gamma, low=0, high=1)
        if self.target_kl is not None:
            _check_number(o, "target_kl", self.target_kl, low=0, low_open=True)

    def batch_size(self, n_envs: int) -> int:
        """Minibatch size for ``n_envs`` environments; ``ValueError`` if it does not divide evenly."""
        if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"the number of environments must be an integer >= 1, got {n_envs!r}")
        total = n_envs * self.n_steps
        if total % self.n_minibatches:
            raise ValueError(
                f"ppo.n_minibatches={self.n_minibatches} does not divide the rollout of n_envs * n_steps = "
                f"{n_envs} * {self.n_steps} = {total} samples; choose n_minibatches that divides {total}"
            )
        size = total // self.n_minibatches
        if self.normalize_advantage and size < 2:
            raise ValueError(
                f"minibatches of {size} sample cannot normalise advantages; lower ppo.n_minibatches "
                f"(now {self.n_minibatches}) or raise ppo.n_steps, or set ppo.normalize_advantage false"
            )
        return size

    def sb3_kwargs(self, n_envs: int) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO`` (all but the policy's optimiser settings)."""
        return {
            "learning_rate": self.lr,
            "n_steps": self.n_steps,
            "batch_size": self.batch_size(n_envs),
            "n_epochs": self.n_epochs,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "clip_range": self.clip_range,
            "clip_range_vf": self.clip_range_vf,
            "max_grad_norm": self.max_grad_norm,
            "normalize_advantage": self.normalize_advantage,
            "target_kl": self.target_kl,
        }

    def model_kwargs(self, n_envs: int) -> dict[str, Any]:
        """Keyword arguments for heldout's agents: :meth:`sb3_kwargs` plus the loss form
        (``value_loss``, ``advantage_scope``) that :class:`~heldout.agents.ppo.HeldoutUpdate` reads."""
        return {**self.sb3_kwargs(n_envs), "value_loss": self.value_loss, "advantage_scope": self.advantage_scope}

    def reward_normalizer(self, venv: Any) -> Any:
        """``venv`` wrapped in sb3's ``VecNormalize`` for rewards (the return discount of
        ``reward_norm_gamma``), unless ``normalize_reward`` is off or it is wrapped already."""
        from stable_baselines3.common.vec_env import VecNormalize, is_vecenv_wrapped

        if not self.normalize_reward or is_vecenv_wrapped(venv, VecNormalize):
            return venv
        gamma = self.gamma if self.reward_norm_gamma is None else self.reward_norm_gamma
        return VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=gamma)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NetworkConfig:
    """The policy/value network: a shared feature extractor with linear policy and value heads."""

    network: str = field(
        default="auto",
        metadata=_help(
            "feature extractor: impala (pixels), maze (maze grids), glyphs (grids of symbol ids: MiniHack), mlp "
            "(vectors) or auto (maze family or small grids -> maze, images of 32 px or more -> impala, 2-D integer "
            "grids -> glyphs, vectors -> mlp)"
        ),
    )
    features_dim: int = field(default=256, metadata=_help("size of the shared feature vector"))
    impala_channels: tuple[int, ...] = field(
        default=(16, 32, 32), metadata=_help("IMPALA CNN: output channels of each conv stack")
    )
    maze_channels: tuple[int, ...] = field(default=(16, 32), metadata=_help("maze network: channels of its 3x3 convs"))
    glyph_channels: tuple[int, ...] = field(
        default=(16, 16, 16, 16, 8), metadata=_help("glyphs network: channels of its 3x3 ELU convs")
    )
    glyph_embedding_dim: int = field(default=64, metadata=_help("glyphs network: size of each glyph id's embedding"))
    channels_last: bool = field(
        default=True, metadata=_help("run the IMPALA CNN in torch.channels_last memory format (faster on CPU)")
    )
    lstm_hidden_size: int = field(
        default=256, metadata=_help("recurrent agents (ppo_lstm): units of the LSTM between the extractor and the heads")
    )
    geometry: str = field(
        default="euclidean",
        metadata=_help(
            "space of the heads' input: euclidean (linear heads) or hyperbolic (Cetin et al. 2023: features on the "
            "Poincare ball, hyperbolic MLR policy and value heads; impala and maze networks; needs heldout[hyperbolic])"
        ),
    )
    curvature: float = field(
        default=1.0, metadata=_help("hyperbolic geometry: c > 0, the Poincare ball of curvature -c (radius 1/sqrt(c))")
    )
    hyperbolic_clip_norm: float = field(
        default=60.0, metadata=_help("hyperbolic geometry: features are clipped to this Euclidean norm before the ball")
    )
    srym: bool = field(
        default=True,
        metadata=_help(
            "hyperbolic geometry: S-RYM (spectral norm on the extractor's conv and linear layers, features divided "
            "by sqrt(dim)); false: the unregularised hyperbolic head"
        ),
    )
    precision: str = field(
        default="fp32",
        metadata=_help(
            "arithmetic of the feature extractor and LSTM: fp32, or bf16 (bfloat16 autocast, float32 outputs, heads and "
            "weights: about 2x faster updates on CPUs with AVX-512 BF16 and on GPUs; not bit-identical to fp32)"
        ),
    )
    compile: bool = field(
        default=False,
        metadata=_help(
            "run the feature extractors through torch.compile (inductor; a one-off compile of tens of seconds "
            "per input shape; fused kernels, so not bit-identical to the eager default)"
        ),
    )

    def __post_init__(self) -> None:
        # YAML and argparse hand over lists; keep the dataclass hashable-friendly and canonical.
        if isinstance(self.impala_channels, list):
            self.impala_channels = tuple(self.impala_channels)
        if isinstance(self.maze_channels, list):
            self.maze_channels = tuple(self.maze_channels)
        if isinstance(self.glyph_channels, list):
            self.glyph_channels = tuple(self.glyph_channels)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with a bad value."""
        o = "network"
        if self.network not in NETWORKS:
            raise ValueError(f"network.network must be one of {', '.join(NETWORKS)}, got {self.network!r}")
        _check_int(o, "features_dim", self.features_dim, low=1)
        _check_int(o, "glyph_embedding_dim", self.glyph_embedding_dim, low=1)
        for name in ("impala_channels", "maze_channels", "glyph_channels"):
            value = getattr(self, name)
            if (
                not isinstance(value, tuple)
                or not value
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in value)
            ):
                _fail(o, name, value, "a non-empty sequence of integers >= 1")
        _check_bool(o, "channels_last", self.channels_last)
        _check_int(o, "lstm_hidden_size", self.lstm_hidden_size, low=1)
        _check_choice(o, "geometry", self.geometry, GEOMETRIES)
        _check_number(o, "curvature", self.curvature, low=0, low_open=True)
        _check_number(o, "hyperbolic_clip_norm", self.hyperbolic_clip_norm, low=0, low_open=True)
        _check_bool(o, "srym", self.srym)
        _check_choice(o, "precision", self.precision, PRECISIONS)
        _check_bool(o, "compile", self.compile)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
