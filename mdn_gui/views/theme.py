"""Light and dark themes that follow the system colour scheme (Qt 6 style hints)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


def dark_palette() -> QPalette:
    """A neutral dark palette for the Fusion style."""
    p = QPalette()
    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(225, 225, 225)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: window,
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: window,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 80, 80),
        QPalette.ColorRole.Highlight: QColor(64, 128, 214),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 255),
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def system_is_dark() -> bool:
    """Whether the platform asks for a dark colour scheme."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


class ThemeManager(QObject):
    """Applies a theme and re-applies it when the system scheme changes.

    Signals:
        changed (dark): the effective theme changed; plots recolour themselves.
    """

    changed = Signal(bool)

    def __init__(self, app: QApplication, choice: str = "system") -> None:
        super().__init__(app)
        self._app = app
        self._choice = "system"
        self._dark = False
        app.setStyle("Fusion")
        app.styleHints().colorSchemeChanged.connect(self._system_changed)
        self.set_choice(choice)

    @property
    def choice(self) -> str:
        return self._choice

    @property
    def dark(self) -> bool:
        return self._dark

    def set_choice(self, choice: str) -> None:
        """``system``, ``light`` or ``dark``."""
        if choice not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}")
        self._choice = choice
        self._apply(system_is_dark() if choice == "system" else choice == "dark")

    def _system_changed(self, scheme: Qt.ColorScheme) -> None:
        if self._choice == "system":
            self._apply(scheme == Qt.ColorScheme.Dark)

    def _apply(self, dark: bool) -> None:
        self._app.setPalette(dark_palette() if dark else self._app.style().standardPalette())
        pg.setConfigOptions(background=plot_background(dark), foreground=plot_foreground(dark))
        if dark != self._dark:
            self._dark = dark
        self.changed.emit(dark)


def plot_background(dark: bool) -> str:
    return "#1e1e20" if dark else "#ffffff"


def plot_foreground(dark: bool) -> str:
    return "#d0d0d0" if dark else "#303030"


def series_colours(dark: bool) -> dict[str, str]:
    """Stable colours of the curves and bars, readable on either background."""
    return {
        "masked model": "#ff7f0e" if dark else "#d95f02",
        "baseline model": "#4aa3ff" if dark else "#1f61b4",
        "non-local means": "#7fd17f" if dark else "#2e8b57",
        "noisy input": "#aaaaaa" if dark else "#777777",
    }
