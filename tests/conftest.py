"""Fixtures shared by several test files."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small networks: one thread is as fast and does not suffer on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
