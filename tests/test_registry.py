"""The environment registry: names, errors."""

import pytest

from heldout import envs


def test_unknown_name_lists_close_matches_and_available_names():
    with pytest.raises(KeyError) as err:
        envs.get("no-such-env")
    assert "unknown environment 'no-such-env'" in str(err.value)
    assert "Available:" in str(err.value)


# -- heldout envs --level-sets ---------------------------------------------------------------------


def test_envs_level_sets_reports_sizes_notes_and_dropped_test_levels(tmp_path, monkeypatch, capsys):
    from heldout.cli import main

    monkeypatch.setenv("HELDOUT_CACHE_DIR", str(tmp_path / "cache"))
    args = ["envs", "--level-sets", "procgen/coinrun", "bigfish", "maze", "--num-train-levels", "20"]
    assert main([*args, "--num-test-levels", "10"]) == 0
    out = capsys.readouterr().out
    families = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert families[:3] == ["procgen/coinrun", "procgen/bigfish", "maze"]  # in the order named
    assert "  train: 20 levels" in out and "  full: unbounded" in out and "  named: 5 levels" in out
    assert "seeds 0..19" in out and "hand-designed mazes" in out  # the notes
    coinrun = envs.level_set("procgen/coinrun", "test", num_train_levels=20, num_test_levels=10)
    table = out.split("held-out sets filtered by content fingerprint:\n")[1].splitlines()
    assert table[0].split() == ["family", "set", "levels", "candidates", "dropped", "fingerprint", "proves", "distinct"]
    assert table[1].split()[:6] == [
        "procgen/coinrun", "test", "10", str(coinrun.metadata["candidates"]), str(coinrun.metadata["dropped"]), "yes"
    ]
    assert table[2].split()[:6] == ["procgen/bigfish", "test", "10", "10", "0", "no:"]
    assert "the fish are spawned during play" in table[2]
    assert len(table) == 3  # maze sets are not fingerprint-filtered


def test_envs_lists_only_the_named_families_and_rejects_unknown_names(capsys):
    from heldout.cli import main

    assert main(["envs", "heist", "maze"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["name", "procgen/heist", "maze"]
    assert main(["envs", "--level-sets", "procgen/coinrnu"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'procgen/coinrnu'" in err and "Did you mean 'procgen/coinrun'" in err


# -- heldout.names: the errors every registry shares ---------------------------------------------


def test_names_module_imports_nothing_from_heldout():
    import subprocess
    import sys

    code = "import sys, heldout.names; print(*sorted(m for m in sys.modules if m.startswith('heldout')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["heldout", "heldout.names"]


def test_every_registry_words_unknown_and_taken_names_alike():
    from heldout import level_samplers
    from heldout.envs.procgen import games
    from heldout.names import unknown_name_message

    assert unknown_name_message("thing", "bax", ["bar", "baz", "qux"]) == (
        "unknown thing 'bax'. Did you mean 'baz', 'bar'? Available: bar, baz, qux"
    )
    assert unknown_name_message("thing", "zzz", ["bar"], listed_as="Things") == "unknown thing 'zzz'. Things: bar"
    with pytest.raises(KeyError) as err:
        envs.get("coinrunn")  # close to a short alias: aliases are suggested, only full names listed
    message = err.value.args[0]
    assert message.startswith("unknown environment 'coinrunn'. Did you mean 'coinrun', 'procgen/coinrun'? Available: ")
    # (families other tests registered, gym:<id> or minigrid/<name>, may sit between)
    assert ", procgen/bigfish, " in message and ("Available: maze, " in message or ", maze, " in message)
    with pytest.raises(KeyError, match=r"unknown level sampler 'unifrom'\. Did you mean 'uniform'\? Available: accel, dr, dred, paired, plr"):
        level_samplers.get("unifrom")
    with pytest.raises(ValueError, match=r"unknown Procgen game 'ninj'\. Did you mean 'ninja'\? Games: bigfish, "):
        games.check_game("ninj")
    other = envs.procgen.ProcgenFamily("maze")
    other.name = "maze"
    with pytest.raises(ValueError, match=r"^an environment family named 'maze' is already registered; pass replace=True$"):
        envs.register(other)
    with pytest.raises(ValueError, match=r"^a level sampler named 'plr' is already registered; pass replace=True$"):
        level_samplers.register("plr", level_samplers.UniformSampler)
