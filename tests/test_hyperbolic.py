"""Hyperbolic heads with S-RYM (network.geometry hyperbolic): the ball's operations against their
closed forms, numerical safety, spectral norms, every agent from the CLI, resume."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

geoopt = pytest.importorskip("geoopt")

from heldout import agents, checkpoint, envs  # noqa: E402
from heldout.agents.hyperbolic import PoincareMLR, ToPoincareBall, spectral_normalise  # noqa: E402
from heldout.cli import main  # noqa: E402

MAZE = [
    "--env", "maze", "--env.num_envs", "8", "--ppo.n_steps", "64", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "2", "--eval.episodes", "4", "--eval.final_episodes", "4", "--eval.num_envs", "4",
    "--torch_threads", "1", "--no-progress", "--env.test_levels", "test", "--network.lstm_hidden_size", "16",
    "--network.geometry", "hyperbolic",
]  # fmt: skip
PROCGEN = [
    "--env", "procgen/coinrun", "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2",
    "--network.impala_channels", "4,8,8", "--network.features_dim", "32", "--env.options", "{num_test_levels: 20}",
    "--train-levels", "20", "--torch_threads", "1", "--no-progress", "--network.geometry", "hyperbolic",
]  # fmt: skip
EPS32 = 4e-3  # geoopt's projection margin in float32: norms at most (1 - 4e-3) / sqrt(c)


def mobius_add(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """x (+)_c y, written out (Ungar; Ganea et al. 2018, eq. 4)."""
    xy, x2, y2 = float(x @ y), float(x @ x), float(y @ y)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c * c * x2 * y2)


def load(run: Path) -> dict:
    name = yaml.safe_load((run / "config.yaml").read_text())["env"]["name"]
    return checkpoint.load(run / "checkpoints" / "latest.pt", envs.get(name).level_space())


# -- the ball's operations ------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1.0, 2.0])
def test_exp_map_at_the_origin_after_clipping_and_rescaling(c):
    ball = geoopt.PoincareBall(c=c).double()  # (c is stored as softplus^-1(c) in float32: ~1e-8 off)
    to_ball = ToPoincareBall(ball, dim=4, clip_norm=60.0, rescale=True)
    x = np.array([0.3, -0.4, 1.2, 0.0])
    u = x / 2.0  # S-RYM: divided by sqrt(4); |x| < 60, so no clipping
    n = np.linalg.norm(u)
    expected = math.tanh(math.sqrt(c) * n) * u / (math.sqrt(c) * n)
    got = to_ball(th.tensor(x)[None])[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-7)

    big = np.array([30.0, 40.0, 0.0, 0.0])  # norm 50; clipped at 2, halved -> u = (0.6, 0.8, 0, 0)
    got = ToPoincareBall(ball, dim=4, clip_norm=2.0, rescale=True)(th.tensor(big)[None])[0].numpy()
    expected = math.tanh(math.sqrt(c)) / math.sqrt(c) * np.array([0.6, 0.8, 0.0, 0.0])
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    unscaled = ToPoincareBall(ball, dim=4, clip_norm=60.0, rescale=False)(th.tensor(x)[None])[0].numpy()
    n = np.linalg.norm(x)
    np.testing.assert_allclose(unscaled, math.tanh(math.sqrt(c) * n) * x / (math.sqrt(c) * n), rtol=1e-7)


@pytest.mark.parametrize("c", [0.5, 1.0, 3.0])
def test_points_stay_inside_the_ball_and_gradients_finite_for_huge_inputs(c):
    ball = geoopt.PoincareBall(c=c)
    to_ball = ToPoincareBall(ball, dim=32, clip_norm=60.0, rescale=True)
    g = th.Generator().manual_seed(0)
    scales = th.tensor([1e-20, 1.0, 1e3, 1e10, 1e30]).repeat_interleave(8)[:, None]  # |x|^2 overflows float32
    x = (th.randn(40, 32, generator=g) * scales).requires_grad_(True)
    points = to_ball(x)
    norms = points.norm(dim=-1)
    assert th.isfinite(points).all()
    assert (norms <= (1 - EPS32) / math.sqrt(c) + 1e-6).all() and (norms < 1 / math.sqrt(c)).all()
    # clipped at 60, divided by sqrt(32): tanh(sqrt(c) * 10.6) -> the projection radius (not the origin)
    assert norms[-16:].min() > (1 - EPS32) / math.sqrt(c) - 1e-5
    logits = PoincareMLR(ball, 32, 5)(points)
    logits.sum().backward()
    assert th.isfinite(logits).all() and th.isfinite(x.grad).all()


def test_distance_to_a_plane_through_the_origin_is_the_geodesic_distance_along_its_normal():
    ball = geoopt.PoincareBall(c=1.0).double()
    mlr = PoincareMLR(ball, 3, 1).double()
    normal = np.array([1.0, 2.0, -2.0])  # |n| = 3
    with th.no_grad():
        mlr.normals.copy_(th.tensor(normal)[None])
    for t in (0.1, 0.5, 0.9, 0.99):
        x = t * normal / 3.0
        geodesic = math.acosh(1 + 2 * t * t / (1 - t * t))  # d(0, x) on the unit ball
        logit = mlr(th.tensor(x)[None])[0, 0].item()
        assert logit == pytest.approx(3.0 * geodesic, rel=1e-6)  # |n| * signed distance (positive side)
        assert mlr(th.tensor(-x)[None])[0, 0].item() == pytest.approx(-3.0 * geodesic, rel=1e-6)


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_mlr_logits_match_the_hand_computed_formula(c):
    ball = geoopt.PoincareBall(c=c).double()  # (c is stored as softplus^-1(c) in float32: ~1e-8 off)
    mlr = PoincareMLR(ball, 4, 3).double()
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(3, 4))
    offsets = rng.normal(size=(3, 4))
    offsets *= (rng.uniform(0.1, 0.8, size=(3, 1)) / math.sqrt(c)) / np.linalg.norm(offsets, axis=1, keepdims=True)
    with th.no_grad():
        mlr.normals.copy_(th.tensor(normals))
        mlr.offsets.copy_(th.tensor(offsets))
    xs = rng.normal(size=(5, 4))
    xs *= (rng.uniform(0.0, 0.95, size=(5, 1)) / math.sqrt(c)) / np.linalg.norm(xs, axis=1, keepdims=True)
    got = mlr(th.tensor(xs)).detach().numpy()
    for i, x in enumerate(xs):
        for k in range(3):
            z = mobius_add(-offsets[k], x, c)
            n = np.linalg.norm(normals[k])
            arg = 2 * math.sqrt(c) * float(z @ normals[k]) / ((1 - c * float(z @ z)) * n)
            assert got[i, k] == pytest.approx(n / math.sqrt(c) * math.asinh(arg), rel=1e-6, abs=1e-9)


def test_no_nan_over_1500_updates_on_inputs_of_norms_up_to_1e9():
    th.manual_seed(0)
    ball = geoopt.PoincareBall(c=1.0)
    encoder = th.nn.Linear(8, 8)
    spectral_normalise(encoder)
    head = th.nn.Sequential(encoder, ToPoincareBall(ball, 8, 60.0, True), PoincareMLR(ball, 8, 6))
    opt = geoopt.optim.RiemannianAdam(head.parameters(), lr=1e-2, eps=1e-5)
    g = th.Generator().manual_seed(1)
    for _ in range(1500):
        x = th.randn(8, 8, generator=g) * 10.0 ** th.randint(0, 9, (8, 1), generator=g)
        out = head(x)
        target = th.randint(0, 5, (8,), generator=g)
        loss = th.nn.functional.cross_entropy(out[:, :5], target) + (out[:, 5] - 100.0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(head.parameters(), 0.5)
        opt.step()
    assert th.isfinite(loss)
    assert all(th.isfinite(p).all() for p in head.parameters())
    assert head[2].offsets.norm(dim=-1).max() < 1.0
    assert (head[2].offsets.norm(dim=-1) > 0).all()  # the offsets moved off the origin, on the ball


# -- the agents -----------------------------------------------------------------------------------
def _maze_agent(agent: str, geometry: str, **network):
    venv = envs.make_vec("maze", 4, "train", num_train_levels=4)
    cfg = agents.NetworkConfig(geometry=geometry, lstm_hidden_size=16, **network)
    return agents.make(agent, venv, ppo=agents.PPOConfig(n_steps=16, n_minibatches=2), network=cfg, seed=0,
                       device="cpu")  # fmt: skip


@pytest.mark.parametrize("agent", ["ppo", "ppo_lstm"])
def test_srym_spectral_norms_are_one_and_the_heads_are_hyperbolic(agent):
    model = _maze_agent(agent, "hyperbolic")
    policy = model.policy
    layers = [m for m in policy.features_extractor.modules() if isinstance(m, (th.nn.Conv2d, th.nn.Linear))]
    assert len(layers) == 3  # maze network: two 3x3 convs and the linear layer
    policy.set_training_mode(True)
    obs = th.as_tensor(model.env.reset()).float()
    with th.no_grad():
        for _ in range(30):  # one power iteration per training forward
            policy.extract_features(obs)
    for layer in layers:
        assert th.nn.utils.parametrize.is_parametrized(layer, "weight")
        sigma = th.linalg.matrix_norm(layer.weight.detach().reshape(layer.weight.shape[0], -1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)
    assert isinstance(policy.action_net[1], PoincareMLR) and policy.action_net[1].planes == model.action_space.n
    assert isinstance(policy.value_net[1], PoincareMLR) and policy.value_net[1].planes == 1
    assert isinstance(policy.optimizer, geoopt.optim.RiemannianAdam)
    owned = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in policy.parameters() if p.requires_grad} <= owned

    euclid = _maze_agent(agent, "euclidean").policy
    assert not any(th.nn.utils.parametrize.is_parametrized(m) for m in euclid.modules())
    assert isinstance(euclid.action_net, th.nn.Linear)


def test_without_srym_nothing_is_normalised():
    policy = _maze_agent("ppo", "hyperbolic", srym=False).policy
    assert not any(th.nn.utils.parametrize.is_parametrized(m) for m in policy.modules())
    assert policy.action_net[0].scale == 1.0


@pytest.mark.parametrize(
    "agent, sampler, extra",
    [
        ("ppo", "robust_plr", ["--sampler.min_fill_ratio", "0"]),
        ("ppo_lstm", "plr", []),
        ("rad", "uniform", []),
        ("drac", "dr", ["--env.train_set", "random", "--env.options", "{max_steps: 60}"]),
        ("ucb_drac", "uniform", []),
    ],
)
def test_every_agent_trains_with_the_hyperbolic_head(tmp_path, agent, sampler, extra):
    run = tmp_path / agent
    argv = ["train", *MAZE, "--agent", agent, "--sampler", sampler, *extra, "--steps", "1024", "--run-dir", str(run)]
    assert main(argv) == 0
    state = load(run)
    assert state["num_timesteps"] == 1024
    params = state["policy"]
    assert any(k.endswith("offsets") for k in params) and any("parametrizations" in k for k in params)
    assert all(th.isfinite(v).all() for v in params.values() if v.is_floating_point())


def test_procgen_trains_with_the_hyperbolic_head(tmp_path):
    run = tmp_path / "coinrun"
    assert main(["train", *PROCGEN, "--steps", "128", "--run-dir", str(run)]) == 0
    params = load(run)["policy"]
    assert params["action_net.1.normals"].shape == (15, 32)  # coinrun's 15 actions on 32 features


@pytest.mark.parametrize("agent", ["ppo", "ppo_lstm"])
def test_a_continued_run_equals_the_whole_run(tmp_path, agent):
    common = [*MAZE, "--agent", agent, "--checkpoint_interval", "1", "--eval.interval", "100000"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *common, "--steps", "1024", "--run-dir", str(whole)]) == 0
    assert main(["train", *common, "--steps", "512", "--run-dir", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--steps", "1024", "--no-progress"]) == 0
    a, b = load(whole), load(part)
    assert a["policy"].keys() == b["policy"].keys()
    for name in a["policy"]:  # the spectral norms' power-iteration vectors included
        assert th.equal(a["policy"][name], b["policy"][name]), name
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(th.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)
    assert all(type(sb[k]["step"]) is int for k in sb)  # RiemannianAdam counts in ints (integer_steps)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--network.geometry", "spherical"], "network.geometry must be one of euclidean | hyperbolic"),
        (["--network.curvature", "0"], "network.curvature must be a number in (0, inf)"),
        (["--network.hyperbolic_clip_norm", "-1"], "network.hyperbolic_clip_norm"),
    ],
)
def test_bad_hyperbolic_settings_are_one_line(tmp_path, capsys, args, needle):
    run = tmp_path / "bad"
    assert main(["train", *MAZE, "--steps", "512", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists()


def test_missing_geoopt_is_a_one_line_error_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "geoopt", None)  # import geoopt now raises ImportError
    run = tmp_path / "run"
    assert main(["train", *MAZE, "--steps", "512", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'heldout[hyperbolic]'" in err and len(err.splitlines()) == 1
    assert not run.exists()


def test_vector_observations_have_no_hyperbolic_head():
    import gymnasium as gym

    space = gym.spaces.Box(-1.0, 1.0, (4,))
    with pytest.raises(ValueError, match="impala and maze networks, not mlp"):
        agents.policy_kwargs(agents.NetworkConfig(geometry="hyperbolic"), agents.PPOConfig(), space)


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
def test_the_head_on_cuda_matches_cpu():
    th.manual_seed(0)
    ball = geoopt.PoincareBall(c=1.0)
    head = th.nn.Sequential(ToPoincareBall(ball, 8, 60.0, True), PoincareMLR(ball, 8, 4))
    x = th.randn(16, 8) * 20
    cpu = head(x)
    gpu = head.to("cuda")(x.to("cuda"))
    th.testing.assert_close(gpu.cpu(), cpu.detach(), rtol=1e-5, atol=1e-5)


def test_the_procgen_sweep_file_plans_the_papers_protocol():
    from heldout.experiments import spec

    sweep = Path(__file__).resolve().parents[1] / "experiments" / "procgen_hyperbolic" / "sweep.yaml"
    raw = spec.load(sweep)
    assert raw["seeds"] == 5
    runs = spec.plan({**raw, "seeds": [0]}, str(sweep), sweep.parent)
    assert len(runs) == 16 * 2
    cells = {(r.cfg.env.name, r.cfg.network.geometry, r.cfg.network.features_dim) for r in runs}
    assert len({name for name, _, _ in cells}) == 16
    assert {(g, f) for _, g, f in cells} == {("euclidean", 256), ("hyperbolic", 32)}
    for r in runs:
        cfg = r.cfg
        assert cfg.steps == 25_000_000 and cfg.env.num_envs == 64 and cfg.env.num_train_levels == 200
        assert cfg.env.options["distribution_mode"] == "easy" and cfg.ppo.lr == 5e-4 and cfg.ppo.n_epochs == 3
        assert (cfg.network.curvature, cfg.network.hyperbolic_clip_norm, cfg.network.srym) == (1.0, 60.0, True)


def test_runs_saved_before_the_hyperbolic_settings_existed_still_match_their_config():
    from heldout.trainer import config
    from heldout.trainer.rundir import config_differences

    cfg = config.preset("maze")
    saved = config.to_dict(cfg)
    for key in ("geometry", "curvature", "hyperbolic_clip_norm", "srym"):
        del saved["network"][key]
    assert config_differences(saved, cfg) == []
    cfg.network.geometry = "hyperbolic"  # a setting changed from its default is still a difference
    assert config_differences(saved, cfg) == ["network.geometry: 'euclidean' -> 'hyperbolic'"]
