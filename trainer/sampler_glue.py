"""The glue between stable-baselines3 rollouts and a level sampler.

>>> glue = SamplerGlue(level_samplers.make("plr", train_levels), model)

:class:`SamplerGlue` installs the sampler as the level source of the
:class:`heldout.envs.LevelVecEnv` under the model's env (under any ``VecEnvWrapper``), so every
episode in every slot plays a level the sampler chose, marked as a replay or not
(:class:`heldout.envs.LevelDraw`). The training loop (:mod:`heldout.trainer.loop`) then, per
rollout:

* before the rollout calls :meth:`~SamplerGlue.begin_rollout`: a sampler that plans whole
  rollouts (DRED's warm-up, then replay and proposal rollouts in turn) gets its plan (the
  episodes under way are scored as they are) and the loop resets the env, so every slot
  restarts on it; for any other sampler it does nothing;
* passes :attr:`SamplerGlue.steps` (a callback) to ``collect_rollouts``: per step it reads, from
  the env's step infos, the level each slot played and whether it was a replay (the env reports
  both: the glue keeps no copy of the slots), and hands every finished episode's true return to
  the sampler (``record_return``);
* after the rollout (stable-baselines3 has computed advantages and returns by then) calls
  :meth:`~SamplerGlue.score` (every episode segment of the rollout buffer through
  :class:`heldout.level_samplers.EpisodeScorer`), :meth:`~SamplerGlue.update` (the sampler, and the
  played-level statistics), :meth:`~SamplerGlue.loss_mask` (for a sampler that does not train on
  new levels: the steps of replayed episodes) and :meth:`~SamplerGlue.log` (TensorBoard).

Scores are in the units the agent learns in: the buffer's rewards, values and advantages,
after any reward normalisation (``VecNormalize``) and with sb3's time-limit bootstrap
already added to the last reward of a truncated episode. ``max_mc``'s achieved returns come
from the env's own episode return (``info["episode"]["r"]``: the real rewards, no bootstrap),
brought into those units by the factor ``VecNormalize`` applied to that step's rewards
(``1 / sqrt(ret_rms.var + epsilon)``; 1 without reward normalisation).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from heldout.envs.base import Level, LevelDraw, LevelSpace, LevelVecEnv
from heldout.level_samplers import EpisodeScore, EpisodeScorer, LevelSampler
from heldout.level_samplers.base import entropy
from heldout.trainer.level_stats import PlayedLevelStats

_NOT_TEXT = ("stdout", "log", "json", "csv")


def find_level_vec_env(env: Any) -> LevelVecEnv:
    """The :class:`LevelVecEnv` inside ``env`` (itself, or under ``VecEnvWrapper`` layers)."""
    current = env
    for _ in range(64):
        if isinstance(current, LevelVecEnv):
            return current
        inner = getattr(current, "venv", None)
        if inner is None:
            break
        current = inner
    raise TypeError(
        f"a level sampler needs a heldout.envs.LevelVecEnv (make one with heldout.envs.make_vec); "
        f"got {type(env).__name__}, which does not wrap one"
    )


def reward_scale(env: VecEnv) -> float:
    """The factor reward normalisation applied to the latest step's rewards (1 without it)."""
    while env is not None:
        if isinstance(env, VecNormalize):
            return float(1.0 / np.sqrt(env.ret_rms.var + env.epsilon)) if env.norm_reward else 1.0
        env = getattr(env, "venv", None)
    return 1.0


def image_grid(frames: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile RGB frames (H, W, 3) into one HWC uint8 image, row by row, padding smaller ones."""
    if not frames:
        raise ValueError("image_grid needs at least one frame")
    frames = [np.asarray(f) for f in frames]
    for f in frames:
        if f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"frames must be RGB arrays (H, W, 3), got shape {f.shape}")
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    cols = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    grid = np.zeros((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), dtype=np.uint8)
    for k, f in enumerate(frames):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + f.shape[0], x : x + f.shape[1]] = np.clip(f, 0, 255).astype(np.uint8)
    return grid


def gae(rewards: np.ndarray, values: np.ndarray, episode_starts: np.ndarray, last_values: np.ndarray,
        last_dones: np.ndarray, gamma: float, lam: float) -> np.ndarray:  # fmt: skip
    """Generalised advantage estimates of a (T, E) rollout, as stable-baselines3's rollout buffer
    computes them (``compute_returns_and_advantage``)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(rewards.shape)
    starts = np.asarray(episode_starts, dtype=np.float64).reshape(rewards.shape)
    advantages = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        if t == rewards.shape[0] - 1:
            alive, next_values = 1.0 - np.asarray(last_dones, dtype=np.float64), np.asarray(last_values, np.float64)
        else:
            alive, next_values = 1.0 - starts[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_values * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return advantages


class RolloutSteps(BaseCallback):
    """What the glue reads during ``collect_rollouts``: per step, the level and replay flag of
    every slot and the achieved return of every episode that ended (in the buffer's reward
    units, NaN elsewhere); at the rollout's end, the bootstrap values and the last dones."""

    def __init__(self, sampler: LevelSampler) -> None:
        super().__init__()
        self.sampler = sampler
        self.levels: list[list[Level]] = []
        self.replayed: list[np.ndarray] = []
        self.returns: list[np.ndarray] = []
        self.intrinsic: list[np.ndarray] = []
        """Per step, the exploration bonus added to each slot's reward (``info["intrinsic"]``; 0 without one)."""
        self.last_values: np.ndarray | None = None
        self.last_dones: np.ndarray | None = None

    def _on_rollout_start(self) -> None:
        self.levels, self.replayed, self.returns, self.intrinsic = [], [], [], []

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        levels = [info["level"] for info in infos]
        returns = np.full(len(infos), np.nan)
        ended = np.flatnonzero(dones)
        if ended.size:
            scale = reward_scale(self.training_env)
            for e in ended.tolist():
                episode = infos[e].get("episode")
                if episode is not None:
                    self.sampler.record_return(episode.get("level", levels[e]), float(episode["r"]))
                    returns[e] = episode["r"] * scale
        self.levels.append(levels)
        self.replayed.append(np.array([info["replayed"] for info in infos], dtype=bool))
        self.returns.append(returns)
        self.intrinsic.append(np.array([info.get("intrinsic", 0.0) for info in infos], dtype=np.float64))
        return True

    def _on_rollout_end(self) -> None:
        values = self.locals["values"]
        if isinstance(values, th.Tensor):
            values = values.detach().cpu().numpy()
        self.last_values = np.asarray(values).reshape(-1)
        self.last_dones = np.asarray(self.locals["dones"])


class SamplerGlue:
    """Drives a level sampler from the training loop (see the module docstring).

    Args:
        sampler: the level sampler (``heldout.level_samplers.make(...)``).
        model: the agent (a stable-baselines3 on-policy algorithm); the sampler becomes the level
            source of the :class:`LevelVecEnv` under ``model.get_env()``. A sampler that trains
            only on replays needs ``model.set_loss_mask(mask)``; a distribution score a discrete
            action space.
        level_space: renders levels for the image grid; default: the env's ``level_space``.
        log_interval: log the sampler every this many rollouts.
        image_interval: log the image grid of the highest-weighted levels every this many
            rollouts (0 turns images off).
        num_images: how many levels the grid shows.
        log_prefix: the TensorBoard tag prefix.
        score_batch_size: observations per forward pass when a distribution score
            recomputes the policy's action probabilities over the rollout buffer.
        level_stats: collects the features of the levels played (``heldout.trainer.level_stats``),
            logged with the sampler under ``levels/`` and ``levels_trained/``.
        extrinsic_scores: score levels without the exploration bonus the env adds (each step's
            ``info["intrinsic"]``): it is taken off the buffer's rewards and the advantages are
            recomputed from them by GAE on the agent's values (:func:`gae`).

    TensorBoard tags (under ``log_prefix``): ``sampling_entropy``, ``num_seen``,
    ``replay_fraction`` (of the levels drawn since the last log), ``score_mean``,
    ``score_max``, ``scores`` (histogram), ``episodes_scored``, ``trained_step_fraction``
    (Robust PLR: share of the rollout's steps that take gradient), ``top_levels`` (image) and
    every number of the sampler's ``diagnostics()`` (ACCEL: ``children_accepted``...; DRED:
    ``eta``, ``num_generated``...).
    """

    def __init__(
        self,
        sampler: LevelSampler,
        model: Any,
        *,
        level_space: LevelSpace | None = None,
        log_interval: int = 1,
        image_interval: int = 10,
        num_images: int = 16,
        log_prefix: str = "level_sampler",
        score_batch_size: int = 2048,
        level_stats: PlayedLevelStats | None = None,
        extrinsic_scores: bool = False,
        verbose: int = 0,
    ) -> None:
        if not isinstance(sampler, LevelSampler):
            raise TypeError(f"sampler must be a heldout LevelSampler, got {type(sampler).__name__}")
        for param, value, low in (
            ("log_interval", log_interval, 1),
            ("image_interval", image_interval, 0),
            ("num_images", num_images, 1),
            ("score_batch_size", score_batch_size, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{param} must be an integer >= {low}, got {value!r}")
        self.sampler = sampler
        self.level_env = find_level_vec_env(model.get_env())
        self.scorer = EpisodeScorer(sampler.score_name, self.level_env.num_envs, float(model.gamma))
        if not sampler.trains_on_new_levels and not callable(getattr(model, "set_loss_mask", None)):
            raise TypeError(
                f"sampler {sampler.name!r} trains only on replayed levels, so the agent must mask new "
                f"levels' steps out of its loss, but {type(model).__name__} has no set_loss_mask(mask); "
                "use heldout's PPO (heldout.agents) or add that method"
            )
        if self.scorer.needs_probs and not isinstance(model.action_space, spaces.Discrete):
            raise TypeError(
                f"score {sampler.score_name!r} needs a discrete action space, got {model.action_space}; "
                "choose an advantage or value score (value_l1, positive_value_loss, gae, max_mc, one_step_td)"
            )
        self.level_space = level_space if level_space is not None else self.level_env.level_space
        self.log_interval = log_interval
        self.image_interval = image_interval
        self.num_images = num_images
        self.log_prefix = log_prefix
        self.score_batch_size = score_batch_size
        self.level_stats = level_stats
        self.extrinsic_scores = extrinsic_scores
        self.gae_lambda = float(getattr(model, "gae_lambda", 1.0))
        self.verbose = verbose
        self.steps = RolloutSteps(sampler)
        """The callback ``collect_rollouts`` must call: what each step played (see :class:`RolloutSteps`)."""
        self._num_rollouts = 0
        self._draws = 0
        self._replay_draws = 0
        self._images_enabled = image_interval > 0
        self.last_episodes: list[EpisodeScore] = []
        """The episodes scored after the latest rollout."""
        self.last_loss_mask: np.ndarray | None = None
        """The latest (n_steps, n_envs) loss mask (a sampler that trains only on replays)."""
        self.level_env.set_level_source(self._draw_level)

    def _draw_level(self, slot: int) -> LevelDraw:
        level, replayed = self.sampler.sample_for_slot(slot)
        self._draws += 1
        self._replay_draws += int(bool(replayed))
        return LevelDraw(level, bool(replayed))

    # -- the loop's calls -----------------------------------------------------------------------
    def set_progress(self, fraction: float) -> None:
        """Tell the sampler the fraction of training done (for scheduled parameters such as DRED's eta)."""
        self.sampler.set_progress(fraction)

    def begin_rollout(self) -> str | None:
        """Before a rollout: for a sampler that plans rollouts (``plans_rollouts``), score the
        episodes under way as they are (:meth:`restart`) and get the plan; returns its kind, and
        the caller then resets the env so that every slot starts on the plan. Any other
        sampler: nothing happens (None)."""
        if not self.sampler.plans_rollouts:
            return None
        self.restart()
        return self.sampler.begin_rollout(self.level_env.num_envs)

    def restart(self) -> list[EpisodeScore]:
        """The env was reset (a fresh start): score the episodes carried from an earlier rollout
        as they were (``complete=False``) and update the sampler with them; they cannot go on."""
        if not self.sampler.scores_from_rollout:
            return []
        episodes = self.scorer.flush(self.sampler.max_return)
        self._apply(episodes)
        return episodes

    def score(self, model: Any) -> list[EpisodeScore]:
        """Every episode that ended in the rollout just collected, scored from ``model.rollout_buffer``."""
        buffer, steps = model.rollout_buffer, self.steps
        if not self.sampler.scores_from_rollout:  # the trainer scores the levels (record)
            self.last_episodes = []
            return []
        if len(steps.levels) != buffer.buffer_size or steps.last_values is None:
            raise RuntimeError(
                f"the glue saw {len(steps.levels)} steps but the rollout buffer holds {buffer.buffer_size}; "
                "pass SamplerGlue.steps to every collect_rollouts call"
            )
        probs = self._action_probabilities(model) if self.scorer.needs_probs else None
        rewards, advantages, returns = buffer.rewards, buffer.advantages, buffer.returns
        if self.extrinsic_scores:
            rewards = np.asarray(buffer.rewards, dtype=np.float64) - np.stack(steps.intrinsic)
            advantages = gae(rewards, buffer.values, buffer.episode_starts, steps.last_values, steps.last_dones,
                             float(model.gamma), self.gae_lambda)  # fmt: skip
            returns = advantages + np.asarray(buffer.values, dtype=np.float64)
        episodes = self.scorer.process(
            levels=steps.levels,
            replayed=np.stack(steps.replayed),
            rewards=rewards,
            values=buffer.values,
            advantages=advantages,
            returns=returns,
            episode_starts=buffer.episode_starts,
            last_values=steps.last_values,
            last_dones=steps.last_dones,
            probs=probs,
            max_return_of=self.sampler.max_return,
            episode_returns=np.stack(steps.returns),
        )
        self.last_episodes = episodes
        return episodes

    def update(self, episodes: list[EpisodeScore]) -> None:
        """Hand the scored episodes to the sampler (and their levels to the played-level statistics)."""
        if self.level_stats is not None:  # before the updates: the sampler still knows every level
            finished = [ep for ep in episodes if ep.complete]
            self.level_stats.add([ep.level for ep in finished], [ep.replayed for ep in finished])
        self._apply(episodes)

    def record(self, levels: list[Level], scores: np.ndarray, replayed: list[bool] | None = None) -> None:
        """Scores the trainer computed (PAIRED's regret, one per slot): to the sampler and the
        played-level statistics, for a sampler whose ``scores_from_rollout`` is False."""
        replayed = [False] * len(levels) if replayed is None else replayed
        if self.level_stats is not None:
            self.level_stats.add(list(levels), list(replayed))
        for level, score in zip(levels, np.asarray(scores, dtype=np.float64).tolist()):
            self.sampler.update(level, score)

    def loss_mask(self) -> np.ndarray | None:
        """(n_steps, n_envs) float32, 1 where a step belongs to a replayed episode, for a sampler that
        trains only on replays (Robust PLR, ACCEL, DRED); None for one that trains on every level."""
        if self.sampler.trains_on_new_levels:
            return None
        self.last_loss_mask = np.stack(self.steps.replayed).astype(np.float32)
        return self.last_loss_mask

    def _apply(self, episodes: list[EpisodeScore]) -> None:
        for ep in episodes:
            self.sampler.update(ep.level, ep.score, max_return=ep.max_return)

    def _action_probabilities(self, model: Any) -> np.ndarray:
        """pi(a|s) for every step of the buffer, in batched forward passes: (T, E, actions).

        A model that offers ``rollout_action_probabilities(batch_size)`` computes them itself
        (a recurrent policy needs the hidden state each step was taken in)."""
        own = getattr(model, "rollout_action_probabilities", None)
        if own is not None:
            return own(self.score_batch_size)
        policy, buffer = model.policy, model.rollout_buffer
        obs = buffer.observations
        T, E = buffer.buffer_size, buffer.n_envs
        if isinstance(obs, dict):
            flat: Any = {k: v.reshape(T * E, *v.shape[2:]) for k, v in obs.items()}
        else:
            flat = obs.reshape(T * E, *obs.shape[2:])
        chunks = []
        with th.no_grad():
            for i in range(0, T * E, self.score_batch_size):
                end = i + self.score_batch_size
                part = {k: v[i:end] for k, v in flat.items()} if isinstance(flat, dict) else flat[i:end]
                dist = policy.get_distribution(obs_as_tensor(part, policy.device))
                chunks.append(dist.distribution.probs.detach().cpu().numpy())
        return np.concatenate(chunks).reshape(T, E, -1)

    # -- TensorBoard ----------------------------------------------------------------------------
    def log(self, logger: Any, episodes: list[EpisodeScore]) -> None:
        """Record the sampler's statistics (every ``log_interval`` rollouts) and its top levels'
        image (every ``image_interval``) with ``logger``; counts one rollout."""
        self._num_rollouts += 1
        if self._num_rollouts % self.log_interval == 0:
            self._log(logger.record, episodes)
        if self._images_enabled and self._num_rollouts % self.image_interval == 0:
            self._log_image(logger.record)

    def _log(self, record: Any, episodes: list[EpisodeScore]) -> None:
        prefix = self.log_prefix
        probs = np.fromiter(self.sampler.probabilities().values(), dtype=np.float64)
        if probs.size and probs.sum() > 0:
            record(f"{prefix}/sampling_entropy", entropy(probs / probs.sum()))
        record(f"{prefix}/num_seen", self.sampler.num_seen)
        record(f"{prefix}/episodes_scored", len(episodes))
        if self._draws:
            record(f"{prefix}/replay_fraction", self._replay_draws / self._draws)
        self._draws = self._replay_draws = 0
        stored = np.fromiter(self.sampler.level_scores().values(), dtype=np.float64)
        if stored.size:
            record(f"{prefix}/score_mean", float(stored.mean()))
            record(f"{prefix}/score_max", float(stored.max()))
            record(f"{prefix}/scores", th.as_tensor(stored), exclude=_NOT_TEXT)
        if self.last_loss_mask is not None and not self.sampler.trains_on_new_levels:
            record(f"{prefix}/trained_step_fraction", float(self.last_loss_mask.mean()))
        for key, value in self.sampler.diagnostics().items():
            record(f"{prefix}/{key}", value)
        if self.level_stats is not None:
            self.level_stats.log(record, with_trained=not self.sampler.trains_on_new_levels)

    def top_levels(self, k: int | None = None) -> list[Level]:
        """The ``k`` levels with the highest replay probability (ties: the sampler's order)."""
        k = self.num_images if k is None else k
        items = [(lv, p) for lv, p in self.sampler.probabilities().items() if p > 0]
        order = sorted(range(len(items)), key=lambda i: -items[i][1])
        return [items[i][0] for i in order[:k]]

    def _log_image(self, record: Any) -> None:
        levels = self.top_levels()
        if not levels or self.level_space is None:
            return
        try:
            frames = [self.level_space.render(lv) for lv in levels]
            grid = image_grid(frames)
        except NotImplementedError as err:
            self._images_enabled = False
            if self.verbose:
                print(f"SamplerGlue: no level images ({err})")
            return
        except Exception as err:  # a picture must never stop training
            self._images_enabled = False
            warnings.warn(f"SamplerGlue: rendering levels failed, images turned off: {err!r}", stacklevel=2)
            return
        record(f"{self.log_prefix}/top_levels", Image(grid, "HWC"), exclude=_NOT_TEXT)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the glue carries between rollouts, and the sampler's own state (``"sampler"``)."""
        return {
            "sampler": self.sampler.state_dict(),
            "scorer": self.scorer.state_dict(),
            "num_rollouts": self._num_rollouts,
            "draws": self._draws,
            "replay_draws": self._replay_draws,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the sampler's state included)."""
        self.sampler.load_state_dict(state["sampler"])
        self.scorer.load_state_dict(state["scorer"])
        self._num_rollouts = int(state["num_rollouts"])
        self._draws = int(state["draws"])
        self._replay_draws = int(state["replay_draws"])
