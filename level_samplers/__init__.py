"""Level samplers: which level each environment slot plays next.

>>> from heldout import level_samplers
>>> sampler = level_samplers.make("plr", range(200), temperature=0.1)
>>> level = sampler.sample()
>>> sampler.update(level, score=0.3)
>>> sampler.probabilities()[level]
1.0

Samplers know nothing of environments or torch: a level is any hashable object. Scores are
pure functions in :mod:`heldout.level_samplers.scores`; turning a stable-baselines3
rollout into per-episode scores is :mod:`heldout.level_samplers.rollout_scoring`, and the
training loop feeds them through :class:`heldout.trainer.sampler_glue.SamplerGlue`.
"""

from heldout.level_samplers import scores, transforms
from heldout.level_samplers.accel import ACCELSampler
from heldout.level_samplers.base import Level, LevelSampler
from heldout.level_samplers.dred import DREDSampler
from heldout.level_samplers.dr import DRSampler
from heldout.level_samplers.paired import PAIREDSampler, REPAIREDSampler
from heldout.level_samplers.plr import PLRSampler, RobustPLRSampler
from heldout.level_samplers.registry import (
    PROVIDED,
    Parameter,
    family_defaults,
    get,
    make,
    names,
    needs,
    parameters,
    register,
    specs,
    takes_space,
)
from heldout.level_samplers.rollout_scoring import EpisodeScore, EpisodeScorer
from heldout.level_samplers.uniform import UniformSampler

__all__ = [
    "ACCELSampler",
    "DRSampler",
    "DREDSampler",
    "EpisodeScore",
    "EpisodeScorer",
    "Level",
    "LevelSampler",
    "PROVIDED",
    "Parameter",
    "PAIREDSampler",
    "PLRSampler",
    "REPAIREDSampler",
    "RobustPLRSampler",
    "UniformSampler",
    "family_defaults",
    "get",
    "make",
    "names",
    "needs",
    "parameters",
    "register",
    "scores",
    "specs",
    "takes_space",
    "transforms",
]
