"""The status bar's progress of a model run: a bar, the share done and the time left."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from mdn_gui.controllers.progress import SHOW_AFTER_SECONDS, RunClock
from mdn_gui.views.busy import label_and_bar

STEPS = 1000  # resolution of the bar
TICK_MS = 250  # how often the time left counts down


class RunProgress(QWidget):
    """Shows the run under way once it has lasted :data:`SHOW_AFTER_SECONDS`; hidden otherwise.

    It reads the session's :class:`RunClock` on a timer while a run is in flight, so the time
    left counts down between the engine's reports.

    Args:
        clock: The session's run clock.
    """

    def __init__(self, clock: RunClock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self.label, self.bar = label_and_bar(self, maximum=STEPS, width=140)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.refresh)
        self.setVisible(False)

    def set_running(self, running: bool) -> None:
        """Follow the session's ``running_changed``."""
        if running:
            self._timer.start()
        else:
            self._timer.stop()
            self.setVisible(False)

    def refresh(self) -> None:
        """Show where the run stands (hidden while it is younger than a second)."""
        status = self._clock.status()
        if status is None or status.elapsed < SHOW_AFTER_SECONDS:
            self.setVisible(False)
            return
        self.bar.setValue(round(status.fraction * STEPS))
        self.label.setText(status.text())
        self.setVisible(True)
