"""Safe checkpoints: exact round trips of plain data and levels, and files that must not run."""

from __future__ import annotations

import os
import pickle
import random
from collections import OrderedDict

import numpy as np
import pytest
import torch

from heldout import config, envs
from heldout.trainer import checkpoint
from heldout.trainer import tree as trees
from heldout.cli import main


def same(a, b) -> bool:
    """Exact equality of trees, types included (tensors and arrays by value, dtype and shape)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    return a == b


def test_an_agent_entry_with_tensors_and_a_dict_of_arrays_round_trips_exactly(tmp_path):
    agent = {
        "bandit": {"counts": np.array([3, 0, 7], dtype=np.int64), "q": np.array([0.25, np.nan, -1.5]),
                   "window": [np.float32(0.5), np.float64(-2.0)], "last": np.int64(2)},
        "hidden": (torch.randn(1, 4, 8), torch.zeros(1, 4, 8, dtype=torch.float16)),
        "step": 12, "ok": True, "name": "ucb", "nothing": None, "eps": 1e-8, "inf": float("-inf"),
        2: "int key", (1, "a"): b"\x00\xff", "empty": np.zeros((0, 3), np.uint8), "big": 2**100,
        "ordered": OrderedDict([("w", torch.arange(4))]), "bits": np.array([True, False]),
    }  # fmt: skip
    tree = {"agent": agent, "rng": {"python": random.getstate(), "numpy": np.random.get_state()}}
    trees.save_tree(tmp_path / "agent.pt", tree)
    back = trees.load_tree(tmp_path / "agent.pt")
    assert same(back, tree)
    back["agent"]["bandit"]["counts"][0] = 99  # loaded arrays are writeable copies
    assert set(os.listdir(tmp_path)) == {"agent.pt"}  # no temporary file left


def test_levels_go_through_the_family_s_text_form(tmp_path):
    family = envs.get("maze")
    space = family.level_space()
    levels = list(family.level_set("train", num_train_levels=4).levels)
    tree = {"buffer": levels, "max_returns": {levels[0]: 1.0, levels[3]: 0.5}, "slot": (levels[1], 7)}
    trees.save_tree(tmp_path / "s.pt", tree, space)
    back = trees.load_tree(tmp_path / "s.pt", space)
    assert back == tree and all(type(lv) is type(levels[0]) for lv in back["buffer"])
    payload = torch.load(tmp_path / "s.pt", weights_only=True)
    assert payload["tree"].count("#") > 0 and len(payload["tensors"]) == 0  # text form, stored once each
    with pytest.raises(ValueError, match="level space"):
        trees.load_tree(tmp_path / "s.pt")


@pytest.mark.parametrize("value", [{1, 2}, object(), [np.array([object()])], range(3)])
def test_anything_but_plain_data_and_levels_is_refused_when_saving(tmp_path, value):
    with pytest.raises(TypeError, match=r"tree\['sampler'\]"):
        trees.save_tree(tmp_path / "x.pt", {"sampler": value}, envs.get("maze").level_space())
    assert not (tmp_path / "x.pt").exists()


class RunsCommand:
    """Unpickling this runs a shell command (the attack the safe format has to stop)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def fake_run(tmp_path, name="run"):
    """A run directory with a valid config and no checkpoint (enough to reach the loader)."""
    run = tmp_path / name
    run.mkdir()
    cfg = config.preset("maze")
    cfg.env.num_envs, cfg.eval.num_envs, cfg.eval.final_episodes, cfg.steps = 2, 2, 2, 512
    config.save_yaml(cfg, run / "config.yaml")
    (run / "checkpoints").mkdir()
    return run


def _plain_pickle(path, evil):
    path.write_bytes(pickle.dumps(evil))


def _torch_pickle(path, evil):
    torch.save({"format": "heldout-checkpoint-v1", "policy": {}, "x": evil}, path)


def _stealth(path, evil):
    # a real heldout payload with one extra pickled key
    payload = trees.encode_tree({"format": checkpoint.FORMAT, "num_timesteps": 0})
    torch.save({**payload, "extra": evil}, path)


@pytest.mark.parametrize("craft", [_plain_pickle, _torch_pickle, _stealth], ids=["pickle", "torch", "stealth"])
@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_a_malicious_checkpoint_runs_nothing_and_exits_2(tmp_path, capsys, craft, command):
    run = fake_run(tmp_path)
    marker = tmp_path / "pwned"
    craft(run / "checkpoints" / "latest.pt", RunsCommand(marker))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    argv = ["evaluate", str(run)] if command == "evaluate" else ["train", "--resume", str(run), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pickled objects" in err and "nothing in it ran" in err, err
    assert not marker.exists(), "loading the checkpoint ran the attacker's command"
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
