"""Sampler parameters as settings: ``--sampler.KEY`` flags, the help's list, YAML, validation."""

import argparse

import pytest

from heldout.experiments import spec as specs
from heldout.trainer import config
from heldout.trainer.command import add_arguments, config_from_args


def parser():
    p = argparse.ArgumentParser(allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def parse(argv):
    return config_from_args(parser().parse_args(argv))[0]


def test_a_flag_sets_a_sampler_parameter_typed_for_the_chosen_sampler():
    cfg = parse(["--sampler", "plr", "--sampler.temperature", "0.3", "--sampler.replay_prob", "1",
                 "--sampler.replay_schedule", "fixed", "--sampler.capacity", "none"])  # fmt: skip
    assert cfg.sampler.params == {"temperature": 0.3, "replay_prob": 1.0, "replay_schedule": "fixed", "capacity": None}
    assert type(cfg.sampler.params["replay_prob"]) is float
    assert parse(["--sampler", "accel", "--sampler.num_edits", "4e0"]).sampler.params == {"num_edits": 4}


def test_sampler_params_still_works_and_a_flag_wins_over_the_same_key():
    cfg = parse(["--sampler", "plr", "--sampler.params", "{score: max_mc, temperature: 0.1}"])
    assert cfg.sampler.params == {"score": "max_mc", "temperature": 0.1}
    cfg = parse(["--sampler", "plr", "--sampler.temperature", "0.5",
                 "--sampler.params", "{score: max_mc, temperature: 0.1}"])  # fmt: skip
    assert cfg.sampler.params == {"score": "max_mc", "temperature": 0.5}


def test_yaml_takes_either_form_and_the_config_keeps_the_canonical_one(tmp_path):
    inline, nested = tmp_path / "inline.yaml", tmp_path / "nested.yaml"
    inline.write_text("sampler: {name: plr, temperature: 0.3, params: {score: max_mc}}\n")
    nested.write_text("sampler:\n  name: plr\n  params: {temperature: 0.3, score: max_mc}\n")
    a, b = parse(["--config", str(inline)]), parse(["--config", str(nested)])
    assert a == b
    assert config.to_dict(a)["sampler"] == {"name": "plr", "params": {"score": "max_mc", "temperature": 0.3}}
    config.save_yaml(a, tmp_path / "saved.yaml")
    assert config.load_yaml(tmp_path / "saved.yaml")["sampler"] == config.to_dict(a)["sampler"]
    # the command line's flag wins over the file's parameter
    assert parse(["--config", str(inline), "--sampler.temperature", "0.2"]).sampler.params["temperature"] == 0.2


def test_the_default_config_is_saved_exactly_as_before():
    before = config.to_dict(config.preset("maze"))
    cfg = parse([])
    assert config.to_dict(cfg) == before
    assert before["sampler"] == {"name": "uniform", "params": {}}


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("nope", {}, "unknown level sampler 'nope'.*Available: accel, dr, dred, paired, plr, repaired, robust_plr, uniform; choose one with --sampler NAME"),
        ("plr", {"temperature": "abc"}, "bad value for sampler.temperature: 'abc' .*; plr's temperature takes a float"),
        ("plr", {"replay_prob": True}, "bad value for sampler.replay_prob: True \\(expected a number\\); plr's replay_prob takes a float\\|none"),
        ("uniform", {"temperature": 0.3}, "level sampler 'uniform' takes no parameter 'temperature'; it takes score, capacity, seed \\(see"),
        ("plr", {"model": "m.pt"}, "level sampler 'plr' takes no parameter 'model'"),
        ("dred", {"rho": 0.3}, "'dred' takes no parameter 'rho'; it takes score, .*, seed, fit, model"),
    ],
)
def test_validate_refuses_a_bad_sampler_name_parameter_or_type(name, params, message):
    cfg = config.preset("maze")
    cfg.sampler = config.SamplerConfig(name, params)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_validate_types_the_values_and_passes_dreds_trainer_keys_on():
    cfg = config.preset("maze")
    cfg.sampler = config.SamplerConfig("dred", {"model": "m.pt", "fit": {"max_epochs": 3}, "eta_end": 1, "capacity": "4e3"})
    cfg.validate()
    assert cfg.sampler.params == {"model": "m.pt", "fit": {"max_epochs": 3}, "eta_end": 1.0, "capacity": 4000}


def test_a_bad_flag_value_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="bad value for sampler.temperature: 'abc'"):
        parse(["--sampler", "plr", "--sampler.temperature", "abc"])
    with pytest.raises(ValueError, match="'uniform' takes no parameter 'temperature'"):
        parse(["--sampler.temperature", "0.3"])


def help_entries() -> dict[str, dict[str, str]]:
    """The help's list: sampler -> {flag and type: its help, wrapped lines joined}."""
    listed: dict[str, dict[str, str]] = {}
    for line in parser().format_help().split("level sampler parameters:")[1].splitlines():
        indent = len(line) - len(line.lstrip())
        if indent == 2:
            entries = listed.setdefault(line.strip(), {})
        elif indent == 4:
            left, _, text = line.strip().partition("  ")
            entries[left] = text.strip()
        elif indent > 4:
            entries[left] += " " + line.strip()
    return listed


def test_the_help_lists_each_samplers_parameters_with_type_and_default():
    listed = help_entries()
    assert list(listed) == ["accel:", "dr:", "dred:", "paired:", "plr:", "repaired:", "robust_plr:", "uniform:"]
    assert listed["uniform:"] == listed["dr:"] | {
        "--sampler.capacity INT|NONE": "how many scored levels of an unbounded space to remember (default 4000).",
    }
    assert listed["dr:"] == {
        "--sampler.score STR": "the score the glue computes for logging. (default: 'value_l1')",
        "--sampler.capacity INT|NONE": "how many scored levels to remember for logging (default 4000).",
        "--sampler.seed INT": "seeds the sampler's own random generator. (default: --seed)",
    }
    accel, plr, dred = listed["accel:"], listed["plr:"], listed["dred:"]
    assert accel["--sampler.num_edits INT"] == "edit steps per child. (default: 5)"
    assert accel["--sampler.temperature FLOAT"] == "the score transform's temperature (beta), > 0. (default: 0.3)"
    assert plr["--sampler.temperature FLOAT"] == "the score transform's temperature (beta), > 0. (default: 0.1)"
    assert plr["--sampler.replay_prob FLOAT|NONE"] == "the replay probability of the fixed schedule, the cap of ramp (default 0.5)."
    assert len(plr) == 14 and len(accel) == 15 and len(dred) == 20  # dred: 19 parameters and the trainer's keys
    assert dred["fit, model"].startswith("the trainer's")


def test_a_sweep_takes_sampler_parameters_in_either_form():
    base = {"sampler": {"name": "plr", "temperature": 0.3}}
    runs = specs.plan({"base": base, "grid": {"sampler.replay_prob": [0.2, 0.4]}})
    assert [r.cfg.sampler.params for r in runs] == [
        {"temperature": 0.3, "replay_prob": 0.2},
        {"temperature": 0.3, "replay_prob": 0.4},
    ]


# -- defaults that depend on the env family ---------------------------------------------------------
MAZE_ROBUST_PLR = {  # jaxued examples/maze_plr.py 875-884 with --score_function pvl
    "score": "positive_value_loss", "temperature": 0.3, "staleness_coef": 0.3, "replay_prob": 0.8,
    "min_fill_ratio": 0.5, "eviction": "weight",
}  # fmt: skip


def test_robust_plr_on_the_maze_resolves_jaxueds_settings_into_the_saved_config(tmp_path):
    cfg = parse(["--sampler", "robust_plr"])
    assert cfg.env.name == "maze" and cfg.sampler.params == MAZE_ROBUST_PLR
    config.save_yaml(cfg, tmp_path / "config.yaml")
    saved = config.load_yaml(tmp_path / "config.yaml")
    assert saved["sampler"]["params"] == MAZE_ROBUST_PLR  # the run's directory says what it ran
    assert config.from_dict(saved).sampler.params == MAZE_ROBUST_PLR


def test_procgen_keeps_the_procgen_defaults_and_a_user_value_wins():
    assert parse(["--env", "procgen/coinrun", "--sampler", "robust_plr"]).sampler.params == {}
    assert parse(["--env", "coinrun", "--sampler", "robust_plr"]).sampler.params == {}
    cfg = parse(["--sampler", "robust_plr", "--sampler.temperature", "0.1", "--sampler.params", "{eviction: score}"])
    assert cfg.sampler.params == {**MAZE_ROBUST_PLR, "temperature": 0.1, "eviction": "score"}
    assert parse(["--sampler", "plr"]).sampler.params == {}  # PLR keeps level-replay's settings everywhere


def test_the_help_shows_the_maze_defaults_beside_the_others():
    robust = help_entries()["robust_plr:"]
    assert robust["--sampler.temperature FLOAT"].endswith("(default: 0.1; maze: 0.3)")
    assert robust["--sampler.eviction STR"].endswith("(default: 'score'; maze: 'weight')")
    assert robust["--sampler.replay_prob FLOAT|NONE"].endswith("(default 0.5). (maze: 0.8)")
