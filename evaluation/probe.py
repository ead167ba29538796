"""The level-identity probe: how much the agent's representation knows which training level it is in.

DRED's argument: the generalisation gap is bounded by the mutual information between the
representation and the identity of the training level; a representation that can tell the N
training levels apart can memorise them. A linear probe measures a lower bound of that
information. On fresh rollouts that play every training level for the same number of steps
(so the level L is uniform, H(L) = log N), any predictor q(L | z) of the level from the detached
shared features z (the features extractor's output; for ``ppo_lstm`` the features that enter the
LSTM) gives I(L; z) >= log N - CE(q), CE its expected cross-entropy in nats. The probe estimates
that bound on steps it never saw while being chosen:

* each level's steps are cut in time into three blocks: the first half fits the candidates, the
  next quarter (validation) chooses among them, the last quarter (test) scores the chosen one;
* the candidates are multinomial logistic regressions on standardised features, one per weight
  decay in :data:`WEIGHT_DECAYS`, each calibrated by a temperature fitted on the validation block,
  plus the constant predictor of the fit block's label frequencies (cross-entropy log N when the
  levels are balanced). A probe whose features carry no level identity therefore picks the
  constant (or a temperature near infinity) and reports a bound near 0 instead of an
  overconfident fit's large negative one;
* the reported cross-entropy, accuracy and bound ``log N - CE`` are the test block's.

A control runs the same procedure with the fit and validation labels shuffled (test labels
true): its bound should sit near 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from heldout.envs import EnvFamily, LevelSet

WEIGHT_DECAYS = (10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4)
"""The L2 penalties (times the sum of squared weights, added to the mean cross-entropy) tried,
strongest first: each fit starts from the previous one's solution."""
FIT_ITERATIONS = 200
MAX_ENVS = 32
FIXED_WEIGHT_DECAY = 1e-3
"""The one weight decay of ``--probe.fit fixed`` (the earlier probe)."""
FITS = ("calibrated", "fixed")
MIN_STEPS = {"calibrated": 3, "fixed": 2}
"""Steps per level each fit needs: one in each of its blocks (fit, validation, test; fixed: fit, test)."""


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


def fit_linear(
    x: torch.Tensor, y: torch.Tensor, weight_decay: float, start: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of a softmax regression: full-batch L-BFGS from ``start`` on the mean
    cross-entropy plus ``weight_decay`` times the squared weights (strictly convex: one optimum)."""
    weight, bias = (t.clone().requires_grad_(True) for t in start)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=FIT_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + weight_decay * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach(), bias.detach()


def fit_logit_scale(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The scale s >= 0 (1 / temperature) minimising the cross-entropy of ``s * logits``: the
    cross-entropy is convex in s, so the root of its derivative E_softmax[z] - z_label is bisected;
    s = 0 (the uniform guess) when the logits point the wrong way at s = 0."""
    logits, picked = logits.double(), logits.double().gather(1, y[:, None])[:, 0]

    def slope(scale: float) -> float:
        return float(((torch.softmax(scale * logits, 1) * logits).sum(1) - picked).mean())

    if slope(0.0) >= 0:
        return 0.0
    low, high = 0.0, 1.0
    while slope(high) < 0 and high < 1e6:  # separable logits: the best scale may grow without bound
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
    return (low + high) / 2


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, floor: float) -> float:
    """Mean cross-entropy (nats) of softmax(logits) mixed with the uniform guess at weight ``floor``:
    no level gets less than floor / N, so one confidently wrong sample costs at most log(N / floor)."""
    classes = logits.shape[1]
    log_p = torch.logaddexp(math.log1p(-floor) + torch.log_softmax(logits, 1), torch.tensor(math.log(floor / classes)))
    return float(-log_p.gather(1, y[:, None]).mean())


def fit_and_score(
    split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], classes: int
) -> dict[str, Any]:
    """Choose the probe on the validation block among the calibrated weight decays and the constant
    label-frequency predictor, then score it on the test block: cross-entropy (nats), accuracy,
    chance, the bound log N - CE, the choice (``weight_decay`` None for the constant,
    ``temperature`` None for a uniform guess) and the chosen fit's test cross-entropy before
    calibration (``uncalibrated_cross_entropy``). Every candidate's prediction is mixed with the
    uniform guess at weight 1 / (validation samples + 1) (:func:`smoothed_cross_entropy`)."""
    x_fit, y_fit, x_val, y_val, x_test, y_test = (torch.as_tensor(a) for a in split)
    x_fit, x_val, x_test = (a.float() for a in (x_fit, x_val, x_test))
    y_fit, y_val, y_test = (a.long() for a in (y_fit, y_val, y_test))
    mean, std = x_fit.mean(0), x_fit.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # features constant while fitting stay unscaled
    x_fit, x_val, x_test = ((a - mean) / std for a in (x_fit, x_val, x_test))
    floor = 1.0 / (len(y_val) + 1)

    counts = torch.bincount(y_fit, minlength=classes).double()  # scores from here on in float64
    constant = torch.log((counts + 1) / (counts.sum() + classes))  # label frequencies, never log 0
    best = {"weight_decay": None, "scale": 1.0, "test_logits": constant.expand(len(y_test), classes),
            "validation": smoothed_cross_entropy(constant.expand(len(y_val), classes), y_val, floor)}  # fmt: skip
    weight, bias = torch.zeros(x_fit.shape[1], classes), torch.zeros(classes)
    for weight_decay in WEIGHT_DECAYS:
        weight, bias = fit_linear(x_fit, y_fit, weight_decay, (weight, bias))
        val_logits = (x_val @ weight + bias).double()
        scale = fit_logit_scale(val_logits, y_val)
        validation = smoothed_cross_entropy(scale * val_logits, y_val, floor)
        if validation < best["validation"] - 1e-12:  # ties go to the simpler candidate already held
            best = {"weight_decay": weight_decay, "scale": scale, "test_logits": (x_test @ weight + bias).double(),
                    "validation": validation}  # fmt: skip
    logits = best["scale"] * best["test_logits"]
    ce = smoothed_cross_entropy(logits, y_test, floor)
    accuracy = float((logits.argmax(1) == y_test).double().mean())
    return {
        "cross_entropy": ce, "accuracy": accuracy, "chance": 1.0 / classes, "bound": math.log(classes) - ce,
        "weight_decay": best["weight_decay"],
        "temperature": 1.0 / best["scale"] if best["weight_decay"] is not None and best["scale"] > 0 else None,
        "uncalibrated_cross_entropy": float(F.cross_entropy(best["test_logits"], y_test)),
        "validation_cross_entropy": best["validation"],
    }  # fmt: skip


def fit_and_score_fixed(
    split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], classes: int, seed: int
) -> dict[str, Any]:
    """The earlier probe (``--probe.fit fixed``): one fit with weight decay :data:`FIXED_WEIGHT_DECAY`
    from a small random start, no calibration, scored on the held-out half; its CE can exceed log N."""
    x_fit, y_fit, x_test, y_test = (torch.as_tensor(a) for a in split)
    x_fit, x_test, y_fit, y_test = x_fit.float(), x_test.float(), y_fit.long(), y_test.long()
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    x_fit, x_test = (x_fit - mean) / std, (x_test - mean) / std
    start = 0.01 * torch.randn(x_fit.shape[1], classes, generator=torch.Generator().manual_seed(seed))
    weight, bias = fit_linear(x_fit, y_fit, FIXED_WEIGHT_DECAY, (start, torch.zeros(classes)))
    logits = x_test @ weight + bias
    ce = float(F.cross_entropy(logits, y_test))
    accuracy = float((logits.argmax(1) == y_test).float().mean())
    return {"cross_entropy": ce, "accuracy": accuracy, "chance": 1.0 / classes, "bound": math.log(classes) - ce}


def blocks(steps: int, fit: str = "calibrated") -> tuple[int, int]:
    """Where the fit block ends and the validation block ends, in steps per level (for ``fixed``,
    no validation block: both are the half)."""
    if fit not in FITS:
        raise ValueError(f"unknown probe fit {fit!r}: use one of {', '.join(FITS)}")
    if steps < MIN_STEPS[fit]:
        raise ValueError(
            f"the probe needs at least {MIN_STEPS[fit]} steps per level (to fit, choose and score), got {steps}"
        )
    half = steps // 2
    return (half, half + (steps - half) // 2) if fit == "calibrated" else (half, half)


def measure(features: np.ndarray, labels: np.ndarray, seed: int = 0, fit: str = "calibrated") -> dict[str, Any]:
    """The probe on (steps, levels, F) features: the first half of each level's steps fits it, the
    next quarter chooses it, the last quarter scores it (later steps are unseen before scoring);
    plus the shuffled-label control, whose fit and validation labels are permuted. ``fit="fixed"``:
    the earlier probe, first half fits, second half scores."""
    steps, levels = labels.shape
    fit_end, val_end = blocks(steps, fit)
    flat = [(features[a:b].reshape(-1, features.shape[-1]), labels[a:b].reshape(-1))
            for a, b in ((0, fit_end), (fit_end, val_end), (val_end, steps))]  # fmt: skip
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = flat
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only contend (and one thread fixes the sums' order)
    try:
        if fit == "fixed":
            result: dict[str, Any] = fit_and_score_fixed((x_fit, y_fit, x_test, y_test), levels, seed)
            result["control"] = fit_and_score_fixed((x_fit, rng.permutation(y_fit), x_test, y_test), levels, seed)
        else:
            result = fit_and_score((x_fit, y_fit, x_val, y_val, x_test, y_test), levels)
            shuffled = (x_fit, rng.permutation(y_fit), x_val, rng.permutation(y_val), x_test, y_test)
            result["control"] = fit_and_score(shuffled, levels)
    finally:
        torch.set_num_threads(threads)
    result.update(fit=fit, levels=int(levels), log_levels=math.log(levels), fit_samples=int(len(y_fit)),
                  validation_samples=int(len(y_val)), held_out_samples=int(len(y_test)))  # fmt: skip
    return result


def run(
    model: Any, family: EnvFamily, levels: LevelSet, steps: int, seed: int, env_options: dict | None = None,
    fit: str = "calibrated",
) -> dict[str, Any]:
    """Collect fresh rollouts on the training levels and measure the probe on them."""
    features, labels = collect(model, family, levels, steps, seed, env_options)
    return measure(features, labels, seed, fit)


def log(logger: Any, result: dict[str, Any]) -> None:
    """TensorBoard scalars ``probe/...`` (and ``probe/control_...``)."""
    for key in ("cross_entropy", "accuracy", "chance", "bound"):
        logger.record(f"probe/{key}", result[key])
        if key != "chance":
            logger.record(f"probe/control_{key}", result["control"][key])
