"""Preemption and Ctrl-C during training: stop at the next safe point, or at once.

Clusters preempt jobs with SIGTERM (SLURM, Kubernetes) and kill them a little later; people
press Ctrl-C (SIGINT). While a :class:`StopSignals` is active, the first of these signals only
sets :attr:`StopSignals.requested`: the trainer checks it between two PPO updates (at most one
update away), writes a checkpoint there and raises :class:`Stopped`. A second signal, or one
arriving while nothing is left to save (:attr:`StopSignals.immediate`), raises
:class:`Stopped` at once. The exit code is 128 + the signal number: 130 for SIGINT, 143 for
SIGTERM.

In the phases with nothing to save (building the run, DRED's fit, the untrained and the final
evaluations) the trainer sets ``immediate``: the first signal stops at once. A periodic
evaluation or probe between two updates runs inside :meth:`StopSignals.interruptible`: the first
signal cuts it short, the trainer checkpoints the state before it (it changes nothing the
training uses) with the evaluation marked pending, and a resume runs it again at that step.
Short writes that must not be cut in two (the run directory's config, the report's two files, a
record's line) run inside :meth:`StopSignals.held`, which defers a signal to their end.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """Training stopped on a signal; ``checkpointed`` says whether a checkpoint was written for it.

    A ``BaseException`` (as ``KeyboardInterrupt``) so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int, checkpointed: bool, steps: int | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.checkpointed = checkpointed
        self.steps = steps

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """Context manager that turns SIGINT and SIGTERM into a stop request (see the module docstring).

    ``notice`` is printed to stderr when the first signal arrives. Outside the main thread
    (where Python cannot install handlers) it does nothing.
    """

    def __init__(self, notice: str = "", immediate: bool = False) -> None:
        self.notice = notice
        self.requested: int | None = None
        self.immediate = immediate
        self._holding = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None or (self.immediate and not self._holding):
            raise Stopped(signum, checkpointed=False)
        self.requested = signum
        if self.notice and not self._holding:
            print(self.notice, file=sys.stderr, flush=True)

    @contextmanager
    def held(self, stop_after: bool = True) -> Iterator[None]:
        """Defer a first signal to the end of this block (a short write that must not be cut in
        two); in an ``immediate`` phase it then stops at once (``stop_after``: a block that ends the
        run, such as writing its report, lets it end instead), else as usual at the next update."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if stop_after and self.immediate and self.requested is not None:
            raise Stopped(self.requested, checkpointed=False)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that a first signal cuts short (a periodic evaluation): the signal is left
        requested, as if it had come just before the block, and the caller, finding the block
        unfinished, checkpoints; a second signal stops at once as ever. Enter it only while no
        signal is requested."""
        previous = self.immediate
        try:
            self.immediate = True
            try:
                yield
            finally:
                self.immediate = previous
        except Stopped as stopped:
            if self.requested is not None:  # a signal deferred by held() inside the block, then a second
                raise
            self.requested = stopped.signum

    def stop_if_requested(self, checkpointed: bool, steps: int | None = None) -> None:
        """Raise :class:`Stopped` if a signal came; the caller has just reached a safe point."""
        if self.requested is not None:
            raise Stopped(self.requested, checkpointed=checkpointed, steps=steps)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
            # A process started with these signals blocked (a child of a Ray worker inherits its
            # mask) would never see them: a stop request would wait forever.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
