"""``heldout compare``: methods over seeds, with the statistics the field uses (rliable).

Per method (a sweep's ``method``, or for bare run directories a label from the config), over its
runs (seeds): the train score, each held-out set's score and the gap against each set, as the
interquartile mean (IQM) with a stratified-bootstrap 95% interval; and, on each held-out set, the
probability that a run of one method scores higher than a run of another (Mann-Whitney U
statistic, averaged over tasks; here one task), with its interval; and each held-out set's
performance profile (rliable's run-score distribution: the fraction of runs scoring above each
threshold, with a 95% band). With ``--previous`` (an earlier edition of the same sweep), each
method's scores beside that edition's, with the probability that a run of this edition scores
higher than a run of the previous one. The bootstrap is rliable's (``get_interval_estimates``),
seeded, so the output is deterministic.

Writes ``compare.md``, ``compare.json`` and PNG plots (:mod:`heldout.experiments.plots`).
"""

from __future__ import annotations

import argparse
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.stats

from heldout.evaluation import report
from heldout.cli import UsageError, command_parser
from heldout.evaluation import results
from heldout.experiments.sweep import INDEX

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0


@dataclass
class Run:
    """A finished run: its label, final report and periodic evaluations."""

    name: str
    method: str
    report: dict[str, Any]
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def method_label(cfg: dict[str, Any]) -> str:
    """``plr``, ``ucb_drac+plr``, ``dr`` ...: the agent (unless plain ppo) and the sampler."""
    agent = cfg.get("agent", "ppo")
    sampler = cfg.get("sampler", {}).get("name", "uniform")
    return sampler if agent == "ppo" else f"{agent}+{sampler}"


def _read_run(run_dir: Path, name: str, method: str | None) -> Run:
    """A finished run's report and evaluations, read through :mod:`heldout.evaluation.results`'s checks."""
    result = results.read_report(run_dir / results.REPORT)
    path = run_dir / "evaluations.jsonl"
    evaluations = results.read_records(path, scores=True) if path.exists() else []
    return Run(name, method or method_label(result.get("config", {})), result, evaluations)


def load(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """The finished runs under ``paths`` (a sweep directory, or run directories) and a line for
    each run left out (unfinished or failed)."""
    runs, left_out = [], []
    seen: dict[Path, Path] = {}
    for path in paths:
        where = path.resolve()
        if where in seen:
            raise UsageError(f"{path} is named twice (as {seen[where]} before); name each run or sweep directory once")
        seen[where] = path
        if (path / INDEX).is_file():
            for entry in results.read_index(path / INDEX):
                run_dir = path / entry["name"]
                if results.is_finished(run_dir):
                    runs.append(_read_run(run_dir, entry["name"], entry["method"]))
                else:
                    left_out.append(f"{entry['name']} ({entry['status']}{': ' + entry['error'] if entry.get('error') else ''})")
        elif (path / "report.json").is_file() or (path / "config.yaml").is_file():
            if results.is_finished(path):
                runs.append(_read_run(path, path.name, None))
            else:
                left_out.append(f"{path.name} (unfinished)")
        else:
            raise UsageError(f"{path} is neither a run directory (report.json) nor a sweep directory ({INDEX}); check the path")
    if not runs:
        raise UsageError("no finished runs to compare" + (f" (left out: {', '.join(left_out)})" if left_out else ""))
    for key in ("env", "score_unit"):
        values = {str(r.report.get(key)) for r in runs}
        if len(values) > 1:
            raise UsageError(f"the runs mix {key} values ({', '.join(sorted(values))}); compare runs of one environment")
    return runs, left_out


def held_out_sets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{set: {"score": ..., "gap": ...}}``; older reports hold only ``test`` / ``gap``."""
    return result.get("test_sets") or {"test": {"score": result["test"], "gap": result["gap"]}}


def final_scores(result: dict[str, Any], metric: str) -> dict[str, float]:
    """``train``, each held-out set, and ``gap NAME`` for each: means of one run (``metric``
    ``score`` or ``return``)."""

    def value(stats: dict[str, Any]) -> float:
        return float(stats["mean"] if metric == "score" else stats[metric]["mean"])

    out = {"train": value(result["train"])}
    for name, entry in held_out_sets(result).items():
        out[name] = value(entry["score"])
    for name, entry in held_out_sets(result).items():
        out[f"gap {name}"] = value(entry["gap"])
    return out


def has_metric(result: dict[str, Any], metric: str) -> bool:
    """Whether every score :func:`final_scores` reads has ``metric`` (e.g. ``return``) beside its mean."""
    entries = [result["train"], *(e[part] for e in held_out_sets(result).values() for part in ("score", "gap"))]
    return all(isinstance(e.get(metric), dict) and "mean" in e[metric] for e in entries)


def by_method(runs: list[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.method, []).append(run)
    return groups


def _rng() -> np.random.RandomState:
    return np.random.RandomState(BOOTSTRAP_SEED)


@contextmanager
def _seeded_bootstrap() -> Iterator[None]:
    """rliable's stratified bootstrap draws from numpy's global generator (its random_state
    reaches only arch's part): seed that too, and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():  # arch's notice about its future default generator
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        np.random.set_state(state)


def iqm_intervals(values: dict[str, np.ndarray]) -> dict[str, list[dict[str, float]]]:
    """Per key, per column of its (runs x columns) array: the IQM over runs with a
    stratified-bootstrap 95% interval. Columns are rliable's tasks: runs are resampled within
    each column, so every column's interval is its own bootstrap, all in one pass."""
    from rliable import library

    def iqm_per_column(scores: np.ndarray) -> np.ndarray:
        # rliable's aggregate_iqm (scipy's 25% trimmed mean) of each column, in one call
        return scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=0)

    with _seeded_bootstrap():
        point, interval = library.get_interval_estimates(values, iqm_per_column, reps=BOOTSTRAP_REPS, random_state=_rng())
    return {
        k: [{"iqm": float(point[k][j]), "ci_low": float(interval[k][0][j]), "ci_high": float(interval[k][1][j])}
            for j in range(values[k].shape[1])]
        for k in values
    }


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all pairs of runs, averaged over tasks: the Mann-Whitney U
    statistic over n_x n_y that rliable's ``metrics.probability_of_improvement`` computes with
    scipy, by broadcasting (rliable's loop is the bootstrap's bottleneck; a test checks equality)."""
    x, y = scores_x[:, None, :], scores_y[None, :, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


def improvement(values: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
    """P(a run of X scores higher than a run of Y) for every ordered pair of methods, with intervals
    (rliable's stratified independent bootstrap; P(Y > X) = 1 - P(X > Y) on the same resamples)."""
    from rliable import library

    names = list(values)
    pairs = {f"{x}\t{y}": (values[x], values[y]) for i, x in enumerate(names) for y in names[i + 1:]}
    out: dict[str, dict[str, dict[str, float]]] = {x: {} for x in values}
    if not pairs:
        return out
    with _seeded_bootstrap():
        point, interval = library.get_interval_estimates(
            pairs, probability_of_improvement, reps=BOOTSTRAP_REPS, random_state=_rng()
        )
    for key in pairs:
        x, y = key.split("\t")
        p = float(np.ravel(point[key])[0])
        low, high = (float(v) for v in np.ravel(interval[key])[:2])
        out[x][y] = {"p": p, "ci_low": low, "ci_high": high}
        out[y][x] = {"p": 1.0 - p, "ci_low": 1.0 - high, "ci_high": 1.0 - low}
    return out


def curves(groups: dict[str, list[Run]], column: str, metric: str) -> dict[str, dict[str, list[float]]]:
    """Per method: the steps every run evaluated at, and the IQM with its interval at each."""
    out = {}
    for method, runs in groups.items():
        per_run = [{e["steps"]: final_scores(e, metric).get(column) for e in r.evaluations} for r in runs]
        steps = sorted(set.intersection(*(set(s for s, v in p.items() if v is not None) for p in per_run)))
        if not steps:
            continue
        stats = iqm_intervals({method: np.array([[p[s] for s in steps] for p in per_run])})[method]
        out[method] = {"steps": steps, **{key: [st[key] for st in stats] for key in ("iqm", "ci_low", "ci_high")}}
    return out


PLR_TABLE2 = {
    "bigfish": (3.7, 8.7, 10.9, 14.3), "bossfight": (7.7, 7.7, 8.9, 8.8), "caveflyer": (5.4, 4.6, 6.3, 6.8),
    "chaser": (5.2, 6.8, 6.9, 8.0), "climber": (5.9, 6.4, 6.3, 6.8), "coinrun": (8.6, 8.6, 8.8, 9.0),
    "dodgeball": (1.7, 5.1, 1.8, 10.3), "fruitbot": (27.3, 27.0, 28.0, 27.6), "heist": (2.8, 3.2, 2.9, 4.9),
    "jumper": (5.7, 5.6, 5.8, 5.9), "leaper": (4.2, 4.4, 6.8, 8.7), "maze": (5.5, 6.2, 5.5, 7.2),
    "miner": (8.7, 10.1, 9.6, 10.0), "ninja": (6.0, 5.8, 7.2, 7.0), "plunder": (5.1, 7.8, 8.7, 7.7),
    "starpilot": (26.8, 31.7, 27.9, 29.6),
}  # fmt: skip
"""The PLR paper's Table 2 (REFERENCE.md section 2): mean test return of 10 runs per Procgen game at
25M steps (easy, 200 training levels, full-distribution test), for the methods of PLR_METHODS."""
PLR_METHODS = ("uniform", "ucb_drac+uniform", "plr", "ucb_drac+plr")
"""heldout's method labels (:func:`method_label`) of the table's columns: PPO, UCB-DrAC, PLR, UCB-DrAC + PLR."""
PLR_RELATIVE = {"uniform": 100.0, "ucb_drac+uniform": 129.8, "plr": 128.3, "ucb_drac+plr": 176.4}
"""The paper's mean normalised test return over the 16 games: per game relative to uniform PPO = 100, averaged."""


def relative_to_uniform(returns: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{method: mean over games of 100 * return / uniform's return}`` (the PLR paper's normalisation),
    over the games where both the method and uniform have a return."""
    out = {}
    methods = {m for per_game in returns.values() for m in per_game}
    for method in sorted(methods):
        ratios = [100 * g[method] / g["uniform"] for g in returns.values() if method in g and g.get("uniform")]
        if ratios:
            out[method] = float(np.mean(ratios))
    return out


def procgen_reference(runs: list[Run]) -> dict[str, Any] | None:
    """heldout's Procgen test returns beside the PLR paper's, per game and normalised as the paper
    does; None when no run is a Procgen game of the table. A run's test return is the mean return of
    its final evaluation on its first held-out set; a game's, the mean over its runs (seeds)."""
    found: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        cfg = run.report.get("config", {})
        env = str(cfg.get("env", {}).get("name", ""))
        game = env.split("/", 1)[1] if env.startswith("procgen/") else None
        method = method_label(cfg)
        if game not in PLR_TABLE2 or method not in PLR_METHODS:
            continue
        first = next(iter(held_out_sets(run.report).values()))["score"]
        if "return" in first:
            found.setdefault(game, {}).setdefault(method, []).append(float(first["return"]["mean"]))
    if not found:
        return None
    heldout = {g: {m: float(np.mean(v)) for m, v in per.items()} for g, per in found.items()}
    paper = {g: dict(zip(PLR_METHODS, PLR_TABLE2[g])) for g in heldout}
    games = {
        g: {m: {"heldout": heldout[g][m], "runs": len(found[g][m]), "paper": paper[g][m]} for m in found[g]}
        for g in sorted(heldout)
    }
    ours, theirs = relative_to_uniform(heldout), relative_to_uniform(paper)
    return {
        "source": "PLR paper (Jiang et al., 2021), Table 2: mean test return of 10 runs at 25M steps",
        "games": games,
        "relative": {m: {"heldout": ours[m], "paper_same_games": theirs.get(m), "paper_16_games": PLR_RELATIVE[m]}
                     for m in PLR_METHODS if m in ours},
    }  # fmt: skip


def _reference_markdown(ref: dict[str, Any]) -> list[str]:
    lines = ["", "## Beside the PLR paper (Procgen test return)", "", f"{ref['source']}; heldout: the mean over its runs.", "",
             "| game | method | heldout (runs) | paper |", "|---|---|---|---|"]  # fmt: skip
    for game, per in ref["games"].items():
        for m, row in per.items():
            lines.append(f"| {game} | {m} | {row['heldout']:.2f} ({row['runs']}) | {row['paper']:.1f} |")
    lines += ["", "Normalised test return: per game relative to uniform PPO = 100, averaged over games (the paper's).",
              "", "| method | heldout | paper, same games | paper, 16 games |", "|---|---|---|---|"]  # fmt: skip
    for m, row in ref["relative"].items():
        same = "-" if row["paper_same_games"] is None else f"{row['paper_same_games']:.1f}"
        lines.append(f"| {m} | {row['heldout']:.1f} | {same} | {row['paper_16_games']:.1f} |")
    return lines


PROFILE_POINTS = 51
"""Thresholds a performance profile is evaluated at, evenly spaced."""


def profile_thresholds(values: dict[str, np.ndarray]) -> np.ndarray:
    """Evenly spaced thresholds over [0, 1], widened to every score's range where scores leave it."""
    everything = np.concatenate([v.ravel() for v in values.values()])
    return np.linspace(min(0.0, float(everything.min())), max(1.0, float(everything.max())), PROFILE_POINTS)


def profiles(values: dict[str, np.ndarray]) -> dict[str, Any]:
    """Performance profiles as rliable draws them (``create_performance_profile`` with run-score
    distributions): per method, the fraction of its runs (x tasks) scoring strictly above each
    threshold tau, with a stratified-bootstrap 95% band, on one set of thresholds for all methods."""
    from rliable import library

    taus = profile_thresholds(values)
    with _seeded_bootstrap():
        point, interval = library.get_interval_estimates(
            values, lambda scores: library.score_distributions(scores, taus), reps=BOOTSTRAP_REPS, random_state=_rng()
        )
    return {
        "tau": [float(t) for t in taus],
        "methods": {m: {"fraction": [float(v) for v in point[m]], "ci_low": [float(v) for v in interval[m][0]],
                        "ci_high": [float(v) for v in interval[m][1]]} for m in values},
    }  # fmt: skip


def score_table(runs: list[Run], metric: str) -> dict[str, list[dict[str, float]]]:
    """Per method, each run's :func:`final_scores`."""
    return {m: [final_scores(r.report, metric) for r in rs] for m, rs in by_method(runs).items()}


def method_stats(table: dict[str, list[dict[str, float]]], columns: list[str]) -> dict[str, dict[str, Any]]:
    """Per method: the IQM with its interval of every column all its runs have."""
    out: dict[str, dict[str, Any]] = {}
    for m, rows in table.items():
        present = [c for c in columns if all(c in row for row in rows)]
        out[m] = dict(zip(present, iqm_intervals({m: np.array([[row[c] for c in present] for row in rows])})[m]))
    return out


def beside_previous(runs: list[Run], previous: list[Run], metric: str) -> dict[str, Any]:
    """Each method both editions ran: train and every held-out set's IQM (with intervals) in the
    previous edition and in this one, the change in IQM, and on each held-out set P(a run of this
    edition scores higher than a run of the previous one), with its interval."""
    now, before = score_table(runs, metric), score_table(previous, metric)
    out: dict[str, Any] = {}
    for m in (m for m in now if m in before):
        columns = [c for c in now[m][0] if all(c in row for row in now[m] + before[m])]
        stats = {"this": method_stats({m: now[m]}, columns)[m], "previous": method_stats({m: before[m]}, columns)[m]}
        rows = {}
        for c in columns:
            rows[c] = {"previous": stats["previous"][c], "this": stats["this"][c],
                       "change": stats["this"][c]["iqm"] - stats["previous"][c]["iqm"]}  # fmt: skip
            if c != "train" and not c.startswith("gap "):
                pair = improvement({"this": np.array([[r[c]] for r in now[m]]), "previous": np.array([[r[c]] for r in before[m]])})
                rows[c]["p_this_higher"] = pair["this"]["previous"]
        out[m] = {"runs": {"this": len(now[m]), "previous": len(before[m])}, "columns": rows}
    return out


def compare(runs: list[Run], metric: str = "score", previous: list[Run] | None = None) -> dict[str, Any]:
    """Every aggregate of :mod:`heldout.experiments.compare` as plain data; ``previous``: an earlier
    edition's runs, set beside these method by method."""
    groups = by_method(runs)
    table = score_table(runs, metric)
    columns = list(dict.fromkeys(c for rows in table.values() for row in rows for c in row))
    sets = [c for c in columns if c != "train" and not c.startswith("gap ")]
    methods: dict[str, dict[str, Any]] = {m: {"runs": len(rs), "seeds": [r.name for r in rs]} for m, rs in groups.items()}
    for m, stats in method_stats(table, columns).items():
        methods[m].update(stats)
    per_set = {s: {m: np.array([[row[s]] for row in rows]) for m, rows in table.items() if all(s in row for row in rows)}
               for s in sets}  # fmt: skip
    better = {s: improvement(values) for s, values in per_set.items()}
    return {
        "metric": metric,
        "score_unit": runs[0].report.get("score_unit", "score"),
        "env": runs[0].report.get("env"),
        "columns": columns,
        "held_out_sets": sets,
        "methods": methods,
        "probability_of_improvement": better,
        "curves": {c: curves(groups, c, metric) for c in ["train", *sets]},
        "profiles": {s: profiles(values) for s, values in per_set.items() if values},
        "previous": beside_previous(runs, previous, metric) if previous else None,
        "reference": procgen_reference(runs),
        "bootstrap": {"reps": BOOTSTRAP_REPS, "seed": BOOTSTRAP_SEED, "interval": "95% stratified bootstrap (rliable), percentile"},
    }


def _cell(stats: dict[str, float] | None) -> str:
    return "-" if stats is None else f"{stats['iqm']:.3f} [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"


def _previous_markdown(previous: dict[str, Any]) -> list[str]:
    lines = ["", "## Beside the previous edition", "",
             "IQM [95% interval] (runs) in each edition; change = this minus previous; P(this > previous): a run of "
             "this edition scores higher than a run of the previous one (on held-out sets).", "",
             "| method | column | previous | this | change | P(this > previous) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for m, entry in previous.items():
        n = entry["runs"]
        for c, row in entry["columns"].items():
            if c.startswith("gap "):
                continue
            p = row.get("p_this_higher")
            better = "-" if p is None else f"{p['p']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
            lines.append(f"| {m} | {c} | {_cell(row['previous'])} ({n['previous']}) | {_cell(row['this'])} ({n['this']}) "
                         f"| {row['change']:+.3f} | {better} |")  # fmt: skip
    return lines


def markdown(result: dict[str, Any], left_out: list[str]) -> str:
    """The comparison as Markdown: the IQM table and one improvement matrix per held-out set."""
    cols = result["columns"]
    lines = [
        f"# Comparison: {result['env']} ({result['score_unit']}, {result['metric']})",
        "",
        "Interquartile mean over runs (seeds) with stratified-bootstrap 95% intervals "
        f"(rliable, {result['bootstrap']['reps']} resamples). `gap X` is train minus held-out set X: lower is better.",
        "",
        "| method | runs | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for m, stats in result["methods"].items():
        lines.append(f"| {m} | {stats['runs']} | " + " | ".join(_cell(stats.get(c)) for c in cols) + " |")
    if any(s["runs"] < 2 for s in result["methods"].values()):
        lines += ["", "A method with one run has no spread: its interval is that run's value."]
    for s, matrix in result["probability_of_improvement"].items():
        methods = list(matrix)
        lines += ["", f"## Probability of improvement on `{s}`", "",
                  f"P(a run of the row's method scores higher on {s} than a run of the column's), 95% interval.", "",
                  "| | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for x in methods:
            cells = ["-" if x == y else f"{matrix[x][y]['p']:.2f} [{matrix[x][y]['ci_low']:.2f}, {matrix[x][y]['ci_high']:.2f}]"
                     for y in methods]
            lines.append(f"| {x} | " + " | ".join(cells) + " |")
    if result.get("previous"):
        lines += _previous_markdown(result["previous"])
    if result.get("reference"):
        lines += _reference_markdown(result["reference"])
    if left_out:
        lines += ["", "Left out (not finished): " + ", ".join(left_out)]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], left_out: list[str], out: Path) -> list[Path]:
    """compare.md, compare.json and the plots into ``out``; returns the paths written."""
    from heldout.experiments import plots

    out.mkdir(parents=True, exist_ok=True)
    report.write_text(out / "compare.md", markdown(result, left_out))
    report.write_json(out / "compare.json", {**result, "left_out": left_out})
    return [out / "compare.md", out / "compare.json", *plots.write_all(result, out)]


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    runs, left_out = load(paths)
    previous = load([Path(p) for p in args.previous])[0] if args.previous else None
    if previous and {str(r.report.get("env")) for r in previous} != {str(runs[0].report.get("env"))}:
        raise UsageError(f"--previous holds runs of another environment than {runs[0].report.get('env')}; compare editions of one benchmark")
    if left_out:
        print(f"heldout compare: left out {len(left_out)} unfinished runs: {', '.join(left_out)}")
    if args.metric != "score" and not all(has_metric(d, args.metric) for r in runs + (previous or []) for d in (r.report, *r.evaluations)):
        raise UsageError(f"the runs have no {args.metric!r} scores; use --metric score")
    result = compare(runs, args.metric, previous)
    out = Path(args.out) if args.out else (paths[0] / "compare" if len(paths) == 1 and (paths[0] / INDEX).is_file() else Path("compare"))
    written = write(result, left_out, out)
    print(markdown(result, []))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = command_parser(
        sub, "compare", "compare methods over seeds: IQM with intervals, probability of improvement, plots", __doc__
    )
    p.add_argument("paths", nargs="+", metavar="RUN_DIR|SWEEP_DIR", help="run directories, or one sweep directory")
    p.add_argument("--out", metavar="DIR", help="where compare.md/json and the plots go (default SWEEP_DIR/compare or ./compare)")
    p.add_argument("--previous", action="append", default=[], metavar="SWEEP_DIR|RUN_DIR",
                   help="an earlier edition of the comparison (a sweep directory, or run directories, repeated): "
                   "its scores beside these, method by method")
    p.add_argument("--metric", default="score", choices=("score", "return"), help="solve rate / normalised score, or raw return")
    p.set_defaults(func=run)
