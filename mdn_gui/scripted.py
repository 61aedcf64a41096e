"""The scripted start of ``mdn-gui``: run, screenshot and quit, for reproducible figures.

Whatever goes wrong on the way, a scripted start ends: it reports one line on stderr
(a traceback too for errors that are bugs rather than bad input), and with ``--quit`` it
closes the window, which stops the worker thread, and hands back a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

def report(what: str, exc: BaseException) -> None:
    """Print ``mdn-gui: <what>: <reason>`` on stderr, after the traceback of an unexpected error."""
    from mdn_gui.workers import is_expected  # torch: not at start-up (--help stays fast)

    if not is_expected(exc):
        traceback.print_exception(exc, file=sys.stderr)
    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    print(f"mdn-gui: {what}: {reason}", file=sys.stderr)


def background_busy(window: MainWindow) -> bool:
    """Whether noise or a difference heatmap is still being computed for the window."""
    renderer = window.compare.diff.renderer
    return window.session.noise_preview.pending or (renderer is not None and renderer.pending)


def close_window(window: MainWindow) -> None:
    """Close the window (its close event stops the worker thread) and delete it."""
    window.close()
    window.deleteLater()


def save_screenshot(window: MainWindow, path: Path, *, overwrite: bool) -> Path:
    """Write what the window shows, atomically (a temporary file in the folder, then a rename).

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
        OSError: If the folder cannot be made or the file cannot be written.
        ValueError: If the extension is not an image format.
    """
    from mdn_gui.views.convert import from_qimage
    from model_core.imageio import to_float, write_image

    pixels = to_float(from_qimage(window.grab().toImage()))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, pixels, overwrite=overwrite)


class ScriptedStart(QObject):
    """Runs the steps of a scripted start once the event loop is going: run, screenshot, quit.

    Signals:
        finished (exit_code): the steps are done (or failed) and ``--quit`` was given.
    """

    finished = Signal(int)
    # Before the screenshot, noise and heatmaps still computed in the workers are waited for
    # (polled), at most this long.
    SETTLE_POLL_MS = 100
    SETTLE_LIMIT_MS = 600_000

    def __init__(self, window: MainWindow, args: argparse.Namespace) -> None:
        super().__init__()
        self.window, self.args = window, args
        self.exit_code = 0
        self._done = False
        self._settle_ms = 0
        # A large image named on the command line is decoded in the worker: the steps wait
        # for it (it may land, or fail, before start() is called).
        self._waiting = window.session.opener.pending
        self._image_ok = True
        self._started = False
        if self._waiting:
            window.session.image_opened.connect(self._image_landed)
            window.session.open_failed.connect(self._image_failed)

    def start(self, opened: bool = True) -> None:
        """Run the steps; ``opened`` False (a file could not be opened) fails a scripted run."""
        self._started = True
        self._image_ok = self._image_ok and opened
        if self._waiting:
            return  # resumed when the image lands or fails
        try:
            self._start(self._image_ok)
        except Exception as exc:  # noqa: BLE001 - a scripted start must end, never hang
            report("scripted start failed", exc)
            self.window.show_error(f"Scripted start failed: {exc}")
            self.exit_code = 1
            self._finish()

    def _start(self, opened: bool) -> None:
        session = self.window.session
        if not opened and self.args.quit:
            print(f"mdn-gui: {self.window.banner.label.text()}", file=sys.stderr)
            self.exit_code = 2
            self._finish()
            return
        if getattr(self.args, "lesson", None):
            self.window.tour.lessons.measured.connect(self._lesson_measured)
            self.window.tour.start(self.args.lesson - 1)
        elif self.args.run:
            session.run_finished.connect(self._run_finished)
            session.run_failed.connect(self._run_failed)
            session.run_now()  # when it cannot start, run_failed has already finished the script
        else:
            QTimer.singleShot(300, self._finish)

    def _image_landed(self, *_args: object) -> None:
        self._stop_waiting(opened=True)

    def _image_failed(self, *_args: object) -> None:
        from mdn_gui.app import DEFAULT_SAMPLE

        if self.window.doc.image_size is None:  # as when a small file fails to open
            self.window.session.open_sample(DEFAULT_SAMPLE)
        self._stop_waiting(opened=False)

    def _stop_waiting(self, *, opened: bool) -> None:
        session = self.window.session
        session.image_opened.disconnect(self._image_landed)
        session.open_failed.disconnect(self._image_failed)
        self._waiting = False
        self._image_ok = self._image_ok and opened
        if self._started:
            self.start(self._image_ok)

    def _run_finished(self, _key: str) -> None:
        QTimer.singleShot(300, self._finish)

    def _lesson_measured(self, _index: int, measurement: object) -> None:
        self.window.tour.lessons.measured.disconnect(self._lesson_measured)
        error = getattr(measurement, "error", "")
        if error:
            print(f"mdn-gui: lesson {self.args.lesson}: {error}", file=sys.stderr)
            self.exit_code = 1
        QTimer.singleShot(300, self._finish)

    def _run_failed(self, message: str) -> None:
        print(f"mdn-gui: run failed: {message}", file=sys.stderr)
        self.exit_code = 1
        QTimer.singleShot(300, self._finish)

    def _finish(self) -> None:
        if self._done:
            return
        if background_busy(self.window) and self._settle_ms < self.SETTLE_LIMIT_MS:
            self._settle_ms += self.SETTLE_POLL_MS
            QTimer.singleShot(self.SETTLE_POLL_MS, self._finish)
            return
        self._done = True
        if self.args.screenshot is not None:
            try:
                written = save_screenshot(self.window, self.args.screenshot, overwrite=self.args.overwrite)
            except Exception as exc:  # noqa: BLE001 - reported; the script still ends
                report("could not save the screenshot", exc)
                self.exit_code = self.exit_code or 1
            else:
                print(f"mdn-gui: screenshot saved to {written}")
        if self.args.quit:
            try:
                close_window(self.window)
            finally:
                self.finished.emit(self.exit_code)
