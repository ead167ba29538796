"""The files and directories a user names on the command line: checked with one-line errors.

Every reader and writer of a user-given path goes through here, so a missing file, a
directory where a file belongs, a file without read permission, a binary file and a path
below a file are each answered with one line naming the path and the fix (a ValueError or
FileNotFoundError that the CLI prints with exit code 2), never a traceback.
"""

from __future__ import annotations

from pathlib import Path


def read_text(path: str | Path, what: str, max_bytes: int | None = None) -> str:
    """The UTF-8 text of ``path`` (``what``: e.g. ``"config file"``, ``"level file"``), as written on
    any system: a leading byte-order mark is dropped and Windows (CRLF) or old Mac (CR) line ends
    read as ``\n``, so a format error's line and column count as the user's editor does. A file
    larger than ``max_bytes`` is refused from its size (``os.stat``) before any of it is read."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory; give the path of a file")
    if max_bytes is not None:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(
                f"{what} {str(path)!r} is {megabytes(size)} ({size:,} bytes), more than the {max_bytes:,} a {what} may hold; "
                "is it the right file? (split a larger one into several)"
            )
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ValueError(f"{what} {str(path)!r} cannot be read (permission denied); check its permissions") from None
    except OSError as err:
        raise ValueError(f"{what} {str(path)!r} cannot be read ({err.strerror or err}); check the path") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {str(path)!r} is not a text file (not UTF-8); is it the right file?") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def megabytes(size: int) -> str:
    """``52.4 MB`` (decimal megabytes, one decimal)."""
    return f"{size / 1e6:,.1f} MB"


def check_dir_path(path: str | Path, what: str) -> None:
    """Raise ValueError unless ``path`` is a directory or could be created as one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file, not a directory; choose another path")
    _check_parents(path, what)


def check_file_path(path: str | Path, what: str) -> None:
    """Raise ValueError unless a file can be written at ``path`` (checked before any work is done)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory; give a file name, e.g. {str(path / 'result.json')!r}")
    _check_parents(path, what)
    if not path.parent.exists():
        raise ValueError(f"{what} {str(path)!r}: directory {str(path.parent)!r} does not exist; create it first")


def _check_parents(path: Path, what: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {str(path)!r} lies below {str(parent)!r}, which is a file; choose another path")
            return
