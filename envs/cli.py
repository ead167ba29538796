"""``heldout envs``: list every registered environment family and its level sets."""

from __future__ import annotations

import argparse


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list the registered environments and their level sets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heldout import envs

    rows = [(name, envs.gym_id(name), ", ".join(envs.get(name).level_set_names)) for name in envs.names()]
    if not rows:
        print("no environments registered")
        return 0
    widths = [max(len(r[i]) for r in rows + [("name", "gymnasium id", "level sets")]) for i in range(3)]
    for row in [("name", "gymnasium id", "level sets"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
