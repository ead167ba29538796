"""The level-identity probe: how much the agent's representation knows which training level it is in.

DRED's argument: the generalisation gap is bounded by the mutual information between the
representation and the identity of the training level; a representation that can tell the N
training levels apart can memorise them. A linear probe measures a lower bound of that
information: on fresh rollouts from the training levels, a multinomial logistic regression is
fitted to predict the level from the detached shared features (the features extractor's
output; for ``ppo_lstm`` the features that enter the LSTM), and its held-out cross-entropy CE
gives ``log N - CE`` nats (the bound), beside its accuracy and chance 1/N. A control fits the
same probe on shuffled labels: near chance, bound near or below 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from heldout.envs import EnvFamily, LevelSet

FIT_ITERATIONS = 200
WEIGHT_DECAY = 1e-3
MAX_ENVS = 32


def collect(
    model: Any, family: EnvFamily, levels: LevelSet, steps: int, seed: int, env_options: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and level indices of ``steps`` steps on every level (each slot replays its level),
    played with the model's policy under forked torch RNGs: training's random streams are untouched."""
    features, labels = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for first in range(0, len(levels), MAX_ENVS):
            chunk = list(levels.levels[first:first + MAX_ENVS])
            vec = family.make_vec(len(chunk), levels, seed=seed + first, **(env_options or {}))
            vec.set_level_source(lambda slot, chunk=chunk: chunk[slot])
            obs = vec.reset()
            state, starts = None, np.ones(len(chunk), dtype=bool)
            for _ in range(steps):
                with torch.no_grad():
                    feats = shared_features(model, obs)
                features.append(feats)
                labels.append(first + np.arange(len(chunk)))
                actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=False)
                obs, _, starts, _ = vec.step(actions)
            vec.close()
    return np.stack(features).astype(np.float32), np.stack(labels)  # (steps, levels, F), (steps, levels)


def shared_features(model: Any, obs: np.ndarray) -> np.ndarray:
    """The policy's features extractor output for a batch of observations (the policy's part
    when policy and value have extractors of their own)."""
    policy = model.policy
    tensor, _ = policy.obs_to_tensor(obs)
    features = policy.extract_features(tensor)
    if isinstance(features, tuple):
        features = features[0]
    return features.detach().cpu().numpy()


def fit_and_score(
    x_fit: np.ndarray, y_fit: np.ndarray, x_held: np.ndarray, y_held: np.ndarray, classes: int, seed: int
) -> dict[str, float]:
    """Fit a linear softmax probe (full-batch L-BFGS, small weight decay, standardised features)
    and score it on held-out samples: cross-entropy (nats), accuracy, chance and the bound."""
    gen = torch.Generator().manual_seed(seed)
    x_fit_t, x_held_t = torch.as_tensor(x_fit, dtype=torch.float32), torch.as_tensor(x_held, dtype=torch.float32)
    mean, std = x_fit_t.mean(0), x_fit_t.std(0) + 1e-6
    x_fit_t, x_held_t = (x_fit_t - mean) / std, (x_held_t - mean) / std
    y_fit_t, y_held_t = torch.as_tensor(y_fit, dtype=torch.long), torch.as_tensor(y_held, dtype=torch.long)
    weight = (0.01 * torch.randn(x_fit_t.shape[1], classes, generator=gen)).requires_grad_(True)
    bias = torch.zeros(classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=FIT_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(x_fit_t @ weight + bias, y_fit_t) + WEIGHT_DECAY * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        logits = x_held_t @ weight + bias
        ce = float(F.cross_entropy(logits, y_held_t))
        accuracy = float((logits.argmax(1) == y_held_t).float().mean())
    return {"cross_entropy": ce, "accuracy": accuracy, "chance": 1.0 / classes, "bound": math.log(classes) - ce}


def measure(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The probe on (steps, levels, F) features: the first half of each level's steps fits it,
    the second half scores it (later steps are not seen while fitting); plus the shuffled-label
    control, whose fit labels are permuted."""
    steps, levels = labels.shape
    if steps < 2:
        raise ValueError("the probe needs at least 2 steps per level (half to fit, half to score)")
    half = steps // 2
    x_fit, y_fit = features[:half].reshape(-1, features.shape[-1]), labels[:half].reshape(-1)
    x_held, y_held = features[half:].reshape(-1, features.shape[-1]), labels[half:].reshape(-1)
    result: dict[str, Any] = fit_and_score(x_fit, y_fit, x_held, y_held, levels, seed)
    shuffled = np.random.default_rng(seed).permutation(y_fit)
    result["control"] = fit_and_score(x_fit, shuffled, x_held, y_held, levels, seed)
    result.update(levels=int(levels), fit_samples=int(len(y_fit)), held_out_samples=int(len(y_held)))
    return result


def run(model: Any, family: EnvFamily, levels: LevelSet, steps: int, seed: int, env_options: dict | None = None) -> dict[str, Any]:
    """Collect fresh rollouts on the training levels and measure the probe on them."""
    features, labels = collect(model, family, levels, steps, seed, env_options)
    return measure(features, labels, seed)


def log(logger: Any, result: dict[str, Any]) -> None:
    """TensorBoard scalars ``probe/...`` (and ``probe/control_...``)."""
    for key in ("cross_entropy", "accuracy", "chance", "bound"):
        logger.record(f"probe/{key}", result[key])
        if key != "chance":
            logger.record(f"probe/control_{key}", result["control"][key])
