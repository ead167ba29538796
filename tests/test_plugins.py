"""Third-party environment families register through the `heldout.envs` entry point group.

The test builds a tiny real distribution, installs it with pip into a temporary directory and
checks, in a fresh interpreter, that heldout finds its family by name and by Gymnasium id, and
that `heldout train` trains it end to end: the family implements only `make`, so its vectorised
env is the generic one.
"""

import json
import os
import subprocess
import sys
import textwrap

PLUGIN_MODULE = '''
import gymnasium as gym
import numpy as np

from heldout.envs import EnvFamily, LevelSet, LevelSpace


class CountEnv(gym.Env):
    """Level L: the episode lasts L steps and pays 1 at the end."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, levels):
        self.levels = levels
        self.level = levels.levels[0]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.level = (options or {}).get("level", self.levels.levels[0])
        self.t = 0
        return np.array([self.level], np.float32), {"level": self.level}

    def step(self, action):
        self.t += 1
        done = self.t >= self.level
        return np.array([self.level - self.t], np.float32), float(done), done, False, {"level": self.level}


class CountFamily(EnvFamily):
    name = "demo/count"
    description = "a plug-in family for tests"

    def level_space(self, **options):
        return LevelSpace()

    def level_set(self, name, *, num_train_levels=None, level_seed=0, **options):
        self.check_level_set_name(name)
        n = num_train_levels or 3
        return LevelSet(name, levels=tuple(range(1, n + 1)) if name == "train" else (10, 11))

    def make(self, level_set="train", **options):
        levels = level_set if isinstance(level_set, LevelSet) else self.level_set(level_set)
        return CountEnv(levels)


FAMILY = CountFamily()
'''

CHECK = '''
import json, gymnasium
from heldout import envs
env = gymnasium.make("heldout/demo-count-v0", level_set="test")
obs, info = env.reset(options={"level": 4})
print(json.dumps({"names": envs.names(), "level": info["level"], "family": type(envs.get("demo/count")).__name__}))
'''


def test_entry_point_family_is_found_by_name_and_gymnasium_id(tmp_path):
    src = tmp_path / "src"
    (src / "heldout_demo_plugin").mkdir(parents=True)
    (src / "heldout_demo_plugin" / "__init__.py").write_text(PLUGIN_MODULE)
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
            packages = heldout_demo_plugin
            [options.entry_points]
            heldout.envs =
                count = heldout_demo_plugin:FAMILY
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
    assert "demo/count" in result["names"]
    assert result["family"] == "CountFamily" and result["level"] == 4
    cli = subprocess.run([sys.executable, "-m", "heldout.cli", "envs"], env=env, capture_output=True, text=True)
    assert cli.returncode == 0 and "heldout/demo-count-v0" in cli.stdout

    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "heldout.cli", "train", "--env", "demo/count", "--train-levels", "3", "--steps", "256",
         "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1",
         "--network.features_dim", "16", "--eval.episodes", "4", "--eval.final_episodes", "6", "--eval.num_envs", "2",
         "--torch_threads", "1", "--no-progress", "--run-dir", str(run)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    report = json.loads((run / "report.json").read_text())
    # Every episode of level L pays exactly 1, whatever the agent does: train 1, test 1, gap 0.
    assert report["score_unit"] == "return" and report["steps"] == 256
    assert report["train"]["mean"] == 1.0 and report["test"]["mean"] == 1.0 and report["gap"]["mean"] == 0.0
    assert "gap" in train.stdout


def test_family_is_absent_without_the_distribution():
    from heldout import envs

    assert "demo/count" not in envs.names()
