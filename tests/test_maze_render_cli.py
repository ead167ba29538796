"""Maze pictures, the ``heldout maze`` command and the minigrid conversion."""

import numpy as np
import pytest

from heldout import envs
from heldout.cli import main
from heldout.envs.maze import MazeLevelSpace, parse_level, render_level, render_rollout, render_trajectory, to_minigrid
from heldout.envs.maze.render import AGENT_RGB, FLOOR_RGB, GOAL_RGB, VISITED_RGB, WALL_RGB, colorize, rollout_states

LEVEL = """\
######
#>..G#
#.#..#
######"""


# -- pictures --------------------------------------------------------------------------------------
def _tile(image, r, c, tile=8):
    return image[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]


def test_render_level_colours_each_cell():
    image = render_level(parse_level(LEVEL))
    assert image.shape == (4 * 8, 6 * 8, 3) and image.dtype == np.uint8
    assert (_tile(image, 0, 0) == WALL_RGB).all()  # the outer wall is drawn
    assert (_tile(image, 2, 2) == WALL_RGB).all()  # inner wall at interior (1, 1)
    assert (_tile(image, 1, 4) == GOAL_RGB).all()
    assert (_tile(image, 2, 1) == FLOOR_RGB).all()
    agent = _tile(image, 1, 1)
    red = (agent == AGENT_RGB).all(axis=-1)
    assert 10 < red.sum() < 48  # a triangle, not the whole tile
    # facing east: the triangle is wider on its left (back) than on its right (tip)
    assert red[:, :4].sum() > red[:, 4:].sum()
    assert (MazeLevelSpace().render(LEVEL) == image).all()


def test_rollout_frames_and_trajectory():
    level = parse_level(LEVEL)
    actions = [2, 2, 2, 1, 1]  # reaches the goal on the third step; later actions are ignored
    states = rollout_states(level, actions)
    assert [s for s in states] == [((0, 0), 0), ((0, 1), 0), ((0, 2), 0), ((0, 3), 0)]
    frames = render_rollout(level, actions, tile=4)
    assert frames.shape == (4, 4 * 4, 6 * 4, 3)
    assert (_tile(frames[0], 1, 2, 4) == FLOOR_RGB).all()
    assert (_tile(frames[2], 1, 2, 4) == VISITED_RGB).all()  # (0, 1) was visited by frame 2
    last = render_trajectory(level, actions, tile=4)
    assert (last == frames[-1]).all()
    assert ((_tile(last, 1, 4, 4) == AGENT_RGB).all(axis=-1)).any()  # the agent stands on the goal
    assert len(rollout_states(level, [0] * 10, max_steps=3)) == 4  # the time limit stops the rollout


def test_colorize_uses_two_columns_per_cell():
    text = colorize("###\n#>#\n###")
    assert "\x1b[" in text and text.count("\n") == 2


# -- the command line ------------------------------------------------------------------------------
def test_maze_show_prints_the_levels_of_a_file(tmp_path, capsys):
    path = tmp_path / "levels.txt"
    MazeLevelSpace().write_levels([parse_level(LEVEL), parse_level("#####\n#>#G#\n#####")], path)
    assert main(["maze", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "level 1 of 2: 2x4, shortest path 3 steps" in out
    assert LEVEL in out
    assert "level 2 of 2: 1x3, UNSOLVABLE" in out


def test_maze_save_then_show_a_built_in_set(tmp_path, capsys):
    path = tmp_path / "ood.txt"
    assert main(["maze", "save", "test_ood", str(path), "--num-train-levels", "8", "--size", "9"]) == 0
    assert "wrote 200 levels of 'test_ood'" in capsys.readouterr().out
    assert len(MazeLevelSpace().read_levels(path)) == 200
    assert main(["maze", "show", "--set", "named", "-n", "2", "--color"]) == 0
    out = capsys.readouterr().out
    assert "level 1 of 5 (sixteen_rooms): 13x13, shortest path 24 steps" in out
    assert "level 2 of 5 (labyrinth)" in out and "level 3" not in out and "\x1b[" in out


def test_maze_show_errors_exit_2(tmp_path, capsys):
    assert main(["maze", "show", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["maze", "show", "x.txt", "--set", "train"]) == 2
    assert "one of them" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("#####\n#>.G#\n##.#\n")
    assert main(["maze", "show", str(bad)]) == 2
    assert "level 1: line 3: row has 4 characters" in capsys.readouterr().err
    assert main(["maze"]) == 2


def test_envs_command_lists_the_maze(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "heldout/maze-v0" in out and "test_ood" in out


# -- minigrid --------------------------------------------------------------------------------------
def _minigrid_levels():
    family = envs.get("maze")
    levels = list(family.level_set("train").levels[:4]) + list(family.level_set("test_ood").levels[:3])
    return levels + [parse_level(LEVEL), family.level_set("named").levels[0]]


@pytest.mark.parametrize("index", range(9))
def test_minigrid_conversion_has_the_same_layout(index):
    pytest.importorskip("minigrid")
    level = _minigrid_levels()[index]
    env = to_minigrid(level)
    env.reset(seed=0)
    assert (env.width, env.height) == (level.width + 2, level.height + 2)
    types = np.array([[(env.grid.get(x, y).type if env.grid.get(x, y) else "empty") for x in range(env.width)]
                      for y in range(env.height)])
    assert (types[1:-1, 1:-1] == "wall").tolist() == level.wall_map.tolist()
    assert (types[0] == "wall").all() and (types[-1] == "wall").all()
    assert (types[:, 0] == "wall").all() and (types[:, -1] == "wall").all()
    assert types[level.goal[0] + 1, level.goal[1] + 1] == "goal"
    assert tuple(env.agent_pos) == (level.start[1] + 1, level.start[0] + 1) and env.agent_dir == level.start_dir
    assert env.max_steps == 250


def test_minigrid_plays_the_same_game():
    pytest.importorskip("minigrid")
    family = envs.get("maze")
    rng = np.random.default_rng(0)
    for level in _minigrid_levels()[:6]:
        ours = family.make("train", max_steps=60)
        theirs = to_minigrid(level, max_steps=60)
        obs, _ = ours.reset(options={"level": level})
        mg, _ = theirs.reset(seed=0)
        for _ in range(60):
            image = mg["image"].transpose(1, 0, 2)  # minigrid indexes its view [x, y]
            mask = np.ones((5, 5), dtype=bool)
            mask[4, 2] = False  # minigrid shows its own cell as empty
            assert ((image[..., 0] == 2) == obs[..., 0].astype(bool))[mask].all()  # 2 = wall
            assert ((image[..., 0] == 8) == obs[..., 1].astype(bool))[mask].all()  # 8 = goal
            action = int(rng.choice(3, p=[0.25, 0.25, 0.5]))
            obs, r, term, trunc, _ = ours.step(action)
            mg, r2, term2, trunc2, _ = theirs.step(action)
            r0, c0 = ours.unwrapped.position
            assert tuple(theirs.agent_pos) == (c0 + 1, r0 + 1) and theirs.agent_dir == ours.unwrapped.direction
            assert (r, term, trunc) == (pytest.approx(r2), term2, trunc2)
            if term or trunc:
                break


def test_to_minigrid_accepts_text_and_rejects_other_types():
    pytest.importorskip("minigrid")
    env = to_minigrid(LEVEL, render_mode="rgb_array")
    env.reset()
    assert env.render().shape[2] == 3
    with pytest.raises(TypeError, match="MazeLevel or its text form"):
        to_minigrid(42)


def test_to_minigrid_without_minigrid_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_minigrid(name, *args, **kwargs):
        if name.startswith("minigrid"):
            raise ImportError("No module named 'minigrid'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minigrid)
    with pytest.raises(ImportError, match="pip install minigrid"):
        to_minigrid(LEVEL)
