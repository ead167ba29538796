"""Offline data: datasets of episodes on chosen levels, in Minari's format (:mod:`heldout.offline.dataset`).

``heldout collect`` (:mod:`heldout.trainer.collect`) writes them from a trained run; the offline
agents (``bc``, ``cql``: :mod:`heldout.agents.offline`) learn from them in
:mod:`heldout.trainer.offline`, evaluated as online runs are.
"""

from heldout.offline.dataset import Episode, OfflineData, read, write

__all__ = ["Episode", "OfflineData", "read", "write"]
