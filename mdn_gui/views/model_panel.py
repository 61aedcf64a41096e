"""The model panel: which denoiser, its inference settings, and the run controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import qtawesome as qta
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from mdn_gui import catalog as cat
from mdn_gui.controllers.session import MAX_RATIO, SessionController
from mdn_gui.state import MAX_PASSES, MAX_SEED, MODEL_LAYERS, NETWORK_MODELS, ModelSettings
from mdn_gui.views.binding import subscribe
from mdn_gui.views.widgets import PercentSlider
from model_core.weights import training_summary

CHOICES = ("masked", "baseline", "custom", "nlm", "bm3d")


def devices() -> list[str]:
    """Torch devices this machine offers."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


class ModelPanel(QWidget):
    """Edits the model settings and starts, follows and cancels runs.

    Args:
        session: The session controller.
        open_weights: Called when the user asks to open a weights file (shows a dialog).
        cancel: Called by the Cancel button (default: the session's cancel).
    """

    def __init__(
        self,
        session: SessionController,
        open_weights: Callable[[], Any],
        parent: QWidget | None = None,
        *,
        cancel: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.doc = session, session.doc
        self._cancel = cancel or session.cancel
        self.model = QComboBox(self)
        self.open_button = QPushButton(qta.icon("fa6s.folder-open"), "Open weights...", self)
        self.open_button.clicked.connect(lambda _=False: open_weights())
        self.weights = QLabel(self)
        self.weights.setWordWrap(True)
        self.weights.setEnabled(False)
        self.device = QComboBox(self)
        self.device.addItems(devices())
        self.precision = QComboBox(self)
        self.precision.addItems(["auto", "fp32", "bf16"])
        self.precision.setToolTip(
            "Arithmetic: auto uses bf16 where the hardware runs it natively (CUDA, CPUs with "
            "AVX512-BF16 or AMX), else fp32. bf16 on other CPUs is emulated and several times slower."
        )
        self.attn = PercentSlider(round(MAX_RATIO * 100), self)
        self.input = PercentSlider(round(MAX_RATIO * 100), self)
        self.input.setToolTip(
            "Drop input pixels before the network, as masked training does "
            "(a demonstration; the paper tests without it)"
        )
        self.passes = self._spin(1, MAX_PASSES, "Stochastic passes averaged (different masks each)")
        self.seed = self._spin(0, MAX_SEED, "Seed of the masks")
        self.tile = self._spin(
            0, 4096,
            "Tile side in pixels. auto: the whole image at once, cut into tiles only where the "
            "memory budget needs it (fastest: overlapping tiles are computed twice where they meet)",
            step=32,
        )
        self.tile.setSpecialValueText("auto")  # shown for 0
        self.tiling = QLabel(self)  # what the last run of this model used
        self.tiling.setEnabled(False)
        # Wrapped: unwrapped, its text widened the Controls dock (285 -> 328 px) at the first
        # run, and the image's fit-to-window zoom jumped with it.
        self.tiling.setWordWrap(True)
        self.auto = QCheckBox("Auto-run on changes", self)
        self.auto.setToolTip("Re-run the model 300 ms after any setting changes (the old run is cancelled)")
        self.run_button = QPushButton(qta.icon("fa6s.play"), "Run", self)
        self.run_button.setToolTip("Denoise with the selected model (Ctrl+R)")
        self.all_button = QPushButton(qta.icon("fa6s.forward"), "Run all", self)
        self.all_button.setToolTip("Run every available denoiser, each at the ratio it was trained with")
        self.cancel_button = QPushButton(qta.icon("fa6s.stop"), "Cancel", self)
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self._layout()
        self._connect()
        subscribe(self, [(self.doc.model_changed, self._sync),
                         (self.doc.record_changed, lambda _key: self._show_tiling())])
        self.refresh_choices()
        self._sync(self.doc.model)
        self._running(False)

    def _spin(self, lo: int, hi: int, tip: str, step: int = 1) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        return spin

    def _layout(self) -> None:
        form = QFormLayout(self)
        form.addRow("Model", self.model)
        form.addRow("", self.open_button)
        form.addRow("", self.weights)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("Attention mask", self.attn)
        form.addRow("Input mask", self.input)
        form.addRow("Passes", self.passes)
        form.addRow("Mask seed", self.seed)
        form.addRow("Tile", self.tile)
        form.addRow("", self.tiling)
        form.addRow(self.auto)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.all_button, self.cancel_button):
            buttons.addWidget(button)
        form.addRow(buttons)
        form.addRow(self.progress)

    def _connect(self) -> None:
        s = self.session
        self.model.activated.connect(lambda _: s.set_model(model=self.model.currentData()))
        self.device.activated.connect(lambda _: s.set_model(device=self.device.currentText()))
        self.precision.activated.connect(lambda _: s.set_model(precision=self.precision.currentText()))
        self.attn.value_changed.connect(lambda v: s.set_model(attn_ratio=v))
        self.input.value_changed.connect(lambda v: s.set_model(input_ratio=v))
        self.passes.valueChanged.connect(lambda v: s.set_model(passes=v))
        self.seed.valueChanged.connect(lambda v: s.set_model(seed=v))
        self.tile.valueChanged.connect(lambda v: s.set_model(tile=v))
        self.auto.toggled.connect(lambda on: setattr(s, "auto_run", on))
        self.run_button.clicked.connect(lambda _=False: s.run_now())
        self.all_button.clicked.connect(lambda _=False: s.run_all())
        self.cancel_button.clicked.connect(lambda _=False: self._cancel())
        s.running_changed.connect(self._running)
        s.run_progress.connect(self._progress)

    def refresh_choices(self) -> None:
        """Re-read which models are available (after weights were opened)."""
        catalog = self.session.catalog
        self.model.blockSignals(True)
        self.model.clear()
        for choice in CHOICES:
            label = (
                cat.LABELS[choice]
                if choice != "custom" or catalog.custom is None
                else f"weights: {catalog.custom.name}"
            )
            self.model.addItem(label, choice)
            index = self.model.count() - 1
            item = self.model.model().item(index)
            item.setEnabled(catalog.available(choice))
            item.setToolTip(catalog.why_unavailable(choice) or label)
        self.model.setCurrentIndex(self.model.findData(self.doc.model.model))
        self.model.blockSignals(False)

    def _sync(self, model: ModelSettings) -> None:
        self.refresh_choices()
        widgets = (self.device, self.precision, self.passes, self.seed, self.tile, self.auto)
        for widget in widgets:
            widget.blockSignals(True)
        self.device.setCurrentText(model.device)
        self.precision.setCurrentText(model.precision)
        self.attn.set_fraction(model.attn_ratio)
        self.input.set_fraction(model.input_ratio)
        self.passes.setValue(model.passes)
        self.seed.setValue(model.seed)
        self.tile.setValue(model.tile)
        self.auto.setChecked(self.session.auto_run)
        for widget in widgets:
            widget.blockSignals(False)
        network = model.model in NETWORK_MODELS
        for widget in (self.attn, self.input, self.passes, self.seed, self.tile, self.device, self.precision):
            widget.setEnabled(network)
        path = self.session.catalog.path(model.model)
        if network:
            trained = cat.training_ratio(model.model, path)
            self.attn.set_marker(
                trained,
                f"Drop ratio of the attention mask; the marker shows the "
                f"{trained:.0%} this model was trained with",
            )
        else:
            self.attn.set_marker(None)
        # The file name only: a full path cannot wrap and would widen the dock.
        summary = training_summary(cat.read_card(path)) if network and path is not None else None
        if path is None:
            self.weights.setText(self.session.catalog.why_unavailable(model.model))
        else:
            self.weights.setText(path.name + (f": {summary}" if summary else ""))
        self.weights.setToolTip(str(path) if path is not None else "")
        self._show_tiling()

    def _show_tiling(self) -> None:
        """Say how the selected model's last run cut the image (auto picks it from the budget)."""
        record = self.doc.records.get(MODEL_LAYERS[self.doc.model.model])
        text = record.tiling_text() if record is not None else ""
        self.tiling.setText(f"last run: {text}" if text else "")
        self.tiling.setVisible(bool(text))

    def sync_auto(self) -> None:
        """Show the controller's auto-run flag (set from outside, e.g. scripted starts)."""
        self.auto.blockSignals(True)
        self.auto.setChecked(self.session.auto_run)
        self.auto.blockSignals(False)

    def _running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        if not running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("idle")

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))
        self.progress.setFormat(f"{message}  (%p%)" if total else message)
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
