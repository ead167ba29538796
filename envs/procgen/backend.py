"""The thin layer over stock ``procgen`` (imported lazily): raw environments, a level's start
state taken from a donor environment, and the first frame of a level.

Choosing the level of one slot needs no fork: a donor ``ProcgenGym3Env(num=1,
start_level=s, num_levels=1)`` holds level ``s`` just after its reset; its serialised state
(procgen's ``get_state``) written into a slot with ``set_state`` makes that slot play ``s``
from its first frame on, with the same random stream, so it matches a fresh env of seed ``s``.
Start states are cached per (game, mode) and lightened once (:func:`lighten_start_state`).
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np

_MAX_STATE_BYTES = 2**20  # procgen's own bound on a serialised game state
_DONOR_RAND_SEED = 0  # only seeds the level picker, which has a single choice in a donor
_ENTITY_BYTES = 31 * 4  # procgen 0.10.7 Entity::serialize: 31 four-byte fields
# The shortest text std::mt19937 reads back: 624 state words and the position.
_IDLE_RNG_TEXT = (" ".join(["0"] * 624) + " 624").encode()


@lru_cache(maxsize=1)
def gym3_env_class() -> type:
    """``procgen.ProcgenGym3Env``, imported on first use (it pulls gym3 and the legacy gym,
    whose import notice on stderr is silenced)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            from procgen.env import ProcgenGym3Env
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the Procgen environments need procgen-mirror==0.10.7: pip install 'procgen-mirror==0.10.7' 'numpy<2'"
        ) from err
    return ProcgenGym3Env


@lru_cache(maxsize=1)
def procgen_version() -> str:
    from importlib import metadata

    for dist in ("procgen-mirror", "procgen"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def make_raw_env(
    game: str,
    num: int,
    distribution_mode: str,
    *,
    start_level: int = 0,
    num_levels: int = 1,
    rand_seed: int = 0,
    num_threads: int | None = None,
    center_agent: bool = True,
    render_mode: str | None = None,
) -> Any:
    """A ``ProcgenGym3Env``; ``num_threads=None`` keeps procgen's default (4).

    Its C ``libenv_close`` is looked up at once. cffi looks a library's functions up lazily,
    under a lock shared by every procgen env, and the garbage collector can run while that
    lock is held (when another env is being made); an unclosed env collected then would look
    ``libenv_close`` up in its ``__del__`` and wait for the lock forever. With the function
    already bound, closing never takes the lock.
    """
    kwargs: dict[str, Any] = {}
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym3_env_class()(
        num=num,
        env_name=game,
        distribution_mode=distribution_mode,
        start_level=start_level,
        num_levels=num_levels,
        rand_seed=rand_seed,
        center_agent=center_agent,
        **kwargs,
    )
    env._c_lib.libenv_close  # noqa: B018 - binds the function now (see above)
    return env


def _donor(game: str, seed: int, distribution_mode: str, center_agent: bool) -> Any:
    return make_raw_env(
        game,
        1,
        distribution_mode,
        start_level=seed,
        num_levels=1,
        rand_seed=_DONOR_RAND_SEED,
        num_threads=0,
        center_agent=center_agent,
    )


def first_frame(game: str, seed: int, distribution_mode: str, *, center_agent: bool = False) -> np.ndarray:
    """The (64, 64, 3) uint8 first frame of level ``seed``; uncentred by default, which draws
    the whole world of the level scaled into the frame."""
    env = _donor(game, seed, distribution_mode, center_agent)
    try:
        _, ob, _ = env.observe()
        return ob["rgb"][0]
    finally:
        env.close()


class _StateReader:
    """Walks procgen 0.10.7's serialised game state (little-endian int32 fields; strings and
    RNG texts are an int32 length followed by the bytes)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return value

    def skip(self, num_fields: int) -> None:
        self.pos += 4 * num_fields

    def text(self) -> tuple[int, int]:
        """Skip a length-prefixed string; return its (start, end) including the prefix."""
        start = self.pos
        length = self.int()
        if not 0 <= length <= len(self.data) - self.pos:
            raise ValueError("string length out of range")
        self.pos += length
        return start, self.pos


def lighten_start_state(state: bytes, game: str, seed: int) -> bytes:
    """``state`` with its two idle random generators replaced by the shortest valid text.

    procgen's ``set_state`` spends most of its time parsing the text form of three Mersenne
    twisters (about 6.7 KB each). Two of them never influence a donor's level: the level
    picker (``level_seed_rand_gen``) draws from the range ``[seed, seed + 1)``, which has one
    value whatever its state, and the asset generator (``asset_rand_gen``) is re-seeded
    before every use. Only the level's own stream (``rand_gen``) is kept exactly. Writing the
    lightened state takes about a third less time; the tests check, in all 16 games, that slots
    still replay a fresh env frame for frame, in episodes begun at a done and after procgen's
    own auto-resets. A state that does not look like a procgen 0.10.7 donor of ``seed``
    is returned unchanged.
    """
    try:
        r = _StateReader(state)
        if r.int() != 0:  # SERIALIZE_VERSION
            return state
        start, end = r.text()
        if state[start + 4 : end] != game.encode():
            return state
        r.skip(12 + 1)  # twelve options, grid_step
        if (r.int(), r.int()) != (seed, seed + 1):  # level_seed_low, level_seed_high
            return state
        r.skip(2)  # game_type, game_n
        r.skip(1)  # level_seed_rand_gen.is_seeded
        picker = r.text()
        r.skip(1)  # rand_gen.is_seeded
        r.text()  # rand_gen: the level's stream, kept
        r.skip(15 + 1)  # the rest of Game::serialize, then grid_size
        num_entities = r.int()
        if not 0 <= num_entities <= len(state) // _ENTITY_BYTES:
            return state
        r.pos += num_entities * _ENTITY_BYTES
        r.skip(19)  # use_procgen_background .. step_rand_int
        r.skip(1)  # asset_rand_gen.is_seeded
        assets = r.text()
    except (struct.error, ValueError):
        return state
    idle = struct.pack("<i", len(_IDLE_RNG_TEXT)) + _IDLE_RNG_TEXT
    return b"".join(
        (state[: picker[0]], idle, state[picker[1] : assets[0]], idle, state[assets[1] :])
    )


class StartStates:
    """Serialised start states of levels for one (game, distribution mode), cached.

    The cache keeps the ``capacity`` most recently used states (a state is 20-40 KiB), so
    training sets stay resident while draws from the full distribution do not pile up.
    """

    def __init__(self, game: str, distribution_mode: str, capacity: int = 2048) -> None:
        if capacity < 1:
            raise ValueError(f"the start-state cache needs a capacity of at least 1, got {capacity}")
        self.game = game
        self.distribution_mode = distribution_mode
        self.capacity = capacity
        self._states: OrderedDict[int, bytes] = OrderedDict()
        self._buffer: Any = None

    def __len__(self) -> int:
        return len(self._states)

    def get(self, seed: int) -> bytes:
        """The state of level ``seed`` just after its reset (agent-centred rendering)."""
        state = self._states.get(seed)
        if state is not None:
            self._states.move_to_end(seed)
            return state
        state = self._take(seed)
        self._states[seed] = state
        if len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return state

    def _take(self, seed: int) -> bytes:
        donor = _donor(self.game, seed, self.distribution_mode, True)
        try:
            if self._buffer is None:
                # procgen shares one cffi FFI between all its envs, so one buffer serves them all
                self._buffer = donor._ffi.new(f"char[{_MAX_STATE_BYTES}]")
            size = donor.call_c_func("get_state", 0, self._buffer, _MAX_STATE_BYTES)
            return lighten_start_state(bytes(donor._ffi.buffer(self._buffer, size)), self.game, seed)
        finally:
            donor.close()


_START_STATES: dict[tuple[str, str], StartStates] = {}


def start_states(game: str, distribution_mode: str) -> StartStates:
    """The process-wide start-state cache of one (game, distribution mode)."""
    key = (game, distribution_mode)
    if key not in _START_STATES:
        _START_STATES[key] = StartStates(game, distribution_mode)
    return _START_STATES[key]


class SlotWriter:
    """Writes level start states into the slots of one ``ProcgenGym3Env`` and reads its
    buffers without copying everything (procgen's ``set_state`` already renders the slot's
    new first frame into the observation buffer)."""

    def __init__(self, env: Any, states: StartStates) -> None:
        self.env = env
        self.states = states
        self._set_state = env._c_lib.set_state
        self._handle = env._c_env
        self.rgb: np.ndarray = env._ob["rgb"]
        self.level_seed: np.ndarray = env._info["level_seed"]

    def write(self, slot: int, seed: int) -> None:
        state = self.states.get(seed)
        self._set_state(self._handle, slot, state, len(state))

    def get_all(self) -> list[bytes]:
        return list(self.env.callmethod("get_state"))

    def set_all(self, states: list[bytes]) -> None:
        if len(states) != self.env.num:
            raise ValueError(f"got {len(states)} simulator states for {self.env.num} slots")
        self.env.callmethod("set_state", list(states))
