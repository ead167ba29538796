"""A run's directory: its config, where its files go, and the checks before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heldout import userfiles
from heldout.cli import UsageError
from heldout.evaluation import report, results
from heldout.trainer import config
from heldout.trainer.config import TrainConfig

CONFIG_FILE = "config.yaml"


CHECKPOINT = Path("checkpoints") / "latest.pt"


EVALUATIONS = "evaluations.jsonl"


PROBES = "probe.jsonl"


RESUMABLE = {"steps", "offline.updates", "device", "eval.final_episodes", "torch_threads", "probe.fit"}
"""Settings that ``--resume`` may change: none of them changes what the run learns so far
(``probe.fit``: how the probe is scored, not what it plays; runs from before it existed resume;
``offline.updates``: an offline agent's ``steps``)."""


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
    # a setting added after the run was saved holds its default there (runs from before it resume)
    a = {**{k: v for k, v in flat(config.to_dict(TrainConfig())).items() if k not in a}, **a}
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if k not in ignore and a.get(k) != b.get(k)]


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
        for records in (run_dir / EVALUATIONS, run_dir / PROBES):  # the resume rewrites them: a bad line now
            if records.exists():
                results.read_records(records)
        return
    if saved.exists() and (progressed or config.load_yaml(saved) != config.to_dict(cfg)):
        raise UsageError(
            f"run directory {run_dir} already holds a run; continue it with --resume {run_dir} "
            "or choose another --run-dir"
        )


def open_run_dir(run_dir: Path, cfg: TrainConfig, resume_step: int | None) -> None:
    """Create the run directory with its config, or, on resume, drop the evaluation and probe
    records written after the checkpoint (they will be written again); a bad record line is one
    error naming it, before either file is changed."""
    if resume_step is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(cfg, run_dir / CONFIG_FILE)
        for records in (run_dir / EVALUATIONS, run_dir / PROBES):
            records.unlink(missing_ok=True)
        return
    kept = {}
    for records in (run_dir / EVALUATIONS, run_dir / PROBES):
        if records.exists():
            steps = [record["steps"] for record in results.read_records(records)]
            lines = [line for line in userfiles.read_text(records, "record file").split("\n") if line.strip()]
            kept[records] = "".join(line + "\n" for line, step in zip(lines, steps) if step <= resume_step)
    for records, text in kept.items():
        report.write_text(records, text)
