"""`heldout train` with rad / drac / ucb_drac: with level samplers, TensorBoard, refusals, and a
SIGKILLed ucb_drac run that resumes bit-identical."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from heldout.trainer import checkpoint
from heldout.cli import main
from heldout.envs.maze.space import MazeLevelSpace

MAZE_SPACE = MazeLevelSpace()  # maze checkpoints hold levels, read with the family's level space

MAZE = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "2", "--eval.episodes", "4", "--eval.final_episodes", "8", "--eval.num_envs", "4",
    "--torch_threads", "1", "--no-progress", "--env.test_levels", "test",
]  # fmt: skip
PROCGEN = [
    "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1",
    "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2", "--network.impala_channels", "4,8,8",
    "--network.features_dim", "32", "--env.options", "{num_test_levels: 20}", "--train-levels", "20",
    "--torch_threads", "1", "--no-progress",
]  # fmt: skip


def scalars(tb_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for events in tb_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_ucb_drac_with_plr_on_procgen(tmp_path):
    run = tmp_path / "bigfish"
    argv = ["train", "--env", "procgen/bigfish", "--agent", "ucb_drac", "--sampler", "plr", *PROCGEN, "--steps", "384"]
    assert main([*argv, "--run-dir", str(run)]) == 0
    assert (run / "report.json").exists()
    tags = scalars(run / "tb")
    assert {"train/drac_policy", "train/drac_value", "ucb/chosen", "level_sampler/num_seen"} <= set(tags)
    assert {f"ucb/{kind}/{arm}" for kind in ("q", "count") for arm in ("crop", "random_conv", "colour_jitter")} <= set(tags)
    assert all(0 <= arm < 8 for arm in tags["ucb/chosen"])
    state = checkpoint.load(run / "checkpoints" / "latest.pt", MAZE_SPACE)["agent"]
    assert sum(state["bandit"]["pulls"]) <= 2 and state["pending_arm"] in range(8)


@pytest.mark.parametrize("agent", ["rad", "drac"])
def test_rad_and_drac_with_robust_plr_on_mazes(tmp_path, agent):
    run = tmp_path / agent
    assert main(["train", "--agent", agent, "--augment", "crop", "--sampler", "robust_plr", *MAZE,
                 "--steps", "2048", "--train-levels", "3", "--sampler.min_fill_ratio", "0",  # replay at once
                 "--run-dir", str(run)]) == 0  # fmt: skip
    tags = scalars(run / "tb")
    assert min(tags["train/masked_fraction"]) < 1.0, "some updates train on replayed levels"
    assert ("train/drac_policy" in tags) == (agent == "drac")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--agent", "drac", "--augment", "flip"],
         "augmentation 'flip' is not valid on maze observations (symbolic grids): it mirrors the egocentric view, "
         "which swaps what turn left and turn right do; valid there: crop, cutout, dropout, translate"),
        (["--agent", "ucb_drac", "--ucb.augmentations", "cutout,rotate"], "'rotate' is not valid on maze"),
        (["--agent", "rad", "--augment", "flop"], "unknown augmentation 'flop'. Did you mean 'flip'?"),
        (["--agent", "drac", "--drac.alpha", "-1"], "drac.alpha must be a number in [0, inf)"),
        (["--agent", "ucb_drac", "--ucb.window", "0"], "ucb.window must be an integer >= 1"),
        (["--agent", "rad", "--augment.params", "{crop: {pdd: 2}}"], "augmentation 'crop' has no setting 'pdd'"),
        (["--agent", "rad", "--augment.params", "{cutout: {p: 2}}"], "has no setting 'p'; its settings: min_frac, max_frac"),
    ],
)  # fmt: skip
def test_bad_augmentation_settings_are_one_line_and_exit_code_2(tmp_path, capsys, args, needle):
    run = tmp_path / "bad"
    assert main(["train", *MAZE, "--steps", "512", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists(), "a rejected run must leave nothing behind"


def test_killed_ucb_drac_run_resumes_bit_identical(tmp_path):
    steps = str(8 * 64 * 6)
    common = [*MAZE, "--agent", "ucb_drac", "--sampler", "robust_plr", "--steps", steps, "--checkpoint_interval", "1"]
    whole = tmp_path / "whole"
    assert main(["train", *common, "--run-dir", str(whole)]) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "heldout.cli", "train", *common, "--run-dir", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    ckpt = killed / "checkpoints" / "latest.pt"
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:  # kill it once its bandit holds some rewards
        if ckpt.exists():
            try:
                if sum(checkpoint.load(ckpt, MAZE_SPACE)["agent"]["bandit"]["pulls"]) >= 2:
                    break
            except ValueError:  # caught between write and rename: try again
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped = checkpoint.load(ckpt, MAZE_SPACE)
    assert 0 < stopped["num_timesteps"] < int(steps), "the run must be killed part way"
    assert sum(stopped["agent"]["bandit"]["pulls"]) >= 2

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    a, b = (checkpoint.load(r / "checkpoints" / "latest.pt", MAZE_SPACE) for r in (whole, killed))
    for name in a["policy"]:
        assert torch.equal(a["policy"][name], b["policy"][name]), name
    assert a["agent"]["bandit"] == b["agent"]["bandit"] and a["agent"]["pending_arm"] == b["agent"]["pending_arm"]
    assert torch.equal(a["agent"]["augment_generator"], b["agent"]["augment_generator"])
    reports = [json.loads((r / "report.json").read_text()) for r in (whole, killed)]
    for key in ("steps", "untrained", "train", "test", "gap", "test_sets"):  # the final evaluation, value for value
        assert reports[0][key] == reports[1][key], key
    assert reports[0]["steps"] == int(steps)
