"""Third-party environment families register through the `heldout.envs` entry point group.

The test builds a tiny real distribution from the README's example, installs it with pip into a temporary directory and
checks, in a fresh interpreter, that heldout finds its family by name and by Gymnasium id, and
that `heldout train` trains it end to end: the family implements only `make`, so its vectorised
env is the generic one.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example(name: str) -> str:
    """The Python block that follows ``<!-- example: NAME -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- example: {name} -->\n```python\n", 1)[1]
    return block.split("\n```\n", 1)[0] + "\n"


PLUGIN_MODULE = readme_example("corridor")  # the README's "Add your environment" example, verbatim

CHECK = '''
import json, gymnasium
from heldout import envs
env = gymnasium.make("heldout/demo-corridor-v0", level_set="test")
obs, info = env.reset(options={"level": 4})
family = type(envs.get("demo/corridor")).__name__
print(json.dumps({"names": envs.names(), "distance": float(obs[0]), "family": family}))
'''


def test_entry_point_family_is_found_by_name_and_gymnasium_id(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_corridor.py").write_text(PLUGIN_MODULE)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=70.1"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (src / "setup.cfg").write_text(
        textwrap.dedent(
            """
            [metadata]
            name = heldout-demo-plugin
            version = 0.0.1
            [options]
            py_modules = my_corridor
            [options.entry_points]
            heldout.envs =
                corridor = my_corridor:FAMILY
            """
        )
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "demo/corridor" in result["names"]
    assert result["family"] == "CorridorFamily" and result["distance"] == 4.0
    cli = subprocess.run([sys.executable, "-m", "heldout.cli", "envs"], env=env, capture_output=True, text=True)
    assert cli.returncode == 0 and "heldout/demo-corridor-v0" in cli.stdout

    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "heldout.cli", "train", "--env", "demo/corridor", "--train-levels", "3", "--steps", "256",
         "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1",
         "--network.features_dim", "16", "--eval.episodes", "4", "--eval.final_episodes", "6", "--eval.num_envs", "2",
         "--torch_threads", "1", "--no-progress", "--run-dir", str(run)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "gap" in train.stdout
    report = json.loads((run / "report.json").read_text())
    assert report["env"] == "demo/corridor" and report["score_unit"] == "return" and report["steps"] == 256
    assert report["level_sets"]["train"]["size"] == 3 and report["level_sets"]["test"]["size"] == 2
    for part in ("train", "test"):
        assert 0.0 <= report[part]["mean"] <= 1.0 and report[part]["episodes"] == 6  # return 1 when solved, else 0
    assert report["gap"]["mean"] == report["train"]["mean"] - report["test"]["mean"]


def test_family_is_absent_without_the_distribution():
    from heldout import envs

    assert "demo/corridor" not in envs.names()


def test_readme_seeded_example_runs(tmp_path, monkeypatch, capsys):
    """The README's register_seeded example, verbatim, with its training run shrunk to seconds."""
    pytest.importorskip("minigrid")
    from heldout import envs, train
    from heldout.envs import registry

    envs.names()
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # my/lava leaves with the test
    monkeypatch.chdir(tmp_path)
    real_train, runs = train.train, []

    def small_train(cfg, run_dir, **kwargs):
        cfg.steps, cfg.env.num_envs, cfg.ppo.n_steps, cfg.ppo.n_minibatches = 256, 4, 32, 2
        cfg.eval.episodes, cfg.eval.final_episodes, cfg.eval.num_envs, cfg.eval.interval = 4, 8, 4, 0
        cfg.network.features_dim = 16
        runs.append(run_dir)
        return real_train(cfg, run_dir, progress=False, **kwargs)

    monkeypatch.setattr(train, "train", small_train)
    exec(compile(readme_example("seeded"), "README.md:seeded", "exec"), {})
    assert "candidates dropped as content duplicates" in capsys.readouterr().out
    report = json.loads((tmp_path / runs[0] / "report.json").read_text())
    assert report["env"] == "my/lava" and report["score_unit"] == "solve rate"
    assert report["level_sets"]["train"]["size"] == 10 and report["config"]["env"]["options"] == {}
    assert 0.0 <= report["test"]["mean"] <= 1.0
