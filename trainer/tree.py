"""Plain-data trees on disk: written atomically, read without executing anything.

**Loading a file executes nothing.** Run directories are shared, so a checkpoint is data, never
pickled objects. The on-disk form (``heldout-tree-v1``, written by :func:`save_tree`, read by
:func:`load_tree`; checkpoints and every other heldout file holding a tree use it) is a
``torch.save`` zip of exactly::

    {"heldout": "heldout-tree-v1", "tree": <JSON text>, "tensors": [<torch.Tensor>, ...]}

read back with ``torch.load(weights_only=True)``, whose unpickler accepts only tensors and the
plain containers above (anything else, e.g. a crafted ``os.system`` call, is refused before it
can run), then with ``json.loads``. The JSON text encodes the tree:

- ``null``, ``true``/``false``, numbers (exact: Python ints of any size, floats by their
  shortest round-trip repr) and strings stand for themselves; a JSON array is a ``list``;
- every other value is a one-key object naming its kind: ``{"dict": {...}}`` (all keys
  ``str``), ``{"pairs": [[k, v], ...]}`` (a dict with other keys), ``{"odict": [[k, v], ...]}``
  (``OrderedDict``), ``{"tuple": [...]}``, ``{"float": "inf"|"-inf"|"nan"}``,
  ``{"tensor": i}`` (``tensors[i]``, any dtype and device, loaded on the CPU),
  ``{"bytes": i}`` (``tensors[i]``, uint8), ``{"ndarray": i, "dtype": "<f4", "shape": [...]}``
  (the array's raw bytes in ``tensors[i]``; object and structured dtypes are refused),
  ``{"npscalar": i, "dtype": "<i8"}`` (a numpy scalar such as ``np.float64``), and
  ``{"level": i}``: the i-th entry of the tree's level table, written with the family's
  :class:`~heldout.envs.LevelSpace` text form (``format``) and read back with its ``parse``
  (a maze level, for example; Procgen levels are ints and need no table).

Any other object (a custom class, a deque, a set) is refused when saving, with the path of the
offending entry, so whatever a sampler or an agent hands to a checkpoint must be plain data of
the kinds above, or a level of the run's family.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from heldout import safe_write
from heldout.envs.base import LevelSpace

TREE_FORMAT = "heldout-tree-v1"


class UnsafeFileError(ValueError):
    """A file that holds pickled objects other than tensors and plain data; it was not loaded."""


def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on an in-memory file, then write its bytes beside ``path`` and rename them
    over it (:func:`heldout.safe_write.replace_bytes`: a full disk is a one-line
    :class:`~heldout.safe_write.WriteError`, not torch's zip-writer error, and the old file is kept)."""
    buffer = io.BytesIO()
    write(buffer)
    safe_write.replace_bytes(path, buffer.getvalue())


# -- plain-data trees <-> JSON text + tensors ------------------------------------------------------


class _Encoder:
    def __init__(self, level_space: LevelSpace | None) -> None:
        self.level_space = level_space
        self.tensors: list[torch.Tensor] = []
        self.levels: list[str] = []
        self._level_index: dict[Any, int] = {}
        self._checked_types: set[type] = set()

    def _blob(self, tensor: torch.Tensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def encode(self, value: Any, path: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
            array = np.asarray(value)
            self._check_dtype(array.dtype, path)
            return {"npscalar": self._blob(_bytes_tensor(array.tobytes())), "dtype": array.dtype.str}
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else {"float": repr(float(value))}
        if isinstance(value, torch.Tensor):
            return {"tensor": self._blob(value.detach() if value.requires_grad else value)}
        if isinstance(value, np.ndarray):
            self._check_dtype(value.dtype, path)
            blob = self._blob(_bytes_tensor(np.ascontiguousarray(value).tobytes()))
            return {"ndarray": blob, "dtype": value.dtype.str, "shape": list(value.shape)}
        if isinstance(value, (bytes, bytearray)):
            return {"bytes": self._blob(_bytes_tensor(bytes(value)))}
        if isinstance(value, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple) and type(value) is tuple:
            return {"tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if type(value) is OrderedDict:
            return {"odict": self._pairs(value, path)}
        if type(value) is dict:
            if all(isinstance(k, str) for k in value):
                return {"dict": {k: self.encode(v, f"{path}[{k!r}]") for k, v in value.items()}}
            return {"pairs": self._pairs(value, path)}
        return {"level": self._level(value, path)}

    def _pairs(self, mapping: dict, path: str) -> list[list[Any]]:
        return [[self.encode(k, f"{path} key"), self.encode(v, f"{path}[{k!r}]")] for k, v in mapping.items()]

    @staticmethod
    def _check_dtype(dtype: np.dtype, path: str) -> None:
        if dtype.hasobject or dtype.fields is not None:
            raise TypeError(f"cannot store the {dtype} array at {path}: only arrays of plain numbers, bools or bytes")

    def _level(self, level: Any, path: str) -> int:
        refused = TypeError(
            f"cannot store {type(level).__name__} at {path}: a saved tree holds only dict, list, tuple, str, "
            "int, float, bool, None, bytes, numpy arrays and scalars, torch tensors and the family's levels"
        )
        if self.level_space is None:
            raise refused
        try:
            index = self._level_index.get(level)
        except TypeError:  # unhashable: not a level
            raise refused from None
        if index is not None:
            return index
        try:
            text = self.level_space.format(level)
            if type(level) not in self._checked_types:  # one exact round trip per type proves it a level
                if self.level_space.parse(text) != level:
                    raise ValueError
                self._checked_types.add(type(level))
        except (TypeError, ValueError, NotImplementedError):
            raise refused from None
        self.levels.append(text)
        self._level_index[level] = len(self.levels) - 1
        return len(self.levels) - 1


def _bytes_tensor(data: bytes) -> torch.Tensor:
    if not data:
        return torch.zeros(0, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


class _Decoder:
    def __init__(self, tensors: list[torch.Tensor], level_texts: list[str], level_space: LevelSpace | None) -> None:
        self.tensors = tensors
        self.level_texts = level_texts
        self.level_space = level_space
        self.levels: dict[int, Any] = {}

    def _raw(self, index: Any) -> bytes:
        tensor = self.tensors[index]
        if tensor.dtype != torch.uint8 or tensor.dim() != 1:
            raise ValueError("a byte blob is not a 1-D uint8 tensor")
        return tensor.numpy().tobytes()

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not node:
            raise ValueError(f"unexpected node {node!r}")
        kind = next(iter(node))
        body = node[kind]
        if kind == "dict":
            return {k: self.decode(v) for k, v in body.items()}
        if kind == "pairs":
            return {self.decode(k): self.decode(v) for k, v in body}
        if kind == "odict":
            return OrderedDict((self.decode(k), self.decode(v)) for k, v in body)
        if kind == "tuple":
            return tuple(self.decode(v) for v in body)
        if kind == "float":
            return float(body)
        if kind == "tensor":
            return self.tensors[body]
        if kind == "bytes":
            return self._raw(body)
        if kind == "ndarray":
            dtype = _plain_dtype(node["dtype"])
            return np.frombuffer(self._raw(body), dtype=dtype).reshape(node["shape"]).copy()
        if kind == "npscalar":
            return np.frombuffer(self._raw(body), dtype=_plain_dtype(node["dtype"]))[0]
        if kind == "level":
            return self._level(body)
        raise ValueError(f"unknown node kind {kind!r}")

    def _level(self, index: int) -> Any:
        if index not in self.levels:
            if self.level_space is None:
                raise ValueError("the file holds levels; read it with the family's level space")
            self.levels[index] = self.level_space.parse(self.level_texts[index])
        return self.levels[index]


def _plain_dtype(text: str) -> np.dtype:
    dtype = np.dtype(str(text))
    if dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"dtype {text!r} is not a plain dtype")
    return dtype


def encode_tree(tree: Any, level_space: LevelSpace | None = None) -> dict[str, Any]:
    """``tree`` as ``{"heldout", "tree" (JSON text), "tensors"}``; TypeError names what cannot be stored."""
    enc = _Encoder(level_space)
    body = enc.encode(tree, "tree")
    text = json.dumps({"levels": enc.levels, "root": body}, allow_nan=False, separators=(",", ":"))
    return {"heldout": TREE_FORMAT, "tree": text, "tensors": enc.tensors}


def decode_tree(payload: Any, level_space: LevelSpace | None = None) -> Any:
    """The tree :func:`encode_tree` encoded; ValueError for anything that is not such a payload."""
    if not (isinstance(payload, dict) and payload.get("heldout") == TREE_FORMAT):
        raise ValueError(f"not a heldout file ({TREE_FORMAT})")
    tensors = payload.get("tensors")
    if not isinstance(payload.get("tree"), str) or not isinstance(tensors, list):
        raise ValueError(f"not a heldout file ({TREE_FORMAT})")
    try:
        data = json.loads(payload["tree"])
        return _Decoder(tensors, list(data["levels"]), level_space).decode(data["root"])
    except (KeyError, IndexError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"damaged data ({err})") from None


def save_tree(path: str | Path, tree: Any, level_space: LevelSpace | None = None) -> None:
    """Write a plain-data tree (see the module docstring) to ``path`` atomically; loading it runs nothing."""
    path = Path(path)
    payload = encode_tree(tree, level_space)  # refuse unstorable data before touching the disk
    safe_write.make_dirs(path.parent)
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_tree(path: str | Path, level_space: LevelSpace | None = None, what: str = "file") -> Any:
    """Read :func:`save_tree`'s file without executing anything in it.

    Raises FileNotFoundError (no such file), :class:`UnsafeFileError` (it holds pickled objects
    other than tensors and plain data: refused unread) or ValueError (damaged or foreign),
    each with a one-line message naming ``what`` and the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    if not path.is_file():
        raise ValueError(f"{what} {path} is a directory, not a file; give the path of the file itself")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the error says enough
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or "Unsupported" in str(err):
            culprit = f" ({found.group(1)})" if found else ""
            raise UnsafeFileError(
                f"{what} {path} holds pickled objects{culprit}, not heldout's plain data (an older heldout's "
                "file or a crafted one); it was not loaded and nothing in it ran"
            ) from None
        raise ValueError(f"{what} {path} is corrupt or not a heldout file ({_short(err)})") from None
    except PermissionError:
        raise ValueError(f"{what} {path} cannot be read (permission denied); check its permissions") from None
    except Exception as err:  # torch raises many kinds for truncated or foreign files
        raise ValueError(f"{what} {path} is corrupt or not a heldout file ({type(err).__name__})") from None
    try:
        return decode_tree(payload, level_space)
    except ValueError as err:
        raise ValueError(f"{what} {path} is corrupt or not a heldout file ({err})") from None


def _short(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:120]}" if first else type(err).__name__
