"""PAIRED end to end through `heldout train`: three agents, regret logged, resume bit-identical."""

import json
import os
import signal

import pytest
import torch

from heldout.cli import main
from tests.test_train import MAZE_ONE_SET, load_checkpoint, tensorboard_tags

# 7x7 mazes and 6 wall placements keep the adversary's network and episodes small.
PAIRED_TINY = [*MAZE_ONE_SET, "--env.num_envs", "4", "--env.options", "{size: 7}", "--sampler", "paired",
               "--sampler.params", "{n_walls: 6, z_dim: 4, adversary_epochs: 1}"]  # fmt: skip
# A buffer of 8 levels, half full after one design rollout of 4 slots, replays at even odds.
REPAIRED_TINY = [*PAIRED_TINY[:-4], "--sampler", "repaired", "--sampler.params",
                 "{n_walls: 6, z_dim: 4, adversary_epochs: 1, capacity: 8, replay_prob: 0.5}"]  # fmt: skip


def test_paired_run_trains_three_agents_and_logs_regret(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *PAIRED_TINY, "--steps", "768", "--run-dir", str(run)]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["steps"] == 768 and "test" in report and "gap" in report
    antagonist = report["antagonist"]  # the antagonist's scores beside the protagonist's
    assert set(antagonist) == {"train", "test", "gap", "test_sets"} and "test" in antagonist["test_sets"]
    assert "| PAIRED's antagonist" in (run / "report.md").read_text()
    state = load_checkpoint(run)
    partner = state["partner"]
    assert partner["antagonist"]["num_timesteps"] == 768  # the antagonist played as many steps
    assert partner["adversary"]["num_timesteps"] == 3 * 4 * 8  # 3 updates x 4 slots x (6 walls + 2)
    assert state["sampler"]["sampler"]["designed"] == 12
    tags = tensorboard_tags(run / "tb")
    for tag in ("paired/regret", "paired/protagonist_mean_return", "paired/antagonist_max_return",
                "paired/adversary_entropy", "level_sampler/unsolvable_fraction", "levels/wall_density_mean"):  # fmt: skip
        assert tag in tags, tag


def sigterm_after_updates(monkeypatch, n: int) -> None:
    """The run sends itself SIGTERM after its n-th update (a preemption at a known point)."""
    from heldout.trainer import loop

    real, done = loop.update_agent, []

    def update(run):
        real(run)
        done.append(1)
        if len(done) == n:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop, "update_agent", update)


@pytest.mark.parametrize("method", ["paired", "repaired"])
def test_paired_run_continued_from_its_checkpoint_equals_the_whole_run(tmp_path, monkeypatch, method):
    # the adversary's lr decays over the run's updates: the stopped run must have the same length
    common = [*(PAIRED_TINY if method == "paired" else REPAIRED_TINY), "--checkpoint_interval", "1", "--steps", "1024"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *common, "--run-dir", str(whole)]) == 0
    with monkeypatch.context() as patch:
        sigterm_after_updates(patch, 2)
        assert main(["train", *common, "--run-dir", str(part)]) == 143
    assert load_checkpoint(part)["num_timesteps"] == 512
    assert main(["train", "--resume", str(part), "--no-progress"]) == 0
    a, b = load_checkpoint(whole), load_checkpoint(part)
    for policy in (a["policy"], a["partner"]["antagonist"]["policy"], a["partner"]["adversary"]["policy"]):
        assert policy  # three networks
    pairs = [(a["policy"], b["policy"]), (a["partner"]["antagonist"]["policy"], b["partner"]["antagonist"]["policy"]),
             (a["partner"]["adversary"]["policy"], b["partner"]["adversary"]["policy"])]  # fmt: skip
    for pa, pb in pairs:
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert a["partner"]["levels"] == b["partner"]["levels"]
    ra, rb = (json.loads((r / "report.json").read_text()) for r in (whole, part))
    assert ra["train"] == rb["train"] and ra["test"] == rb["test"]


def test_repaired_replays_buffer_levels_and_trains_only_on_replays(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *REPAIRED_TINY, "--steps", "2048", "--run-dir", str(run)]) == 0
    sampler = load_checkpoint(run)["sampler"]["sampler"]
    replays, designs = sampler["replays"], sampler["designed"] // 4
    assert replays > 0 and designs > 0 and replays + designs == 8
    assert 0 < len(sampler["buffer"]["levels"]) <= 8
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    trained = {e.value for e in acc.Scalars("level_sampler/trained_step_fraction")}
    assert trained == {0.0, 1.0}  # design rollouts take no gradient, replay rollouts all of it


def test_a_family_without_an_editor_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--env", "procgen/coinrun", "--sampler", "paired", "--steps", "256", "--run-dir", str(run)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "level editor" in err and len(err.splitlines()) == 1
    assert not run.exists()


def test_the_paired_preset_holds_jaxueds_student_settings():
    from heldout.trainer import config

    cfg = config.preset("paired")
    ppo = cfg.ppo
    assert (cfg.agent, cfg.sampler.name, cfg.env.train_set, cfg.env.num_envs) == ("ppo_lstm", "paired", "random", 32)
    assert (ppo.lr, ppo.n_steps, ppo.n_epochs, ppo.n_minibatches) == (1e-4, 256, 5, 1)
    assert (ppo.gamma, ppo.gae_lambda, ppo.ent_coef, ppo.clip_range, ppo.vf_coef) == (0.995, 0.98, 1e-3, 0.2, 0.5)
    assert not ppo.normalize_reward and cfg.network.lstm_hidden_size == 256
    assert ppo.lr_schedule == "linear"  # optax linear_schedule over the run's updates (maze_paired.py ~464-470)


def test_linear_lr_schedules_reach_all_three_agents_at_jaxueds_values(tmp_path):
    """4 updates (N = 4): the last update, k = 3, uses lr * (1 - 3/4) in every agent."""
    run = tmp_path / "run"
    assert main(["train", *PAIRED_TINY, "--ppo.lr", "4e-4", "--ppo.lr_schedule", "linear", "--steps", "1024",
                 "--run-dir", str(run)]) == 0  # fmt: skip
    state = load_checkpoint(run)
    lr = lambda opt: opt["param_groups"][0]["lr"]  # noqa: E731
    assert lr(state["optimizer"]) == pytest.approx(1e-4, rel=1e-12)
    assert lr(state["partner"]["antagonist"]["optimizer"]) == pytest.approx(1e-4, rel=1e-12)
    assert lr(state["partner"]["adversary"]["optimizer"]) == pytest.approx(0.25e-4, rel=1e-12)


@pytest.mark.parametrize(
    "setting, needle",
    [("{regret: nope}", "regret='nope'"), ("{n_walls: 500}", "n_walls must be a whole number from 0 to"),
     ("{adversary_lr: -1}", "adversary_lr must be a finite number > 0")],  # fmt: skip
)
def test_bad_paired_settings_are_one_line_and_write_nothing(tmp_path, capsys, setting, needle):
    run = tmp_path / "run"
    assert main(["train", *MAZE_ONE_SET, "--sampler", "paired", "--sampler.params", setting, "--steps", "256",
                 "--run-dir", str(run)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists()
