"""The Paper figure panel: PSNR and SSIM against level for the paper's four unseen noises.

Four columns in the paper's order (correlated, speckle, Poisson, mixture), PSNR above and SSIM
below; one solid curve per measured series, and the paper's masked and baseline readings as
dashed curves named "paper: masked" and "paper: baseline" (PSNR only: the paper gives no SSIM).
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QSpinBox, QWidget

from mdn_gui.controllers.figures import PAPER_FIGURE, FiguresController
from mdn_gui.plots.figure_panel import FigurePanel
from mdn_gui.views.binding import OrphanCatcher
from mdn_gui.views.theme import plot_background, plot_foreground, series_colours
from model_core.eval.paper import PAPER_KINDS, paper_curve

PAPER_PENS = {"paper: masked": ("masked", "masked model"), "paper: baseline": ("baseline", "baseline model")}
SOURCE_LABELS = {"image": "This image", "samples": "Built-in samples"}


class PaperFigurePlot(FigurePanel):
    """Controls (source, crop, run, cancel), a status line and the 2 x 4 plots."""

    def __init__(self, figures: FiguresController, parent: QWidget | None = None) -> None:
        run = ("fa6s.chart-line", "Paper figure",
               "The paper's 19 noises (4 unseen types at its levels), all networks")
        super().__init__(figures, PAPER_FIGURE, run,
                         "The paper's figure, measured with the loaded weights.", parent)
        orphans = OrphanCatcher()
        self.view.setMinimumHeight(260)
        self.plots: dict[tuple[str, str], pg.PlotItem] = {}
        for row, quantity in enumerate(("psnr", "ssim")):
            for col, kind in enumerate(PAPER_KINDS):
                plot = self.view.addPlot(row=row, col=col)
                plot.setTitle(kind if quantity == "psnr" else f"{kind}: SSIM", size="9pt")
                plot.setLabel("left", "PSNR (dB)" if quantity == "psnr" else "SSIM")
                plot.getAxis("bottom").enableAutoSIPrefix(False)
                plot.getAxis("left").enableAutoSIPrefix(False)
                plot.showGrid(x=True, y=True, alpha=0.25)
                self.plots[(quantity, kind)] = plot
        orphans.adopt(self)
        self.curves: dict[tuple[str, str, str], pg.PlotDataItem] = {}
        self.source = QComboBox(self)
        for key, label in SOURCE_LABELS.items():
            self.source.addItem(label, key)
        self.source.setToolTip("Measure on a centre crop of this image, or of each built-in sample photo")
        self.crop = QSpinBox(self)
        self.crop.setRange(32, 1024)
        self.crop.setSingleStep(32)
        self.crop.setValue(figures.paper_crop)
        self.crop.setSuffix(" px")
        self.crop.setToolTip("Side of the centre crops measured (smaller: faster)")
        figures.paper_changed.connect(self.redraw)
        self.lay_out((self.source, self.crop))

    def start(self) -> None:
        """Run with the source and crop the controls show."""
        self.figures.set_settings(source=self.source.currentData(), paper_crop=self.crop.value())
        self.figures.start_paper()

    def curve(self, quantity: str, kind: str, series: str) -> pg.PlotDataItem | None:
        """The drawn curve of a series in one panel (tests and lessons read it)."""
        return self.curves.get((quantity, kind, series))

    def redraw(self) -> None:
        """Draw the measured series and the paper's dashed readings."""
        for key in list(self.curves):
            self.plots[key[:2]].removeItem(self.curves.pop(key))
        colours = series_colours(self._dark)
        for kind in PAPER_KINDS:
            points = paper_curve(kind)
            for name, (attr, like) in PAPER_PENS.items():
                pen = pg.mkPen(colours.get(like, "#888888"), width=1.5, style=Qt.PenStyle.DashLine)
                levels, values = [p.level for p in points], [getattr(p, attr) for p in points]
                self._add("psnr", kind, name, levels, values, pen)
        for series, kinds in self.figures.paper.points.items():
            colour = colours.get(series, "#b58900")
            for kind, points in kinds.items():
                xs = [p[0] for p in points]
                for i, quantity in enumerate(("psnr", "ssim")):
                    pen = pg.mkPen(colour, width=2)
                    item = self._add(quantity, kind, series, xs, [p[1 + i] for p in points], pen)
                    item.setSymbol("o")
                    item.setSymbolSize(5)
                    item.setSymbolBrush(colour)
        self._fill_legend(colours)

    def _add(self, quantity: str, kind: str, name: str, xs: list[float], ys: list[float],
             pen: object) -> pg.PlotDataItem:
        item = self.plots[(quantity, kind)].plot(xs, ys, pen=pen, name=name)
        self.curves[(quantity, kind, name)] = item
        return item

    def _fill_legend(self, colours: dict[str, str]) -> None:
        names = [*self.figures.paper.points, *PAPER_PENS]
        parts = []
        for name in names:
            like = PAPER_PENS[name][1] if name in PAPER_PENS else name
            mark = "&#8211; &#8211;" if name in PAPER_PENS else "&#9632;"
            parts.append(f"<span style='color:{colours.get(like, '#b58900')}'>{mark}</span>&nbsp;"
                         + html.escape(name).replace(" ", "&nbsp;"))
        note = " (dashed: the paper's readings, PSNR only)"
        self.legend.setText("&nbsp;&nbsp; ".join(parts) + html.escape(note))

    def apply_theme(self, dark: bool) -> None:
        """Recolour after a theme change."""
        self._dark = dark
        self.view.setBackground(plot_background(dark))
        for plot in self.plots.values():
            restyle_item(plot, dark)
        self.redraw()


def restyle_item(plot: pg.PlotItem, dark: bool) -> None:
    """The theme's axis and title colours for a plot inside a GraphicsLayoutWidget."""
    pen = pg.mkPen(plot_foreground(dark))
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
    plot.titleLabel.setText(plot.titleLabel.text, color=plot_foreground(dark))
