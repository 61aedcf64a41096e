"""Sweeps: PSNR against attention-mask ratio and against noise level, drawn as points arrive."""

from __future__ import annotations

import html

import pyqtgraph as pg
import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from mdn_gui.catalog import PAPER_ATTN_RATIO
from mdn_gui.controllers.analysis import SWEEP_RATIOS, AnalysisController, sweep_levels
from mdn_gui.plots.metrics_plot import restyle
from mdn_gui.state import NoiseSettings
from mdn_gui.views.binding import OrphanCatcher, clear_scenes, subscribe
from mdn_gui.views.theme import series_colours
from model_core.noise import NoiseSpec

# PSNR axis of an empty sweep plot: where denoised photos land.
EMPTY_PSNR_RANGE = (15.0, 40.0)

SYMBOLS = ("o", "s", "t", "d", "+")


class SweepPlot(QWidget):
    """Two plots with their start buttons and one Cancel button."""

    def __init__(self, analysis: AnalysisController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.analysis, self.doc = analysis, analysis.doc
        self._dark = False
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {"attention": {}, "noise": {}}
        orphans = OrphanCatcher()  # pyqtgraph's menus get this widget as owner
        titles = {
            "attention": ("PSNR vs mask ratio", "attention-mask ratio (%)"),
            "noise": ("PSNR vs noise level", "noise level"),
        }
        self.titles = {kind: title for kind, (title, _) in titles.items()}
        # Legends below the plots, not inside: inside, the legend covered a curve.
        self.legends: dict[str, QLabel] = {}
        for kind, (title, x_label) in titles.items():
            plot = pg.PlotWidget(self)
            plot.setTitle(title)
            plot.setLabel("left", "PSNR (dB)")
            plot.setLabel("bottom", x_label)
            # Levels read as in the noise panel (0.024), not as "24 (x0.001)".
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMinimumHeight(140)
            self.plots[kind] = plot
            legend = QLabel(self)
            legend.setWordWrap(True)
            legend.setTextFormat(Qt.TextFormat.RichText)
            self.legends[kind] = legend
        self.ratio_line = pg.InfiniteLine(
            PAPER_ATTN_RATIO * 100,
            angle=90,
            movable=False,
            pen=pg.mkPen("#e6731e", style=Qt.PenStyle.DashLine),
            label=f"masked trained at {PAPER_ATTN_RATIO:.0%}",
            labelOpts={"position": 0.1},
        )
        self.plots["attention"].addItem(self.ratio_line)
        self.level_line = pg.InfiniteLine(
            0, angle=90, movable=False, pen=pg.mkPen("#888888", style=Qt.PenStyle.DotLine)
        )
        self.plots["noise"].addItem(self.level_line)
        orphans.adopt(self)
        self.attention_button = QPushButton(qta.icon("fa6s.chart-line"), "Mask ratio", self)
        self.attention_button.setToolTip(
            "PSNR of the masked and baseline models against the attention-mask "
            "ratio, on a centre crop of this noisy image"
        )
        self.noise_button = QPushButton(qta.icon("fa6s.chart-line"), "Noise level", self)
        self.noise_button.setToolTip("PSNR against the level of the chosen noise type, on a centre crop")
        # An icon only: three labelled buttons made the dock, and so the window, too wide.
        self.cancel_button = QPushButton(qta.icon("fa6s.stop"), "", self)
        self.cancel_button.setToolTip("Cancel the sweep")
        self.status = QLabel(f"Sweeps run on a {analysis.crop}x{analysis.crop} centre crop.", self)
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.attention_button, self.noise_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        for kind in ("attention", "noise"):
            layout.addWidget(self.plots[kind], 1)
            layout.addWidget(self.legends[kind])
        self.attention_button.clicked.connect(lambda _=False: analysis.start_sweep("attention"))
        self.noise_button.clicked.connect(lambda _=False: analysis.start_sweep("noise"))
        self.cancel_button.clicked.connect(lambda _=False: analysis.cancel_sweep())
        analysis.sweep_running.connect(self._running)
        analysis.sweep_progress.connect(self._progress)
        analysis.sweep_message.connect(self.status.setText)
        subscribe(
            self, [(self.doc.sweep_changed, self.redraw), (self.doc.noise_changed, self._noise_changed)]
        )
        self._noise_changed(self.doc.noise)
        self._running("", False)
        for kind in self.plots:
            self._show_empty(kind)

    def _running(self, kind: str, running: bool) -> None:
        if kind == "attention" and running:  # its curves outlive a change of the noise
            spec = NoiseSpec(self.doc.noise.kind, self.doc.noise.level)
            self.plots[kind].setTitle(f"{self.titles[kind]} on {spec}")
        elif kind == "noise" and running:
            self.plots[kind].setTitle(f"PSNR vs {self.doc.noise.kind} level (seed {self.doc.noise.seed})")
        self.cancel_button.setEnabled(running)
        self.attention_button.setEnabled(not running)
        self.noise_button.setEnabled(not running)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.status.setText(f"{message}  ({done}/{total})")

    def _noise_changed(self, noise: NoiseSettings) -> None:
        self.level_line.setValue(noise.level)
        self.plots["noise"].setLabel("bottom", f"{noise.kind} level")
        if not self.doc.sweeps["noise"]:
            self.plots["noise"].setTitle(f"PSNR vs {noise.kind} level")
            self._show_empty("noise")

    def _show_empty(self, kind: str) -> None:
        """Before a sweep: the axes over the range it will cover, not pyqtgraph's -0.5..0.5."""
        plot = self.plots[kind]
        if kind == "attention":
            xs = [100 * r for r in SWEEP_RATIOS]
        else:
            xs = [*sweep_levels(self.doc.noise.kind), self.doc.noise.level]
        plot.setXRange(min(xs), max(xs), padding=0.05)
        plot.setYRange(*EMPTY_PSNR_RANGE, padding=0)

    def point_count(self, kind: str) -> int:
        """Points drawn so far in a sweep (all curves)."""
        return sum(len(c.getData()[0]) for c in self.curves[kind].values() if c.getData()[0] is not None)

    def redraw(self, kind: str) -> None:
        """Redraw the curves of one sweep from the document."""
        plot, curves, colours = self.plots[kind], self.curves[kind], series_colours(self._dark)
        data = self.doc.sweeps[kind]
        for name in list(curves):
            if name not in data:
                self._drop(kind, name)
        for i, (name, points) in enumerate(data.items()):
            xs, ys = zip(*sorted(points), strict=True) if points else ((), ())
            if name not in curves:
                colour = colours.get(name, "#b58900")
                curves[name] = plot.plot(
                    [],
                    [],
                    name=name,
                    pen=pg.mkPen(colour, width=2),
                    symbol=SYMBOLS[i % len(SYMBOLS)],
                    symbolBrush=colour,
                    symbolSize=7,
                )
            curves[name].setData(list(xs), list(ys))
        self._fill_legend(kind)
        if data:
            plot.enableAutoRange()
        else:
            empty = self.titles[kind] if kind == "attention" else f"PSNR vs {self.doc.noise.kind} level"
            plot.setTitle(empty)
            self._show_empty(kind)

    def _fill_legend(self, kind: str) -> None:
        colours = series_colours(self._dark)
        self.legends[kind].setText(
            " ".join(  # names wrap whole: neither their spaces nor their hyphens ("non-local") break
                f"<span style='white-space:nowrap'><span style='color:{colours.get(name, '#b58900')}'>"
                f"&#9632;</span> {html.escape(name).replace('-', '&#8209;')}&nbsp;&nbsp;</span>"
                for name in self.curves[kind]
            )
        )

    def apply_theme(self, dark: bool) -> None:
        """Recolour after a theme change."""
        self._dark = dark
        for kind, plot in self.plots.items():
            restyle(plot, dark)
            for name in list(self.curves[kind]):
                self._drop(kind, name)
            self.redraw(kind)

    def _drop(self, kind: str, name: str) -> None:
        plot = self.plots[kind].getPlotItem()
        plot.removeItem(self.curves[kind].pop(name))
        self._fill_legend(kind)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        clear_scenes(self)
        super().closeEvent(event)
