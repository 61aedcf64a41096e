"""The shell of the Paper figure and Features panels: run and cancel, settings, status, plots, legend."""

from __future__ import annotations

import pyqtgraph as pg
import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from mdn_gui.controllers.figures import FiguresController
from mdn_gui.views.binding import clear_scenes


class FigurePanel(QWidget):
    """Follows one kind of the figures controller (``paper-figure`` or ``features``).

    Subclasses build their plots in :attr:`view` and their settings widgets, then call
    :meth:`lay_out`; they implement :meth:`start` and :meth:`redraw`.

    Args:
        figures: The figures controller.
        kind: Which of its runs this panel shows.
        run: (icon, text, tool tip) of the run button.
        status: The status line's words before the first run.
    """

    def __init__(
        self, figures: FiguresController, kind: str, run: tuple[str, str, str], status: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.figures, self.kind = figures, kind
        self._dark = False
        self.view = pg.GraphicsLayoutWidget(self)
        icon, text, tip = run
        self.run_button = QPushButton(qta.icon(icon), text, self)
        self.run_button.setToolTip(tip)
        self.cancel_button = QPushButton(qta.icon("fa6s.stop"), "", self)
        self.cancel_button.setToolTip(f"Cancel the {text}")
        self.status = QLabel(status, self)
        self.status.setWordWrap(True)
        self.legend = QLabel(self)
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.run_button.clicked.connect(lambda _=False: self.start())
        self.cancel_button.clicked.connect(lambda _=False: figures.cancel(kind))
        figures.running.connect(self._running)
        figures.progress.connect(self._progress)
        figures.message.connect(self._message)

    def lay_out(self, settings: tuple[QWidget, ...]) -> None:
        """Buttons, then ``settings``, each on a row of its own (on one row they made the dock,
        and so the window, too wide), the status, the plots and the legend; then draw."""
        layout = QVBoxLayout(self)
        for widgets in ((self.run_button, self.cancel_button), settings):
            row = QHBoxLayout()
            for widget in widgets:
                row.addWidget(widget)
            row.addStretch(1)
            layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.legend)
        self._running(self.kind, False)
        self.redraw()

    def start(self) -> None:
        """Run with the settings the controls show."""
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw what the figures controller holds."""
        raise NotImplementedError

    def _running(self, kind: str, running: bool) -> None:
        if kind == self.kind:
            self.cancel_button.setEnabled(running)
            self.run_button.setEnabled(not running)

    def _progress(self, kind: str, done: int, total: int, message: str) -> None:
        if kind == self.kind:
            self.status.setText(f"{message}  ({done}/{total})")

    def _message(self, kind: str, text: str) -> None:
        if kind == self.kind:
            self.status.setText(text)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        clear_scenes(self)
        super().closeEvent(event)
