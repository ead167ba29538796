"""The registry entry of one Procgen game: level sets, single and vectorised environments."""

from __future__ import annotations

from typing import Any

import numpy as np

from heldout.envs.base import EnvFamily, LevelSet
from heldout.envs.procgen import games, levels
from heldout.envs.procgen.single import ProcgenEnv
from heldout.envs.procgen.vec import ProcgenVecEnv

_SET_OPTIONS = frozenset({"distribution_mode", "num_train_levels", "num_test_levels", "level_seed"})


class ProcgenFamily(EnvFamily):
    """``procgen/<game>``: one of the 16 Procgen games with chosen levels.

    Options: ``distribution_mode`` (``"easy"``, the default, or ``"hard"``),
    ``num_train_levels`` (200), ``num_test_levels`` (1000), ``level_seed`` (0, orders the
    held-out candidates), and ``render_mode`` (single env only). Level sets: ``train`` (seeds
    ``0..N-1``), ``test`` (held out by content) and ``full`` (the full distribution).
    """

    level_set_names = levels.LEVEL_SET_NAMES
    score_unit = "return"
    default_num_train_levels = 200

    def __init__(self, game: str) -> None:
        self.game = games.check_game(game)
        self.name = f"procgen/{game}"
        self.description = f"Procgen {game} (procgen-mirror 0.10.7), levels are int seeds"

    def level_space(self, *, distribution_mode: str = "easy", **options: Any) -> levels.ProcgenLevelSpace:
        _reject_unknown(self.name, options, _SET_OPTIONS | {"render_mode", "num_threads"})
        return levels.ProcgenLevelSpace(self.game, distribution_mode)

    def level_set(
        self,
        name: str,
        *,
        num_train_levels: int | None = None,
        level_seed: int = 0,
        distribution_mode: str = "easy",
        num_test_levels: int = levels.DEFAULT_NUM_TEST_LEVELS,
        **options: Any,
    ) -> LevelSet:
        _reject_unknown(self.name, options, {"render_mode", "num_threads"})
        self.check_level_set_name(name)
        games.check_distribution_mode(distribution_mode)
        n_train = self.default_num_train_levels if num_train_levels is None else num_train_levels
        if name == "train":
            return levels.train_set(n_train)
        if name == "full":
            return levels.full_set()
        return levels.test_set(
            self.game,
            distribution_mode,
            num_train_levels=n_train,
            num_test_levels=num_test_levels,
            level_seed=level_seed,
        )

    def make(self, level_set: str | LevelSet = "train", **options: Any) -> ProcgenEnv:
        _reject_unknown(self.name, options, _SET_OPTIONS | {"render_mode"})
        render_mode = options.pop("render_mode", None)
        return ProcgenEnv(
            self.game,
            self._resolve(level_set, options),
            distribution_mode=options.get("distribution_mode", "easy"),
            render_mode=render_mode,
        )

    def make_vec(
        self, num_envs: int, level_set: str | LevelSet = "train", *, seed: int = 0, **options: Any
    ) -> ProcgenVecEnv:
        _reject_unknown(self.name, options, _SET_OPTIONS | {"num_threads"})
        num_threads = options.pop("num_threads", None)
        return ProcgenVecEnv(
            self.game,
            num_envs,
            self._resolve(level_set, options),
            distribution_mode=options.get("distribution_mode", "easy"),
            seed=seed,
            num_threads=num_threads,
        )

    def normalise(
        self, returns: np.ndarray, *, distribution_mode: str = "easy", **options: Any
    ) -> np.ndarray | None:
        """Returns mapped to the published easy-mode normalised score; None for hard mode,
        whose constants differ and are not reproduced here. Accepts the family's other options
        (and ignores them), so callers can pass the options the env was made with."""
        _reject_unknown(self.name, options, _SET_OPTIONS | {"render_mode", "num_threads"})
        return games.normalise(self.game, returns, distribution_mode)

    def _resolve(self, level_set: str | LevelSet, options: dict[str, Any]) -> LevelSet:
        games.check_distribution_mode(options.get("distribution_mode", "easy"))
        if isinstance(level_set, LevelSet):
            space = levels.ProcgenLevelSpace(self.game, options.get("distribution_mode", "easy"))
            if level_set.levels is not None:
                for level in level_set.levels:
                    space.coerce(level)
            return level_set
        if not isinstance(level_set, str):
            raise TypeError(f"level_set must be a level set name or a LevelSet, got {type(level_set).__name__}")
        return self.level_set(level_set, **options)


def _reject_unknown(family: str, options: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{family}: unknown option(s) {unknown}; accepted: {', '.join(sorted(allowed))}")


def families() -> list[ProcgenFamily]:
    """One family per Procgen game, named ``procgen/<game>``."""
    return [ProcgenFamily(game) for game in games.GAMES]
