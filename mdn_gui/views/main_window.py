"""The main window: comparison view in the centre, docks for controls and plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.difference import DiffRenderer
from mdn_gui.controllers.figures import KINDS as FIGURE_KINDS
from mdn_gui.controllers.figures import FiguresController
from mdn_gui.controllers.session import SessionController
from mdn_gui.controllers.weights_guard import WeightsGuard
from mdn_gui.plots.features_plot import FeaturesPlot
from mdn_gui.plots.mask_view import MaskView
from mdn_gui.plots.metrics_plot import MetricsPlot
from mdn_gui.plots.paper_plot import PaperFigurePlot
from mdn_gui.plots.sweep_plot import SweepPlot
from mdn_gui.state import MODEL_LAYERS
from mdn_gui.views.actions import WindowActions, fill_menu
from mdn_gui.views.binding import subscribe
from mdn_gui.views.busy import BusyIndicator
from mdn_gui.views.compare_view import CompareView
from mdn_gui.views.model_panel import ModelPanel
from mdn_gui.views.noise_panel import NoisePanel
from mdn_gui.views.recent import RecentFiles
from mdn_gui.views.run_progress import RunProgress
from mdn_gui.views.saving import SavingMixin
from mdn_gui.views.theme import ThemeManager
from mdn_gui.views.tour import Tour
from mdn_gui.views.widgets import Banner, VerticalScrollArea
from model_core.imageio import ImageReadError

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)"
WEIGHTS_FILTER = "Weights (*.safetensors *.pth *.pt);;All files (*)"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
CLOSE_WAIT_MS = 1000  # how long closing waits for the workers before the mdn-gui command exits
SETTINGS_VERSION = 1


class MainWindow(SavingMixin, QMainWindow):
    """The workbench window.

    Args:
        session: The session controller (owns the document and the worker).
        analysis: Sweeps and attention probes.
        settings: Where the layout, theme and recent files are remembered.
        theme: The theme manager.
    """

    def __init__(
        self,
        session: SessionController,
        analysis: AnalysisController,
        settings: QSettings,
        theme: ThemeManager,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.analysis, self.settings, self.theme = session, analysis, settings, theme
        self.doc = session.doc
        self.remember = True
        self.recent = RecentFiles(settings)
        self._closed = False
        # Set by the mdn-gui command: ends the process when the workers do not stop on close
        # within CLOSE_WAIT_MS. Unset (tests, embedding): closing waits for them.
        self.exit_now: Callable[[int], None] | None = None
        self.setObjectName("mdn-main-window")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        renderer = DiffRenderer(session.board, session.image_backend, self)
        renderer.failed.connect(lambda why: self.show_status(f"Could not compute the difference: {why}"))
        self.compare = CompareView(self.doc, self.session_view, self, renderer=renderer)
        self.setCentralWidget(self.compare)
        self.banner = Banner(self.compare.canvas)  # floats over the image: never pushes it down
        self.banner.covered.connect(self.compare.canvas.set_covered)  # nor hides the A/B labels
        self._build_docks()
        self.tour = Tour(self)
        self.actions_ = WindowActions(self)
        self.actions_.build_menus(self)
        self.tour.build_menu()
        self.addToolBar(self.actions_.build_toolbar(self))
        for dock in (*self.docks, self.tour.dock):
            self.actions_.docks_menu.addAction(dock.toggleViewAction())
        self._build_status()
        self._connect()
        self._default_state = self.saveState(SETTINGS_VERSION)
        self.restore_settings()
        self._update_title()
        self._announce_missing_weights()

    def _announce_missing_weights(self) -> None:
        catalog = self.session.catalog
        if catalog.masked is None and catalog.baseline is None and catalog.custom is None:
            self.banner.show_message(
                "The shipped weights (resources/weights/masked.safetensors and baseline.safetensors) are "
                "not installed yet. Open a weights file (File > Open Weights, Ctrl+Shift+W) to run a "
                "network; meanwhile the classical peer (non-local means) runs.",
                error=False,
            )

    # ------------------------------------------------------------------ construction

    def _build_docks(self) -> None:
        controls = QWidget(self)
        column = QVBoxLayout(controls)
        self.noise_panel = NoisePanel(self.session, controls)
        self.model_panel = ModelPanel(self.session, self.open_weights_dialog, controls, cancel=self.cancel)
        for title, panel in (("Noise", self.noise_panel), ("Model", self.model_panel)):
            box = QGroupBox(title, controls)
            QVBoxLayout(box).addWidget(panel)
            column.addWidget(box)
        column.addStretch(1)
        scroll = VerticalScrollArea(controls, self)
        self.metrics_plot = MetricsPlot(self.doc, self)
        self.sweep_plot = SweepPlot(self.analysis, self)
        self.mask_view = MaskView(self.analysis, self)
        self.figures = FiguresController(self.analysis, self)
        self.paper_plot = PaperFigurePlot(self.figures, self)
        self.features_plot = FeaturesPlot(self.figures, self)
        # The plot panels: each follows the theme, and each is closed with the window.
        self.plots = (self.metrics_plot, self.sweep_plot, self.mask_view, self.paper_plot, self.features_plot)
        specs = (
            ("controls", "Controls", scroll, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("metrics", "Metrics", self.metrics_plot, Qt.DockWidgetArea.RightDockWidgetArea),
            ("sweeps", "Sweeps", self.sweep_plot, Qt.DockWidgetArea.RightDockWidgetArea),
            ("masks", "Masks", self.mask_view, Qt.DockWidgetArea.RightDockWidgetArea),
            ("paper", "Paper figure", self.paper_plot, Qt.DockWidgetArea.RightDockWidgetArea),
            ("features", "Features", self.features_plot, Qt.DockWidgetArea.RightDockWidgetArea),
        )
        self.docks: list[QDockWidget] = []
        for name, title, widget, area in specs:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{name}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks.append(dock)
        self.tabifyDockWidget(self.docks[1], self.docks[2])
        self.tabifyDockWidget(self.docks[2], self.docks[3])
        self.tabifyDockWidget(self.docks[3], self.docks[4])
        self.tabifyDockWidget(self.docks[4], self.docks[5])
        self.docks[1].raise_()
        self.resizeDocks(
            [self.docks[0], self.docks[1]], [scroll.minimumSizeHint().width(), 430], Qt.Orientation.Horizontal
        )

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.busy = BusyIndicator(self)  # permanent: a status message must not hide it
        bar.addPermanentWidget(self.busy)
        self.run_progress = RunProgress(self.session.run_clock, self)
        bar.addPermanentWidget(self.run_progress)
        self.size_label, self.device_label, self.time_label = QLabel(), QLabel(), QLabel()
        for label in (self.size_label, self.device_label, self.time_label):
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
        self._update_status()

    def _connect(self) -> None:
        s, doc = self.session, self.doc
        s.message.connect(self.show_status)
        self.weights_guard = WeightsGuard(s, self)
        self.weights_guard.dropped.connect(self.show_error)
        self.weights_guard.unloadable.connect(self.forget_recent)
        s.run_failed.connect(self.show_error)
        s.running_changed.connect(self._update_cancel)
        s.running_changed.connect(self.run_progress.set_running)
        s.run_finished.connect(self.hide_error)
        s.image_opened.connect(self._image_opened)
        s.open_failed.connect(lambda path, why: self.show_error(f"Could not open {Path(path).name}: {why}"))
        s.opener.pending_changed.connect(lambda text: self.busy.set_task("open", text))
        s.result_opener.pending_changed.connect(lambda text: self.busy.set_task("result", text))
        s.opener.pending_changed.connect(self._update_cancel)
        self.compare.diff.pending_changed.connect(lambda text: self.busy.set_task("diff", text))
        self.analysis.attention_failed.connect(self.show_status)
        self.compare.canvas.clicked.connect(self._canvas_clicked)
        s.focus_provider = self.compare.canvas.centre_pixel
        self.theme.changed.connect(self.apply_theme)
        subscribe(
            self,
            [
                (doc.source_changed, self._source_changed),
                (doc.view_changed, self._view_changed),
                (doc.model_changed, lambda _m: self._update_status()),
                (doc.record_changed, lambda _k: self._update_status()),
                (doc.layers_changed, lambda _k: self._fill_save_menu()),
            ],
        )
        self.actions_.cancel.setEnabled(False)
        self._view_changed(doc.view)
        self.apply_theme(self.theme.dark)
        self._fill_recent_menu()

    # ------------------------------------------------------------------ document reactions

    def session_view(self, **changes: Any) -> None:
        """Change view settings (mode, A, B, difference reference)."""
        self.doc.update_view(**changes)

    def _view_changed(self, view: Any) -> None:
        self.actions_.modes[view.mode].setChecked(True)
        self.actions_.flip.setEnabled(view.mode == "toggle")  # elsewhere it flips unseen

    def _source_changed(self) -> None:
        self._update_title()
        self._update_status()
        self._fill_save_menu()

    def _update_title(self) -> None:
        name = self.doc.source_name or "no image"
        self.setWindowTitle(f"mdn workbench - {name}")

    def _update_status(self) -> None:
        size = self.doc.image_size
        self.size_label.setText(f"{size[1]} x {size[0]} px" if size else "no image")
        self.device_label.setText(f"device: {self.doc.model.device}")
        record = self.doc.records.get(MODEL_LAYERS[self.doc.model.model])
        if record is None and self.doc.records:
            record = list(self.doc.records.values())[-1]
        if record is None:
            self.time_label.setText("last run: -")
            return
        tiling = record.tiling_text()
        self.time_label.setText(f"last run: {record.seconds:.2f} s" + (f", {tiling}" if tiling else ""))

    def show_panel(self, name: str) -> None:
        """Bring a dock forward: ``controls``, ``metrics``, ``sweeps``, ``masks``, ``paper``, ``features``."""
        dock = self.findChild(QDockWidget, f"dock-{name}")
        if dock is None:
            raise ValueError(f"no panel named {name!r}")
        dock.show()
        dock.raise_()

    def _canvas_clicked(self, x: int, y: int) -> None:
        if self.mask_view.isVisible():
            self.mask_view.set_pixel(x, y)

    def apply_theme(self, dark: bool) -> None:
        for plot in self.plots:
            plot.apply_theme(dark)
        for theme, action in self.actions_.themes.items():
            action.setChecked(theme == self.theme.choice)

    def set_theme(self, choice: str) -> None:
        self.theme.set_choice(choice)
        if self.remember:
            self.settings.setValue("theme", choice)

    # ------------------------------------------------------------------ opening files

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def hide_error(self) -> None:
        """Hide the banner if it shows an error (a notice stays until dismissed)."""
        if self.banner.error:
            self.banner.hide()

    def show_error(self, text: str) -> None:
        self.banner.show_message(text, error=True)

    def open_path(self, path: str | Path, *, noisy: bool = False, weights: bool | None = None) -> bool:
        """Open an image or (``weights``, else by the suffix) a weights file; errors go to the banner.

        Returns:
            False when it failed; True when it opened, or (a large image) is being decoded
            in the worker, whose errors reach the banner later.
        """
        path = Path(path)
        if weights is None:
            weights = path.suffix.lower() in WEIGHT_SUFFIXES
        try:
            if not weights:
                self.session.open_image(path, noisy=noisy)  # lands through _image_opened
                return True
            self.session.open_weights(path)
            self.model_panel.refresh_choices()
        except (ImageReadError, OSError, ValueError) as exc:
            self.show_error(f"Could not open {path.name}: {exc}")
            return False
        self.banner.hide()  # also the notice about missing shipped weights
        self.add_recent(path, tag="weights")
        return True

    def cancel(self) -> None:
        """Cancel (Esc): stop the runs and the decoding of a large image, and say what stopped."""
        s = self.session
        running = [layer.label for layer in self.doc.layers.values() if layer.partial]
        what = (
            "the decoding of the image"
            if s.opener.pending
            else f"the run of the {' and the '.join(running)}"
            if running
            else "the run waiting for the noisy image"
            if s.running
            else ""
        )
        s.cancel()
        self.show_status(f"Cancelled {what}." if what else "Nothing was running.")

    def _update_cancel(self, *_args: object) -> None:
        """Cancel (Esc) stops runs and the decoding of a large image."""
        self.actions_.cancel.setEnabled(self.session.running or self.session.opener.pending)

    def _image_opened(self, path: str, noisy: bool) -> None:
        self.hide_error()
        self.add_recent(Path(path), tag="noisy" if noisy else "")

    def open_sample(self, name: str) -> None:
        self.session.open_sample(name)

    def open_image_dialog(self, noisy: bool = False) -> None:
        title = "Open a real noisy photo" if noisy else "Open a clean image"
        path, _ = QFileDialog.getOpenFileName(self, title, self._last_folder(), IMAGE_FILTER)
        if path:
            self.open_path(path, noisy=noisy)

    def open_result_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a result to compare", self._last_folder(), IMAGE_FILTER
        )
        if path:
            try:
                self.session.open_result(path)  # shown as B when it lands
            except (ImageReadError, OSError, ValueError) as exc:
                self.show_error(f"Could not open {Path(path).name}: {exc}")

    def open_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open weights", self._last_folder(), WEIGHTS_FILTER)
        if path:
            self.open_path(path, weights=True)  # the core tells weights by content, not by name

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_path(paths[0])
            event.acceptProposedAction()

    # ------------------------------------------------------------------ settings

    def _last_folder(self) -> str:
        return self.recent.last_folder()

    def recent_files(self) -> list[str]:
        return self.recent.files()

    def add_recent(self, path: Path, *, tag: str = "") -> None:
        if self.remember:
            self.recent.add(path, tag=tag)
            self._fill_recent_menu()

    def forget_recent(self, path: str) -> None:
        """Take a file that failed to load off File > Open Recent (and the saved list)."""
        self.recent.remove(path)
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        noisy, weights = self.recent.tagged("noisy"), self.recent.tagged("weights")
        items = [
            (
                Path(f).name + (" (noisy photo)" if f in noisy else ""),
                lambda f=f: self.open_path(f, noisy=f in noisy, weights=True if f in weights else None),
            )
            for f in self.recent_files()
        ]
        fill_menu(self.actions_.recent_menu, items, "(none yet)")

    def restore_settings(self) -> None:
        geometry, state = self.settings.value("geometry"), self.settings.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, SETTINGS_VERSION)

    def save_settings(self) -> None:
        if self.remember:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("state", self.saveState(SETTINGS_VERSION))
            self.settings.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, SETTINGS_VERSION)
        for dock in self.docks:
            dock.show()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._closed:
            super().closeEvent(event)
            return
        self._closed = True
        self.save_settings()
        self.analysis.cancel_sweep()
        for kind in FIGURE_KINDS:
            self.figures.cancel(kind)
        # Gone from the screen at once: stopping the workers waits for the tile being computed
        # (seconds for a large image run whole), and a frozen window read as a hang.
        self.hide()
        if self.exit_now is None:
            self.session.shutdown()
        elif not self.session.shutdown(CLOSE_WAIT_MS):
            # A tile cannot be interrupted (a minute for a large one on a CPU) and nothing the
            # user keeps depends on it (outputs are written whole, on this thread): end the
            # process now rather than linger unseen.
            self.settings.sync()
            self.exit_now(0)
        self.theme.changed.disconnect(self.apply_theme)
        for plot in self.plots:
            plot.close()
        super().closeEvent(event)
