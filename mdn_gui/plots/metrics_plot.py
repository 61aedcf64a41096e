"""PSNR and SSIM of every layer against the clean image, as bar charts."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from mdn_gui.state import CLEAN, Document, psnr_text
from mdn_gui.views.binding import OrphanCatcher, clear_scenes, subscribe
from mdn_gui.views.theme import plot_background, plot_foreground

# Least height of the bar of an infinite PSNR (it also tops every finite bar).
INFINITE_BAR = 50.0
BAR_COLOURS = {
    "noisy": "#8c8c8c",
    "masked": "#d95f02",
    "baseline": "#1f61b4",
    "custom": "#7b3fb3",
    "classical": "#2e8b57",
}


class MetricsPlot(QWidget):
    """Bars of PSNR (dB) and SSIM per layer, refreshed whenever metrics change."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.note = QLabel("No clean reference (a real noisy photo): PSNR and SSIM cannot be measured.", self)
        self.note.setWordWrap(True)
        orphans = OrphanCatcher()  # pyqtgraph's menus get this widget as owner
        self.psnr_plot = pg.PlotWidget(self)
        self.ssim_plot = pg.PlotWidget(self)
        for plot, title in (
            (self.psnr_plot, "PSNR against clean (dB)"),
            (self.ssim_plot, "SSIM against clean"),
        ):
            plot.setTitle(title)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.setMinimumHeight(120)
        orphans.adopt(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.psnr_plot, 1)
        layout.addWidget(self.ssim_plot, 1)
        subscribe(
            self,
            [
                (doc.metrics_changed, self.refresh),
                (doc.layers_changed, self.refresh),
                (doc.source_changed, self.refresh),
            ],
        )
        self.refresh()

    def rows(self) -> list[tuple[str, str, float, float | None]]:
        """(key, label, psnr, ssim) of every measured layer, in layer order."""
        out = []
        for key in self.doc.ordered_keys():
            metrics = self.doc.metrics.get(key)
            if key != CLEAN and metrics is not None:
                out.append((key, self.doc.layers[key].label, metrics.psnr, metrics.ssim))
        return out

    def refresh(self, *_: object) -> None:
        has_clean = self.doc.has_clean
        self.note.setVisible(not has_clean)
        self.psnr_plot.setVisible(has_clean)
        self.ssim_plot.setVisible(has_clean)
        rows = self.rows()
        psnrs = [r[2] for r in rows]
        self._bars(self.psnr_plot, rows, psnrs, [psnr_text(v, unit=False) for v in psnrs])
        ssims = [r[3] if r[3] is not None else 0.0 for r in rows]
        self._bars(self.ssim_plot, rows, ssims, [f"{v:.3f}" for v in ssims])

    def _bars(
        self,
        plot: pg.PlotWidget,
        rows: list[tuple[str, str, float, float | None]],
        values: list[float],
        labels: list[str],
    ) -> None:
        plot.clear()
        if not rows:
            return
        xs = np.arange(len(rows))
        finite = bar_heights(values)
        brushes = [pg.mkBrush(BAR_COLOURS.get(key, "#b58900")) for key, *_ in rows]
        plot.addItem(pg.BarGraphItem(x=xs, height=finite, width=0.6, brushes=brushes))
        for x, value, label in zip(xs, finite, labels, strict=True):
            text = pg.TextItem(label, anchor=(0.5, 1.0), color=plot_foreground(self._dark()))
            text.setPos(float(x), value)
            plot.addItem(text)
        axis = plot.getAxis("bottom")
        axis.setTicks([[(float(x), short(label)) for x, (_, label, *_r) in zip(xs, rows, strict=True)]])
        top = max(finite) if finite else 1.0
        plot.setYRange(0, top * 1.15 if top > 0 else 1.0, padding=0)
        plot.setXRange(-0.6, len(rows) - 0.4, padding=0)

    def _dark(self) -> bool:
        return self.palette().window().color().lightness() < 128

    def apply_theme(self, dark: bool) -> None:
        """Recolour after a theme change."""
        for plot in (self.psnr_plot, self.ssim_plot):
            restyle(plot, dark)
        self.refresh()


def bar_heights(values: list[float]) -> list[float]:
    """Bar heights: an infinite PSNR (identical images) tops the others, labelled "∞"."""
    top = max([INFINITE_BAR, *(1.25 * v for v in values if np.isfinite(v))])
    return [v if np.isfinite(v) else top for v in values]


SHORT_LABELS = {"masked model": "masked", "baseline model": "baseline", "non-local means": "NLM"}


def short(label: str) -> str:
    """A layer label short enough for an axis tick."""
    label = label.split(" (")[0]
    return SHORT_LABELS.get(label, label[:12])


def restyle(plot: pg.PlotWidget, dark: bool) -> None:
    """Background, axes and title colours of a plot for the light or dark theme."""
    plot.setBackground(plot_background(dark))
    pen = pg.mkPen(plot_foreground(dark))
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
    title = plot.getPlotItem().titleLabel
    title.setText(title.text, color=plot_foreground(dark))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        clear_scenes(self)
        super().closeEvent(event)
