"""Any Gymnasium environment whose ``reset(seed=s)`` builds level ``s``, as a level family.

>>> import heldout.envs as envs
>>> envs.register_seeded("my/crossing", "MiniGrid-SimpleCrossingS9N1-v0")   # or --env gym:<id>
>>> envs.make_vec("my/crossing", 8, "test")

Level sets: ``train`` = seeds ``0..N-1``; ``test`` = held-out seeds ``>= N`` whose content
fingerprint differs from every training level's (by default a digest of the first
observation; ``fingerprint=`` gives another), with the dropped count in the set's notes;
``full`` = any seed. Dict observations with an ``"image"`` entry (MiniGrid) are reduced to it;
``wrap=`` applies any other wrapper. Episodes are scored by return, or by solve rate when
``success=`` says how success is read from an episode's return.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from importlib import import_module
from importlib.util import find_spec
from typing import Any

import gymnasium as gym
import numpy as np

from heldout.envs import seeds
from heldout.envs.base import EnvFamily, Level, LevelSet

Fingerprint = Callable[[gym.Env, Any], Any]
"""``fingerprint(env, first_obs)``: what identifies the level ``env`` was just reset to
(an array, bytes, a string, a number, or tuples / lists / dicts of those)."""

Success = Callable[[np.ndarray], np.ndarray] | float
"""Per-episode success from returns: a function (returns -> bool array) or a threshold t
(solved when the return exceeds t)."""

GYM_PREFIX = "gym:"
DEFAULT_NUM_TEST_LEVELS = 200
SET_OPTIONS = frozenset({"num_train_levels", "level_seed", "num_test_levels"})
_PACKAGE_OF_ID_PREFIX = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid"}
"""Packages that register Gymnasium ids on import, found from the id alone."""


class SeededLevelEnv(gym.Wrapper):
    """A Gymnasium env whose level is its reset seed: ``reset(options={"level": s})`` plays
    level ``s`` (``env.reset(seed=s)``); without a level it draws one from ``level_set``.
    ``info["level"]`` names the level of every step; a Dict observation with an ``"image"``
    entry is reduced to that entry."""

    def __init__(self, env: gym.Env, level_set: LevelSet, level_space: seeds.SeedLevelSpace) -> None:
        super().__init__(env)
        self.level_set = level_set
        self.level_space = level_space
        self.level: int | None = None
        self._draws = np.random.default_rng()
        space = env.observation_space
        self._key = "image" if isinstance(space, gym.spaces.Dict) and "image" in space.spaces else None
        if self._key is not None:
            self.observation_space = space[self._key]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        level = options.pop("level", None)
        if seed is not None:
            self._draws = np.random.default_rng(seed)
        level = self.level_space.coerce(self.level_set.sample(self._draws) if level is None else level)
        obs, info = self.env.reset(seed=level, options=options or None)
        self.level = level
        info["level"] = level
        return (obs if self._key is None else obs[self._key]), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["level"] = self.level
        return (obs if self._key is None else obs[self._key]), reward, terminated, truncated, info


class SeededLevelSpace(seeds.SeedLevelSpace):
    """Int seeds; :meth:`render` draws a level's start with the env's ``rgb_array`` renderer."""

    def __init__(self, family: "SeededFamily", options: dict[str, Any]) -> None:
        super().__init__(family.name)
        options = {k: v for k, v in options.items() if k != "render_mode"}
        self._make = lambda: family.make_raw(render_mode="rgb_array", **options)
        self._env: gym.Env | None = None

    def render(self, level: Level) -> np.ndarray:
        if self._env is None:
            try:
                self._env = self._make()
            except Exception as err:
                raise NotImplementedError(f"{self.family}: levels cannot be rendered ({err})") from None
        self._env.reset(seed=self.coerce(level))
        frame = self._env.render()
        if not isinstance(frame, np.ndarray):
            raise NotImplementedError(f"{self.family}: the env renders no rgb_array frames")
        return frame


class SeededFamily(EnvFamily):
    """A family of seeded Gymnasium levels (see the module docstring).

    Options: ``num_test_levels`` (200) for the held-out set; every other option goes to
    ``gymnasium.make`` together with the ``make_kwargs`` given at registration.
    """

    level_set_names = ("train", "test", "full")
    default_num_train_levels = 200

    def __init__(
        self,
        name: str,
        gym_id: str,
        *,
        fingerprint: Fingerprint | None = None,
        success: Success | None = None,
        wrap: Callable[[gym.Env], gym.Env] | None = None,
        description: str = "",
        **make_kwargs: Any,
    ) -> None:
        self.name = name
        self.requested_id = gym_id
        self._gym_id: str | None = None
        self.make_kwargs = make_kwargs
        self.fingerprint = fingerprint
        self.success = success
        self.wrap = wrap
        self.score_unit = "return" if success is None else "solve rate"
        self.description = description or f"Gymnasium {gym_id}, levels are reset seeds"
        self._prints: dict[str, dict[int, bytes]] = {}
        self._test_sets: dict[tuple, LevelSet] = {}

    @property
    def gym_id(self) -> str:
        """The Gymnasium id, checked (and its package imported) on first use."""
        if self._gym_id is None:
            self._gym_id = resolve_gym_id(self.requested_id)
        return self._gym_id

    # -- environments ---------------------------------------------------------------------------
    def make_raw(self, **options: Any) -> gym.Env:
        """The wrapped Gymnasium env (``gymnasium.make`` plus ``wrap``), without level control."""
        kwargs = {**self.make_kwargs, **{k: v for k, v in options.items() if k not in SET_OPTIONS}}
        try:
            env = gym.make(self.gym_id, **kwargs)
        except TypeError as err:
            raise ValueError(f"{self.name}: gymnasium.make({self.gym_id!r}) rejects the options {kwargs}: {err}") from None
        return self.wrap(env) if self.wrap is not None else env

    def make(self, level_set: str | LevelSet = "train", **options: Any) -> SeededLevelEnv:
        lset = level_set if isinstance(level_set, LevelSet) else self.level_set(level_set, **options)
        return SeededLevelEnv(self.make_raw(**options), lset, self.level_space(**options))

    def level_space(self, **options: Any) -> SeededLevelSpace:
        return SeededLevelSpace(self, options)

    def solved(self, returns: np.ndarray) -> np.ndarray | None:
        if self.success is None:
            return None
        if callable(self.success):
            return np.asarray(self.success(np.asarray(returns)), dtype=bool)
        return np.asarray(returns) > float(self.success)

    # -- level sets -----------------------------------------------------------------------------
    def level_set(
        self,
        name: str,
        *,
        num_train_levels: int | None = None,
        level_seed: int = 0,
        num_test_levels: int = DEFAULT_NUM_TEST_LEVELS,
        **options: Any,
    ) -> LevelSet:
        self.check_level_set_name(name)
        n_train = seeds.check_count(
            "num_train_levels", self.default_num_train_levels if num_train_levels is None else num_train_levels
        )
        if name == "train":
            return seeds.train_set(n_train)
        if name == "full":
            return seeds.full_set("any seed")
        key = (n_train, seeds.check_count("num_test_levels", num_test_levels), seeds.check_level_seed(level_seed))
        key += (_options_key(options),)
        if key not in self._test_sets:
            self._test_sets[key] = self._test_set(*key[:3], options)
        return self._test_sets[key]

    def _test_set(self, num_train: int, num_test: int, level_seed: int, options: dict[str, Any]) -> LevelSet:
        t0 = time.perf_counter()
        found = seeds.held_out_seeds(self.name, self._fingerprinter(options), num_train, num_test, level_seed)
        what = "the first observation" if self.fingerprint is None else "the family's fingerprint function"
        notes = (
            f"{len(found.seeds)} held-out seeds >= {num_train} (order fixed by level_seed={level_seed}); {found.dropped} of "
            f"{found.examined} candidates dropped as content duplicates of a training level, {found.repeats} as "
            f"repeats of a level already in the set (by {what})"
        )
        return LevelSet(
            "test",
            levels=found.seeds,
            notes=notes,
            metadata={
                "num_train_levels": num_train,
                "num_test_levels": num_test,
                "level_seed": level_seed,
                "candidates": found.examined,
                "dropped": found.dropped,
                "repeats_within_test": found.repeats,
                "fingerprint": f"blake2b-128 of {what}",
                "fingerprint_proves_distinct": True,
                "fingerprint_scope": f"levels that differ in {what} differ in content",
                "build_seconds": round(time.perf_counter() - t0, 3),
            },
        )

    def _fingerprinter(self, options: dict[str, Any]) -> Callable[[Sequence[int]], list[bytes]]:
        """``seeds -> digests``, each seed's digest computed once per option set."""
        table = self._prints.setdefault(_options_key(options), {})
        env: list[gym.Env] = []

        def fingerprints(batch: Sequence[int]) -> list[bytes]:
            for seed in batch:
                if seed not in table:
                    if not env:
                        env.append(self.make_raw(**{k: v for k, v in options.items() if k != "render_mode"}))
                    obs, _ = env[0].reset(seed=int(seed))
                    value = obs if self.fingerprint is None else self.fingerprint(env[0], obs)
                    table[seed] = digest(value)
            return [table[seed] for seed in batch]

        return fingerprints


def digest(value: Any) -> bytes:
    """A 16-byte blake2b digest of an observation-like value (arrays, bytes, str, numbers,
    and tuples / lists / dicts of them)."""
    h = hashlib.blake2b(digest_size=16)

    def feed(v: Any) -> None:
        if isinstance(v, dict):
            h.update(b"{")
            for k in sorted(v, key=str):
                feed(str(k))
                feed(v[k])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for item in v:
                feed(item)
            h.update(b"]")
        elif isinstance(v, (bytes, str)):
            data = v.encode() if isinstance(v, str) else v
            h.update(b"s%d:" % len(data) + data)
        else:
            a = np.ascontiguousarray(v)
            h.update(f"a{a.dtype.str}{a.shape}:".encode() + a.tobytes())

    feed(value)
    return h.digest()


def _options_key(options: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in options.items() if k not in SET_OPTIONS | {"render_mode"}))


def resolve_gym_id(gym_id: str) -> str:
    """The registered Gymnasium id ``gym_id`` names, importing the package that registers it
    (``module:Id``, or a known prefix such as ``MiniGrid-``); ``ValueError`` if none does."""
    module, _, env_id = gym_id.rpartition(":")
    if not module:
        module = next((m for p, m in _PACKAGE_OF_ID_PREFIX.items() if env_id.startswith(p)), "")
        if env_id in gym.registry or (module and find_spec(module) is None):
            module = ""
    if module:
        try:
            import_module(module)
        except ImportError as err:
            raise ValueError(f"Gymnasium id {gym_id!r}: cannot import {module!r} ({err}); install it") from None
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(
            f"unknown Gymnasium id {env_id!r} ({err}); if another package registers it, name that package: "
            f"gym:<module>:{env_id}"
        ) from None
    return env_id


def register_seeded(
    name: str,
    gym_id: str,
    *,
    fingerprint: Fingerprint | None = None,
    success: Success | None = None,
    wrap: Callable[[gym.Env], gym.Env] | None = None,
    replace: bool = False,
    **make_kwargs: Any,
) -> SeededFamily:
    """Register Gymnasium env ``gym_id`` (whose ``reset(seed=s)`` builds level ``s``) as family
    ``name``. ``make_kwargs`` go to ``gymnasium.make``; see :class:`SeededFamily` for the rest."""
    from heldout.envs.registry import register

    family = SeededFamily(name, gym_id, fingerprint=fingerprint, success=success, wrap=wrap, **make_kwargs)
    family.gym_id  # an unknown id fails here, not at the first reset
    return register(family, replace=replace)  # type: ignore[return-value]


def family_for(name: str) -> SeededFamily:
    """The family ``gym:<id>`` (CLI form): seeded levels of that Gymnasium env, scored by return."""
    family = SeededFamily(name, name[len(GYM_PREFIX) :])
    family.gym_id
    return family
