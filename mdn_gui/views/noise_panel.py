"""The noise panel: type, level (within the type's valid range), paper levels and seed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from mdn_gui.controllers.session import SessionController
from mdn_gui.state import MAX_SEED, NoiseSettings
from mdn_gui.views.binding import subscribe
from model_core.noise import NOISE_TYPES

SLIDER_STEPS = 1000
# The paper's levels sit in one row of compact buttons: in two rows (four of Poisson's levels
# wrapped) the model panel below jumped down when the noise type changed.
PRESET_STYLE = "QToolButton { padding: 1px 3px; }"


def level_step(kind: str) -> tuple[int, float]:
    """(decimals, single step) of a noise type's level spin box."""
    info = NOISE_TYPES[kind]
    if info.integer:
        return 0, 1.0
    span = info.valid_range[1] - info.valid_range[0]
    if span <= 0.5:
        return 3, 0.001
    if span <= 10:
        return 2, 0.1
    return 1, 1.0


class NoisePanel(QWidget):
    """Edits the document's noise settings through the session controller."""

    def __init__(self, session: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.doc = session, session.doc
        self.kind = QComboBox(self)
        for name, info in NOISE_TYPES.items():
            self.kind.addItem(name, name)
            self.kind.setItemData(self.kind.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        self.level = QDoubleSpinBox(self)
        self.level.setKeyboardTracking(False)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, SLIDER_STEPS)
        self.meaning = QLabel(self)
        self.meaning.setWordWrap(True)
        self.meaning.setEnabled(False)
        # Room for three lines: a longer meaning (jpeg's) pushed the model panel down a line.
        self.meaning.setMinimumHeight(3 * self.meaning.fontMetrics().lineSpacing())
        # The paper's levels sit in a box of their own, so that disabling the box also
        # disables buttons made later for another noise type.
        self.preset_box = QWidget(self)
        self.presets = QGridLayout(self.preset_box)
        self.presets.setContentsMargins(0, 0, 0, 0)
        self.presets.setSpacing(2)
        self._preset_kind = ""
        self._preset_buttons: list[tuple[QToolButton, float]] = []
        probe = QToolButton(self.preset_box)  # a noise without paper levels keeps the row's height
        probe.setStyleSheet(PRESET_STYLE)
        probe.setText("0")
        self.preset_box.setMinimumHeight(probe.sizeHint().height())
        probe.deleteLater()
        self.seed = QSpinBox(self)
        self.seed.setRange(0, MAX_SEED)
        self.seed.setKeyboardTracking(False)
        self.note = QLabel("Real noisy photo: there is no clean image to add noise to.", self)
        self.note.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Type", self.kind)
        level_row = QHBoxLayout()
        level_row.addWidget(self.slider, 1)
        level_row.addWidget(self.level)
        form.addRow("Level", level_row)
        form.addRow("", self.meaning)
        form.addRow("Paper", self.preset_box)
        form.addRow("Seed", self.seed)
        form.addRow(self.note)
        self.kind.activated.connect(lambda _: self.session.set_noise(kind=self.kind.currentData()))
        self.level.valueChanged.connect(lambda v: self.session.set_noise(level=v))
        self.slider.valueChanged.connect(self._slider_moved)
        self.seed.valueChanged.connect(lambda v: self.session.set_noise(seed=v))
        subscribe(
            self, [(self.doc.noise_changed, self._sync), (self.doc.source_changed, self._source_changed)]
        )
        self._sync(self.doc.noise)
        self._source_changed()

    def _slider_moved(self, position: int) -> None:
        lo, hi = NOISE_TYPES[self.doc.noise.kind].valid_range
        value = lo + (hi - lo) * position / SLIDER_STEPS
        decimals, _ = level_step(self.doc.noise.kind)
        self.session.set_noise(level=round(value, decimals))

    def _source_changed(self) -> None:
        has_clean = self.doc.has_clean
        for widget in (self.kind, self.level, self.slider, self.preset_box, self.seed):
            widget.setEnabled(has_clean)
        self.note.setVisible(not has_clean)

    def _sync(self, noise: NoiseSettings) -> None:
        info = NOISE_TYPES[noise.kind]
        lo, hi = info.valid_range
        decimals, step = level_step(noise.kind)
        widgets = (self.kind, self.level, self.slider, self.seed)
        for widget in widgets:
            widget.blockSignals(True)
        self.kind.setCurrentIndex(self.kind.findData(noise.kind))
        self.kind.setToolTip(info.description)
        self.level.setDecimals(decimals)
        self.level.setSingleStep(step)
        self.level.setRange(lo, hi)
        self.level.setValue(noise.level)
        self.level.setToolTip(info.level_meaning)
        self.slider.setValue(round((noise.level - lo) / (hi - lo) * SLIDER_STEPS) if hi > lo else 0)
        self.seed.setValue(noise.seed)
        for widget in widgets:
            widget.blockSignals(False)
        self.meaning.setText(f"{info.level_meaning}; range {lo:g} to {hi:g}")
        self._fill_presets(noise)

    def _fill_presets(self, noise: NoiseSettings) -> None:
        if self._preset_kind == noise.kind:
            for button, level in self._preset_buttons:
                button.setChecked(level == noise.level)
            return
        self._preset_kind, self._preset_buttons = noise.kind, []
        while self.presets.count():
            item = self.presets.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        levels = NOISE_TYPES[noise.kind].paper_levels
        columns = len(levels)
        for index, level in enumerate(levels):
            button = QToolButton(self.preset_box)
            button.setStyleSheet(PRESET_STYLE)
            button.setText(f"{level:g}")
            button.setCheckable(True)
            button.setChecked(level == noise.level)
            button.setToolTip(f"The paper's level {level:g}")
            button.clicked.connect(lambda _=False, v=level: self.session.set_noise(level=v))
            self.presets.addWidget(button, 0, index)
            self._preset_buttons.append((button, level))
        for column in range(self.presets.columnCount()):  # stale stretch of a wider grid
            self.presets.setColumnStretch(column, 0)
        self.presets.setColumnStretch(columns, 1)
