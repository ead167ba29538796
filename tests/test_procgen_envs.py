"""Procgen environments with chosen levels: the single Gymnasium env and the vectorised env.

The reference for "plays level s" is always a fresh raw ``ProcgenGym3Env(start_level=s,
num_levels=1)`` stepped with the same actions.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.vec_env import VecMonitor, VecTransposeImage

from heldout import envs
from heldout.envs.base import LevelSet
from heldout.envs.procgen import backend, games


class Fresh:
    """A fresh single-level raw procgen env of seed ``seed`` (agent-centred, like training).

    Made through ``backend.make_raw_env`` (a stock ``ProcgenGym3Env``, stepped in this thread,
    whose ``close`` cannot deadlock when the garbage collector finds it unclosed)."""

    def __init__(self, game: str, seed: int, mode: str = "easy") -> None:
        self.env = backend.make_raw_env(game, 1, mode, start_level=seed, num_levels=1, rand_seed=12345, num_threads=0)
        _, ob, _ = self.env.observe()
        self.frame = ob["rgb"][0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        self.env.act(np.array([action], dtype=np.int32))
        reward, ob, first = self.env.observe()
        return ob["rgb"][0], float(reward[0]), bool(first[0])


# Actions that end episodes within about 100 steps in games where a uniformly random agent
# rarely does (found by trying each action and a few pools on the training levels); every other
# game is played with uniformly random actions.
QUICK_ENDING_ACTIONS: dict[str, tuple[int, ...]] = {
    "caveflyer": (2,),  # turn left and thrust: into a cave wall
    "climber": (8,),  # jump right: into enemies
    "coinrun": (8,),  # jump right: into saws, enemies and pits
    "heist": (0, 2, 6, 8),  # diagonal walks find the gem of small levels
    "maze": (1, 3, 5, 7),
    "miner": (3, 5),  # dig up and down: under boulders
    "ninja": (7,),  # run right: into bombs and pits
    "plunder": (9,),  # fire: every shot drains the fuel bar
}
REPLAY_STEPS: dict[str, int] = {"plunder": 150}  # fire alone empties the fuel bar in about 120 steps


def replay_against_fresh_envs(game: str, num_envs: int, steps: int, seed: int, actions=range(15)) -> dict[str, int]:
    """Step a vec env of ``game`` on its training levels with actions drawn from ``actions`` and
    compare every slot, every step, with a fresh single-level env of the slot's level: frames,
    rewards and episode ends, before and after auto-resets (at a done the vec env writes the next
    level's lightened start state into the slot, which must start like a fresh env of that level).
    Returns how many auto-resets there were, how many steps were compared after one, and the
    longest run compared in an episode begun at a done."""
    vec = envs.make_vec(f"procgen/{game}", num_envs, "train", seed=seed)
    obs = vec.reset()
    refs = [Fresh(game, level) for level in vec.levels]
    for i in range(num_envs):
        np.testing.assert_array_equal(obs[i], refs[i].frame)
    assert list(vec._slots.level_seed) == vec.levels
    rng = np.random.default_rng(seed)
    pool = np.asarray(actions)
    since_end = [-1] * num_envs  # steps compared since the slot's last auto-reset (-1: none yet)
    longest_after_end = compared_after_end = auto_resets = 0
    for step in range(steps):
        actions_now = rng.choice(pool, size=num_envs)
        obs, rewards, dones, infos = vec.step(actions_now)
        for i in range(num_envs):
            frame, reward, first = refs[i].step(int(actions_now[i]))
            where = f"{game} slot {i} step {step} level {infos[i]['level']}"
            assert rewards[i] == np.float32(reward), where
            assert bool(dones[i]) == first, where
            if dones[i]:
                # the level written at the done starts exactly like a fresh env of it
                refs[i] = Fresh(game, vec.levels[i])
                np.testing.assert_array_equal(obs[i], refs[i].frame, err_msg=where)
                since_end[i] = 0
                auto_resets += 1
            else:
                np.testing.assert_array_equal(obs[i], frame, err_msg=where)
                if since_end[i] >= 0:
                    since_end[i] += 1
                    compared_after_end += 1
                    longest_after_end = max(longest_after_end, since_end[i])
        assert list(vec._slots.level_seed) == vec.levels  # procgen itself plays those seeds
    vec.close()
    return {"auto_resets": auto_resets, "compared_after_end": compared_after_end, "longest_after_end": longest_after_end}


@pytest.mark.parametrize("game", games.GAMES)
def test_a_slot_replays_a_fresh_env_frame_for_frame_before_and_after_auto_resets(game):
    steps = REPLAY_STEPS.get(game, 100)
    stats = replay_against_fresh_envs(game, 16, steps, 0, QUICK_ENDING_ACTIONS.get(game, range(15)))
    # later episodes in a slot (written at a done) were compared too, not just the first ones
    assert stats["auto_resets"] >= 2 and stats["compared_after_end"] >= 50, stats


def test_a_long_episode_begun_at_a_done_replays_a_fresh_env_frame_for_frame():
    stats = replay_against_fresh_envs("coinrun", 6, 420, 3)  # random coinrun episodes run long
    assert stats["longest_after_end"] >= 100, stats


@pytest.mark.parametrize("game", games.GAMES)
def test_a_lightened_slot_replays_its_level_after_procgens_own_auto_reset(game):
    """Written without the vec env, a slot auto-resets inside procgen with the blanked level
    picker: it must replay its level like a fresh single-level env does, episode after episode."""
    seeds = list(range(3, 200, 13))  # 16 training levels
    env = backend.make_raw_env(game, len(seeds), "easy", start_level=0, num_levels=200, num_threads=0)
    slots = backend.SlotWriter(env, backend.start_states(game, "easy"))
    refs = [Fresh(game, s) for s in seeds]
    for i, s in enumerate(seeds):
        slots.write(i, s)
        np.testing.assert_array_equal(slots.rgb[i], refs[i].frame)
    rng = np.random.default_rng(1)
    pool = np.asarray(QUICK_ENDING_ACTIONS.get(game, range(15)))
    ends = 0
    for step in range(REPLAY_STEPS.get(game, 100)):
        actions = rng.choice(pool, size=len(seeds)).astype(np.int32)
        env.act(actions)
        rewards, ob, first = env.observe()
        for i, s in enumerate(seeds):
            frame, reward, ref_first = refs[i].step(int(actions[i]))
            where = f"{game} level {s} step {step}"
            assert (rewards[i], bool(first[i])) == (np.float32(reward), ref_first), where
            np.testing.assert_array_equal(ob["rgb"][i], frame, err_msg=where)
            ends += ref_first
        assert list(slots.level_seed) == seeds
    env.close()
    assert ends >= 3, f"only {ends} episode ends in {game}"
    donor = backend.make_raw_env(game, 1, "easy", start_level=5, num_levels=1, num_threads=0)
    assert len(slots.states.get(5)) < len(donor.callmethod("get_state")[0]) - 10_000  # it was lightened
    donor.close()


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
    donor = backend.make_raw_env("bossfight", 1, "easy", start_level=77, num_levels=1, num_threads=0)
    full = donor.callmethod("get_state")[0]
    donor.close()
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


def test_an_unclosed_env_collected_while_cffi_holds_its_lock_does_not_deadlock():
    """cffi binds library functions lazily under one lock that every procgen env shares, and
    the garbage collector may run while it is held (when another env is being made). An
    unclosed env found then must close without that lock: a hang here is the bug."""
    code = textwrap.dedent(
        """
        import gc
        from heldout.envs.procgen import backend
        env = backend.make_raw_env("coinrun", 1, "easy", num_threads=0)
        ffi = env._ffi
        cycle = [env]
        cycle.append(cycle)  # only the cycle collector frees it, as with an unclosed vec env
        del env, cycle
        with ffi._lock:
            gc.collect()
        print("closed")
        """
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("closing an env from the garbage collector deadlocked on cffi's lock")
    assert out.stdout.split() == ["closed"], out.stderr
