"""A run's directory: its config, where its files go, and the checks before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from heldout import userfiles
from heldout.cli import UsageError
from heldout.evaluation import report
from heldout.trainer import config
from heldout.trainer.config import TrainConfig

CONFIG_FILE = "config.yaml"


CHECKPOINT = Path("checkpoints") / "latest.pt"


EVALUATIONS = "evaluations.jsonl"


PROBES = "probe.jsonl"


RESUMABLE = {"steps", "device", "eval.final_episodes", "torch_threads", "probe.fit"}
"""Settings that ``--resume`` may change: none of them changes what the run learns so far
(``probe.fit``: how the probe is scored, not what it plays; runs from before it existed resume)."""


def read_run_config(run_dir: Path, flag: str) -> TrainConfig:
    """The validated config saved in a run directory (``flag`` names the path's origin in messages)."""
    saved = run_dir / CONFIG_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{flag} {run_dir} is a file; give the run directory that holds {CONFIG_FILE}")
    if not saved.is_file():
        raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the {flag} path")
    data = config.load_yaml(saved)
    if not data:
        raise UsageError(f"{saved} is empty, but it must hold the run's whole config; restore it from a copy")
    try:
        cfg = config.from_dict(data)
        cfg.validate()
    except ValueError as err:
        raise UsageError(f"{saved} is not a valid run config: {err}; restore it from a copy") from None
    return cfg


def config_differences(saved: dict[str, Any], cfg: TrainConfig, ignore: set[str] = frozenset()) -> list[str]:
    """``name: saved -> current`` for every setting (not in ``ignore``) that differs."""

    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(tree, dict) or (prefix and prefix[:-1] in leaves):
            return {prefix[:-1]: tree}
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out

    leaves = {name for name, _, _ in config.leaf_fields(TrainConfig)}
    a, b = flat(saved), flat(config.to_dict(cfg))
    # A setting added after the run was saved is no difference while it keeps its default (which
    # is what the run ran with), so older runs still resume.
    defaults = flat(config.to_dict(TrainConfig()))
    added = {k for k in set(b) - set(a) if k in defaults and b[k] == defaults[k]}
    keys = sorted((set(a) | set(b)) - added)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if k not in ignore and a.get(k) != b.get(k)]


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run that already progressed or to resume one that cannot be.

    A directory holding only this very config (a run stopped before its first checkpoint)
    may be started again. Writes nothing.
    """
    saved = run_dir / CONFIG_FILE
    try:
        userfiles.check_dir_path(run_dir, "run directory")
    except ValueError as err:
        raise UsageError(str(err)) from None
    progressed = (run_dir / CHECKPOINT).exists() or (run_dir / "report.json").exists()
    if resume:
        if not saved.is_file():
            raise UsageError(f"{run_dir} holds no heldout run ({CONFIG_FILE} is missing); check the path")
        if (run_dir / CHECKPOINT).is_dir():
            raise UsageError(
                f"{run_dir / CHECKPOINT} is a directory, not a checkpoint file; put the run's checkpoint file "
                f"back there, or start the run afresh in a new --run-dir"
            )
        if not (run_dir / CHECKPOINT).exists():
            raise UsageError(
                f"{run_dir} has no checkpoint (the run stopped before writing one); start it again with "
                f"heldout train --config {saved} --run-dir {run_dir}"
            )
        return
    if saved.exists() and (progressed or config.load_yaml(saved) != config.to_dict(cfg)):
        raise UsageError(
            f"run directory {run_dir} already holds a run; continue it with --resume {run_dir} "
            "or choose another --run-dir"
        )


def open_run_dir(run_dir: Path, cfg: TrainConfig, resume_step: int | None) -> None:
    """Create the run directory with its config, or, on resume, drop the evaluation and probe
    records written after the checkpoint (they will be written again)."""
    if resume_step is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(cfg, run_dir / CONFIG_FILE)
    for records in (run_dir / EVALUATIONS, run_dir / PROBES):
        if resume_step is None:
            records.unlink(missing_ok=True)
        elif records.exists():
            kept = [line for line in records.read_text().splitlines() if json.loads(line)["steps"] <= resume_step]
            report.write_text(records, "".join(line + "\n" for line in kept))
