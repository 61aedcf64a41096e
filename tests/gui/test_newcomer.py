"""What a newcomer found in the window (issue 12, item 5), one test per defect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtWidgets import QToolButton

from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import SessionController
from mdn_gui.plots.mask_view import MaskView, window_marks
from mdn_gui.plots.sweep_plot import SweepPlot
from mdn_gui.views.canvas import ImageCanvas
from mdn_gui.views.convert import colorbar_qimage, to_qimage
from mdn_gui.views.main_window import MainWindow
from mdn_gui.views.tour import WELCOME

TIMEOUT = 30_000


def test_diff_mode_at_the_fitted_zoom_shows_the_right_edge(qtbot) -> None:
    """The colour bar took 70 pixels from a view fitted without it: the image's right edge was cut."""
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(600, 400)
    wide = to_qimage(np.random.default_rng(0).random((60, 400, 3), np.float32))
    canvas.set_images(wide, wide)
    canvas.set_mode("diff")
    canvas.set_colorbar(colorbar_qimage(), "10", "0", "mean |difference|")
    viewport = canvas.viewports()[0]
    right = canvas._offset.x() + 400 * canvas.zoom
    assert right <= viewport.width() + 0.5
    assert canvas._offset.x() >= -0.5  # and the left edge too


def test_weights_that_cannot_load_are_dropped_not_retried(qtbot, window: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not weights at all")
    assert window.open_path(bad, weights=True)
    with qtbot.waitSignal(window.session.run_failed, timeout=TIMEOUT):
        window.session.run_now()
    session = window.session
    assert session.catalog.custom is None and session.doc.model.model == "masked"
    assert "no longer selected" in window.banner.label.text() and window.banner.error
    assert window.model_panel.model.currentData() == "masked"
    assert session.doc.view.b != "custom"
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):  # the next Run works
        session.run_now()
    assert session.doc.shown_pair()[1] == "masked"


def test_attention_heatmap_counts_window_tokens_and_marks_query_and_dropped(
    qtbot, session: SessionController
) -> None:
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    view.resize(400, 700)
    view.show()
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT):
        view.set_pixel(21, 13)
    ws = view.attention.weights.shape[-1]
    # The window's ws x ws tokens fill the view along its tighter axis (square cells: the
    # other axis has room to spare, centred on the window) and are all shown.
    (x0, x1), (y0, y1) = view.heat_plot.viewRange()
    assert min(x1 - x0, y1 - y0) == pytest.approx(ws, abs=0.01)
    assert x0 <= 0.01 and x1 >= ws - 0.01 and y0 <= 0.01 and y1 >= ws - 0.01
    assert (x0 + x1) / 2 == pytest.approx(ws / 2, abs=0.01)
    assert (y0 + y1) / 2 == pytest.approx(ws / 2, abs=0.01)
    xs, ys = view.heat_query.getData()
    row, col = int(ys[0]), int(xs[0])
    assert view.attention.key_rows[row, col] == 13 and view.attention.key_cols[row, col] == 21
    _, dropped = window_marks(view.attention)
    assert len(view.heat_dropped.getData()[0]) == len(dropped) > 0
    for r, c in dropped:  # each cross sits on a key whose keep-map entry is 0
        y, x = view.attention.key_rows[r, c], view.attention.key_cols[r, c]
        assert view.attention.keep_map[y - view.attention.crop[0], x - view.attention.crop[1]] == 0


def test_std_map_shows_no_axes_running_outside_the_image(qtbot, session: SessionController) -> None:
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    view.resize(300, 800)  # a tall narrow dock: the locked aspect widened the y range
    view.show()
    session.set_model(passes=2)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    view.set_mode("std")
    plot = view.heat_plot
    assert not plot.getAxis("bottom").isVisible() and not plot.getAxis("left").isVisible()
    view.set_mode("attention")
    assert plot.getAxis("bottom").isVisible()


def test_sweep_legend_stays_off_the_curves_and_the_level_title_names_the_noise(
    qtbot, session: SessionController
) -> None:
    analysis = AnalysisController(session)
    plot = SweepPlot(analysis)
    qtbot.addWidget(plot)
    assert plot.plots["noise"].getPlotItem().titleLabel.text == "PSNR vs gaussian level"
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("noise", xs=(15.0, 25.0))
    item = plot.plots["noise"].getPlotItem()
    assert item.legend is None  # no legend drawn over the data
    legend = plot.legends["noise"].text().replace("&nbsp;", " ")
    assert "masked model" in legend and "baseline model" in legend
    assert item.titleLabel.text == "PSNR vs gaussian level (seed 0)"


def test_cancel_says_what_it_stopped(qtbot, window: MainWindow) -> None:
    window.cancel()
    assert window.statusBar().currentMessage() == "Nothing was running."
    window.session.run_now("masked")
    window.model_panel.cancel_button.click()
    assert window.statusBar().currentMessage().startswith("Cancelled the run of the masked model")


def test_paper_presets_take_one_row_and_the_model_panel_stays_put(qtbot, window: MainWindow) -> None:
    panel = window.noise_panel

    def model_top() -> int:
        return window.model_panel.mapTo(window, window.model_panel.rect().topLeft()).y()

    tops = []
    for kind in ("gaussian", "poisson", "speckle", "jpeg", "mixture"):
        window.session.set_noise(kind=kind)
        qtbot.wait(10)  # let the layouts settle
        rows = {button.y() for button, _ in panel._preset_buttons}
        assert len(rows) <= 1, kind
        tops.append(model_top())
    assert len(set(tops)) == 1


def test_an_error_banner_floats_over_the_image_instead_of_pushing_it_down(qtbot, window: MainWindow) -> None:
    canvas = window.compare.canvas
    before = canvas.geometry()
    window.show_error("Something went wrong, and this message is long enough to wrap. " * 3)
    qtbot.wait(10)
    assert window.banner.isVisible() and canvas.geometry() == before
    assert window.banner.width() == canvas.width()


@pytest.mark.parametrize("error", [False, True], ids=["notice", "error"])
def test_a_banner_never_hides_the_side_labels(qtbot, window: MainWindow, error: bool) -> None:
    """The first-launch welcome floated over the split view's A and B labels: which side was which?"""
    canvas, banner = window.compare.canvas, window.banner
    tops = [box.top() for _, box in canvas.label_boxes()]
    banner.show_message(WELCOME, error=error)
    for width in (1400, 1000):  # the narrower window wraps the text onto more lines
        window.resize(width, 900)
        for mode in ("split", "side", "toggle", "diff"):
            window.doc.update_view(mode=mode)
            qtbot.wait(10)
            strip = QRectF(QRect(banner.mapTo(canvas, QPoint(0, 0)), banner.size()))
            assert banner.isVisible() and strip.height() > 0
            boxes = canvas.label_boxes()
            assert boxes, (width, mode)
            for text, box in boxes:
                assert not box.intersects(strip), (width, mode, text)
                assert QRectF(canvas.rect()).contains(box), (width, mode, text)
    window.resize(1400, 900)
    window.doc.update_view(mode="split")
    qtbot.mouseClick(banner.findChild(QToolButton), Qt.MouseButton.LeftButton)  # dismissed
    qtbot.wait(10)
    assert not banner.isVisible()
    assert [box.top() for _, box in canvas.label_boxes()] == tops  # back in the corner


def test_difference_reference_appears_only_in_diff_mode_and_keeps_its_room(qtbot, window: MainWindow) -> None:
    view = window.compare
    width = view.b_combo.width()
    assert view.diff_combo.isHidden()
    window.doc.update_view(mode="diff")
    qtbot.wait(10)
    assert view.diff_combo.isVisible() and view.diff_combo.isEnabled()
    assert view.b_combo.width() == width


def test_the_banner_is_as_tall_as_its_wrapped_text(qtbot, window: MainWindow) -> None:
    window.show_error("One short line.")
    qtbot.wait(10)
    one_line = window.banner.height()
    assert one_line < 4 * window.banner.label.fontMetrics().lineSpacing()
    window.resize(1400, 900)
    window.show_error("A long message that wraps over a few lines of the strip. " * 4)
    qtbot.wait(10)
    lines = window.banner.label.fontMetrics().lineSpacing()
    # three lines of text, not the tall strip of a label's narrow size hint
    assert one_line < window.banner.height() <= 4 * lines + 16
