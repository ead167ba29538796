"""Any Gymnasium env as a level family: the generic vec env, seeded families, MiniGrid, `gym:<id>`."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

from heldout import envs, level_samplers
from heldout.cli import main
from heldout.envs.gym_vec import GymLevelVecEnv
from heldout.envs.seeded import digest


class WalkEnv(gym.Env):
    """Level L: walk right from 0 to L (action 1: +1, action 0: stay); reward 1 at L.

    ``noise`` adds a draw from the env's np_random to the observation (reproducible from it);
    ``outside_noise`` draws from a generator the env keeps to itself (not reproducible)."""

    observation_space = gym.spaces.Box(-10, 100, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, outside_noise: bool = False) -> None:
        self.outside = np.random.default_rng() if outside_noise else None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.level, self.x = int(options["level"]), 0
        return self._obs(), {"start": True}

    def step(self, action):
        self.x += int(action)
        done = self.x >= self.level
        return self._obs(), float(done), done, False, {"x": self.x}

    def _obs(self):
        rng = self.outside if self.outside is not None else self.np_random
        return np.array([self.level - self.x, rng.random()], np.float32)


def walk_vec(num_envs=3, levels=(2, 3, 4), outside_noise=False, seed=0):
    level_set = envs.LevelSet("train", levels=tuple(levels))
    return GymLevelVecEnv(
        [WalkEnv(outside_noise) for _ in range(num_envs)], level_set, envs.LevelSpace(), seed=seed
    )


# -- the generic vec env ----------------------------------------------------------------------------
def test_slots_play_the_chosen_levels_with_episode_statistics_and_env_infos():
    vec = walk_vec()
    vec.set_level_source(lambda slot: 2 + slot)  # slot i always plays level 2 + i
    obs = vec.reset()
    assert vec.levels == [2, 3, 4] and obs[:, 0].tolist() == [2, 3, 4]
    ends, new_obs = {}, {}
    for t in range(1, 5):
        obs, rewards, dones, infos = vec.step(np.ones(3, dtype=np.int64))
        assert [i["level"] for i in infos] == [2, 3, 4]
        assert infos[2]["x"] == t  # the env's own info is passed on
        for slot in np.flatnonzero(dones).tolist():
            ends[slot], new_obs[slot] = (t, infos[slot]), obs[slot].copy()
    assert {s: t for s, (t, _) in ends.items()} == {0: 4, 1: 3, 2: 4}  # slot 0 (level 2) ended at t=2 and t=4
    t, info = ends[1]
    assert info["episode"]["r"] == 1.0 and info["episode"]["l"] == 3 and info["episode"]["level"] == 3
    assert info["terminal_observation"][0] == 0.0  # the real last observation (x reached L)
    assert info["TimeLimit.truncated"] is False
    assert new_obs[1][0] == 3.0  # the step that ended slot 1's episode returned level 3's first observation
    assert obs[1, 0] == 2.0 and vec._episode_length.tolist() == [0, 1, 0]


def test_a_family_with_only_make_gets_the_generic_vec_env():
    class WalkFamily(envs.EnvFamily):
        name = "test/walk"

        def level_space(self, **options):
            return envs.LevelSpace()

        def level_set(self, name, *, num_train_levels=None, level_seed=0, **options):
            return envs.LevelSet(name, levels=(2, 3))

        def make(self, level_set="train", **options):
            return WalkEnv()

    vec = WalkFamily().make_vec(4, "train", seed=1)
    assert isinstance(vec, GymLevelVecEnv) and vec.num_envs == 4
    vec.reset()
    assert set(vec.levels) <= {2, 3}


def test_vector_observations_get_the_mlp_network():
    from heldout.agents import select_network

    assert select_network(WalkEnv.observation_space) == "mlp"


def test_resume_replays_each_slot_exactly():
    vec = walk_vec(seed=3)
    vec.reset()
    rng = np.random.default_rng(0)
    for _ in range(7):
        vec.step(rng.integers(0, 2, 3))
    state = vec.get_state()
    json_like = (dict, list, tuple, str, int, float, bool, type(None), bytes, np.ndarray)

    def plain(value):
        assert isinstance(value, json_like), type(value)
        if isinstance(value, dict):
            all(plain(v) for v in value.values())
        elif isinstance(value, (list, tuple)):
            all(plain(v) for v in value)
        return True

    assert plain(state["sim"])  # no env objects, nothing pickled
    other = walk_vec(seed=99)
    other.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact: no warning
        other.set_state(state)
    for _ in range(12):
        a = rng.integers(0, 2, 3)
        o1, r1, d1, i1 = vec.step(a)
        o2, r2, d2, i2 = other.step(a)
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and np.array_equal(d1, d2)
        assert [i.get("episode") for i in i1] == [
            None if e is None else {**e, "t": i1[k]["episode"]["t"]} for k, e in enumerate(i.get("episode") for i in i2)
        ]


def test_resume_warns_and_restarts_slots_that_do_not_replay():
    vec = walk_vec(outside_noise=True)
    vec.set_level_source(lambda slot: 4)
    vec.reset()
    vec.step(np.ones(3, dtype=np.int64))
    state = vec.get_state()
    other = walk_vec(outside_noise=True)
    other.set_level_source(lambda slot: 4)
    other.reset()
    with pytest.warns(UserWarning, match=r"resume is not exact for 3 of 3 env slots"):
        other.set_state(state)
    assert other._obs[:, 0].tolist() == [4.0] * 3  # restarted at the level's start
    assert other._episode_length.tolist() == [0, 0, 0]


# -- seeded families -------------------------------------------------------------------------------
class IgnoresSeed(gym.Env):
    """Every seed makes the same level."""

    observation_space = gym.spaces.Box(0, 1, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


gym.register("heldout_test/IgnoresSeed-v0", entry_point=IgnoresSeed)


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch):
    """Families registered by a test (``register_seeded``, ``gym:<id>``) leave with it."""
    from heldout.envs import registry

    envs.names()
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))


def test_an_env_that_ignores_the_seed_gets_a_clear_error(tmp_path, capsys):
    family = envs.register_seeded("test/ignores-seed", "heldout_test/IgnoresSeed-v0")
    with pytest.raises(ValueError, match="the held-out set came out empty: all 200 candidate seeds look like a train"):
        family.level_set("test", num_train_levels=5)
    run = tmp_path / "run"
    assert main(["train", "--env", "gym:heldout_test/IgnoresSeed-v0", "--train-levels", "5", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seems to ignore reset(seed=...)" in err[0]
    assert not run.exists()


def test_minigrid_families_exist_only_where_minigrid_is_importable(monkeypatch):
    from heldout.envs import minigrid_families

    monkeypatch.setattr(minigrid_families, "find_spec", lambda name: None)
    assert minigrid_families.families() == []


def test_unknown_gymnasium_ids_are_one_line_errors(capsys):
    with pytest.raises(KeyError, match="unknown Gymnasium id 'NoSuchEnv-v0'"):
        envs.get("gym:NoSuchEnv-v0")
    assert main(["envs", "gym:CartPol-v1"]) == 2
    assert "unknown Gymnasium id 'CartPol-v1'" in capsys.readouterr().err


minigrid = pytest.importorskip("minigrid")
MINIGRID_ID = "MiniGrid-SimpleCrossingS9N1-v0"


def grid_print(seed):
    env = gym.make(MINIGRID_ID)
    env.reset(seed=seed)
    u = env.unwrapped
    return u.grid.encode().tobytes() + bytes([*u.agent_pos, u.agent_dir])


def test_seeded_minigrid_sets_are_disjoint_by_fingerprint_and_levels_replay():
    family = envs.get(f"gym:{MINIGRID_ID}")
    train = family.level_set("train", num_train_levels=10)
    test = family.level_set("test", num_train_levels=10, num_test_levels=20)
    assert train.levels == tuple(range(10)) and len(test) == 20 and min(test.levels) >= 10
    first = {}
    for s in train.levels + test.levels:
        obs, _ = gym.make(MINIGRID_ID).reset(seed=s)
        first[s] = digest(obs)
    assert not {first[s] for s in train.levels} & {first[s] for s in test.levels}
    meta = test.metadata
    assert len({first[s] for s in test.levels}) == 20  # no level twice within the held-out set
    assert meta["candidates"] == 20 + meta["dropped"] + meta["repeats_within_test"] and meta["dropped"] > 0
    assert f"{meta['dropped']} of {meta['candidates']} candidates dropped" in test.notes

    env = family.make(test)
    level = test.levels[3]
    a, info = env.reset(options={"level": level})
    b, _ = env.reset(options={"level": level})
    raw, _ = gym.make(MINIGRID_ID).reset(seed=level)
    assert info["level"] == level and a.shape == (7, 7, 3)
    assert np.array_equal(a, b) and np.array_equal(a, raw["image"])


def test_minigrid_families_are_listed_and_held_out_by_whole_grid():
    assert "minigrid/SimpleCrossingS9N1" in envs.names() and "minigrid/KeyCorridorS3R3" in envs.names()
    family = envs.get("minigrid/SimpleCrossingS9N1")
    assert family.score_unit == "solve rate"
    assert family.solved(np.array([0.0, 0.4, 1.0])).tolist() == [False, True, True]
    train = family.level_set("train", num_train_levels=10)
    test = family.level_set("test", num_train_levels=10, num_test_levels=30)
    assert not {grid_print(s) for s in train.levels} & {grid_print(s) for s in test.levels}


def test_a_sampler_controls_the_slots_levels():
    family = envs.get("minigrid/SimpleCrossingS9N1")
    train = family.level_set("train", num_train_levels=6)
    sampler = level_samplers.make("plr", [4, 5], seed=0)
    vec = family.make_vec(4, train, seed=0)
    vec.set_level_source(lambda slot: sampler.sample())
    obs = vec.reset()
    assert set(vec.levels) <= {4, 5}
    starts = {lv: gym.make(MINIGRID_ID).reset(seed=lv)[0]["image"] for lv in (4, 5)}
    for slot, lv in enumerate(vec.levels):
        assert np.array_equal(obs[slot], starts[lv])
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(400):
        obs, _, dones, infos = vec.step(rng.integers(0, 3, 4))
        seen |= {i["episode"]["level"] for i in infos if "episode" in i}
    assert seen and seen <= {4, 5}


def test_heldout_train_on_a_gym_id_reports_a_gap(tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "train", "--env", f"gym:{MINIGRID_ID}", "--train-levels", "10", "--steps", "256", "--env.num_envs", "4",
        "--ppo.n_steps", "32", "--ppo.n_minibatches", "2", "--ppo.n_epochs", "1", "--network.features_dim", "16",
        "--env.options", "{num_test_levels: 20, max_steps: 30}", "--eval.episodes", "4", "--eval.final_episodes", "8",
        "--eval.num_envs", "4", "--torch_threads", "1", "--no-progress", "--run-dir", str(run),
    ]  # fmt: skip
    assert main(args) == 0
    assert "gap" in capsys.readouterr().out
    report = json.loads((run / "report.json").read_text())
    assert report["score_unit"] == "return" and report["steps"] == 256
    assert report["gap"]["mean"] == pytest.approx(report["train"]["mean"] - report["test"]["mean"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "--resume", str(run), "--steps", "384", "--no-progress"]) == 0
    assert not [w for w in caught if "resume is not exact" in str(w.message)]  # seeded envs replay exactly
    assert json.loads((run / "report.json").read_text())["steps"] == 384
