"""Small reusable widgets: a slider with a marked value, a labelled percentage slider, a
banner, and a vertical scroll area that is always as wide as its contents."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPolygonF
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)


class MarkedSlider(QSlider):
    """A horizontal slider that marks one value (e.g. the ratio a model was trained with)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._marker: int | None = None
        self.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.setMinimumHeight(30)

    @property
    def marker(self) -> int | None:
        return self._marker

    def set_marker(self, value: int | None) -> None:
        """Mark ``value`` with a triangle under the groove (None removes it)."""
        self._marker = value
        self.update()

    def marker_x(self) -> float | None:
        """Widget x coordinate of the marker, or None."""
        if self._marker is None:
            return None
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        groove = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, self
        )
        handle = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
        )
        span = groove.width() - handle.width()
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), self._marker, span)
        return groove.x() + handle.width() / 2 + offset

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        x = self.marker_x()
        if x is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(230, 110, 20))
        y = self.height() - 1
        painter.drawPolygon(QPolygonF([QPointF(x, y - 7), QPointF(x - 5, y), QPointF(x + 5, y)]))


class PercentSlider(QWidget):
    """A 0..``maximum`` percent slider with its value shown beside it.

    Signals:
        value_changed (fraction): the value in [0, 1].
    """

    value_changed = Signal(float)

    def __init__(self, maximum: int = 95, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = MarkedSlider(self)
        self.slider.setRange(0, maximum)
        self.slider.setTickInterval(5)
        self.slider.setPageStep(5)
        self.label = QLabel("0%")
        self.label.setMinimumWidth(40)
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._changed)

    def fraction(self) -> float:
        return self.slider.value() / 100.0

    def set_fraction(self, value: float) -> None:
        """Set the value without emitting ``value_changed``."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * 100))
        self.slider.blockSignals(False)
        self.label.setText(f"{self.slider.value()}%")

    def set_marker(self, value: float | None, tip: str = "") -> None:
        self.slider.set_marker(None if value is None else round(value * 100))
        self.slider.setToolTip(tip)

    def _changed(self, value: int) -> None:
        self.label.setText(f"{value}%")
        self.value_changed.emit(value / 100.0)


class Banner(QWidget):
    """A dismissible message strip floating over the top edge of its parent (never blocks).

    It is not in a layout: a strip that appeared in the layout pushed the image down, and
    every message moved what the user was looking at. What the parent draws at its top
    edge (the canvas's A/B labels) follows ``covered`` instead.

    Signals:
        covered (height): pixels of the parent's top edge under the strip, 0 once hidden.
    """

    covered = Signal(int)
    STYLES = {True: "#8a1c1c", False: "#1f4e79"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # let the style sheet paint it
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda _=False: self.hide())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.error = False
        self.hide()
        if parent is not None:
            parent.installEventFilter(self)

    def show_message(self, text: str, *, error: bool = True) -> None:
        """Show ``text`` as an error (red) or a notice (blue)."""
        self.error = error
        self.setStyleSheet(
            f"Banner {{ background: {self.STYLES[error]}; }} QLabel, QToolButton {{ color: white; }}"
        )
        self.label.setText(text)
        self.show()
        self.place()
        self.raise_()

    def place(self) -> None:
        """Span the parent's width at its top, as tall as the wrapped text needs."""
        parent = self.parentWidget()
        if parent is not None:
            width, layout = parent.width(), self.layout()
            # The label wraps: its plain size hint is that of a narrow, tall strip.
            height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
            self.setGeometry(0, 0, width, height if height > 0 else self.sizeHint().height())
        self._report()

    def setVisible(self, visible: bool) -> None:  # noqa: N802 (Qt override: show, hide, dismiss)
        super().setVisible(visible)
        self._report()

    def _report(self) -> None:
        self.covered.emit(0 if self.isHidden() else self.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize and self.isVisible():
            self.place()
        return super().eventFilter(watched, event)


class VerticalScrollArea(QScrollArea):
    """Scrolls its widget up and down only, and is never narrower than the widget needs.

    Its minimum width follows the widget's minimum width whenever the widget's layout
    changes (e.g. the noise panel gets more paper buttons), so the dock holding it makes
    room instead of cutting controls off on the right.
    """

    def __init__(self, widget: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(widget)  # installs this area's event filter on the widget

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        hint = super().minimumSizeHint()
        widget = self.widget()
        if widget is None:
            return hint
        frame = 2 * self.frameWidth()
        width = widget.minimumSizeHint().width() + frame + self.verticalScrollBar().sizeHint().width()
        return QSize(width, hint.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the widget's minimum width may have changed
        return super().eventFilter(watched, event)
