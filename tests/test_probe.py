"""The level-identity probe: a bound near log N on features that identify the level, near 0 (never
far below) on features that do not, and calibration of an overconfident fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from heldout.evaluation import probe
from heldout.cli import main

MAZE_FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.episodes", "4", "--eval.final_episodes", "4", "--eval.num_envs", "4",
    "--torch_threads", "1", "--no-progress", "--env.test_levels", "test",
]  # fmt: skip


def level_labels(steps: int, levels: int) -> np.ndarray:
    return np.tile(np.arange(levels), (steps, 1))  # every level played for every step, as collect does


def test_features_that_identify_the_level_give_a_bound_near_log_n():
    rng = np.random.default_rng(0)
    steps, levels = 40, 10
    labels = level_labels(steps, levels)
    features = np.eye(levels)[labels] * 3 + rng.normal(0, 0.3, (steps, levels, levels))
    features = np.concatenate([features, rng.normal(0, 1, (steps, levels, 6))], axis=2)  # plus noise dims
    result = probe.measure(features.astype(np.float32), labels)
    assert result["accuracy"] == 1.0 and result["chance"] == pytest.approx(0.1)
    # every test sample right: CE is the floor's price alone, -log(1 - f + f / N) with f = 1 / (100 + 1)
    floor = 1 / 101
    assert result["cross_entropy"] == pytest.approx(-math.log(1 - floor + floor / levels), rel=0.05)
    assert result["bound"] > math.log(levels) - 0.01 and result["log_levels"] == pytest.approx(math.log(10))
    assert -0.05 < result["control"]["bound"] < 0.05 and result["control"]["accuracy"] < 0.3  # shuffled: nothing
    # 40 steps per level: 20 fit, 10 choose, 10 score
    assert [result[k] for k in ("levels", "fit_samples", "validation_samples", "held_out_samples")] == [10, 200, 100, 100]
    assert probe.measure(features.astype(np.float32), labels) == result  # deterministic


@pytest.mark.parametrize("seed", range(4))
def test_features_independent_of_the_level_give_a_bound_near_zero_never_far_below(seed):
    rng = np.random.default_rng(seed)
    steps, levels, dims = 16, 25, (8, 64, 128, 256)[seed]  # up to more dimensions than fit samples (200)
    result = probe.measure(rng.normal(0, 1, (steps, levels, dims)).astype(np.float32), level_labels(steps, levels), seed)
    for r in (result, result["control"]):
        assert -0.05 < r["bound"] < 0.05  # log 25 = 3.22 nats: an overconfident fit would lose nats here
        assert r["cross_entropy"] < math.log(levels) + 0.05


def weak_signal() -> tuple[np.ndarray, np.ndarray]:
    """25 levels, 16 steps each (8 fit samples per level), 125 dims of which 25 carry a weak one-hot signal."""
    rng = np.random.default_rng(3)
    steps, levels = 16, 25
    labels = level_labels(steps, levels)
    signal = np.eye(levels)[labels] * 1.5 + rng.normal(0, 1, (steps, levels, levels))
    return np.concatenate([signal, rng.normal(0, 1, (steps, levels, 100))], axis=2).astype(np.float32), labels


def test_an_overconfident_fit_is_calibrated():
    # more dimensions than fit samples per level: the softmax regression chosen is overconfident,
    # its raw held-out CE worse than the uniform guess log 25 = 3.22 (the probe's old failure: a
    # negative bound despite a signal); the temperature chosen on the validation block (> 1:
    # softer) brings it under log N
    features, labels = weak_signal()
    levels = labels.shape[1]
    result = probe.measure(features, labels)
    assert result["uncalibrated_cross_entropy"] > math.log(levels) + 0.5
    assert result["temperature"] > 2
    assert 0.05 < result["bound"] < 0.5 and result["accuracy"] > 2 * result["chance"]
    assert -0.05 < result["control"]["bound"] < 0.05


def test_the_logit_scale_fit_recovers_the_temperature_of_the_labels():
    # labels drawn from softmax(z); handed 4 z, the best scale is 1/4 (temperature 4), up to sampling
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (5_000, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random((len(z), 1)) > p.cumsum(1)).sum(1)
    scale = probe.fit_logit_scale(torch.as_tensor(4 * z), torch.as_tensor(y))
    assert scale == pytest.approx(0.25, rel=0.05)
    assert probe.fit_logit_scale(torch.as_tensor(-z), torch.as_tensor(y)) == 0.0  # wrong way round: the uniform guess


def test_the_smoothed_cross_entropy_by_hand():
    # softmax([0, log 3]) = [1/4, 3/4]; half mixed with the uniform [1/2, 1/2]: p(label 1) = 0.375 + 0.25
    logits = torch.tensor([[0.0, math.log(3)]], dtype=torch.float64)
    assert probe.smoothed_cross_entropy(logits, torch.tensor([1]), 0.5) == pytest.approx(-math.log(0.625))
    # a confidently wrong sample costs at most log(N / floor)
    wrong = torch.tensor([[0.0, 1000.0]], dtype=torch.float64)
    assert probe.smoothed_cross_entropy(wrong, torch.tensor([0]), 0.1) == pytest.approx(math.log(2 / 0.1), rel=1e-6)


def test_the_blocks_and_too_few_steps():
    assert probe.blocks(40) == (20, 30) and probe.blocks(64) == (32, 48) and probe.blocks(3) == (1, 2)
    with pytest.raises(ValueError, match="at least 3 steps per level"):
        probe.measure(np.zeros((2, 4, 3), dtype=np.float32), level_labels(2, 4))


def test_the_fixed_fit_is_the_earlier_uncalibrated_probe():
    # the overconfident case above, probed the earlier way: half fits, half scores, no calibration
    features, labels = weak_signal()
    levels = labels.shape[1]
    result = probe.measure(features, labels, fit="fixed")
    assert result["fit"] == "fixed" and result["bound"] < 0  # worse than guessing: the reason for the calibrated default
    assert result["bound"] == pytest.approx(math.log(levels) - result["cross_entropy"])
    assert [result[k] for k in ("fit_samples", "validation_samples", "held_out_samples")] == [200, 0, 200]
    with pytest.raises(ValueError, match="unknown probe fit 'best'"):
        probe.measure(features, labels, fit="best")


def test_train_with_the_probe_logs_it_and_reports_it(tmp_path, capsys, scalar_tags):
    run = tmp_path / "run"
    args = ["train", *MAZE_FAST, "--train-levels", "5", "--steps", "1024", "--probe.interval", "512",
            "--probe.steps", "8", "--eval.interval", "0", "--run-dir", str(run)]  # fmt: skip
    assert main(args) == 0
    assert "level-identity probe (5 training levels)" in capsys.readouterr().out
    report = json.loads((run / "report.json").read_text())
    assert report["probe"]["levels"] == 5 and report["probe"]["chance"] == pytest.approx(0.2)
    assert 0.0 <= report["probe"]["accuracy"] <= 1.0
    records = [json.loads(line) for line in (run / "probe.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in records] == [512, 1024]  # the crossing of 512 during training, then the final probe
    assert {"probe/accuracy", "probe/bound", "probe/cross_entropy", "probe/control_bound"} <= scalar_tags(run / "tb")
    assert "Level-identity probe" in (run / "report.md").read_text()
    assert records[-1]["fit"] == "calibrated" and records[-1]["validation_samples"] == 5 * 2  # 8 steps: 4, 2, 2


def test_a_bad_probe_setting_is_refused_in_one_line(tmp_path, capsys):
    for flags, expected in ((["--probe.fit", "best"], "probe.fit"), (["--probe.steps", "2"], "probe.steps")):
        assert main(["train", *MAZE_FAST, "--probe.interval", "256", *flags, "--run-dir", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_the_probe_needs_a_finite_training_set(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", *MAZE_FAST, "--env.train_set", "random", "--sampler", "dr", "--steps", "512",
            "--probe.interval", "256", "--run-dir", str(run)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--probe.interval needs a finite training set" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()
