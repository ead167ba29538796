"""Evaluation: the agent on level sets, a run's intervals, the level-identity probe, the report.

``episodes`` (play episodes on a level set, summarise train / held-out sets and gaps),
``intervals`` (95% intervals that respect how episodes were drawn), ``probe`` (the
level-identity probe), ``report`` (report.json / report.md), ``results`` (reading them back, checked) and ``command`` (``heldout evaluate``).
"""

from heldout.evaluation.episodes import run_episodes, summarise_sets

__all__ = ["run_episodes", "summarise_sets"]
