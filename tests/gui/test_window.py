"""The main window: files, drag and drop, saving, layout memory, themes, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QScrollArea

from mdn_gui.catalog import ModelCatalog
from mdn_gui.state import CLEAN, MASKED, NOISY
from mdn_gui.views.main_window import MainWindow
from model_core.imageio import read_image, write_image
from model_core.noise import NOISE_TYPES

TIMEOUT = 20_000


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


def test_theme_switch_recolours_the_mask_view(window: MainWindow) -> None:
    """QA: the Masks panel stayed white in the dark theme (and dark in the light one)."""
    views = (window.mask_view.main_view, window.mask_view.heat_view)
    window.set_theme("dark")
    assert all(view.backgroundBrush().color().lightness() < 100 for view in views)
    window.set_theme("light")
    assert all(view.backgroundBrush().color().lightness() > 150 for view in views)


def test_difference_picker_names_the_reference_it_uses(window: MainWindow, chart: np.ndarray) -> None:
    """QA: a real photo in diff mode showed |B - A| under a picker reading "|B - clean|"."""
    window.session_view(mode="diff")
    window.session.load_array("photo", chart, noisy=True)
    assert window.compare.diff_combo.currentData() == "before"
    window.session.load_array("chart", chart)
    assert window.compare.diff_combo.currentData() == "clean"


def test_a_layer_still_running_is_neither_saved_nor_exported(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: Save Layer B during a run wrote the noisy image with a few denoised tiles in it."""
    window.session.set_model(tile=16, passes=32)
    window.session.run_now()
    assert window.doc.layers[MASKED].partial
    for name, act in (("half.png", window.save_layer_dialog), ("cmp.png", window.export_dialog)):
        target = tmp_path / name
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, t=target: (str(t), ""))
        act() if act == window.export_dialog else act(MASKED)
        assert not target.exists()
        assert window.banner.error and "still running" in window.banner.label.text()
    window.session.cancel()


def test_save_dialog_adds_the_suffix_of_the_chosen_format(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: typing a name without an extension failed with "unsupported extension ''"."""
    chosen = (str(tmp_path / "result"), "TIFF, 16 bit (*.tif)")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a: chosen)
    window.save_layer_dialog(NOISY)
    assert read_image(tmp_path / "result.tif").bit_depth == 16
    assert not window.banner.isVisible()
    # The dialog asked about "result", not "result.tif": an existing result.tif is kept.
    before = (tmp_path / "result.tif").read_bytes()
    window.save_layer_dialog(CLEAN)
    assert (tmp_path / "result.tif").read_bytes() == before
    assert window.banner.error and "result.tif" in window.banner.label.text()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a: (str(tmp_path / "cmp"), "JPEG (*.jpg)"))
    window.export_dialog()
    assert (tmp_path / "cmp.jpg").exists() and not window.banner.isVisible()


def test_the_window_fits_a_1024_pixel_wide_screen(window: MainWindow) -> None:
    """QA: the window could not be made narrower than 1146 pixels (pickers and sweep buttons)."""
    window.resize(1024, 700)
    QApplication.processEvents()
    assert window.width() <= 1024
    window.show_panel("sweeps")
    QApplication.processEvents()
    for plot in window.sweep_plot.plots.values():  # titles and axes are not clipped
        assert plot.getPlotItem().minimumWidth() <= plot.viewport().width()
    picks = (window.compare.a_combo, window.compare.b_combo)
    window.resize(1600, 900)
    QApplication.processEvents()
    assert all(combo.width() >= 180 for combo in picks)  # long layer names get the room there is


def test_a_noisy_photo_reopens_from_recent_files_as_a_noisy_photo(window: MainWindow, tmp_path: Path) -> None:
    """QA: Open Recent opened a real noisy photo as a clean image, added noise to its noise
    and measured PSNR against it."""
    photo = write_image(tmp_path / "photo.png", np.full((30, 40, 3), 0.4, np.float32))
    clean = write_image(tmp_path / "clean.png", np.full((30, 40, 3), 0.6, np.float32))
    assert window.open_path(photo, noisy=True) and window.open_path(clean)
    labels = [a.text() for a in window.actions_.recent_menu.actions()]
    assert labels == ["clean.png", "photo.png (noisy photo)"]
    window.actions_.recent_menu.actions()[1].trigger()
    assert window.doc.source_name == "photo.png" and not window.doc.has_clean
    window.actions_.recent_menu.actions()[1].trigger()  # clean.png, now second
    assert window.doc.source_name == "clean.png" and window.doc.has_clean


def test_open_weights_takes_any_file_name(
    qtbot, window: MainWindow, tmp_path: Path, tiny_weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: a weights file named model.ckpt, picked under "All files" in Open Weights, was
    opened as an image ("cannot read image"); the core reads weights by content, not name."""
    path = tmp_path / "model.ckpt"
    path.write_bytes(tiny_weights["baseline"].read_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a: (str(path), "All files (*)"))
    window.open_weights_dialog()
    assert not window.banner.isVisible()
    assert window.doc.model.model == "custom" and window.session.catalog.custom == path
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now()
    window.session.open_weights(tiny_weights["masked"])
    window.actions_.recent_menu.actions()[0].trigger()  # reopens model.ckpt as weights
    assert not window.banner.isVisible() and window.session.catalog.custom == path


def test_untagged_recent_weights_still_open_as_weights(
    window: MainWindow, tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    """Review: entries saved before recent files were tagged lost the detection by suffix: a
    .safetensors entry opened as an image ("not a recognised image format")."""
    path = tmp_path / "old.safetensors"
    path.write_bytes(tiny_weights["baseline"].read_bytes())
    window.recent.add(path)  # no tag, as an older mdn-gui stored it
    window._fill_recent_menu()
    window.actions_.recent_menu.actions()[0].trigger()
    assert not window.banner.isVisible() and window.session.catalog.custom == path


def test_flip_is_offered_in_toggle_mode_only(window: MainWindow) -> None:
    """QA: Ctrl+T in split mode flipped a hidden state: toggle mode then opened on A, not B."""
    window.session_view(mode="split")
    window.actions_.flip.trigger()
    assert not window.actions_.flip.isEnabled() and window.compare.canvas.showing_b
    window.session_view(mode="toggle")
    assert window.actions_.flip.isEnabled()
    window.actions_.flip.trigger()
    assert not window.compare.canvas.showing_b
