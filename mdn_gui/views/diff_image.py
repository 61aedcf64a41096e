"""The heatmap of difference mode, computed where it is cheap and kept in step with runs.

Small images get their heatmap at once on the GUI thread. Large ones get it from the
worker (:class:`~mdn_gui.controllers.difference.DiffRenderer`); meanwhile the last heatmap
of the same layers stays on screen. A tile pasted by a running model repaints only its
part of the heatmap, on the scale of the last full heatmap (the run's result brings a new one).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPainter

from mdn_gui.compose import difference, heatmap, nice_scale
from mdn_gui.controllers.difference import DiffRenderer
from mdn_gui.jobs import GUI_MAX_PIXELS, DiffDone
from mdn_gui.state import Document, Layer
from mdn_gui.views.convert import lookup_table, to_qimage

Box = tuple[int, int, int, int]


class Heat(NamedTuple):
    """A heatmap to show: ``vmax`` is the difference of its top colour; ``current`` is False
    while a newer one is being computed."""

    image: QImage
    vmax: float
    current: bool


class DiffImage(QObject):
    """The heatmap of |B - reference| for the comparison view.

    Signals:
        changed (): a heatmap from the worker landed (the view shows it).
        pending_changed (text): what is being computed, "" when nothing.

    Args:
        doc: The document (read only).
        renderer: Computes large heatmaps in the worker; without one every heatmap is made here.
    """

    changed = Signal()
    pending_changed = Signal(str)

    def __init__(self, doc: Document, renderer: DiffRenderer | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc, self.renderer = doc, renderer
        self.max_gui_pixels = GUI_MAX_PIXELS
        # The layers the heatmap shows, (B key, B, reference key, reference): weak, so that a
        # replaced layer (a new object) never matches and its pixels are not kept alive.
        self._pair: tuple[str, weakref.ref[Layer], str, weakref.ref[Layer]] | None = None
        self._image: QImage | None = None
        self._vmax = 0.0
        self._versions: tuple[int, int] | None = None  # what the image shows
        self._requested: tuple[int, int] | None = None  # what the worker computes
        self._dirty: list[Box] = []  # tiles pasted while the worker computes
        self._failed: tuple[int, int] | None = None  # not asked for again until cancel()
        if renderer is not None:
            renderer.done.connect(self._on_done)
            renderer.failed.connect(self._on_failed)

    @property
    def pending(self) -> bool:
        return self._requested is not None

    @property
    def failed(self) -> bool:
        """Whether the worker could not compute the heatmap asked for last (the renderer says why)."""
        return self._failed is not None

    def cached(self, b: str, ref: str) -> Heat | None:
        """The current heatmap of layer ``b`` against ``ref`` if it is at hand; never computes."""
        after, reference = self.doc.layers[b], self.doc.layers[ref]
        if self._same_pair(b, ref) and self._versions == (after.version, reference.version) \
                and self._image is not None:
            return Heat(self._image, self._vmax, True)
        return None

    def get(self, b: str, ref: str) -> Heat | None:
        """The heatmap of layer ``b`` against ``ref``; None while the first one is computed."""
        cached = self.cached(b, ref)
        if cached is not None:
            return cached
        after, reference = self.doc.layers[b], self.doc.layers[ref]
        versions = (after.version, reference.version)
        same = self._same_pair(b, ref)
        pixels = after.image.shape[0] * after.image.shape[1]
        if self.renderer is None or pixels <= self.max_gui_pixels:
            self.cancel()
            diff = difference(after.image, reference.image)
            self._vmax = nice_scale(diff)
            image = to_qimage(heatmap(diff, self._vmax, lookup_table()))
            self._pair = (b, weakref.ref(after), ref, weakref.ref(reference))
            self._image, self._versions = image, versions
            return Heat(image, self._vmax, True)
        if not (same and versions in (self._requested, self._failed)):
            stale = self._image if self._pair and self._pair[0::2] == (b, ref) else None
            self.cancel()
            self._pair = (b, weakref.ref(after), ref, weakref.ref(reference))
            h, w = after.image.shape[:2]
            self._image = stale if stale is not None and (stale.height(), stale.width()) == (h, w) else None
            self._versions = self._failed = None
            self.renderer.request(after.image, reference.image, lookup_table())
            self._set_requested(versions)
        return None if self._image is None else Heat(self._image, self._vmax, False)

    def tile_pasted(self, key: str, box: Box) -> None:
        """Follow a tile pasted into B or the reference: repaint that part only."""
        if self._pair is None or key not in self._pair[0::2] or not self._same_pair(*self._pair[0::2]):
            return
        b, ref = self._pair[0], self._pair[2]
        versions = (self.doc.layers[b].version, self.doc.layers[ref].version)
        if self._requested is not None:
            self._dirty.append(box)  # painted when the worker's heatmap lands
            self._requested = versions
        elif self._image is not None:
            self._paint(box)
            self._versions = versions

    def cancel(self) -> None:
        """Drop a heatmap being computed (a view mode without one, a new source)."""
        if self.renderer is not None:
            self.renderer.cancel()
        self._dirty.clear()
        self._failed = None  # asked for again next time
        self._set_requested(None)

    def reset(self) -> None:
        """Forget everything (a new source image)."""
        self.cancel()
        self._pair, self._image, self._versions = None, None, None

    # ------------------------------------------------------------------ internals

    def _same_pair(self, b: str, ref: str) -> bool:
        if self._pair is None:
            return False
        layers = self.doc.layers
        key_b, layer_b, key_ref, layer_ref = self._pair
        return (key_b, key_ref) == (b, ref) and layer_b() is layers.get(b) and layer_ref() is layers.get(ref)

    def _paint(self, box: Box) -> None:
        assert self._pair is not None and self._image is not None
        y0, x0, y1, x1 = box
        after, reference = self.doc.layers[self._pair[0]], self.doc.layers[self._pair[2]]
        diff = difference(after.image[y0:y1, x0:x1], reference.image[y0:y1, x0:x1])
        painter = QPainter(self._image)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(x0, y0, to_qimage(heatmap(diff, self._vmax, lookup_table())))
        painter.end()

    def _set_requested(self, versions: tuple[int, int] | None) -> None:
        was = self._requested is not None
        self._requested = versions
        if was != (versions is not None):
            self.pending_changed.emit("Computing the difference heatmap..." if versions else "")

    def _on_done(self, done: DiffDone) -> None:
        if self._requested is None or self._pair is None or not self._same_pair(*self._pair[0::2]):
            return
        self._image, self._vmax, self._versions = to_qimage(done.heat), done.vmax, self._requested
        dirty, self._dirty = self._dirty, []
        for box in dirty:
            self._paint(box)
        self._set_requested(None)
        self.changed.emit()

    def _on_failed(self, _message: str) -> None:
        self._failed, self._dirty, self._image = self._requested, [], None
        self._set_requested(None)
        self.changed.emit()
