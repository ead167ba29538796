"""The ``heldout`` command line: ``heldout envs``, ``heldout train``, ``heldout evaluate``...

Each subcommand lives beside the code it drives, in a module with ``add_command(subparsers)``
that adds its parser and sets ``func`` (called with the parsed arguments; returns an exit
code). Errors a user can fix print one line and exit with code 2; a file that cannot be written
(full disk, file-size limit, I/O error, read-only directory) prints one line naming it and exits
with code 74 (:mod:`heldout.safe_write`).
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

COMMAND_MODULES = (
    "heldout.envs.cli",
    "heldout.envs.maze.cli",
    "heldout.train",
    "heldout.evaluation.command",
    "heldout.trainer.collect",
    "heldout.trainer.dred",
    "heldout.experiments.sweep",
    "heldout.experiments.compare",
)


class UsageError(Exception):
    """A mistake the user can fix: printed as one line, exit code 2."""


def command_parser(sub: argparse._SubParsersAction, name: str, help: str, doc: str | None) -> argparse.ArgumentParser:
    """A subcommand's parser whose description is its module docstring, layout kept."""
    return sub.add_parser(
        name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heldout",
        description="Train agents on chosen levels, evaluate them on held-out levels, report the generalisation gap.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        import_module(module).add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from heldout.safe_write import EXIT_CODE, WriteError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WriteError as err:
        print(f"heldout {args.command}: error: {err}", file=sys.stderr)
        return EXIT_CODE
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"heldout {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the checks above did not foresee: still one line, no traceback
        where = f": {err.filename}" if err.filename else ""
        print(f"heldout {args.command}: error: {err.strerror or err}{where}; check the path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"heldout {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the errors the commands raise are
    # heldout.cli.UsageError, a different class from this copy's.
    from heldout.cli import main as package_main

    sys.exit(package_main())
