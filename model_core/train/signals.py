"""Stopping a training run in order: Ctrl-C and SIGTERM end it after the iteration under way."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from model_core.train.loop import TrainState


def _distributed() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM ask a running loop to stop after the iteration under way.

    Raising at once, as Python does for Ctrl-C, can land between the optimiser step and the
    EMA update: the checkpoint written then is a state the uninterrupted run never went
    through, and ``--resume`` could not continue exactly. A second signal stops at once
    (``KeyboardInterrupt``), except inside that short update, which it lets finish first, and
    once the run winds down (:attr:`holding`: DataLoader workers, checkpoint, export), which
    it lets end. Under DDP a second signal only repeats the request: a rank that stopped at
    once would leave the others waiting in a collective (torchrun forwards the signal it gets
    to every rank, and kills them 30 s later). Senders often signal twice: ``timeout`` signals
    the command and then its process group. Before the loop runs (:attr:`state` unset) there
    is nothing to save, and a signal stops at once.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.state: TrainState | None = None  # set when the loop starts
        self.requested = False
        self.holding = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.state is None:
            raise KeyboardInterrupt
        if self.requested and not self.holding and not self.state.mid_step and not _distributed():
            # Under DDP a rank that stops at once would leave the others waiting in a
            # collective: every rank stops after the iteration under way, together.
            raise KeyboardInterrupt
        if not self.requested and not self.holding:
            # os.write: safe inside a signal handler, unlike a buffered stream.
            os.write(2, b"\nstopping after this iteration (signal again to stop at once)\n")
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Within the block, the signals set :attr:`requested` (main thread only).

        An ignored SIGINT stays ignored: shells start background jobs so, to keep a Ctrl-C
        meant for the foreground from stopping them.
        """
        previous = {}
        try:
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is None or (name == "SIGINT" and signal.getsignal(number) == signal.SIG_IGN):
                    continue
                previous[number] = signal.signal(number, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            pass
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def agreed(self, device: torch.device) -> bool:
        """Whether to stop now; under DDP, whether any rank was asked to, so all stop together."""
        if not dist.is_initialized() or dist.get_world_size() == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
