"""Maze dynamics on hand-made levels, observations, the single and the vectorised env."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from heldout import envs
from heldout.envs.base import LevelSet
from heldout.envs.maze import MazeEnv, MazeFamily, MazeVecEnv, default_max_steps, parse_level

LEFT, RIGHT, FORWARD = 0, 1, 2

CORRIDOR = """\
#######
#>...G#
#######"""

VIEW_LEVEL = """\
#######
#.....#
#.#G..#
#..^..#
#######"""


def single(level_text=CORRIDOR, **options):
    env = envs.make("maze", LevelSet("hand", levels=(parse_level(level_text),)), **options)
    env.reset(seed=0)
    return env


# -- dynamics ------------------------------------------------------------------------------------
def test_turning_changes_direction_only():
    env = single()
    for action, expected in [(LEFT, 3), (LEFT, 2), (RIGHT, 3), (RIGHT, 0), (RIGHT, 1)]:
        obs, reward, terminated, truncated, _ = env.step(action)
        assert env.unwrapped.direction == expected and env.unwrapped.position == (0, 0)
        assert obs[4, 2, 2] == 1 + expected  # direction code at the agent's own view cell
        assert reward == 0.0 and not terminated and not truncated


def test_walls_block_forward_moves():
    env = single()
    env.step(LEFT)  # face north, into the outer wall
    env.step(FORWARD)
    assert env.unwrapped.position == (0, 0)
    env.step(LEFT)  # face west, into the outer wall
    env.step(FORWARD)
    assert env.unwrapped.position == (0, 0)
    level = "#####\n#>#G#\n#...#\n#####"
    env = single(level)
    env.step(FORWARD)  # an inner wall
    assert env.unwrapped.position == (0, 0) and env.unwrapped.t == 1


def test_goal_reward_counts_the_final_step():
    env = single()
    for _ in range(3):
        assert env.step(FORWARD)[1] == 0.0
    obs, reward, terminated, truncated, info = env.step(FORWARD)
    # t = 4 steps including the one onto the goal, T = 250 on a 1x5 grid
    assert reward == pytest.approx(1 - 0.9 * 4 / 250) == pytest.approx(0.9856)
    assert terminated and not truncated and info["level"] == parse_level(CORRIDOR)
    assert obs[4, 2, 1] == 1  # the agent stands on the goal in the terminal observation
    with pytest.raises(RuntimeError, match="reset"):
        env.step(FORWARD)


def test_time_limit_truncates_and_reaching_goal_on_the_last_step_pays_point_one():
    env = single(max_steps=3)
    assert env.step(LEFT)[2:4] == (False, False)
    assert env.step(RIGHT)[2:4] == (False, False)
    _, reward, terminated, truncated, _ = env.step(LEFT)
    assert (reward, terminated, truncated) == (0.0, False, True)
    env = single(max_steps=4)
    for _ in range(3):
        env.step(FORWARD)
    _, reward, terminated, truncated, _ = env.step(FORWARD)
    assert reward == pytest.approx(0.1) and terminated and not truncated


def test_default_time_limit_scales_with_area():
    assert default_max_steps(13, 13) == 250 and default_max_steps(7, 7) == 250
    assert default_max_steps(21, 21) == 653 and default_max_steps(25, 25) == 925 and default_max_steps(51, 51) == 3848
    env = envs.make("maze", "named")
    env.reset(options={"level": envs.get("maze").level_set("named").levels[-1]})
    assert env.unwrapped.time_limit == 3848


# -- observations --------------------------------------------------------------------------------
def test_egocentric_view_by_hand():
    env = single(VIEW_LEVEL, view_size=3)
    obs, _ = env.reset(options={"level": VIEW_LEVEL})
    # facing north from (2, 2): rows 0..2 ahead, columns 1..3
    assert obs[..., 0].tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert obs[..., 1].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert obs[..., 2].tolist() == [[0, 0, 0], [0, 0, 0], [0, 4, 0]]
    obs = env.step(RIGHT)[0]  # facing east: north is on the left, below the grid is wall
    assert obs[..., 0].tolist() == [[0, 0, 1], [0, 0, 1], [0, 0, 1]]
    assert obs[..., 1].tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    assert obs[..., 2].tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_full_observation_by_hand():
    env = single(VIEW_LEVEL, full_obs=True)
    obs, _ = env.reset()
    assert obs.shape == (3, 5, 3) and env.observation_space.shape == (3, 5, 3)
    assert obs[..., 0].tolist() == [[0] * 5, [0, 1, 0, 0, 0], [0] * 5]
    assert np.argwhere(obs[..., 1]).tolist() == [[1, 2]]
    assert np.argwhere(obs[..., 2]).tolist() == [[2, 2]] and obs[2, 2, 2] == 4


# -- the single env ------------------------------------------------------------------------------
def test_check_env_passes():
    check_env(gym.make("heldout/maze-v0").unwrapped)
    # through gymnasium.make the checker also re-creates the env in its other render modes
    check_env(gym.make("heldout/maze-v0", full_obs=True, render_mode="rgb_array").unwrapped, skip_render_check=False)


def test_gymnasium_id_and_text_level_reset():
    env = gym.make("heldout/maze-v0", view_size=7)
    obs, info = env.reset(seed=1, options={"level": CORRIDOR})
    assert obs.shape == (7, 7, 3) and info["level"] == parse_level(CORRIDOR)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"lvl": CORRIDOR})
    env.close()


def test_reset_draws_levels_reproducibly_from_the_level_set():
    a, b = envs.make("maze"), envs.make("maze")
    drawn = [a.reset(seed=3)[1]["level"]] + [a.reset()[1]["level"] for _ in range(5)]
    again = [b.reset(seed=3)[1]["level"]] + [b.reset()[1]["level"] for _ in range(5)]
    assert drawn == again and len(set(drawn)) > 1
    train = set(envs.get("maze").level_set("train"))
    assert all(lv in train for lv in drawn)


def test_render_modes():
    env = single(render_mode="rgb_array")
    assert env.render().shape == (3 * 8, 7 * 8, 3)
    env = single(render_mode="ansi")
    env.step(RIGHT)
    assert env.render() == "#######\n#v...G#\n#######"


# -- vectorised against single, step for step --------------------------------------------------------
def _agree(level_set, num_envs=4, steps=400, seed=0, **options):
    family = MazeFamily()
    vec = family.make_vec(num_envs, level_set, seed=seed, **options)
    singles = [family.make(level_set, **options) for _ in range(num_envs)]
    obs = vec.reset()
    for k, env in enumerate(singles):
        o, _ = env.reset(options={"level": vec.levels[k]})
        np.testing.assert_array_equal(o, obs[k])
    rng = np.random.default_rng(seed)
    episodes = 0
    for _ in range(steps):
        actions = rng.choice(3, size=num_envs, p=[0.2, 0.2, 0.6])
        obs, rewards, dones, infos = vec.step(actions)
        for k, env in enumerate(singles):
            o, r, term, trunc, info = env.step(actions[k])
            assert rewards[k] == pytest.approx(r, abs=1e-6)
            assert dones[k] == (term or trunc)
            if dones[k]:
                episodes += 1
                np.testing.assert_array_equal(o, infos[k]["terminal_observation"])
                assert infos[k]["TimeLimit.truncated"] == (trunc and not term)
                assert infos[k]["episode"]["level"] == info["level"]
                o, _ = env.reset(options={"level": vec.levels[k]})
            np.testing.assert_array_equal(o, obs[k])
            assert infos[k]["level"] == info["level"]
    return episodes


def test_vec_and_single_agree_on_training_levels():
    assert _agree("train", max_steps=40) > 10


@pytest.mark.parametrize("view_size", [1, 3, 7])
def test_vec_and_single_agree_for_other_view_sizes(view_size):
    assert _agree("test_ood", view_size=view_size, max_steps=30, steps=150) > 5


def test_vec_and_single_agree_with_full_observations():
    assert _agree("test", full_obs=True, size=9, max_steps=30, steps=150) > 5


def test_vec_and_single_agree_on_mixed_sizes():
    # 13x13, 21x21 and 51x51 levels share one padded 51x51 grid in the vec env
    vec = MazeFamily().make_vec(2, "named")
    assert vec.grid_size == (51, 51)
    # a 100-step limit ends every slot's episode at least three times in 300 steps, so levels of
    # other sizes are written into slots that held a smaller or larger one
    assert _agree("named", num_envs=5, steps=300, max_steps=100) >= 15


# -- the vec env contract ----------------------------------------------------------------------------
def test_vec_env_level_contract_and_rewards_by_hand():
    level = parse_level(CORRIDOR)
    vec = envs.make_vec("maze", 3, LevelSet("hand", levels=(level,)))
    vec.reset()
    assert vec.observation_space.shape == (5, 5, 3) and vec.action_space.n == 3
    for _ in range(3):
        _, rewards, dones, infos = vec.step(np.array([FORWARD, LEFT, FORWARD]))
        assert not dones.any() and all(i["level"] == level for i in infos)
    obs, rewards, dones, infos = vec.step(np.array([FORWARD, LEFT, RIGHT]))
    assert rewards.dtype == np.float32
    assert rewards.tolist() == pytest.approx([1 - 0.9 * 4 / 250, 0, 0])
    assert dones.tolist() == [True, False, False]
    assert infos[0]["episode"]["r"] == pytest.approx(0.9856) and infos[0]["episode"]["l"] == 4
    assert infos[0]["TimeLimit.truncated"] is False
    assert obs[0, 4, 2, 2] == 1  # slot 0 restarted facing east at the start
    assert vec.agent_states()[0] == ((0, 0), 0, 0)


def test_vec_set_levels_puts_levels_into_slots():
    vec = envs.make_vec("maze", 2)
    vec.reset()
    other = "#####\n#G.<#\n#####"
    obs = vec.set_levels([1], [other])
    assert vec.levels[1] == parse_level(other) and obs.shape == (1, 5, 5, 3)
    _, rewards, dones, _ = vec.step(np.array([LEFT, FORWARD]))
    assert not dones[1]
    _, rewards, dones, infos = vec.step(np.array([LEFT, FORWARD]))
    assert dones[1] and rewards[1] == pytest.approx(1 - 0.9 * 2 / 250)


def test_vec_level_source_is_used_after_episode_ends():
    level = parse_level(CORRIDOR)
    vec = envs.make_vec("maze", 2, max_steps=2)
    vec.set_level_source(lambda slot: CORRIDOR)
    vec.reset()
    assert vec.levels == [level, level]


def test_vec_truncation_by_time_limit():
    vec = envs.make_vec("maze", 2, LevelSet("hand", levels=(parse_level(CORRIDOR),)), max_steps=2)
    vec.reset()
    vec.step(np.array([LEFT, LEFT]))
    _, rewards, dones, infos = vec.step(np.array([LEFT, RIGHT]))
    assert dones.all() and (rewards == 0).all() and all(i["TimeLimit.truncated"] for i in infos)


def test_vec_state_round_trip_resumes_exactly():
    a = envs.make_vec("maze", 4, seed=5, max_steps=20)
    a.reset()
    rng = np.random.default_rng(0)
    for _ in range(15):
        a.step(rng.integers(0, 3, 4))
    state = a.get_state()
    b = envs.make_vec("maze", 4, seed=99, max_steps=20)
    b.reset()
    b.set_state(state)
    for _ in range(40):
        actions = rng.integers(0, 3, 4)
        oa, ra, da, ia = a.step(actions)
        ob, rb, db, ib = b.step(actions)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        assert [i["level"] for i in ia] == [i["level"] for i in ib]


def test_vec_errors_name_the_fix():
    vec = envs.make_vec("maze", 2)
    vec.reset()
    big = envs.get("maze").level_set("large").levels[0]
    with pytest.raises(ValueError, match="make the vec env with size=25"):
        vec.set_levels([0], [big])
    with pytest.raises(ValueError, match="maze actions are 0"):
        vec.step(np.array([0, 3]))
    with pytest.raises(ValueError, match="split_by_size"):
        envs.make_vec("maze", 2, "named", full_obs=True)
    full = envs.make_vec("maze", 2, full_obs=True)
    full.reset()
    with pytest.raises(ValueError, match="full_obs=True on a 13x13 grid"):
        full.set_levels([0], [CORRIDOR])
    with pytest.raises(ValueError, match="unknown maze option"):
        envs.make_vec("maze", 2, sise=13)
    with pytest.raises(ValueError, match="view_size must be an odd"):
        envs.make_vec("maze", 2, view_size=4)


@pytest.mark.parametrize("make", ["family", "class"])
def test_single_and_vec_reject_bad_time_limits_and_render_modes_alike(make):
    hand = LevelSet("hand", levels=(parse_level(CORRIDOR),))

    def build(kind, **kwargs):
        if make == "family":
            return envs.make("maze", hand, **kwargs) if kind == "single" else envs.make_vec("maze", 2, hand, **kwargs)
        return MazeEnv(hand, **kwargs) if kind == "single" else MazeVecEnv(2, hand, **kwargs)

    for kind in ("single", "vec"):
        for bad in (0, -3, 2.5, True, "10"):
            with pytest.raises(ValueError, match=r"max_steps must be a positive integer or None"):
                build(kind, max_steps=bad)
        assert build(kind, max_steps=np.int64(7)).max_steps == 7
        with pytest.raises(ValueError, match=r"render_mode must be None, 'rgb_array'"):
            build(kind, render_mode="human")
    with pytest.raises(ValueError, match=r"render_mode must be None, 'rgb_array', got 'ansi'"):
        build("vec", render_mode="ansi")  # text rendering is the single env's only
    assert build("single", render_mode="ansi").render_mode == "ansi"


def test_vec_size_option_makes_room_for_larger_levels_and_images():
    vec = envs.make_vec("maze", 2, size=25, level_set=LevelSet("hand", levels=(parse_level(CORRIDOR),)))
    assert vec.grid_size == (25, 25)
    vec.reset()
    big = envs.get("maze").level_set("large").levels[0]
    vec.set_levels([1], [big])
    images = vec.get_images()
    assert images[0].shape == (3 * 8, 7 * 8, 3) and images[1].shape == (27 * 8, 27 * 8, 3)


# -- the family ----------------------------------------------------------------------------------
def test_family_scores():
    family = envs.get("maze")
    assert family.name == "maze" and family.score_unit == "solve rate"
    returns = np.array([0.0, 0.5, 0.1, 0.0])
    assert family.solved(returns).tolist() == [False, True, True, False]
    assert family.normalise(returns).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert isinstance(family.make(), MazeEnv) and isinstance(family.make_vec(1), MazeVecEnv)
