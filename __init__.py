"""heldout: zero-shot generalisation in reinforcement learning.

Train agents on a fixed set of levels, evaluate them on held-out levels, and shrink the
generalisation gap with level samplers, environment design and data augmentation.

Subpackages: :mod:`heldout.envs`, :mod:`heldout.agents`, :mod:`heldout.level_samplers`,
:mod:`heldout.generators`, :mod:`heldout.trainer`, :mod:`heldout.evaluation`,
:mod:`heldout.experiments`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

MOVED = {
    "heldout.config": "heldout.trainer.config",
    "heldout.checkpoint": "heldout.trainer.checkpoint",
    "heldout.intervals": "heldout.evaluation.intervals",
}
"""Modules that moved into a package, importable by their old names too (the same module object)."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import heldout.config`` (and ``from heldout import config``) give ``heldout.trainer.config``."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        pass


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def _import_gym_quietly() -> None:
    """procgen and stable-baselines3 import the legacy ``gym``, which prints a notice to stderr."""
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            import gym  # noqa: F401
        except ImportError:
            pass


_import_gym_quietly()
