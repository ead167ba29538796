"""The training config: presets, YAML, CLI overrides, validation."""

import argparse

import pytest

from heldout.trainer import config
from heldout.trainer.command import add_arguments, config_from_args
from heldout.cli import UsageError


def parse(argv):
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_procgen_preset_is_the_published_baseline():
    cfg = config.preset("procgen")
    assert cfg.env.num_envs == 64 and cfg.steps == 25_000_000
    assert (cfg.ppo.lr, cfg.ppo.n_steps, cfg.ppo.n_epochs, cfg.ppo.n_minibatches) == (5e-4, 256, 3, 8)
    assert (cfg.ppo.gamma, cfg.ppo.gae_lambda, cfg.ppo.ent_coef, cfg.ppo.clip_range) == (0.999, 0.95, 0.01, 0.2)
    assert (cfg.ppo.clip_range_vf, cfg.ppo.vf_coef, cfg.ppo.max_grad_norm, cfg.ppo.adam_eps) == (0.2, 0.5, 0.5, 1e-5)
    assert (cfg.ppo.value_loss, cfg.ppo.advantage_scope, cfg.ppo.reward_norm_gamma) == ("published", "rollout", 0.99)
    maze = config.preset("maze").ppo  # heldout's own setting: the sb3 form it was measured with
    assert (maze.value_loss, maze.advantage_scope, maze.reward_norm_gamma) == ("sb3", "minibatch", None)


def test_short_and_dotted_flags_override_the_preset(tmp_path):
    cfg, run_dir, resume = parse(
        ["--env", "procgen/bigfish", "--train-levels", "50", "--ppo.lr", "3e-4", "--steps", "1e5",
         "--run-dir", str(tmp_path / "r"), "--env.options", "{distribution_mode: hard}"]
    )
    assert cfg.env.name == "procgen/bigfish" and cfg.env.num_envs == 64  # procgen preset picked from --env
    assert cfg.env.num_train_levels == 50 and cfg.ppo.lr == 3e-4 and cfg.steps == 100_000
    assert cfg.env.options == {"distribution_mode": "hard"}
    assert run_dir == tmp_path / "r" and not resume


def test_yaml_file_then_flags(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("env:\n  name: maze\n  num_envs: 8\nppo:\n  n_steps: 64\nseed: 5\n")
    cfg, _, _ = parse(["--config", str(path), "--seed", "7"])
    assert (cfg.env.num_envs, cfg.ppo.n_steps, cfg.seed) == (8, 64, 7)


def test_yaml_round_trip(tmp_path):
    cfg = config.preset("procgen")
    cfg.network.impala_channels = (8, 16, 16)
    config.save_yaml(cfg, tmp_path / "c.yaml")
    assert config.from_dict(config.load_yaml(tmp_path / "c.yaml")) == cfg


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--steps", "-5"], "steps"),
        (["--env.num_envs", "0"], "env.num_envs"),
        (["--ppo.lr", "abc"], "ppo.lr"),
        (["--ppo.lr", "-1"], "ppo.lr"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_values_name_the_setting(argv, needle):
    with pytest.raises(ValueError, match=needle):
        parse(argv)


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ppo:\n  learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown setting 'ppo.learning_rat'"):
        parse(["--config", str(path)])


def test_resume_refuses_config_changes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config.save_yaml(config.preset("maze"), run / "config.yaml")
    with pytest.raises(UsageError, match="keeps the run's config"):
        parse(["--resume", str(run), "--ppo.lr", "0.1"])
    cfg, run_dir, resume = parse(["--resume", str(run), "--steps", "5000"])
    assert resume and run_dir == run and cfg.steps == 5000


@pytest.mark.parametrize("name", ["procgen/coinrun", "coinrun", "heldout/procgen-coinrun-v0"])
def test_procgen_preset_follows_any_spelling_of_a_procgen_game(name):
    assert config.preset_for_env(name) == "procgen"
    assert config.preset_for_env("maze") == "maze"
    assert config.preset_for_env("gym:MiniGrid-SimpleCrossingS9N1-v0") == "small"  # evaluated on `test` only
    assert config.preset("small").env.test_levels == ("test",)


def test_maze_lstm_preset_is_the_maze_job_with_the_recurrent_agent():
    lstm, maze = config.preset("maze_lstm"), config.preset("maze")
    assert (lstm.agent, lstm.steps, lstm.network.lstm_hidden_size) == ("ppo_lstm", 1_000_000, 256)
    lstm.agent, lstm.steps = maze.agent, maze.steps
    assert config.to_dict(lstm) == config.to_dict(maze)
    cfg, _, _ = parse(["--preset", "maze_lstm", "--network.lstm_hidden_size", "64"])
    assert cfg.agent == "ppo_lstm" and cfg.network.lstm_hidden_size == 64
