"""Difference heatmaps of large images, computed in the worker."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from mdn_gui.jobs import DIFF, DiffDone, DiffJob, GenerationBoard, JobFailed
from mdn_gui.workers import WorkerThread


class DiffRenderer(QObject):
    """Sends heatmap requests to the worker; only the newest one's answer comes back.

    A QObject so that the worker's answers are queued to the GUI thread.

    Signals:
        done (DiffDone): the heatmap of the current request.
        failed (message): the current request failed (out of memory, say).
    """

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, board: GenerationBoard, backend: WorkerThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.board, self.backend = board, backend
        self._gen: int | None = None
        backend.worker.diff_done.connect(self._on_done)
        backend.worker.failed.connect(self._on_failed)

    @property
    def pending(self) -> bool:
        """Whether a heatmap is being computed."""
        return self._gen is not None

    def request(self, after: np.ndarray, reference: np.ndarray, lut: np.ndarray) -> None:
        """Compute the heatmap of |after - reference|; an earlier request becomes stale.

        The worker reads the arrays while the GUI may paste run tiles into them: the caller
        repaints the tiles pasted meanwhile when the answer lands.
        """
        self._gen = self.board.issue(DIFF)
        self.backend.submit(DiffJob(self._gen, after, reference, lut))

    def cancel(self) -> None:
        """Drop the pending request (it is skipped if it has not started)."""
        if self._gen is not None:
            self.board.cancel(DIFF)
            self._gen = None

    def _current(self, gen: int) -> bool:
        if self._gen != gen or not self.board.is_current(DIFF, gen):
            return False
        self._gen = None
        return True

    def _on_done(self, done: DiffDone) -> None:
        if self._current(done.gen):
            self.done.emit(done)

    def _on_failed(self, failed: JobFailed) -> None:
        if failed.channel == DIFF and self._current(failed.gen):
            self.failed.emit(failed.message)
