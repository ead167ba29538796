"""``heldout envs``: list every registered environment family and its level sets.

    heldout envs                                  every family, its Gymnasium id and level sets
    heldout envs --level-sets                     every level set of every family: size and notes
    heldout envs --level-sets procgen/coinrun maze   only those families

For the held-out sets filtered by content (Procgen ``test``) ``--level-sets`` ends with one row
per family: how many candidates were examined, how many were dropped as duplicates of a
training level, and whether the fingerprint proves the kept levels differ in content.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

_WIDTH = 100


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "envs",
        help="list the registered environments and their level sets",
        description="List the registered environment families; with --level-sets, build and describe their level sets.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these families (default: all)")
    p.add_argument(
        "--level-sets",
        action="store_true",
        help="build every level set and print its size and notes (Procgen test sets: dropped levels)",
    )
    p.add_argument("--num-train-levels", type=int, default=None, help="levels in train (default: the family's)")
    p.add_argument("--num-test-levels", type=int, default=None, help="levels in the held-out sets (default: the family's)")
    p.add_argument("--level-seed", type=int, default=0, help="seed of the level sets (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heldout import envs

    families = _families(envs, args.names)
    if not families:
        print("no environments registered")
        return 0
    if not args.level_sets:
        rows = [(f.name, envs.gym_id(f.name), ", ".join(f.level_set_names)) for f in families]
        _print_table(("name", "gymnasium id", "level sets"), rows)
        return 0
    options: dict[str, Any] = {"num_train_levels": args.num_train_levels, "level_seed": args.level_seed}
    if args.num_test_levels is not None:
        options["num_test_levels"] = args.num_test_levels
    return _print_level_sets(families, options)


def _families(envs: Any, names: list[str]) -> list[Any]:
    """The families named (short names and Gymnasium ids work too), in order, or all of them."""
    if not names:
        return [envs.get(name) for name in envs.names()]
    chosen: dict[str, Any] = {}
    for name in names:
        try:
            family = envs.get(name)
        except KeyError as err:
            raise ValueError(err.args[0]) from None  # the CLI prints ValueErrors as one line
        chosen.setdefault(family.name, family)
    return list(chosen.values())


def _print_level_sets(families: list[Any], options: dict[str, Any]) -> int:
    filtered: list[tuple[str, ...]] = []
    failed = 0
    for family in families:
        print(f"{family.name}  (score: {family.score_unit})")
        for set_name in family.level_set_names:
            try:
                lset = family.level_set(set_name, **options)
            except Exception as err:  # one family's bad option must not hide the others
                failed += 1
                print(f"  {set_name}: could not build: {err}")
                continue
            size = f"{len(lset)} levels" if lset.finite else "unbounded"
            print(f"  {set_name}: {size}")
            if lset.notes:
                print(textwrap.fill(lset.notes, _WIDTH, initial_indent=" " * 4, subsequent_indent=" " * 4))
            meta = lset.metadata
            if "candidates" in meta and "dropped" in meta:
                proves = meta.get("fingerprint_proves_distinct")
                why_not = str(meta.get("fingerprint_scope", "")).partition(": ")[2]
                filtered.append(
                    (
                        family.name,
                        set_name,
                        str(len(lset)),
                        str(meta["candidates"]),
                        str(meta["dropped"]),
                        "?" if proves is None else ("yes" if proves else f"no: {why_not}" if why_not else "no"),
                    )
                )
        print()
    if filtered:
        print("held-out sets filtered by content fingerprint:")
        _print_table(("family", "set", "levels", "candidates", "dropped", "fingerprint proves distinct"), filtered)
    return 1 if failed else 0


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
