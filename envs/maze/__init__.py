"""A fast parametric maze family for environment design (registered as ``maze``,
Gymnasium id ``heldout/maze-v0``).

>>> from heldout import envs
>>> vec = envs.make_vec("maze", 32, level_set="train")        # sb3 VecEnv, 5x5 egocentric views
>>> env = envs.make("maze", level_set="named")                  # one Gymnasium env
>>> obs, info = env.reset(options={"level": "#####\\n#>.G#\\n#####"})   # any level, or its text

Modules: :mod:`.level` (MazeLevel, bytes and array encodings), :mod:`.text` (text form),
:mod:`.paths` (BFS), :mod:`.rules` (actions, reward, time limit, view), :mod:`.generators`
(structure families), :mod:`.level_sets`, :mod:`.named`, :mod:`.mutate`, :mod:`.space`
(the LevelSpace), :mod:`.single` and :mod:`.vec` (environments), :mod:`.render`,
:mod:`.minigrid` (conversion), :mod:`.family`, :mod:`.cli`.
"""

import gymnasium as gym

from heldout.envs.maze.editor import MazeEditorEnv, MazeEditorVecEnv
from heldout.envs.maze.family import MazeFamily, MazeOptions
from heldout.envs.maze.generators import GENERATORS, HELD_OUT_FAMILIES, TRAIN_FAMILIES, generate
from heldout.envs.maze.level import MazeLevel
from heldout.envs.maze.level_sets import LEVEL_SET_NAMES, build_level_set, split_by_size
from heldout.envs.maze.minigrid import to_minigrid
from heldout.envs.maze.named import named_level, named_levels
from heldout.envs.maze.paths import distance_map, is_solvable, min_actions, shortest_path_length
from heldout.envs.maze.render import render_level, render_rollout, render_state, render_trajectory
from heldout.envs.maze.rules import default_max_steps, goal_reward
from heldout.envs.maze.single import MazeEnv
from heldout.envs.maze.space import MazeLevelSpace
from heldout.envs.maze.text import format_level, parse_level
from heldout.envs.maze.vec import MazeVecEnv

__all__ = [
    "GENERATORS",
    "HELD_OUT_FAMILIES",
    "LEVEL_SET_NAMES",
    "TRAIN_FAMILIES",
    "EDITOR_GYM_ID",
    "MazeEditorEnv",
    "MazeEditorVecEnv",
    "MazeEnv",
    "MazeFamily",
    "MazeLevel",
    "MazeLevelSpace",
    "MazeOptions",
    "MazeVecEnv",
    "build_level_set",
    "default_max_steps",
    "distance_map",
    "families",
    "format_level",
    "generate",
    "goal_reward",
    "is_solvable",
    "min_actions",
    "named_level",
    "named_levels",
    "parse_level",
    "render_level",
    "render_rollout",
    "render_state",
    "render_trajectory",
    "shortest_path_length",
    "split_by_size",
    "to_minigrid",
]


EDITOR_GYM_ID = "heldout/maze-editor-v0"
"""``gymnasium.make(EDITOR_GYM_ID, size=13, n_walls=50, z_dim=50)``: PAIRED's level editor."""
if EDITOR_GYM_ID not in gym.registry:
    gym.register(id=EDITOR_GYM_ID, entry_point="heldout.envs.maze.editor:MazeEditorEnv")


def families() -> list[MazeFamily]:
    """The families this package registers: one, ``maze``."""
    return [MazeFamily()]
