"""Procgen families: registration, options and errors, normalised scores, level sets and the
content filter of the held-out set."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from heldout import envs
from heldout.envs.procgen import backend, fingerprints, games, levels


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test starts with empty fingerprint caches and its own disk cache directory."""
    monkeypatch.setenv("HELDOUT_CACHE_DIR", str(tmp_path / "cache"))
    fingerprints.clear_memory()
    levels._test_set.cache_clear()
    yield
    fingerprints.clear_memory()
    levels._test_set.cache_clear()


def frame_hash(game: str, seed: int, mode: str = "easy") -> bytes:
    """The test's own fingerprint: hash of the uncentred first frame, straight from procgen."""
    env = backend.gym3_env_class()(
        num=1, env_name=game, distribution_mode=mode, start_level=seed, num_levels=1, center_agent=False
    )
    _, ob, _ = env.observe()
    env.close()
    return hashlib.sha256(ob["rgb"][0].tobytes()).digest()


# -- registration and options ------------------------------------------------------------------


def test_all_sixteen_games_are_registered_with_gymnasium_ids():
    names = [n for n in envs.names() if n.startswith("procgen/")]
    assert names == [f"procgen/{g}" for g in sorted(games.GAMES)]
    assert len(names) == 16
    for name in names:
        assert envs.gym_id(name) in gym.registry
        family = envs.get(name)
        assert family.level_set_names == ("train", "test", "full")
        assert family.score_unit == "return"


def test_importing_the_family_does_not_import_procgen():
    code = "import sys, heldout.envs as e; e.get('procgen/coinrun'); print('procgen' in sys.modules, 'gym3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("call", ["make", "make_vec", "level_set"])
def test_bad_distribution_mode_is_a_clear_error(call):
    family = envs.get("procgen/coinrun")
    with pytest.raises(ValueError, match=r"distribution_mode 'medium'.*'easy', 'hard'"):
        if call == "make":
            family.make("train", distribution_mode="medium")
        elif call == "make_vec":
            family.make_vec(2, "train", distribution_mode="medium")
        else:
            family.level_set("train", distribution_mode="medium")


def test_bad_level_set_name_unknown_option_and_unknown_game_are_clear_errors():
    family = envs.get("procgen/coinrun")
    with pytest.raises(ValueError, match=r"no level set 'validation'; choose one of train, test, full"):
        family.make("validation")
    with pytest.raises(ValueError, match=r"no level set 'tets'"):
        family.make_vec(2, "tets")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_level'\]"):
        family.make("train", num_level=10)
    with pytest.raises(ValueError, match=r"Did you mean 'coinrun'"):
        envs.procgen.ProcgenFamily("coinrunn")
    with pytest.raises(ValueError, match="num_train_levels must be a positive integer"):
        family.level_set("train", num_train_levels=0)


def test_level_space_parses_formats_and_rejects_bad_levels():
    space = envs.get("procgen/maze").level_space()
    assert space.parse(" 42 ") == 42 and space.format(np.int64(42)) == "42"
    assert space.coerce("7") == 7 and isinstance(space.coerce(np.int32(7)), int)
    for bad in ("abc", -1, 2**31 - 1, 3.5, True):
        with pytest.raises(ValueError, match="procgen/maze"):
            space.coerce(bad)
    picture = space.render(3)
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8


# -- normalised scores ---------------------------------------------------------------------------


def test_normalised_scores_use_the_published_easy_constants():
    coinrun = envs.get("procgen/coinrun")
    np.testing.assert_allclose(coinrun.normalise(np.array([5.0, 10.0, 7.5, 0.0])), [0.0, 1.0, 0.5, -1.0])
    # bigfish (1, 40): 20.5 is half-way; fruitbot (-1.5, 32.4): -1.5 -> 0, 32.4 -> 1
    np.testing.assert_allclose(envs.get("procgen/bigfish").normalise([1.0, 20.5, 40.0]), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(envs.get("procgen/fruitbot").normalise([-1.5, 32.4]), [0.0, 1.0])
    # starpilot (2.5, 64): 33.25 is half-way
    np.testing.assert_allclose(envs.get("procgen/starpilot").normalise([33.25]), [0.5])
    assert coinrun.normalise(np.array([7.0]), distribution_mode="hard") is None
    options = {"distribution_mode": "easy", "num_train_levels": 50, "level_seed": 3}
    np.testing.assert_allclose(coinrun.normalise([7.5], **options), [0.5])
    assert set(games.EASY_RETURN_RANGE) == set(games.GAMES)


# -- level sets ------------------------------------------------------------------------------------


def test_train_set_is_the_first_n_seeds_and_full_set_is_the_whole_seed_range():
    family = envs.get("procgen/coinrun")
    assert family.level_set("train").levels == tuple(range(200))
    assert family.level_set("train", num_train_levels=50).levels == tuple(range(50))
    full = family.level_set("full")
    assert not full.finite
    with pytest.raises(TypeError):
        len(full)
    draws = [full.sample(np.random.default_rng(5)) for _ in range(2)]
    assert draws[0] == draws[1]
    many = [full.sample(np.random.default_rng(i)) for i in range(200)]
    assert all(0 <= s < 2**31 - 1 for s in many) and max(many) > 200


@pytest.mark.parametrize("game", ["maze", "coinrun"])
def test_test_set_has_no_fingerprint_overlap_with_the_train_set(game):
    held_out = envs.level_set(f"procgen/{game}", "test", num_test_levels=300)
    meta = held_out.metadata
    assert len(held_out) == 300 and min(held_out.levels) >= 200
    assert meta["fingerprint_proves_distinct"] is True
    assert meta["candidates"] == 300 + meta["dropped"] + meta["repeats_within_test"]
    assert meta["repeats_within_test"] > 0  # these 300 held-out seeds include one repeated level
    # Recompute every fingerprint independently of the library's code and cache.
    train = {frame_hash(game, s) for s in range(200)}
    kept_prints = [frame_hash(game, s) for s in held_out.levels]
    assert not train & set(kept_prints)
    assert len(set(kept_prints)) == len(kept_prints)  # no level twice within the set
    candidates = levels._candidates(200, 0)
    examined = [next(candidates) for _ in range(meta["candidates"])]
    dropped = [s for s in examined if s not in set(held_out.levels)]
    assert len(dropped) == meta["dropped"] + meta["repeats_within_test"]
    assert sum(frame_hash(game, s) in train for s in dropped) == meta["dropped"]
    assert f"{meta['dropped']} of {meta['candidates']} candidates dropped" in held_out.notes
    assert f"{meta['repeats_within_test']} as repeats of a level already in the set" in held_out.notes


def test_a_dropped_maze_candidate_really_is_a_training_level():
    held_out = envs.level_set("procgen/maze", "test", num_test_levels=300)
    assert held_out.metadata["dropped"] > 0  # maze repeats levels often (procgen issue #100)
    candidates = levels._candidates(200, 0)
    first_dropped = next(s for s in candidates if s not in set(held_out.levels))
    twin = next(t for t in range(200) if frame_hash("maze", t) == frame_hash("maze", first_dropped))
    space = envs.get("procgen/maze").level_space()
    np.testing.assert_array_equal(space.render(first_dropped), space.render(twin))
    assert first_dropped != twin


def test_test_set_is_reproducible_extends_by_prefix_and_depends_on_level_seed():
    a = envs.level_set("procgen/heist", "test", num_test_levels=40)
    assert a.levels == envs.level_set("procgen/heist", "test", num_test_levels=40).levels
    levels._test_set.cache_clear()
    fingerprints.clear_memory()
    assert envs.level_set("procgen/heist", "test", num_test_levels=40).levels == a.levels  # from disk
    bigger = envs.level_set("procgen/heist", "test", num_test_levels=60)
    assert bigger.levels[:40] == a.levels
    other = envs.level_set("procgen/heist", "test", num_test_levels=40, level_seed=1)
    assert not set(other.levels) & set(a.levels)
    smaller_train = envs.level_set("procgen/heist", "test", num_test_levels=40, num_train_levels=10)
    assert min(smaller_train.levels) >= 10


def test_games_whose_first_frame_is_partial_say_the_fingerprint_cannot_prove_distinctness():
    held_out = envs.level_set("procgen/bigfish", "test", num_test_levels=20)
    assert held_out.metadata["fingerprint_proves_distinct"] is False
    assert "cannot prove content distinctness for bigfish" in held_out.notes
    assert "fish are spawned during play" in held_out.notes
    assert {g for g in games.GAMES if not games.fingerprint_proves_distinct(g)} == {
        "bigfish",
        "bossfight",
        "leaper",
        "plunder",
        "starpilot",
    }


def test_fingerprints_are_cached_on_disk_and_the_disk_cache_can_be_switched_off(tmp_path, monkeypatch):
    computed = fingerprints.fingerprints("jumper", range(5), "easy")
    assert len(set(computed)) == 5
    files = list((tmp_path / "cache").rglob("fingerprints-jumper-easy.npz"))
    assert len(files) == 1
    fingerprints.clear_memory()

    def no_procgen(*args, **kwargs):
        raise AssertionError("fingerprint recomputed instead of read from disk")

    monkeypatch.setattr(backend, "first_frame", no_procgen)
    assert fingerprints.fingerprints("jumper", range(5), "easy") == computed
    monkeypatch.undo()

    monkeypatch.setenv("HELDOUT_CACHE_DIR", "")
    assert fingerprints.cache_dir() is None
    fingerprints.clear_memory()
    assert fingerprints.fingerprints("jumper", [9], "easy")[0] not in computed
    monkeypatch.setenv("HELDOUT_CACHE_DIR", str(tmp_path / "cache"))
    fingerprints.clear_memory()
    assert 9 not in fingerprints._table("jumper", "easy")  # seed 9 was never written to disk


def test_hard_mode_test_set_builds_with_its_own_fingerprints():
    hard = envs.level_set("procgen/ninja", "test", num_test_levels=10, distribution_mode="hard")
    assert hard.metadata["distribution_mode"] == "hard" and len(hard) == 10
