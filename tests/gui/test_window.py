"""The main window: files, drag and drop, saving, layout memory, themes, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from mdn_gui.catalog import ModelCatalog
from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import SessionController
from mdn_gui.state import MASKED, NOISY
from mdn_gui.views.main_window import MainWindow
from mdn_gui.views.theme import ThemeManager
from model_core.imageio import read_image, write_image
from model_core.noise import NOISE_TYPES

TIMEOUT = 20_000


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


def test_missing_weights_are_announced_and_the_app_still_works(
    qtbot, make_window: Callable[..., MainWindow], tiny_weights: dict[str, Path]
) -> None:
    window = make_window(ModelCatalog())
    assert window.banner.isVisible() and not window.banner.error
    assert "not installed" in window.banner.label.text()
    assert window.doc.model.model == "nlm"
    assert not window.model_panel.model.model().item(0).isEnabled()  # masked: disabled, with a tooltip
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now()
    assert window.banner.isVisible()  # a notice survives successful runs
    assert window.open_path(tiny_weights["masked"])
    assert not window.banner.isVisible()
    assert window.doc.model.model == "custom" and window.model_panel.model.currentData() == "custom"


def test_open_by_path_updates_title_status_and_recent_files(window: MainWindow, tmp_path: Path) -> None:
    path = write_image(tmp_path / "flat.png", np.full((30, 50, 3), 0.4, np.float32))
    assert window.open_path(path)
    assert "flat.png" in window.windowTitle()
    assert window.size_label.text() == "50 x 30 px"
    assert window.recent_files()[0] == str(path.resolve())
    assert [a.text() for a in window.actions_.recent_menu.actions()] == ["flat.png"]


def test_bad_file_shows_a_message_and_keeps_the_session(window: MainWindow, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert not window.open_path(broken)
    assert window.banner.isVisible() and "broken.png" in window.banner.label.text()
    assert window.doc.source_name == "chart"


def test_drop_opens_images_and_weights(
    qtbot, window: MainWindow, tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    path = write_image(tmp_path / "dropped.png", np.full((20, 20, 3), 0.5, np.float32))
    for url, check in (
        (path, lambda: window.doc.source_name == "dropped.png"),
        (tiny_weights["baseline"], lambda: window.doc.model.model == "custom"),
    ):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(url))])
        event = QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        window.dropEvent(event)
        assert check()
    assert window.model_panel.model.currentData() == "custom"


def test_model_panel_says_how_far_the_weights_were_trained(window: MainWindow, tmp_path: Path) -> None:
    from model_core.network import SwinIRConfig, build_model
    from model_core.network.checkpoint import save_weights

    card = {"iterations": 1000, "patches_seen": 8000, "train_config": {"model_size": "tiny"}}
    path = save_weights(build_model(SwinIRConfig.tiny()), tmp_path / "mine.safetensors", card)
    window.session.open_weights(path)
    text = window.model_panel.weights.text()
    assert text.startswith("mine.safetensors: tiny size, trained 1,000 iterations")
    assert "% of the paper's training" in text


def test_run_from_the_window_then_save_and_export(qtbot, window: MainWindow, tmp_path: Path) -> None:
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.actions_.run.trigger()
        assert window.actions_.cancel.isEnabled()
    assert window.time_label.text().startswith("last run:") and "-" not in window.time_label.text()
    saved = window.save_layer(MASKED, tmp_path / "masked16.png", bit_depth=16)
    loaded = read_image(saved)
    assert loaded.bit_depth == 16 and loaded.shape == (64, 64)
    assert np.allclose(loaded.rgb, window.doc.layers[MASKED].image, atol=1 / 65535 + 1e-6)
    tiff = read_image(window.save_layer(NOISY, tmp_path / "noisy.tif", bit_depth=8))
    assert tiff.bit_depth == 8
    window.session_view(mode="side")
    exported = read_image(window.export_comparison(tmp_path / "comparison.png"))
    assert exported.shape == (64, 64 * 2 + 4)


def test_dock_layout_is_remembered(make_window: Callable[..., MainWindow], private_settings: Path) -> None:
    first = make_window()
    sweeps = first.findChild(type(first.docks[0]), "dock-sweeps")
    sweeps.setFloating(True)
    first.close()
    assert QSettings(str(private_settings), QSettings.Format.IniFormat).value("state") is not None
    second = make_window()
    assert second.findChild(type(second.docks[0]), "dock-sweeps").isFloating()
    second.reset_layout()
    assert not second.findChild(type(second.docks[0]), "dock-sweeps").isFloating()


def test_theme_switch_is_applied_and_saved(window: MainWindow, private_settings: Path, qapp) -> None:
    window.set_theme("dark")
    assert qapp.palette().window().color().lightness() < 100
    assert window.actions_.themes["dark"].isChecked()
    assert QSettings(str(private_settings), QSettings.Format.IniFormat).value("theme") == "dark"
    window.set_theme("light")
    assert qapp.palette().window().color().lightness() > 150


def test_clicking_the_image_probes_attention(qtbot, window: MainWindow) -> None:
    window.show_panel("masks")
    qtbot.waitUntil(window.mask_view.isVisible)
    with qtbot.waitSignal(window.analysis.attention_ready, timeout=TIMEOUT):
        window.compare.canvas.clicked.emit(5, 6)
    assert window.mask_view.pixel == (6, 5)


def test_closing_stops_the_worker(qtbot, window: MainWindow) -> None:
    window.session.set_model(tile=16, passes=32)
    window.session.run_now()
    window.close()
    assert not window.session.backend.is_running()


def test_real_photo_mode_disables_every_noise_control(window: MainWindow, chart: np.ndarray) -> None:
    panel = window.noise_panel
    window.session.load_array("photo", chart, noisy=True)
    buttons = [button for button, _ in panel._preset_buttons]
    assert buttons and not any(button.isEnabled() for button in buttons)
    assert not panel.kind.isEnabled() and not panel.level.isEnabled() and not panel.seed.isEnabled()
    window.session.load_array("chart", chart)
    assert all(button.isEnabled() for button in buttons)


def test_controls_fit_a_small_window_for_every_noise_type(window: MainWindow) -> None:
    """At 1000x700 nothing in the Controls panel is cut off on the right (QA saw the fifth
    paper button and the spin box arrows clipped)."""
    window.resize(1000, 700)
    scroll = window.docks[0].widget()
    assert isinstance(scroll, QScrollArea)
    for kind in NOISE_TYPES:
        window.session.set_noise(kind=kind)
        for _ in range(3):  # layout requests are posted events
            QApplication.processEvents()
        room = scroll.viewport().width()
        assert scroll.widget().minimumSizeHint().width() <= room, kind
        for button, _ in window.noise_panel._preset_buttons:
            right = button.mapTo(scroll.viewport(), QPoint(button.width(), 0)).x()
            assert right <= room, (kind, button.text())
