"""Kill anywhere: SIGKILL a small `heldout train` run at random moments, resume it, compare reports.

An uninterrupted run gives the reference report. Then each of ``--kills`` runs is started, killed
with SIGKILL at a moment drawn uniformly over the reference run's wall time (so kills land in
set-up, DRED's fit with ``--dred``, the untrained evaluation, checkpoint writes, periodic
evaluations and the final evaluation alike), and continued the way a user would: ``--resume``
when a checkpoint exists, else started again from its ``config.yaml`` or from scratch. Every
resumed run's final report must equal the reference value for value (train, test, gap,
held-out sets, untrained baseline, steps). Exit code 0 when all are identical.

    python bench/kill_anywhere.py                  # the measurement: 10 kills
    python bench/kill_anywhere.py --kills 10 --dred
    python bench/kill_anywhere.py --kills 2 --quick   # what the CI test runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = [
    "--env", "maze", "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.num_envs", "2", "--eval.episodes", "4", "--eval.final_episodes", "4",
    "--eval.interval", "256", "--network.features_dim", "16", "--train-levels", "5", "--env.test_levels", "test",
    "--torch_threads", "1", "--no-progress", "--checkpoint_interval", "1",
]  # fmt: skip
DRED = ["--sampler", "dred", "--sampler.params", "{fit: {max_epochs: 40, patience: 40}, generation_batch: 4}"]
COMPARED = ("steps", "untrained", "train", "test", "gap", "test_sets")


def heldout(*args: str) -> list[str]:
    return [sys.executable, "-m", "heldout.cli", "train", *args]


def compared(run_dir: Path) -> dict:
    report = json.loads((run_dir / "report.json").read_text())
    return {key: report.get(key) for key in COMPARED}


def finish(run_dir: Path, fresh: list[str], env: dict[str, str]) -> int:
    """Continue a killed run as a user would; the command's exit code."""
    if (run_dir / "checkpoints" / "latest.pt").is_file():
        cmd = heldout("--resume", str(run_dir), "--no-progress")
    elif (run_dir / "config.yaml").is_file():
        cmd = heldout("--config", str(run_dir / "config.yaml"), "--run-dir", str(run_dir), "--no-progress")
    else:
        cmd = fresh
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="runs to kill and resume (default 10)")
    parser.add_argument("--steps", type=int, default=1536, help="steps of each run (default 1536)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--dred", action="store_true", help="train with DRED, so that kills also land in its fit")
    parser.add_argument("--quick", action="store_true", help="fewer steps (512): what the CI test runs")
    parser.add_argument("--workdir", help="where the runs go (default: a temporary directory)")
    args = parser.parse_args(argv)
    steps = 512 if args.quick else args.steps
    settings = [*RUN, "--steps", str(steps), *(DRED if args.dred else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        reference = work / "reference"
        t0 = time.time()
        done = subprocess.run(heldout(*settings, "--run-dir", str(reference)), stdout=subprocess.DEVNULL, env=env)
        wall = time.time() - t0
        if done.returncode != 0:
            print(f"kill_anywhere: the reference run failed (exit {done.returncode})", file=sys.stderr)
            return 1
        expected = compared(reference)
        print(f"reference run: {wall:.1f} s; killing {args.kills} runs at random moments within it")
        same = 0
        for i in range(args.kills):
            run_dir = work / f"killed-{i}"
            fresh = heldout(*settings, "--run-dir", str(run_dir))
            at = rng.uniform(0.0, wall)
            proc = subprocess.Popen(fresh, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                proc.wait(timeout=at)
                killed = "finished before the kill"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed = "killed"
            code = finish(run_dir, fresh, env) if killed == "killed" else proc.returncode
            ok = code == 0 and (run_dir / "report.json").is_file() and compared(run_dir) == expected
            same += ok
            print(f"  run {i}: {killed} at {at:5.1f} s, resumed with exit {code}: {'identical' if ok else 'DIFFERENT'}")
        print(f"{same}/{args.kills} final reports identical to the uninterrupted run")
        return 0 if same == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
