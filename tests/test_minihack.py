"""MiniHack level families: seeded levels that replay, held-out sets by whole glyph map, the glyphs
network and bonus encoders on glyph ids, and a bonus run from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("nle")
pytest.importorskip("minihack")  # needs setuptools < 81 (pkg_resources)

import heldout.envs as envs  # noqa: E402
from heldout.agents.networks import GlyphNet, select_network, symbol_count  # noqa: E402
from heldout.bonuses.networks import observation_encoder  # noqa: E402
from heldout.cli import main  # noqa: E402


def play(env, level: int, actions: list[int]):
    obs, _ = env.reset(options={"level": level})
    frames, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        assert info["level"] == level
        frames.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.stack(frames), rewards


@pytest.mark.parametrize("name", ["minihack/MultiRoom-N4", "minihack/KeyRoom-S5"])
def test_a_level_replays_exactly_and_levels_differ(name):
    env = envs.make(name, "train")
    assert env.observation_space.shape == (9, 9) and env.observation_space.dtype == np.int16
    actions = list(np.random.default_rng(0).integers(0, env.action_space.n, 40))
    a_frames, a_rewards = play(env, 3, actions)
    play(env, 4, actions)  # another level in between changes nothing
    b_frames, b_rewards = play(env, 3, actions)
    assert np.array_equal(a_frames, b_frames) and a_rewards == b_rewards
    assert set(a_rewards) <= {0.0, 1.0}  # no step penalty: the return is the solve indicator
    starts = set()
    for level in range(5):
        env.reset(options={"level": level})
        starts.add(env.env.full_glyphs.tobytes())
    assert len(starts) == 5


def test_held_out_levels_differ_from_every_training_level_in_the_whole_map():
    family = envs.get("minihack/Corridor-R3")
    test = family.level_set("test", num_train_levels=6, num_test_levels=4)
    assert len(test.levels) == 4 and min(test.levels) >= 6
    env = family.make("train")
    maps = {}
    for level in [*range(6), *test.levels]:
        env.reset(options={"level": level})
        maps[level] = env.env.full_glyphs.tobytes()
    assert not {maps[s] for s in test.levels} & {maps[s] for s in range(6)}
    assert family.solved(np.array([0.0, 1.0])).tolist() == [False, True]


def test_auto_picks_the_glyphs_network_which_embeds_each_id():
    space = envs.make("minihack/Corridor-R3").observation_space
    assert select_network(space, "minihack/Corridor-R3") == "glyphs" and symbol_count(space) == 5977
    torch.manual_seed(0)
    net = GlyphNet(space, features_dim=32, embedding_dim=4)
    a = torch.full((2, 9, 9), 2359.0)
    b = a.clone()
    b[1, 4, 4] = 333.0  # one cell holds another glyph
    fa, fb = net(a), net(b)
    assert fa.shape == (2, 32) and torch.equal(fa[0], fb[0]) and not torch.equal(fa[1], fb[1])
    # the id, not its size, is what counts: the embedding row of the id is what the convs see
    assert torch.equal(net.embed(torch.tensor([333])), net.embed.embed.weight[333:334])
    enc = observation_encoder((9, 9), 16, 8, symbols=5977)
    assert enc(a).shape == (2, 8) and sum(p.numel() for p in enc[0].parameters()) == 5977 * 16


def test_an_e3b_run_on_a_minihack_task_from_the_cli(tmp_path):
    run = tmp_path / "run"
    args = [
        "train", "--env", "minihack/Corridor-R3", "--env.num_envs", "2", "--ppo.n_steps", "32",
        "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1", "--train-levels", "4", "--eval.episodes", "2",
        "--eval.final_episodes", "2", "--eval.num_envs", "2", "--env.options", "{num_test_levels: 2}",
        "--torch_threads", "1", "--no-progress", "--bonus", "e3b", "--bonus.embedding_dim", "8",
        "--bonus.hidden_dim", "16", "--bonus.batch_size", "32", "--steps", "64", "--run-dir", str(run),
    ]  # fmt: skip
    assert main(args) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["env"] == "minihack/Corridor-R3" and report["score_unit"] == "solve rate" and report["steps"] == 64
    assert report["config"]["bonus"]["name"] == "e3b" and 0.0 <= report["train"]["mean"] <= 1.0


def test_minihack_families_exist_only_where_nle_and_minihack_are_importable(monkeypatch):
    from heldout.envs import minihack_families

    monkeypatch.setattr(minihack_families, "find_spec", lambda name: None if name == "nle" else object())
    assert minihack_families.families() == []
    assert "minihack/MultiRoom-N4" in envs.names() and "minihack/KeyRoom-S15" in envs.names()
