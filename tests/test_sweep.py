"""``heldout sweep``: grids x seeds as ordinary runs, the index, skip-and-resume, failures, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from heldout.cli import main
from heldout.experiments import spec as specs

# Tiny maze runs: a few seconds each, most of it start-up and evaluation.
TINY = [
    "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1",
    "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2", "--eval.interval", "0",
    "--network.features_dim", "16", "--train-levels", "5", "--env.test_levels", "test",
]  # fmt: skip


def index(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


def statuses(sweep_dir: Path) -> dict[str, str]:
    return {r["name"]: r["status"] for r in index(sweep_dir)["runs"]}


def test_plan_builds_every_method_and_seed_with_validated_configs():
    spec = {
        "base": {"steps": 1000, "env": {"num_envs": 4}},
        "methods": {"dr": {"sampler.name": "dr", "env.train_set": "random"}},
        "grid": {"sampler.name": ["uniform", "plr"]},
        "seeds": [3, 7],
    }
    runs = specs.plan(spec)
    assert [r.name for r in runs] == ["dr-s3", "dr-s7", "uniform-s3", "uniform-s7", "plr-s3", "plr-s7"]
    dr = runs[0].cfg
    assert (dr.sampler.name, dr.env.train_set, dr.env.num_envs, dr.steps, dr.seed) == ("dr", "random", 4, 1000, 3)
    assert runs[0].overrides == {"sampler.name": "dr", "env.train_set": "random", "seed": 3}
    assert all(r.cfg.torch_threads == 1 for r in runs)  # one torch thread per run by default


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"grid": {"sampler.name": ["uniform"]}, "seedz": 2}, "unknown key 'seedz'"),
        ({"grid": {"sampler.name": "uniform"}}, "non-empty lists"),
        ({"grid": {"sampler.name": ["uniform"]}, "seeds": 0}, "bad seeds"),
        ({"grid": {"sampler.name": ["uniform"]}, "seeds": [1, 1]}, "without repeats"),
        ({"seeds": 2}, "at least one method"),
        ({"grid": {"ppo.lr": [-1.0]}}, "ppo.lr"),
        ({"grid": {"ppo.nope": [1]}}, "unknown setting 'ppo.nope'"),
        ({"methods": {"a": "plr"}}, "mapping of settings"),
        ({"methods": {"../escape": {"sampler.name": "plr"}}}, "method name '../escape' cannot name a folder"),
        ({"methods": {"a/b": {"sampler.name": "plr"}}}, "method name 'a/b' cannot name a folder"),
        ({"methods": {".hidden": {"sampler.name": "plr"}}}, "method name '.hidden' cannot name a folder"),
        ({"grid": {"env.train_set": [".."]}}, "grid method name '..' cannot name a folder"),
    ],
)
def test_bad_specs_name_the_problem(spec, problem):
    with pytest.raises(ValueError, match=problem):
        specs.plan(spec)


def test_bad_command_lines_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid", "sampler.name=uniform"]) == 2
    assert "--sweep-dir" in capsys.readouterr().err
    assert main(["sweep", "--grid", "sampler.name", "--sweep-dir", str(out)]) == 2
    assert "KEY=V1,V2" in capsys.readouterr().err
    assert main(["sweep", "--grid", "sampler.name=uniform", "--seeds", "x", "--sweep-dir", str(out)]) == 2
    assert "bad seeds" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [1, 2\n")
    assert main(["sweep", str(bad), "--sweep-dir", str(out)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["sweep", "--grid", "sampler.name=uniform", "--workers", "0", "--sweep-dir", str(out)]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_runs_the_grid_then_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--grid", "sampler.name=uniform,plr", "--seeds", "2", "--sweep-dir", str(out),
            "--workers", "2", "--steps", "256", *TINY]  # fmt: skip
    assert main(argv) == 0
    assert statuses(out) == {name: "finished" for name in ("uniform-s0", "uniform-s1", "plr-s0", "plr-s1")}
    entry = index(out)["runs"][2]
    assert (entry["method"], entry["seed"], entry["overrides"]) == ("plr", 0, {"sampler.name": "plr", "seed": 0})
    assert entry["wall_time_s"] > 0
    report = json.loads((out / "plr-s1" / "report.json").read_text())
    assert report["config"]["sampler"]["name"] == "plr" and report["config"]["seed"] == 1
    assert report["steps"] >= 256
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/report.json")}
    capsys.readouterr()
    assert main(argv) == 0  # started again: nothing to do
    assert "(4 finished before); 0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/report.json")} == mtimes
    # a changed setting is not silently mixed into the same sweep
    assert main([*argv[:-len(TINY) - 2], "--steps", "512", *TINY]) == 2
    assert "another config" in capsys.readouterr().err


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({
        "base": {"steps": 256},
        "methods": {"good": {"sampler.name": "uniform"}, "broken": {"sampler.name": "plr", "sampler.params": {"temperature": -1}}},
        "seeds": 1,
    }))  # fmt: skip
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--sweep-dir", str(out), *TINY]) == 1
    runs = {r["name"]: r for r in index(out)["runs"]}
    assert runs["good-s0"]["status"] == "finished"
    assert runs["broken-s0"]["status"] == "failed"
    assert "temperature" in runs["broken-s0"]["error"]
    assert "FAILED  broken-s0" in capsys.readouterr().out


def test_an_interrupted_sweep_resumes_its_runs_from_their_checkpoints(tmp_path):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "heldout.cli", "sweep", "--grid", "sampler.name=uniform", "--seeds", "1",
            "--sweep-dir", str(out), "--steps", "3072", "--checkpoint_interval", "1", *TINY]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoint = out / "uniform-s0" / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), proc.communicate()[0]
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    assert "stopped uniform-s0" in output
    assert statuses(out) == {"uniform-s0": "pending"}
    stopped_at = index(out)["runs"][0]["wall_time_s"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    log = (out / "logs" / "uniform-s0.log").read_text()
    starts = [line for line in log.splitlines() if line.startswith("== heldout sweep")]
    assert len(starts) == 2 and "--resume" not in starts[0] and "--resume" in starts[1]
    assert statuses(out) == {"uniform-s0": "finished"}
    assert index(out)["runs"][0]["wall_time_s"] > stopped_at  # both segments counted
    assert json.loads((out / "uniform-s0" / "report.json").read_text())["steps"] >= 3072


def test_a_sweep_directory_in_use_by_another_sweep_is_refused_naming_it(tmp_path, capsys):
    from heldout.trainer.lock import DirectoryLock

    out = tmp_path / "sweep"
    with DirectoryLock(out, "sweep directory"):  # as a live sweep holds it
        assert main(["sweep", "--grid", "sampler.name=uniform", "--sweep-dir", str(out), "--steps", "256", *TINY]) == 2
    err = capsys.readouterr().err
    assert f"sweep directory {out} is in use by another heldout process (pid {os.getpid()}" in err
    assert not out.exists()  # refused before writing anything


def test_ray_backend_runs_a_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    argv = [sys.executable, "-m", "heldout.cli", "sweep", "--backend", "ray", "--grid", "sampler.name=uniform,plr",
            "--seeds", "1", "--sweep-dir", str(out), "--steps", "256", *TINY]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert statuses(out) == {"uniform-s0": "finished", "plr-s0": "finished"}


def test_a_method_may_start_from_its_own_preset():
    runs = specs.plan({
        "preset": "maze", "base": {"steps": 4096}, "seeds": 1,
        "methods": {"dr": {"sampler.name": "dr", "env.train_set": "random"},
                    "paired": {"preset": "paired", "sampler.name": "paired", "env.train_set": "random"}},
    })  # fmt: skip
    dr, paired = runs
    assert (dr.cfg.agent, dr.cfg.ppo.lr, dr.cfg.steps) == ("ppo", 5e-4, 4096)
    assert (paired.cfg.agent, paired.cfg.ppo.lr, paired.cfg.ppo.gamma, paired.cfg.steps) == ("ppo_lstm", 1e-4, 0.995, 4096)
    assert paired.cfg.sampler.name == "paired" and paired.overrides["preset"] == "paired"
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        specs.plan({"methods": {"x": {"preset": "nope"}}})
