"""The noisy preview: applied on the GUI thread when that is quick, else in the worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from mdn_gui.jobs import NOISE, GenerationBoard, JobFailed, NoiseDone, NoiseJob
from mdn_gui.state import NoiseSettings
from mdn_gui.workers import WorkerThread
from model_core.noise import NoiseSpec, apply_noise

GUI_NOISE_BUDGET_S = 0.05
# Cost assumed for a noise type never applied yet: above about half a megapixel the first
# application goes to the worker too (Poisson on a 54 MP photo took seconds).
FIRST_GUESS_S_PER_PIXEL = 1e-7


class NoiseCost:
    """Predicts how long a noise type takes, from the last time it was applied."""

    def __init__(self) -> None:
        self._seconds_per_pixel: dict[str, float] = {}

    def predict(self, kind: str, pixels: int) -> float:
        """Expected seconds (a first guess when never measured: the first call measures it)."""
        return self._seconds_per_pixel.get(kind, FIRST_GUESS_S_PER_PIXEL) * pixels

    def record(self, kind: str, pixels: int, seconds: float) -> None:
        self._seconds_per_pixel[kind] = seconds / max(pixels, 1)


class NoisePreview(QObject):
    """Computes noisy images for the session, never blocking the GUI for long.

    A QObject so that the worker's ``noise_done`` is queued to the GUI thread: a slot
    of a plain Python object would run in the worker's thread and race the GUI.

    Signals:
        failed (message): the noisy image awaited from the worker could not be made.

    Args:
        board: Generations (a newer request makes a queued one stale).
        backend: The worker thread, for slow noise.
        deliver: Called with each current noisy image (and, from the worker, its uint8
            pixels for display when it is large), on the GUI thread.
    """

    failed = Signal(str)

    def __init__(
        self,
        board: GenerationBoard,
        backend: WorkerThread,
        deliver: Callable[..., None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.board, self.backend, self.deliver = board, backend, deliver
        self.cost = NoiseCost()
        self._pending: tuple[int, str, int] | None = None
        backend.worker.noise_done.connect(self._on_done)
        backend.worker.failed.connect(self._on_failed)

    def request(self, clean: np.ndarray, noise: NoiseSettings) -> bool:
        """Make the noisy image; returns True when it was delivered at once, False when queued."""
        gen = self.board.issue(NOISE)
        pixels = clean.shape[0] * clean.shape[1]
        if self.cost.predict(noise.kind, pixels) > GUI_NOISE_BUDGET_S:
            self._pending = (gen, noise.kind, pixels)
            self.backend.submit(NoiseJob(gen, clean, noise.kind, noise.level, noise.seed))
            return False
        self._pending = None
        start = time.perf_counter()
        noisy = apply_noise(clean, NoiseSpec(noise.kind, noise.level), noise.seed)
        self.cost.record(noise.kind, pixels, time.perf_counter() - start)
        self.deliver(noisy)
        return True

    @property
    def pending(self) -> bool:
        """Whether a noisy image is being computed in the worker."""
        return self._pending is not None

    def cancel(self) -> None:
        """Forget a queued request."""
        self.board.cancel(NOISE)
        self._pending = None

    def _on_failed(self, failed: JobFailed) -> None:
        if failed.channel != NOISE or self._pending is None or self._pending[0] != failed.gen:
            return
        if self.board.is_current(NOISE, failed.gen):
            self._pending = None
            self.failed.emit(failed.message)

    def _on_done(self, done: NoiseDone) -> None:
        if self._pending is None or not self.board.is_current(NOISE, done.gen):
            return
        _, kind, pixels = self._pending
        self._pending = None
        self.cost.record(kind, pixels, done.seconds)
        self.deliver(done.image, done.display)
