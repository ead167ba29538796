"""SIGINT / SIGTERM during `heldout train`: a checkpoint at the next update, one line, exit 130 / 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heldout.cli import main

# Long enough never to finish on its own in these tests; 8 envs x 64 steps per update.
SLOW = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.num_envs", "6", "--eval.final_episodes", "6", "--torch_threads", "1",
    "--no-progress", "--steps", "10000000", "--checkpoint_interval", "0", "--env.test_levels", "test",
]  # fmt: skip
ROLLOUT = 8 * 64


def start(run: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    out, err = run.with_suffix(".out"), run.with_suffix(".err")
    cmd = [sys.executable, "-m", "heldout.cli", "train", *SLOW, *extra, "--run-dir", str(run)]
    proc = subprocess.Popen(
        cmd, stdout=out.open("w"), stderr=err.open("w"), env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    return proc, out, err


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_checkpoints_at_the_next_update_and_says_how_to_resume(tmp_path, capsys, sig, code, wait_for):
    run = tmp_path / "run"
    proc, _, err = start(run, "--eval.episodes", "6")
    wait_for(lambda: (run / "untrained.json").exists(), proc)
    time.sleep(1.0)  # let it train a little
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    lines = err.read_text().strip().splitlines()
    assert lines[-1].startswith(f"heldout train: stopped by {sig.name} at ")
    assert lines[-1].endswith(f"continue with: heldout train --resume {run}") and str(run) in lines[-1]
    assert not any("Traceback" in line for line in lines)

    state_steps = int(lines[-1].split(" at ")[1].split(" steps")[0].replace(",", ""))
    assert state_steps % ROLLOUT == 0 and not (run / "report.json").exists()
    # the checkpoint is a good one: the run continues from it to the end
    assert main(["train", "--resume", str(run), "--steps", str(state_steps + ROLLOUT), "--no-progress"]) == 0
    assert (run / "report.json").exists()
    assert f"{state_steps + ROLLOUT:,} steps" in capsys.readouterr().out


def test_a_second_signal_stops_at_once(tmp_path, wait_for):
    run = tmp_path / "run"
    # a long first rollout (8 x 50,000 steps): the first signal waits for its update, the second does not
    proc, out, err = start(run, "--eval.episodes", "6", "--ppo.n_steps", "50000")
    wait_for(lambda: (run / "untrained.json").exists(), proc)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "signal again to stop at once" in err.read_text(), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith("heldout train: stopped by SIGINT at once before the first checkpoint")
    assert f"--run-dir {run}" in last
    assert not (run / "checkpoints").exists()


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and not p.name.startswith("events.out.tfevents")}


def test_a_signal_in_set_up_stops_at_once_and_leaves_no_run_directory(tmp_path, wait_for):
    from heldout import envs
    from heldout.envs.maze.space import MazeLevelSpace

    space = MazeLevelSpace()
    levels = envs.get("maze").level_set("test", num_train_levels=25, level_seed=0).levels
    big = tmp_path / "many.txt"
    space.write_levels(list(levels) * 100, big)  # 20,000 levels: read and checked for seconds
    run = tmp_path / "run"
    proc, _, err = start(run, "--eval.episodes", "6", "--env.test_levels", f"test,{big}")
    wait_for(lambda: (run / ".heldout.lock").exists(), proc)  # the run holds its directory: set-up began
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 143 and time.time() - t0 < 5
    assert err.read_text().strip().splitlines()[-1].startswith(
        "heldout train: stopped by SIGTERM at once before the first checkpoint"
    )
    assert not run.exists()  # as before: nothing was written, the lock's directory is gone


def test_a_signal_in_the_untrained_evaluation_stops_at_once_with_only_the_config_written(tmp_path, wait_for):
    run = tmp_path / "run"
    proc, out, err = start(run, "--eval.episodes", "3000")
    wait_for(lambda: "heldout train:" in out.read_text(), proc)  # the announcement: the evaluation is next
    time.sleep(0.5)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130 and time.time() - t0 < 5
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith("heldout train: stopped by SIGINT at once before the first checkpoint; start again with")
    assert files(run) == {"config.yaml"}  # a run that may be started again as it says


def test_a_signal_in_the_final_evaluation_keeps_the_checkpoint_and_the_run_resumes(tmp_path, capsys, wait_for):
    run = tmp_path / "run"
    proc, _, err = start(run, "--eval.episodes", "6", "--steps", str(ROLLOUT), "--eval.final_episodes", "3000")
    wait_for(lambda: (run / "checkpoints" / "latest.pt").exists(), proc)  # the final checkpoint: evaluation next
    checkpoint = (run / "checkpoints" / "latest.pt").read_bytes()
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 143 and time.time() - t0 < 5
    last = err.read_text().strip().splitlines()[-1]
    assert last == (
        f"heldout train: stopped by SIGTERM at once; the last checkpoint in {run} is kept; "
        f"continue with: heldout train --resume {run}"
    )
    assert not (run / "report.json").exists() and not (run / "report.md").exists()
    assert (run / "checkpoints" / "latest.pt").read_bytes() == checkpoint
    assert main(["train", "--resume", str(run), "--eval.final_episodes", "6", "--no-progress"]) == 0
    assert (run / "report.json").exists() and f"{ROLLOUT:,} steps" in capsys.readouterr().out


def test_a_signal_in_dreds_fit_stops_at_once_and_leaves_no_run_directory(tmp_path, wait_for):
    run = tmp_path / "run"
    proc, out, err = start(run, "--eval.episodes", "6", "--train-levels", "6", "--sampler", "dred")
    wait_for(lambda: "fitting DRED's model" in out.read_text(), proc)
    time.sleep(0.5)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130 and time.time() - t0 < 5
    assert err.read_text().strip().splitlines()[-1].startswith("heldout train: stopped by SIGINT at once before")
    assert not run.exists()  # the fit's half-written TensorBoard logs went with it


def test_a_run_started_with_the_signal_blocked_still_stops_on_it(tmp_path, wait_for):
    """A child of a Ray worker inherits a mask that blocks SIGINT (``heldout sweep --backend ray``):
    the trainer unblocks it, else the sweep's stop request would wait forever."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "heldout.cli", "train", *SLOW, "--eval.episodes", "6", "--run-dir", str(run)]
    err = run.with_suffix(".err")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=err.open("w"),
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}),
    )  # fmt: skip
    try:
        wait_for(lambda: (run / "untrained.json").exists(), proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        proc.kill()  # never leave a 10M-step run behind
    assert err.read_text().strip().splitlines()[-1].startswith("heldout train: stopped by SIGINT at ")


def checkpoint_state(run: Path) -> dict:
    from heldout.envs.maze.space import MazeLevelSpace
    from heldout.trainer.checkpoint import load

    return load(run / "checkpoints" / "latest.pt", MazeLevelSpace())


def test_a_signal_in_the_periodic_probe_stops_at_once_with_the_probe_pending(tmp_path, wait_for):
    """The probe after the first update (1,000 steps on 25 levels: tens of seconds) is cut short: a
    checkpoint of the state before it, marked to run it on resume; probe.jsonl is not written."""
    run = tmp_path / "run"
    proc, _, err = start(run, "--eval.episodes", "6", "--eval.interval", str(ROLLOUT),
                         "--probe.interval", str(ROLLOUT), "--probe.steps", "1000")  # fmt: skip
    wait_for(lambda: (run / "evaluations.jsonl").exists(), proc)  # the periodic evaluation ended: the probe is next
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 143 and time.time() - t0 < 5
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith(f"heldout train: stopped by SIGTERM at {ROLLOUT:,} steps; checkpoint written in {run}")
    state = checkpoint_state(run)
    assert state["num_timesteps"] == ROLLOUT and state["pending"] == ["probe"] and state["last_eval_step"] == ROLLOUT
    assert not (run / "probe.jsonl").exists()
    assert [json.loads(line)["steps"] for line in (run / "evaluations.jsonl").read_text().splitlines()] == [ROLLOUT]


def test_a_signal_in_the_periodic_evaluation_checkpoints_and_the_resume_evaluates_again(tmp_path, wait_for):
    """SIGINT here, SIGTERM in the probe's test: both codes."""
    sig, code = signal.SIGINT, 130
    run = tmp_path / "run"
    proc, _, err = start(run, "--eval.episodes", "60", "--eval.interval", str(ROLLOUT))
    wait_for(lambda: (run / "untrained.json").exists(), proc)
    events = next((run / "tb").rglob("events.out.tfevents*"))
    size = events.stat().st_size
    wait_for(lambda: events.stat().st_size > size, proc)  # the first update's logs: the evaluation is next
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == code
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith(f"heldout train: stopped by {sig.name} at {ROLLOUT:,} steps; checkpoint written in {run}")
    state = checkpoint_state(run)
    assert state["num_timesteps"] == ROLLOUT and state["pending"] == ["eval"] and state["last_eval_step"] == 0
    assert not (run / "evaluations.jsonl").exists()
    # the resume runs the evaluation that was cut short, at the step it was due, once
    assert main(["train", "--resume", str(run), "--steps", str(ROLLOUT), "--no-progress"]) == 0
    lines = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [line["steps"] for line in lines] == [ROLLOUT] and lines[0]["train"]["episodes"] == 60
