"""The level contract every environment family keeps.

A *level* is a hashable, serialisable key (a Procgen seed, a maze's parameters). A family
provides:

* :class:`LevelSet` objects (``train``, ``test`` and any named set), reproducible from a seed;
* a :class:`LevelSpace` that tells samplers and generators what they may know of a level
  (text form, rendering and, for families that support environment design, an array
  encoding, mutation and a solvability check);
* a single Gymnasium environment that accepts ``reset(options={"level": L})``;
* a :class:`LevelVecEnv`: a stable-baselines3 ``VecEnv`` that can put any level into any slot
  when an episode ends and reports, in every step's info, which level the step belonged to
  and whether the level source marked that episode a replay.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

Level = Hashable


@dataclass(frozen=True)
class LevelDraw:
    """A level source's answer that also says whether the level is a *replay* (a level sampler
    chose it from its replay distribution rather than proposing a new one)."""

    level: Level
    replayed: bool = False


LevelSource = Callable[[int], "Level | LevelDraw"]
"""Called with a slot index whenever that slot starts an episode; returns the level to play
(or a :class:`LevelDraw` of it)."""


@dataclass(frozen=True)
class LevelSet:
    """A named, reproducible collection of levels.

    A finite set holds its ``levels``; an unbounded one (Procgen's full distribution) holds
    a ``draw`` function instead. ``notes`` records how the set was built (for example how
    many candidates were dropped as content duplicates of training levels).
    """

    name: str
    levels: tuple[Level, ...] | None = None
    draw: Callable[[np.random.Generator], Level] | None = None
    notes: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if (self.levels is None) == (self.draw is None):
            raise ValueError(f"level set {self.name!r} needs exactly one of `levels` or `draw`")
        if self.levels is not None and len(self.levels) == 0:
            raise ValueError(f"level set {self.name!r} is empty; give it at least one level")

    @property
    def finite(self) -> bool:
        return self.levels is not None

    def __len__(self) -> int:
        if self.levels is None:
            raise TypeError(f"level set {self.name!r} is unbounded and has no length")
        return len(self.levels)

    def __iter__(self) -> Iterator[Level]:
        if self.levels is None:
            raise TypeError(f"level set {self.name!r} is unbounded; use sample(rng)")
        return iter(self.levels)

    def sample(self, rng: np.random.Generator) -> Level:
        """One level drawn uniformly (finite set) or from the distribution (unbounded set)."""
        if self.levels is not None:
            return self.levels[int(rng.integers(len(self.levels)))]
        assert self.draw is not None
        return self.draw(rng)


class LevelSpace:
    """What level samplers and generators may know of a family's levels.

    Samplers never import an environment: the trainer hands them this object. Families
    that support environment design (mazes) implement the generator methods too; the
    others raise ``NotImplementedError`` with a message saying so.
    """

    family: str = "?"
    max_file_bytes: int = 32_000_000
    """Largest level file :meth:`read_levels` reads (checked from its size before reading): about
    150,000 default mazes; reading a much larger one whole took minutes and gigabytes."""

    # -- text form (level files, reports) --------------------------------------------------
    def format(self, level: Level) -> str:
        """The level's text form; :meth:`parse` reads it back."""
        return str(level)

    def parse(self, text: str) -> Level:
        """A level from its text form; raise ``ValueError`` naming what is wrong."""
        raise NotImplementedError(f"{self.family}: levels cannot be parsed from text")

    def coerce(self, level: Any) -> Level:
        """Accept a level or its text form wherever a level is accepted."""
        return self.parse(level) if isinstance(level, str) else level

    # -- pictures ---------------------------------------------------------------------------
    def render(self, level: Level) -> np.ndarray:
        """An RGB picture (H, W, 3) uint8 of the level's start."""
        raise NotImplementedError(f"{self.family}: levels cannot be rendered")

    # -- environment design -----------------------------------------------------------------
    def encode(self, level: Level) -> np.ndarray:
        raise NotImplementedError(f"{self.family}: levels have no array encoding")

    def decode(self, array: np.ndarray) -> Level:
        raise NotImplementedError(f"{self.family}: levels have no array encoding")

    def mutate(self, level: Level, rng: np.random.Generator, num_edits: int = 1) -> Level:
        raise NotImplementedError(f"{self.family}: levels cannot be edited")

    def is_solvable(self, level: Level) -> bool:
        raise NotImplementedError(f"{self.family}: solvability cannot be checked")

    generator_names: tuple[str, ...] = ()
    """The level generators :meth:`generate` knows (the maze: ``random`` and ``empty``)."""

    def generate(self, name: str, rng: np.random.Generator) -> Level:
        """A new level from the family's generator ``name`` (one of :attr:`generator_names`)."""
        raise NotImplementedError(f"{self.family}: levels cannot be generated")

    def features(self, level: Level) -> dict[str, float]:
        """Numbers that describe a level, for statistics of what a curriculum plays (the maze:
        ``wall_density`` and ``shortest_path``; NaN where undefined). Empty where the family
        defines none."""
        return {}

    # -- level files --------------------------------------------------------------------------
    def write_levels(self, levels: Sequence[Level], path: str | Path) -> None:
        """Write levels in text form, separated by blank lines (atomically)."""
        from heldout.userfiles import check_file_path

        path = Path(path)
        check_file_path(path, "level file")
        from heldout.safe_write import replace_text

        replace_text(path, "\n\n".join(self.format(lv).strip("\n") for lv in levels) + "\n")

    def read_levels(self, path: str | Path, name: str | None = None) -> LevelSet:
        """A level set from a file written by :meth:`write_levels`."""
        from heldout.userfiles import read_text

        path = Path(path)
        blocks = [b for b in read_text(path, "level file", self.max_file_bytes).split("\n\n") if b.strip()]
        levels = []
        for i, block in enumerate(blocks):
            try:
                levels.append(self.parse(block.strip("\n")))
            except ValueError as err:
                raise ValueError(f"{path}: level {i + 1}: {err}") from None
        if not levels:
            raise ValueError(f"level file {str(path)!r} holds no levels")
        return LevelSet(name or path.stem, levels=tuple(levels), notes=f"read from {path}")


class EnvFamily(ABC):
    """A registered family of environments whose levels can be chosen.

    ``options`` (keyword arguments of :meth:`make`, :meth:`make_vec` and :meth:`level_set`)
    are family-specific, e.g. Procgen's ``distribution_mode`` or the maze's ``size``.
    ``num_train_levels`` and ``level_seed`` mean the same in every family: how many levels
    the ``train`` set holds, and the seed that builds the level sets.
    """

    name: str
    description: str = ""
    level_set_names: tuple[str, ...] = ("train", "test")
    score_unit: str = "return"
    """What the evaluation's headline number is: ``"return"`` or ``"solve rate"``."""
    default_num_train_levels: int = 200

    def level_space(self, **options: Any) -> LevelSpace:
        """What samplers may know of the levels; by default only their text form (``str``)."""
        space = LevelSpace()
        space.family = self.name
        return space

    @abstractmethod
    def level_set(
        self, name: str, *, num_train_levels: int | None = None, level_seed: int = 0, **options: Any
    ) -> LevelSet: ...

    @abstractmethod
    def make(self, level_set: str | LevelSet = "train", **options: Any) -> gym.Env: ...

    def make_vec(self, num_envs: int, level_set: str | LevelSet = "train", *, seed: int = 0, **options: Any) -> "LevelVecEnv":
        """``num_envs`` single envs from :meth:`make` stepped one after another in a
        :class:`~heldout.envs.gym_vec.GymLevelVecEnv`; families with a faster batched
        simulator override this."""
        from heldout.envs.gym_vec import GymLevelVecEnv

        lset = level_set if isinstance(level_set, LevelSet) else self.level_set(level_set, **options)
        single = [self.make(lset, **options) for _ in range(num_envs)]
        return GymLevelVecEnv(single, lset, self.level_space(**options), seed=seed)

    def level_editor(self, num_envs: int, *, seed: int = 0, n_walls: int = 50, z_dim: int = 50, **options: Any) -> VecEnv:
        """A vectorised level editor an adversary builds levels in (PAIRED); NotImplementedError
        for a family without one."""
        raise NotImplementedError(f"the {self.name} family has no level editor")

    def normalise(self, returns: np.ndarray, **options: Any) -> np.ndarray | None:
        """Returns mapped to the family's normalised score, or None where it defines none
        (``options``: those the env was made with, e.g. Procgen's ``distribution_mode``)."""
        return None

    def solved(self, returns: np.ndarray) -> np.ndarray | None:
        """Per-episode success (bool array), or None where the family has no such notion."""
        return None

    def check_level_set_name(self, name: str) -> None:
        if name not in self.level_set_names:
            raise ValueError(
                f"{self.name} has no level set {name!r}; choose one of {', '.join(self.level_set_names)}"
            )


class LevelVecEnv(VecEnv):
    """A stable-baselines3 ``VecEnv`` whose slots play chosen levels.

    Whenever a slot starts an episode (at :meth:`reset` and after every episode end) it asks
    the level source for its next level: by default a uniform draw from ``level_set``; a
    level sampler installs its own with :meth:`set_level_source`.

    Every step's info holds ``"level"``: the level that step belonged to, and ``"replayed"``:
    whether the level source marked that episode's level a replay (:class:`LevelDraw`; False for
    plain levels and levels put in by :meth:`set_levels`). At an episode end
    it also holds ``"episode"`` (``r`` return, ``l`` length, ``t`` seconds since creation,
    ``level``), ``"terminal_observation"`` and ``"TimeLimit.truncated"``.

    Subclasses implement :meth:`_load_levels` (start the given slots on the given levels and
    return their first observations) and :meth:`_raw_step` (step every slot; slots whose
    episode ended may hold anything until they are loaded again).
    """

    def __init__(
        self,
        num_envs: int,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        level_set: LevelSet,
        level_space: LevelSpace,
        seed: int = 0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        super().__init__(num_envs, observation_space, action_space)
        self.level_set = level_set
        self.level_space = level_space
        self.levels: list[Level] = [None] * num_envs
        self.replayed = np.zeros(num_envs, dtype=bool)
        """Per slot: whether the level source marked its current episode's level a replay."""
        self._rng = np.random.default_rng(seed)
        self._level_source: LevelSource | None = None
        self._episode_return = np.zeros(num_envs, dtype=np.float64)
        self._episode_length = np.zeros(num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None
        self._t0 = time.time()

    # -- levels -------------------------------------------------------------------------------
    def set_level_source(self, source: LevelSource | None) -> None:
        """Install ``source(slot) -> level`` (or a :class:`LevelDraw`); None restores uniform
        draws from the level set."""
        self._level_source = source

    def draw_level(self, slot: int) -> LevelDraw:
        """The level ``slot`` plays next, from the level source (or a uniform draw)."""
        if self._level_source is None:
            return LevelDraw(self.level_set.sample(self._rng))
        drawn = self._level_source(slot)
        return drawn if isinstance(drawn, LevelDraw) else LevelDraw(drawn)

    def set_levels(
        self, slots: Sequence[int], levels: Sequence[Level], replayed: Sequence[bool] | None = None
    ) -> VecEnvObs:
        """Start a new episode on ``levels[k]`` in ``slots[k]`` now; returns their first observations.

        ``replayed[k]`` says whether that episode is a replay (default: none is)."""
        slots = np.asarray(slots, dtype=np.int64)
        levels = [self.level_space.coerce(lv) for lv in levels]
        obs = self._load_levels(slots, levels)
        for s, lv in zip(slots.tolist(), levels):
            self.levels[s] = lv
        self.replayed[slots] = False if replayed is None else np.asarray(replayed, dtype=bool)
        self._episode_return[slots] = 0.0
        self._episode_length[slots] = 0
        return obs

    def _start_drawn(self, slots: np.ndarray) -> VecEnvObs:
        """Start ``slots`` on the levels the level source draws for them, in slot order."""
        draws = [self.draw_level(i) for i in slots.tolist()]
        return self.set_levels(slots, [d.level for d in draws], [d.replayed for d in draws])

    # -- saving and restoring (exact resume of training) ----------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the env is: levels, episode statistics,
        RNG and the simulator state of every slot, as plain data (no pickled objects)."""
        return {
            "levels": list(self.levels),
            "replayed": self.replayed.copy(),
            "episode_return": self._episode_return.copy(),
            "episode_length": self._episode_length.copy(),
            "rng": self._rng.bit_generator.state,
            "sim": self._get_sim_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (same family, options and number of envs)."""
        if len(state["levels"]) != self.num_envs:
            raise ValueError(f"saved env state has {len(state['levels'])} slots, this env has {self.num_envs}")
        self.levels = list(state["levels"])
        self.replayed[:] = state["replayed"]
        self._episode_return[:] = state["episode_return"]
        self._episode_length[:] = state["episode_length"]
        self._rng.bit_generator.state = state["rng"]
        self._set_sim_state(state["sim"])  # last: it may read the levels and restart episodes

    def _get_sim_state(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} cannot save its simulator state")

    def _set_sim_state(self, sim: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot restore its simulator state")

    # -- VecEnv API -----------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._rng = np.random.default_rng(seed)
        return [seed] * self.num_envs

    def reset(self) -> VecEnvObs:
        obs = self._start_drawn(np.arange(self.num_envs))
        self.reset_infos = self._level_infos()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async must come before step_wait"
        obs, rewards, terminated, truncated = self._raw_step(self._actions)
        self._episode_return += rewards
        self._episode_length += 1
        dones = terminated | truncated
        infos = self._step_infos()
        ended = np.flatnonzero(dones)
        if ended.size:
            now = round(time.time() - self._t0, 6)
            for i in ended.tolist():
                info = infos[i]
                info["episode"] = {
                    "r": float(self._episode_return[i]),
                    "l": int(self._episode_length[i]),
                    "t": now,
                    "level": self.levels[i],
                }
                info["terminal_observation"] = obs[i].copy()
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            obs[ended] = self._start_drawn(ended)
        return obs, rewards.astype(np.float32), dones, infos

    def _level_infos(self) -> list[dict[str, Any]]:
        """One fresh dict per slot: the ``"level"`` it plays and whether it is ``"replayed"``."""
        return [{"level": lv, "replayed": r} for lv, r in zip(self.levels, self.replayed.tolist())]

    def _step_infos(self) -> list[dict[str, Any]]:
        """One fresh info dict per slot for the step just taken (by default :meth:`_level_infos`)."""
        return self._level_infos()

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    # -- for subclasses -------------------------------------------------------------------------
    @abstractmethod
    def _load_levels(self, slots: np.ndarray, levels: list[Level]) -> np.ndarray:
        """Start ``slots`` on ``levels``; return their first observations (len(slots), ...)."""

    @abstractmethod
    def _raw_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every slot: (obs, rewards float, terminated bool, truncated bool)."""
