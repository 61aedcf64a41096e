"""A status-bar indicator of long work done off the GUI thread (decoding, heatmaps)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class BusyIndicator(QWidget):
    """An endless progress bar and a line saying what is being done; hidden when idle.

    Several tasks can be busy at once: each reports under its own name.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks: dict[str, str] = {}
        self._label = QLabel(self)
        self._bar = QProgressBar(self)
        self._bar.setRange(0, 0)  # no known end: Qt animates it as busy
        self._bar.setMaximumWidth(90)
        self._bar.setTextVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.addWidget(self._label)
        layout.addWidget(self._bar)
        self.setVisible(False)

    def set_task(self, name: str, text: str) -> None:
        """Show ``text`` for the task ``name``, or drop the task when ``text`` is empty."""
        if text:
            self._tasks[name] = text
        else:
            self._tasks.pop(name, None)
        self._label.setText("   ".join(self._tasks.values()))
        self.setVisible(bool(self._tasks))

    def text(self) -> str:
        return self._label.text()
