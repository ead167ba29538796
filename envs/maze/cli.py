"""``heldout maze``: look at maze levels in the terminal and save level sets to files.

    heldout maze show LEVELS.txt             print every level of a level file
    heldout maze show --set test_ood -n 3    print the first 3 levels of a built-in set
    heldout maze save train train.txt        write a built-in level set to a level file
"""

from __future__ import annotations

import argparse
import sys


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("maze", help="show maze levels in the terminal, save maze level sets")
    maze_sub = p.add_subparsers(dest="maze_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    show = maze_sub.add_parser("show", help="print maze levels from a level file or a built-in level set")
    show.add_argument("file", nargs="?", help="a level file (levels in text form, separated by blank lines)")
    show.add_argument("--set", dest="set_name", help="a built-in level set instead of a file (train, test, ...)")
    show.add_argument("-n", "--num", type=int, default=None, help="show only the first N levels")
    show.add_argument("--color", action="store_true", help="draw with ANSI colours")
    _add_set_options(show)
    show.set_defaults(func=run_show)

    save = maze_sub.add_parser("save", help="write a built-in maze level set to a level file")
    save.add_argument("set_name", metavar="SET", help="train, test, test_ood, named or large")
    save.add_argument("file", help="where to write the levels")
    _add_set_options(save)
    save.set_defaults(func=run_save)


def _add_set_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=None, help="interior size of generated levels (default 13)")
    p.add_argument("--level-seed", type=int, default=0, help="seed of the level sets (default 0)")
    p.add_argument("--num-train-levels", type=int, default=None, help="levels in the train set (default 200)")


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _built_in(args: argparse.Namespace):
    from heldout.cli import UsageError
    from heldout.envs.maze import MazeFamily

    level_set = MazeFamily().level_set(
        args.set_name, num_train_levels=args.num_train_levels, level_seed=args.level_seed, size=args.size
    )
    if not level_set.finite:
        raise UsageError(
            f"level set {args.set_name!r} is drawn at random without end, so it has no levels to list; "
            "choose a finite set (train, test, test_ood, named, large, empty)"
        )
    return level_set


def run_show(args: argparse.Namespace) -> int:
    from heldout.cli import UsageError
    from heldout.envs.maze.paths import shortest_path_length
    from heldout.envs.maze.render import colorize
    from heldout.envs.maze.space import MazeLevelSpace

    if (args.file is None) == (args.set_name is None):
        raise UsageError("give a level file or --set NAME (one of them)")
    if args.num is not None and args.num < 1:
        raise UsageError(f"--num must be at least 1, got {args.num}")
    space = MazeLevelSpace()
    level_set = space.read_levels(args.file) if args.file else _built_in(args)
    levels = list(level_set)
    shown = levels if args.num is None else levels[: args.num]
    families = level_set.metadata.get("names") or level_set.metadata.get("families")
    for i, level in enumerate(shown):
        steps = shortest_path_length(level)
        path = f"shortest path {steps} steps" if steps is not None else "UNSOLVABLE"
        label = f" ({families[i]})" if families else ""
        print(f"level {i + 1} of {len(levels)}{label}: {level.height}x{level.width}, {path}")
        text = space.format(level)
        print(colorize(text) if args.color else text)
        print()
    return 0


def run_save(args: argparse.Namespace) -> int:
    from heldout.envs.maze.space import MazeLevelSpace

    level_set = _built_in(args)
    MazeLevelSpace().write_levels(list(level_set), args.file)
    print(f"wrote {len(level_set)} levels of {level_set.name!r} to {args.file}")
    return 0
