"""Settings of the augmenting agents (``rad``, ``drac``, ``ucb_drac``) as plain dataclasses.

Three sections of the trainer's config tree: ``augment`` (which augmentation, and the settings
of any augmentation), ``drac`` (the regulariser's weight) and ``ucb`` (the bandit of UCB-DrAC).
Defaults are the published ones (rraileanu/auto-drac; docs/fidelity.md, DrAC and UCB-DrAC). Like ``agents/config.py`` this module
avoids ``from __future__ import annotations`` so the trainer's parser sees real field types.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from heldout.agents import augmentations
from heldout.agents.config import _check_int, _check_number, _help


def _known(owner: str, name: str) -> None:
    try:
        augmentations.get(name)
    except KeyError as err:
        raise ValueError(f"{owner}: {err.args[0]}") from None


@dataclass
class AugmentConfig:
    """The augmentation RAD and DrAC use, and the settings of every augmentation."""

    name: str = field(
        default="crop",
        metadata=_help("augmentation of rad and drac (see heldout.agents.augmentations.names())"),
    )
    params: dict = field(
        default_factory=dict,
        metadata=_help("settings per augmentation as a YAML mapping, e.g. '{crop: {pad: 8}, cutout: {max_frac: 0.5}}' (see heldout.agents.augmentations)"),
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first unknown augmentation or bad setting."""
        _known("augment.name", self.name)
        if not isinstance(self.params, dict):
            raise ValueError(f"augment.params must be a mapping of augmentation -> settings, got {self.params!r}")
        for name, settings in self.params.items():
            _known("augment.params", name)
            augmentations.check_params(name, settings or {})

    def settings(self, name: str) -> dict[str, Any]:
        """The settings to call augmentation ``name`` with (its defaults where not given)."""
        return dict(self.params.get(name) or {})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DRAC_POLICY_TERMS = ("sample", "kl")


@dataclass
class DrACConfig:
    """DrAC's regulariser: loss += alpha * (G_pi + value_coef * mean((V(aug x) - V(x))^2)), G_pi the
    published sampled cross-entropy -log pi(a'|aug x), a' ~ pi(.|x), or the exact KL(pi(.|x) || pi(.|aug x))."""

    alpha: float = field(default=0.1, metadata=_help("weight alpha_r of DrAC's regulariser (drac, ucb_drac)"))
    value_coef: float = field(
        default=0.5,
        metadata=_help("weight of the value gap (V(aug x) - V(x))^2 inside the regulariser (0.5 published; 1: the "
                       "paper's G_V as written)"),
    )
    policy_term: str = field(
        default="sample",
        metadata=_help("the policy term: sample (published code: -log pi(a'|aug x), a' drawn from pi(.|x)) or kl "
                       "(the paper's KL(pi(.|x) || pi(.|aug x)): the same expected gradient, less noise)"),
    )
    fraction: float = field(
        default=1.0,
        metadata=_help("share of each minibatch the regulariser is computed on (1: as published; less is faster)"),
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_number("drac", "alpha", self.alpha, low=0)
        _check_number("drac", "value_coef", self.value_coef, low=0)
        if self.policy_term not in DRAC_POLICY_TERMS:
            raise ValueError(f"drac.policy_term must be one of {' | '.join(DRAC_POLICY_TERMS)}, got {self.policy_term!r}")
        _check_number("drac", "fraction", self.fraction, low=0, high=1, low_open=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


UCB_REWARDS = ("returns", "episodes")


@dataclass
class UCBConfig:
    """UCB-DrAC's bandit over augmentations: argmax_a Q_a + c sqrt(ln N / N_a)."""

    c: float = field(default=0.1, metadata=_help("UCB exploration coefficient c (ucb_drac)"))
    window: int = field(default=10, metadata=_help("Q of an arm = mean of its last `window` rewards (ucb_drac)"))
    augmentations: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "the bandit's arms, comma separated; empty: the published eight on images, "
            "every augmentation valid on grids (crop, cutout, dropout, translate) on mazes"
        ),
    )

    reward: str = field(
        default="returns",
        metadata=_help(
            "an arm's reward: returns (published: the mean GAE return target of the next rollout, on the "
            "reward-normalised scale, every update) or episodes (the mean raw return of the episodes that end in "
            "the next rollout; none ended: no reward)"
        ),
    )

    def __post_init__(self) -> None:
        if isinstance(self.augmentations, list):
            self.augmentations = tuple(self.augmentations)
        self.validate()

    def validate(self) -> None:
        _check_number("ucb", "c", self.c, low=0)
        _check_int("ucb", "window", self.window, low=1)
        if self.reward not in UCB_REWARDS:
            raise ValueError(f"ucb.reward must be one of {' | '.join(UCB_REWARDS)}, got {self.reward!r}")
        if not isinstance(self.augmentations, tuple):
            raise ValueError(f"ucb.augmentations must be a list of augmentation names, got {self.augmentations!r}")
        for name in self.augmentations:
            _known("ucb.augmentations", name)
        if len(set(self.augmentations)) != len(self.augmentations):
            raise ValueError(f"ucb.augmentations names an augmentation twice: {', '.join(self.augmentations)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
