"""The 16 Procgen games with chosen levels, on stock ``procgen-mirror`` (imported lazily).

>>> from heldout import envs
>>> env = envs.make("procgen/coinrun", level_set="train")        # gymnasium.Env
>>> obs, info = env.reset(options={"level": 7})                  # play seed 7
>>> vec = envs.make_vec("procgen/coinrun", 64, level_set="train")  # sb3 VecEnv
>>> envs.level_set("procgen/coinrun", "test").metadata["dropped"]

Modules: :mod:`.games` (names, modes, normalisation constants), :mod:`.levels` (level space
and level sets), :mod:`.fingerprints` (content fingerprints and their cache),
:mod:`.backend` (procgen itself), :mod:`.single`, :mod:`.vec`, :mod:`.family`.
"""

from heldout.envs.procgen.family import ProcgenFamily, families
from heldout.envs.procgen.games import DISTRIBUTION_MODES, EASY_RETURN_RANGE, GAMES, normalise
from heldout.envs.procgen.levels import ProcgenLevelSpace, full_set, test_set, train_set
from heldout.envs.procgen.single import ProcgenEnv
from heldout.envs.procgen.vec import ProcgenVecEnv

__all__ = [
    "DISTRIBUTION_MODES",
    "EASY_RETURN_RANGE",
    "GAMES",
    "ProcgenEnv",
    "ProcgenFamily",
    "ProcgenLevelSpace",
    "ProcgenVecEnv",
    "families",
    "full_set",
    "normalise",
    "test_set",
    "train_set",
]
