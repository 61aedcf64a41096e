"""Mask visualisations: keep-maps of every Swin block, the input mask, the attention of a
clicked pixel and the per-pixel spread over stochastic passes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from mdn_gui import catalog as cat
from mdn_gui.compose import overlay_mask
from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.state import MODEL_LAYERS, NOISY, RunRecord
from mdn_gui.views.binding import OrphanCatcher, clear_scenes, subscribe
from mdn_gui.views.theme import plot_background, plot_foreground
from model_core.engine import AttentionView

MODES = {
    "keep": "Attention keep-map",
    "input": "Input mask",
    "attention": "Attention of a clicked pixel",
    "std": "Std over passes",
}
# Height of the clicked pixel's attention plot: a square 8x8 grid with its title, axes and bar.
HEAT_MIN_HEIGHT = 300


def block_description(block: int, depths: tuple[int, ...]) -> str:
    """'block 7 of 24: group 2, block 1, shifted windows' (1-based for people)."""
    total = sum(depths)
    start = 0
    for group, depth in enumerate(depths):
        if block < start + depth:
            inner = block - start
            shift = "shifted windows" if inner % 2 else "regular windows"
            return f"block {block + 1} of {total}: group {group + 1}, block {inner + 1}, {shift}"
        start += depth
    return f"block {block + 1}"


def window_marks(view: AttentionView) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """(row, col) in the window of the query token, and of the keys dropped in this block."""
    y0, x0, _, _ = view.crop
    hits = np.argwhere((view.key_rows == view.pixel[0]) & (view.key_cols == view.pixel[1]))
    query = (int(hits[0][0]), int(hits[0][1])) if len(hits) else None
    rows, cols = view.key_rows - y0, view.key_cols - x0
    h, w = view.keep_map.shape
    dropped = [
        (r, c)
        for r, c in np.ndindex(view.key_rows.shape)
        if 0 <= rows[r, c] < h and 0 <= cols[r, c] < w and view.keep_map[rows[r, c], cols[r, c]] == 0
    ]
    return query, dropped


def whose(record: RunRecord) -> str:
    """The model whose run a record is, for people (``"masked model"``)."""
    return cat.LABELS.get(record.model, record.model)


class MaskView(QWidget):
    """Shows what the last network run masked, over the noisy image."""

    def __init__(self, analysis: AnalysisController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.analysis, self.doc = analysis, analysis.doc
        self.pixel: tuple[int, int] | None = None
        self.attention: AttentionView | None = None
        self._shown: RunRecord | None = None  # the record drawn last
        self.mode = QComboBox(self)
        for key, label in MODES.items():
            self.mode.addItem(label, key)
        self.block = QSlider(Qt.Orientation.Horizontal, self)
        self.block.setRange(0, 0)
        self.block.setPageStep(1)
        self.block.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.block.setToolTip("Swin block (each has its own random keep-map)")
        self.block_label = QLabel(self)
        # 1-based, as the heatmap's title and the info text count heads and blocks.
        self.head = QSpinBox(self)
        self.head.setPrefix("head ")
        self.head.setRange(1, 1)
        self.head.setToolTip("Attention head shown in the heatmap")
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        orphans = OrphanCatcher()  # pyqtgraph's menus get this widget as owner
        self._build_graphics()
        orphans.adopt(self)
        # The block slider has a row of its own: next to the mode and head pickers a narrow
        # dock squeezed it to a few pixels.
        controls = QHBoxLayout()
        controls.addWidget(self.mode, 1)
        controls.addWidget(self.head)
        self.block_row = QWidget(self)
        blocks = QHBoxLayout(self.block_row)
        blocks.setContentsMargins(0, 0, 0, 0)
        blocks.addWidget(QLabel("Block", self.block_row))
        blocks.addWidget(self.block, 1)
        blocks.addWidget(self.block_label)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.block_row)
        layout.addWidget(self.info)
        # Stacked: the plot docks are tall and narrow.
        layout.addWidget(self.main_view, 3)
        layout.addWidget(self.heat_view, 2)
        self.mode.currentIndexChanged.connect(lambda _: self.refresh())
        self.block.valueChanged.connect(self._block_changed)
        self.head.valueChanged.connect(lambda _: self._draw_attention())
        analysis.attention_ready.connect(self._attention_ready)
        analysis.attention_failed.connect(self.info.setText)
        subscribe(
            self,
            [
                (self.doc.record_changed, lambda _k: self.refresh()),
                (self.doc.layers_changed, self._layer_changed),
                (self.doc.source_changed, self._source_changed),
                (self.doc.view_changed, lambda _v: self._record_may_change()),
            ],
        )
        self.refresh()

    def _build_graphics(self) -> None:
        self.main_view = pg.GraphicsLayoutWidget(self)
        self.image_box = self.main_view.addViewBox(row=0, col=0, lockAspect=True, invertY=True)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_box.addItem(self.image_item)
        self.keys_item = pg.ScatterPlotItem(size=6, pen=None, symbol="s")
        self.query_item = pg.ScatterPlotItem(
            size=12, pen=pg.mkPen("#00e5ff", width=2), brush=None, symbol="o"
        )
        self.image_box.addItem(self.keys_item)
        self.image_box.addItem(self.query_item)
        self.main_view.scene().sigMouseClicked.connect(self._scene_clicked)
        self.heat_view = pg.GraphicsLayoutWidget(self)
        self.heat_plot = self.heat_view.addPlot(row=0, col=0, title="attention weights")
        self.heat_plot.invertY(True)
        self.heat_plot.setAspectLocked(True)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.heat_item)
        # In the window: the clicked pixel's own token (ring) and the dropped tokens (crosses).
        ring, cross = pg.mkPen("#00e5ff", width=2), pg.mkPen("#ff3030", width=2)
        self.heat_query = pg.ScatterPlotItem(size=16, pen=ring, brush=None, symbol="o")
        self.heat_dropped = pg.ScatterPlotItem(size=9, pen=cross, brush=None, symbol="x")
        self.heat_plot.addItem(self.heat_query)
        self.heat_plot.addItem(self.heat_dropped)
        # Below the plot, not beside it: beside it, a narrow dock cut its numbers off.
        self.heat_bar = pg.ColorBarItem(
            values=(0, 1), colorMap="inferno", interactive=False, orientation="horizontal"
        )
        self.heat_bar.setImageItem(self.heat_item)
        self.heat_view.addItem(self.heat_bar, row=1, col=0)

    # ------------------------------------------------------------------ what to show

    def current_mode(self) -> str:
        return self.mode.currentData()

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def record(self) -> RunRecord | None:
        """Run record of layer B when it has one, else of the selected model's layer."""
        records = self.doc.records
        _, b = self.doc.shown_pair()
        for key in (b, MODEL_LAYERS.get(self.doc.model.model)):
            if key in records and records[key].num_blocks:
                return records[key]
        return next((r for r in records.values() if r.num_blocks), None)

    def _source_changed(self) -> None:
        self.pixel, self.attention = None, None
        self.refresh()

    def _layer_changed(self, key: str) -> None:
        stale = key == NOISY and self.attention is not None  # computed on the old noisy image
        if stale:
            self.attention = None
        self.refresh()
        if stale and self.current_mode() == "attention" and self.pixel is not None:
            self.set_pixel(self.pixel[1], self.pixel[0])

    def _record_may_change(self) -> None:
        """Another layer B: its run's masks (and attention) are the ones to show."""
        if self.record() is self._shown:
            return
        if self.current_mode() == "attention" and self.pixel is not None:
            self.analysis.probe_attention(self.pixel, self.block.value(), self.record())
        self.refresh()

    def _block_changed(self, block: int) -> None:
        if self.current_mode() == "attention" and self.pixel is not None:
            self.analysis.probe_attention(self.pixel, block, self.record())
        self.refresh()

    def set_pixel(self, x: int, y: int) -> None:
        """A pixel was clicked: probe its attention (and show it)."""
        self.pixel = (y, x)
        self.set_mode("attention")
        self.analysis.probe_attention(self.pixel, self.block.value(), self.record())
        self.info.setText(f"Computing the attention of pixel x {x}, y {y}...")

    def _scene_clicked(self, event: object) -> None:
        point = self.image_box.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        size = self.doc.image_size
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        if size is not None and 0 <= y < size[0] and 0 <= x < size[1]:
            self.set_pixel(x, y)

    def _attention_ready(self, view: AttentionView) -> None:
        self.attention = view
        self.head.setRange(1, view.weights.shape[0])
        if self.current_mode() == "attention":
            self.refresh()

    # ------------------------------------------------------------------ drawing

    def refresh(self) -> None:
        """Redraw for the current mode, block and record."""
        record, noisy, mode = self.record(), self.doc.noisy, self.current_mode()
        self._shown = record
        if record is not None and record.num_blocks:
            self.block.blockSignals(True)
            self.block.setRange(0, record.num_blocks - 1)
            self.block.blockSignals(False)
        total = self.block.maximum() + 1 if record is not None and record.num_blocks else 0
        self.block_label.setText(f"{self.block.value() + 1} / {total}" if total else "-")
        # Only keep-maps and attention depend on the block.
        self.block_row.setVisible(mode in ("keep", "attention"))
        # The heatmap view shows attention weights, or the std map in place of the image.
        self.heat_view.setVisible(mode in ("attention", "std"))
        self.main_view.setVisible(mode != "std")
        self.head.setVisible(mode == "attention")
        self.keys_item.setVisible(mode == "attention")
        self.query_item.setVisible(mode == "attention")
        if noisy is None:
            self.image_item.clear()
            self.info.setText("Open an image first.")
            return
        if mode == "attention":
            self._draw_attention()
            return
        draw = {"keep": self._draw_keep, "input": self._draw_input, "std": self._draw_std}[mode]
        draw(record)

    def _set_image(self, image: np.ndarray, levels: tuple[float, float] = (0.0, 1.0)) -> None:
        self.image_item.setImage(image, levels=levels, autoLevels=False)
        if self.current_mode() != "attention":
            self.image_box.setRange(xRange=(0, image.shape[1]), yRange=(0, image.shape[0]), padding=0.02)

    def _draw_keep(self, record: RunRecord | None) -> None:
        noisy = self.doc.noisy
        block = self.block.value()
        if record is None or not record.keep_maps:
            self._set_image(noisy)
            self.info.setText("Run a network to see the keep-maps of its Swin blocks.")
            return
        if block not in record.keep_maps:
            self._set_image(noisy)
            kept = ", ".join(str(b + 1) for b in sorted(record.keep_maps))
            self.info.setText(f"This image is large: keep-maps were kept for blocks {kept} only.")
            return
        keep = record.keep_maps[block]
        self._set_image(overlay_mask(noisy, keep))
        kept = float(keep.mean()) if keep.size else 1.0
        note = "" if record.attn_ratio > 0 else " (this run used no attention mask)"
        self.info.setText(
            f"{whose(record)}, {block_description(block, record.depths)}. Red tokens are "
            f"dropped from attention; {kept:.1%} kept{note}."
        )

    def _draw_input(self, record: RunRecord | None) -> None:
        noisy = self.doc.noisy
        if record is None or record.input_keep is None:
            self._set_image(noisy)
            self.info.setText("No input mask: set an input-mask ratio above 0% and run.")
            return
        keep = record.input_keep
        self._set_image(overlay_mask(noisy, keep, colour=(0.0, 0.0, 0.0), strength=1.0))
        self.info.setText(
            f"Input pixels the {whose(record)} saw: {float(keep.mean()):.1%} kept, the rest "
            f"dropped (black) as in masked training."
        )

    def _draw_std(self, record: RunRecord | None) -> None:
        if record is None or record.std is None:
            self.main_view.setVisible(True)
            self.heat_view.setVisible(False)
            self._set_image(self.doc.noisy)
            shown = f"The {whose(record)} ran one pass. " if record is not None else ""
            self.info.setText(f"{shown}Run with 2 or more passes to see how much the outputs vary.")
            return
        spread = record.std.mean(axis=2) * 255.0
        top = max(float(np.percentile(spread, 99.5)), 1e-3)
        self.heat_item.setImage(spread, levels=(0.0, top), autoLevels=False)
        self.heat_bar.setLevels((0.0, top))
        self.heat_plot.setTitle("std over passes (8-bit levels)")
        self._heat_axes(attention=False)
        self.heat_plot.setRange(xRange=(0, spread.shape[1]), yRange=(0, spread.shape[0]), padding=0)
        # Without masks nothing is random: every pass gives the same output.
        unmasked = record.attn_ratio <= 0 and record.input_keep is None
        note = "; this run used no mask, so its passes are identical" if unmasked else ""
        self.info.setText(
            f"{whose(record)}: per-pixel standard deviation over the passes (mean over RGB, "
            f"8-bit levels); mean {float(spread.mean()):.2f}{note}."
        )

    def _draw_attention(self) -> None:
        noisy, view = self.doc.noisy, self.attention
        if noisy is None:
            return
        self._heat_axes(attention=True)
        self._set_image(noisy)
        if view is None or self.pixel is None:
            self.keys_item.clear()
            self.query_item.clear()
            self.heat_item.clear()
            self.info.setText(
                "Click a pixel (here or in the comparison view) to see where its token attends."
            )
            return
        head = min(self.head.value() - 1, view.weights.shape[0] - 1)
        weights = view.weights[head]
        inside = (view.key_rows < noisy.shape[0]) & (view.key_cols < noisy.shape[1])
        top = max(float(weights.max()), 1e-6)
        lut = pg.colormap.get("inferno")
        brushes = [pg.mkBrush(lut.map(w / top, mode="qcolor")) for w in weights[inside]]
        self.keys_item.setData(x=view.key_cols[inside] + 0.5, y=view.key_rows[inside] + 0.5, brush=brushes)
        y, x = view.pixel
        self.query_item.setData(x=[x + 0.5], y=[y + 0.5])
        self.heat_item.setImage(weights, levels=(0.0, top), autoLevels=False)
        self.heat_plot.setRange(xRange=(0, weights.shape[1]), yRange=(0, weights.shape[0]), padding=0)
        query, dropped_keys = window_marks(view)
        self.heat_query.setData(
            x=[] if query is None else [query[1] + 0.5], y=[] if query is None else [query[0] + 0.5]
        )
        self.heat_dropped.setData(x=[c + 0.5 for _, c in dropped_keys], y=[r + 0.5 for r, _ in dropped_keys])
        self.heat_bar.setLevels((0.0, top))
        self.heat_plot.setTitle(f"head {head + 1} of {view.weights.shape[0]}")
        y0, x0, y1, x1 = view.crop
        self.image_box.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.05)
        dropped = int((view.keep_map == 0).sum())
        self.info.setText(
            f"Pixel x {x}, y {y}, {block_description(view.block, self._depths())}: weights of its "
            f"token (ring) over its {weights.shape[0]}x{weights.shape[1]} window, {len(dropped_keys)} "
            f"of them dropped (crosses); {dropped} tokens of the crop are masked in this block."
        )

    def _heat_axes(self, *, attention: bool) -> None:
        """Attention: axes that count the window's tokens; std map: the image, with no axes.

        Both locked to square pixels: unlocked, the 8x8 window was drawn as a ~340x40 px strip
        (the std map's axes ran far outside the image). The window gets the room of a square
        grid whose cells can carry their crosses.
        """
        plot = self.heat_plot
        plot.setAspectLocked(True)
        self.heat_view.setMinimumHeight(HEAT_MIN_HEIGHT if attention else 0)
        for side, label in (("bottom", "key column in the window"), ("left", "key row")):
            plot.setLabel(side, label if attention else "")  # (setLabel shows the axis)
            plot.showAxis(side, attention)
        self.heat_query.setVisible(attention)
        self.heat_dropped.setVisible(attention)

    def _depths(self) -> tuple[int, ...]:
        record = self.record()
        return record.depths if record is not None else ()

    def apply_theme(self, dark: bool) -> None:
        """Recolour after a theme change (pyqtgraph reads its colours only when it draws anew)."""
        for view in (self.main_view, self.heat_view):
            view.setBackground(plot_background(dark))
        pen = pg.mkPen(plot_foreground(dark))
        for item in (self.heat_plot, self.heat_bar):
            for axis in item.axes.values():
                axis["item"].setPen(pen)
                axis["item"].setTextPen(pen)
        title = self.heat_plot.titleLabel
        title.setText(title.text, color=plot_foreground(dark))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        clear_scenes(self)
        super().closeEvent(event)
