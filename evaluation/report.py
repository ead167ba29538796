"""The run report: ``report.json`` (for programs) and ``report.md`` (for people).

``train``, ``test`` and ``gap`` each hold ``mean``, ``ci_low`` and ``ci_high`` in the
environment's score unit (raw return, or solve rate for mazes), with the raw return and,
where the environment defines one, the normalised score beside them. ``test`` and ``gap``
are the first held-out set's; ``test_sets`` holds every held-out set by name (its ``score``,
its ``gap`` and, for a set of named levels, ``per_level``), for the trained agent and under
``untrained`` for the untrained one.
"""

from __future__ import annotations

import json
import math
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from heldout import safe_write
from heldout.trainer import config
from heldout.envs import EnvFamily, LevelSet

PACKAGES = ("heldout", "torch", "stable-baselines3", "gymnasium", "numpy", "procgen-mirror", "minari")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (:func:`heldout.safe_write.replace_text`)."""
    safe_write.replace_text(path, text)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(_plain(data), indent=2) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def append_jsonl(path: Path, data: Any) -> None:
    """Append one JSON line; a failed write leaves the file as it was (:func:`heldout.safe_write.append_text`)."""
    safe_write.append_text(path, json.dumps(_plain(data)) + "\n")


def describe_level_set(levels: LevelSet) -> dict[str, Any]:
    return {"name": levels.name, "size": len(levels) if levels.finite else None, "notes": levels.notes}


def build(
    cfg: config.TrainConfig,
    *,
    family: EnvFamily,
    final: dict[str, Any],
    untrained: dict[str, Any],
    steps: int,
    wall_time: float,
    level_sets: dict[str, LevelSet],
    probe: dict[str, Any] | None = None,
    offline: dict[str, Any] | None = None,
    partner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report; ``offline``: an offline run's agent, updates and dataset (:meth:`OfflineData.describe`);
    ``partner``: entries of the run's other players (PAIRED: ``antagonist``, its final scores)."""
    result = {
        "env": family.name,
        "score_unit": family.score_unit,
        "steps": int(steps),
        "wall_time_s": round(float(wall_time), 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "train": final["train"],
        "test": final["test"],
        "gap": final["gap"],
        "test_sets": final["test_sets"],
        "untrained": {
            "train": untrained["train"],
            "test": untrained["test"],
            "gap": untrained["gap"],
            "test_sets": untrained.get("test_sets", {}),  # absent in runs started before several sets
        },
        "level_sets": {k: describe_level_set(v) for k, v in level_sets.items()},
        "config": config.to_dict(cfg),
        "versions": versions(),
    }
    if probe is not None:
        result["probe"] = probe
    if offline is not None:
        result["offline"] = offline
    if partner is not None:
        result.update(partner)
    return result


def dataset_line(result: dict[str, Any]) -> str:
    """An offline run's agent and dataset in one line: size, levels, the policy that played."""
    off = result["offline"]
    d = off["dataset"]
    return (
        f"{off['agent']}: {off['updates']:,} updates on dataset {d['path']} ({d['transitions']:,} transitions, "
        f"{d['episodes']:,} episodes on {d['levels']} levels of {d['level_set']}; played by {d['policy']}, "
        f"mean return {d['mean_return']:.3f})"
    )


def antagonist_line(result: dict[str, Any]) -> str:
    """PAIRED's antagonist's final scores in one line."""
    a, unit = result["antagonist"], result["score_unit"]
    return f"antagonist (PAIRED): train {unit} {_fmt(a['train'])}, test {_fmt(a['test'])}, gap {_fmt(a['gap'])}"


def probe_line(result: dict[str, Any]) -> str:
    """The level-identity probe of a run that had one, in one line."""
    p = result["probe"]
    return (
        f"level-identity probe ({p['levels']} training levels): accuracy {p['accuracy']:.3f} (chance {p['chance']:.3f}), "
        f"bound log N - CE = {math.log(p['levels']):.3f} - {p['cross_entropy']:.3f} = {p['bound']:.3f} nats; "
        f"shuffled-label control: accuracy {p['control']['accuracy']:.3f}, "
        f"bound {p['control']['bound']:.3f}"
    )


def _fmt(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.3f} [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"


def markdown(result: dict[str, Any]) -> str:
    unit = result["score_unit"]
    lines = [
        f"# heldout run: {result['env']}",
        "",
        (f"Offline, {dataset_line(result)}, in {result['wall_time_s']:.0f} s. " if result.get("offline") else
         f"{result['steps']:,} environment steps in {result['wall_time_s']:.0f} s. ")
        + f"Scores are {unit}s with 95% intervals that respect how the episodes were drawn:",
        "",
        *interval_lines(result),
        "",
        "| | train levels | held-out test levels | gap (train - test) |",
        "|---|---|---|---|",
        f"| trained agent, {unit} | {_fmt(result['train'])} | {_fmt(result['test'])} | {_fmt(result['gap'])} |",
        f"| untrained agent, {unit} | {_fmt(result['untrained']['train'])} | "
        f"{_fmt(result['untrained']['test'])} | {_fmt(result['untrained']['gap'])} |",
        *([f"| PAIRED's antagonist, {unit} | {_fmt(result['antagonist']['train'])} | "
           f"{_fmt(result['antagonist']['test'])} | {_fmt(result['antagonist']['gap'])} |"] if result.get("antagonist") else []),
    ]
    for extra in ("return", "normalised", "solve_rate"):
        if extra in result["train"]:
            lines.append(
                f"| trained agent, {extra.replace('_', ' ')} | {_fmt(result['train'][extra])} | "
                f"{_fmt(result['test'][extra])} | {_fmt(result['gap'][extra])} |"
            )
    lines += held_out_lines(result)
    if result.get("probe"):
        lines += ["", "## Level-identity probe", "", probe_line(result) + "."]
    lines += ["", "## Level sets", ""]
    for key, desc in result["level_sets"].items():
        size = "unbounded" if desc["size"] is None else f"{desc['size']} levels"
        lines.append(f"- {key}: `{desc['name']}`, {size}. {desc['notes']}".rstrip())
    lines += ["", "## Config", "", "```yaml"]

    lines += [yaml.safe_dump(result["config"], sort_keys=False).rstrip(), "```", "", "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in result["versions"].items()]
    return "\n".join(lines) + "\n"


def interval_lines(result: dict[str, Any]) -> list[str]:
    """One line per evaluated set: which interval, over how many levels and episodes."""
    sets = {"train": result["train"], **{k: v["score"] for k, v in result.get("test_sets", {}).items()}}
    sets.setdefault("test", result["test"])
    lines = []
    for name, stats in sets.items():
        lines.append(f"- {name}: {stats['interval']} ({stats['levels']} levels, {stats['episodes']} episodes)")
    lines.append(f"- gaps: {result['gap']['interval']}, train and held-out set resampled independently")
    return lines


def held_out_lines(result: dict[str, Any]) -> list[str]:
    """Markdown: one row per held-out set (trained, untrained, gap) and a table per set of named levels."""
    sets = result.get("test_sets") or {}
    if not sets:
        return []
    unit = result["score_unit"]
    before = result["untrained"].get("test_sets", {})
    lines = [
        "",
        "## Every held-out set",
        "",
        f"| held-out set | trained agent, {unit} | gap (train - set) | untrained agent, {unit} |",
        "|---|---|---|---|",
    ]
    for name, entry in sets.items():
        untrained = _fmt(before[name]["score"]) if name in before else "-"
        lines.append(f"| {name} | {_fmt(entry['score'])} | {_fmt(entry['gap'])} | {untrained} |")
    for name, entry in sets.items():
        if entry.get("per_level"):
            lines += ["", f"### {name}, level by level", "", f"| level | {unit} | episodes |", "|---|---|---|"]
            lines += [f"| {lv} | {_fmt(s)} | {s['episodes']} |" for lv, s in entry["per_level"].items()]
    return lines


def write(run_dir: Path, result: dict[str, Any]) -> None:
    """``report.md``, then ``report.json`` (whose presence marks the run finished)."""
    write_text(run_dir / "report.md", markdown(result))
    write_json(run_dir / "report.json", result)


def summary_lines(result: dict[str, Any]) -> str:
    unit = result["score_unit"]
    u = result["untrained"]
    return "\n".join(
        [
            *([dataset_line(result)] if result.get("offline") else []),
            f"untrained agent: train {unit} {_fmt(u['train'])}, test {_fmt(u['test'])}",
            f"train {unit}: {_fmt(result['train'])}",
            f"test {unit}:  {_fmt(result['test'])}",
            f"gap:          {_fmt(result['gap'])}",
            *[
                f"held-out {name}: {unit} {_fmt(entry['score'])}, gap {_fmt(entry['gap'])}"
                for name, entry in (result.get("test_sets") or {}).items()
            ],
            *([probe_line(result)] if result.get("probe") else []),
            *([antagonist_line(result)] if result.get("antagonist") else []),
        ]
    )
