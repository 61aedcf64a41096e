"""Subscribing widgets to document events for exactly as long as the widgets live."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QWidget

from mdn_gui.state import Event


def subscribe(owner: QObject, pairs: Iterable[tuple[Event, Callable[..., Any]]]) -> None:
    """Connect each (event, handler) and disconnect them all when ``owner`` is destroyed.

    The document outlives nothing in particular, so a handler of a deleted widget must
    never be called.
    """
    pairs = list(pairs)
    for event, handler in pairs:
        event.connect(handler)

    def drop(*_: Any) -> None:
        for event, handler in pairs:
            event.disconnect(handler)

    owner.destroyed.connect(drop)


class OrphanCatcher:
    """Gives parentless helper windows created by a library (pyqtgraph's context menus) an owner.

    pyqtgraph creates its menus without a parent; when Qt deletes a plot while Python still
    references it, those menus survive as stray top-level widgets. Record the top-level
    widgets before building plots, then call :meth:`adopt` with the widget that owns them.
    """

    def __init__(self) -> None:
        self._before = set(QApplication.topLevelWidgets())

    def adopt(self, owner: QWidget) -> int:
        """Reparent new parentless windows to ``owner`` (they stay windows); returns how many."""
        adopted = 0
        for widget in set(QApplication.topLevelWidgets()) - self._before:
            if widget is not owner and widget.parentWidget() is None and not owner.isAncestorOf(widget):
                widget.setParent(owner, widget.windowFlags())
                adopted += 1
        return adopted


def clear_scenes(owner: QWidget) -> None:
    """Delete the graphics items of every QGraphicsView under ``owner`` (pyqtgraph plots).

    Deleting the items deletes the widgets their menus hold (default widgets of actions),
    which Qt would otherwise leave behind as parentless windows.
    """
    from PySide6.QtWidgets import QGraphicsView

    for view in owner.findChildren(QGraphicsView):
        scene = view.scene()
        if scene is not None:
            scene.clear()
