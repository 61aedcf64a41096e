"""The Features panel: histograms of the deep feature values per noise, one plot per model.

The models stand side by side (baseline | masked), each titled with its distance D, the mean
1-Wasserstein distance of its unseen-noise feature distributions from the Gaussian-15 one in
units of the Gaussian-15 std (:mod:`model_core.features`).
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtWidgets import QSpinBox, QWidget

from mdn_gui.controllers.figures import FEATURES, FiguresController
from mdn_gui.plots.figure_panel import FigurePanel
from mdn_gui.plots.paper_plot import restyle_item
from mdn_gui.views.binding import OrphanCatcher
from mdn_gui.views.theme import plot_background
from model_core.features import DEFAULT_NOISES, REFERENCE_NOISE, FeatureReport

NOISE_COLOURS = {"gaussian:15": "#222222", "speckle:0.024": "#e6731e", "mixture:2": "#2e8b57",
                 "poisson:2.5": "#c2185b"}
FALLBACK_COLOURS = ("#1f61b4", "#8e44ad", "#b58900", "#16a085")
EXPLAIN = ("D: the mean 1-Wasserstein distance of the unseen noises' feature values from the "
           "Gaussian-15 ones, in Gaussian-15 standard deviations (0: the features ignore the noise).")


def noise_colour(noise: str, index: int, dark: bool) -> str:
    """A noise's colour: fixed for the defaults (the training noise black, white when dark)."""
    if noise == REFERENCE_NOISE and dark:
        return "#eeeeee"
    return NOISE_COLOURS.get(noise, FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)])


class FeaturesPlot(FigurePanel):
    """Controls (group, crop, run, cancel), a status line and one histogram plot per model."""

    def __init__(self, figures: FiguresController, parent: QWidget | None = None) -> None:
        run = ("fa6s.chart-column", "Features", f"Deep-feature histograms under {', '.join(DEFAULT_NOISES)}")
        super().__init__(figures, FEATURES, run,
                         "What the network sees: its deep features under four noises.", parent)
        self._orphans = OrphanCatcher()
        self.view.setMinimumHeight(220)
        self.plots: list[pg.PlotItem] = []
        self.group = QSpinBox(self)
        self.group.setRange(-1, 63)
        self.group.setSpecialValueText("last group")
        self.group.setValue(figures.group)
        self.group.setToolTip("Residual group whose output is plotted (the paper: the last one)")
        self.crop = QSpinBox(self)
        self.crop.setRange(32, 2048)
        self.crop.setSingleStep(32)
        self.crop.setValue(figures.features_crop)
        self.crop.setSuffix(" px")
        self.crop.setToolTip("Side of the centre crop of this image that is measured")
        figures.features_changed.connect(self.redraw)
        self.lay_out((self.group, self.crop))

    def start(self) -> None:
        """Run with the group and crop the controls show."""
        self.figures.set_settings(group=self.group.value(), features_crop=self.crop.value())
        self.figures.start_features()

    def titles(self) -> list[str]:
        """The plots' titles, left to right (tests and lessons read them)."""
        return [plot.titleLabel.text for plot in self.plots]

    def redraw(self) -> None:
        """One plot per model report, its noises' histograms overlaid as step curves."""
        self.view.clear()
        self.plots = []
        reports = self.figures.features
        for col, report in enumerate(reports):
            plot = self.view.addPlot(row=0, col=col)
            self._draw(plot, report)
            restyle_item(plot, self._dark)
            self.plots.append(plot)
        self._orphans.adopt(self)
        noises = list(reports[0].histograms) if reports else list(DEFAULT_NOISES)
        names = [n + (" (training noise)" if n == REFERENCE_NOISE else "") for n in noises]
        marks = [f"<span style='color:{noise_colour(n, i, self._dark)}'>&#9632;</span>&nbsp;"
                 + html.escape(name).replace(" ", "&nbsp;")
                 for i, (n, name) in enumerate(zip(noises, names, strict=True))]
        self.legend.setText("&nbsp;&nbsp; ".join(marks) + "<br>" + html.escape(EXPLAIN))

    def _draw(self, plot: pg.PlotItem, report: FeatureReport) -> None:
        plot.setTitle(f"{report.label}: D = {report.distance:.3f}", size="10pt")
        plot.setLabel("bottom", f"feature value (group {report.group} output)")
        plot.setLabel("left", "density")
        for side in ("left", "bottom"):  # "density (x0.001)" read as a unit, not a scale
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.showGrid(x=True, y=True, alpha=0.25)
        for i, (noise, density) in enumerate(report.histograms.items()):
            width = 2.5 if noise == report.reference else 1.5
            pen = pg.mkPen(noise_colour(noise, i, self._dark), width=width)
            plot.plot(report.edges, density, stepMode="center", pen=pen, name=noise)

    def apply_theme(self, dark: bool) -> None:
        """Recolour after a theme change."""
        self._dark = dark
        self.view.setBackground(plot_background(dark))
        self.redraw()
