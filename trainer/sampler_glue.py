"""The glue between stable-baselines3 rollouts and a level sampler.

>>> callback = LevelSamplerCallback(level_samplers.make("plr", train_levels))
>>> model.learn(total_timesteps, callback=callback)

On training start the callback finds the :class:`heldout.envs.LevelVecEnv` under any
``VecEnvWrapper`` and installs the sampler as its level source, so every episode in every
slot plays a level the sampler chose (the slots' first episodes too: if the env was reset
before the sampler was installed, it is reset again; call :meth:`LevelSamplerCallback.attach`
before ``learn`` to avoid that). During the rollout it records, per step and slot, the
level and whether its episode was a replay. At the end of each rollout (stable-baselines3
has computed advantages and returns by then) it scores every episode segment from the
rollout buffer with :class:`heldout.level_samplers.EpisodeScorer`, updates the sampler, and,
for a sampler that does not train on new levels (Robust PLR), hands the agent a loss mask
through ``model.set_loss_mask``. It also logs the sampler to TensorBoard.

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

from heldout.envs.base import Level, LevelSpace, LevelVecEnv
from heldout.level_samplers import EpisodeScore, EpisodeScorer, LevelSampler
from heldout.level_samplers.base import entropy
from heldout.level_samplers.scores import DISTRIBUTION_SCORES
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


class LevelSamplerCallback(BaseCallback):
    """Drives a level sampler from stable-baselines3's on-policy training loop.

    Args:
        sampler: the level sampler (``heldout.level_samplers.make(...)``).
        level_space: renders levels for the image grid; default: the env's ``level_space``.
        log_interval: log the sampler every this many rollouts.
        image_interval: log the image grid of the highest-weighted levels every this many
            rollouts (0 turns images off).
        num_images: how many levels the grid shows.
        log_prefix: the TensorBoard tag prefix.
        score_batch_size: observations per forward pass when a distribution score
            recomputes the policy's action probabilities over the rollout buffer.
        level_stats: collects the features of the levels played (``heldout.level_stats``),
            logged with the sampler under ``levels/`` and ``levels_trained/``.

    TensorBoard tags (under ``log_prefix``): ``sampling_entropy``, ``num_seen``,
    ``replay_fraction`` (of the levels drawn since the last log), ``score_mean``,
    ``score_max``, ``scores`` (histogram), ``episodes_scored``, ``trained_step_fraction``
    (Robust PLR: share of the rollout's steps that take gradient), ``top_levels`` (image) and
    every number of the sampler's ``diagnostics()`` (ACCEL: ``children_accepted``...; DRED:
    ``eta``, ``num_generated``...).

    The sampler also hears every finished episode's true return (``record_return``) and,
    before each rollout, the fraction of training done (``set_progress``).
    """

    def __init__(
        self,
        sampler: LevelSampler,
        *,
        level_space: LevelSpace | None = None,
        log_interval: int = 1,
        image_interval: int = 10,
        num_images: int = 16,
        log_prefix: str = "level_sampler",
        score_batch_size: int = 2048,
        level_stats: PlayedLevelStats | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
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
        self.level_space = level_space
        self.log_interval = log_interval
        self.image_interval = image_interval
        self.num_images = num_images
        self.log_prefix = log_prefix
        self.score_batch_size = score_batch_size
        self.level_stats = level_stats

        self._venv: LevelVecEnv | None = None
        self._scorer: EpisodeScorer | None = None
        self._pending_scorer_state: dict[str, Any] | None = None
        self._slot_levels: list[Level] = []
        self._slot_replayed: list[bool] = []
        self._slot_known: list[bool] = []
        self._drawn: dict[int, tuple[Level, bool]] = {}
        self._rows_levels: list[list[Level]] = []
        self._rows_replayed: list[np.ndarray] = []
        self._rows_returns: list[np.ndarray] = []
        self._num_rollouts = 0
        self._draws = 0
        self._replay_draws = 0
        self._images_enabled = image_interval > 0
        self._total_steps: int | None = None
        self.last_episodes: list[EpisodeScore] = []
        """The episodes scored at the end of the latest rollout."""
        self.last_loss_mask: np.ndarray | None = None
        """The latest (n_steps, n_envs) mask given to ``model.set_loss_mask`` (Robust PLR)."""

    # -- installing the sampler -------------------------------------------------------------
    def attach(self, env: VecEnv) -> LevelVecEnv:
        """Install the sampler as the level source of the LevelVecEnv in ``env``.

        Called on training start; call it yourself before ``model.learn`` so that the env's
        first reset already draws from the sampler (saves one reset).
        """
        venv = find_level_vec_env(env)
        if self._venv is not venv or len(self._slot_levels) != venv.num_envs:
            n = venv.num_envs
            if self._slot_levels and len(self._slot_levels) != n:
                raise ValueError(f"this callback tracked {len(self._slot_levels)} env slots; the env has {n}")
            if not self._slot_levels:
                self._slot_levels = [None] * n
                self._slot_replayed = [False] * n
                self._slot_known = [False] * n
        self._venv = venv
        venv.set_level_source(self._draw_level)
        if self.level_space is None:
            self.level_space = venv.level_space
        return venv

    def _draw_level(self, slot: int) -> Level:
        level, replayed = self.sampler.sample_with_replay_flag()
        self._drawn[slot] = (level, bool(replayed))
        self._draws += 1
        self._replay_draws += int(bool(replayed))
        return level

    def _on_training_start(self) -> None:
        venv = self.attach(self.training_env)
        if not self.sampler.trains_on_new_levels and not callable(getattr(self.model, "set_loss_mask", None)):
            raise TypeError(
                f"sampler {self.sampler.name!r} trains only on replayed levels, so the agent must mask new "
                f"levels' steps out of its loss, but {type(self.model).__name__} has no set_loss_mask(mask); "
                "use heldout's PPO (heldout.agents) or add that method"
            )
        if self.sampler.score_name in DISTRIBUTION_SCORES and not isinstance(self.model.action_space, spaces.Discrete):
            raise TypeError(
                f"score {self.sampler.score_name!r} needs a discrete action space, got {self.model.action_space}; "
                "choose an advantage or value score (value_l1, positive_value_loss, gae, max_mc, one_step_td)"
            )
        if self._scorer is None:
            self._scorer = EpisodeScorer(self.sampler.score_name, venv.num_envs, float(self.model.gamma))
            if self._pending_scorer_state is not None:
                self._scorer.load_state_dict(self._pending_scorer_state)
                self._pending_scorer_state = None
        total = self.locals.get("total_timesteps")
        self._total_steps = int(total) if total else None
        self._report_progress()
        self._sync_slots(venv)

    def _report_progress(self) -> None:
        """Tell the sampler the fraction of training done (for scheduled parameters such as DRED's eta)."""
        if self._total_steps:
            self.sampler.set_progress(self.model.num_timesteps / self._total_steps)

    def _sync_slots(self, venv: LevelVecEnv) -> None:
        """Make sure every slot plays a level the sampler chose, and know which it is."""
        assert self._scorer is not None
        stale: list[int] = []
        carried = self._scorer.pending()
        starting = getattr(self.model, "_last_episode_starts", None)
        for s in range(venv.num_envs):
            current = venv.levels[s]
            drawn = self._drawn.pop(s, None)
            if drawn is not None and drawn[0] == current:
                # A fresh episode drawn from the sampler (attach() came before the env's reset).
                self._slot_levels[s], self._slot_replayed[s], self._slot_known[s] = drawn[0], drawn[1], True
                stale.append(s)
                continue
            same_level = self._slot_known[s] and self._slot_levels[s] == current
            # An episode carried from the last rollout can only go on if the slot is not at an
            # episode start (sb3 resets the env, e.g. in a new process, before training start).
            cut = s in carried and starting is not None and bool(starting[s])
            if not same_level or cut:
                self._reset_env(venv)
                return
        # Any carried partial episode in a freshly started slot belongs to an episode that was cut.
        self._apply(self._scorer.flush(self.sampler.max_return, slots=stale))

    def _reset_env(self, venv: LevelVecEnv) -> None:
        assert self._scorer is not None
        self._apply(self._scorer.flush(self.sampler.max_return))
        self._drawn.clear()
        obs = self.training_env.reset()
        self.model._last_obs = obs
        self.model._last_episode_starts = np.ones((venv.num_envs,), dtype=bool)
        vec_normalize = getattr(self.model, "_vec_normalize_env", None)
        if vec_normalize is not None:
            self.model._last_original_obs = vec_normalize.get_original_obs()
        for s in range(venv.num_envs):
            level, replayed = self._drawn.pop(s)
            self._slot_levels[s], self._slot_replayed[s], self._slot_known[s] = level, replayed, True

    # -- during the rollout ---------------------------------------------------------------------
    def _on_rollout_start(self) -> None:
        self._report_progress()
        self._rows_levels = []
        self._rows_replayed = []
        self._rows_returns = []

    def _on_step(self) -> bool:
        assert self._venv is not None
        infos = self.locals["infos"]
        dones = self.locals["dones"]
        n = self._venv.num_envs
        row_levels: list[Level] = []
        row_replayed = np.zeros(n, dtype=bool)
        row_returns = np.full(n, np.nan)
        for e in range(n):
            level = infos[e].get("level", self._slot_levels[e])
            if not (self._slot_known[e] and self._slot_levels[e] == level):
                # Not a level this callback handed out: count it as new (never a replay).
                self._slot_levels[e], self._slot_replayed[e], self._slot_known[e] = level, False, True
            row_levels.append(level)
            row_replayed[e] = self._slot_replayed[e]
            if dones[e]:
                episode = infos[e].get("episode")
                if episode is not None:
                    self.sampler.record_return(episode.get("level", level), float(episode["r"]))
                    row_returns[e] = episode["r"] * self._reward_scale()
                drawn = self._drawn.pop(e, None)
                following = self._venv.levels[e]
                if drawn is not None and drawn[0] == following:
                    self._slot_levels[e], self._slot_replayed[e] = drawn
                else:
                    self._slot_levels[e], self._slot_replayed[e] = following, False
        self._rows_levels.append(row_levels)
        self._rows_replayed.append(row_replayed)
        self._rows_returns.append(row_returns)
        return True

    def _reward_scale(self) -> float:
        """The factor reward normalisation applied to this step's rewards (1 without it)."""
        env = self.training_env
        while env is not None:
            if isinstance(env, VecNormalize):
                return float(1.0 / np.sqrt(env.ret_rms.var + env.epsilon)) if env.norm_reward else 1.0
            env = getattr(env, "venv", None)
        return 1.0

    # -- at the end of the rollout --------------------------------------------------------------
    def _on_rollout_end(self) -> None:
        assert self._scorer is not None
        buffer = self.model.rollout_buffer
        steps = len(self._rows_levels)
        if steps != buffer.buffer_size:
            raise RuntimeError(
                f"the callback saw {steps} steps but the rollout buffer holds {buffer.buffer_size}; "
                "LevelSamplerCallback must see every step of every rollout"
            )
        replayed = np.stack(self._rows_replayed)
        last_values = self.locals["values"]
        if isinstance(last_values, th.Tensor):
            last_values = last_values.detach().cpu().numpy()
        probs = self._action_probabilities(buffer) if self._scorer.needs_probs else None
        episodes = self._scorer.process(
            levels=self._rows_levels,
            replayed=replayed,
            rewards=buffer.rewards,
            values=buffer.values,
            advantages=buffer.advantages,
            returns=buffer.returns,
            episode_starts=buffer.episode_starts,
            last_values=np.asarray(last_values).reshape(-1),
            last_dones=np.asarray(self.locals["dones"]),
            probs=probs,
            max_return_of=self.sampler.max_return,
            episode_returns=np.stack(self._rows_returns),
        )
        if self.level_stats is not None:  # before the updates: the sampler still knows every level
            finished = [ep for ep in episodes if ep.complete]
            self.level_stats.add([ep.level for ep in finished], [ep.replayed for ep in finished])
        self._apply(episodes)
        self.last_episodes = episodes
        if not self.sampler.trains_on_new_levels:
            mask = replayed.astype(np.float32)  # 1 = learn from this step, 0 = a new level's episode
            self.model.set_loss_mask(mask)
            self.last_loss_mask = mask
        self._num_rollouts += 1
        if self._num_rollouts % self.log_interval == 0:
            self._log(episodes)
        if self._images_enabled and self._num_rollouts % self.image_interval == 0:
            self._log_image()

    def _apply(self, episodes: list[EpisodeScore]) -> None:
        for ep in episodes:
            self.sampler.update(ep.level, ep.score, max_return=ep.max_return)

    def _action_probabilities(self, buffer: Any) -> np.ndarray:
        """pi(a|s) for every step of the buffer, in batched forward passes: (T, E, actions).

        A model that offers ``rollout_action_probabilities(batch_size)`` computes them itself
        (a recurrent policy needs the hidden state each step was taken in)."""
        own = getattr(self.model, "rollout_action_probabilities", None)
        if own is not None:
            return own(self.score_batch_size)
        policy = self.model.policy
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
    def _log(self, episodes: list[EpisodeScore]) -> None:
        record = self.logger.record
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

    def _log_image(self) -> None:
        levels = self.top_levels()
        if not levels or self.level_space is None:
            return
        try:
            frames = [self.level_space.render(lv) for lv in levels]
            grid = image_grid(frames)
        except NotImplementedError as err:
            self._images_enabled = False
            if self.verbose:
                print(f"LevelSamplerCallback: no level images ({err})")
            return
        except Exception as err:  # a picture must never stop training
            self._images_enabled = False
            warnings.warn(f"LevelSamplerCallback: rendering levels failed, images turned off: {err!r}", stacklevel=2)
            return
        self.logger.record(f"{self.log_prefix}/top_levels", Image(grid, "HWC"), exclude=_NOT_TEXT)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the callback carries between rollouts, and the sampler's own state (``"sampler"``)."""
        scorer_state = self._scorer.state_dict() if self._scorer is not None else self._pending_scorer_state
        return {
            "sampler": self.sampler.state_dict(),
            "scorer": scorer_state,
            "slot_levels": list(self._slot_levels),
            "slot_replayed": list(self._slot_replayed),
            "slot_known": list(self._slot_known),
            "drawn": dict(self._drawn),
            "num_rollouts": self._num_rollouts,
            "draws": self._draws,
            "replay_draws": self._replay_draws,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the sampler's state included)."""
        self.sampler.load_state_dict(state["sampler"])
        if state["scorer"] is not None:
            if self._scorer is not None:
                self._scorer.load_state_dict(state["scorer"])
            else:
                self._pending_scorer_state = state["scorer"]
        self._slot_levels = list(state["slot_levels"])
        self._slot_replayed = [bool(x) for x in state["slot_replayed"]]
        self._slot_known = [bool(x) for x in state["slot_known"]]
        self._drawn = dict(state["drawn"])
        self._num_rollouts = int(state["num_rollouts"])
        self._draws = int(state["draws"])
        self._replay_draws = int(state["replay_draws"])
