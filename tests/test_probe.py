"""The level-identity probe: high accuracy on features that encode the level, chance on others."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from heldout.evaluation import probe
from heldout.cli import main

MAZE_FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.episodes", "4", "--eval.final_episodes", "4", "--eval.num_envs", "4",
    "--torch_threads", "1", "--no-progress",
]  # fmt: skip


def test_features_that_encode_the_level_are_read_out():
    rng = np.random.default_rng(0)
    steps, levels = 40, 10
    labels = np.tile(np.arange(levels), (steps, 1))
    features = np.eye(levels)[labels] * 3 + rng.normal(0, 0.3, (steps, levels, levels))
    features = np.concatenate([features, rng.normal(0, 1, (steps, levels, 6))], axis=2)  # plus noise dims
    result = probe.measure(features.astype(np.float32), labels)
    assert result["accuracy"] > 0.95 and result["chance"] == pytest.approx(0.1)
    assert result["bound"] > 0.8 * math.log(levels)  # close to log N: the level is known
    assert result["control"]["accuracy"] < 0.3 and result["control"]["bound"] < 0.2  # shuffled labels: chance
    assert (result["levels"], result["fit_samples"], result["held_out_samples"]) == (10, 200, 200)
    assert probe.measure(features.astype(np.float32), labels) == result  # deterministic


def test_random_features_are_at_chance():
    rng = np.random.default_rng(1)
    steps, levels = 40, 8
    labels = np.tile(np.arange(levels), (steps, 1))
    result = probe.measure(rng.normal(0, 1, (steps, levels, 12)).astype(np.float32), labels)
    assert result["accuracy"] < 0.35 and result["bound"] < 0.2
    assert result["control"]["bound"] < 0.2


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


def test_the_probe_needs_a_finite_training_set(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", *MAZE_FAST, "--env.train_set", "random", "--sampler", "dr", "--steps", "512",
            "--probe.interval", "256", "--run-dir", str(run)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--probe.interval needs a finite training set" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()
