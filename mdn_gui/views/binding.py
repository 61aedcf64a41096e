"""Subscribing widgets to document events for exactly as long as the widgets live."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject

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
