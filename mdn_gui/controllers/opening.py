"""Opening image files: small ones at once on the GUI thread, large ones in the worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from mdn_gui import memory
from mdn_gui.jobs import GUI_MAX_PIXELS, OPEN, GenerationBoard, JobFailed, OpenDone, OpenJob
from mdn_gui.workers import WorkerThread

# deliver(path, noisy, image, display): a current image, on the GUI thread (display None
# when the image is small enough to convert for display on the GUI thread).
Deliver = Callable[[Path, bool, np.ndarray, np.ndarray | None], None]


class ImageOpener(QObject):
    """Reads image files for the session, never blocking the GUI for long.

    Decoding, float conversion and the first conversion for display of an image above
    ``max_gui_pixels`` run in the worker; a newer request, :meth:`cancel` or a newer
    source makes a pending one stale, and its result is dropped.

    Signals:
        pending_changed (text): what is being opened ("Opening photo.png..."), "" when nothing.
        failed (path, message): a file decoded in the worker could not be read; the message
            is the one the synchronous path raises.

    Args:
        board: Generations.
        backend: The worker thread.
        deliver: Called with each image that landed.
        max_gui_pixels: Largest image decoded on the GUI thread (default :data:`GUI_MAX_PIXELS`).
        channel: Generation channel of its requests (one opener per kind of image).
    """

    pending_changed = Signal(str)
    failed = Signal(str, str)

    def __init__(
        self,
        board: GenerationBoard,
        backend: WorkerThread,
        deliver: Deliver,
        max_gui_pixels: int | None = None,
        channel: str = OPEN,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.board, self.backend, self.deliver, self.channel = board, backend, deliver, channel
        self.max_gui_pixels = GUI_MAX_PIXELS if max_gui_pixels is None else max_gui_pixels
        self._pending: tuple[int, Path] | None = None
        backend.worker.opened.connect(self._on_opened)
        backend.worker.failed.connect(self._on_failed)

    @property
    def pending(self) -> bool:
        """Whether an image is being decoded in the worker."""
        return self._pending is not None

    def request(self, path: str | Path, noisy: bool = False) -> bool:
        """Open ``path``; True when it was delivered at once, False when it is decoded in the worker.

        Raises:
            ImageReadError: If a small file cannot be read, or a large one needs more memory
                than is available (both known without decoding).
        """
        path = Path(path)
        self.cancel()
        size = memory.header_size(path)
        if size is None or size[0] * size[1] <= self.max_gui_pixels:
            loaded = memory.read_image_that_fits(path)  # an unreadable header fails fast here
            self.deliver(path, noisy, loaded.rgb, None)
            return True
        memory.check_fits(path, size)
        gen = self.board.issue(self.channel)
        self._pending = (gen, path)
        self.pending_changed.emit(f"Opening {path.name}...")
        self.backend.submit(OpenJob(gen, path, noisy, self.channel))
        return False

    def cancel(self) -> None:
        """Forget an image being decoded (a newer source, or the Cancel button)."""
        if self._pending is None:
            return
        self.board.cancel(self.channel)
        self._pending = None
        self.pending_changed.emit("")

    def _take(self, gen: int) -> Path | None:
        """The path of the pending request ``gen`` (no longer pending), or None when stale."""
        if self._pending is None or self._pending[0] != gen or not self.board.is_current(self.channel, gen):
            return None
        path = self._pending[1]
        self._pending = None
        self.pending_changed.emit("")
        return path

    def _on_opened(self, done: OpenDone) -> None:
        if self._take(done.gen) is not None:
            self.deliver(done.path, done.noisy, done.image, done.display)

    def _on_failed(self, failed: JobFailed) -> None:
        if failed.channel != self.channel:
            return
        path = self._take(failed.gen)
        if path is not None:
            self.failed.emit(str(path), failed.message)
