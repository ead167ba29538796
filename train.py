"""Train an agent on training levels, evaluate it on held-out levels, report the gap.

``heldout train`` (or ``python train.py``) reads a config (preset, YAML file, CLI flags),
trains with TensorBoard logging and atomic checkpoints, evaluates the untrained and the
trained agent on the training and the held-out levels, and writes ``report.json`` and
``report.md`` into the run directory. ``heldout train --resume RUN_DIR`` continues a run.
"""

from __future__ import annotations

import sys

from heldout.trainer.command import add_command, config_from_args
from heldout.trainer.run import train

__all__ = ["add_command", "config_from_args", "main", "train"]


def main(argv: list[str] | None = None) -> int:
    """``python train.py ARGS`` is ``heldout train ARGS``."""
    from heldout.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
