"""heldout: zero-shot generalisation in reinforcement learning.

Train agents on a fixed set of levels, evaluate them on held-out levels, and shrink the
generalisation gap with level samplers, environment design and data augmentation.

Subpackages: :mod:`heldout.envs`, :mod:`heldout.agents`, :mod:`heldout.level_samplers`.
"""

__version__ = "0.1.0"


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
