"""Experiments over many runs: sweeps of configs x seeds (``heldout sweep``) and their comparison."""
