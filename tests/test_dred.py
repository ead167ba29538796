"""DRED's generative model (heldout.generators), `heldout dred fit/sample`, and `heldout train --sampler dred`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from heldout.trainer import checkpoint
from heldout.cli import main
from heldout.envs.maze import MazeFamily
from heldout.envs.maze.level import AGENT, GOAL, WALL, MazeLevel
from heldout.envs.maze.space import MazeLevelSpace
from heldout.generators import (
    FitConfig,
    LevelGenerator,
    LevelVAE,
    VAEConfig,
    fingerprint,
    fit,
    load,
    reconstruction_accuracy,
    save,
    slerp,
)
from heldout.generators.model_file import DREDModel
from heldout.generators.vae import Decoded
from heldout.level_samplers import DREDSampler

SPACE = MazeLevelSpace()
SMALL = dict(latent_dim=16, hidden_dim=128, channels=16)
# heldout's first loss (summed cells and KL, unit weights): the memorising fixture below fits
# its 6 levels with it in 150 epochs; the published weighting is tested on its own.
FIRST_LOSS = dict(reduction="sum", w_layout=1.0, w_goal=1.0, w_start=1.0, w_direction=1.0, beta=0.3)
TINY_SET = "{max_epochs: 20, latent_dim: 8, hidden_dim: 32, channels: 8}"


def train_codes(n: int) -> np.ndarray:
    levels = MazeFamily().level_set("train", num_train_levels=n)
    return np.stack([SPACE.encode(lv) for lv in levels])


@pytest.fixture(scope="module")
def fitted():
    """A small VAE fitted on 6 training levels, none held out (so it must memorise them)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    codes = train_codes(6)
    result = fit(codes, VAEConfig(**SMALL, **FIRST_LOSS), FitConfig(max_epochs=150, patience=150, lr=1e-3))
    yield codes, result
    torch.set_num_threads(threads)


def test_fitting_lowers_the_loss_and_reconstructs_the_training_levels(fitted):
    codes, result = fitted
    history = result.history
    assert result.holdout == [] and result.epochs == 150
    assert history[-1]["loss"] < 0.25 * history[0]["loss"]
    acc = reconstruction_accuracy(result.model, torch.as_tensor(codes))
    # The threshold: a decoder that ignored its latent could at best predict every cell's
    # most common code over the set; the model must beat that by far and get >= 95% right.
    walls = codes == WALL
    mode_baseline = np.maximum(walls.mean(0), 1 - walls.mean(0)).mean()
    assert mode_baseline < 0.85
    assert acc["cell"] >= 0.95 and acc["cell"] > mode_baseline + 0.1


def test_early_stopping_keeps_the_best_held_out_epoch():
    torch.manual_seed(0)
    config = VAEConfig(**SMALL, **FIRST_LOSS)
    result = fit(train_codes(10), config, FitConfig(max_epochs=60, patience=5, lr=1e-3, holdout_fraction=0.1, seed=3))
    assert len(result.holdout) == 1
    val = [m["val_loss"] for m in result.history]
    assert result.best["val_loss"] == min(val)
    assert result.epochs == result.best_epoch + 5 or result.epochs == 60


def test_decoded_levels_always_have_one_goal_and_one_start_on_floor():
    torch.manual_seed(1)
    model = LevelVAE(VAEConfig(**SMALL)).eval()  # untrained: anything may come out of it
    z = torch.randn(64, 16) * torch.linspace(0.1, 10.0, 64)[:, None]
    gen = torch.Generator().manual_seed(0)
    for sample in (True, False):
        codes, repaired = model.decode_codes(z, sample=sample, generator=gen)
        for grid in codes.numpy():
            assert (grid == GOAL).sum() == 1 and (grid >= AGENT).sum() == 1
            MazeLevel.from_array(grid)  # one goal, one start, both on floor, on different cells
        if not sample:  # the most likely layout: goal and start landed on its floor unless repaired
            walls = (model.decode(z).layout >= 0).numpy().reshape(64, 13, 13)
            for grid, w, fixed in zip(codes.numpy(), walls, repaired.tolist()):
                goal, start = np.argwhere(grid == GOAL)[0], np.argwhere(grid >= AGENT)[0]
                assert fixed or not (w[tuple(goal)] or w[tuple(start)])
    # A layout head that puts walls everywhere leaves no floor: the decoder repairs the level.
    with torch.no_grad():
        model.layout_head.bias.fill_(100.0)
    codes, repaired = model.decode_codes(z[:8], sample=True, generator=gen)
    assert repaired.all()
    for grid in codes.numpy():
        level = MazeLevel.from_array(grid)
        assert level.num_walls == 13 * 13 - 2


def test_slerp_ends_at_its_endpoints_and_keeps_the_norm_between_equal_norms():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    assert torch.allclose(slerp(0.0, a, b), a) and torch.allclose(slerp(1.0, a, b), b)
    mid = slerp(0.5, a, b)
    assert torch.allclose(mid.norm(), torch.tensor(3.0)) and torch.allclose(mid, torch.tensor([1.0, 1.0, 0.0]) * 3 / 2**0.5)
    # Published: linear where |cos| > 0.955. cos 0.96 (angle 16.3 deg): linear; cos 0.95: spherical.
    for cos, linear in ((0.96, True), (0.95, False)):
        c = torch.tensor([3 * cos, 3 * (1 - cos**2) ** 0.5, 0.0])
        lerp = (a + c) / 2
        assert torch.allclose(slerp(0.5, a, c), lerp) == linear, cos
        if not linear:  # the spherical midpoint keeps the norm
            assert torch.allclose(slerp(0.5, a, c).norm(), torch.tensor(3.0))


def hand_model(layout, goal, start, direction=None, side=3):
    """A VAE whose decoder returns the given logits (flattened grids) for every latent."""
    model = LevelVAE(VAEConfig(height=side, width=side, latent_dim=2, hidden_dim=4, channels=2)).eval()
    cells = side * side
    heads = [torch.as_tensor(x, dtype=torch.float32).reshape(1, -1) for x in (layout, goal, start)]
    heads.append(torch.zeros(1, 4) if direction is None else torch.as_tensor(direction, dtype=torch.float32)[None])
    assert all(h.shape[1] == cells for h in heads[:3])
    model.decode = lambda z: Decoded(*(h.expand(z.shape[0], -1) for h in heads))
    return model


def test_mode_decode_puts_floor_exactly_where_p_floor_is_above_half_and_samples_goal_and_start_on_it():
    # Wall logits of a 3x3 grid; p(floor) = sigmoid(-logit): floor where logit < 0 (0 itself: p = 0.5, wall).
    layout = [-2.0, 0.5, -0.1, 3.0, -1.0, 0.0, -4.0, 1.0, -0.5]
    floor = [0, 2, 4, 6, 8]
    goal = np.array([0.0, 9.0, 1.0, 9.0, 2.0, 9.0, 0.0, 9.0, 0.5])  # large on walls: must never win
    start = np.array([1.0, 9.0, 0.0, 9.0, 0.0, 9.0, 2.0, 9.0, 0.0])
    model = hand_model(layout, goal, start)
    n = 20000
    codes, repaired = model.decode_codes(torch.zeros(n, 2), sample=True, generator=torch.Generator().manual_seed(0))
    flat = codes.reshape(n, -1).numpy()
    assert not repaired.any()
    walls = np.isin(flat, [WALL])
    assert (walls == np.array([c not in floor for c in range(9)])).all()  # the same layout every time
    # Goal ~ softmax of its logits over the floor; start ~ softmax over the floor other than the goal.
    p_goal = np.exp(goal[floor]) / np.exp(goal[floor]).sum()
    p_start = np.zeros(len(floor))
    for gi in range(len(floor)):
        w = np.exp(start[floor]) * (np.arange(len(floor)) != gi)
        p_start += p_goal[gi] * w / w.sum()
    got_goal = np.array([(flat[:, c] == GOAL).mean() for c in floor])
    got_start = np.array([(flat[:, c] >= AGENT).mean() for c in floor])
    assert np.abs(got_goal - p_goal).max() < 0.015 and np.abs(got_start - p_start).max() < 0.015
    assert ((flat == GOAL).sum(1) == 1).all() and ((flat >= AGENT).sum(1) == 1).all()
    # The first decoder (decode="sample"): each cell a wall with probability sigmoid(logit).
    codes, _ = model.decode_codes(torch.zeros(n, 2), sample=True, decode="sample", generator=torch.Generator().manual_seed(1))
    flat = codes.reshape(n, -1).numpy()
    p_wall = 1 / (1 + np.exp(-np.array(layout)))
    assert np.abs((flat == WALL).mean(0) - p_wall).max() < 0.02  # goal and start sit on floor cells only
    with pytest.raises(ValueError, match="decode must be one of mode, sample"):
        model.decode_codes(torch.zeros(1, 2), sample=True, decode="argmax")


def test_the_published_loss_weights_on_a_tiny_batch():
    # All logits 0, posterior mean 0.5 and std 1 in both latent dimensions, on 3x3 levels with
    # F floor cells (goal and start included). By hand, per level:
    #   cell NLL log 2 each; goal CE log F; start CE log (F - 1); direction CE log 4;
    #   KL per dimension 0.5 * (0.5^2 + 1 - 1 - log 1) = 0.125.
    grids = torch.tensor([[[0, 1, 2], [0, 0, 1], [3, 1, 1]], [[2, 0, 0], [0, 4, 0], [0, 0, 1]]])  # F = 5 and 8
    model = hand_model(np.zeros(9), np.zeros(9), np.zeros(9))
    model.encode = lambda codes: (torch.full((codes.shape[0], 2), 0.5), torch.ones(codes.shape[0], 2))
    got = model.loss(grids, sample=False)
    log = np.log
    published = [0.04 * log(2) + 0.013 * (log(f) + log(f - 1) + log(4)) + 0.0448 * 0.125 for f in (5, 8)]
    assert float(got["loss"]) == pytest.approx(np.mean(published), rel=1e-5)
    assert float(got["layout"]) == pytest.approx(log(2)) and float(got["kl"]) == pytest.approx(0.125)
    # Goal and start each weigh 0.013 / (0.04 / 9) = 2.9 cells here; 0.013 / (0.04 / 169) = 55 on a 13x13 maze.
    model.config = VAEConfig(height=3, width=3, latent_dim=2, hidden_dim=4, channels=2, **FIRST_LOSS)
    first = [9 * log(2) + log(f) + log(f - 1) + log(4) + 0.3 * 2 * 0.125 for f in (5, 8)]
    assert float(model.loss(grids, sample=False)["loss"]) == pytest.approx(np.mean(first), rel=1e-5)


def test_unsolvable_generated_levels_are_handed_out_unless_rejected_and_never_enter_the_buffer():
    # A 13x13 layout with a full wall down column 6; the goal is drawn on the left, the start on the right.
    layout = np.full((13, 13), -5.0)
    layout[:, 6] = 5.0
    goal, start = np.full((13, 13), -30.0), np.full((13, 13), -30.0)
    goal[6, 2], start[6, 10] = 0.0, 0.0
    model = hand_model(layout, goal, start, side=13)
    codes = train_codes(2)
    played = LevelGenerator(model, SPACE, codes, pairs=1, interpolations_per_pair=2)
    levels = played(np.random.default_rng(0), 2)
    assert len(levels) == 2 and not any(SPACE.is_solvable(lv) for lv in levels)
    assert played.counts == {"valid": 2, "solvable": 0, "repaired": 0, "dropped": 0}
    rejecting = LevelGenerator(model, SPACE, codes, pairs=1, interpolations_per_pair=2, reject_unsolvable=True, max_batches=1)
    assert rejecting(np.random.default_rng(0), 2) == [] and rejecting.counts["dropped"] == 2
    # The sampler proposes it, the agent plays it (return 0: it cannot reach the goal), it never enters.
    sampler = DREDSampler(MazeFamily().level_set("train", num_train_levels=2), generator=played, space=SPACE)
    for _ in range(3):  # warm-up (one slot: one training level a rollout), replay
        sampler.begin_rollout(1)
        level, _ = sampler.sample_for_slot(0)
        sampler.update(level, 0.1)
    assert sampler.begin_rollout(1) == "proposal"
    level, replayed = sampler.sample_for_slot(0)
    assert not replayed and not SPACE.is_solvable(level)
    sampler.record_return(level, 0.0)
    sampler.update(level, 0.7)
    assert sampler.generated_levels() == []


def test_interpolation_at_0_and_1_decodes_to_the_endpoints(fitted):
    codes, result = fitted
    gen = LevelGenerator(result.model, SPACE, codes)
    for a, b in ((0, 1), (2, 5), (4, 3)):
        for t, end in ((0.0, a), (1.0, b)):
            decoded, _ = result.model.decode_codes(gen.latents(a, b, t)[None], sample=False)
            same = (decoded[0].numpy() == codes[end]).mean()
            assert same >= 0.95, (a, b, t, same)


def test_generated_levels_are_valid_counted_and_reproducible(fitted):
    codes, result = fitted
    gen = LevelGenerator(result.model, SPACE, codes)
    levels = gen(np.random.default_rng(5), 40)
    assert len(levels) >= 1 and all(isinstance(lv, MazeLevel) for lv in levels)
    made = gen.counts["valid"] + gen.counts["dropped"]
    assert made % 36 == 0 and made >= 36 and gen.counts["valid"] == len(levels)
    assert gen.counts["solvable"] == sum(SPACE.is_solvable(lv) for lv in levels)
    again = LevelGenerator(result.model, SPACE, codes)(np.random.default_rng(5), 40)
    assert again == levels
    assert gen.points().tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_model_file_round_trip_and_bad_files(tmp_path, fitted):
    codes, result = fitted
    path = tmp_path / "m.pt"
    save(DREDModel(result.model, codes, [], FitConfig(), {"best_epoch": 1}, {"env": "maze"}), path)
    loaded = load(path)
    assert loaded.fingerprints == [fingerprint(c) for c in codes] and loaded.meta == {"env": "maze"}
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
    raw = torch.load(path, weights_only=True)  # plain data only
    json.dumps({k: raw[k] for k in ("config", "fit", "holdout", "fingerprints", "meta")})

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:2000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "heldout-dred-vae-v1", "obj": Path("x")}, pickled)
    for bad, needle in ((damaged, "not a readable"), (foreign, "not a DRED model file"), (pickled, "not a readable")):
        with pytest.raises(ValueError, match=needle):
            load(bad)


# -- the command line -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess (its stdout is what a user would redirect to a file)."""
    return subprocess.run([sys.executable, "-m", "heldout.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("dred") / "model.pt"
    assert main(["dred", "fit", "--env", "maze", "--train-levels", "6", "--set", TINY_SET, "--out", str(out), "--no-progress"]) == 0
    return out


def test_dred_fit_defaults_to_the_training_levels_heldout_train_uses(tmp_path):
    out = tmp_path / "default.pt"
    tiny = "{max_epochs: 1, latent_dim: 4, hidden_dim: 8, channels: 4}"
    assert main(["dred", "fit", "--env", "maze", "--set", tiny, "--out", str(out), "--no-progress"]) == 0
    # the maze preset's 25 training levels (the family's own default set holds 200)
    wanted = [fingerprint(SPACE.encode(lv)) for lv in MazeFamily().level_set("train", num_train_levels=25)]
    assert load(out).fingerprints == wanted


def test_dred_fit_writes_a_model_and_tensorboard_logs(cli_model, scalar_tags):
    model = load(cli_model)
    assert len(model.levels) == 6 and model.holdout == []  # published: fitted on every training level
    assert model.fit_summary["epochs"] == 20
    assert set(model.fit_summary["validity"]) == {"valid", "solvable", "repaired", "dropped"}
    measured = model.fit_summary["generator"]  # both decode rules, side by side
    assert set(measured) == {"mode", "sample"}
    for m in measured.values():
        assert set(m) == {"levels", "valid_fraction", "nearest_train", "train_loo", "end_to_parent"}
        assert 0 <= m["valid_fraction"] <= 1 and m["levels"] == 360
        assert m["train_loo"] == measured["mode"]["train_loo"]
    wanted = [fingerprint(SPACE.encode(lv)) for lv in MazeFamily().level_set("train", num_train_levels=6)]
    assert model.fingerprints == wanted
    tags = scalar_tags(cli_model.with_name("model-tb"))
    assert {"dred_fit/loss", "dred_fit/kl", "dred_fit/accuracy"} <= tags


@pytest.mark.parametrize(
    "args, needle",
    [
        (["fit", "--env", "procgen/coinrun", "--out", "OUT"], "no array encoding"),
        (["fit", "--levels", "nope", "--out", "OUT"], "no level set 'nope'"),
        (["fit", "--set", "{latent: 3}", "--out", "OUT"], "unknown DRED fit setting(s) latent"),
        (["fit", "--set", "{latent_dim: 0}", "--out", "OUT"], "latent_dim must be a positive integer"),
        (["fit", "--train-levels", "1", "--out", "OUT"], "needs at least 2"),
        (["sample", "DAMAGED", "-n", "2"], "not a readable DRED model file"),
        (["sample", "MISSING", "-n", "2"], "no DRED model file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, cli_model, args, needle):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(cli_model.read_bytes()[:500])
    out = tmp_path / "out.pt"
    names = {"OUT": str(out), "DAMAGED": str(damaged), "MISSING": str(tmp_path / "missing.pt")}
    argv = ["dred", *(names.get(a, a) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not out.exists() and not out.with_name("out-tb").exists()


def test_dred_sample_prints_a_level_file(tmp_path, cli_model):
    result = run_cli("dred", "sample", str(cli_model), "-n", "5", "--seed", "2")
    assert result.returncode == 0, result.stderr
    levels_file = tmp_path / "gen.txt"
    levels_file.write_text(result.stdout)
    levels = SPACE.read_levels(levels_file)
    assert len(levels) == 5  # unsolvable ones included: DRED plays them (published)
    assert "valid" in result.stderr and "solvable" in result.stderr and "dropped" in result.stderr
    shown = run_cli("maze", "show", str(levels_file))
    assert shown.returncode == 0 and "level 5 of 5" in shown.stdout


# -- heldout train --sampler dred ----------------------------------------------------------------

MAZE_FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "2", "--eval.episodes", "6", "--eval.final_episodes", "12", "--eval.num_envs", "6",
    "--torch_threads", "1", "--no-progress", "--train-levels", "6", "--sampler", "dred", "--env.test_levels", "test",
]  # fmt: skip


def test_train_with_a_given_model_copies_it_into_the_run_and_resumes_without_refitting(tmp_path, cli_model, scalar_tags):
    given = tmp_path / "given.pt"
    given.write_bytes(cli_model.read_bytes())
    run = tmp_path / "run"
    params = f"{{model: {given}, generation_batch: 8}}"
    assert main(["train", *MAZE_FAST, "--steps", "1024", "--sampler.params", params, "--run-dir", str(run)]) == 0
    kept = run / "dred" / "model.pt"
    assert kept.read_bytes() == given.read_bytes()
    stamp = kept.stat().st_mtime_ns
    state = checkpoint.load(run / "checkpoints" / "latest.pt", MazeLevelSpace())["sampler"]["sampler"]
    assert state["sampler"] == "dred" and state["num_train"] == 6
    # Two rollouts of 8 slots: the warm-up (the 6 training levels, no gradient), then a replay rollout.
    assert state["visited"].all() and state["kind"] == "replay" and state["proposed"] == 0
    assert state["progress"] == 0.5  # set before each rollout: the second of two started at 512 of 1024 steps
    tags = scalar_tags(run / "tb")
    assert {"level_sampler/eta", "level_sampler/num_generated", "level_sampler/generator_valid"} <= tags
    assert "train/masked_fraction" in tags  # proposals take no gradient

    given.write_bytes(b"not a model any more")  # the run needs only its own copy now
    assert main(["train", "--resume", str(run), "--steps", "1536", "--no-progress"]) == 0
    assert kept.stat().st_mtime_ns == stamp
    assert json.loads((run / "report.json").read_text())["steps"] >= 1536
    state = checkpoint.load(run / "checkpoints" / "latest.pt", MazeLevelSpace())["sampler"]["sampler"]
    assert state["kind"] == "proposal" and state["proposed"] == 8  # the third rollout: one new level per slot
    assert main(["evaluate", str(run), "--levels", "test", "--episodes", "4"]) == 0


def test_train_refuses_a_model_fitted_on_other_levels(tmp_path, capsys, cli_model):
    run = tmp_path / "run"
    argv = ["train", *MAZE_FAST, "--train-levels", "7", "--steps", "512", "--run-dir", str(run)]
    assert main([*argv, "--sampler.params", f"{{model: {cli_model}}}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "fitted on other levels" in err and len(err.splitlines()) == 1
    assert main([*argv, "--sampler.params", "{fit: {max_epoch: 3}}"]) == 2
    assert "unknown DRED fit setting(s) max_epoch" in capsys.readouterr().err
    assert not run.exists()


def test_the_generators_import_no_env_and_no_agent():
    code = "import sys, heldout.generators; print([m for m in sys.modules if m.startswith(('heldout.envs', 'heldout.agents'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
