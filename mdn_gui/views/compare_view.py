"""The before/after comparison view: layer pickers, mode buttons, canvas and pixel readout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QImage, QPainter
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mdn_gui.catalog import LABELS
from mdn_gui.compose import compose_export, difference, heatmap, nice_scale
from mdn_gui.controllers.difference import DiffRenderer
from mdn_gui.state import BASELINE, CLEAN, CUSTOM, MASKED, Document, ViewSettings, psnr_text
from mdn_gui.views.binding import subscribe
from mdn_gui.views.canvas import ImageCanvas
from mdn_gui.views.convert import colorbar_qimage, from_qimage, lookup_table, to_qimage
from mdn_gui.views.diff_image import DiffImage

# The model layers a picker keeps when they are missing: chosen, but not run or cancelled.
NOT_RUN_NAMES = {MASKED: LABELS["masked"], BASELINE: LABELS["baseline"], CUSTOM: LABELS["custom"]}

MODES = {  # mode: (label, icon, tooltip)
    "split": ("Split", "fa6s.table-columns", "A left, B right of a divider (drag it, or Left/Right keys)"),
    "side": ("Side", "fa6s.images", "A and B next to each other, zoom and pan linked"),
    "toggle": ("Toggle", "fa6s.repeat", "One image; T or Space flips between A and B"),
    "diff": ("Diff", "fa6s.fire", "Heatmap of |B - reference|"),
}


class CompareView(QWidget):
    """Shows layers A and B of the document in one of four modes.

    Args:
        doc: The document (read only).
        set_view: Called with view-setting changes (the controller writes the document).
        renderer: Computes the heatmaps of large images in the worker (without one, here).
    """

    def __init__(
        self,
        doc: Document,
        set_view: Callable[..., Any],
        parent: QWidget | None = None,
        *,
        renderer: DiffRenderer | None = None,
    ) -> None:
        super().__init__(parent)
        self.doc, self._set_view = doc, set_view
        self._cache: dict[str, tuple[int, QImage]] = {}
        self.diff = DiffImage(doc, renderer, self)
        self.diff.changed.connect(self._refresh_images)
        self.canvas = ImageCanvas(self)
        self.readout = QLabel(" ")
        self.readout.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_bar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._bar)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        self.canvas.hovered.connect(self._show_readout)
        self.canvas.set_hint("Open an image (Ctrl+O), drop one here, or pick a sample.")
        subscribe(
            self,
            [
                (doc.layers_changed, self._layers_changed),
                (doc.source_changed, self._refresh_all),
                (doc.layer_updated, self._layer_updated),
                (doc.view_changed, self._view_changed),
                (doc.metrics_changed, self._refresh_images),
            ],
        )
        self._refresh_all()

    # ------------------------------------------------------------------ widgets

    def _build_bar(self) -> None:
        # Two rows (modes and zoom; layer pickers) keep the central area narrow enough for laptops.
        self._bar = QVBoxLayout()
        self._bar.setContentsMargins(4, 4, 4, 0)
        bar, picks = QHBoxLayout(), QHBoxLayout()
        self._bar.addLayout(bar)
        self._bar.addLayout(picks)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QToolButton] = {}
        for mode, (label, icon, tip) in MODES.items():
            button = QToolButton(self)
            button.setIcon(qta.icon(icon))
            button.setText(label)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setAutoRaise(True)
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
            button.clicked.connect(lambda _=False, m=mode: self._set_view(mode=m))
            bar.addWidget(button)
        self.a_combo, self.b_combo = QComboBox(self), QComboBox(self)
        self.a_combo.setToolTip("Layer A (before)")
        self.b_combo.setToolTip("Layer B (after)")
        self.swap_button = self._tool("fa6s.right-left", "Swap A and B", self.swap)
        self.diff_combo = QComboBox(self)
        self.diff_combo.addItem("|B - clean|", "clean")
        self.diff_combo.addItem("|A - clean|", "a_clean")
        self.diff_combo.addItem("|B - A|", "before")
        self.diff_combo.setToolTip("Reference of the difference heatmap")
        policy = self.diff_combo.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.diff_combo.setSizePolicy(policy)
        for combo in (self.a_combo, self.b_combo, self.diff_combo):
            # Long layer names are elided rather than widening the window (a 1024-pixel
            # screen must hold it); the A and B pickers take the room there is.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        for label, widget, stretch in (
            ("A", self.a_combo, 2),
            ("", self.swap_button, 0),
            ("B", self.b_combo, 2),
            ("", self.diff_combo, 1),
        ):
            if label:
                picks.addWidget(QLabel(label))
            picks.addWidget(widget, stretch)
        self.a_combo.activated.connect(lambda _: self._set_view(a=self.a_combo.currentData()))
        self.b_combo.activated.connect(lambda _: self._set_view(b=self.b_combo.currentData()))
        self.diff_combo.activated.connect(lambda _: self._set_view(diff_ref=self.diff_combo.currentData()))
        bar.addStretch(1)
        self.zoom_label = QLabel("")
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        bar.addWidget(self.zoom_label)
        self.fit_button = self._tool("fa6s.expand", "Fit the image to the view (Ctrl+0)", self.canvas.fit)
        self.actual_button = self._tool(
            "fa6s.magnifying-glass", "Show pixels 1:1 (Ctrl+Alt+0)", self.canvas.actual_size
        )
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)

    def _tool(self, icon: str, tip: str, slot: Callable[[], Any]) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(qta.icon(icon))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda _=False: slot())
        return button

    def swap(self) -> None:
        a, b = self.doc.shown_pair()
        if a is not None and b is not None:
            self._set_view(a=b, b=a)

    # ------------------------------------------------------------------ document events

    def refresh(self) -> None:
        """Convert and show everything anew."""
        self._refresh_all()

    def _refresh_all(self) -> None:
        self._cache.clear()
        self.diff.reset()
        self._refresh_pickers()
        self._view_changed(self.doc.view)

    def _layers_changed(self, key: str) -> None:
        self._cache.pop(key, None)  # replaced or removed: converted anew when shown
        self._refresh_pickers()
        self._refresh_images()

    def _layer_updated(self, key: str, box: tuple[int, int, int, int]) -> None:
        self._paint_tile(key, box)
        self.diff.tile_pasted(key, box)
        if key in self.doc.shown_pair():
            self._refresh_images()

    def _paint_tile(self, key: str, box: tuple[int, int, int, int]) -> None:
        """Convert only the tile that changed into the cached image (not the whole layer)."""
        layer, cached = self.doc.layers.get(key), self._cache.get(key)
        if layer is None or cached is None:
            return
        y0, x0, y1, x1 = box
        image = cached[1]
        painter = QPainter(image)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(x0, y0, to_qimage(layer.image[y0:y1, x0:x1]))
        painter.end()
        self._cache[key] = (layer.version, image)

    def _view_changed(self, view: ViewSettings) -> None:
        self.mode_buttons[view.mode].setChecked(True)
        self.canvas.set_mode(view.mode)
        if view.mode != "diff":
            self.diff.cancel()  # a heatmap being computed is no longer wanted
        # Hidden outside diff mode (greyed, it looked broken); its room is kept, so the pickers
        # keep their width when the mode changes.
        self.diff_combo.setVisible(view.mode == "diff")
        # The reference in use: without a clean image |B - clean| and |A - clean| fall back to |B - A|.
        used = view.diff_ref if self.diff_reference() == CLEAN else "before"
        self.diff_combo.setCurrentIndex(max(self.diff_combo.findData(used), 0))
        self._refresh_pickers()
        self._refresh_images()

    def _refresh_pickers(self) -> None:
        a, b = self.doc.shown_pair()
        for combo, current in ((self.a_combo, a), (self.b_combo, b)):
            combo.blockSignals(True)
            combo.clear()
            for key in self.doc.ordered_keys():
                combo.addItem(self.doc.layers[key].label, key)
            chosen = self.doc.view.a if combo is self.a_combo else self.doc.view.b
            if chosen in NOT_RUN_NAMES and chosen not in self.doc.layers:
                # The user's choice stays (a cancelled run removed its layer): named as not run.
                combo.addItem(f"{NOT_RUN_NAMES[chosen]} (not run)", chosen)
                current = chosen
            combo.setCurrentIndex(max(combo.findData(current), 0))
            combo.blockSignals(False)
        for row in (0, 1):  # the two differences from the clean image
            self.diff_combo.model().item(row).setEnabled(self.doc.has_clean)

    # ------------------------------------------------------------------ images

    def qimage(self, key: str) -> QImage:
        """The converted image of a layer, cached per version."""
        layer = self.doc.layers[key]
        cached = self._cache.get(key)
        if cached is None or cached[0] != layer.version:
            # A large layer comes with pixels converted in the worker: copied, not converted.
            pixels = layer.display if layer.display is not None else layer.image
            cached = (layer.version, to_qimage(pixels))
            self._cache[key] = cached
        return cached[1]

    def _side_label(self, side: str, chosen: str, shown: str) -> str:
        """``B: masked model  31.43 dB``, or, where the chosen layer has not run (or was
        cancelled), ``B: masked model not run (showing noisy input)``."""
        if chosen != shown and chosen in NOT_RUN_NAMES:
            return f"{side}: {NOT_RUN_NAMES[chosen]} not run (showing {self.doc.layers[shown].label})"
        return f"{side}: {self.label(shown)}"

    def label(self, key: str) -> str:
        layer = self.doc.layers[key]
        text = layer.label + (" (running...)" if layer.partial else "")
        metrics = self.doc.metrics.get(key)
        return f"{text}  {psnr_text(metrics.psnr)}" if metrics is not None else text

    def diff_reference(self) -> str | None:
        """Key of the layer the difference is taken against (the clean image, else A)."""
        return self.diff_pair()[1]

    def diff_pair(self) -> tuple[str | None, str | None]:
        """(subject, reference) of the difference heatmap: B or A against clean, else B against A."""
        a, b = self.doc.shown_pair()
        if self.doc.view.diff_ref in ("clean", "a_clean") and self.doc.has_clean:
            return (a if self.doc.view.diff_ref == "a_clean" else b), CLEAN
        return b, a

    def _refresh_images(self, *_: Any) -> None:
        a, b = self.doc.shown_pair()
        if a is None or b is None:
            self.canvas.set_images(None, None)
            self.canvas.set_colorbar(None)
            return
        labels = (self._side_label("A", self.doc.view.a, a), self._side_label("B", self.doc.view.b, b))
        if self.doc.view.mode != "diff":
            self.canvas.set_colorbar(None)
            self.canvas.set_images(self.qimage(a), self.qimage(b), labels)
            return
        subject, ref = self.diff_pair()
        heat = self.diff.get(subject, ref)
        ref_label = "clean" if ref == CLEAN else self.doc.layers[ref].label
        title = f"|{self.doc.layers[subject].label} - {ref_label}|"
        if heat is None or not heat.current:
            title += "  (could not compute)" if self.diff.failed else "  (computing...)"
        self.canvas.set_images(self.qimage(a), None if heat is None else heat.image, (labels[0], title))
        if heat is None:
            self.canvas.set_colorbar(None)
            return
        self.canvas.set_colorbar(
            colorbar_qimage(), f"{heat.vmax * 255:.3g}", "0", "mean |difference| (8-bit levels)"
        )

    # ------------------------------------------------------------------ readout and export

    def _show_readout(self, x: int, y: int) -> None:
        a, b = self.doc.shown_pair()
        if x < 0 or a is None or b is None:
            self.readout.setText(" ")
            return
        parts = [f"x {x:4d}  y {y:4d}"]
        for name, key in (("A", a), ("B", b)):
            rgb = np.round(self.doc.layers[key].image[y, x] * 255).astype(int)
            parts.append(f"{name} {rgb[0]:3d} {rgb[1]:3d} {rgb[2]:3d}")
        delta = np.abs(self.doc.layers[b].image[y, x] - self.doc.layers[a].image[y, x]).mean() * 255
        parts.append(f"|B-A| {delta:5.1f}")
        self.readout.setText("   ".join(parts))

    def export_array(self) -> np.ndarray:
        """The current comparison at full image resolution, uint8 (H, W', 3)."""
        a, b = self.doc.shown_pair()
        if a is None or b is None:
            raise ValueError("there is nothing to export yet")
        mode = self.doc.view.mode
        if mode == "diff":
            subject, ref = self.diff_pair()
            heat = self.diff.cached(subject, ref)  # else computed here once, not also in the worker
            if heat is not None:
                return from_qimage(heat.image)
            diff = difference(self.doc.layers[subject].image, self.doc.layers[ref].image)
            return heatmap(diff, nice_scale(diff), lookup_table())
        if mode == "toggle":
            key = b if self.canvas.showing_b else a
            return compose_export("toggle", self.doc.layers[key].image, self.doc.layers[key].image)
        return compose_export(
            mode, self.doc.layers[a].image, self.doc.layers[b].image, self.canvas.split_column()
        )
