"""Thread settings of a run: one torch thread per usable core by default."""

from __future__ import annotations

import torch

from heldout.trainer import build, config


def test_the_default_thread_count_follows_the_cores_the_process_may_use(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(build.os, "sched_getaffinity", lambda pid: {3}, raising=False)
        cfg = config.preset("maze")
        cfg.torch_threads = 0
        build.prepare_process(cfg)
        assert build.usable_cores() == 1 and torch.get_num_threads() == 1
        cfg.torch_threads = 2  # an explicit count wins
        build.prepare_process(cfg)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
