"""A write that fails (here: past the file-size limit, as a full disk would) ends a run with one line
naming the file and the cause, exit code 74, and the file that was there before intact."""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from heldout import safe_write
from heldout.cli import main

FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.num_envs", "6", "--eval.episodes", "6", "--eval.final_episodes", "6",
    "--torch_threads", "1", "--no-progress", "--env.test_levels", "test",
]  # fmt: skip


def limited(max_bytes: int):
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return setup


def test_a_checkpoint_past_the_file_size_limit_is_one_line_exit_74_and_the_old_one_is_kept(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *FAST, "--steps", "512", "--run-dir", str(run)]) == 0
    ckpt = run / "checkpoints" / "latest.pt"
    before = {p: p.read_bytes() for p in (ckpt, run / "report.json", run / "report.md", run / "untrained.json")}
    cmd = [sys.executable, "-m", "heldout.cli", "train", "--resume", str(run), "--steps", "1024", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=limited(len(before[ckpt]) // 2))
    assert result.returncode == safe_write.EXIT_CODE == 74, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"heldout train: error: cannot write {ckpt}: File too large (EFBIG); the file would pass the file-size "
        "limit (`ulimit -f`): raise the limit, then run the command again (the previous file is kept)"
    )
    assert not any("Traceback" in line for line in lines)
    assert {p: p.read_bytes() for p in before} == before  # the previous checkpoint and report intact
    assert not list(run.rglob("*.tmp"))


def test_appending_a_record_that_does_not_fit_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    path.write_text('{"steps": 1}\n')
    code = (
        "import sys; from heldout import safe_write\n"
        "try:\n    safe_write.append_text(sys.argv[1], 'x' * 5000)\n"
        "except safe_write.WriteError as err:\n    print(err.errno); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                            preexec_fn=limited(2000))  # fmt: skip
    assert result.returncode == 3 and int(result.stdout) == errno.EFBIG, result.stderr
    assert path.read_text() == '{"steps": 1}\n'  # the part that fitted was cut back off


def test_an_io_error_while_syncing_names_the_path_and_keeps_the_file(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(safe_write.os, "fsync", failing_fsync)
    with pytest.raises(safe_write.WriteError) as caught:
        safe_write.replace_text(target, "new")
    assert str(caught.value) == (
        f"cannot write {target}: Input/output error (EIO); the disk reported an I/O error: check the disk, "
        "then run the command again (the previous file is kept)"
    )
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_diverged_update_stops_naming_it_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from heldout.trainer.run import train

    class Poison(BaseCallback):
        """Turns one weight into NaN in the third rollout: its update then diverges."""

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if self.model.num_timesteps == 3 * 512:
                with torch.no_grad():
                    next(self.model.policy.parameters()).view(-1)[0] = float("nan")

    run = tmp_path / "run"
    assert main(["train", *FAST, "--steps", "1024", "--run-dir", str(run)]) == 0  # a good run of two updates
    ckpt = run / "checkpoints" / "latest.pt"
    good = ckpt.read_bytes()
    from heldout.trainer import rundir

    cfg = rundir.read_run_config(run, "--resume")
    cfg.steps = 4096
    with pytest.raises(Exception) as caught:
        train(cfg, run, resume=True, progress=False, callback=Poison())
    message = str(caught.value)
    assert message.startswith("training diverged at update 3 (1,536 steps): ")
    assert "; lower --ppo.lr (now 0.0005) or --ppo.max_grad_norm" in message and "\n" not in message
    assert message.endswith(f"the last good checkpoint {ckpt} is kept")
    assert ckpt.read_bytes() == good


def limited_run(argv: list[str], max_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "heldout.cli", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=cwd, preexec_fn=limited(max_bytes))


def assert_one_line_74(result: subprocess.CompletedProcess, command: str, path: Path | str) -> None:
    assert result.returncode == 74, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith(f"heldout {command}: error: cannot write {path}: File too large (EFBIG); ")


def test_tensorboard_events_past_the_file_size_limit_stop_the_run_with_one_line_exit_74(tmp_path):
    """TensorBoard's writer thread fails on its own; the trainer stops at its next write (no thread
    traceback on stderr), and the files written before (config, untrained evaluation) are intact."""
    run = tmp_path / "run"
    result = limited_run(["train", *FAST, "--steps", "1000000", "--checkpoint_interval", "0", "--run-dir", str(run)],
                         6000, tmp_path)  # fmt: skip
    events = next((run / "tb").glob("events.out.tfevents*"))
    assert_one_line_74(result, "train", events)
    assert events.stat().st_size == 6000  # every record up to the limit is there
    assert json.loads((run / "untrained.json").read_text())["train"]["episodes"] == 6
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "tb", "untrained.json"]


def test_a_level_file_past_the_file_size_limit_is_one_line_exit_74_and_the_old_file_is_kept(tmp_path):
    target = tmp_path / "levels.txt"
    target.write_text("#####\n#>.G#\n#####\n")
    result = limited_run(["maze", "save", "train", str(target), "--num-train-levels", "200"], 10_000, tmp_path)
    assert_one_line_74(result, "maze", target)
    assert target.read_text() == "#####\n#>.G#\n#####\n" and sorted(p.name for p in tmp_path.iterdir()) == ["levels.txt"]
    assert main(["maze", "save", "train", str(target), "--num-train-levels", "200"]) == 0  # without the limit it fits
    assert target.read_text().count("\n\n") == 199


def test_a_dred_model_past_the_file_size_limit_is_one_line_exit_74_and_the_old_model_is_kept(tmp_path):
    out = tmp_path / "m.pt"
    fit = ["dred", "fit", "--env", "maze", "--train-levels", "6", "--set",
           "{max_epochs: 5, latent_dim: 8, hidden_dim: 32, channels: 8}", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(fit) == 0
    model = out.read_bytes()
    result = limited_run([*fit[:-3], "--level-seed", "1", *fit[-3:]], len(model) // 2, tmp_path)
    assert_one_line_74(result, "dred", out)
    assert out.read_bytes() == model and not list(tmp_path.glob(".*.tmp"))
