"""One writer per directory: an advisory lock that ``heldout train`` (each sweep run included) and
``heldout sweep`` hold while they write a run or sweep directory.

The lock is ``fcntl.flock`` on ``DIR/.heldout.lock``, a file holding the holder's pid and command
line, so a second writer is refused with one line naming them. The kernel drops the lock when
its holder dies, however it dies: a file left behind by a killed process does not block a resume.
Readers (``heldout evaluate`` on a live run, ``heldout compare``) take no lock: every file they
read is replaced whole by a rename, so they see the last complete one.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
import time
from pathlib import Path
from types import TracebackType

from heldout import safe_write, userfiles
from heldout.cli import UsageError

LOCK_FILE = ".heldout.lock"


def holder(path: Path) -> str:
    """What the lock file at ``path`` says about its holder (pid and command), or why it cannot."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not yet written its pid"


class DirectoryLock:
    """Context manager: hold the lock of ``directory`` (created if missing) while writing there.

    ``what`` names the directory in messages (``"run directory"``). On exit the lock file is
    removed, and so is the directory when this lock created it and nothing else was written.
    """

    def __init__(self, directory: str | Path, what: str = "run directory") -> None:
        self.directory, self.what = Path(directory), what
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> "DirectoryLock":
        try:
            userfiles.check_dir_path(self.directory, self.what)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self._created = not self.directory.exists()
        safe_write.make_dirs(self.directory)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(
                    f"{self.what} {self.directory} is in use by another heldout process ({holder(self.path)}); "
                    "wait for it to end (or stop it), or choose another directory"
                ) from None
            # the previous holder removes the file as it leaves: hold the lock of the file that is there now
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
            else:
                os.close(fd)
        command = shlex.join(["heldout" if sys.argv[0].endswith("cli.py") else sys.argv[0], *sys.argv[1:]])
        text = f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n"
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text.encode(), 0)
        except OSError as err:
            self._release()
            raise safe_write.WriteError(self.path, err) from None
        return self

    def _release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # still held: nobody else can be using this file
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.directory.rmdir()  # only when empty: a run refused before writing leaves nothing
            except OSError:
                pass

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._release()
