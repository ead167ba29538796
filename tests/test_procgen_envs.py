"""Procgen environments with chosen levels: the single Gymnasium env and the vectorised env.

The reference for "plays level s" is always a fresh raw ``ProcgenGym3Env(start_level=s,
num_levels=1)`` stepped with the same actions.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.vec_env import VecMonitor, VecTransposeImage

from heldout import envs
from heldout.envs.base import LevelSet
from heldout.envs.procgen import backend, games


class Fresh:
    """A fresh single-level raw procgen env of seed ``seed`` (agent-centred, like training)."""

    def __init__(self, game: str, seed: int, mode: str = "easy") -> None:
        self.env = backend.gym3_env_class()(
            num=1, env_name=game, distribution_mode=mode, start_level=seed, num_levels=1, rand_seed=12345
        )
        _, ob, _ = self.env.observe()
        self.frame = ob["rgb"][0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        self.env.act(np.array([action], dtype=np.int32))
        reward, ob, first = self.env.observe()
        return ob["rgb"][0], float(reward[0]), bool(first[0])


@pytest.mark.parametrize(
    "game, num_envs, steps, seed",
    [("coinrun", 6, 420, 3), ("bossfight", 3, 260, 0)],  # long and short random-agent episodes
)
def test_a_slot_replays_a_fresh_env_frame_for_frame_before_and_after_auto_resets(game, num_envs, steps, seed):
    vec = envs.make_vec(f"procgen/{game}", num_envs, "train", seed=seed)
    obs = vec.reset()
    refs = [Fresh(game, level) for level in vec.levels]
    for i in range(num_envs):
        np.testing.assert_array_equal(obs[i], refs[i].frame)
    rng = np.random.default_rng(seed)
    since_end = [-1] * num_envs  # steps compared since the slot's last auto-reset (-1: none yet)
    longest_after_end = compared_after_end = auto_resets = 0
    for _ in range(steps):
        actions = rng.integers(0, 15, size=num_envs)
        obs, rewards, dones, infos = vec.step(actions)
        for i in range(num_envs):
            frame, reward, first = refs[i].step(int(actions[i]))
            assert rewards[i] == np.float32(reward) and bool(dones[i]) == first
            if dones[i]:
                # the level written at the done starts exactly like a fresh env of it
                refs[i] = Fresh(game, vec.levels[i])
                np.testing.assert_array_equal(obs[i], refs[i].frame)
                since_end[i] = 0
                auto_resets += 1
            else:
                np.testing.assert_array_equal(obs[i], frame)
                if since_end[i] >= 0:
                    since_end[i] += 1
                    compared_after_end += 1
                    longest_after_end = max(longest_after_end, since_end[i])
    vec.close()
    if game == "coinrun":  # one episode begun at a done matched for >= 100 steps
        assert longest_after_end >= 100, f"only {longest_after_end} steps compared after an auto-reset"
    else:  # many short episodes begun at dones, >= 200 steps in all
        assert auto_resets >= 5 and compared_after_end >= 200, (auto_resets, compared_after_end)


@pytest.mark.parametrize("game", games.GAMES)
def test_every_game_constructs_steps_and_reports_its_levels(game):
    train = LevelSet("few", levels=(3, 11, 17))
    vec = envs.make_vec(f"procgen/{game}", 2, train, seed=1)
    obs = vec.reset()
    assert obs.shape == (2, 64, 64, 3) and obs.dtype == np.uint8
    assert [info["level"] for info in vec.reset_infos] == vec.levels
    assert set(vec.levels) <= {3, 11, 17}
    assert list(vec._slots.level_seed) == vec.levels  # procgen itself plays those seeds
    rng = np.random.default_rng(0)
    returns = np.zeros(2)
    for _ in range(25):
        before = list(vec.levels)
        obs, rewards, dones, infos = vec.step(rng.integers(0, 15, size=2))
        assert rewards.dtype == np.float32 and dones.dtype == bool
        assert [info["level"] for info in infos] == before
        returns += rewards
        for i in np.flatnonzero(dones):
            assert infos[i]["episode"]["level"] == before[i]
            assert infos[i]["episode"]["r"] == pytest.approx(returns[i])
            returns[i] = 0.0
        assert list(vec._slots.level_seed) == vec.levels
    vec.close()


def test_same_seed_same_run_and_another_seed_another_run():
    def run(seed: int) -> tuple[list, np.ndarray]:
        vec = envs.make_vec("procgen/dodgeball", 4, "train", seed=seed)
        frames = [vec.reset()]
        levels = [list(vec.levels)]
        rng = np.random.default_rng(99)
        for _ in range(150):
            obs, rewards, dones, _ = vec.step(rng.integers(0, 15, size=4))
            frames.append(obs)
            levels.append(list(vec.levels))
        vec.close()
        return levels, np.stack(frames)

    levels_a, frames_a = run(7)
    levels_b, frames_b = run(7)
    assert levels_a == levels_b and levels_a[0] != levels_a[-1]  # episodes ended, levels changed
    np.testing.assert_array_equal(frames_a, frames_b)
    assert run(8)[0][0] != levels_a[0]


def test_level_source_chooses_the_next_level_of_a_slot():
    vec = envs.make_vec("procgen/bossfight", 2, "train", seed=0)
    vec.reset()
    vec.set_level_source(lambda slot: "4242" if slot == 0 else 7)
    rng = np.random.default_rng(0)
    for _ in range(400):
        obs, _, dones, infos = vec.step(rng.integers(0, 15, size=2))
        if dones[0]:
            assert vec.levels[0] == 4242
            np.testing.assert_array_equal(obs[0], Fresh("bossfight", 4242).frame)
            break
    else:
        pytest.fail("no episode ended in slot 0")
    vec.close()


def test_saved_simulator_state_resumes_exactly():
    vec = envs.make_vec("procgen/fruitbot", 3, "train", seed=2)
    vec.reset()
    rng = np.random.default_rng(1)
    for _ in range(20):
        vec.step(rng.integers(0, 15, size=3))
    saved = vec.get_state()
    actions = rng.integers(0, 15, size=(60, 3))

    def play() -> tuple[np.ndarray, list]:
        frames, levels = [], []
        for a in actions:
            obs, rewards, dones, _ = vec.step(a)
            frames.append(obs.copy())
            levels.append(list(vec.levels))
        return np.stack(frames), levels

    first = play()
    vec.set_state(saved)
    second = play()
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
    vec.close()


def test_vec_env_works_under_stable_baselines3_wrappers():
    vec = VecTransposeImage(VecMonitor(envs.make_vec("procgen/starpilot", 2, "train")))
    obs = vec.reset()
    assert obs.shape == (2, 3, 64, 64)
    obs, rewards, dones, infos = vec.step(np.array([1, 2]))
    assert obs.shape == (2, 3, 64, 64) and rewards.shape == (2,)
    assert all("level" in info for info in infos)
    vec.close()


def test_hard_mode_vec_env_plays_hard_levels():
    vec = envs.make_vec("procgen/coinrun", 1, "train", distribution_mode="hard")
    obs = vec.reset()
    np.testing.assert_array_equal(obs[0], Fresh("coinrun", vec.levels[0], "hard").frame)
    assert not np.array_equal(obs[0], Fresh("coinrun", vec.levels[0], "easy").frame)
    vec.close()


# -- the single Gymnasium env ---------------------------------------------------------------------


def test_single_env_passes_the_gymnasium_checker():
    env = envs.make("procgen/coinrun", "train")
    check_env(env, skip_render_check=True)
    assert env.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(15)
    env.close()


def test_single_env_reset_into_a_chosen_level_plays_it_like_a_fresh_env():
    env = envs.make("procgen/chaser", "train")
    obs, info = env.reset(options={"level": 123456})
    assert info == {"level": 123456}
    ref = Fresh("chaser", 123456)
    np.testing.assert_array_equal(obs, ref.frame)
    rng = np.random.default_rng(4)
    for _ in range(120):
        action = int(rng.integers(15))
        obs, reward, terminated, truncated, info = env.step(action)
        frame, ref_reward, first = ref.step(action)
        np.testing.assert_array_equal(obs, frame)
        assert (reward, terminated, truncated, info) == (ref_reward, first, False, {"level": 123456})
        if terminated:
            obs, info = env.reset(options={"level": "99"})
            ref = Fresh("chaser", 99)
            np.testing.assert_array_equal(obs, ref.frame)
    env.close()


def test_single_env_draws_reproducibly_from_its_level_set():
    env = envs.make("procgen/jumper", "train", num_train_levels=50)
    first = [env.reset(seed=s)[1]["level"] for s in (1, 2, 3)]
    again = [env.reset(seed=s)[1]["level"] for s in (1, 2, 3)]
    assert first == again and all(0 <= lv < 50 for lv in first)
    obs_a, _ = env.reset(seed=5)
    obs_b, _ = env.reset(seed=5)
    np.testing.assert_array_equal(obs_a, obs_b)
    with pytest.raises(ValueError, match="a level is an integer seed"):
        env.reset(options={"level": "first"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"lvl": 3})
    env.close()


def test_single_env_through_gymnasium_make_renders_rgb_arrays():
    env = gym.make("heldout/procgen-leaper-v0", level_set="train", render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and 0 <= info["level"] < 200
    picture = env.render()
    assert picture.shape == (512, 512, 3) and picture.dtype == np.uint8
    env.close()


def test_full_distribution_and_bad_custom_level_sets():
    vec = envs.make_vec("procgen/miner", 2, "full", seed=3)
    vec.reset()
    assert all(0 <= lv < 2**31 - 1 for lv in vec.levels) and max(vec.levels) > 10_000
    assert list(vec._slots.level_seed) == vec.levels
    vec.close()
    with pytest.raises(ValueError, match="level seeds lie in"):
        envs.make_vec("procgen/miner", 2, LevelSet("bad", levels=(1, -5)))
    with pytest.raises(TypeError, match="level_set must be a level set name or a LevelSet"):
        envs.make("procgen/miner", level_set=3)


def test_lightened_start_states_still_replay_their_level_after_a_done():
    states = backend.StartStates("bossfight", "easy")
    light = states.get(77)
    donor = backend.gym3_env_class()(num=1, env_name="bossfight", distribution_mode="easy", start_level=77, num_levels=1)
    full = donor.callmethod("get_state")[0]
    assert len(light) < len(full) - 10_000  # both idle generators shrank
    assert backend.lighten_start_state(full, "bossfight", 78) == full  # not a donor of 78: untouched
    assert backend.lighten_start_state(full, "coinrun", 77) == full
    assert backend.lighten_start_state(full[:100], "bossfight", 77) == full[:100]
    env = backend.make_raw_env("bossfight", 2, "easy", start_level=0, num_levels=200)
    slots = backend.SlotWriter(env, states)
    slots.write(1, 77)
    start = Fresh("bossfight", 77).frame
    np.testing.assert_array_equal(slots.rgb[1], start)
    for _ in range(1000):  # stand still until the episode ends; procgen then replays seed 77
        env.act(np.array([4, 4], dtype=np.int32))
        _, ob, first = env.observe()
        if first[1]:
            break
    else:
        pytest.fail("the bossfight episode did not end")
    assert slots.level_seed[1] == 77
    np.testing.assert_array_equal(ob["rgb"][1], start)
    env.close()
