"""``heldout sweep --backend ray``: each run is a Ray task that runs the same ``heldout train``
subprocess as the local backend, with ``num_cpus`` = the run's torch threads.

Without ``--address`` a local Ray instance starts on this machine; ``--address auto`` joins the
cluster this machine belongs to, ``--address ray://HOST:10001`` a remote one. The sweep directory
must be on storage every Ray node sees at the same path (runs write their directories and logs
there); the driver reads the reports from it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from heldout.cli import UsageError


def check(address: str | None) -> Callable[..., None]:
    """The launcher, once Ray is importable; a clear error when it is not."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("the ray backend needs Ray: pip install 'heldout[ray]'") from None
    return lambda *args: launch(address, *args)


def _run_task(command: list[str], log_path: str, env: dict[str, str]) -> int:
    """Inside a Ray worker: run one training subprocess; a cancellation stops it with SIGINT
    (the trainer then checkpoints and exits 130)."""
    with open(log_path, "a") as log:
        log.write(f"== heldout sweep (ray), {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command[3:])}\n")
        log.flush()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


def launch(address: str | None, sweep_dir: Path, runs: list, threads: int, stop: Any,
           started: Callable, finished: Callable, train_command: Callable, child_env: Callable) -> None:
    """Submit every run as a task; report each as it ends; on a stop signal cancel the rest
    (running ones checkpoint) and wait for them."""
    import ray

    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(log_to_driver=False, include_dashboard=False)
    try:
        task = ray.remote(num_cpus=threads)(_run_task)
        pending = {}
        for run in runs:
            ref = task.remote(train_command(sweep_dir, run), str(sweep_dir / "logs" / f"{run.name}.log"),
                              child_env(threads))
            pending[ref] = (run, time.time())
            started(run)
        cancelled = False
        while pending:
            if stop.signum is not None and not cancelled:
                for ref in pending:
                    ray.cancel(ref)
                cancelled = True
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                run, t0 = pending.pop(ref)
                try:
                    code = ray.get(ref)
                except (ray.exceptions.TaskCancelledError, ray.exceptions.RayTaskError):
                    code = 130 if cancelled else 1
                finished(run, code, time.time() - t0)
    finally:
        ray.shutdown()
