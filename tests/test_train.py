"""End to end: `heldout train` and `heldout evaluate` through the CLI, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from heldout import checkpoint, config, envs
from heldout.envs.maze import named_levels
from heldout.cli import main

# A few thousand steps: 8 maze envs x 64 steps per update.
MAZE_FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "2", "--eval.episodes", "6", "--eval.final_episodes", "12", "--eval.num_envs", "6",
    "--torch_threads", "1", "--no-progress",
]  # fmt: skip

# The maze with only the `test` held-out set: the named mazes (up to 51x51) take most of an
# evaluation's time, and tests of resuming, stopping and samplers need no more than one set.
MAZE_ONE_SET = [*MAZE_FAST, "--env.test_levels", "test"]

PROCGEN_FAST = [
    "--env", "procgen/coinrun", "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2",
    "--network.impala_channels", "4,8,8", "--network.features_dim", "32", "--env.options",
    "{num_test_levels: 20}", "--train-levels", "20", "--torch_threads", "1", "--no-progress",
]  # fmt: skip


# DRED with a tiny generative model, fitted in the run directory in a second or two.
DRED_TINY = "{fit: {max_epochs: 5, latent_dim: 8, hidden_dim: 32, channels: 8}, generation_batch: 8}"
SAMPLER_ARGS = {"dred": ["--sampler.params", DRED_TINY]}
LSTM_SMALL = ["--network.lstm_hidden_size", "16"]  # ppo_lstm's LSTM in tests (plain ppo ignores it)


def load_checkpoint(run: Path) -> dict:
    """A run's checkpoint, its levels read with its family's level space."""
    name = yaml.safe_load((run / "config.yaml").read_text())["env"]["name"]
    return checkpoint.load(run / "checkpoints" / "latest.pt", envs.get(name).level_space())


def tensorboard_tags(tb_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in tb_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
        acc.Reload()
        for kind in ("scalars", "images", "histograms"):
            tags |= set(acc.Tags()[kind])
    return tags


def custom_scalar_charts(tb_dir: Path) -> dict[str, list[str]]:
    """The custom-scalars layout written to a run's event files: chart title -> tags."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.custom_scalar import layout_pb2

    charts: dict[str, list[str]] = {}
    for events in tb_dir.rglob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.tag == "custom_scalars__config__":
                    layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])
                    for category in layout.category:
                        for chart in category.chart:
                            charts[chart.title] = list(chart.multiline.tag)
    return charts


def check_report(run: Path, steps: int) -> dict:
    report = json.loads((run / "report.json").read_text())
    for part in ("train", "test", "gap"):
        stats = report[part]
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert report["gap"]["mean"] == pytest.approx(report["train"]["mean"] - report["test"]["mean"])
    assert report["steps"] >= steps
    assert set(report["untrained"]) == {"train", "test", "gap", "test_sets"}
    assert report["config"]["steps"] == steps
    assert "torch" in report["versions"]
    assert (run / "report.md").read_text().startswith("# heldout run")
    return report


def test_maze_end_to_end(tmp_path, capsys):
    run = tmp_path / "maze"
    assert main(["train", *MAZE_FAST, "--steps", "2048", "--eval.interval", "1024", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "gap" in out and "test solve rate" in out
    report = check_report(run, 2048)
    assert report["score_unit"] == "solve rate"
    assert 0.0 <= report["train"]["mean"] <= 1.0 and "return" in report["train"]
    tags = tensorboard_tags(run / "tb")
    assert {"eval/train", "eval/test", "eval/gap", "time/fps", "rollout/ep_len_mean", "train/value_loss"} <= tags
    charts = custom_scalar_charts(run / "tb")
    sets = ["test", "test_ood", "named"]
    assert charts["train, held-out sets and gaps"] == [
        "eval/train", *(f"eval/sets/{s}" for s in sets), *(f"eval/gaps/{s}" for s in sets)
    ]
    assert set(charts["train, held-out sets and gaps"]) <= tags  # the chart shows tags the run writes
    state = load_checkpoint(run)
    assert state["num_timesteps"] == 2048
    evaluations = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [e["steps"] for e in evaluations] == [1024, 2048][: len(evaluations)] and evaluations

    assert main(["evaluate", str(run), "--levels", "test_ood", "--episodes", "5"]) == 0
    result = json.loads((run / "eval-test_ood.json").read_text())
    assert result["episodes"] == 5 and 0.0 <= result["score"]["mean"] <= 1.0


def test_procgen_end_to_end(tmp_path):
    run = tmp_path / "coinrun"
    args = PROCGEN_FAST
    assert main(["train", *args, "--steps", "256", "--run-dir", str(run)]) == 0
    report = check_report(run, 256)
    assert report["score_unit"] == "return" and "normalised" in report["train"]
    assert report["level_sets"]["train"]["size"] == 20
    assert "time/fps" in tensorboard_tags(run / "tb")
    state = load_checkpoint(run)
    assert state["num_timesteps"] == 256 and len(state["env"]["sim"]) == 4  # one procgen state per slot


def _scalars(tb_dir: Path, tag: str) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = []
    for path in sorted(tb_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            events += acc.Scalars(tag)
    return sorted(events, key=lambda e: e.step)


def _params(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["policy"]


def whole_and_resumed(tmp_path: Path, common: list[str], steps: int, stop_at: int) -> tuple[Path, Path]:
    """One run of ``steps``, another stopped at ``stop_at`` and resumed to ``steps``; asserts their
    policies are equal to the bit and returns both run directories."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *common, "--steps", str(steps), "--run-dir", str(whole)]) == 0
    assert main(["train", *common, "--steps", str(stop_at), "--run-dir", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--steps", str(steps), "--no-progress"]) == 0
    a, b = _params(whole), _params(part)
    assert all(torch.equal(a[name], b[name]) for name in a)
    return whole, part


@pytest.mark.parametrize(
    "agent, sampler", [("ppo", "uniform"), ("ppo", "robust_plr"), ("ppo", "dred"), ("ppo_lstm", "robust_plr")]
)
def test_killed_run_resumes_to_the_same_parameters(tmp_path, agent, sampler):
    steps = str(8 * 64 * 6)
    common = [*MAZE_ONE_SET, "--steps", steps, "--checkpoint_interval", "1", "--eval.interval", "1024",
              "--sampler", sampler, "--agent", agent, *LSTM_SMALL, *SAMPLER_ARGS.get(sampler, [])]  # fmt: skip
    whole = tmp_path / "whole"
    assert main(["train", *common, "--run-dir", str(whole)]) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "heldout.cli", "train", *common, "--run-dir", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    ckpt = killed / "checkpoints" / "latest.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run wrote no checkpoint before it was killed"
    assert not (killed / "report.json").exists(), "the run finished before it could be killed"
    stopped_at = load_checkpoint(killed)["num_timesteps"]
    assert 0 < stopped_at < int(steps)

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    a, b = _params(whole), _params(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    if agent == "ppo_lstm":  # the hidden states carried into the next rollout were restored too
        ha, hb = (load_checkpoint(r)["agent"]["lstm_states"] for r in (whole, killed))
        assert all(torch.equal(x, y) for part in ("pi", "vf") for x, y in zip(ha[part], hb[part]))
    ra = json.loads((whole / "report.json").read_text())
    rb = json.loads((killed / "report.json").read_text())
    assert ra["train"] == rb["train"] and ra["test"] == rb["test"]
    # evaluations written after the checkpoint were dropped on resume and written once again
    assert (killed / "evaluations.jsonl").read_text() == (whole / "evaluations.jsonl").read_text()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--env", "mazee"], "unknown environment 'mazee'"),
        (["--sampler", "nope"], "unknown level sampler 'nope'"),
        (["--agent", "dqn"], "unknown agent 'dqn'"),
        (["--steps", "-10"], "steps"),
        (["--env.num_envs", "0"], "env.num_envs"),
        (["--ppo.lr", "fast"], "ppo.lr"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, needle):
    run = tmp_path / "bad"
    assert main(["train", *MAZE_FAST, "--steps", "512", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists(), "a rejected run must leave nothing behind"


def test_resume_errors_and_nothing_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *MAZE_ONE_SET, "--steps", "512", "--run-dir", str(run)]) == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    # a run directory that already holds a run
    assert main(["train", *MAZE_ONE_SET, "--steps", "1024", "--seed", "1", "--run-dir", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    # a missing checkpoint
    empty = tmp_path / "empty"
    assert main(["train", "--resume", str(empty)]) == 2
    assert "holds no heldout run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    # a corrupt checkpoint
    ckpt = run / "checkpoints" / "latest.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["train", "--resume", str(run), "--steps", "1024", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt" in err and len(err.splitlines()) == 1
    assert (run / "report.json").read_bytes() == before[run / "report.json"]



@pytest.mark.parametrize("sampler", ["plr", "robust_plr"])
@pytest.mark.parametrize("family_args, steps", [(MAZE_ONE_SET, 2048), (PROCGEN_FAST, 256)], ids=["maze", "procgen"])
def test_level_replay_samplers_end_to_end(tmp_path, sampler, family_args, steps):
    run = tmp_path / sampler
    assert main(["train", *family_args, "--sampler", sampler, "--steps", str(steps), "--run-dir", str(run)]) == 0
    check_report(run, steps)
    tags = tensorboard_tags(run / "tb")
    assert {"level_sampler/num_seen", "level_sampler/replay_fraction"} <= tags
    if family_args is MAZE_ONE_SET:  # maze episodes end within the run, so levels get scores
        assert {"level_sampler/sampling_entropy", "level_sampler/score_mean", "level_sampler/scores"} <= tags
    state = load_checkpoint(run)["sampler"]
    inner = state["sampler"]  # the checkpoint holds this sampler's own state, with the levels it saw
    assert inner["sampler"] == sampler and state["num_rollouts"] > 0
    if family_args is MAZE_ONE_SET:  # episodes ended: their levels are scored (procgen's 256 steps end none)
        assert inner["episode_count"] > 0 and np.asarray(inner["seen"]).any()
    if sampler == "robust_plr":
        assert "train/masked_fraction" in tags


def test_run_stopped_before_its_first_checkpoint_can_start_again(tmp_path, capsys):
    from heldout.trainer import config
    from heldout.cli import build_parser
    from heldout.trainer.command import config_from_args

    run = tmp_path / "early"
    argv = [*MAZE_ONE_SET, "--steps", "512", "--run-dir", str(run)]
    cfg, _, _ = config_from_args(build_parser().parse_args(["train", *argv]))
    run.mkdir()
    config.save_yaml(cfg, run / "config.yaml")  # what a run killed during its untrained evaluation leaves
    assert main(["train", "--resume", str(run)]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    assert main(["train", *argv]) == 0
    assert json.loads((run / "report.json").read_text())["steps"] == 512  # started again and ran to its end
    assert config.load_yaml(run / "config.yaml") == config.to_dict(cfg)


@pytest.mark.parametrize(
    "family_args, sampler, steps",
    [(MAZE_ONE_SET, "plr", 2048), (MAZE_ONE_SET, "robust_plr", 2048), (PROCGEN_FAST, "uniform", 256)],
    ids=["maze-plr", "maze-robust_plr", "procgen"],
)
def test_recurrent_agent_end_to_end(tmp_path, family_args, sampler, steps):
    run = tmp_path / "lstm"
    args = [*family_args, "--agent", "ppo_lstm", *LSTM_SMALL, "--sampler", sampler, "--steps", str(steps)]
    assert main(["train", *args, "--run-dir", str(run)]) == 0
    report = check_report(run, steps)
    assert report["config"]["agent"] == "ppo_lstm"
    tags = tensorboard_tags(run / "tb")
    assert {"train/masked_fraction", "train/explained_variance", "time/fps"} <= tags
    if family_args is MAZE_ONE_SET:  # maze episodes end within the run
        assert "rollout/ep_len_mean" in tags
    state = load_checkpoint(run)
    assert state["agent"]["lstm_states"]["pi"][0].shape == (1, len(state["last_episode_starts"]), 16)
    if sampler != "robust_plr":  # (Robust PLR may mask every step of so short a run: no loss to log)
        assert "train/value_loss" in tags
    if sampler != "uniform":
        assert {"level_sampler/score_mean", "level_sampler/replay_fraction"} <= tags
    if sampler == "robust_plr":
        masked = [e.value for e in _scalars(run / "tb", "train/masked_fraction")]
        assert masked[0] == 1.0  # the first rollout plays only new levels: no gradient from it


# -- environment design on mazes: dr, accel, robust_plr on `random`; every held-out set ------------
# Short time limits keep the untrained agent's episodes (51x51 named maze included) short.
UED_FAST = [*MAZE_FAST, "--env.options", "{max_steps: 60}"]
SETS = ["test", "test_ood", "named"]


def test_the_maze_preset_evaluates_every_held_out_set():
    cfg = config.preset("maze")
    assert cfg.env.test_levels == tuple(SETS) and cfg.env.train_set == "train"
    assert config.preset("procgen").env.test_levels == ("test",)


@pytest.mark.parametrize("sampler", ["dr", "accel", "robust_plr"])
def test_samplers_on_random_levels_end_to_end_report_every_held_out_set(tmp_path, sampler):
    run = tmp_path / sampler
    args = ["train", *UED_FAST, "--env.train_set", "random", "--sampler", sampler, "--steps", "2048",
            "--eval.interval", "1024", "--run-dir", str(run)]  # fmt: skip
    if sampler != "dr":  # replay at once: the maze default waits for half of a 4000-level buffer
        args += ["--sampler.min_fill_ratio", "0"]
    assert main(args) == 0
    report = check_report(run, 2048)
    assert report["level_sets"]["train"] == {"name": "random", "size": None, "notes": report["level_sets"]["train"]["notes"]}
    assert list(report["test_sets"]) == SETS and list(report["untrained"]["test_sets"]) == SETS
    assert report["test"] == report["test_sets"]["test"]["score"] and report["gap"] == report["test_sets"]["test"]["gap"]
    for name in SETS:
        entry = report["test_sets"][name]
        assert entry["gap"]["mean"] == pytest.approx(report["train"]["mean"] - entry["score"]["mean"])
        assert entry["score"]["episodes"] == 12
    per_level = report["test_sets"]["named"]["per_level"]
    assert list(per_level) == list(named_levels())
    assert sum(s["episodes"] for s in per_level.values()) == 12
    markdown = (run / "report.md").read_text()
    assert "| test_ood |" in markdown and "### named, level by level" in markdown and "| labyrinth |" in markdown
    evaluations = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert evaluations and all(list(e["test_sets"]) == SETS for e in evaluations)

    tags = tensorboard_tags(run / "tb")
    for prefix in ("eval", "final"):
        assert {f"{prefix}/sets/test_ood", f"{prefix}/gaps/named", f"{prefix}/levels/named/labyrinth"} <= tags
    assert {"levels/wall_density_w1", "levels/shortest_path_w1", "levels/wall_density_mean", "levels/wall_density",
            "levels/shortest_path", "levels/train_set/wall_density", "levels/episodes"} <= tags  # fmt: skip
    expected = {
        "dr": {"level_sampler/levels_generated"},
        "accel": {"level_sampler/children_accepted", "level_sampler/edits_accepted_fraction", "level_sampler/buffer_size",
                  "levels/edits_mean", "levels/edits", "levels_trained/episodes"},
        "robust_plr": {"levels_trained/wall_density_w1", "level_sampler/trained_step_fraction"},
    }[sampler]  # fmt: skip
    assert expected <= tags
    assert load_checkpoint(run)["sampler"]["sampler"]["sampler"] == sampler


def test_dr_drifts_from_the_training_distribution_and_plr_does_not(tmp_path):
    drift = {}
    for sampler, train_set in (("dr", "random"), ("plr", "train")):
        run = tmp_path / sampler
        args = ["train", *UED_FAST, "--env.train_set", train_set, "--sampler", sampler, "--steps", "1536",
                "--env.test_levels", "test", "--run-dir", str(run)]  # fmt: skip
        assert main(args) == 0
        drift[sampler] = [e.value for e in _scalars(run / "tb", "levels/wall_density_w1")]
    # (early rollouts over-represent the short, easy episodes, so PLR is not at 0 at once)
    assert sum(drift["dr"]) / len(drift["dr"]) > 2 * sum(drift["plr"]) / len(drift["plr"]), drift


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--sampler", "dr"], "--sampler dr with --env.train_set train: dr draws a new level for every episode"),
        (["--env.train_set", "nowhere"], "maze has no level set 'nowhere' and no file of that name exists"),
        (["--env.test_levels", "test,named,test"], "names the level set 'test' twice"),
        (["--env.train_set", "random", "--sampler", "accel", "--sampler.params", "{start: full}"], "start='full'"),
    ],
)
def test_bad_ued_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, needle):
    run = tmp_path / "bad"
    assert main(["train", *UED_FAST, "--steps", "512", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists()


def test_one_level_file_and_the_test_set_as_held_out_sets(tmp_path):
    from heldout import envs

    levels = list(envs.get("maze").level_set("test_ood", num_test_levels=3))
    path = tmp_path / "mine.txt"
    envs.get("maze").level_space().write_levels(levels, path)
    run = tmp_path / "run"
    args = ["train", *UED_FAST, "--steps", "512", "--env.test_levels", f"{path},test", "--run-dir", str(run)]
    assert main(args) == 0
    report = json.loads((run / "report.json").read_text())
    assert list(report["test_sets"]) == ["mine", "test"]
    assert report["test"] == report["test_sets"]["mine"]["score"]  # `test` is the first set
    assert report["level_sets"]["mine"]["size"] == 3


def test_accel_run_continued_from_its_checkpoint_equals_the_whole_run(tmp_path):
    common = [*UED_FAST, "--env.test_levels", "test", "--env.train_set", "random", "--sampler", "accel",
              "--sampler.min_fill_ratio", "0", "--checkpoint_interval", "1"]  # fmt: skip
    whole, part = whole_and_resumed(tmp_path, common, 3072, 1536)
    sa, sb = (load_checkpoint(run)["sampler"]["sampler"] for run in (whole, part))
    assert sa["children_played"] == sb["children_played"] > 0 and sa["levels"] == sb["levels"]
