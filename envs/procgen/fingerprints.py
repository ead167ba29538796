"""Content fingerprints of Procgen levels: a hash of the uncentred first frame.

Two seeds can generate the same level (procgen issue #100), so held-out levels are filtered
by content, not by seed. Computing a fingerprint costs one environment creation (about 1 ms),
so fingerprints are cached in memory and on disk under ``$HELDOUT_CACHE_DIR`` (default
``~/.cache/heldout``; set it to an empty string to switch the disk cache off). Each
(procgen version, game, distribution mode) has its own file, written atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from heldout.envs.procgen import backend

FINGERPRINT_BYTES = 16
DESCRIPTION = "blake2b-128 of the uncentred (center_agent=False) 64x64 first frame"

_MEMORY: dict[tuple[str, str], dict[int, bytes]] = {}


def cache_dir() -> Path | None:
    """Where fingerprints are stored on disk, or None when the disk cache is off."""
    value = os.environ.get("HELDOUT_CACHE_DIR")
    if value is None:
        return Path.home() / ".cache" / "heldout"
    return Path(value) if value.strip() else None


def _cache_file(game: str, distribution_mode: str) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    return root / f"procgen-{backend.procgen_version()}" / f"fingerprints-{game}-{distribution_mode}.npz"


def _load(path: Path) -> dict[int, bytes]:
    try:
        with np.load(path) as data:
            seeds, digests = data["seeds"], data["digests"]
    except (OSError, KeyError, ValueError):
        return {}  # missing or unreadable: recompute
    if digests.ndim != 2 or digests.shape[1] != FINGERPRINT_BYTES or len(seeds) != len(digests):
        return {}
    return {int(s): d.tobytes() for s, d in zip(seeds, digests)}


def _save(path: Path, table: dict[int, bytes]) -> None:
    merged = {**_load(path), **table}  # keep what another process wrote meanwhile
    seeds = np.fromiter(merged, dtype=np.int64, count=len(merged))
    digests = np.frombuffer(b"".join(merged[int(s)] for s in seeds), dtype=np.uint8).reshape(-1, FINGERPRINT_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, seeds=seeds, digests=digests)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home must not break level-set construction


def _table(game: str, distribution_mode: str) -> dict[int, bytes]:
    key = (game, distribution_mode)
    if key not in _MEMORY:
        path = _cache_file(game, distribution_mode)
        _MEMORY[key] = _load(path) if path is not None else {}
    return _MEMORY[key]


def compute(game: str, seed: int, distribution_mode: str) -> bytes:
    """The fingerprint of level ``seed``, computed (no cache)."""
    frame = backend.first_frame(game, seed, distribution_mode, center_agent=False)
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=FINGERPRINT_BYTES).digest()


def fingerprints(game: str, seeds: Iterable[int], distribution_mode: str) -> list[bytes]:
    """Fingerprints of ``seeds`` (cached in memory and on disk)."""
    table = _table(game, distribution_mode)
    seeds = [int(s) for s in seeds]
    missing = [s for s in dict.fromkeys(seeds) if s not in table]
    for s in missing:
        table[s] = compute(game, s, distribution_mode)
    if missing:
        path = _cache_file(game, distribution_mode)
        if path is not None:
            _save(path, table)
    return [table[s] for s in seeds]


def clear_memory() -> None:
    """Forget the in-memory fingerprints (the disk cache stays)."""
    _MEMORY.clear()
