"""``heldout compare`` on synthetic run and sweep directories with known scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from heldout.cli import main
from heldout.experiments import compare


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
    """Point estimates do not depend on the resample count; 200 keep the tests quick."""
    monkeypatch.setattr(compare, "BOOTSTRAP_REPS", 200)


def stats(mean: float) -> dict:
    return {"mean": mean, "ci_low": mean, "ci_high": mean, "episodes": 10}


def summary(train: float, test: float, ood: float) -> dict:
    sets = {"test": test, "test_ood": ood}
    return {
        "train": stats(train),
        "test": stats(test),
        "gap": stats(train - test),
        "test_sets": {s: {"score": stats(v), "gap": stats(train - v)} for s, v in sets.items()},
    }


def make_run(path: Path, sampler: str, train: float, test: float, ood: float, *, finished: bool = True,
             curve: list[float] = (), env: str = "maze") -> Path:
    path.mkdir(parents=True)
    report = {"env": env, "score_unit": "solve rate", "steps": 1000, "finished": finished,
              "config": {"agent": "ppo", "sampler": {"name": sampler}}, **summary(train, test, ood)}  # fmt: skip
    (path / "report.json").write_text(json.dumps(report))
    lines = [json.dumps({"steps": 100 * (i + 1), **summary(v, v / 2, v / 4)}) for i, v in enumerate(curve)]
    (path / "evaluations.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


def make_sweep(root: Path, methods: dict[str, list[tuple[float, float, float]]]) -> Path:
    runs = []
    for method, scores in methods.items():
        for seed, (train, test, ood) in enumerate(scores):
            make_run(root / f"{method}-s{seed}", method, train, test, ood, curve=[0.1 * (seed + 1), 0.2 * (seed + 1)])
            runs.append({"name": f"{method}-s{seed}", "method": method, "seed": seed, "overrides": {},
                         "status": "finished", "error": None, "wall_time_s": 1.0})  # fmt: skip
    (root / "sweep.json").write_text(json.dumps({"heldout_sweep": 1, "spec": {}, "runs": runs}))
    return root


def test_iqm_is_the_mean_of_the_middle_half(tmp_path):
    tests = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0]  # 8 runs: IQM = mean of 0.2, 0.3, 0.4, 0.5
    sweep = make_sweep(tmp_path, {"plr": [(0.9, t, 0.5) for t in tests]})
    runs, left_out = compare.load([sweep])
    result = compare.compare(runs)
    plr = result["methods"]["plr"]
    assert plr["runs"] == 8 and left_out == []
    assert plr["test"]["iqm"] == pytest.approx(0.35)
    assert plr["gap test"]["iqm"] == pytest.approx(0.9 - 0.35)
    assert plr["train"] == {"iqm": pytest.approx(0.9), "ci_low": pytest.approx(0.9), "ci_high": pytest.approx(0.9)}
    assert 0.0 <= plr["test"]["ci_low"] < 0.35 < plr["test"]["ci_high"] <= 1.0


def test_probability_of_improvement_identical_and_dominating_methods(tmp_path):
    same = [(0.8, 0.3, 0.5), (0.8, 0.4, 0.6), (0.8, 0.5, 0.7)]
    better = [(0.8, 0.6, 0.1), (0.8, 0.7, 0.2), (0.8, 0.9, 0.3)]
    sweep = make_sweep(tmp_path, {"a": same, "b": same, "c": better})
    result = compare.compare(compare.load([sweep])[0])
    test = result["probability_of_improvement"]["test"]
    assert test["a"]["b"]["p"] == pytest.approx(0.5) and test["b"]["a"]["p"] == pytest.approx(0.5)
    assert test["c"]["a"]["p"] == pytest.approx(1.0) and test["a"]["c"]["p"] == pytest.approx(0.0)
    ood = result["probability_of_improvement"]["test_ood"]
    assert ood["c"]["a"]["p"] == pytest.approx(0.0)  # worse on every seed of that set
    assert result["held_out_sets"] == ["test", "test_ood"]


def test_deterministic_and_curves_aggregate_matching_steps(tmp_path):
    sweep = make_sweep(tmp_path, {"uniform": [(0.9, 0.4, 0.5)] * 3})
    first = compare.compare(compare.load([sweep])[0])
    second = compare.compare(compare.load([sweep])[0])
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    curve = first["curves"]["train"]["uniform"]
    assert curve["steps"] == [100, 200]
    assert curve["iqm"] == pytest.approx([0.2, 0.4])  # mean of 0.1, 0.2, 0.3 and of 0.2, 0.4, 0.6
    assert first["curves"]["test"]["uniform"]["iqm"] == pytest.approx([0.1, 0.2])


def test_compare_writes_markdown_json_and_plots(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep", {"uniform": [(0.9, 0.4, 0.5)] * 2, "plr": [(0.8, 0.5, 0.6)] * 2})
    make_run(tmp_path / "sweep" / "plr-s9", "plr", 0.1, 0.1, 0.1, finished=False)
    index = json.loads((sweep / "sweep.json").read_text())
    index["runs"].append({"name": "plr-s9", "method": "plr", "seed": 9, "overrides": {}, "status": "failed",
                          "error": "boom", "wall_time_s": None})  # fmt: skip
    (sweep / "sweep.json").write_text(json.dumps(index))
    assert main(["compare", str(sweep)]) == 0
    out = sweep / "compare"
    for name in ("compare.md", "compare.json", "curves.png", "gaps.png", "improvement.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "compare.json").read_text())
    assert data["methods"]["plr"]["test"]["iqm"] == pytest.approx(0.5)
    assert data["methods"]["plr"]["runs"] == 2  # the failed seed is left out ...
    assert data["left_out"] == ["plr-s9 (failed: boom)"]  # ... and listed
    printed = capsys.readouterr().out
    assert "| plr | 2 | 0.800 [0.800, 0.800] | 0.500 [0.500, 0.500]" in printed
    assert "left out 1 unfinished runs" in printed


def test_bare_run_directories_are_labelled_from_their_config(tmp_path):
    a = make_run(tmp_path / "a", "plr", 0.9, 0.5, 0.5)
    b = make_run(tmp_path / "b", "uniform", 0.9, 0.3, 0.5)
    runs, _ = compare.load([a, b])
    assert [r.method for r in runs] == ["plr", "uniform"]
    assert compare.method_label({"agent": "ucb_drac", "sampler": {"name": "plr"}}) == "ucb_drac+plr"
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["methods"]["uniform"]["runs"] == 1


@pytest.mark.parametrize(
    "setup, problem",
    [
        (lambda p: [p / "missing"], "neither a run directory"),
        (lambda p: [make_run(p / "x", "plr", 1, 1, 1, finished=False)], "no finished runs"),
        (lambda p: [make_run(p / "x", "plr", 1, 1, 1), make_run(p / "y", "plr", 1, 1, 1, env="procgen/coinrun")],
         "mix env values"),
        (lambda p: [make_run(p / "x", "plr", 1, 1, 1), p / "x" / ".." / "x"], "is named twice"),
        # results files that are corrupt, hold a list or miss what compare reads: named, never "unfinished"
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json", '{"train": ')],
         "x/report.json is corrupt (not valid JSON: Expecting value at line 1 column 11)"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json", "[1, 2]")],
         "x/report.json holds a list where a run's report belongs"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json", '{"finished": true, "train": {}}')],
         "x/report.json has no number at train.mean"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json", '{"train": {"mean": 1}}')],
         "x/report.json has no 'finished' entry"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json",
                         json.dumps({"finished": 1, "config": [], **summary(1, 1, 1)}))], "has a config that is not a mapping"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "report.json",
                         json.dumps({"finished": 1, **summary(1, 1, 1), "test_sets": {"test": {"score": {"mean": "high"}}}}))],
         "x/report.json has no number at test_sets.test.score.mean"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1, curve=[0.1, 0.2]), "evaluations.jsonl", None, append="{oops\n")],
         "x/evaluations.jsonl line 3 is corrupt (not valid JSON"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "evaluations.jsonl", '[1]\n')],
         "x/evaluations.jsonl line 1 holds list where a record"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "evaluations.jsonl", json.dumps(summary(1, 1, 1)))],
         "x/evaluations.jsonl line 1 has no whole number at 'steps'"),
        (lambda p: [edit(make_run(p / "x", "plr", 1, 1, 1), "evaluations.jsonl", json.dumps({"steps": 5, "train": 1}))],
         "x/evaluations.jsonl line 1 has no number at train.mean"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "sweep.json", "{")], "sw/sweep.json is corrupt"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "sweep.json", "[]")],
         "sw/sweep.json holds a list where a sweep index belongs"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "sweep.json", '{"spec": {}}')],
         "sw/sweep.json has no list of runs at 'runs'"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "sweep.json", '{"runs": [{"name": "plr-s0"}]}')],
         "sw/sweep.json run 1 in 'runs' lacks a name, method or status"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "sweep.json",
                         '{"runs": [{"name": "../x", "method": "m", "status": "finished"}]}')], "not a directory name"),
        (lambda p: [edit(make_sweep(p / "sw", {"plr": [(1, 1, 1)]}), "plr-s0/report.json", "")],
         "sw/plr-s0/report.json is corrupt"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, setup, problem):
    paths = setup(tmp_path)
    assert main(["compare", *map(str, paths), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert problem in err and len(err.strip().splitlines()) == 1 and err.startswith("heldout compare: error: ")
    assert "Traceback" not in err
    if problem != "no finished runs":
        assert "unfinished" not in out + err  # a bad file is not an unfinished run
    assert not (tmp_path / "out").exists()


def edit(run: Path, name: str, text: str | None, append: str = "") -> Path:
    """Replace (or, with ``text`` None, keep) the file ``name`` under ``run``, then append ``append``."""
    path = run / name
    path.write_text((path.read_text() if text is None else text) + append)
    return run


def test_iqm_interval_narrows_with_agreeing_seeds():
    spread = compare.iqm_intervals({"m": np.array([[0.1], [0.5], [0.9], [0.3], [0.7]])})["m"][0]
    tight = compare.iqm_intervals({"m": np.array([[0.49], [0.5], [0.51], [0.5], [0.5]])})["m"][0]
    assert tight["ci_high"] - tight["ci_low"] < spread["ci_high"] - spread["ci_low"]


def test_fast_statistics_equal_rliables():
    from rliable import metrics

    rng = np.random.default_rng(3)
    for shape_x, shape_y in [((5, 1), (4, 1)), ((3, 2), (6, 2))]:
        x, y = rng.integers(0, 4, shape_x) / 4, rng.integers(0, 4, shape_y) / 4  # with ties
        assert compare.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))
    scores = rng.random((7, 3))
    iqm = compare.iqm_intervals({"m": scores})["m"]
    assert [s["iqm"] for s in iqm] == pytest.approx([metrics.aggregate_iqm(scores[:, j]) for j in range(3)])


# -- the PLR paper's reference row (Procgen) --------------------------------------------------------
def procgen_run(name: str, game: str, agent: str, sampler: str, test_return: float) -> compare.Run:
    score = {**stats(0.5), "return": stats(test_return)}
    report = {"env": f"procgen/{game}", "score_unit": "normalised score", "train": score,
              "test_sets": {"test": {"score": score, "gap": {**stats(0.0), "return": stats(0.0)}}},
              "config": {"agent": agent, "sampler": {"name": sampler}, "env": {"name": f"procgen/{game}"}}}  # fmt: skip
    return compare.Run(name, compare.method_label(report["config"]), report)


def test_the_paper_normalises_per_game_against_uniform_then_averages():
    # the convention, checked on the paper's own table: mean over games of 100 * method / PPO
    table = compare.PLR_TABLE2
    for column, published in ((1, 129.8), (2, 128.3), (3, 176.4)):
        mean = sum(100 * row[column] / row[0] for row in table.values()) / len(table)
        assert mean == pytest.approx(published, abs=0.6)  # the table's values are rounded to 0.1


def test_reference_row_beside_a_tiny_fake_sweep(monkeypatch):
    monkeypatch.setattr(compare, "BOOTSTRAP_REPS", 20)  # the row needs no interval
    runs = [procgen_run("u0", "coinrun", "ppo", "uniform", 7.0), procgen_run("u1", "coinrun", "ppo", "uniform", 9.0),
            procgen_run("b0", "coinrun", "ucb_drac", "plr", 9.0), procgen_run("u2", "bigfish", "ppo", "uniform", 4.0),
            procgen_run("b1", "bigfish", "ucb_drac", "plr", 10.0)]  # fmt: skip
    result = compare.compare(runs, "return")
    ref = result["reference"]
    assert ref["games"]["coinrun"]["uniform"] == {"heldout": 8.0, "runs": 2, "paper": 8.6}
    assert ref["games"]["bigfish"]["ucb_drac+plr"] == {"heldout": 10.0, "runs": 1, "paper": 14.3}
    # heldout: coinrun 9 / 8 = 112.5, bigfish 10 / 4 = 250 -> 181.25; the paper on these two games:
    # coinrun 9.0 / 8.6, bigfish 14.3 / 3.7
    row = ref["relative"]["ucb_drac+plr"]
    assert row["heldout"] == pytest.approx((112.5 + 250) / 2)
    assert row["paper_same_games"] == pytest.approx(50 * (9.0 / 8.6 + 14.3 / 3.7))
    assert row["paper_16_games"] == 176.4 and ref["relative"]["uniform"]["heldout"] == 100.0
    text = compare.markdown(result, [])
    assert "## Beside the PLR paper" in text and "| bigfish | ucb_drac+plr | 10.00 (1) | 14.3 |" in text
    assert "| ucb_drac+plr | 181.2 | 245.6 | 176.4 |" in text
    assert compare.procgen_reference([procgen_run("m", "maze", "ppo", "dr", 1.0)]) is None  # dr: not in the table


# -- performance profiles and the previous edition ------------------------------------------------
def test_performance_profile_is_the_fraction_of_runs_above_each_threshold(tmp_path):
    tests = [0.2, 0.4, 0.4, 0.9]
    result = compare.compare(compare.load([make_sweep(tmp_path, {"plr": [(0.9, t, 0.5) for t in tests]})])[0])
    profile = result["profiles"]["test"]
    taus = np.array(profile["tau"])
    assert taus[0] == 0.0 and taus[-1] == 1.0 and len(taus) == compare.PROFILE_POINTS  # scores within [0, 1]
    fraction = dict(zip(np.round(taus, 6), profile["methods"]["plr"]["fraction"]))
    # strictly above: at 0.2 three of four runs (0.4, 0.4, 0.9), at 0.4 one, at 0.9 none; at 0 all
    assert (fraction[0.0], fraction[0.2], fraction[0.3], fraction[0.4], fraction[0.9]) == (1.0, 0.75, 0.75, 0.25, 0.0)
    band = profile["methods"]["plr"]
    assert all(lo <= f <= hi for lo, f, hi in zip(band["ci_low"], band["fraction"], band["ci_high"]))
    assert band["ci_low"][taus.tolist().index(0.3)] < 0.75 < band["ci_high"][taus.tolist().index(0.3)]
    # returns outside [0, 1] widen the thresholds to their range
    assert compare.profile_thresholds({"m": np.array([[-2.0], [30.0]])})[[0, -1]].tolist() == [-2.0, 30.0]


def test_previous_edition_beside_this_one(tmp_path, capsys):
    old = make_sweep(tmp_path / "old", {"uniform": [(0.8, 0.4, 0.6)] * 3, "dr": [(0.9, 0.6, 0.7)] * 3})
    new = make_sweep(tmp_path / "new", {"uniform": [(0.8, 0.5, 0.6)] * 3 + [(0.8, 0.3, 0.6)],
                                        "paired": [(0.5, 0.2, 0.3)] * 2})  # fmt: skip
    assert main(["compare", str(new), "--previous", str(old), "--out", str(tmp_path / "out")]) == 0
    previous = json.loads((tmp_path / "out" / "compare.json").read_text())["previous"]
    assert list(previous) == ["uniform"]  # only the methods both editions ran
    row = previous["uniform"]["columns"]["test"]
    assert row["previous"]["iqm"] == pytest.approx(0.4) and row["this"]["iqm"] == pytest.approx(0.5)  # IQM of 0.3, 0.5, 0.5, 0.5: 0.5
    assert row["change"] == pytest.approx(0.1)
    # 12 pairs (new x old): the three 0.5 runs beat all three 0.4 runs, the 0.3 run none: 9 / 12
    assert row["p_this_higher"]["p"] == pytest.approx(9 / 12)
    assert previous["uniform"]["columns"]["test_ood"]["p_this_higher"]["p"] == pytest.approx(0.5)  # all tied
    assert "p_this_higher" not in previous["uniform"]["columns"]["train"]
    assert previous["uniform"]["runs"] == {"this": 4, "previous": 3}
    text = (tmp_path / "out" / "compare.md").read_text()
    assert "## Beside the previous edition" in text
    assert "| uniform | test | 0.400 [0.400, 0.400] (3) | 0.500 [" in text and "| +0.100 | 0.75 [" in text
    assert (tmp_path / "out" / "profiles.png").read_bytes()[:4] == b"\x89PNG"


def test_previous_edition_of_another_environment_is_refused(tmp_path, capsys):
    new = make_run(tmp_path / "new", "plr", 0.9, 0.5, 0.5)
    old = make_run(tmp_path / "old", "plr", 0.9, 0.5, 0.5, env="procgen/coinrun")
    assert main(["compare", str(new), "--previous", str(old), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--previous holds runs of another environment than maze" in err and len(err.strip().splitlines()) == 1
