"""Entry point of ``mdn-gui``, with a scripted start for reproducible teaching material.

Examples::

    mdn-gui                                    # opens on a sample image
    mdn-gui --open photo.png --noise poisson:2.5 --seed 1 --model masked --run \\
            --screenshot figure.png --quit     # renders a figure and exits
    mdn-gui --sample chart --weights my.safetensors --run   # a prepared session
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication

from mdn_gui.samples import DEFAULT_SAMPLE, SAMPLES
from mdn_gui.state import VIEW_MODES

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

SETTINGS_ENV = "MDN_GUI_SETTINGS"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="mdn-gui", description="Before/after workbench for masked-training denoisers."
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--open", metavar="IMAGE", type=Path, help="open an image as the clean reference")
    source.add_argument("--sample", choices=sorted(SAMPLES), help="open a built-in sample image")
    p.add_argument(
        "--as-noisy",
        action="store_true",
        help="treat the --open image as a real noisy photo (no clean reference, no synthetic noise)",
    )
    p.add_argument("--noise", metavar="TYPE:LEVEL", help="synthetic noise, e.g. gaussian:25 or poisson:2.5")
    p.add_argument("--seed", type=int, help="seed of the noise and of the masks")
    p.add_argument(
        "--model",
        choices=("masked", "baseline", "custom", "nlm", "bm3d"),
        help="denoiser (default: custom with --weights, else masked)",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        type=Path,
        help="weights file; with --model masked/baseline it replaces that model's weights",
    )
    p.add_argument("--attn-ratio", type=float, metavar="R", help="attention-mask ratio in [0, 0.95]")
    p.add_argument("--passes", type=int, help="stochastic passes")
    p.add_argument("--mode", choices=VIEW_MODES, help="comparison mode")
    p.add_argument("--panel", choices=("metrics", "sweeps", "masks"), help="plot panel to bring to the front")
    p.add_argument("--run", action="store_true", help="run the model once the window is up")
    p.add_argument(
        "--screenshot",
        metavar="FILE",
        type=Path,
        help="save a screenshot of the window (after the run, with --run)",
    )
    p.add_argument("--quit", action="store_true", help="quit when done (scripted use)")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme")
    p.add_argument("--size", metavar="WxH", help="window size, e.g. 1600x1000")
    p.add_argument(
        "--settings",
        metavar="FILE",
        type=Path,
        help=f"INI file for remembered layout and recent files (default: ${SETTINGS_ENV}, "
        "else the user's settings)",
    )
    args = p.parse_args(argv)
    if args.as_noisy and args.open is None:
        p.error("--as-noisy needs --open")
    if args.size and not _parse_size(args.size):
        p.error("--size must look like 1600x1000")
    if args.attn_ratio is not None and not 0 <= args.attn_ratio <= 0.95:
        p.error("--attn-ratio must be in [0, 0.95]")
    if args.noise:
        from model_core.noise import NoiseSpec

        try:
            NoiseSpec.parse(args.noise)
        except ValueError as exc:
            p.error(str(exc))
    return args


def _parse_size(text: str) -> tuple[int, int] | None:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    return int(width), int(height)


def make_settings(path: Path | None = None) -> QSettings:
    """Settings in an INI file when one is given (or named by $MDN_GUI_SETTINGS), else the user's."""
    path = path or (Path(os.environ[SETTINGS_ENV]) if os.environ.get(SETTINGS_ENV) else None)
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("mdn", "mdn-gui")


def configure_pyqtgraph() -> None:
    """pyqtgraph options, once at start-up: images are row-major like numpy."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class ScriptedStart(QObject):
    """Runs the steps of a scripted start once the event loop is going: run, screenshot, quit.

    Signals:
        finished (exit_code): the steps are done and ``--quit`` was given.
    """

    finished = Signal(int)

    def __init__(self, window: MainWindow, args: argparse.Namespace) -> None:
        super().__init__()
        self.window, self.args = window, args
        self.exit_code = 0

    def start(self, opened: bool = True) -> None:
        """Run the steps; ``opened`` False (a file could not be opened) fails a scripted run."""
        session = self.window.session
        if not opened and self.args.quit:
            print(f"mdn-gui: {self.window.banner.label.text()}", file=sys.stderr)
            self.exit_code = 2
            self._finish()
            return
        if self.args.run:
            session.run_finished.connect(self._run_finished)
            session.run_failed.connect(self._run_failed)
            if session.run_now() is None:
                return
        else:
            QTimer.singleShot(300, self._finish)

    def _run_finished(self, _key: str) -> None:
        QTimer.singleShot(300, self._finish)

    def _run_failed(self, message: str) -> None:
        print(f"mdn-gui: run failed: {message}", file=sys.stderr)
        self.exit_code = 1
        QTimer.singleShot(300, self._finish)

    def _finish(self) -> None:
        if self.args.screenshot is not None:
            self.args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(self.args.screenshot)):
                print(f"mdn-gui: could not write {self.args.screenshot}", file=sys.stderr)
                self.exit_code = 1
            else:
                print(f"mdn-gui: screenshot saved to {self.args.screenshot}")
        if self.args.quit:
            self.window.close()
            self.window.deleteLater()
            self.finished.emit(self.exit_code)


def build_window(args: argparse.Namespace, settings: QSettings) -> tuple[MainWindow, bool]:
    """Create the controllers and the window and apply the command line to them.

    Returns:
        The window, and whether every file named on the command line could be opened.
    """
    from mdn_gui.catalog import ModelCatalog
    from mdn_gui.controllers.analysis import AnalysisController
    from mdn_gui.controllers.session import SessionController
    from mdn_gui.views.main_window import MainWindow
    from mdn_gui.views.theme import ThemeManager

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    theme = ThemeManager(app, args.theme or str(settings.value("theme", "system")))
    catalog = ModelCatalog.discover()
    if args.weights is not None and args.model in ("masked", "baseline"):
        setattr(catalog, args.model, args.weights)
    session = SessionController(catalog=catalog)
    scripted = bool(args.run or args.screenshot or args.quit)
    session.auto_run = not scripted
    analysis = AnalysisController(session)
    window = MainWindow(session, analysis, settings, theme)
    window.remember = not args.quit
    session.setParent(window)
    analysis.setParent(window)
    if args.size:
        window.resize(*_parse_size(args.size))  # type: ignore[misc]
    opened = apply_arguments(window, args)
    window.model_panel.sync_auto()
    return window, opened


def apply_arguments(w: MainWindow, args: argparse.Namespace) -> bool:
    """Open the image and set noise, model and view as the command line asks.

    Returns:
        False when a file named on the command line could not be opened (the window says why).
    """
    ok = True
    session = w.session
    if args.weights is not None and args.model not in ("masked", "baseline"):
        ok = w.open_path(args.weights)
    noise: dict[str, object] = {}
    if args.noise:
        from model_core.noise import NoiseSpec

        spec = NoiseSpec.parse(args.noise)
        noise.update(kind=spec.kind, level=spec.level)
    if args.seed is not None:
        noise["seed"] = args.seed
    session.doc.update_noise(**noise)
    model: dict[str, object] = {}
    if args.model:
        model["model"] = args.model
    for name, value in (("attn_ratio", args.attn_ratio), ("passes", args.passes), ("seed", args.seed)):
        if value is not None:
            model[name] = value
    if model:
        session.set_model(**model)
    if args.open is not None:
        if not w.open_path(args.open, noisy=args.as_noisy):
            ok = False
            session.open_sample(DEFAULT_SAMPLE)
    else:
        session.open_sample(args.sample or DEFAULT_SAMPLE)
    if args.mode:
        session.doc.update_view(mode=args.mode)
    if args.panel:
        w.show_panel(args.panel)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Start the workbench; returns the exit code."""
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("mdn-gui")
    app.setOrganizationName("mdn")
    configure_pyqtgraph()
    window, opened = build_window(args, make_settings(args.settings))
    window.show()
    script = ScriptedStart(window, args)
    QTimer.singleShot(0, lambda: script.start(opened))
    if args.quit:
        # A local loop, not app.exec(): exiting the application's loop would stop every
        # later event loop in this process (which matters when main() runs inside tests).
        loop = QEventLoop()
        script.finished.connect(loop.exit)
        return loop.exec()
    code = app.exec()
    return script.exit_code or code


if __name__ == "__main__":
    sys.exit(main())
