"""A status-bar indicator of long work done off the GUI thread (decoding, heatmaps)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


def label_and_bar(widget: QWidget, maximum: int, width: int) -> tuple[QLabel, QProgressBar]:
    """Lay out a status-bar indicator in ``widget``: a line of text, then a small progress bar
    without text running from 0 to ``maximum`` (0: busy, no known end)."""
    label = QLabel(widget)
    bar = QProgressBar(widget)
    bar.setRange(0, maximum)
    bar.setMaximumWidth(width)
    bar.setTextVisible(False)
    layout = QHBoxLayout(widget)
    layout.setContentsMargins(8, 0, 8, 0)
    layout.addWidget(label)
    layout.addWidget(bar)
    return label, bar


class BusyIndicator(QWidget):
    """An endless progress bar and a line saying what is being done; hidden when idle.

    Several tasks can be busy at once: each reports under its own name.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks: dict[str, str] = {}
        # no known end (range 0..0): Qt animates the bar as busy
        self._label, self._bar = label_and_bar(self, maximum=0, width=90)
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
