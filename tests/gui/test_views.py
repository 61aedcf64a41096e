"""The views: canvas interaction, comparison modes, plots and mask visualisations."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage

from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import SessionController
from mdn_gui.plots.mask_view import MaskView, block_description
from mdn_gui.plots.metrics_plot import MetricsPlot, bar_heights
from mdn_gui.plots.sweep_plot import SweepPlot
from mdn_gui.state import MASKED, NOISY
from mdn_gui.views.canvas import ImageCanvas
from mdn_gui.views.compare_view import CompareView
from mdn_gui.views.convert import to_qimage

TIMEOUT = 20_000


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    image = to_qimage(np.random.default_rng(0).random((60, 80, 3), np.float32))
    c.set_images(image, image, ("A", "B"))
    c.show()
    qtbot.waitExposed(c)
    return c


def test_to_qimage_keeps_pixels() -> None:
    image = np.zeros((3, 5, 3), np.float32)
    image[1, 2] = (1.0, 0.5, 0.0)
    q = to_qimage(image)
    assert (q.width(), q.height(), q.format()) == (5, 3, QImage.Format.Format_RGB888)
    assert q.pixelColor(2, 1).getRgb()[:3] == (255, 128, 0)
    assert to_qimage(np.zeros((4, 4), np.float32)).format() == QImage.Format.Format_Grayscale8


def test_split_divider_moves_by_keyboard(qtbot, canvas: ImageCanvas) -> None:
    assert canvas.mode == "split" and canvas.split == 0.5
    with qtbot.waitSignal(canvas.split_moved):
        qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert canvas.split == pytest.approx(0.52)
    qtbot.keyClick(canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.split == pytest.approx(0.42)
    qtbot.keyClick(canvas, Qt.Key.Key_Home)
    assert canvas.split == 0.0
    qtbot.keyClick(canvas, Qt.Key.Key_End)
    assert canvas.split == 1.0


def test_split_divider_drags_with_the_mouse(qtbot, canvas: ImageCanvas) -> None:
    x = round(canvas.width() * canvas.split)
    y = canvas.height() // 2
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    qtbot.mouseMove(canvas, QPoint(100, y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(100, y))
    assert canvas.split == pytest.approx(100 / canvas.width(), abs=0.01)


def test_wheel_zoom_keeps_the_point_under_the_cursor(qtbot, canvas: ImageCanvas) -> None:
    from PySide6.QtGui import QWheelEvent

    anchor = QPointF(150, 120)
    before = canvas.map_to_image(anchor)
    zoom = canvas.zoom
    event = QWheelEvent(
        anchor,
        canvas.mapToGlobal(anchor),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    canvas.wheelEvent(event)
    assert canvas.zoom == pytest.approx(zoom * 1.25)
    assert canvas.map_to_image(anchor) == before
    canvas.actual_size()
    assert canvas.zoom == 1.0
    canvas.fit()
    assert canvas.centre_pixel() == (30, 40)
    assert canvas.zoom == pytest.approx(min(400 / 80, 300 / 60))


def test_toggle_mode_flips_with_one_key(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_mode("toggle")
    assert canvas.showing_b
    with qtbot.waitSignal(canvas.toggled) as blocker:
        qtbot.keyClick(canvas, Qt.Key.Key_T)
    assert blocker.args == [False]
    qtbot.keyClick(canvas, Qt.Key.Key_Space)
    assert canvas.showing_b


def test_side_by_side_viewports_share_the_transform(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_mode("side")
    left, right = canvas.viewports()
    pos = QPointF(40, 100)
    assert canvas.map_to_image(left.topLeft() + pos) == canvas.map_to_image(right.topLeft() + pos)


def test_click_reports_the_image_pixel(qtbot, canvas: ImageCanvas) -> None:
    canvas.actual_size()
    canvas.set_split(1.0)
    target = canvas.viewports()[0].center().toPoint()
    expected = canvas.map_to_image(QPointF(target))
    with qtbot.waitSignal(canvas.clicked) as blocker:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=target)
    assert tuple(blocker.args) == expected


def test_compare_view_modes_readout_and_export(qtbot, session: SessionController) -> None:
    view = CompareView(session.doc, session.doc.update_view)
    qtbot.addWidget(view)
    view.resize(500, 400)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    assert session.doc.shown_pair() == (NOISY, MASKED)
    assert view.b_combo.currentData() == MASKED
    assert view.export_array().shape == (64, 64, 3)
    session.doc.update_view(mode="side")
    assert view.canvas.mode == "side" and view.export_array().shape == (64, 64 * 2 + 4, 3)
    session.doc.update_view(mode="diff")
    assert view.canvas._colorbar is not None and view.diff_combo.isEnabled()
    heat = view.export_array()
    assert heat.shape == (64, 64, 3) and heat.std() > 0
    view._show_readout(3, 4)
    assert "x    3  y    4" in view.readout.text()
    view.swap()
    assert session.doc.shown_pair() == (MASKED, NOISY)


def test_metrics_plot_has_a_bar_per_measured_layer(qtbot, session: SessionController) -> None:
    plot = MetricsPlot(session.doc)
    qtbot.addWidget(plot)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    qtbot.waitUntil(lambda: len(plot.rows()) == 2, timeout=TIMEOUT)
    assert [r[0] for r in plot.rows()] == [NOISY, MASKED]


def test_sweep_plot_draws_points(qtbot, session: SessionController) -> None:
    analysis = AnalysisController(session)
    plot = SweepPlot(analysis)
    qtbot.addWidget(plot)
    # Before a sweep the axes already span what it will cover (not pyqtgraph's -0.5..0.5).
    (x0, x1), (y0, y1) = plot.plots["attention"].viewRange()
    assert x0 <= 0 and x1 >= 95 and y0 >= 10 and y1 <= 45
    session.set_noise(kind="speckle")
    (x0, x1), _ = plot.plots["noise"].viewRange()
    assert x0 <= 0.018 and 0.04 <= x1 < 0.1
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("attention", xs=(0.25, 0.75))
    assert plot.point_count("attention") == 4
    assert set(plot.curves["attention"]) == {"masked model", "baseline model"}
    plot.apply_theme(True)
    assert plot.point_count("attention") == 4


def test_mask_view_shows_keep_maps_input_mask_std_and_attention(qtbot, session: SessionController) -> None:
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    assert "Run a network" in view.info.text()
    session.set_model(input_ratio=0.5, passes=2)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    assert view.block.maximum() == 3
    view.block.setValue(1)
    assert "block 2 of 4" in view.info.text() and "kept" in view.info.text()
    assert view.block_label.text() == "2 / 4" and view.block_row.isVisibleTo(view)
    shown = view.image_item.image
    assert shown is not None and shown.shape == (64, 64, 3)
    view.set_mode("input")
    assert "kept" in view.info.text()
    assert not view.block_row.isVisibleTo(view)  # the input mask has no blocks
    view.set_mode("std")
    assert view.heat_item.image.shape == (64, 64) and "standard deviation" in view.info.text()
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT):
        view.set_pixel(20, 10)
    assert view.current_mode() == "attention" and "Pixel x 20, y 10" in view.info.text()
    assert view.heat_item.image.shape == (4, 4)
    # Heads count from 1, as the info text counts blocks.
    assert view.head.minimum() == 1 and view.head.maximum() >= 1
    assert view.block_row.isVisibleTo(view)


def test_block_description_names_groups_and_shifts() -> None:
    assert block_description(7, (6, 6, 6, 6)) == "block 8 of 24: group 2, block 2, shifted windows"


def test_identical_images_read_infinity_in_the_overlay_and_in_the_bars(
    qtbot, session: SessionController
) -> None:
    """Noise level 0: the noisy image is the clean one, and both places say so alike."""
    plot = MetricsPlot(session.doc)
    view = CompareView(session.doc, session.doc.update_view)
    qtbot.addWidget(plot)
    qtbot.addWidget(view)
    clean = session.doc.clean
    assert clean is not None
    session.load_array("8-bit", (np.round(clean * 255) / 255).astype(np.float32))  # as photos are
    session.set_noise(kind="gaussian", level=0.0)
    qtbot.waitUntil(lambda: bool(plot.rows()) and plot.rows()[0][2] == float("inf"), timeout=TIMEOUT)
    items = plot.psnr_plot.getPlotItem().items
    assert [item.textItem.toPlainText() for item in items if isinstance(item, pg.TextItem)] == ["∞"]
    assert view.label(NOISY).endswith("  ∞ dB")
    assert bar_heights([float("inf"), 20.0]) == [50.0, 20.0]  # tops the others, never 'inf' high
    assert bar_heights([float("inf"), 60.0]) == [75.0, 60.0]


def test_corner_labels_are_elided_and_never_overlap(qtbot, canvas: ImageCanvas) -> None:
    """QA: in a narrow split view the A label ran under the B label (PSNRs unreadable)."""
    image = to_qimage(np.zeros((60, 80, 3), np.float32))
    canvas.set_images(image, image, ("A: noisy (poisson:2.5)  19.61 dB", "B: my_finetuned_weights  28.54 dB"))
    canvas.resize(300, 200)
    (a_text, a_box), (b_text, b_box) = canvas.label_boxes()
    assert not a_box.intersects(b_box)
    assert a_text.endswith("19.61 dB") and b_text.endswith("28.54 dB")  # the number survives
    canvas.set_mode("side")
    for (_, box), viewport in zip(canvas.label_boxes(), canvas.viewports(), strict=True):
        assert viewport.contains(box)


def test_a_painted_tile_converts_only_that_tile(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: every tile of a run converted the whole layer for display on the GUI thread
    (0.3 s a tile for a 12 MP photo on a busy CPU, the window lagged through the run)."""
    from mdn_gui.state import CLEAN, Document
    from mdn_gui.views import compare_view
    from mdn_gui.views.convert import from_qimage

    doc = Document()
    image = np.random.default_rng(0).random((96, 128, 3), dtype=np.float32)
    doc.set_source("photo", image)
    doc.set_layer(NOISY, image.copy())
    doc.set_layer(MASKED, image.copy(), partial=True)
    doc.update_view(a=NOISY, b=MASKED)
    view = CompareView(doc, doc.update_view)
    qtbot.addWidget(view)
    converted: list[tuple[int, ...]] = []
    original = compare_view.to_qimage
    monkeypatch.setattr(compare_view, "to_qimage", lambda a: converted.append(a.shape) or original(a))
    tile = np.zeros((32, 32, 3), np.float32)
    doc.paste_tile(MASKED, (16, 32, 48, 64), tile)
    assert converted == [(32, 32, 3)]
    shown = from_qimage(view.qimage(MASKED))
    assert (shown[16:48, 32:64] == 0).all() and shown[:16].any() and shown[:, :32].any()
    # A layer replaced while hidden is converted anew before its tiles are painted into it.
    doc.update_view(b=CLEAN)
    doc.set_layer(MASKED, np.ones_like(image), partial=True)
    doc.paste_tile(MASKED, (0, 0, 32, 32), tile)
    doc.update_view(b=MASKED)
    shown = from_qimage(view.qimage(MASKED))
    assert (shown[:32, :32] == 0).all() and (shown[32:] == 255).all()


def test_attention_probes_the_network_whose_blocks_the_slider_shows(
    qtbot, session: SessionController, tmp_path
) -> None:
    """QA: after a run of a 16-block model, selecting a 4-block weights file and clicking a
    pixel at block 13 failed: "probe blocks [12] out of range: the network has 4 blocks"."""
    import torch

    from model_core.network import SwinIRConfig, build_model
    from model_core.network.checkpoint import save_weights

    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()  # the tiny masked model: 4 blocks
    torch.manual_seed(2)
    small = SwinIRConfig(embed_dim=12, depths=(2,), num_heads=(2,), window_size=4, img_size=16)
    session.open_weights(save_weights(build_model(small), tmp_path / "small.safetensors", {}))
    failed: list[str] = []
    analysis.attention_failed.connect(failed.append)
    view.block.setValue(3)
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT) as blocker:
        view.set_pixel(20, 10)
    assert failed == [] and blocker.args[0].block == 3
    assert "block 4 of 4" in view.info.text()
