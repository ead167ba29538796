"""Errors shared by everything looked up or registered by name: environment families, agents,
level samplers, Procgen games.

This module imports nothing from ``heldout``, so ``envs/``, ``agents/`` and ``level_samplers/``
can all use it without importing one another.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any


def unknown_name_message(
    kind: str,
    name: Any,
    choices: Iterable[str],
    *,
    also_close: Iterable[str] = (),
    num_close: int = 3,
    listed_as: str = "Available",
) -> str:
    """``unknown KIND 'NAME'. Did you mean 'A', 'B'? Available: X, Y, Z``.

    The hint names up to ``num_close`` close matches among ``choices`` and ``also_close``
    (aliases worth suggesting but not listing) and is left out where none is close.
    """
    choices = list(choices)
    close = difflib.get_close_matches(str(name), [*choices, *also_close], n=num_close, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} {listed_as}: {', '.join(choices)}"


def unknown_name_error(kind: str, name: Any, choices: Iterable[str], **hints: Any) -> KeyError:
    """The ``KeyError`` a registry raises for an unknown name (message: :func:`unknown_name_message`)."""
    return KeyError(unknown_name_message(kind, name, choices, **hints))


def check_new_name(kind: str, name: str, registry: Mapping[str, Any], value: Any, *, replace: bool) -> None:
    """Refuse to register ``value`` as ``name`` where another value holds the name, unless ``replace``."""
    if name in registry and not replace and registry[name] is not value:
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise ValueError(f"{article} {kind} named {name!r} is already registered; pass replace=True")


_PLAIN = re.compile(r"[A-Za-z0-9_+=,-][A-Za-z0-9_.+=,-]*")


def check_plain_name(kind: str, name: str) -> str:
    """``name`` if it can serve as a file or folder name as it is (letters, digits and ``_.+=,-``,
    not starting with a dot: no separators, no ``..``); ValueError naming the problem otherwise."""
    if not _PLAIN.fullmatch(name) or len(name) > 128:
        raise ValueError(
            f"{kind} {name!r} cannot name a folder: use letters, digits and _ . + = , - "
            "(no path separators, not starting with a dot, at most 128 characters)"
        )
    return name
