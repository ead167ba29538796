"""The process's allocator setting (heldout.trainer.memory)."""

import ctypes
import platform
import sys

import pytest

from heldout.trainer.memory import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_thresholds_are_raised_once_and_allocation_still_works() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent
    block = ctypes.create_string_buffer(64 << 20)  # a 64 MiB block now comes from the heap
    block[-1] = b"x"
    assert block.raw[-1:] == b"x"
