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

SPACE = MazeLevelSpace()
SMALL = dict(latent_dim=16, hidden_dim=128, channels=16)
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
    result = fit(codes, VAEConfig(**SMALL), FitConfig(max_epochs=150, patience=150, holdout_fraction=0.0))
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
    result = fit(train_codes(10), VAEConfig(**SMALL), FitConfig(max_epochs=60, patience=5, holdout_fraction=0.1, seed=3))
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
            walls = (model.decode(z).layout > 0).numpy().reshape(64, 13, 13)
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
    near = torch.tensor([3.0, 1e-4, 0.0])
    assert torch.allclose(slerp(0.5, a, near), (a + near) / 2)  # nearly parallel: linear


def test_interpolation_at_0_and_1_decodes_to_the_endpoints(fitted):
    codes, result = fitted
    gen = LevelGenerator(result.model, SPACE, codes)
    for a, b in ((0, 1), (2, 5), (4, 3)):
        for t, end in ((0.0, a), (1.0, b)):
            decoded, _ = result.model.decode_codes(gen.latents(a, b, t)[None], sample=False)
            same = (decoded[0].numpy() == codes[end]).mean()
            assert same >= 0.95, (a, b, t, same)


def test_generated_levels_are_valid_solvable_counted_and_reproducible(fitted):
    codes, result = fitted
    gen = LevelGenerator(result.model, SPACE, codes)
    levels = gen(np.random.default_rng(5), 40)
    assert len(levels) >= 1 and all(isinstance(lv, MazeLevel) and SPACE.is_solvable(lv) for lv in levels)
    made = gen.counts["valid"] + gen.counts["dropped"]
    assert made % 36 == 0 and made >= 36 and gen.counts["valid"] == len(levels)
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


def test_dred_fit_writes_a_model_and_tensorboard_logs(cli_model, scalar_tags):
    model = load(cli_model)
    assert len(model.levels) == 6 and len(model.holdout) == 1  # 10% of 6, at least one
    assert model.fit_summary["epochs"] <= 20 and set(model.fit_summary["validity"]) == {"valid", "repaired", "dropped"}
    wanted = [fingerprint(SPACE.encode(lv)) for lv in MazeFamily().level_set("train", num_train_levels=6)]
    assert model.fingerprints == wanted
    tags = scalar_tags(cli_model.with_name("model-tb"))
    assert {"dred_fit/loss", "dred_fit/kl", "dred_fit/val_loss", "dred_fit/accuracy", "dred_fit/val_accuracy"} <= tags


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
    assert len(levels) == 5 and all(SPACE.is_solvable(lv) for lv in levels)
    assert "valid" in result.stderr and "dropped" in result.stderr
    shown = run_cli("maze", "show", str(levels_file))
    assert shown.returncode == 0 and "level 5 of 5" in shown.stdout


# -- heldout train --sampler dred ----------------------------------------------------------------

MAZE_FAST = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "2", "--eval.episodes", "6", "--eval.final_episodes", "12", "--eval.num_envs", "6",
    "--torch_threads", "1", "--no-progress", "--train-levels", "6", "--sampler", "dred",
]  # fmt: skip


def test_train_with_a_given_model_copies_it_into_the_run_and_resumes_without_refitting(tmp_path, cli_model, scalar_tags):
    given = tmp_path / "given.pt"
    given.write_bytes(cli_model.read_bytes())
    run = tmp_path / "run"
    params = f"{{model: {given}, generation_batch: 8, replay_prob: 0.3}}"
    assert main(["train", *MAZE_FAST, "--steps", "1024", "--sampler.params", params, "--run-dir", str(run)]) == 0
    kept = run / "dred" / "model.pt"
    assert kept.read_bytes() == given.read_bytes()
    stamp = kept.stat().st_mtime_ns
    state = checkpoint.load(run / "checkpoints" / "latest.pt", MazeLevelSpace())["sampler"]["sampler"]
    assert state["sampler"] == "dred" and state["num_train"] == 6 and state["proposed"] > 0
    assert state["progress"] == 0.5  # set before each rollout: the second of two started at 512 of 1024 steps
    tags = scalar_tags(run / "tb")
    assert {"level_sampler/eta", "level_sampler/num_generated", "level_sampler/generator_valid"} <= tags
    assert "train/masked_fraction" in tags  # proposals take no gradient

    given.write_bytes(b"not a model any more")  # the run needs only its own copy now
    assert main(["train", "--resume", str(run), "--steps", "1536", "--no-progress"]) == 0
    assert kept.stat().st_mtime_ns == stamp
    assert json.loads((run / "report.json").read_text())["steps"] >= 1536
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
