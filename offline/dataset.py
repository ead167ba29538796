"""Datasets of episodes in Minari's format, with the level of every episode and how it was played.

A dataset is a directory ``DIR`` holding Minari's ``DIR/data`` (``metadata.json`` and one
Arrow folder per episode, read by ``minari.MinariDataset("DIR/data")``; put ``DIR`` under
``$MINARI_DATASETS_PATH`` and ``minari.load_dataset`` finds it by its id). Beyond Minari's own
fields, ``metadata.json`` holds ``heldout``: the env family and its options, the policies that
played (checkpoint, steps, deterministic or sampled, epsilon), the collecting run's config and
the distinct levels; every episode's own metadata holds its ``level`` (the family's text form)
and the index of its ``policy``.

The storage is Minari's Arrow format: Minari 0.5.3's HDF5 format JPEG-encodes every 3-channel
uint8 array but decodes only images of at least 32x32, so it would return the maze's 5x5 views as
JPEG bytes. Either format stores observations of at least 32x32 uint8 pixels (Procgen's frames)
as JPEG, which is lossy; the maze's small symbolic grids are stored exactly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from heldout import envs
from heldout.envs import Level, LevelSpace

FORMAT = "heldout-dataset-v1"
DATA = "data"
"""The folder of a dataset directory that Minari reads."""


@dataclass
class Episode:
    """One episode: ``observations`` holds T + 1 entries (the last after the final action)."""

    level: Level
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool
    policy: int = 0
    """Index of the policy that played it in the dataset's ``policies``."""


def _minari():
    try:
        import minari  # noqa: F401
        from minari.data_collector import EpisodeBuffer
        from minari.dataset.minari_storage import MinariStorage
    except ImportError:
        raise ValueError(
            "datasets need Minari with Arrow: pip install 'heldout[offline]' (minari[arrow]==0.5.3)"
        ) from None
    return minari, EpisodeBuffer, MinariStorage


def check_new_dir(out: str | Path, what: str = "--out") -> Path:
    """Refuse an output path that exists or lies below a file (a dataset is never overwritten)."""
    from heldout.userfiles import check_file_path

    out = Path(out)
    if out.exists():
        raise ValueError(f"{what} {str(out)!r} already exists; datasets are never overwritten, choose a new directory")
    check_file_path(out, what)  # its parents: a directory that exists, none of them a file
    return out


def write(
    out: str | Path,
    episodes: Sequence[Episode],
    *,
    level_space: LevelSpace,
    observation_space: gym.Space,
    action_space: gym.Space,
    info: dict[str, Any],
) -> Path:
    """Write ``episodes`` as a new Minari dataset in directory ``out`` (atomically: built beside it,
    then renamed); ``info`` (plain data: family, options, policies, config) becomes ``heldout``."""
    minari, EpisodeBuffer, MinariStorage = _minari()
    out = check_new_dir(out)
    if not episodes:
        raise ValueError("a dataset needs at least one episode")
    levels = [level_space.format(ep.level) for ep in episodes]
    tmp = out.absolute().with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        storage = MinariStorage.new(tmp / DATA, observation_space, action_space, data_format="arrow")
        storage.update_metadata({
            "dataset_id": f"heldout/{out.name}-v0",
            "minari_version": minari.__version__,
            "algorithm_name": str(info.get("policy", "")),
            "description": f"heldout collect: {len(episodes)} episodes on {len(set(levels))} levels of {info['family']}",
            "heldout": {"format": FORMAT, **info, "levels": list(dict.fromkeys(levels))},
        })  # fmt: skip
        buffers = []
        for i, ep in enumerate(episodes):
            steps = len(ep.actions)
            if len(ep.observations) != steps + 1 or len(ep.rewards) != steps or steps == 0:
                raise ValueError(f"episode {i}: {steps} actions need {steps + 1} observations and {steps} rewards")
            ends = [False] * (steps - 1)
            buffers.append(EpisodeBuffer(
                id=i, observations=np.asarray(ep.observations), actions=np.asarray(ep.actions),
                rewards=[float(r) for r in ep.rewards], terminations=[*ends, bool(ep.terminated)],
                truncations=[*ends, bool(ep.truncated)], infos={},
            ))  # fmt: skip
        # Minari 0.5.3 re-measures the whole directory (a glob of every file) after each episode's
        # metadata, which makes writing N episodes O(N^2) (12,000 episodes: hours); measure once
        storage.get_size = lambda: 0.0  # type: ignore[method-assign]  # the instance's, for the writes below
        storage.update_episodes(buffers)
        storage.update_episode_metadata([{"level": lv, "policy": int(ep.policy)} for lv, ep in zip(levels, episodes)])
        del storage.get_size
        storage.update_metadata({"dataset_size": storage.get_size()})
        try:
            tmp.replace(out)
        except OSError:
            if out.exists():  # a second `heldout collect --out` of the same directory finished first
                raise ValueError(f"--out {str(out)!r} was written by another process while this one collected; "
                                 "its dataset is kept, choose a new directory for this one") from None  # fmt: skip
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass
class OfflineData:
    """A dataset in memory, as training reads it: every transition by index."""

    path: Path
    info: dict[str, Any]
    """The dataset's ``heldout`` metadata (family, options, policies, config, levels)."""
    observation_space: gym.Space
    action_space: gym.Space
    observations: np.ndarray
    """Every episode's observations, one after the other (T + 1 per episode)."""
    index: np.ndarray
    """For transition k: the row of its observation (its next observation is the row after)."""
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    """Whether transition k ended its episode at a terminal state (not at the time limit)."""
    levels: list[Level]
    """The level of every episode."""
    episode_policies: np.ndarray
    returns: np.ndarray
    """The return of every episode."""

    def __len__(self) -> int:
        return len(self.actions)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly with replacement."""
        k = rng.integers(0, len(self), size=batch_size)
        rows = self.index[k]
        return {
            "observations": self.observations[rows],
            "actions": self.actions[k],
            "rewards": self.rewards[k],
            "next_observations": self.observations[rows + 1],
            "terminals": self.terminals[k],
        }

    def describe(self) -> dict[str, Any]:
        """What a report says of the dataset: where, how large, which levels, which policy."""
        return {
            "path": str(self.path),
            "episodes": len(self.levels),
            "transitions": len(self),
            "levels": len(self.info.get("levels", [])),
            "level_set": self.info.get("level_set"),
            "policy": self.info.get("policy"),
            "policies": self.info.get("policies", []),
            "mean_return": float(np.mean(self.returns)),
        }


def data_path(path: str | Path) -> Path:
    """The Minari data folder of a dataset directory (``DIR`` or ``DIR/data``), checked with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {str(path)!r} does not exist; give a directory written by `heldout collect`")
    if not path.is_dir():
        raise ValueError(f"dataset {str(path)!r} is a file; give the dataset directory written by `heldout collect`")
    for candidate in (path / DATA, path):
        if (candidate / "metadata.json").is_file():
            return candidate
    raise ValueError(
        f"dataset {str(path)!r} holds no Minari dataset ({DATA}/metadata.json is missing); "
        "give a directory written by `heldout collect`"
    )


def read(path: str | Path) -> OfflineData:
    """Read a dataset written by :func:`write`; a missing, foreign or damaged one is a one-line error."""
    minari, _, _ = _minari()
    where = data_path(path)
    try:
        dataset = minari.MinariDataset(where)
        info = dataset.storage.metadata.get("heldout")
    except (ValueError, KeyError, OSError, AssertionError, TypeError) as err:
        raise ValueError(f"dataset {str(path)!r} cannot be read ({_first_line(err)}); is it a Minari dataset?") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(
            f"dataset {str(path)!r} is a Minari dataset but not one written by `heldout collect` "
            f"(its metadata has no {FORMAT} levels and policies); collect one with `heldout collect`"
        )
    try:
        family = envs.get(info["family"])
    except KeyError as err:
        raise ValueError(f"dataset {str(path)!r}: {err.args[0]}") from None
    space = family.level_space(**info.get("env_options", {}))
    try:
        episodes = list(dataset.iterate_episodes())
        extra = list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))
        levels = [space.parse(m["level"]) if isinstance(m["level"], str) else m["level"] for m in extra]
        policies = np.array([int(m.get("policy", 0)) for m in extra], dtype=np.int64)
    except (ValueError, KeyError, OSError, TypeError) as err:
        raise ValueError(f"dataset {str(path)!r} is damaged ({_first_line(err)}); collect it again") from None
    if not episodes:
        raise ValueError(f"dataset {str(path)!r} holds no episodes; collect it again with --episodes N")
    observations = np.concatenate([np.asarray(ep.observations) for ep in episodes])
    starts = np.cumsum([0] + [len(ep) + 1 for ep in episodes[:-1]])
    index = np.concatenate([start + np.arange(len(ep)) for start, ep in zip(starts, episodes)])
    terminals = np.concatenate([np.asarray(ep.terminations, dtype=bool) for ep in episodes])
    return OfflineData(
        path=Path(path),
        info=info,
        observation_space=dataset.observation_space,
        action_space=dataset.action_space,
        observations=observations,
        index=index.astype(np.int64),
        actions=np.concatenate([np.asarray(ep.actions) for ep in episodes]).astype(np.int64),
        rewards=np.concatenate([np.asarray(ep.rewards, dtype=np.float32) for ep in episodes]),
        terminals=terminals,
        levels=levels,
        episode_policies=policies,
        returns=np.array([float(np.sum(ep.rewards)) for ep in episodes]),
    )


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
