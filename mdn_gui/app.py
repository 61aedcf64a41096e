"""Entry point of ``mdn-gui``, with a scripted start for reproducible teaching material.

Examples::

    mdn-gui                                    # opens on a sample image
    mdn-gui --open photo.png --noise poisson:2.5 --seed 1 --model masked --run \\
            --screenshot figure.png --quit     # renders a figure and exits
                                               # (add --overwrite to replace figure.png)
    mdn-gui --sample chart --weights my.safetensors --run   # a prepared session
    mdn-gui --lesson 2 --screenshot step2.png --quit       # a step of the tour, set up and run
    mdn-gui --export-lessons slides/           # every step as a PNG, and slides/lessons.html
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from mdn_gui.lessons import LESSONS
from mdn_gui.samples import DEFAULT_SAMPLE, SAMPLES
from mdn_gui.scripted import ScriptedStart, close_window, report
from mdn_gui.state import MAX_PASSES, MAX_SEED, VIEW_MODES
from model_core.argparsing import OneLineParser, int_in

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

SETTINGS_ENV = "MDN_GUI_SETTINGS"
# A window size Qt can allocate (a 100000x100000 window crashes it).
MIN_SIDE, MAX_SIDE = 100, 8192
SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring); bad values exit with a one-line usage error."""
    p = _parser()
    args = p.parse_args(argv)
    problem = _problem(args)
    if problem:
        p.error(problem)
    return args


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
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
    p.add_argument(
        "--seed",
        type=int_in(0, MAX_SEED),
        metavar="N",
        help=f"seed of the noise and of the masks (0 to {MAX_SEED})",
    )
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
    p.add_argument(
        "--attn-mask", "--attn-ratio", dest="attn_ratio", type=float, metavar="R",
        help="attention-mask ratio in [0, 0.95] (as mdn denoise --attn-mask)",
    )
    p.add_argument(
        "--passes", type=int_in(1, MAX_PASSES), metavar="N", help=f"stochastic passes (1 to {MAX_PASSES})"
    )
    p.add_argument("--mode", choices=VIEW_MODES, help="comparison mode")
    p.add_argument("--panel", choices=("metrics", "sweeps", "masks"), help="plot panel to bring to the front")
    p.add_argument("--run", action="store_true", help="run the model once the window is up")
    tour = p.add_mutually_exclusive_group()
    tour.add_argument(
        "--lesson",
        type=int_in(1, len(LESSONS)),
        metavar="N",
        help=f"open at step N of the tour (1 to {len(LESSONS)}), set up and run",
    )
    tour.add_argument(
        "--export-lessons",
        metavar="DIR",
        type=Path,
        help="write every step of the tour as DIR/lesson-NN.png and the handout DIR/lessons.html, then quit",
    )
    p.add_argument(
        "--screenshot",
        metavar="FILE",
        type=Path,
        help="save a screenshot of the window (after the run, with --run); an existing file is kept "
        "unless --overwrite is given",
    )
    p.add_argument("--overwrite", action="store_true", help="let --screenshot replace an existing file")
    p.add_argument("--quit", action="store_true", help="quit when done (scripted use)")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme")
    p.add_argument(
        "--size", metavar="WxH", help=f"window size, e.g. 1600x1000 ({MIN_SIDE} to {MAX_SIDE} pixels a side)"
    )
    p.add_argument(
        "--settings",
        metavar="FILE",
        type=Path,
        help=f"INI file for remembered layout and recent files (default: ${SETTINGS_ENV}, "
        "else the user's settings)",
    )
    return p


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with parsed options that argparse cannot check by itself, if anything."""
    if args.as_noisy and args.open is None:
        return "--as-noisy needs --open"
    size = _parse_size(args.size) if args.size else None
    if args.size and size is None:
        return f"--size must look like 1600x1000, got {args.size!r}"
    if size is not None and not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
        return f"--size must be {MIN_SIDE} to {MAX_SIDE} pixels a side, got {args.size}"
    if args.attn_ratio is not None and not 0 <= args.attn_ratio <= 0.95:  # also rejects nan
        return f"--attn-mask (--attn-ratio) must be in [0, 0.95], got {args.attn_ratio}"
    if args.noise:
        from model_core.noise import NoiseSpec

        try:
            NoiseSpec.parse(args.noise)
        except ValueError as exc:
            return str(exc)
    if args.export_lessons is not None:
        return _export_problem(args.export_lessons, args.overwrite)
    if args.screenshot is not None:
        return _screenshot_problem(args.screenshot, args.overwrite)
    return None


def _export_problem(folder: Path, overwrite: bool) -> str | None:
    """Why ``--export-lessons folder`` cannot be written, checked before any work is done."""
    from mdn_gui.lesson_export import export_paths

    if folder.exists() and not folder.is_dir():
        return f"--export-lessons {folder} is a file, not a folder"
    existing = [p.name for p in export_paths(folder, len(LESSONS)) if p.exists()]
    if existing and not overwrite:
        return f"--export-lessons {folder} already holds {existing[0]}; pass --overwrite to replace it"
    return None


def _screenshot_problem(path: Path, overwrite: bool) -> str | None:
    """Why ``--screenshot path`` cannot be written, checked before any work is done."""
    if path.suffix.lower() not in SCREENSHOT_SUFFIXES:
        return f"--screenshot must end in one of {', '.join(SCREENSHOT_SUFFIXES)}, got {path.name!r}"
    if path.is_dir():
        return f"--screenshot {path} is a folder"
    if path.exists() and not overwrite:
        return f"--screenshot {path} exists; pass --overwrite to replace it"
    folder = next((f for f in (path.parent, *path.parent.parents) if f.exists()), None)
    if folder is not None and not folder.is_dir():
        return f"--screenshot {path}: {folder} is a file, not a folder"
    return None


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


def build_window(args: argparse.Namespace, settings: QSettings) -> MainWindow:
    """Create the controllers and the window (:func:`apply_arguments` then applies the options)."""
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
    scripted = bool(args.run or args.screenshot or args.quit or args.lesson or args.export_lessons)
    session.auto_run = not scripted
    try:
        analysis = AnalysisController(session)
        window = MainWindow(session, analysis, settings, theme)
    except BaseException:
        session.shutdown()  # a running thread must not be destroyed with its controller
        raise
    window.remember = not (args.quit or args.export_lessons)
    window.tour.lessons.remember = window.remember
    session.setParent(window)
    analysis.setParent(window)
    if args.size:
        window.resize(*_parse_size(args.size))  # type: ignore[misc]
    return window


def apply_arguments(w: MainWindow, args: argparse.Namespace) -> bool:
    """Open the image and set noise, model and view as the command line asks.

    Returns:
        False when a file named on the command line could not be opened (the window says why).
    """
    ok = True
    session = w.session
    if args.weights is not None and args.model not in ("masked", "baseline"):
        ok = w.open_path(args.weights, weights=True)
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
    w.model_panel.sync_auto()
    return ok


def exit_at_once(code: int) -> None:
    """End the process now, worker threads and all (their output is not needed: see
    :meth:`MainWindow.closeEvent`)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(code)


def launch() -> None:
    """The ``mdn-gui`` command: :func:`main`, allowed to end the process within a second of
    closing the window even while a tile is being computed."""
    sys.exit(main(exit_now=exit_at_once))


def main(argv: Sequence[str] | None = None, exit_now: Callable[[int], None] | None = None) -> int:
    """Start the workbench; returns the exit code.

    Args:
        argv: Command-line arguments (None: ``sys.argv``).
        exit_now: Called to end the process when closing cannot stop the workers at once
            (None: closing waits for them, as tests and embedding need).
    """
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("mdn-gui")
    app.setOrganizationName("mdn")
    configure_pyqtgraph()
    window = build_window(args, make_settings(args.settings))
    window.exit_now = exit_now
    try:
        opened = apply_arguments(window, args)
    except Exception as exc:  # noqa: BLE001 - options are validated: this is a bug, still end cleanly
        report("could not apply the command line", exc)
        close_window(window)
        return 2
    window.show()
    if args.export_lessons is not None:
        return _export(window, args)
    script = ScriptedStart(window, args)
    QTimer.singleShot(0, lambda: script.start(opened))
    if _welcome_due(window, args):
        from mdn_gui.views.tour import first_launch

        if first_launch(window):
            QTimer.singleShot(0, window.tour.welcome)
    if args.quit:
        # A local loop, not app.exec(): exiting the application's loop would stop every
        # later event loop in this process (which matters when main() runs inside tests).
        loop = QEventLoop()
        script.finished.connect(loop.exit)
        return loop.exec()
    code = app.exec()
    return script.exit_code or code


def _welcome_due(window: MainWindow, args: argparse.Namespace) -> bool:
    """A plain start (no image, noise, model or script named) may greet a first-time user."""
    named = (args.open, args.sample, args.noise, args.model, args.weights, args.lesson)
    return window.remember and not args.run and all(value is None for value in named)


def _export(window: MainWindow, args: argparse.Namespace) -> int:
    """Run ``--export-lessons`` in a local event loop; returns the exit code."""
    from mdn_gui.lesson_export import LessonExport

    export = LessonExport(window, args.export_lessons, overwrite=args.overwrite)
    loop = QEventLoop()
    export.finished.connect(loop.exit)
    QTimer.singleShot(0, export.start)
    return loop.exec()


if __name__ == "__main__":
    sys.exit(main())
