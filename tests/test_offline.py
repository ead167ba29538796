"""Offline RL (issue 25): heldout collect, Minari datasets, the bc and cql agents, their runs."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("minari")

from heldout.agents.offline import cql_loss  # noqa: E402
from heldout.cli import main  # noqa: E402
from heldout.envs.maze.paths import min_actions  # noqa: E402
from heldout.trainer import config  # noqa: E402

FAST = ["--no-progress", "--offline.log_interval", "50"]


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory) -> Path:
    """A run directory holding only the config of a 5-level maze run (enough for the scripted expert)."""
    run = tmp_path_factory.mktemp("offline") / "run"
    cfg = config.preset("maze")
    cfg.env.num_train_levels, cfg.env.test_levels, cfg.env.num_envs = 5, ("test",), 4
    cfg.eval.episodes, cfg.eval.final_episodes, cfg.eval.num_envs = 20, 40, 8
    run.mkdir()
    config.save_yaml(cfg, run / "config.yaml")
    return run


@pytest.fixture(scope="module")
def expert_dataset(maze_run) -> Path:
    out = maze_run.parent / "expert"
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--episodes", "40", "--out", str(out)]) == 0
    return out


def test_the_scripted_expert_takes_the_fewest_actions_and_the_dataset_round_trips_through_minari(maze_run, expert_dataset):
    import minari

    from heldout import envs

    cfg = config.from_dict(config.load_yaml(maze_run / "config.yaml"))
    train = envs.level_set("maze", "train", num_train_levels=5)
    space = envs.get("maze").level_space()
    dataset = minari.MinariDataset(expert_dataset / "data")  # Minari's own reader
    assert dataset.total_episodes == 40
    meta = dataset.storage.metadata["heldout"]
    assert meta["family"] == "maze" and meta["level_set"] == "train" and meta["policy"] == "shortest-path"
    assert meta["config"]["env"]["num_train_levels"] == cfg.env.num_train_levels == 5
    levels = [space.parse(m["level"]) for m in dataset.storage.get_episode_metadata(range(40))]
    assert set(levels) == set(train.levels)  # 40 planned episodes cycle through all 5 levels, 8 each
    assert all(levels.count(lv) == 8 for lv in train.levels)
    for episode, level in zip(dataset.iterate_episodes(), levels):
        steps = len(episode.actions)
        assert steps == min_actions(level)  # shortest path, turns included
        assert episode.observations.shape == (steps + 1, 5, 5, 3) and episode.observations.dtype == np.uint8
        assert episode.terminations[-1] and not episode.terminations[:-1].any() and not episode.truncations.any()
        assert episode.rewards[-1] == pytest.approx(1 - 0.9 * steps / 250, abs=1e-6) and episode.rewards[:-1].sum() == 0
        assert set(np.unique(episode.actions)) <= {0, 1, 2}
    # the first observation is the level's own start: replaying the actions in the env gives the same episode
    first = next(dataset.iterate_episodes())
    vec = envs.make_vec("maze", 1, train)
    vec.set_level_source(lambda slot: levels[0])
    obs = vec.reset()
    assert np.array_equal(obs[0], first.observations[0])
    for t, action in enumerate(first.actions[:-1]):
        obs, _, _, _ = vec.step(np.array([action]))
        assert np.array_equal(obs[0], first.observations[t + 1])


def test_bc_on_the_scripted_expert_solves_its_training_levels_and_the_report_names_the_dataset(
    maze_run, expert_dataset, tmp_path, scalar_tags
):
    run = tmp_path / "bc"
    args = ["train", "--config", str(maze_run / "config.yaml"), "--agent", "bc", "--dataset", str(expert_dataset)]
    assert main([*args, "--offline.updates", "300", "--run-dir", str(run), *FAST]) == 0
    result = json.loads((run / "report.json").read_text())
    assert result["train"]["mean"] >= 0.95  # near-perfect on the 5 training levels
    assert result["untrained"]["train"]["mean"] < 0.6
    dataset = result["offline"]["dataset"]
    assert result["offline"] == {"agent": "bc", "updates": 300, "dataset": dataset}
    assert (dataset["episodes"], dataset["levels"], dataset["policy"]) == (40, 5, "shortest-path")
    from heldout import envs

    train = envs.level_set("maze", "train", num_train_levels=5)
    assert dataset["transitions"] == 8 * sum(min_actions(level) for level in train.levels)
    assert "test" in result["test_sets"] and result["gap"]["mean"] == pytest.approx(result["train"]["mean"] - result["test"]["mean"])
    assert f"on dataset {expert_dataset}" in (run / "report.md").read_text()
    tags = scalar_tags(run / "tb")
    assert {"offline/loss", "final/train", "final/sets/test", "final/gaps/test"} <= tags
    # heldout evaluate reads the offline run's checkpoint as it reads an online run's
    assert main(["evaluate", str(run), "--levels", "train", "--episodes", "10", "--deterministic"]) == 0
    assert json.loads((run / "eval-train.json").read_text())["score"]["mean"] >= 0.9


def test_cql_resumes_bit_identically(maze_run, expert_dataset, tmp_path):
    from heldout.trainer.tree import load_tree

    args = ["train", "--config", str(maze_run / "config.yaml"), "--agent", "cql", "--dataset", str(expert_dataset),
            "--offline.checkpoint_interval", "20", "--offline.target_update", "15", "--eval.final_episodes", "8", *FAST]
    assert main([*args, "--offline.updates", "40", "--run-dir", str(tmp_path / "straight")]) == 0
    assert main([*args, "--offline.updates", "25", "--run-dir", str(tmp_path / "parts")]) == 0
    assert main(["train", "--resume", str(tmp_path / "parts"), "--offline.updates", "40", "--no-progress"]) == 0
    a = load_tree(tmp_path / "straight" / "checkpoints" / "latest.pt")["agent"]
    b = load_tree(tmp_path / "parts" / "checkpoints" / "latest.pt")["agent"]
    assert a["updates"] == b["updates"] == 40
    for part in ("policy", "target"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])


def test_cql_loss_against_a_hand_computed_value():
    q = torch.tensor([[1.0, 2.0], [0.5, -0.5]], requires_grad=True)
    total, td, conservative = cql_loss(
        q, torch.tensor([1, 0]), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]),
        next_q_online=torch.tensor([[0.0, 3.0], [1.0, 0.0]]), next_q_target=torch.tensor([[2.0, 1.0], [5.0, 5.0]]),
        gamma=0.5, alpha=2.0,
    )  # fmt: skip
    # targets: 1 + 0.5 * Q_target(s', argmax_a' Q(s', a') = 1) = 1.5, and 0 at the terminal; errors 0.5 and 0.5:
    # Huber 0.5 * 0.5^2 = 0.125 each. Conservative: logsumexp - Q(s, a) = log(1 + e^-1) in both rows, times 2.
    assert td.item() == pytest.approx(0.125)
    assert conservative.item() == pytest.approx(2 * math.log(1 + math.exp(-1)))
    assert total.item() == pytest.approx(0.125 + 2 * math.log(1 + math.exp(-1)))
    total.backward()
    # d/dQ of alpha * mean(lse - Q_a) + mean Huber: softmax - onehot, halved by the mean, plus the TD part
    soft = torch.softmax(q.detach(), dim=1)
    expected = 2 * (soft - torch.tensor([[0.0, 1.0], [1.0, 0.0]])) / 2 + torch.tensor([[0.0, 0.5], [0.5, 0.0]]) / 2
    assert torch.allclose(q.grad, expected)


def test_collect_refuses_held_out_levels_unless_asked(maze_run, capsys):
    out = maze_run.parent / "held-out"
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--levels", "test", "--episodes", "4",
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not among the run's 5 training levels" in err and "--allow-held-out" in err
    assert not out.exists()
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--levels", "test", "--episodes", "4",
                 "--out", str(out), "--allow-held-out"]) == 0  # fmt: skip
    # and an offline run refuses such a dataset: its levels would not be held out
    assert main(["train", "--config", str(maze_run / "config.yaml"), "--agent", "bc", "--dataset", str(out),
                 "--run-dir", str(maze_run.parent / "never"), *FAST]) == 2  # fmt: skip
    assert "outside this run's 5 training levels" in capsys.readouterr().err
    assert not (maze_run.parent / "never").exists()


def test_collect_never_overwrites_a_dataset(maze_run, expert_dataset, capsys):
    before = sorted(p.name for p in expert_dataset.rglob("*"))
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--episodes", "4", "--out", str(expert_dataset)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in expert_dataset.rglob("*")) == before


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: (d / "file").write_text("x") and d / "file", "is a file"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no Minari dataset"),
        (lambda d: (d / "junk" / "data").mkdir(parents=True) or (d / "junk" / "data" / "metadata.json").write_text("{")
         and d / "junk", "cannot be read"),
    ],
    ids=["missing", "file", "empty-dir", "damaged"],
)
def test_bad_dataset_paths_are_one_line_errors_and_write_nothing(maze_run, tmp_path, capsys, make, needle):
    path = make(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--config", str(maze_run / "config.yaml"), "--agent", "bc", "--dataset", str(path), "--run-dir", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not run.exists()


def test_a_dataset_is_for_offline_agents_only_and_an_offline_agent_needs_one(maze_run, expert_dataset, tmp_path, capsys):
    base = ["train", "--config", str(maze_run / "config.yaml"), "--run-dir", str(tmp_path / "r")]
    assert main([*base, "--agent", "ppo", "--dataset", str(expert_dataset)]) == 2
    assert "learns online and reads no --dataset" in capsys.readouterr().err
    assert main([*base, "--agent", "cql"]) == 2
    assert "give --dataset DIR" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_collect_from_a_trained_run_mixes_checkpoints_and_keeps_time_limit_truncations(maze_run, tmp_path):
    from heldout.offline import read

    run = tmp_path / "ppo"
    assert main(["train", "--config", str(maze_run / "config.yaml"), "--steps", "512", "--run-dir", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "mixed"
    assert main(["collect", str(run), "--episodes", "7", "--out", str(out), "--checkpoint", str(run),
                 "--checkpoint", str(run / "checkpoints" / "latest.pt"), "--epsilon", "0.5"]) == 0  # fmt: skip
    data = read(out)
    policies = data.info["policies"]
    assert [p["episodes"] for p in policies] == [4, 3] and all(p["steps"] == 512 and p["epsilon"] == 0.5 for p in policies)
    assert data.info["policy"].startswith("mixed: ppo at 512 steps, sampled, epsilon 0.5")
    assert data.episode_policies.tolist() == [0, 0, 0, 0, 1, 1, 1]
    lengths = np.diff(np.r_[-1, np.flatnonzero(np.r_[np.diff(data.index) != 1, True])])
    assert lengths.sum() == len(data) and len(lengths) == 7
    # an episode that hit the time limit (250 steps) is truncated, not terminal: CQL bootstraps from it
    ends = np.cumsum(lengths) - 1
    for length, end in zip(lengths, ends):
        assert data.terminals[end] == (length < 250)
    assert not np.delete(data.terminals, ends).any() and (lengths == 250).any()


def test_a_run_saved_before_the_offline_settings_existed_still_matches_its_config():
    from heldout.trainer.rundir import config_differences

    cfg = config.preset("maze")
    saved = config.to_dict(cfg)
    del saved["offline"]  # a config.yaml written before issue 25
    assert config_differences(saved, cfg) == []
    cfg.offline.cql_alpha = 1.0  # a setting that differs from the default is still named
    assert config_differences(saved, cfg) == ["offline.cql_alpha: 4.0 -> 1.0"]


def test_collect_keeps_exactly_the_transitions_asked_for_the_last_episode_cut_short(maze_run, expert_dataset, tmp_path):
    import minari

    full = list(minari.MinariDataset(expert_dataset / "data").iterate_episodes())
    lengths = [len(ep.actions) for ep in full]
    n = sum(lengths[:5]) + 2  # five whole episodes and two steps of the sixth
    out = tmp_path / "cut"
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--episodes", "40", "--transitions", str(n),
                 "--out", str(out)]) == 0  # fmt: skip
    cut = list(minari.MinariDataset(out / "data").iterate_episodes())
    assert [len(ep.actions) for ep in cut] == [*lengths[:5], 2]
    assert minari.MinariDataset(out / "data").storage.metadata["heldout"]["policies"][0]["episodes"] == 6
    assert sum(len(ep.actions) for ep in cut) == n
    assert not cut[-1].terminations.any() and cut[-1].truncations[-1]
    np.testing.assert_array_equal(cut[-1].actions, full[5].actions[:2])
    np.testing.assert_array_equal(cut[-1].observations, full[5].observations[:3])
    assert all(ep.terminations[-1] for ep in cut[:5])


def test_collect_refuses_more_transitions_than_its_episodes_give(maze_run, tmp_path, capsys):
    assert main(["collect", str(maze_run), "--policy", "shortest-path", "--episodes", "2", "--transitions", "100000",
                 "--out", str(tmp_path / "few")]) == 2  # fmt: skip
    assert "transitions where 100,000 were asked for (--transitions); raise --episodes" in capsys.readouterr().err
    assert not (tmp_path / "few").exists()


def test_an_offline_run_holds_its_run_directory_against_a_second_writer(maze_run, expert_dataset, tmp_path, capsys, wait_for):
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    args = ["--config", str(maze_run / "config.yaml"), "--agent", "bc", "--dataset", str(expert_dataset), *FAST]
    cmd = [sys.executable, "-m", "heldout.cli", "train", *args, "--offline.updates", "10000000", "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "untrained.json").exists(), proc)
        config_before = (run / "config.yaml").read_bytes()
        # a second offline writer (another seed) and an online one: both refused, naming the holder
        for agent in ("bc", "ppo"):
            second = ["train", *args, "--seed", "1", "--run-dir", str(run)]
            if agent == "ppo":
                second = ["train", "--config", str(maze_run / "config.yaml"), "--seed", "1", "--run-dir", str(run), *FAST]
            assert main(second) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"run directory {run} is in use by another heldout process (pid {proc.pid}" in err[0]
        assert (run / "config.yaml").read_bytes() == config_before
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 143  # stopped as an online run stops, with a checkpoint
    assert (run / "checkpoints" / "latest.pt").exists() and not (run / ".heldout.lock").exists()


def test_two_collects_into_one_directory_keep_the_first_dataset_and_refuse_the_second(maze_run, tmp_path, capsys, monkeypatch):
    from heldout.offline import dataset
    from heldout.trainer import collect

    out = tmp_path / "data"
    first = ["collect", str(maze_run), "--policy", "shortest-path", "--episodes", "4", "--out", str(out)]
    assert main(first) == 0
    kept = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    # the second started before the first finished: its check saw no directory yet
    for module in (collect, dataset):
        monkeypatch.setattr(module, "check_new_dir", lambda path, what="--out": Path(path))
    assert main([*first[:-1], str(out), "--seed", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was written by another process while this one collected" in err[0]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == kept
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # the second's temporary directory is gone
