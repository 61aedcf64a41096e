"""The image canvas of the comparison view: two QImages, one transform, four modes.

Modes:
    split: one image; A left of a draggable divider, B right of it.
    side: A and B in two viewports sharing zoom and pan.
    toggle: A or B; one key flips between them (both stay converted, so no flicker).
    diff: B alone (the caller passes the heatmap as B) with a colour bar.

Zoom is kept as a scale and an offset of the image origin inside each viewport, so the
side-by-side viewports are linked by construction.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

MIN_ZOOM, MAX_ZOOM = 1 / 32, 64.0
SIDE_GAP = 4
GRAB_DISTANCE = 8


class ImageCanvas(QWidget):
    """Paints A and B with a shared zoom and pan.

    Signals:
        hovered (x, y): image pixel under the cursor, (-1, -1) when outside.
        clicked (x, y): image pixel clicked without dragging.
        split_moved (fraction): the divider moved (0 left edge, 1 right edge).
        toggled (showing_b): toggle mode flipped.
        zoom_changed (zoom): the scale changed.
    """

    hovered = Signal(int, int)
    clicked = Signal(int, int)
    split_moved = Signal(float)
    toggled = Signal(bool)
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("comparison canvas")
        self.setMinimumSize(240, 180)
        self._a: QImage | None = None
        self._b: QImage | None = None
        self._labels = ("A", "B")
        self._mode = "split"
        self._split = 0.5
        self._show_b = True
        self._zoom = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._auto_fit = True
        self._drag: str | None = None
        self._press = QPointF()
        self._moved = False
        self._colorbar: tuple[QImage, str, str, str] | None = None
        self._hint = ""
        self._covered = 0

    # ------------------------------------------------------------------ public state

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def split(self) -> float:
        return self._split

    @property
    def showing_b(self) -> bool:
        return self._show_b

    def set_images(self, a: QImage | None, b: QImage | None, labels: tuple[str, str] = ("A", "B")) -> None:
        """Show new images; the view is refitted only if the image size changed."""
        old = self.image_size()
        self._a, self._b, self._labels = a, b, labels
        if self.image_size() != old or self._auto_fit:
            self.fit()
        self.update()

    def set_mode(self, mode: str) -> None:
        """Switch between ``split``, ``side``, ``toggle`` and ``diff``."""
        if mode not in ("split", "side", "toggle", "diff"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode != self._mode:
            self._mode = mode
            if self._auto_fit:
                self.fit()
            self.update()

    def set_split(self, fraction: float) -> None:
        """Move the divider (0 to 1 of the viewport width)."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction != self._split:
            self._split = fraction
            self.split_moved.emit(fraction)
            self.update()

    def set_colorbar(self, strip: QImage | None, top: str = "", bottom: str = "", title: str = "") -> None:
        """Show a colour bar (``strip`` is 1 pixel wide, high values first) or hide it."""
        had = self._colorbar is not None
        self._colorbar = None if strip is None else (strip, top, bottom, title)
        if had != (strip is not None) and self._auto_fit:
            self.fit()  # the bar takes width from the image: fitted without it, the right edge was cut
        self.update()

    def set_hint(self, text: str) -> None:
        """Text shown when there is nothing to paint."""
        self._hint = text
        self.update()

    def set_covered(self, height: int) -> None:
        """Keep the corner labels below the top ``height`` pixels (a banner floats there)."""
        height = max(int(height), 0)
        if height != self._covered:
            self._covered = height
            self.update()

    def flip(self) -> None:
        """Toggle mode: show the other image."""
        self._show_b = not self._show_b
        self.toggled.emit(self._show_b)
        self.update()

    def image_size(self) -> QSize:
        image = self._a if self._a is not None else self._b
        return QSize() if image is None else image.size()

    def centre_pixel(self) -> tuple[int, int] | None:
        """Image pixel (y, x) at the centre of the view, clamped to the image; None without one."""
        size = self.image_size()
        if size.isEmpty():
            return None
        vp = self.viewports()[0]
        p = (vp.center() - vp.topLeft() - self._offset) / self._zoom
        return (min(max(int(p.y()), 0), size.height() - 1), min(max(int(p.x()), 0), size.width() - 1))

    def split_column(self) -> int:
        """Image column under the divider (for exporting the split view)."""
        vp = self.viewports()[0]
        x = vp.left() + self._split * vp.width()
        return int(round((x - vp.left() - self._offset.x()) / self._zoom))

    # ------------------------------------------------------------------ geometry

    def viewports(self) -> list[QRectF]:
        """Screen rectangles the image is drawn into (two in side mode)."""
        rect = QRectF(self.rect())
        if self._mode != "side":
            if self._colorbar is not None and self._mode == "diff":
                rect.setRight(rect.right() - 70)
            return [rect]
        half = (rect.width() - SIDE_GAP) / 2
        return [
            QRectF(rect.left(), rect.top(), half, rect.height()),
            QRectF(rect.left() + half + SIDE_GAP, rect.top(), half, rect.height()),
        ]

    def fit(self) -> None:
        """Zoom so that the whole image fits the viewport, centred."""
        size = self.image_size()
        if size.isEmpty():
            return
        vp = self.viewports()[0]
        zoom = min(vp.width() / size.width(), vp.height() / size.height())
        self._set_view(max(min(zoom, MAX_ZOOM), MIN_ZOOM), None)
        self._centre()
        self._auto_fit = True

    def actual_size(self) -> None:
        """Show image pixels 1:1, keeping the centre of the view."""
        vp = self.viewports()[0]
        self.zoom_at(1.0 / self._zoom, vp.center() - vp.topLeft())

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Multiply the zoom by ``factor`` keeping ``anchor`` (viewport coordinates) fixed."""
        zoom = min(max(self._zoom * factor, MIN_ZOOM), MAX_ZOOM)
        image_point = (anchor - self._offset) / self._zoom
        self._set_view(zoom, anchor - image_point * zoom)
        self._auto_fit = False

    def map_to_image(self, pos: QPointF) -> tuple[int, int] | None:
        """Image pixel (x, y) under a widget position, or None."""
        size = self.image_size()
        for vp in self.viewports():
            if vp.contains(pos):
                p = (pos - vp.topLeft() - self._offset) / self._zoom
                x, y = math.floor(p.x()), math.floor(p.y())
                if 0 <= x < size.width() and 0 <= y < size.height():
                    return x, y
        return None

    def _set_view(self, zoom: float, offset: QPointF | None) -> None:
        changed = zoom != self._zoom
        self._zoom = zoom
        if offset is not None:
            self._offset = offset
        if changed:
            self.zoom_changed.emit(zoom)
        self.update()

    def _centre(self) -> None:
        size, vp = self.image_size(), self.viewports()[0]
        self._offset = QPointF(
            (vp.width() - size.width() * self._zoom) / 2, (vp.height() - size.height() * self._zoom) / 2
        )

    def _divider_x(self) -> float:
        vp = self.viewports()[0]
        return vp.left() + self._split * vp.width()

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self.image_size().isEmpty():
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._hint or "No image")
            return
        vps = self.viewports()
        if self._mode == "side":
            self._draw(painter, vps[0], self._a)
            self._draw(painter, vps[1], self._b)
        elif self._mode == "split":
            self._draw_split(painter, vps[0])
        elif self._mode == "toggle":
            self._draw(painter, vps[0], self._b if self._show_b else self._a)
        else:
            self._draw(painter, vps[0], self._b)
            self._draw_colorbar(painter)
        self._draw_labels(painter)

    def _draw(self, painter: QPainter, vp: QRectF, image: QImage | None, clip: QRectF | None = None) -> None:
        if image is None:
            return
        painter.save()
        painter.setClipRect(clip if clip is not None else vp)
        painter.translate(vp.topLeft() + self._offset)
        painter.scale(self._zoom, self._zoom)
        # Pixels stay crisp squares when magnified; shrinking is smoothed.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 1.0)
        visible = QRectF(-self._offset / self._zoom, vp.size() / self._zoom)
        src = visible.toAlignedRect().intersected(image.rect())
        if not src.isEmpty():
            painter.drawImage(QRectF(src), image, QRectF(src))
        painter.restore()

    def _draw_split(self, painter: QPainter, vp: QRectF) -> None:
        x = self._divider_x()
        self._draw(painter, vp, self._a, QRectF(vp.left(), vp.top(), x - vp.left(), vp.height()))
        self._draw(painter, vp, self._b, QRectF(x, vp.top(), vp.right() - x, vp.height()))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
        painter.drawLine(QPointF(x, vp.top()), QPointF(x, vp.bottom()))
        centre = QPointF(x, vp.center().y())
        painter.setBrush(QColor(40, 40, 40, 200))
        painter.drawEllipse(centre, 11, 11)
        painter.drawText(
            QRectF(x - 11, centre.y() - 11, 22, 22), Qt.AlignmentFlag.AlignCenter, "\u25c2\u25b8"
        )
        painter.restore()

    def label_boxes(self) -> list[tuple[str, QRectF]]:
        """The corner labels of the current mode as (text, box), elided to fit their room.

        In split mode A and B share one viewport: each gets half, so they never overlap.
        They sit below the strip a banner covers (:meth:`set_covered`), never under it.
        """
        vps, (a, b) = self.viewports(), self._labels
        if self._mode == "side":
            specs = [(vps[0], a, True, vps[0].width()), (vps[1], b, True, vps[1].width())]
        elif self._mode == "split":
            specs = [(vps[0], a, True, vps[0].width() / 2), (vps[0], b, False, vps[0].width() / 2)]
        elif self._mode == "toggle":
            specs = [(vps[0], (b if self._show_b else a) + "   (T flips)", True, vps[0].width())]
        else:
            specs = [(vps[0], b, True, vps[0].width())]
        metrics = QFontMetrics(self._label_font())
        boxes = []
        for vp, text, left, room in specs:
            fitted = fit_label(metrics, text, max(int(room) - 28, 0))
            w, h = metrics.horizontalAdvance(fitted) + 12, metrics.height() + 6
            x = vp.left() + 8 if left else vp.right() - w - 8
            boxes.append((fitted, QRectF(x, max(vp.top(), self._covered) + 8, w, h)))
        return boxes

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setBold(True)
        return font

    def _draw_labels(self, painter: QPainter) -> None:
        painter.save()
        painter.setFont(self._label_font())
        painter.setPen(QColor(255, 255, 255))
        for text, box in self.label_boxes():
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _draw_colorbar(self, painter: QPainter) -> None:
        if self._colorbar is None:
            return
        strip, top, bottom, title = self._colorbar
        rect = QRectF(self.width() - 52, self.height() * 0.15, 16, self.height() * 0.7)
        painter.save()
        painter.drawImage(rect, strip)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawRect(rect)
        painter.drawText(QRectF(rect.left() - 20, rect.top() - 20, 70, 18), Qt.AlignmentFlag.AlignCenter, top)
        painter.drawText(
            QRectF(rect.left() - 20, rect.bottom() + 2, 70, 18), Qt.AlignmentFlag.AlignCenter, bottom
        )
        painter.translate(rect.right() + 16, rect.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-rect.height() / 2, -10, rect.height(), 20), Qt.AlignmentFlag.AlignCenter, title
        )
        painter.restore()

    # ------------------------------------------------------------------ input

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        steps = event.angleDelta().y() / 120
        if not steps or self.image_size().isEmpty():
            return
        pos = event.position()
        vp = next((v for v in self.viewports() if v.contains(pos)), self.viewports()[0])
        self.zoom_at(1.25**steps, pos - vp.topLeft())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._press, self._moved = event.position(), False
        near_divider = abs(event.position().x() - self._divider_x()) <= GRAB_DISTANCE
        self._drag = "split" if self._mode == "split" and near_divider else "pan"
        self.setCursor(
            Qt.CursorShape.SplitHCursor if self._drag == "split" else Qt.CursorShape.ClosedHandCursor
        )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        pos = event.position()
        if self._drag == "split":
            vp = self.viewports()[0]
            self.set_split((pos.x() - vp.left()) / max(vp.width(), 1.0))
        elif self._drag == "pan":
            delta = pos - self._press
            if self._moved or abs(delta.x()) + abs(delta.y()) > 3:
                self._moved = True
                self._press = pos
                self._offset += delta
                self._auto_fit = False
                self.update()
        elif self._mode == "split":
            near = abs(pos.x() - self._divider_x()) <= GRAB_DISTANCE
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)
        pixel = self.map_to_image(pos)
        self.hovered.emit(*(pixel if pixel is not None else (-1, -1)))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._drag == "pan" and not self._moved:
            pixel = self.map_to_image(event.position())
            if pixel is not None:
                self.clicked.emit(*pixel)
        self._drag = None
        self.unsetCursor()

    def leaveEvent(self, event: object) -> None:  # noqa: N802 (Qt override)
        self.hovered.emit(-1, -1)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        step = 0.1 if shift else 0.02
        vp = self.viewports()[0]
        centre = vp.center() - vp.topLeft()
        if self._mode == "split" and key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            self.set_split(self._split + (step if key == Qt.Key.Key_Right else -step))
        elif self._mode == "split" and key in (Qt.Key.Key_Home, Qt.Key.Key_End):
            self.set_split(0.0 if key == Qt.Key.Key_Home else 1.0)
        elif key in (Qt.Key.Key_T, Qt.Key.Key_Space) and self._mode == "toggle":
            self.flip()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_at(1.25, centre)
        elif key == Qt.Key.Key_Minus:
            self.zoom_at(0.8, centre)
        else:
            super().keyPressEvent(event)
            return
        event.accept()


def fit_label(metrics: QFontMetrics, text: str, width: int) -> str:
    """``text`` elided to ``width`` pixels, keeping its PSNR (after the last double space) whole."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    head, sep, tail = text.rpartition("  ")
    if sep:
        room = width - metrics.horizontalAdvance(sep + tail)
        fitted = metrics.elidedText(head, Qt.TextElideMode.ElideRight, max(room, 0)) + sep + tail
        if metrics.horizontalAdvance(fitted) <= width:
            return fitted
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
