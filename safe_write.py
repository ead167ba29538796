"""Writing files so that a full disk or a failing one loses nothing and says so in one line.

Every file heldout writes goes through here: the new content goes to a temporary file beside
the target, is flushed and fsynced, then renamed over the target (:func:`replace_bytes`,
:func:`replace_text`, :func:`replace_with`); lines appended to a record (:func:`append_text`)
are cut back to the old length when the write fails. An ``OSError`` on the way (no space left,
file too large for ``ulimit -f``, an I/O error, a read-only directory) becomes a
:class:`WriteError` naming the path and the cause; the file that was there before is intact.
The CLI prints it as one line and exits with :data:`EXIT_CODE`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

EXIT_CODE = 74
"""The exit code of a run stopped by a failed write (``EX_IOERR`` of BSD's sysexits.h)."""

HINTS = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some space within your disk quota",
    errno.EFBIG: "the file would pass the file-size limit (`ulimit -f`): raise the limit",
    errno.EIO: "the disk reported an I/O error: check the disk",
    errno.EROFS: "the file system is read-only: choose a writable directory",
    errno.EACCES: "no permission to write there: check the directory's permissions",
    errno.EPERM: "no permission to write there: check the directory's permissions",
}


class WriteError(Exception):
    """A file could not be written; the file at ``path`` (if any) is as it was before."""

    def __init__(self, path: str | Path, err: OSError) -> None:
        self.path, self.errno = Path(path), err.errno
        code = errno.errorcode.get(err.errno or 0, "")
        cause = (err.strerror or str(err) or type(err).__name__) + (f" ({code})" if code else "")
        hint = HINTS.get(err.errno or 0, "check the disk and the path")
        super().__init__(f"cannot write {self.path}: {cause}; {hint}, then run the command again (the previous file is kept)")


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def replace_with(path: str | Path, produce: Callable[[Path], None]) -> None:
    """Call ``produce(tmp)`` to write a temporary file beside ``path``, then rename it over ``path``.

    Any ``OSError`` (from ``produce`` or the rename) raises :class:`WriteError`; the temporary
    file is removed whatever happens (also when a signal stops the write)."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        produce(tmp)
        tmp.replace(path)
    except OSError as err:
        raise WriteError(path, err) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _write_synced(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`replace_with`)."""
    replace_with(path, lambda tmp: _write_synced(tmp, data))


def replace_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`replace_with`)."""
    replace_bytes(path, text.encode("utf-8"))


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` to ``path``; a failed write is cut back off, leaving the file as it was."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as err:
        raise WriteError(path, err) from None
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as err:
            os.ftruncate(fd, start)
            raise WriteError(path, err) from None
    finally:
        os.close(fd)


def make_dirs(path: str | Path) -> None:
    """``mkdir -p``; a full or read-only disk raises :class:`WriteError`."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise
    except OSError as err:
        raise WriteError(path, err) from None
