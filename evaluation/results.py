"""Reading the files runs and sweeps leave behind (``report.json``, ``sweep.json``, ``evaluations.jsonl``)
with checks that name the file and the problem.

A corrupt file, one that holds a list where a mapping belongs or lacks what its readers use is a
:class:`~heldout.cli.UsageError` (one line, exit 2), never a ``KeyError``/``TypeError``
traceback, and never taken for an unfinished run: only a report that says it is not finished
(or no report) is unfinished.
"""

from __future__ import annotations

import json
from numbers import Real
from pathlib import Path
from typing import Any

from heldout import userfiles
from heldout.cli import UsageError

REPORT = "report.json"


class BadFile(UsageError):
    """A results file that is corrupt or not what heldout writes there."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        super().__init__(f"{path} {problem}; {fix}")


REPORT_FIX = "restore it from a copy, or leave this run out"
INDEX_FIX = "restore it from a copy (`heldout sweep` rewrites it when run again on the same sweep file)"
RECORD_FIX = "restore it from a copy, or delete the line"


def _json(text: str, path: Path, fix: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BadFile(path, f"{where}is corrupt (not valid JSON: {err.msg} at column {err.colno})"
                      if where else f"is corrupt (not valid JSON: {err.msg} at line {err.lineno} column {err.colno})",
                      fix) from None  # fmt: skip


def _mapping(value: Any, path: Path, what: str, fix: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else type(value).__name__
        raise BadFile(path, f"holds {kind} where {what} belongs (a JSON object)", fix)
    return value


def _mean(entry: Any, path: Path, key: str, fix: str, where: str) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("mean"), Real) or isinstance(entry.get("mean"), bool):
        raise BadFile(path, f"{where}has no number at {key}.mean", fix)


def check_scores(data: dict[str, Any], path: Path, fix: str, where: str = "") -> None:
    """The scores :mod:`heldout.experiments.compare` reads: ``train``, then each held-out set's
    ``score`` and ``gap`` (``test_sets``; older reports: ``test`` and ``gap``), each with a ``mean``."""
    _mean(data.get("train"), path, "train", fix, where)
    sets = data.get("test_sets")
    if sets is None:
        _mean(data.get("test"), path, "test", fix, where)
        _mean(data.get("gap"), path, "gap", fix, where)
        return
    if not isinstance(sets, dict) or not sets:
        raise BadFile(path, f"{where}has no held-out sets at test_sets (a JSON object of sets)", fix)
    for name, entry in sets.items():
        if not isinstance(entry, dict):
            raise BadFile(path, f"{where}has no scores for held-out set {name!r} at test_sets.{name}", fix)
        _mean(entry.get("score"), path, f"test_sets.{name}.score", fix, where)
        _mean(entry.get("gap"), path, f"test_sets.{name}.gap", fix, where)


def read_report(path: str | Path) -> dict[str, Any]:
    """A run's ``report.json``, checked: a mapping with ``finished``, its scores and, if given, a
    ``config`` mapping (whose ``agent``, ``sampler`` and ``env`` label the run)."""
    path = Path(path)
    data = _mapping(_json(userfiles.read_text(path, "report"), path, REPORT_FIX), path, "a run's report", REPORT_FIX)
    if "finished" not in data:
        raise BadFile(path, "has no 'finished' entry: it is not a report heldout wrote", REPORT_FIX)
    cfg = data.get("config", {})
    if not isinstance(cfg, dict) or any(not isinstance(cfg.get(key, {}), dict) for key in ("sampler", "env")):
        raise BadFile(path, "has a config that is not a mapping of settings (config, config.sampler, config.env)", REPORT_FIX)
    check_scores(data, path, REPORT_FIX)
    return data


def is_finished(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a report that says so; False without a report; a report that
    cannot be read raises :class:`BadFile` (corrupt is not unfinished)."""
    path = Path(run_dir) / REPORT
    return path.is_file() and bool(read_report(path)["finished"])


def read_index(path: str | Path) -> list[dict[str, Any]]:
    """The run entries of a ``sweep.json``, checked: each a mapping whose ``name`` (a directory name
    in the sweep, no path), ``method`` and ``status`` are strings."""
    path = Path(path)
    data = _mapping(_json(userfiles.read_text(path, "sweep index"), path, INDEX_FIX), path, "a sweep index", INDEX_FIX)
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise BadFile(path, "has no list of runs at 'runs'", INDEX_FIX)
    for i, entry in enumerate(runs):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(key), str) for key in ("name", "method", "status")):
            raise BadFile(path, f"run {i + 1} in 'runs' lacks a name, method or status (strings)", INDEX_FIX)
        name = entry["name"]
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise BadFile(path, f"run {i + 1} in 'runs' has the name {name!r}, which is not a directory name", INDEX_FIX)
    return runs


def read_records(path: str | Path, scores: bool = False) -> list[dict[str, Any]]:
    """The lines of ``evaluations.jsonl`` or ``probe.jsonl`` (blank lines skipped), checked: each a
    JSON object with an integer ``steps`` (and, for ``scores``, the scores of :func:`check_scores`);
    a bad line is named by its number."""
    path = Path(path)
    records = []
    for number, line in enumerate(userfiles.read_text(path, "record file").split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number} "
        data = _json(line, path, RECORD_FIX, where)
        if not isinstance(data, dict):
            raise BadFile(path, f"{where}holds {type(data).__name__} where a record (a JSON object) belongs", RECORD_FIX)
        if not isinstance(data.get("steps"), int) or isinstance(data.get("steps"), bool):
            raise BadFile(path, f"{where}has no whole number at 'steps'", RECORD_FIX)
        if scores:
            check_scores(data, path, RECORD_FIX, where)
        records.append(data)
    return records
