"""``heldout sweep``: run every method x seed of a sweep, each as an ordinary ``heldout train`` run.

A sweep directory holds one run directory per run, their configs (``configs/``), their logs
(``logs/``) and ``sweep.json``, the index: the spec and, per run, its name, method, seed,
overrides, status (pending, running, finished, failed), error and wall time. Started again, a
sweep skips finished runs, resumes runs that have a checkpoint and starts the rest; a failed run
is recorded with the last line of its log and the others go on.

Runs are subprocesses (``python -m heldout.cli train``) with one torch thread each (the spec's
``torch_threads``), so they are isolated from each other and from the sweep. Backends:
``local`` (worker processes on this machine) and ``ray`` (:mod:`heldout.experiments.ray_backend`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from heldout.cli import UsageError, command_parser
from heldout.evaluation import report
from heldout.trainer import config, rundir
from heldout.trainer.command import add_settings, overrides
from heldout.trainer.lock import DirectoryLock
from heldout.experiments import spec as specs
from heldout.experiments.spec import PlannedRun
from heldout.evaluation.results import is_finished  # a corrupt report is an error, not "pending"

INDEX = "sweep.json"
FORMAT = 1


# -- the index ---------------------------------------------------------------------------------


def train_command(sweep_dir: Path, run: PlannedRun) -> list[str]:
    """The ``heldout train`` command that starts or resumes ``run``."""
    run_dir = sweep_dir / run.name
    base = [sys.executable, "-m", "heldout.cli", "train", "--no-progress"]
    if (run_dir / rundir.CHECKPOINT).is_file():
        return [*base, "--resume", str(run_dir)]
    return [*base, "--config", str(sweep_dir / "configs" / f"{run.name}.yaml"), "--run-dir", str(run_dir)]


def check_existing(run: PlannedRun, run_dir: Path) -> None:
    """Refuse a run directory that holds a run of another config (the sweep file changed)."""
    saved = run_dir / rundir.CONFIG_FILE
    if not saved.exists():
        return
    differences = rundir.config_differences(config.load_yaml(saved), run.cfg)
    if differences:
        raise UsageError(
            f"{run_dir} holds a run of another config ({differences[0]}); the sweep's settings changed: "
            "restore them, or start the changed sweep in a new --sweep-dir"
        )


class Index:
    """``sweep.json``: rewritten atomically whenever a run changes status."""

    def __init__(self, sweep_dir: Path, spec: dict[str, Any], runs: list[PlannedRun]) -> None:
        self.path = sweep_dir / INDEX
        previous = {}
        if self.path.exists():
            try:
                previous = {r["name"]: r for r in report.read_json(self.path).get("runs", [])}
            except (ValueError, KeyError, TypeError, AttributeError):
                raise UsageError(f"{self.path} is not a sweep index; move it away or choose another --sweep-dir") from None
        self.spec = spec
        self.entries = {}
        for run in runs:
            old = previous.get(run.name, {})
            self.entries[run.name] = {
                "name": run.name,
                "method": run.method,
                "seed": run.seed,
                "overrides": run.overrides,
                "status": "finished" if is_finished(sweep_dir / run.name) else "pending",
                "error": None,
                "wall_time_s": old.get("wall_time_s"),
            }

    def update(self, name: str, **fields: Any) -> None:
        self.entries[name].update(fields)
        self.write()

    def write(self) -> None:
        report.write_json(self.path, {"heldout_sweep": FORMAT, "spec": self.spec, "runs": list(self.entries.values())})


# -- running -----------------------------------------------------------------------------------


def last_line(log: Path) -> str:
    """The last non-empty line of a run's log: its error when it failed."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "exited without output"


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


class Stop:
    """SIGINT / SIGTERM: remember the signal; the backend passes it on to the runs once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __enter__(self) -> "Stop":
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


Finished = Callable[[PlannedRun, int, float], None]
"""Called as each run ends: (run, exit code, wall seconds)."""


def run_local(sweep_dir: Path, runs: list[PlannedRun], workers: int, threads: int, stop: Stop,
              started: Callable[[PlannedRun], None], finished: Finished) -> None:
    """Run ``runs`` in ``workers`` subprocesses at a time; on a stop signal, pass it on and wait."""
    queue = list(runs)
    active: dict[subprocess.Popen, tuple[PlannedRun, float, Any]] = {}
    forwarded = False
    while queue or active:
        while queue and len(active) < workers and stop.signum is None:
            run = queue.pop(0)
            log = open(sweep_dir / "logs" / f"{run.name}.log", "a")
            log.write(f"== heldout sweep, {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(train_command(sweep_dir, run)[3:])}\n")
            log.flush()
            # a session of its own: a terminal's Ctrl-C reaches the sweep only, which passes it on once
            proc = subprocess.Popen(train_command(sweep_dir, run), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=child_env(threads), start_new_session=True)
            active[proc] = (run, time.time(), log)
            started(run)
        if stop.signum is not None and not forwarded:
            for proc in active:
                proc.send_signal(stop.signum)
            forwarded, queue = True, []
        time.sleep(0.2)
        for proc in [p for p in active if p.poll() is not None]:
            run, t0, log = active.pop(proc)
            log.close()
            finished(run, proc.returncode, time.time() - t0)


def sweep(spec: dict[str, Any], sweep_dir: Path, *, workers: int | None = None, backend: str = "local",
          address: str | None = None, source: str = "sweep", folder: Path | None = None) -> int:
    """Run the sweep; returns 0 when every run finished, 1 when some failed, 130/143 when stopped."""
    try:
        runs = specs.plan(spec, source, folder)
    except ValueError as err:
        raise UsageError(str(err)) from None
    threads = runs[0].cfg.torch_threads
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}; leave it out for one per {threads} core(s)")
    workers = workers if workers is not None else max(1, (os.cpu_count() or 1) // threads)
    if backend not in ("local", "ray"):
        raise UsageError(f"unknown backend {backend!r}; use local or ray")
    launch = None
    if backend == "ray":
        from heldout.experiments import ray_backend

        launch = ray_backend.check(address)
    with DirectoryLock(sweep_dir, "sweep directory"):  # one sweep at a time; each run locks its own directory
        return _sweep(spec, sweep_dir, runs, workers, threads, backend, launch)


def _sweep(spec: dict[str, Any], sweep_dir: Path, runs: list[PlannedRun], workers: int, threads: int,
           backend: str, launch: Any) -> int:
    for run in runs:
        check_existing(run, sweep_dir / run.name)
    index = Index(sweep_dir, spec, runs)
    (sweep_dir / "configs").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "logs").mkdir(exist_ok=True)
    for run in runs:
        path = sweep_dir / "configs" / f"{run.name}.yaml"
        if not path.exists() or config.load_yaml(path) != config.to_dict(run.cfg):
            config.save_yaml(run.cfg, path)
    index.write()
    todo = [r for r in runs if index.entries[r.name]["status"] != "finished"]
    print(f"heldout sweep: {len(runs)} runs in {sweep_dir} ({len(runs) - len(todo)} finished before); "
          f"{len(todo)} to run on {backend} with {workers if backend == 'local' else 'Ray'} workers", flush=True)

    def started(run: PlannedRun) -> None:
        index.update(run.name, status="running", error=None)
        print(f"  start   {run.name}", flush=True)

    def finished(run: PlannedRun, code: int, seconds: float) -> None:
        wall = (index.entries[run.name]["wall_time_s"] or 0.0) + seconds
        if code == 0 and is_finished(sweep_dir / run.name):
            index.update(run.name, status="finished", error=None, wall_time_s=wall)
            print(f"  done    {run.name} ({seconds / 60:.1f} min)", flush=True)
        elif code in (130, 143):
            index.update(run.name, status="pending", error=None, wall_time_s=wall)
            print(f"  stopped {run.name} (resumes from its checkpoint next time)", flush=True)
        else:
            error = last_line(sweep_dir / "logs" / f"{run.name}.log")
            index.update(run.name, status="failed", error=error, wall_time_s=wall)
            print(f"  FAILED  {run.name}: {error}", flush=True)

    with Stop() as stop:
        if launch is not None:
            launch(sweep_dir, todo, threads, stop, started, finished, train_command, child_env)
        else:
            run_local(sweep_dir, todo, workers, threads, stop, started, finished)
    print(summary(index))
    if stop.signum is not None:
        print(f"heldout sweep: stopped; start it again to continue: heldout sweep --sweep-dir {sweep_dir} ...",
              file=sys.stderr)
        return 128 + stop.signum
    return 1 if any(e["status"] == "failed" for e in index.entries.values()) else 0


def summary(index: Index) -> str:
    """One line per run: status, wall time and, for failures, the error."""
    lines = ["", f"{'run':<28} {'status':<9} {'minutes':>7}  error"]
    for e in index.entries.values():
        minutes = f"{e['wall_time_s'] / 60:.1f}" if e["wall_time_s"] else "-"
        lines.append(f"{e['name']:<28} {e['status']:<9} {minutes:>7}  {e['error'] or ''}")
    counts = {s: sum(e["status"] == s for e in index.entries.values()) for s in ("finished", "failed", "pending")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def spec_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The sweep spec from a file and/or the command line (the command line wins)."""
    spec: dict[str, Any] = {}
    source = "command line"
    if args.spec:
        spec = specs.load(args.spec)
        source = args.spec
    try:
        base = dict(specs.base_settings(spec, source))
    except ValueError as err:
        raise UsageError(str(err)) from None
    base.update(overrides(args))
    if base:
        spec["base"] = base
    for item in args.grid or []:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UsageError(f"bad --grid {item!r}; write KEY=V1,V2 such as sampler.name=uniform,plr")
        spec.setdefault("grid", {})[key] = [v for v in values.split(",") if v]
    if args.seeds is not None:
        spec["seeds"] = args.seeds.split(",") if "," in args.seeds else args.seeds
    if args.preset:
        spec["preset"] = args.preset
    return spec, source


def run(args: argparse.Namespace) -> int:
    spec, source = spec_from_args(args)
    sweep_dir = args.sweep_dir or spec.get("sweep_dir")
    if not sweep_dir:
        raise UsageError("say where the sweep goes: --sweep-dir DIR (or sweep_dir: in the sweep file)")
    spec.pop("sweep_dir", None)
    folder = Path(args.spec).parent if args.spec else None
    return sweep(spec, Path(sweep_dir), workers=args.workers, backend=args.backend, address=args.address,
                 source=source, folder=folder)


def add_command(sub: argparse._SubParsersAction) -> None:
    p = command_parser(
        sub, "sweep", "run methods x seeds, each an ordinary training run (local processes or Ray)", __doc__
    )
    p.add_argument("spec", nargs="?", metavar="SWEEP.yaml", help="a sweep file (see heldout.experiments.spec)")
    p.add_argument("--sweep-dir", metavar="DIR", help="where the runs and sweep.json go")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="a setting and its values (repeatable)")
    p.add_argument("--seeds", metavar="N|S1,S2", help="how many seeds (0..N-1), or a list of seeds")
    p.add_argument("--workers", type=int, metavar="N", help="runs at once (local; default: cores / threads per run)")
    p.add_argument("--backend", default="local", choices=("local", "ray"), help="where runs execute (default local)")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (auto, ray://HOST:10001); default: a local Ray")
    p.add_argument("--preset", choices=sorted(config.PRESETS), help="starting config of every run")
    add_settings(p, "base settings of every run (as for heldout train)")
    p.set_defaults(func=run)
