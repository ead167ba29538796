"""The ``bonus`` section of the training config: which exploration bonus, and its settings."""

from __future__ import annotations

from dataclasses import dataclass, field

NAMES = ("none", "global_count", "episodic_count", "e3b", "rnd", "sum", "product")
GLOBAL_PARTS = ("global_count", "rnd")
EPISODIC_PARTS = ("episodic_count", "e3b")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class BonusConfig:
    """An intrinsic reward added to what the agent learns from (docs/fidelity.md, Exploration bonuses)."""

    name: str = field(
        default="none",
        metadata=_help("exploration bonus: none, global_count, episodic_count, e3b, rnd, sum or product "
                       "(of --bonus.global_part and --bonus.episodic_part)"),
    )  # fmt: skip
    coef: float = field(default=1.0, metadata=_help("weight of the intrinsic reward (e3b's intrinsic_reward_coef)"))
    normalize: bool = field(
        default=True, metadata=_help("divide the intrinsic reward by its running standard deviation (e3b: int)")
    )
    global_part: str = field(default="global_count", metadata=_help("sum/product: the global bonus (global_count, rnd)"))
    episodic_part: str = field(
        default="episodic_count", metadata=_help("sum/product: the episodic bonus (episodic_count, e3b)")
    )
    episodic_form: str = field(
        default="inverse_sqrt",
        metadata=_help("episodic count bonus: inverse_sqrt (1/sqrt(N_episode(s))) or first_visit (1 on a first visit)"),
    )
    ridge: float = field(default=0.1, metadata=_help("e3b: lambda of C = lambda I + sum phi phi^T"))
    embedding_dim: int = field(default=1024, metadata=_help("e3b: size of the inverse-dynamics embedding phi"))
    rnd_dim: int = field(default=128, metadata=_help("rnd: output size of the target and predictor networks"))
    hidden_dim: int = field(default=256, metadata=_help("e3b/rnd: hidden width of the networks on observations"))
    lr: float = field(default=1e-4, metadata=_help("e3b/rnd: Adam learning rate of the bonus networks"))
    batch_size: int = field(default=640, metadata=_help("e3b/rnd: transitions per gradient step of the bonus networks"))
    epochs: int = field(default=1, metadata=_help("e3b/rnd: passes over each rollout's transitions"))
    max_grad_norm: float = field(default=40.0, metadata=_help("e3b/rnd: gradient norm clip of the bonus networks"))
    score_with: str = field(
        default="extrinsic",
        metadata=_help("what level samplers score: extrinsic (the level's own rewards) or total (with the bonus)"),
    )

    def validate(self) -> None:
        """Raise ValueError (one line) naming the first bad setting and what it accepts."""
        choices = [
            ("name", self.name, NAMES),
            ("global_part", self.global_part, GLOBAL_PARTS),
            ("episodic_part", self.episodic_part, EPISODIC_PARTS),
            ("episodic_form", self.episodic_form, ("inverse_sqrt", "first_visit")),
            ("score_with", self.score_with, ("extrinsic", "total")),
        ]
        for name, value, accepted in choices:
            if value not in accepted:
                raise ValueError(f"bad value bonus.{name}={value!r}: choose one of {', '.join(accepted)}")
        checks = [
            (self.coef > 0, "coef", "a positive number"),
            (self.ridge > 0, "ridge", "a positive number"),
            (0 < self.embedding_dim <= 4096, "embedding_dim", "from 1 to 4096"),
            (0 < self.rnd_dim <= 4096, "rnd_dim", "from 1 to 4096"),
            (0 < self.hidden_dim <= 65536, "hidden_dim", "from 1 to 65536"),
            (self.lr > 0, "lr", "a positive number"),
            (self.batch_size > 0, "batch_size", "at least 1"),
            (self.epochs > 0, "epochs", "at least 1"),
            (self.max_grad_norm > 0, "max_grad_norm", "a positive number"),
        ]
        for ok, name, accepted in checks:
            if not ok:
                raise ValueError(f"bad value bonus.{name}={getattr(self, name)!r}: it must be {accepted}")

    @property
    def enabled(self) -> bool:
        return self.name != "none"
