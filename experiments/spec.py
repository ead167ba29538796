"""What a sweep runs: methods (config overrides) x seeds, from a YAML file or the command line.

A sweep file::

    preset: maze                     # optional starting config (default: from the base's env)
    base:                            # any part of a `heldout train` config, nested or dotted
      steps: 2000000
      env: {test_levels: [test, test_ood, named]}
    methods:                         # named methods, each with its own overrides ...
      uniform: {sampler.name: uniform}
      dr: {sampler.name: dr, env.train_set: random}
      paired: {preset: paired}       # ... a method may start from another preset
    grid:                            # ... and/or a grid: the product of its lists are methods
      sampler.name: [uniform, plr]
    seeds: 3                         # a count (0, 1, 2) or a list of seeds
    sweep_dir: runs/sweeps/mine      # optional (the command line's --sweep-dir wins)
    torch_threads: 1                 # per run (default 1)

Every run's config is built and validated before anything starts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heldout.names import check_plain_name
from heldout.trainer import config
from heldout.trainer.config import TrainConfig

SPEC_KEYS = {"preset", "base", "methods", "grid", "seeds", "sweep_dir", "torch_threads"}
MAX_SEEDS = 1000


@dataclass
class PlannedRun:
    """One run of a sweep: a method at a seed, with its complete config."""

    name: str
    method: str
    seed: int
    overrides: dict[str, Any]
    cfg: TrainConfig


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested or dotted overrides as ``{dotted key: value}`` (``params`` mappings stay whole)."""
    known = {name for name, _, _ in config.leaf_fields(TrainConfig)}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = prefix + str(key)
        if isinstance(value, dict) and name not in known:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _methods(spec: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    methods: dict[str, dict[str, Any]] = {}
    named = spec.get("methods") or {}
    if not isinstance(named, dict):
        raise ValueError(f"{source}: methods must map method names to their overrides")
    for name, overrides in named.items():
        if not isinstance(overrides, dict):
            raise ValueError(f"{source}: method {name!r} must be a mapping of settings, e.g. {{sampler.name: plr}}")
        try:
            methods[check_plain_name("method name", str(name))] = flatten(overrides)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ValueError(f"{source}: grid must map settings to non-empty lists, e.g. {{sampler.name: [uniform, plr]}}")
    if grid:
        keys = list(flatten(grid))
        for values in itertools.product(*flatten(grid).values()):
            label = "-".join(re.sub(r"[^A-Za-z0-9_.+=,-]", "-", str(v)) for v in values)
            try:
                methods[check_plain_name("grid method name", label)] = dict(zip(keys, values))
            except ValueError as err:
                raise ValueError(f"{source}: {err}; name it under methods: instead") from None
    if not methods:
        raise ValueError(f"{source}: name at least one method (methods: or grid:)")
    return methods


def _seeds(value: Any, source: str) -> list[int]:
    try:
        if isinstance(value, list):
            seeds = [config.whole_number(v) for v in value]
        else:
            count = config.whole_number(value)
            if not 0 < count <= MAX_SEEDS:
                raise ValueError(f"a count from 1 to {MAX_SEEDS}")
            seeds = list(range(count))
    except ValueError as err:
        raise ValueError(f"{source}: bad seeds {value!r} ({err}); give a count such as 3 or a list such as [0, 1, 2]") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{source}: seeds must be a non-empty list without repeats")
    return seeds


LEVEL_KEYS = ("env.train_set", "env.test_levels")


def resolve_level_files(settings: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Level files named relative to the sweep file's folder, made absolute (set names stay)."""

    def resolve(name: Any) -> Any:
        path = folder / str(name)
        return str(path.resolve()) if not Path(str(name)).is_absolute() and path.is_file() else name

    out = dict(settings)
    for key in LEVEL_KEYS:
        if key in out:
            value = out[key]
            items = value.split(",") if isinstance(value, str) and key == "env.test_levels" else value
            out[key] = [resolve(v) for v in items] if isinstance(items, (list, tuple)) else resolve(items)
    return out


def base_settings(spec: dict[str, Any], source: str) -> dict[str, Any]:
    """The spec's ``base`` settings, flattened; ValueError unless it is a mapping."""
    if not isinstance(spec.get("base") or {}, dict):
        raise ValueError(f"{source}: base must be a mapping of settings, e.g. {{steps: 100000}}, not {spec['base']!r}")
    return flatten(spec.get("base") or {})


def plan(spec: dict[str, Any], source: str = "sweep", folder: Path | None = None) -> list[PlannedRun]:
    """Every run of ``spec`` with its validated config; ValueError names the first problem.

    Level files in ``env.train_set`` / ``env.test_levels`` are looked up relative to ``folder``
    (the sweep file's) first.
    """
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown key {sorted(unknown)[0]!r}; a sweep file holds {', '.join(sorted(SPEC_KEYS))}")
    base = base_settings(spec, source)
    try:
        threads = config.whole_number(spec.get("torch_threads", base.get("torch_threads", 1)))
    except ValueError as err:
        raise ValueError(f"{source}: bad torch_threads ({err})") from None
    if threads < 1:
        raise ValueError(f"{source}: torch_threads must be at least 1")
    runs = []
    methods = _methods(spec, source)
    for where, settings in [("base", base), *((f"method {m}", o) for m, o in methods.items())]:
        if "seed" in settings:  # it would be replaced by each run's seed without a word
            raise ValueError(f"{source}: {where} sets seed, but each run's seed comes from seeds: (a count or a list); remove it")
    for method, overrides in methods.items():
        preset = overrides.get("preset", spec.get("preset"))
        settings_of_method = {k: v for k, v in overrides.items() if k != "preset"}
        for seed in _seeds(spec.get("seeds", 1), source):
            settings = {**base, **settings_of_method, "seed": seed, "torch_threads": threads}
            if folder is not None:
                settings = resolve_level_files(settings, folder)
            runs.append(PlannedRun(f"{method}-s{seed}", method, seed, {**overrides, "seed": seed},
                                   build_config(preset, settings, f"{source}, method {method}")))
    return runs


def build_config(preset: str | None, settings: dict[str, Any], source: str) -> TrainConfig:
    """A preset (or the env's own) with dotted ``settings`` applied, validated."""
    env_name = str(settings.get("env.name", "maze"))
    cfg = config.preset(preset or config.preset_for_env(env_name))
    nested: dict[str, Any] = {}
    for dotted, value in settings.items():
        *parents, last = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{source}: {dotted} conflicts with another setting")
        node[last] = value
    config.apply_mapping(cfg, nested, source)
    try:
        cfg.validate()
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return cfg


def load(path: str | Path) -> dict[str, Any]:
    """A sweep file as a mapping (clear errors for unreadable or non-YAML files)."""
    return config.load_yaml(path)
