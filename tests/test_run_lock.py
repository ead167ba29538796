"""One writer per run directory: a second `heldout train` on a live run is refused, naming the holder;
`heldout evaluate` still reads the live run; a killed holder's lock does not block the resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from heldout.cli import UsageError, main
from heldout.envs.maze.space import MazeLevelSpace
from heldout.trainer import checkpoint
from heldout.trainer.lock import LOCK_FILE, DirectoryLock

FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.num_envs", "6", "--eval.episodes", "6", "--eval.final_episodes", "6",
    "--torch_threads", "1", "--no-progress", "--env.test_levels", "test",
]  # fmt: skip




def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_does_not_block_the_resume(tmp_path, capsys, wait_for):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "heldout.cli", "train", *FAST, "--steps", "10000000", "--checkpoint_interval", "1",
           "--seed", "0", "--run-dir", str(run)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "checkpoints" / "latest.pt").exists(), proc)
        config_before = (run / "config.yaml").read_text()
        # a second writer with another seed: refused in one line naming the holder, nothing touched
        assert main(["train", *FAST, "--steps", "1024", "--seed", "1", "--run-dir", str(run)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"run directory {run} is in use by another heldout process (pid {proc.pid}" in err[0]
        assert "heldout train" in err[0] and "--seed 0" in err[0] and "choose another directory" in err[0]
        assert main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert f"(pid {proc.pid}" in capsys.readouterr().err
        assert (run / "config.yaml").read_text() == config_before
        # a reader is welcome: it evaluates the last complete checkpoint of the live run
        out = tmp_path / "live-eval.json"
        assert main(["evaluate", str(run), "--episodes", "6", "--output", str(out)]) == 0
        assert json.loads(out.read_text())["episodes"] == 6
    finally:
        proc.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel releases it, the file stays
        proc.wait()
    assert (run / LOCK_FILE).exists()
    steps = checkpoint.load(run / "checkpoints" / "latest.pt", MazeLevelSpace())["num_timesteps"]
    assert main(["train", "--resume", str(run), "--steps", str(steps + 512), "--no-progress"]) == 0
    assert json.loads((run / "report.json").read_text())["steps"] == steps + 512
    assert not (run / LOCK_FILE).exists()


def test_the_lock_is_refused_in_process_too_and_leaves_no_directory_it_created(tmp_path):
    target = tmp_path / "new"
    with DirectoryLock(target):
        assert (target / LOCK_FILE).read_text().startswith(f"pid {os.getpid()}, since ")
        with pytest.raises(UsageError, match=rf"is in use by another heldout process \(pid {os.getpid()}, since"):
            with DirectoryLock(target):
                pass
    assert not target.exists()  # created for the lock, nothing written: removed with it
    kept = tmp_path / "kept"
    kept.mkdir()
    with DirectoryLock(kept):
        (kept / "file").write_text("x")
    assert sorted(p.name for p in kept.iterdir()) == ["file"]
