"""The trainer: a run from its config to its report.

``config`` (the settings tree and presets), ``build`` (every piece of a run), ``loop`` (one
training iteration), ``run`` (a run from start or resume to report), ``rundir`` and
``checkpoint`` (the run directory, atomic checkpoints; ``tree`` is their plain-data format),
``signals`` (stopping at a safe point), ``sampler_glue`` (rollouts -> level sampler),
``level_stats`` (what the curriculum plays), ``dred`` (DRED's model for a run, ``heldout dred``)
and ``command`` (``heldout train``).
"""
