"""PAIRED's level editor (dcd's rules) and regret estimate, on hand-written inputs."""

import numpy as np
import pytest

from heldout.envs.maze import parse_level
from heldout.envs.maze.paths import is_solvable
from heldout.envs.maze.editor import MazeEditorEnv, MazeEditorVecEnv, observation_layout
from heldout.level_samplers.paired import adversary_rewards, regret


def cell(row: int, col: int, size: int = 5) -> int:
    return row * size + col


def build(actions: list[int], *, size: int = 5, n_walls: int = 4, seed: int = 0):
    env = MazeEditorVecEnv(1, size=size, n_walls=n_walls, z_dim=3, seed=seed)
    env.reset()
    infos, dones = [], []
    for a in actions:
        _, rewards, done, info = env.step(np.array([a]))
        assert rewards[0] == 0.0
        infos.append(info[0])
        dones.append(bool(done[0]))
    return env, infos, dones


def test_goal_then_agent_then_walls_builds_what_the_actions_say():
    # goal (0,4), agent (4,0), walls at (2,2), (2,3), then a wall on the goal (ignored), then (1,1)
    actions = [cell(0, 4), cell(4, 0), cell(2, 2), cell(2, 3), cell(0, 4), cell(1, 1)]
    env, infos, dones = build(actions)
    assert dones == [False] * 5 + [True]  # n_walls + 2 = 6 steps
    level = infos[-1]["level"]
    direction = ">v<^"[level.start_dir]
    expected = parse_level(
        "#######\n"
        "#....G#\n"
        "#.#...#\n"
        "#..##.#\n"
        "#.....#\n"
        f"#{direction}....#\n"
        "#######"
    )
    assert level == expected


def test_a_wall_on_the_agent_or_twice_on_one_cell_does_nothing():
    actions = [cell(0, 0), cell(1, 1), cell(1, 1), cell(3, 3), cell(3, 3), cell(0, 0)]
    _, infos, _ = build(actions)
    level = infos[-1]["level"]
    assert level.goal == (0, 0) and level.start == (1, 1)
    assert level.num_walls == 1 and level.wall_map[3, 3]


def test_agent_on_the_goal_goes_to_a_random_free_cell():
    seen = set()
    for seed in range(6):
        _, infos, _ = build([cell(0, 0), cell(0, 0), cell(3, 3), cell(3, 3), cell(3, 3), cell(3, 3)], seed=seed)
        level = infos[-1]["level"]
        assert level.goal == (0, 0) and level.start != (0, 0) and not level.wall_map[level.start]
        seen.add(level.start)
    assert len(seen) > 1  # drawn at random, not a fixed fallback


def test_an_unsolvable_level_is_kept():
    _, infos, _ = build([cell(0, 0), cell(4, 4), cell(0, 1), cell(1, 0), cell(2, 2), cell(2, 2)])
    level = infos[-1]["level"]
    assert level.num_walls == 3 and not is_solvable(level)


def test_observation_shows_the_grid_time_and_a_fresh_z():
    env = MazeEditorVecEnv(2, size=5, n_walls=4, z_dim=3, seed=1)
    obs = env.reset()
    layout = observation_layout(5, 4, 3)
    assert obs.shape == (2, layout["z"].stop)
    assert np.all(obs[:, layout["grid"]] == 0) and np.all(obs[:, layout["time"].start] == 1)
    obs2, _, _, _ = env.step(np.array([cell(2, 2), cell(0, 0)]))
    grid = obs2[0, layout["grid"]].reshape(5, 5, 3)
    assert grid[2, 2, 1] == 1 and grid[..., 1].sum() == 1  # the goal channel
    assert obs2[0, layout["time"].start + 1] == 1
    assert not np.array_equal(obs[0, layout["z"]], obs2[0, layout["z"]])
    obs3, _, _, _ = env.step(np.array([cell(4, 4), cell(1, 1)]))
    grid = obs3[0, layout["grid"]].reshape(5, 5, 3)
    assert grid[4, 4, 2] == 1 + env.direction[0]  # the agent, with its direction


def test_episodes_reset_themselves_and_state_round_trips():
    env = MazeEditorVecEnv(1, size=5, n_walls=0, z_dim=2, seed=3)
    env.reset()
    env.step(np.array([1]))
    _, _, done, info = env.step(np.array([7]))
    assert done[0] and info[0]["level"].goal == (0, 1) and info[0]["level"].start == (1, 2)
    assert env.time[0] == 0  # the next episode has begun
    state = env.get_state()
    a = [env.step(np.array([k]))[0] for k in (3, 3)]
    env.set_state(state)
    b = [env.step(np.array([k]))[0] for k in (3, 3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_gymnasium_form_and_bad_actions():
    import gymnasium

    from heldout.envs.maze import EDITOR_GYM_ID

    env = gymnasium.make(EDITOR_GYM_ID, size=5, n_walls=1, z_dim=2).unwrapped
    assert isinstance(env, MazeEditorEnv)
    env.reset(seed=0)
    env.step(cell(1, 1))
    env.step(cell(2, 2))
    _, reward, terminated, truncated, info = env.step(cell(3, 3))
    assert terminated and not truncated and reward == 0.0
    assert info["level"].wall_map[3, 3] and info["level"].num_walls == 1
    with pytest.raises(ValueError, match="cells 0..24"):
        MazeEditorVecEnv(1, size=5, n_walls=1).step(np.array([25]))
    with pytest.raises(ValueError, match="n_walls"):
        MazeEditorVecEnv(1, size=5, n_walls=26)


def test_regret_is_antagonist_max_minus_protagonist_mean():
    pro = [[0.5, 0.7], [], [0.9]]
    ant = [[0.2, 0.8], [0.6], []]
    # slot 0: 0.8 - 0.6; slot 1: 0.6 - 0 (no protagonist episode ended); slot 2: 0 - 0.9
    assert regret(pro, ant) == pytest.approx([0.2, 0.6, -0.9])
    assert regret(pro, ant, form="dcd") == pytest.approx([0.2, 0.6, 0.0])
    with pytest.raises(ValueError, match="slots"):
        regret(pro, ant[:2])


def test_adversary_is_rewarded_only_at_its_last_step():
    rewards = adversary_rewards(np.array([0.25, -0.5]), episode_steps=4)
    assert rewards.shape == (4, 2)
    assert np.all(rewards[:3] == 0) and rewards[3].tolist() == [0.25, -0.5]


def test_paired_sampler_plays_each_slot_its_designed_level_and_records_regret():
    from heldout import level_samplers
    from heldout.envs.maze import MazeLevelSpace

    designs = [parse_level("#####\n#>.G#\n#####"), parse_level("#####\n#>#G#\n#####")]

    class Designer:
        def design(self, num_slots):
            return designs[:num_slots]

    sampler = level_samplers.make("paired", designs[:1], designer=Designer(), space=MazeLevelSpace(3))
    assert sampler.sample_for_slot(1) == (designs[0], False)  # before any design: the train set fills the slots
    assert sampler.begin_rollout(2) == "design"
    assert [sampler.sample_for_slot(s) for s in (0, 1, 1)] == [(designs[0], False), (designs[1], False), (designs[1], False)]
    sampler.update(designs[0], 0.5)
    sampler.update(designs[1], -0.5)
    assert sampler.level_scores() == {designs[0]: 0.5, designs[1]: -0.5} and sampler.probabilities() == {}
    d = sampler.diagnostics()
    assert d["num_designed"] == 2 and d["unsolvable_fraction"] == 0.5 and d["regret_mean"] == 0.0
    with pytest.raises(ValueError, match="not designed"):
        sampler.update(parse_level("#####\n#G.>#\n#####"), 1.0)
    state = sampler.state_dict()
    other = level_samplers.make("paired", designs[:1], designer=Designer())
    other.load_state_dict(state)
    assert other.sample_for_slot(1) == (designs[1], False)


def test_a_designed_level_prints_with_heldout_maze_show(tmp_path, capsys):
    from heldout.cli import main
    from heldout.envs.maze import MazeLevelSpace

    _, infos, _ = build([cell(0, 4), cell(4, 0), cell(2, 2), cell(2, 3), cell(0, 4), cell(1, 1)])
    path = tmp_path / "designed.txt"
    MazeLevelSpace(5).write_levels([infos[-1]["level"]], path)
    assert main(["maze", "show", str(path)]) == 0
    assert str(infos[-1]["level"]) in capsys.readouterr().out
