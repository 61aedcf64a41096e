"""Fixtures of the GUI tests: offscreen Qt, tiny models, private settings, leak checks."""

from __future__ import annotations

import os

# Before any QApplication exists: no display is needed, and the worker gets one thread
# so that the tests stay quick on a busy two-core machine.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MDN_GUI_THREADS", "1")

import dataclasses  # noqa: E402
import gc  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from mdn_gui import lessons as lesson_data  # noqa: E402
from mdn_gui.app import configure_pyqtgraph  # noqa: E402
from mdn_gui.catalog import ModelCatalog  # noqa: E402
from mdn_gui.controllers.analysis import AnalysisController  # noqa: E402
from mdn_gui.controllers.session import SessionController  # noqa: E402
from mdn_gui.samples import make_chart  # noqa: E402
from mdn_gui.views.main_window import MainWindow  # noqa: E402
from mdn_gui.views.theme import ThemeManager  # noqa: E402
from model_core.network import SwinIRConfig, build_model  # noqa: E402
from model_core.network.checkpoint import save_weights  # noqa: E402

configure_pyqtgraph()


def save_tiny(path: Path, seed: int) -> Path:
    """A tiny random masked SwinIR saved with the core's own writer."""
    torch.manual_seed(seed)
    return save_weights(build_model(SwinIRConfig.tiny()), path, {"name": path.stem})


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different tiny models standing in for the shipped masked and baseline weights."""
    folder = tmp_path_factory.mktemp("weights")
    return {
        "masked": save_tiny(folder / "masked.safetensors", 0),
        "baseline": save_tiny(folder / "baseline.safetensors", 1),
    }


@pytest.fixture
def catalog(tiny_weights: dict[str, Path]) -> ModelCatalog:
    return ModelCatalog(masked=tiny_weights["masked"], baseline=tiny_weights["baseline"])


@pytest.fixture
def chart() -> np.ndarray:
    """A small clean image: 64x64 keeps every model run well under a second."""
    return make_chart(64)


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings go to a temporary INI file, never to the user's."""
    path = tmp_path / "settings" / "mdn-gui.ini"
    monkeypatch.setenv("MDN_GUI_SETTINGS", str(path))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QCoreApplication.setOrganizationName("mdn-tests")
    yield path


@pytest.fixture(autouse=True)
def our_warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", module=r"mdn_gui(\..*)?")
        yield


@pytest.fixture(autouse=True)
def find_leaks(request: pytest.FixtureRequest, qapp: QApplication) -> Iterator[None]:
    """Fail when a test leaves top-level widgets behind (after pending deletions ran)."""
    before = len(qapp.topLevelWidgets())
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        return
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    remaining = qapp.topLevelWidgets()
    if len(remaining) > before:  # maybe only Python still holds them: collect and look again
        gc.collect()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        remaining = qapp.topLevelWidgets()
    if len(remaining) > before:
        names = ", ".join(f"{type(w).__name__}({w.objectName()!r})" for w in remaining)
        raise AssertionError(
            f"{len(remaining) - before} top-level widget(s) leaked by {request.node.name}: {names}"
        )


@pytest.fixture
def session(qtbot, catalog: ModelCatalog, chart: np.ndarray) -> Iterator[SessionController]:
    s = SessionController(catalog=catalog, debounce_ms=30)
    s.auto_run = False
    s.load_array("chart", chart)
    yield s
    s.shutdown()


@pytest.fixture
def make_window(
    qtbot, qapp: QApplication, catalog: ModelCatalog, chart: np.ndarray, private_settings: Path
) -> Iterator[Callable[..., MainWindow]]:
    """Builds windows that share one settings file (as two runs of the app would)."""
    themes: list[ThemeManager] = []

    def make(models: ModelCatalog | None = None) -> MainWindow:
        session = SessionController(catalog=models or catalog, debounce_ms=30)
        session.auto_run = False
        theme = ThemeManager(qapp, "light")
        themes.append(theme)
        window = MainWindow(
            session,
            AnalysisController(session),
            QSettings(str(private_settings), QSettings.Format.IniFormat),
            theme,
        )
        session.setParent(window)
        window.analysis.setParent(window)
        qtbot.addWidget(window)
        session.load_array("chart", chart)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make
    for theme in themes:
        theme.deleteLater()


@pytest.fixture
def window(make_window: Callable[..., MainWindow]) -> MainWindow:
    return make_window()


@pytest.fixture
def small_lessons(monkeypatch: pytest.MonkeyPatch) -> tuple[lesson_data.Lesson, ...]:
    """The real steps on the tests' 64x64 chart (loaded as "chart"), with 2 passes, not 8."""
    small = tuple(
        dataclasses.replace(lesson, sample="chart", passes=min(lesson.passes, 2))
        for lesson in lesson_data.LESSONS
    )
    monkeypatch.setattr(lesson_data, "LESSONS", small)
    return small
