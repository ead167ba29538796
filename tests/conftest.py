"""Fixtures shared by several test files."""

import subprocess
import time

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small networks: one thread is as fast and does not suffer on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def scalar_tags():
    """A reader of the scalar tags in a TensorBoard directory's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(tb_dir) -> set[str]:
        tags: set[str] = set()
        for events in tb_dir.rglob("events.out.tfevents.*"):
            acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
            acc.Reload()
            tags |= set(acc.Tags()["scalars"])
        return tags

    return read


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError("the run ended or hung before it got there")
        time.sleep(0.05)


@pytest.fixture
def wait_for():
    """``wait_for(condition, proc, timeout=120)``: poll until ``condition()``; fails (killing ``proc``) if it
    ends or the time runs out first."""
    return _wait_for
